"""Cross-modal plugin: DFC23's default run follows its protocol card, ``-o head=mars`` builds MaRS'
released height decoder (and runs), raster I/O goes through rsbench.io, and guso-trans' PSNR / SSIM
from scikit-image equal their definition written out independently here."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from PIL import Image

from rsbench.errors import PredictionError, SpecError
from rsbench.run.runner import run_evaluation
from rsbench.run.spec import RunSpec
from rsbench_crossmodal import dfc23
from rsbench_crossmodal.height import MARS_HEIGHT_MAX, MaRSHeightDecoder
from rsbench_crossmodal.translation import pair_scores, psnr, read_rgb8, score_pair, ssim
from task_configs import build_config

PLUGIN = Path(__file__).resolve().parents[1] / "plugins" / "rsbench_crossmodal"


@pytest.fixture(scope="module", autouse=True)
def _one_thread(one_torch_thread):
    """One intra-op thread for this module (see conftest)."""


@pytest.fixture(scope="module")
def full_size(tmp_path_factory) -> Path:
    """Five 512 px tiles: the card's crop fits (holdout: 4 train, 1 scored)."""
    return dfc23.write_fixture(tmp_path_factory.mktemp("dfc23_512") / "data", size=512, counts=dict(train=5))


@pytest.fixture(scope="module")
def small(tmp_path_factory) -> Path:
    return dfc23.write_fixture(tmp_path_factory.mktemp("dfc23_64") / "data", counts=dict(train=10))


def build(root: Path, work: Path, backbone: str = "mars-tiny", **spec_kw: Any) -> tuple[dict, dict]:
    """The dfc23-t2 config and row fields of a resolved spec (no training)."""
    return build_config("dfc23-t2", backbone, root, work, **spec_kw)[:2]


# -- the protocol card --------------------------------------------------------------------------------
def test_default_run_follows_the_mars_dfc23_card(full_size, tmp_path):
    cfg, row = build(full_size, tmp_path / "w")
    ow = cfg["optim_wrapper"]
    assert ow == dict(type="OptimWrapper", optimizer=dict(type="Adam", betas=(0.9, 0.999), weight_decay=0.0, lr=1e-4))
    assert cfg["train_dataloader"]["batch_size"] == 6  # effective 6 on one process: no accumulation
    assert cfg["train_cfg"]["max_iters"] == 80  # 80 epochs of ceil(4 / 6) = 1 iteration
    assert cfg["param_scheduler"] == [dict(type="StepLR", by_epoch=False, begin=0, end=80, step_size=20, gamma=0.5)]
    assert cfg["train_dataloader"]["dataset"]["pipeline"][0]["crop"] == 512 and cfg["model"]["window"] == 512
    assert cfg["model"]["backbone"]["encoder"]["drop_path_rate"] == 0.1
    assert cfg["model"]["decode_head"]["type"] == "RSBHeightFPNHead"  # the default head stays the uniform one
    assert "card dfc23-t2@2 (effective batch 6 = 6 x 1 process(es) x 1 accumulation; 80 iterations" in row["adapter"]


def test_a_smaller_batch_accumulates_to_the_card_and_a_shortened_run_does_not_follow_it(full_size, tmp_path):
    cfg, _ = build(full_size, tmp_path / "a", options=dict(batch_size=3, epochs=8))
    assert cfg["train_dataloader"]["batch_size"] == 3 and cfg["optim_wrapper"]["accumulative_counts"] == 2
    assert cfg["train_cfg"]["max_iters"] == 2 * 8  # ceil(4 / 3) iterations per epoch
    assert cfg["param_scheduler"][0]["step_size"] == 4  # epochs // 4 kept as the card's 20 / 80
    cfg, row = build(full_size, tmp_path / "b", max_iters=10, batch_size=2)
    assert cfg["optim_wrapper"]["optimizer"]["type"] == "AdamW" and cfg["optim_wrapper"]["clip_grad"]
    assert [s["type"] for s in cfg["param_scheduler"]] == ["CosineAnnealingLR"] and "card" not in row["adapter"]


def test_an_unknown_head_is_named(small, tmp_path):
    with pytest.raises(SpecError, match=r"--option head=fpn: expected one of uniform, mars"):
        build(small, tmp_path, options=dict(head="fpn", img_size=64))


# -- MaRS' released decoder ---------------------------------------------------------------------------
def released_keys() -> set[str]:
    """State-dict keys of heightmodel.py's DualBackboneModel without its two backbones."""
    keys = set()
    for name in ("decoder4", "decoder3", "decoder2", "decoder1"):
        for layer in ("conv1", "deconv2", "conv3"):
            keys |= {f"{name}.{layer}.weight", f"{name}.{layer}.bias"}
        for norm in ("norm1", "norm2", "norm3"):
            keys |= {f"{name}.{norm}.{k}" for k in ("weight", "bias", "running_mean", "running_var", "num_batches_tracked")}
    return keys | {"final_deconv.weight", "final_deconv.bias", "final_conv.weight", "final_conv.bias"}


def test_mars_head_is_the_released_decoder_block_structure():
    dec = MaRSHeightDecoder(1024, 32)  # MaRS (SwinV2-B): heightmodel.py's feat_dim=1024, up=5
    assert set(dec.state_dict()) == released_keys()
    widths = [(1024, 512), (512, 256), (256, 128), (128, 64)]
    for block, (cin, cout) in zip((dec.decoder4, dec.decoder3, dec.decoder2, dec.decoder1), widths):
        assert (block.conv1.in_channels, block.conv1.out_channels, block.conv1.kernel_size) == (cin, cin // 4, (1, 1))
        d = block.deconv2
        assert isinstance(d, torch.nn.ConvTranspose2d) and (d.in_channels, d.out_channels) == (cin // 4, cin // 4)
        assert (d.kernel_size, d.stride, d.padding, d.output_padding) == ((3, 3), (2, 2), (1, 1), (1, 1))
        assert (block.conv3.out_channels, block.norm3.num_features) == (cout, cout)
    assert isinstance(dec.final_deconv, torch.nn.ConvTranspose2d) and dec.final_deconv.stride == (2, 2)
    assert (dec.final_conv.in_channels, dec.final_conv.out_channels) == (32, 1)
    # parameters counted from the released layers: per block conv1 + deconv2 + conv3 (+ biases) + 3 BNs
    expected = sum(c * (c // 4) + c // 4 + 9 * (c // 4) ** 2 + c // 4 + (c // 4) * o + o + 2 * (2 * (c // 4) + o)
                   for c, o in widths) + (9 * 64 * 32 + 32) + (32 + 1)
    assert sum(p.numel() for p in dec.parameters()) == expected
    out = dec([torch.randn(2, 1024, 2, 2)])  # a 64 px window: stride 32 -> 2 x 2
    assert out.shape == (2, 1, 64, 64)


def test_mars_head_final_layer_follows_the_stride_as_released():
    vit = MaRSHeightDecoder(768, 16)  # MaRSViTFCN: feat_dim=768, up=4 (a 3x3 conv, no upsampling)
    assert isinstance(vit.final_deconv, torch.nn.Conv2d) and vit.final_deconv.stride == (1, 1)
    assert vit([torch.randn(1, 768, 4, 4)]).shape == (1, 1, 64, 64)
    s8 = MaRSHeightDecoder(96, 8)  # up=3: a 3x3 conv of stride 2
    assert s8.final_deconv.stride == (2, 2) and s8([torch.randn(1, 96, 8, 8)]).shape == (1, 1, 64, 64)
    with pytest.raises(SpecError, match="stride 4; MaRS' released decoder exists for strides 32, 16, 8"):
        MaRSHeightDecoder(256, 4)
    with pytest.raises(SpecError, match="has 100 channels"):
        MaRSHeightDecoder(100, 32)


def test_mars_head_config_takes_the_released_recipe_and_a_short_run_ends_ok(small, tmp_path):
    cfg, row = build(small, tmp_path / "cfg", options=dict(head="mars", img_size=64))
    model = cfg["model"]
    assert model["decode_head"] == dict(type="RSBMaRSHeightDecoder", in_channels=256, stride=32)  # mars-tiny
    assert (model["height_mean"], model["height_scale"]) == (0.0, MARS_HEIGHT_MAX)
    pre = model["data_preprocessor"]
    assert (pre["sar_mean"], pre["sar_std"]) == (0.2634, 0.5957)
    assert pre["rgb_mean"] == pytest.approx([0.3182 * 255, 0.3442 * 255, 0.2818 * 255])
    assert cfg["optim_wrapper"]["optimizer"]["type"] == "Adam" and "head mars" in row["adapter"]
    spec = RunSpec(backbone="mars-tiny", task="dfc23-t2", data_root=str(small), work_dir=str(tmp_path / "run"),
                   max_iters=3, batch_size=4, options={"img_size": "64", "head": "mars"})
    row = run_evaluation(spec, results_dir=tmp_path / "results", show_progress=False).row
    assert row["status"] == "ok", row["error"]
    assert np.isfinite(row["value"]) and "MaRS' released DecoderBlocks" in row["adapter"]


# -- one raster I/O ------------------------------------------------------------------------------------
def test_no_crossmodal_module_opens_rasters_itself():
    for path in sorted(PLUGIN.glob("*.py")):
        text = path.read_text()
        assert not re.search(r"\brasterio\b", text), f"{path.name} uses rasterio; read through rsbench.io.raster"
        assert "Image.open" not in text, f"{path.name} opens images with PIL; read through rsbench.io.raster"


def test_predicted_images_are_read_through_rsbench_io_with_the_file_named(tmp_path):
    good = tmp_path / "0_opt.png"
    Image.fromarray(np.arange(48, dtype=np.uint8).reshape(4, 4, 3)).save(good)
    assert np.array_equal(read_rgb8(good, 4), np.arange(48, dtype=np.uint8).reshape(4, 4, 3))
    grey, small, broken = tmp_path / "1_opt.png", tmp_path / "2_opt.png", tmp_path / "3_opt.png"
    Image.new("L", (4, 4)).save(grey)
    Image.new("RGB", (2, 2)).save(small)
    broken.write_bytes(b"not a png")
    with pytest.raises(PredictionError, match=r"1_opt.png: 1 band\(s\) of uint8; expected 8-bit RGB"):
        read_rgb8(grey, 4)
    with pytest.raises(PredictionError, match=r"2_opt.png: 2x2 px; the target is 4x4"):
        read_rgb8(small, 4)
    with pytest.raises(PredictionError, match=r"3_opt.png: unreadable image"):
        read_rgb8(broken, 4)


# -- PSNR / SSIM ---------------------------------------------------------------------------------------
def reference_ssim(pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Wang et al. 2004 written out: Gaussian 11x11, sigma 1.5, K1 0.01, K2 0.03, population
    (co)variances, mean over the valid window positions and channels (images in [0, 1])."""
    c1, c2 = 0.01 ** 2, 0.03 ** 2
    ax = torch.arange(11, dtype=torch.float64) - 5
    g = torch.exp(-ax ** 2 / (2 * 1.5 ** 2))
    g = g / g.sum()
    kernel = (g[:, None] * g[None, :]).expand(pred.shape[1], 1, 11, 11)

    def blur(x: torch.Tensor) -> torch.Tensor:
        return F.conv2d(x, kernel, groups=pred.shape[1])

    mx, my = blur(pred), blur(target)
    sxx, syy, sxy = blur(pred * pred) - mx ** 2, blur(target * target) - my ** 2, blur(pred * target) - mx * my
    s = ((2 * mx * my + c1) * (2 * sxy + c2)) / ((mx ** 2 + my ** 2 + c1) * (sxx + syy + c2))
    return s.flatten(1).mean(1)


def reference_psnr(pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    return 10 * torch.log10(1.0 / (pred - target).pow(2).flatten(1).mean(1).clamp_min(1e-12))


def fixed_pairs() -> list[tuple[torch.Tensor, torch.Tensor]]:
    gen = torch.Generator().manual_seed(7)
    pairs = []
    for h, w in ((11, 11), (16, 37), (48, 48), (64, 40)):
        t = torch.rand(2, 3, h, w, generator=gen, dtype=torch.float64)
        noisy = (t + 0.2 * torch.randn(t.shape, generator=gen, dtype=torch.float64)).clamp(0, 1)
        pairs += [(noisy, t), ((noisy * 255).round() / 255, (t * 255).round() / 255),
                  (torch.rand(t.shape, generator=gen, dtype=torch.float64), t)]
    return pairs


def test_ssim_and_psnr_from_scikit_image_equal_the_definition():
    for pred, target in fixed_pairs():
        assert torch.allclose(ssim(pred, target), reference_ssim(pred, target), rtol=0, atol=1e-12)
        assert torch.allclose(psnr(pred, target), reference_psnr(pred, target), rtol=0, atol=1e-12)
    x = fixed_pairs()[0][1]
    assert torch.equal(psnr(x, x), torch.full((2,), 120.0, dtype=torch.float64))  # MSE floor 1e-12
    # a constant shift d of a constant image: SSIM = (2 m (m + d) + C1) / (m^2 + (m + d)^2 + C1)
    m, d = 0.4, 0.2
    a = torch.full((1, 1, 16, 16), m, dtype=torch.float64)
    assert float(ssim(a, a + d)) == pytest.approx((2 * m * (m + d) + 1e-4) / (m * m + (m + d) ** 2 + 1e-4), abs=1e-12)


def test_pair_scores_and_the_scorer_give_the_definition_and_the_flat_baseline():
    pred, target = fixed_pairs()[7]
    p, t = pred[0], target[0]
    flat = t.mean(dim=(1, 2), keepdim=True).expand_as(t)
    got = pair_scores(p.numpy(), t.numpy())
    want = dict(psnr=reference_psnr(p[None], t[None]), ssim=reference_ssim(p[None], t[None]),
                psnr_flat=reference_psnr(flat[None], t[None]), ssim_flat=reference_ssim(flat[None], t[None]))
    assert got == pytest.approx({k: float(v[0]) for k, v in want.items()}, abs=1e-12)
    # the external scorer: uint8 (H, W, 3) images, centre crop, / 255
    p8 = (p * 255).round().to(torch.uint8).permute(1, 2, 0).numpy()
    t8 = (t * 255).round().to(torch.uint8).permute(1, 2, 0).numpy()
    scored = score_pair(np.pad(p8, ((4, 4), (4, 4), (0, 0))), np.pad(t8, ((4, 4), (4, 4), (0, 0))), 48)
    assert np.array_equal(scored["pred"].numpy(), p8.transpose(2, 0, 1))
    pd, td = (torch.from_numpy(a).permute(2, 0, 1)[None].double() / 255 for a in (p8, t8))
    assert scored["ssim"] == pytest.approx(float(reference_ssim(pd, td)[0]), abs=1e-12)
    assert scored["psnr"] == pytest.approx(float(reference_psnr(pd, td)[0]), abs=1e-12)
