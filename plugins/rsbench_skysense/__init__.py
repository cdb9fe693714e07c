"""SkySense (CVPR 2024) as an rsbench plugin: HR Swin-V2, Sentinel-2/1 ViTs, temporal fusion, geo prototypes.

``plugin`` and ``presets`` are light (no torch); ``model``, ``temporal`` and ``prototypes`` hold the
network and are imported when a preset is built.
"""
