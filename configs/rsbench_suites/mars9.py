"""The 9 evaluations of the MaRS paper (AAAI 2026)."""

DESCRIPTION = "MaRS's 9 downstream evaluations"
EVALUATIONS = [
    dict(task="guso-reg"),
    dict(task="guso-trans"),
    dict(task="earthmiss"),
    dict(task="dfc25-t2"),
    dict(task="sardet100k"),
    dict(task="ubcv2"),
    dict(task="dfc23-t2"),
    dict(task="whu-cd"),
    dict(task="deepglobe-road"),
]
