"""The MaRS backbone: two timm Swin-V2 encoders (VHR optical and VHR SAR) and Meta-Modality Attention.

Encoders are timm ``features_only`` models built exactly like the released downstream code
(``timm.create_model('swinv2_base_window8_256', features_only=True, img_size=512,
in_chans=3 | 1)``), so the official ``mars_base_rgb_encoder_only.pth`` and
``mars_base_sar_encoder_only.pth`` load into them key for key (``rgb_checkpoint=`` /
``sar_checkpoint=``). ``pretrained=False`` always: rsbench never downloads weights.

Input rule: ``{"hr": (B, 3, H, W), "sar": (B, 1, H, W)}`` of equal H and W, multiples of 32.
The encoders are built with ``strict_img_size=False`` (timm computes shifted-window masks per
input), so sizes other than ``img_size`` run; window partitions are zero-padded wherever a
stage map is not a multiple of the window (for the paper size, H and W multiples of 256 avoid
padding; 512 x 512 is the pretraining size). The two images may be of different dates
(e.g. optical pre-event, SAR post-event): MaRS only needs them co-registered.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import torch
from mmengine.registry import MODELS as ROOT_MODELS
from torch import Tensor, nn

from rsbench.backbone import RSBackbone
from rsbench.checkpoint import KeyReport, load_into, read_state_dict
from rsbench.errors import ModalityMismatch
from rsbench_mars.mma import RELEASED_KEY_MAP, MetaModalityAttention

MODALITIES: dict[str, tuple[str, ...]] = {"hr": ("R", "G", "B"), "sar": ("SAR",)}
FUSIONS = ("mma", "sum")
MISSING = ("intra_only", "placeholder")
PAPER_ENCODER: dict[str, Any] = dict(model_name="swinv2_base_window8_256", img_size=512)
#: Released pretraining checkpoint prefixes -> modality (``DualEncoderMaRS``).
RELEASED_ENCODERS = {"encoder_rgb.encoder.": "hr", "encoder_sar.encoder.": "sar"}
#: Parts of a full pretraining checkpoint that have no downstream role (mask token, pixel
#: decoders, the frozen teacher, the contrastive temperature, the encoders' final norm and head,
#: which the released encoder-only files drop too).
PRETRAIN_ONLY = re.compile(
    r"^(teacher_encoder\.|decoder_rgb\.|decoder_sar\.|contrast_temp$|encoder_(rgb|sar)\.mask_token$"
    r"|encoder_(rgb|sar)\.encoder\.(norm|head)\.)"
)


def build_encoder(in_chans: int, model_name: str, out_indices: Sequence[int] = (0, 1, 2, 3),
                  **timm_kwargs: Any) -> nn.Module:
    """A timm ``features_only`` encoder; its state dict keys equal the released encoder-only files."""
    import timm

    if timm_kwargs.pop("pretrained", False):
        raise ValueError("MaRS encoders never download weights: pass rgb_checkpoint= / sar_checkpoint=")
    timm_kwargs.setdefault("strict_img_size", False)
    return timm.create_model(model_name, pretrained=False, features_only=True, in_chans=in_chans,
                             out_indices=tuple(out_indices), **timm_kwargs)


def plain_to_features_keys(state: Mapping[str, Tensor]) -> dict[str, Tensor]:
    """Rename plain timm Swin keys (``layers.0.``) to ``features_only`` ones (``layers_0.``)."""
    return {re.sub(r"^layers\.(\d+)\.", r"layers_\1.", k): v for k, v in state.items()}


@ROOT_MODELS.register_module(name="RSBMaRS")
class MaRS(RSBackbone):
    """MaRS: per-modality Swin-V2 encoders, fused per stage, with MMA at ``mma_stages``.

    Args:
        encoder: timm arguments shared by both encoders (``model_name`` plus overrides such as
            ``img_size``, ``embed_dim``, ``depths``, ``drop_path_rate``).
        fusion: ``"mma"`` (MMA at ``mma_stages``, then the two modalities' maps are summed per
            stage) or ``"sum"`` (per-stage sum of the encoders' maps, the released downstream
            code's choice for RGB+SAR input; no MMA parameters).
        mma_stages: output indices where MMA runs (default: the last stage, as in pretraining).
        mma_depth, mma_heads, mma_mlp_ratio, mma_style: see :mod:`rsbench_mars.mma`.
        missing_modality: how MaRS runs when ``in_modalities`` (the rsbench contract's
            declaration of what a run feeds) leaves a modality out (EarthMiss):
            ``"intra_only"`` (default: the present modality alone, joint MMA layers skipped) or
            ``"placeholder"`` (a learned token per MMA stage stands in for every token of the
            absent modality, so joint layers run as with both; fusion ``"mma"`` only; learned
            in the run that lacks the modality). At stages without MMA an absent modality
            contributes nothing to the fused sum. A modality that is declared (or, with no
            ``in_modalities``, any of the two) but missing from the input is an error: absence
            is configured, never accidental.
        rgb_checkpoint, sar_checkpoint: encoder-only weights (official files or any state dict
            of the same timm module), loaded after ``init_weights`` with a key report each.
    """

    def __init__(
        self,
        encoder: Mapping[str, Any] = PAPER_ENCODER,
        fusion: str = "mma",
        mma_stages: Sequence[int] = (3,),
        mma_depth: int = 2,
        mma_heads: int = 8,
        mma_mlp_ratio: float = 4.0,
        mma_style: str = "post",
        mma_drop_path: float = 0.0,
        missing_modality: str = "intra_only",
        out_indices: Sequence[int] = (0, 1, 2, 3),
        rgb_checkpoint: str | None = None,
        sar_checkpoint: str | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        if fusion not in FUSIONS:
            raise ValueError(f"MaRS fusion must be one of {FUSIONS}; got {fusion!r}")
        if missing_modality not in MISSING:
            raise ValueError(f"MaRS missing_modality must be one of {MISSING}; got {missing_modality!r}")
        if missing_modality == "placeholder" and fusion != "mma":
            raise ValueError("MaRS missing_modality='placeholder' needs fusion='mma' (placeholders are MMA tokens)")
        if self.checkpoint and (rgb_checkpoint or sar_checkpoint):
            raise ValueError("MaRS: give either checkpoint= (whole model) or rgb_checkpoint=/sar_checkpoint=")
        self.modalities = dict(MODALITIES)
        declared = getattr(self, "in_modalities", None)
        unknown = sorted(set(declared or ()) - set(self.modalities))
        if unknown:
            raise ValueError(f"MaRS takes modalities {list(self.modalities)}; in_modalities has {unknown}")
        #: The modalities this run feeds; the others are absent by configuration.
        self.fed = tuple(m for m in self.modalities if m in declared) if declared else tuple(self.modalities)
        self.absent = tuple(m for m in self.modalities if m not in self.fed)
        self.fusion = fusion
        self.missing_modality = missing_modality
        self.encoder_checkpoints = {"hr": rgb_checkpoint, "sar": sar_checkpoint}
        self.encoder_reports: dict[str, KeyReport] = {}

        enc = dict(encoder)
        model_name = enc.pop("model_name")
        self.encoders = nn.ModuleDict({
            m: build_encoder(len(bands), model_name, out_indices, **dict(enc))
            for m, bands in self.modalities.items()
        })
        info = self.encoders["hr"].feature_info
        self.out_channels = tuple(info.channels())
        self.out_strides = tuple(info.reduction())
        self.pooled_channels = self.out_channels[-1]
        self._nhwc = getattr(self.encoders["hr"], "output_fmt", "NCHW") == "NHWC"

        self.mma_stages = tuple(sorted(mma_stages)) if fusion == "mma" else ()
        bad = [s for s in self.mma_stages if not 0 <= s < len(self.out_channels)]
        if bad:
            raise ValueError(f"MaRS mma_stages {bad} outside the {len(self.out_channels)} output stages")
        self.mma = nn.ModuleDict({
            str(s): MetaModalityAttention(self.out_channels[s], depth=mma_depth, num_heads=mma_heads,
                                          mlp_ratio=mma_mlp_ratio, drop_path=mma_drop_path, style=mma_style)
            for s in self.mma_stages
        })
        if missing_modality == "placeholder":
            self.placeholders = nn.ParameterDict({  # only where they can be learned: absent modalities
                f"{m}_{s}": nn.Parameter(torch.zeros(1, 1, self.out_channels[s]))
                for s in self.mma_stages for m in self.absent
            })
            for p in self.placeholders.values():
                nn.init.trunc_normal_(p, std=0.02)  # like the released mask token
        self._apply_freeze()

    # -- inputs -------------------------------------------------------------------
    def example_inputs(self, batch: int = 2, size: int = 64) -> dict[str, Tensor]:
        return {m: torch.randn(batch, len(self.modalities[m]), size, size) for m in self.fed}

    def _split_inputs(self, inputs: Tensor | Mapping[str, Any]) -> dict[str, Tensor]:
        if isinstance(inputs, Tensor):
            inputs = {self.fed[0]: inputs}  # a bare tensor is the first fed modality, as the contract says
        given = {m: inputs[m] for m in self.fed if inputs.get(m) is not None}
        missing = [m for m in self.fed if m not in given]
        if missing:
            rest = [m for m in self.fed if m not in missing]
            raise ModalityMismatch(
                f"MaRS expects {list(self.fed)} but got no {missing[0]!r} input; a run without "
                f"{missing[0]!r} declares it with in_modalities={rest or list(given)} (then "
                f"missing_modality={self.missing_modality!r} decides how MaRS runs; EarthMiss protocol)")
        out = {}
        for m, x in given.items():
            if x.dim() == 5:
                if x.shape[1] != 1:
                    raise ValueError(f"MaRS: modality {m!r} is single-date; got {x.shape[1]} dates in "
                                     f"shape {tuple(x.shape)} (pass (B, C, H, W))")
                x = x[:, 0]
            if x.dim() != 4:
                raise ValueError(f"MaRS: modality {m!r} expects (B, C, H, W); got shape {tuple(x.shape)}")
            self.check_bands(m, x)
            out[m] = x
        sizes = {tuple(x.shape[-2:]) for x in out.values()}
        if len(sizes) > 1:
            raise ValueError(f"MaRS: 'hr' and 'sar' must be co-registered with equal H, W; got "
                             f"{ {m: tuple(x.shape[-2:]) for m, x in out.items()} }")
        return out

    # -- forward ------------------------------------------------------------------
    def encode(self, x: Tensor, modality: str) -> list[Tensor]:
        """One encoder's multi-scale maps, NCHW."""
        feats = self.encoders[modality](x)
        return [f.permute(0, 3, 1, 2).contiguous() if self._nhwc else f for f in feats]

    def forward_all(self, inputs: Tensor | Mapping[str, Any]) -> dict[str, tuple[Tensor, ...]]:
        """Per-modality maps (after MMA at its stages) under ``"hr"``/``"sar"`` for each
        modality given, and their per-stage sum under ``"fused"``."""
        xs = self._split_inputs(inputs)
        feats = {m: self.encode(x, m) for m, x in xs.items()}
        fused = []
        for s in range(len(self.out_channels)):
            maps = {m: f[s] for m, f in feats.items()}
            if str(s) in self.mma:
                maps = self._mma(s, maps)
            fused.append(torch.stack(list(maps.values())).sum(0))
            for m in feats:
                feats[m][s] = maps[m]
        out = {m: tuple(f) for m, f in feats.items()}
        out["fused"] = tuple(fused)
        return out

    def _mma(self, stage: int, maps: dict[str, Tensor]) -> dict[str, Tensor]:
        ref = next(iter(maps.values()))
        b, c, h, w = ref.shape
        tokens = {m: x.flatten(2).transpose(1, 2) for m, x in maps.items()}
        intra_only = bool(self.absent) and self.missing_modality == "intra_only"
        if self.absent and self.missing_modality == "placeholder":
            for m in self.absent:
                tokens[m] = self.placeholders[f"{m}_{stage}"].expand(b, h * w, c).to(ref.dtype)
        order = [m for m in self.modalities if m in tokens]
        refined = self.mma[str(stage)]([tokens[m] for m in order], intra_only=intra_only)
        return {m: t.transpose(1, 2).reshape(b, c, h, w) for m, t in zip(order, refined)}

    def forward(self, inputs: Tensor | Mapping[str, Any]) -> tuple[Tensor, ...]:
        return self.forward_all(inputs)["fused"]

    def checkpoint_blocks(self) -> Iterable[nn.Module]:
        """Both encoders' Swin-V2 blocks (the ``blocks`` of each timm stage ``layers_<i>``) and the
        MMA layers. Per block rather than timm's feature-wrapper switch, which checkpoints whole
        stages and skips the last one."""
        for encoder in self.encoders.values():
            for stage in encoder.children():
                yield from getattr(stage, "blocks", ())
        for mma in self.mma.values():
            yield from mma.layers

    # -- weights ------------------------------------------------------------------
    def init_weights(self) -> None:
        super().init_weights()
        for m, path in self.encoder_checkpoints.items():
            if path:
                self.load_encoder_checkpoint(m, path)

    def load_encoder_checkpoint(self, modality: str, path: str, strict: bool | None = None) -> KeyReport:
        """Load an encoder-only state dict (e.g. ``mars_base_sar_encoder_only.pth``) into one encoder."""
        state = plain_to_features_keys(read_state_dict(path))
        report = load_into(self.encoders[modality], state, strict=self.strict if strict is None else strict,
                           source=f"MaRS {modality} encoder checkpoint {path}")
        self.encoder_reports[modality] = report
        return report

    def map_checkpoint_keys(self, state: dict[str, Tensor]) -> dict[str, Tensor]:
        """Accept rsbench's own keys, or a full released pretraining checkpoint (``DualEncoderMaRS``):
        its encoders map to ``encoders.hr|sar``, its ``alternating_attn`` to the last MMA stage
        (matching only with ``mma_style="released"``), and pretraining-only parts are dropped."""
        if not any(k.startswith(tuple(RELEASED_ENCODERS)) for k in state):
            return state
        last = str(self.mma_stages[-1]) if self.mma_stages else "3"
        out: dict[str, Tensor] = {}
        for k, v in state.items():
            if PRETRAIN_ONLY.match(k):
                continue
            prefix = next((p for p in RELEASED_ENCODERS if k.startswith(p)), None)
            if prefix is not None:
                k = "encoders." + RELEASED_ENCODERS[prefix] + "." + next(
                    iter(plain_to_features_keys({k[len(prefix):]: v})))
            else:
                match = re.match(r"^alternating_attn\.(modality|global)_blocks\.(\d+)\.(\d+)\.(.+)$", k)
                if match and match.group(3) in RELEASED_KEY_MAP:
                    kind, i, part, rest = match.groups()
                    layer = 2 * int(i) + (kind == "global")
                    k = f"mma.{last}.layers.{layer}.{RELEASED_KEY_MAP[part]}.{rest}"
            out[k] = v
        return out
