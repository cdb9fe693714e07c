"""rsbench's benchmark suite: eight figures, each a ratio against a reference measured in the same
run, written to ``bench/RESULTS.md`` by ``python -m bench`` (see ``bench/__main__.py``)."""
