"""Semantic-segmentation evaluations (iSAID, DeepGlobe roads, Potsdam, EarthMiss) as an rsbench plugin.

Layout of the package: one module per dataset (official on-disk layout reader, label decoding,
fixture writer), ``common`` (shared image/label helpers), ``seg_task`` (the one mmseg Task that
turns any of them into a config) and ``mm`` (the few mmseg components rsbench registers: a
dataset fed from a split file, a loading transform, a multi-modal segmentor, a metric that also
reports per-class values).
"""
