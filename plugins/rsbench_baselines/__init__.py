"""Baseline backbones (ResNet, ViT, Swin through mmpretrain) as an rsbench plugin."""
