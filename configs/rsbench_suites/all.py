"""All 16 + 9 evaluations, each once (paper settings in the per-paper suites)."""

import runpy
from pathlib import Path

_here = Path(__file__).parent
DESCRIPTION = "SkySense's 16 and MaRS's 9 evaluations"
EVALUATIONS = [
    *runpy.run_path(str(_here / "skysense16.py"))["EVALUATIONS"],
    *runpy.run_path(str(_here / "mars9.py"))["EVALUATIONS"],
]
