"""What `rsbench demo` (and so ./setup.sh) runs: the AID slice, seconds per backbone on 2 CPU cores.

The full smoke suite is `rsbench demo --suite all` (every evaluation on its fixture).
"""

DESCRIPTION = "the demo: AID scene classification on its fixture"
EVALUATIONS = [
    dict(task="aid"),
]
