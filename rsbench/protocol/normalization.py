"""Normalisation constants shared by every task: one definition, so a backbone sees the same
input statistics in every evaluation (and a change here is a change everywhere)."""

from __future__ import annotations

#: ImageNet per-channel mean and standard deviation of R, G, B on the 0-255 scale (torchvision's
#: 0.485/0.456/0.406 and 0.229/0.224/0.225 times 255, as in mmpretrain/mmseg/mmdet configs). Every
#: rsbench optical (``hr``) input of 8-bit RGB is normalised with them.
IMAGENET_MEAN = (123.675, 116.28, 103.53)
IMAGENET_STD = (58.395, 57.12, 57.375)
#: ``(mean, std)``, the form of a task's ``NORMALIZATION[modality]`` entry.
IMAGENET = (IMAGENET_MEAN, IMAGENET_STD)
