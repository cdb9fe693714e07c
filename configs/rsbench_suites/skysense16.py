"""The 16 evaluations of the SkySense paper (CVPR 2024)."""

DESCRIPTION = "SkySense's 16 downstream evaluations"
EVALUATIONS = [
    dict(task="dyna-pla"),
    dict(task="isaid"),
    dict(task="potsdam"),
    dict(task="dyna-s2"),
    dict(task="dior"),
    dict(task="dior-r"),
    dict(task="fair1m"),
    dict(task="levir-cd"),
    dict(task="oscd"),
    dict(task="dyna-s2-cd"),
    dict(task="aid", options=dict(train_ratio=[0.2, 0.5])),
    dict(task="resisc45", options=dict(train_ratio=[0.1, 0.2])),
    dict(task="ben-s2", options=dict(label_fraction=[0.1, 1.0])),
    dict(task="fmow-s2"),
    dict(task="dyna-mm"),
    dict(task="ben-mm"),
]
