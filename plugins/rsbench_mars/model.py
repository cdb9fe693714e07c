"""The MaRS backbone: two timm Swin-V2 encoders (VHR optical and VHR SAR), fused per stage.

Encoders are timm ``features_only`` models built exactly like the released downstream code
(``timm.create_model('swinv2_base_window8_256', features_only=True, img_size=512,
in_chans=3 | 1)``), so the official ``mars_base_rgb_encoder_only.pth`` and
``mars_base_sar_encoder_only.pth`` load into them key for key, one file per part
(``encoder_checkpoints={"rgb": ..., "sar": ...}``, CLI ``--checkpoint rgb=FILE``).
``pretrained=False`` always: rsbench never downloads weights.

Two fusions: ``"sum"`` (the released downstream code: the two encoders' maps summed per
stage) and ``"mma"`` (Meta-Modality Attention at the last stage, as in pretraining; its
weights exist only in a full pretraining checkpoint, so a run that loads weights without them
is refused unless ``accept_initialised_mma=True``).

Input rule: ``{"hr": (B, 3, H, W), "sar": (B, 1, H, W)}`` of equal H and W, multiples of 32.
The encoders are built with ``strict_img_size=False`` (timm computes shifted-window masks per
input), so sizes other than ``img_size`` run; window partitions are zero-padded wherever a
stage map is not a multiple of the window (for the paper size, H and W multiples of 256 avoid
padding; 512 x 512 is the pretraining size). The two images may be of different dates
(e.g. optical pre-event, SAR post-event): MaRS only needs them co-registered. Only the
encoders of the modalities a run feeds are built.
"""

from __future__ import annotations

import logging
import re
import warnings
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import torch
from mmengine.logging import print_log
from mmengine.registry import MODELS as ROOT_MODELS
from torch import Tensor, nn

from rsbench.errors import CheckpointError, ModalityMismatch
from rsbench.io.checkpoint import KeyReport, load_into, loaded_from, read_state_dict
from rsbench.plugin_api.backbone import RSBackbone
from rsbench_mars.mma import RELEASED_KEY_MAP, MetaModalityAttention

MODALITIES: dict[str, tuple[str, ...]] = {"hr": ("R", "G", "B"), "sar": ("SAR",)}
FUSIONS = ("sum", "mma")
MISSING = ("intra_only", "placeholder")
PAPER_ENCODER: dict[str, Any] = dict(model_name="swinv2_base_window8_256", img_size=512)
#: Weight-file parts (``--checkpoint rgb=FILE``) -> the modality whose encoder each fills.
PARTS = {"rgb": "hr", "sar": "sar"}
PART_ALIASES = {"hr": "rgb"}
#: Released pretraining checkpoint prefixes (``DualEncoderMaRS``) -> modality.
RELEASED_ENCODERS = {"encoder_rgb.encoder.": "hr", "encoder_sar.encoder.": "sar"}
#: Parts of a released pretraining checkpoint with no downstream role (mask tokens, pixel
#: decoders, the frozen teacher, the contrastive temperature, the classifier head).
PRETRAIN_ONLY = re.compile(
    r"^(teacher_encoder\.|decoder_rgb\.|decoder_sar\.|contrast_temp$|encoder_(rgb|sar)\.mask_token$"
    r"|encoder_(rgb|sar)\.encoder\.head\.)"
)
#: Swin-V2 buffers computed from the window geometry; timm keeps them out of state dicts and
#: its own checkpoint filter drops them from older files.
GEOMETRY_BUFFERS = ("relative_position_index", "relative_coords_table", "attn_mask")


def build_encoder(in_chans: int, model_name: str, out_indices: Sequence[int] = (0, 1, 2, 3),
                  **timm_kwargs: Any) -> nn.Module:
    """A timm ``features_only`` encoder; its state dict keys equal the released encoder-only files."""
    import timm

    if timm_kwargs.pop("pretrained", False):
        raise ValueError("MaRS encoders never download weights: pass encoder_checkpoints={'rgb': ..., 'sar': ...}")
    timm_kwargs.setdefault("strict_img_size", False)
    return timm.create_model(model_name, pretrained=False, features_only=True, in_chans=in_chans,
                             out_indices=tuple(out_indices), **timm_kwargs)


def plain_to_features_keys(state: Mapping[str, Tensor]) -> dict[str, Tensor]:
    """Rename plain timm Swin keys (``layers.0.``) to ``features_only`` ones (``layers_0.``)."""
    return {re.sub(r"^layers\.(\d+)\.", r"layers_\1.", k): v for k, v in state.items()}


def encoder_state(state: Mapping[str, Tensor], modality: str) -> tuple[dict[str, Tensor], list[str]]:
    """One encoder's weights in timm ``features_only`` names, and the file's keys left out, from
    any file that holds them: an official encoder-only file (as is), a plain timm Swin state dict
    (renamed, final norm and head dropped, as the released converter does), or a whole MaRS
    checkpoint, released (``encoder_rgb.encoder.``) or rsbench's (``encoders.hr.``), whose part
    for ``modality`` is taken."""
    left_out: list[str] = []
    for prefix in (f"encoders.{modality}.", *(p for p, m in RELEASED_ENCODERS.items() if m == modality)):
        if any(k.startswith(prefix) for k in state):
            left_out = [k for k in state if not k.startswith(prefix)]
            state = {k[len(prefix):]: v for k, v in state.items() if k.startswith(prefix)}
            break
    out = {}
    for k, v in plain_to_features_keys(state).items():
        if k.startswith(("norm.", "head.")):
            left_out.append(k)
        else:
            out[k] = v
    return out, left_out


def drop_geometry_buffers(state: Mapping[str, Tensor], own: Iterable[str]) -> dict[str, Tensor]:
    own = set(own)
    return {k: v for k, v in state.items() if k in own or k.rsplit(".", 1)[-1] not in GEOMETRY_BUFFERS}


@ROOT_MODELS.register_module(name="RSBMaRS")
class MaRS(RSBackbone):
    """MaRS: per-modality Swin-V2 encoders, summed per stage, optionally with MMA.

    Args:
        encoder: timm arguments shared by both encoders (``model_name`` plus overrides such as
            ``img_size``, ``embed_dim``, ``depths``, ``drop_path_rate``).
        fusion: ``"sum"`` (per-stage sum of the encoders' maps, the released downstream code;
            no MMA parameters) or ``"mma"`` (MMA at ``mma_stages``, then the two modalities'
            maps are summed per stage).
        mma_stages: output indices where MMA runs (default: the last stage, as in pretraining).
        mma_depth, mma_heads, mma_mlp_ratio: see :mod:`rsbench_mars.mma`.
        mma_style: ``"released"`` (default: the released pretraining graph, whose full
            checkpoints load: each encoder's final LayerNorm, then ``x + MLP(MHA(LN x))``
            blocks) or ``"post"`` (the paper's wording, ``LN(x + MHA)``, ``LN(x + MLP)``).
        missing_modality: how MaRS runs when ``in_modalities`` (the rsbench contract's
            declaration of what a run feeds) leaves a modality out (EarthMiss):
            ``"intra_only"`` (default: the present modality alone; MMA's joint layers not built) or
            ``"placeholder"`` (a learned token per MMA stage stands in for every token of the
            absent modality, so joint layers run as with both; fusion ``"mma"`` only; learned
            in the run that lacks the modality). The absent modality's encoder is not built.
            A modality that is declared (or, with no ``in_modalities``, any of the two) but
            missing from the input is an error: absence is configured, never accidental.
        encoder_checkpoints: weight files by part, ``{"rgb": path, "sar": path}`` (``"hr"`` is
            an alias of ``"rgb"``): the official encoder-only files (or any file holding one
            encoder, see :func:`encoder_state`), each loaded strictly with a key report.
        rgb_checkpoint, sar_checkpoint: the same, one keyword per part.
        accept_initialised_mma: with ``fusion="mma"``, run even though weights were loaded and
            MMA stayed at initialisation (refused otherwise: the released encoder files hold no
            MMA, and the released downstream code uses none).
    """

    checkpoint_parts: tuple[str, ...] = tuple(PARTS)
    checkpoint_part_aliases: Mapping[str, str] = PART_ALIASES

    def __init__(
        self,
        encoder: Mapping[str, Any] = PAPER_ENCODER,
        fusion: str = "sum",
        mma_stages: Sequence[int] = (3,),
        mma_depth: int = 2,
        mma_heads: int = 8,
        mma_mlp_ratio: float = 4.0,
        mma_style: str = "released",
        mma_drop_path: float = 0.0,
        missing_modality: str = "intra_only",
        out_indices: Sequence[int] = (0, 1, 2, 3),
        rgb_checkpoint: str | None = None,
        sar_checkpoint: str | None = None,
        accept_initialised_mma: bool = False,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        if fusion not in FUSIONS:
            raise ValueError(f"MaRS fusion must be one of {FUSIONS}; got {fusion!r}")
        if missing_modality not in MISSING:
            raise ValueError(f"MaRS missing_modality must be one of {MISSING}; got {missing_modality!r}")
        if missing_modality == "placeholder" and fusion != "mma":
            raise ValueError("MaRS missing_modality='placeholder' needs fusion='mma' (placeholders are MMA tokens)")
        for part, path in (("rgb", rgb_checkpoint), ("sar", sar_checkpoint)):
            if path:  # the per-part keywords join encoder_checkpoints
                have = {self.checkpoint_part_aliases.get(k, k): v for k, v in self.encoder_checkpoint_paths.items()}
                if have.get(part, str(path)) != str(path):
                    raise CheckpointError(f"MaRS: two files for part {part!r}: {have[part]} and {path} "
                                          f"({part}_checkpoint=)")
                self.encoder_checkpoint_paths.setdefault(part, str(path))
        self.part_checkpoints()  # part names checked at build time
        self.modalities = dict(MODALITIES)
        declared = getattr(self, "in_modalities", None)
        unknown = sorted(set(declared or ()) - set(self.modalities))
        if unknown:
            raise ValueError(f"MaRS takes modalities {list(self.modalities)}; in_modalities has {unknown}")
        #: The modalities this run feeds; the others are absent by configuration (not built).
        self.fed = tuple(m for m in self.modalities if m in declared) if declared else tuple(self.modalities)
        self.absent = tuple(m for m in self.modalities if m not in self.fed)
        self.fusion = fusion
        self.missing_modality = missing_modality
        #: An absent modality and no placeholder: MMA's joint layers are off the path (not built).
        self._intra_only = bool(self.absent) and missing_modality == "intra_only"
        self.accept_initialised_mma = accept_initialised_mma
        self.encoder_reports: dict[str, KeyReport] = {}

        enc = dict(encoder)
        model_name = enc.pop("model_name")
        self.encoders = nn.ModuleDict({
            m: build_encoder(len(self.modalities[m]), model_name, out_indices, **dict(enc)) for m in self.fed
        })
        info = self.encoders[self.fed[0]].feature_info
        self.out_channels = tuple(info.channels())
        self.out_strides = tuple(info.reduction())
        self.pooled_channels = self.out_channels[-1]
        self._nhwc = getattr(self.encoders[self.fed[0]], "output_fmt", "NCHW") == "NHWC"

        self.mma_stages = tuple(sorted(mma_stages)) if fusion == "mma" else ()
        bad = [s for s in self.mma_stages if not 0 <= s < len(self.out_channels)]
        if bad:
            raise ValueError(f"MaRS mma_stages {bad} outside the {len(self.out_channels)} output stages")
        self.mma = nn.ModuleDict({
            str(s): MetaModalityAttention(self.out_channels[s], depth=mma_depth, num_heads=mma_heads,
                                          mlp_ratio=mma_mlp_ratio, drop_path=mma_drop_path, style=mma_style,
                                          joint=not self._intra_only)
            for s in self.mma_stages
        })
        last = len(self.out_channels) - 1
        if mma_style == "released" and last in self.mma_stages:
            # The released pretraining runs MMA on each encoder's output after its final norm.
            self.final_norms = nn.ModuleDict({m: nn.LayerNorm(self.out_channels[last]) for m in self.fed})
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
        if hasattr(self, "final_norms") and stage == len(self.out_channels) - 1:
            tokens = {m: self.final_norms[m](t) for m, t in tokens.items()}
        if self.absent and self.missing_modality == "placeholder":
            for m in self.absent:
                tokens[m] = self.placeholders[f"{m}_{stage}"].expand(b, h * w, c).to(ref.dtype)
        order = [m for m in self.modalities if m in tokens]
        refined = self.mma[str(stage)]([tokens[m] for m in order])
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
            yield from mma.blocks()

    # -- weights ------------------------------------------------------------------
    def load_part(self, part: str, path: str) -> KeyReport:
        """Load one encoder's file (e.g. ``mars_base_sar_encoder_only.pth`` as part ``sar``),
        strictly unless ``strict=False``; the file's final norm and head (dropped by the released
        converter too) and geometry buffers are reported as not used."""
        part = self.checkpoint_part_aliases.get(part, part)
        modality = PARTS[part]
        if modality not in self.fed:
            print_log(f"MaRS: {part} encoder file {path} not loaded: this run feeds no {modality!r} input "
                      "(its encoder is not built)", logger="current", level=logging.WARNING)
            return KeyReport(not_used=[str(path)])
        target = self.encoders[modality]
        taken, left_out = encoder_state(read_state_dict(path), modality)
        state = drop_geometry_buffers(taken, target.state_dict())
        try:
            report = load_into(target, state, strict=self.strict, source=f"MaRS {part} encoder file {path}",
                               path=str(path), not_used=left_out + sorted(set(taken) - set(state)))
        except CheckpointError as err:
            raise CheckpointError(f"{err}{self._channels_hint(part, state)}") from err
        self.weight_sources.append(str(path))
        self.encoder_reports[part] = report
        return report

    def _channels_hint(self, part: str, state: Mapping[str, Tensor]) -> str:
        weight = state.get("patch_embed.proj.weight")
        want = len(self.modalities[PARTS[part]])
        if weight is None or weight.dim() != 4 or weight.shape[1] == want:
            return ""
        other = next((p for p, m in PARTS.items() if len(self.modalities[m]) == weight.shape[1]), None)
        return (f"; the file's encoder takes {weight.shape[1]} input channel(s), the {part} encoder {want}"
                + (f": is it the {other} file (--checkpoint {other}=FILE)?" if other else ""))

    def load_checkpoint(self, path: str, strict: bool | None = None) -> KeyReport:
        """A whole MaRS checkpoint (rsbench's keys, or a released pretraining checkpoint); a file
        holding one encoder is refused, naming the ``--checkpoint PART=FILE`` to use instead.
        Keys of modules this run does not build are reported as not used."""
        raw = read_state_dict(path)
        if "patch_embed.proj.weight" in raw:
            chans = raw["patch_embed.proj.weight"].shape[1]
            part = next((p for p, m in PARTS.items() if len(self.modalities[m]) == chans), "rgb")
            raise CheckpointError(
                f"checkpoint {path} holds one MaRS encoder (timm features_only keys such as "
                f"{next(iter(raw))}; {chans} input channel(s): the {part} encoder), not a whole MaRS model: "
                f"pass it as encoder_checkpoints={{'{part}': ...}} (CLI: --checkpoint {part}=FILE)")
        state, not_used = self.split_checkpoint(raw)
        self.key_report = load_into(self, state, strict=self.strict if strict is None else strict,
                                    source=f"checkpoint {path}", path=str(path), not_used=not_used)
        self.weight_sources.append(str(path))
        return self.key_report

    def map_checkpoint_keys(self, state: dict[str, Tensor]) -> dict[str, Tensor]:
        return self.split_checkpoint(state)[0]

    def split_checkpoint(self, state: Mapping[str, Tensor]) -> tuple[dict[str, Tensor], list[str]]:
        """``(state in this model's names, keys left out)``. Takes rsbench's own keys, or a full
        released pretraining checkpoint (``DualEncoderMaRS``): its encoders map to
        ``encoders.hr|sar``, their final norms to ``final_norms`` and its ``alternating_attn`` to
        the last MMA stage (``mma_style="released"``); pretraining-only parts are left out. So
        are the parts this model does not build: the encoder of an absent modality, MMA's joint
        layers when that modality has no placeholder, and MMA with its norms under
        ``fusion="sum"`` (as the released converter leaves MMA out of the encoder-only files)."""
        state, dropped = dict(state), []
        if any(k.startswith(tuple(RELEASED_ENCODERS)) for k in state):
            dropped = [k for k in state if PRETRAIN_ONLY.match(k)]
            state = self._map_released({k: v for k, v in state.items() if not PRETRAIN_ONLY.match(k)})
        off = [f"encoders.{m}." for m in self.absent] + [f"final_norms.{m}." for m in self.absent]
        if not self.mma:
            off += ["mma.", "final_norms."]
        joint = re.compile(r"^mma\.\d+\.layers\.(\d+)\.")
        built = {}
        for k, v in state.items():
            match = joint.match(k)
            if k.startswith(tuple(off)) or (self._intra_only and match and int(match.group(1)) % 2 == 1):
                dropped.append(k)
            else:
                built[k] = v
        kept = drop_geometry_buffers(built, self.state_dict())
        return kept, sorted(dropped + [k for k in built if k not in kept])

    def _map_released(self, state: dict[str, Tensor]) -> dict[str, Tensor]:
        last = str(self.mma_stages[-1]) if self.mma_stages else str(len(self.out_channels) - 1)
        out: dict[str, Tensor] = {}
        for k, v in state.items():
            prefix = next((p for p in RELEASED_ENCODERS if k.startswith(p)), None)
            if prefix is not None:
                modality, rest = RELEASED_ENCODERS[prefix], k[len(prefix):]
                if rest.startswith("norm."):
                    k = f"final_norms.{modality}.{rest[len('norm.'):]}"
                else:
                    k = f"encoders.{modality}." + next(iter(plain_to_features_keys({rest: v})))
            else:
                match = re.match(r"^alternating_attn\.(modality|global)_blocks\.(\d+)\.(\d+)\.(.+)$", k)
                if match and match.group(3) in RELEASED_KEY_MAP:
                    kind, i, part, rest = match.groups()
                    layer = 2 * int(i) + (kind == "global")
                    k = f"mma.{last}.layers.{layer}.{RELEASED_KEY_MAP[part]}.{rest}"
            out[k] = v
        return out

    def warn_if_initialised(self) -> dict[str, Any]:
        """Before the base's warning: MMA at initialisation is refused once weights were given
        (unless ``accept_initialised_mma``, then the base warns) and warned about without any
        weights (unless accepted: pretraining): the numbers would not be MaRS' with its MMA."""
        fresh = {n: p.numel() for n, p in self.named_parameters()
                 if n.startswith(("mma.", "final_norms.")) and loaded_from(p) is None}
        given = ([self.checkpoint] if self.checkpoint else []) + [
            f"{p}={f}" for p, f in self.part_checkpoints().items()]
        if fresh and not self.accept_initialised_mma:
            what = (f"MaRS with Meta-Modality Attention: {sum(fresh.values()):,} MMA parameters "
                    f"({next(iter(fresh))}, ...) stay at initialisation")
            if given:
                raise CheckpointError(
                    f"{what}: the weights given ({', '.join(given)}) hold no MMA (the released encoder-only "
                    "files have none; the released downstream code sums the two encoders per stage). Use the "
                    "sum preset (mars / mars-tiny), give a full MaRS pretraining checkpoint (--checkpoint FILE), "
                    "or pass accept_initialised_mma=True to train MMA from scratch")
            message = f"{what} (no weights given at all); results are not MaRS' pretrained MMA"
            warnings.warn(message, UserWarning, stacklevel=2)
            print_log(message, logger="current", level=logging.WARNING)
        return super().warn_if_initialised()
