"""MaRS (AAAI 2026): RGB and SAR Swin-V2 encoders fused by Meta-Modality Attention, as an rsbench plugin."""
