"""Registers one backbone, reusing the baseline plugin's mmpretrain wrapper with a new config,
exactly as a third party would: through the ``rsbench`` entry-point group."""

from rsbench import BackboneInfo, hookimpl

NIR_RGB = {"hr": ("R", "G", "B", "NIR")}


@hookimpl
def rsbench_register_backbones(register):
    register(BackboneInfo(
        name="test-resnet18-nir",
        module="rsbench_baselines.mmpretrain_backbones",
        mm_type="RSBMMPretrainBackbone",
        kwargs=dict(net=dict(type="ResNet", depth=18, in_channels=4, stem_channels=8, base_channels=8,
                             out_indices=(0, 1, 2, 3)),
                    modalities=NIR_RGB, out_channels=(8, 16, 32, 64), out_strides=(4, 8, 16, 32)),
        modalities=NIR_RGB,
        out_channels=(8, 16, 32, 64),
        out_strides=(4, 8, 16, 32),
        pooled_channels=64,
        params=177_104,
        family="test",
        description="third-party test plugin: 4-band ResNet-18 at 1/8 width",
        tiny=True,
    ))
