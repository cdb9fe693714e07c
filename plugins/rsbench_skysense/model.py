"""SkySense (Guo et al., CVPR 2024) as an rsbench backbone: factorized multi-modal spatio-temporal encoder.

Structure (names in the module tree say what each part is)::

    encoders.hr   mmpretrain SwinTransformerV2 (official: arch 'huge', patch 4, window 8,
                  no absolute position embedding, pad_small_map=False, post-norm patch merging,
                  pretrained_window_sizes 0) -> HR pyramid 352/704/1408/2816 at strides 4..32
    encoders.s2   mmpretrain VisionTransformer 'large', patch 4, 10 bands (B2..B12), per frame
    encoders.s1   mmpretrain VisionTransformer 'large', patch 4, 2 bands (VV, VH), per frame
    fusion        projections to d, DTPE (365 x d), extra token, Transformer over time
                  -> F_mm (temporal.py)
    prototypes    geo-context bank N_R x N_p x d, Sinkhorn + EMA + read-out -> [F_mm, context]
                  (prototypes.py)
    inject        1x1 conv adding [F_mm, context] to the HR stride-32 map
    token_pyramid 1x1 convs giving the 4-level pyramid from F_mm when no HR image is given
    encoder_pyramid 1x1 convs giving it from one S2/S1 encoder's map (single-date run, no fusion)

Built per run (``in_modalities``, ``in_frames``; :func:`~rsbench_skysense.presets.forward_path`):
a single-modality, single-date run builds only that modality's encoder, so an HR-only task
(DIOR-R, iSAID, Potsdam, AID, LEVIR-CD ...) is exactly the released
``skysense_model_backbone_hr.pth`` Swin-V2-H; fusion, DTPE and prototypes (and ``inject``) are
built only for several modalities or a time series. ``in_modalities=None`` builds everything
(pretraining, parameter counts, the ``params`` of the presets).

Outputs for any subset of the built modalities, always ``out_channels`` channels at
``1 / out_strides`` of the *reference* input (the HR image when given, otherwise the first of s2, s1):

* HR alone, no fusion built: the HR Swin pyramid, the official model's features.
* HR given, fusion built: the HR Swin pyramid (of the last HR frame when T > 1); the fused
  features are computed on the HR stride-32 grid (time-series tokens resampled to it) and
  added to the stride-32 map, the scale whose ground sampling (0.3 m x 32 ~ 10 m) matches
  Sentinel pixels.
* No HR: the fused map (or, for one single-date S2/S1 image, that encoder's map) lives on the
  ViT token grid (stride = patch size 4); level ``i`` is that map resampled to
  ``1 / (4 * 2**i)`` of the input and projected to ``out_channels[i]`` (at least 1 x 1 for
  inputs under 32 px).

Official weights (``--checkpoint hr=FILE --checkpoint s2=FILE --checkpoint s1=FILE``, parts
``hr``/``s2``/``s1``), each loaded strictly into its encoder: the HR file holds mmcls Swin-V2
keys under ``backbone.`` plus the pretraining ``mask_token`` (not used), without the Swin
window-index buffers (recomputed); the S2/S1 files hold mmseg-style ViT keys
(``layers.N.attn.attn.in_proj_weight``, a class token) plus the calendar-time encoding
``ctpe`` (not used), mapped to mmpretrain's names (official README usage; the ViT is
mmseg's, as in SkySense++'s copy). A full rsbench SkySense state loads the built modules
strictly and reports the parts of modules this run does not build as not used.

Fallbacks: frames without a date get no DTPE (zero); a time series (T > 1) without dates is an
error unless ``require_dates=False``; without ``latlon`` the geo context is zero and no
prototype is updated. The region of a (lat, lon) is an equal-area grid cell
(:func:`~rsbench_skysense.prototypes.latlon_to_region`).

Paper-size parameters (``skysense`` preset, counted on the meta device; paper figures from
the reference notes, unverified against the PDF):

=====================================  ==============  ==================
component                              this preset     paper
=====================================  ==============  ==================
HR Swin-H (``encoders.hr``)            655,079,632     654M
S2 ViT-L (``encoders.s2``)             302,738,432     302M
S1 ViT-L (``encoders.s1``)             302,607,360     302M
fusion Transformer (24 x 1024, 16 h)   307,670,016     398M
  (incl. projections + DTPE + token)
geo prototypes 4096 x 100 x 1024       419,430,400     215M
inject + token pyramid                 16,588,704      others 189M
total                                  2,004,114,544   2.06B (-2.7 %)
=====================================  ==============  ==================

Choices: the fusion width 1024 / 24 layers / 16 heads / mlp 4 follow the SkySense++ code that
inherits this module. The prototypes live in ``F_mm``'s space (the EMA ``P_r <- m P_r +
(1 - m) S^T F_mm`` needs that), so at d = 1024 the bank is 419M rather than the paper's 215M
(which implies d of about 512); we keep the paper's 4096 x 100 and the one-space formula. The
paper's "others" (189M) are pre-training heads not part of a downstream backbone.
"""

from __future__ import annotations

import contextlib
import re
import warnings
from collections.abc import Iterable, Iterator, Mapping, Sequence
from typing import Any

import torch
import torch.nn.functional as F
from mmengine.registry import MODELS as ROOT_MODELS
from torch import Tensor, nn
from torch.overrides import TorchFunctionMode

from rsbench.errors import CheckpointError
from rsbench.io.checkpoint import KeyReport, load_into, read_state_dict
from rsbench.plugin_api.backbone import RSBackbone
from rsbench_skysense.presets import OFFICIAL_HR, RGB, S1_BANDS, S2_BANDS, VIT_LARGE, forward_path
from rsbench_skysense.prototypes import GeoContextPrototypes
from rsbench_skysense.temporal import TemporalFusionTransformer

DEFAULT_BANDS: dict[str, tuple[str, ...]] = {"hr": RGB, "s2": S2_BANDS, "s1": S1_BANDS}
TIME_SERIES = ("s2", "s1")
#: Defaults under any ``hr=`` / ``s2=`` / ``s1=`` override: the official HR arguments, ViT-L/4.
DEFAULT_TS = VIT_LARGE

_CONTAINERS = ("encoders.", "fusion.", "prototypes.", "inject.", "token_pyramid.", "encoder_pyramid.")
_RECOMPUTED_BUFFERS = ("relative_position_index", "relative_coords_table")
#: Entries of the released encoder files that no downstream module holds: the HR pretraining's
#: ``mask_token`` and the S2 file's calendar-time encoding ``ctpe`` (official README: "unexpected
#: keys"); the date encoding of this model lives in ``fusion.dtpe``.
PRETRAINING_ONLY = ("mask_token", "ctpe")
#: Modules that no SkySense file holds (new 1x1 adapters of a single-date S2/S1 run).
_ADAPTERS = ("encoder_pyramid.",)


class _LinspaceOnCPU(TorchFunctionMode):
    """Build ``torch.linspace`` on the CPU: mmpretrain's Swin calls ``.item()`` on it for the
    stochastic-depth rates, which fails under ``torch.device('meta')`` (parameter counting)."""

    def __torch_function__(self, func, types, args=(), kwargs=None):  # type: ignore[override]
        kwargs = dict(kwargs or {})
        if func is torch.linspace:
            kwargs["device"] = "cpu"
        return func(*args, **kwargs)


@contextlib.contextmanager
def _meta_safe() -> Iterator[None]:
    if torch.get_default_device().type == "meta":
        with _LinspaceOnCPU():
            yield
    else:
        yield


def _resize(x: Tensor, size: Sequence[int]) -> Tensor:
    """Resample NCHW to ``size``: area average for integer down-sampling, else bilinear."""
    h, w = x.shape[-2:]
    th, tw = int(size[0]), int(size[1])
    if (h, w) == (th, tw):
        return x
    if th <= h and tw <= w and h % th == 0 and w % tw == 0:
        return F.adaptive_avg_pool2d(x, (th, tw))
    return F.interpolate(x, size=(th, tw), mode="bilinear", align_corners=False)


def _swin_widths(swin: type, arch: str | Mapping[str, Any]) -> tuple[int, ...]:
    """Stage widths of a SwinTransformerV2 ``arch`` (name or dict), without building it: the
    declared outputs stay the HR pyramid's even when a run does not build the HR encoder."""
    if isinstance(arch, str):
        zoo = getattr(swin, "arch_zoo")
        if arch.lower() not in zoo:
            raise ValueError(f"SkySense hr: unknown SwinTransformerV2 arch {arch!r}; known: {sorted(zoo)}")
        embed = int(zoo[arch.lower()]["embed_dims"])
    else:
        embed = int(arch["embed_dims"])
    return tuple(embed * 2**i for i in range(4))


@ROOT_MODELS.register_module(name="RSBSkySense")
class SkySenseBackbone(RSBackbone):
    """SkySense with any subset of the HR, S2 and S1 encoders (see the module docstring).

    Args:
        hr, s2, s1: keyword arguments overriding :data:`OFFICIAL_HR` (SwinTransformerV2) and
            :data:`DEFAULT_TS` (VisionTransformer) for that encoder; ``None`` leaves it out.
        fusion: :class:`TemporalFusionTransformer` arguments (``embed_dims``, ``num_layers``,
            ``num_heads``, ``mlp_ratio``, ``num_days``, ``drop_path_rate``); ``None`` allows only
            single-modality, single-date runs (the ``skysense-hr`` preset).
        prototypes: :class:`GeoContextPrototypes` arguments (``region_grid``, ``num_prototypes``,
            ``momentum``, ``sinkhorn_iters``, ``epsilon``, ``frozen``); needs ``fusion``.
        bands: per-modality band names (default RGB, the 10 Sentinel-2 bands, VV/VH).
        require_dates: a time series (T > 1) without dates is an error (the DTPE is what tells
            the fusion when frames were taken); ``False`` falls back to no encoding.
        in_frames: ``modality -> T`` the run feeds (default 1: single images); with
            ``in_modalities`` it decides which modules are built (:func:`forward_path`).
        encoder_checkpoints: ``part -> path`` of the official per-encoder files (parts ``hr``,
            ``s2``, ``s1``), each loaded strictly into its encoder (:meth:`load_part`).
        checkpoint: a full rsbench SkySense state dict, or one encoder's file (routed by content).
    """

    def __init__(
        self,
        hr: Mapping[str, Any] | None = None,
        s2: Mapping[str, Any] | None = None,
        s1: Mapping[str, Any] | None = None,
        fusion: Mapping[str, Any] | None = None,
        prototypes: Mapping[str, Any] | None = None,
        bands: Mapping[str, Sequence[str]] | None = None,
        require_dates: bool = True,
        in_frames: Mapping[str, int] | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        from mmpretrain.models.backbones import SwinTransformerV2, VisionTransformer

        specs = {m: cfg for m, cfg in (("hr", hr), ("s2", s2), ("s1", s1)) if cfg is not None}
        if not specs:
            raise ValueError("SkySense needs at least one of the encoders hr, s2, s1")
        if prototypes is not None and fusion is None:
            raise ValueError("SkySense `prototypes` read the fused features: they need `fusion`")
        built, fused = forward_path(tuple(specs), fusion is not None, self.in_modalities, in_frames)
        if not fused and len(built) > 1:
            raise ValueError(
                f"SkySense with encoders {sorted(built)} needs `fusion`: time series and several "
                "modalities reach the outputs only through the temporal fusion"
            )
        all_bands = {**DEFAULT_BANDS, **{k: tuple(v) for k, v in (bands or {}).items()}}
        #: Every configured modality (the preset's declaration); ``encoders`` holds the built ones.
        self.modalities = {m: tuple(all_bands[m]) for m in specs}
        self.checkpoint_parts = tuple(specs)
        self.require_dates = require_dates
        self.in_frames = {m: int(t) for m, t in (in_frames or {}).items() if m in built}
        self.key_reports: dict[str, KeyReport] = {}
        self.part_checkpoints()  # unknown parts fail now, not at the first iteration

        ts_args = {m: {**DEFAULT_TS, **dict(specs[m])} for m in specs if m != "hr"}
        hr_args = {**OFFICIAL_HR, **dict(specs["hr"])} if "hr" in specs else None
        self.patch_sizes = {m: int(a["patch_size"]) for m, a in ts_args.items()}
        if hr_args is not None:
            self.patch_sizes["hr"] = int(hr_args["patch_size"])
            self.hr_widths = _swin_widths(SwinTransformerV2, hr_args["arch"])

        self.encoders = nn.ModuleDict()
        widths: dict[str, int] = {}
        with _meta_safe():
            for m in built:
                if m == "hr":
                    assert hr_args is not None
                    enc = SwinTransformerV2(**{**hr_args, "in_channels": len(self.modalities[m]),
                                               "out_indices": (0, 1, 2, 3)})
                    self.hr_window = max(enc.window_sizes)
                    widths[m] = self.hr_widths[-1]
                else:
                    enc = VisionTransformer(**{**ts_args[m], "in_channels": len(self.modalities[m]),
                                               "out_type": "featmap", "with_cls_token": False,
                                               "final_norm": True, "out_indices": [-1]})
                    widths[m] = enc.embed_dims
                self.encoders[m] = enc

        first = next(iter(specs))
        self.out_strides = tuple(self.patch_sizes[first] * 2**i for i in range(4))
        d = int(dict(fusion or {}).get("embed_dims", 1024))
        fused_width = 2 * d if prototypes is not None else d
        if "hr" in specs:
            self.out_channels = self.hr_widths
        else:
            self.out_channels = (fused_width if fusion is not None else widths[built[0]],) * 4
        self.fusion = TemporalFusionTransformer(widths, **dict(fusion or {})) if fused else None
        self.prototypes = GeoContextPrototypes(d, **dict(prototypes)) if fused and prototypes is not None else None
        full = self.in_modalities is None
        self.inject = nn.Conv2d(fused_width, self.out_channels[-1], 1) if fused and "hr" in built else None
        self.token_pyramid = (nn.ModuleList(nn.Conv2d(fused_width, c, 1) for c in self.out_channels)
                              if fused and (full or "hr" not in built) else None)
        self.encoder_pyramid = (nn.ModuleList(nn.Conv2d(widths[built[0]], c, 1) for c in self.out_channels)
                                if not fused and built[0] != "hr" else None)
        self.pooled_channels = self.out_channels[-1]
        self._apply_freeze()

    @property
    def built(self) -> tuple[str, ...]:
        """The modalities whose encoders this model built (the run's forward path)."""
        return tuple(self.encoders)

    # -- inputs -------------------------------------------------------------------
    def _bad(self, modality: str, message: str) -> ValueError:
        n = len(self.modalities[modality])
        return ValueError(
            f"{type(self).__name__}: modality {modality!r} expects {n} bands "
            f"({', '.join(self.modalities[modality])}) as (B, {n}, H, W) or (B, T, {n}, H, W); {message}"
        )

    def _parse(self, inputs: Tensor | Mapping[str, Any]) -> tuple[dict[str, Tensor], dict[str, Tensor | None], Tensor | None]:
        """Validate inputs; returns ``modality -> (B, T, C, H, W)``, dates and latlon."""
        if isinstance(inputs, Tensor):
            inputs = {self.built[0]: inputs}
        if not isinstance(inputs, Mapping):
            raise TypeError(f"{type(self).__name__} takes a tensor or a mapping; got {type(inputs).__name__}")
        unknown = sorted(k for k in inputs if k not in self.modalities and k not in ("dates", "latlon"))
        if unknown:
            raise ValueError(
                f"{type(self).__name__}: unknown input keys {unknown}; takes modalities "
                f"{list(self.modalities)} plus 'dates' and 'latlon'"
            )
        absent = sorted(k for k in inputs if k in self.modalities and k not in self.encoders)
        if absent:
            raise ValueError(
                f"{type(self).__name__}: input {absent} has no encoder in this model: it was built for "
                f"in_modalities={list(self.built)} (only the modules on the run's forward path are built)"
            )
        xs: dict[str, Tensor] = {}
        for m in self.built:
            x = inputs.get(m)
            if x is None:
                continue
            if not isinstance(x, Tensor) or x.dim() not in (4, 5):
                shape = tuple(x.shape) if isinstance(x, Tensor) else type(x).__name__
                raise self._bad(m, f"got {shape}")
            x = x.unsqueeze(1) if x.dim() == 4 else x
            if x.shape[2] != len(self.modalities[m]):
                raise self._bad(m, f"got shape {tuple(inputs[m].shape)}")
            xs[m] = x
        if not xs:
            raise ValueError(
                f"{type(self).__name__}: no input for any of its modalities {list(self.built)}; "
                f"got keys {sorted(inputs)}"
            )
        if self.fusion is None:
            series = {m: x.shape[1] for m, x in xs.items() if x.shape[1] > 1}
            if series:
                m, t = next(iter(series.items()))
                raise self._bad(m, f"a time series of T={t} frames needs the temporal fusion, which this "
                                   f"model did not build: build it with in_frames={{{m!r}: {t}}} (the task "
                                   f"passes the frames it feeds) or feed one frame; got shape "
                                   f"{tuple(inputs[m].shape)}")
        if self.inject is not None and self.token_pyramid is None and "hr" not in xs:
            raise ValueError(f"{type(self).__name__}: this model was built for in_modalities="
                             f"{list(self.built)}, which include 'hr'; got no 'hr' input (keys {sorted(inputs)})")
        batch = {m: x.shape[0] for m, x in xs.items()}
        if len(set(batch.values())) > 1:
            raise ValueError(f"{type(self).__name__}: modalities disagree on the batch size: {batch}")
        b = next(iter(batch.values()))
        if "hr" in xs:
            stride = 8 * self.patch_sizes["hr"]
            h, w = xs["hr"].shape[-2:]
            if -(-min(h, w) // stride) < self.hr_window:
                raise self._bad("hr", f"H and W must give at least {self.hr_window} tokens (the window) at "
                                      f"stride {stride}, i.e. be at least {stride * (self.hr_window - 1) + 1} "
                                      f"(e.g. {stride * self.hr_window}); small maps are not padded, as in "
                                      f"the official weights; got shape {tuple(inputs['hr'].shape)}")

        dates_in = inputs.get("dates") or {}
        if not isinstance(dates_in, Mapping):
            raise ValueError(f"{type(self).__name__}: inputs['dates'] must map modality -> (B, T) day of year")
        dates: dict[str, Tensor | None] = {}
        for m, x in xs.items():
            t = x.shape[1]
            doy = dates_in.get(m)
            if doy is None:
                if t > 1 and self.require_dates and self.fusion is not None:
                    raise ValueError(
                        f"{type(self).__name__}: modality {m!r} is a time series of T={t} frames: pass "
                        f"inputs['dates'][{m!r}] as (B, T) = ({b}, {t}) day-of-year integers 1..366 "
                        "(or build with require_dates=False to fuse without date encoding)"
                    )
                dates[m] = None
                continue
            doy = torch.as_tensor(doy, device=x.device)
            if tuple(doy.shape) != (b, t):
                raise ValueError(f"{type(self).__name__}: dates of modality {m!r} must be (B, T) = "
                                 f"({b}, {t}); got shape {tuple(doy.shape)}")
            if doy.is_floating_point() or doy.min() < 1 or doy.max() > 366:
                raise ValueError(f"{type(self).__name__}: dates of modality {m!r} must be integer "
                                 f"day of year 1..366; got dtype {doy.dtype}, range "
                                 f"{doy.min().item()}..{doy.max().item()}")
            dates[m] = doy
        latlon = inputs.get("latlon")
        if latlon is not None:
            latlon = torch.as_tensor(latlon, device=next(iter(xs.values())).device)
            if tuple(latlon.shape) != (b, 2):
                raise ValueError(f"{type(self).__name__}: latlon must be (B, 2) = ({b}, 2) degrees "
                                 f"(lat, lon); got shape {tuple(latlon.shape)}")
        return xs, dates, latlon

    def example_inputs(self, batch: int = 2, size: int = 64) -> dict[str, Any]:
        """Every built modality with dates, plus (lat, lon): HR ``size`` x ``size``, S2 and S1 at
        ``size // 4`` when HR is present (Sentinel pixels are coarser), else at ``size``. Frames:
        the run's ``in_frames`` (1 by default); the full model (``in_modalities=None``) gets one
        HR frame, three S2 and two S1 frames."""
        out: dict[str, Any] = {}
        dates: dict[str, Tensor] = {}
        ts_size = max(size // 4, 4 * max(self.patch_sizes.values())) if "hr" in self.built else size
        frames = {"hr": 1, "s2": 3, "s1": 2} if self.in_modalities is None else {}
        for m in self.built:
            s, t = (size if m == "hr" else ts_size), self.in_frames.get(m, frames.get(m, 1))
            bands = len(self.modalities[m])
            out[m] = torch.randn(batch, bands, s, s) if t == 1 else torch.randn(batch, t, bands, s, s)
            dates[m] = torch.randint(1, 366, (batch, t))
        out["dates"] = dates
        out["latlon"] = torch.stack([torch.rand(batch) * 140 - 60, torch.rand(batch) * 360 - 180], dim=1)
        return out

    # -- forward ------------------------------------------------------------------
    def forward(self, inputs: Tensor | Mapping[str, Any]) -> tuple[Tensor, ...]:
        xs, dates, latlon = self._parse(inputs)
        b = next(iter(xs.values())).shape[0]
        ref = next(iter(xs.values())).shape[-2:]
        feats: dict[str, Tensor] = {}  # modality -> (B*T, C, h, w) deepest encoder features
        pyramid: list[Tensor] | None = None
        for m, x in xs.items():
            t = x.shape[1]
            outs = self.encoders[m](x.flatten(0, 1))
            if m == "hr":
                pyramid = [o.unflatten(0, (b, t))[:, -1] for o in outs]
            feats[m] = outs[-1]
        if self.fusion is None:
            if pyramid is not None:  # the HR encoder alone: the official model's features
                return tuple(pyramid)
            assert self.encoder_pyramid is not None
            return self._token_levels(self.encoder_pyramid, feats[next(iter(feats))], ref)

        grid = pyramid[-1].shape[-2:] if pyramid is not None else feats[next(iter(feats))].shape[-2:]
        frames = [_resize(self.fusion.project(m, f), grid).unflatten(0, (b, xs[m].shape[1]))
                  for m, f in feats.items()]
        fused = self.fusion(frames, [dates[m] for m in feats])  # (B, d, h, w)
        if self.prototypes is not None:
            d, (h, w) = fused.shape[1], grid
            tokens = self.prototypes(fused.flatten(2).transpose(1, 2), latlon)
            fused = tokens.transpose(1, 2).reshape(b, 2 * d, h, w)
        if pyramid is not None:
            assert self.inject is not None
            pyramid[-1] = pyramid[-1] + self.inject(fused)
            return tuple(pyramid)
        assert self.token_pyramid is not None
        return self._token_levels(self.token_pyramid, fused, ref)

    def _token_levels(self, convs: nn.ModuleList, x: Tensor, ref: Sequence[int]) -> tuple[Tensor, ...]:
        """Level ``i``: ``x`` resampled to ``1 / out_strides[i]`` of the input, then projected."""
        return tuple(conv(_resize(x, (max(ref[0] // s, 1), max(ref[1] // s, 1))))
                     for conv, s in zip(convs, self.out_strides))

    def checkpoint_blocks(self) -> Iterable[nn.Module]:
        """The HR Swin-V2 blocks, the time-series ViT layers and the fusion Transformer layers."""
        for m, encoder in self.encoders.items():
            if m == "hr":
                for stage in encoder.stages:
                    yield from stage.blocks
            else:
                yield from encoder.layers
        if self.fusion is not None:
            yield from self.fusion.layers

    # -- weights ------------------------------------------------------------------
    def _checkpoint_modality(self, state: Mapping[str, Tensor], source: str, modality: str | None = None) -> str:
        """Which of this model's encoders a single-encoder state dict belongs to (by content)."""
        if "patch_embed.projection.weight" not in state:
            raise CheckpointError(
                f"{source}: neither a SkySense state dict (keys under {', '.join(_CONTAINERS)}) nor an "
                "mmpretrain Swin/ViT encoder (patch_embed.projection.weight); first keys: "
                f"{', '.join(list(state)[:5])}"
            )
        in_ch = int(state["patch_embed.projection.weight"].shape[1])
        if any(k.startswith("stages.") for k in state):
            kind, native = "Swin (HR)", "hr"
        else:
            kind = "ViT (time-series)"
            matches = [m for m in TIME_SERIES if m in self.modalities and len(self.modalities[m]) == in_ch]
            matches = matches or [m for m in TIME_SERIES if len(DEFAULT_BANDS[m]) == in_ch]
            native = matches[0] if matches else "s2/s1"
        target = modality or native
        if target in self.modalities and target == native and len(self.modalities[target]) == in_ch:
            return target
        expected = {m: f"(B, {len(b)}, H, W)" for m, b in self.modalities.items()}
        if modality and modality != native:
            given = f"it was given for modality {modality!r}"
        elif target in self.modalities:
            given = f"this model's {target!r} encoder takes {len(self.modalities[target])} bands"
        else:
            given = "this model has no such encoder"
        raise CheckpointError(
            f"{source}: holds a {kind} encoder taking {in_ch} bands, i.e. modality {native!r} as "
            f"(B, {in_ch}, H, W), but {given}; this model's encoders take {expected}"
        )

    def _complete_buffers(self, encoder: nn.Module, state: dict[str, Tensor]) -> dict[str, Tensor]:
        """Add Swin's window-index buffers when a file lacks them: they are fixed by the window
        size (mmpretrain deletes them on load and keeps its own anyway)."""
        own = encoder.state_dict()
        for k, v in own.items():
            if k.endswith(_RECOMPUTED_BUFFERS) and k not in state:
                state[k] = v
        return state

    def _encoder_state(
        self, state: Mapping[str, Tensor], modality: str
    ) -> tuple[dict[str, Tensor], list[str], tuple[str, ...]]:
        """One encoder file in this model's names: returns the state, the keys not used
        (pretraining-only entries, the ViT class token) and the ``fresh`` prefixes.

        HR (mmcls Swin-V2 names = mmpretrain's): the window-index buffers are recomputed when
        absent; an output norm ``normI`` the file lacks entirely is fresh (a new LayerNorm, as
        the official configs' non-strict loader leaves it). S2/S1: the released files use
        mmseg's ViT names (``attn.attn.in_proj_weight`` / ``out_proj``, a ``cls_token`` and its
        ``pos_embed`` row), mapped to mmpretrain's ``attn.qkv`` / ``attn.proj``; the class
        token is unused here (``with_cls_token=False``: mmseg drops it before the layers too).
        """
        encoder = self.encoders[modality]
        out: dict[str, Tensor] = {}
        unused = [k for k in state if k in PRETRAINING_ONLY]
        fresh: tuple[str, ...] = ()
        for k, v in state.items():
            if k in PRETRAINING_ONLY:
                continue
            if modality != "hr":
                if k == "cls_token":
                    unused.append(k)
                    continue
                k = re.sub(r"\.attn\.attn\.in_proj_(weight|bias)$", r".attn.qkv.\1", k)
                k = re.sub(r"\.attn\.attn\.out_proj\.", ".attn.proj.", k)
            out[k] = v
        if modality == "hr":
            out = self._complete_buffers(encoder, out)
            norms = {k.split(".", 1)[0] for k in encoder.state_dict() if re.match(r"norm\d+\.", k)}
            fresh = tuple(f"{n}." for n in sorted(norms) if not any(k.startswith(f"{n}.") for k in out))
        else:
            own = encoder.pos_embed
            pos = out.get("pos_embed")
            if pos is not None and pos.dim() == 3 and pos.shape[1] == own.shape[1] + 1:
                out["pos_embed"] = pos[:, 1:]  # the class token's row
        return out, sorted(unused), fresh

    def map_checkpoint_keys(self, state: dict[str, Tensor]) -> dict[str, Tensor]:
        """Full SkySense states pass through; one official encoder file gets ``encoders.<m>.``
        (in this model's names, without its unused entries)."""
        if any(k.startswith(_CONTAINERS) for k in state):
            return state
        m = self._checkpoint_modality(state, "checkpoint")
        mapped, _, _ = self._encoder_state(state, m)
        return {f"encoders.{m}.{k}": v for k, v in mapped.items()}

    def _built_containers(self) -> tuple[str, ...]:
        names = ("fusion", "prototypes", "inject", "token_pyramid", "encoder_pyramid")
        built = [f"{n}." for n in names if getattr(self, n) is not None]
        return tuple([f"encoders.{m}." for m in self.encoders] + built)

    def load_checkpoint(self, path: str, strict: bool | None = None, modality: str | None = None) -> KeyReport:
        """Load a full SkySense state dict, or one encoder's file into that encoder only.

        A full state loads strictly into the modules this run built; the parts of modules it
        did not build (off the forward path) are reported as not used. An encoder file (routed
        by content, or to ``modality``) loads strictly into its encoder; a file for an encoder
        this run does not build is not used, with a warning.
        """
        strict = self.strict if strict is None else strict
        state = read_state_dict(path)
        source = f"checkpoint {path}"
        full = any(k.startswith(_CONTAINERS) for k in state)
        if full and modality is None:
            on_path = self._built_containers()
            off = sorted(k for k in state if k.startswith(_CONTAINERS) and not k.startswith(on_path))
            state = {k: v for k, v in state.items() if k not in off}
            report = load_into(self, state, strict=strict, source=source, path=str(path), not_used=off,
                               fresh=_ADAPTERS)
        else:
            if full:  # one encoder's part of a full state, e.g. --checkpoint hr=full.pth
                prefix = f"encoders.{modality}."
                rest = sorted(k for k in state if not k.startswith(prefix))
                state = {k[len(prefix):]: v for k, v in state.items() if k.startswith(prefix)}
                if not state:
                    raise CheckpointError(f"{source}: a SkySense state dict without keys under {prefix} "
                                          f"(it has {', '.join(sorted({k.split('.')[0] for k in rest}))})")
            else:
                rest = []
            m = self._checkpoint_modality(state, source, modality)
            if m not in self.encoders:
                report = KeyReport(not_used=sorted(list(state) + rest))
                warnings.warn(f"{source}: holds the {m!r} encoder, which this run does not build "
                              f"(in_modalities={list(self.built)}); not used", stacklevel=2)
            else:
                mapped, unused, fresh = self._encoder_state(state, m)
                report = load_into(self.encoders[m], mapped, strict=strict, source=f"{source} ({m} encoder)",
                                   path=str(path), not_used=sorted(unused + rest), fresh=fresh)
            self.key_reports[m] = report
        self.key_report = report
        self.weight_sources.append(str(path))
        return report

    def load_part(self, part: str, path: str) -> KeyReport:
        """``--checkpoint hr|s2|s1=FILE``: that encoder's file, strictly (see load_checkpoint)."""
        return self.load_checkpoint(path, modality=part)
