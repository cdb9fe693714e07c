"""A minimal third-party rsbench plugin (installed by test.sh)."""
