"""Image-level and cross-modal evaluations (RESISC-45, BigEarthNet-S2/MM, fMoW-S2, ...) as an rsbench plugin."""
