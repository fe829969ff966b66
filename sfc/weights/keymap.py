"""The authors' released models in our zoo: experiment id from `merged_config.yaml`, tensor names and layouts.

Facts from ../shared/spec/released-weights.md. A released network key (below `ema_model.module.model.`) maps
to exactly one key of our SeparationModel; the table is generated from our model's own state dict, so
every tensor of ours has exactly one source and the inverse (ours -> theirs) is the same table read
backwards. Layout changes are pure index permutations or singleton axes, so conversion is exact.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any

import torch

from sfc.errors import UserError
from sfc.experiments import TASKS, Experiment
from sfc.models.config import CA_HEADS, DEFAULT_QUERY, SEPARATOR_DIMS, SFC_DIMS, ModelConfig

# encoder `_target_` class name -> our encoder
ENCODER_CLASSES: dict[str, str] = {
    "CrossAttnEncoder": "sfc_ca",
    "MambaEncoder": "sfc_mamba",
    "BanditEncoder": "band_split",
}
# keys of the encoder's config that the experiment id depends on (spec "Map a folder to an experiment id")
ENCODER_KEYS: dict[str, tuple[str, ...]] = {
    "sfc_ca": (
        "d_inner",
        "n_bands",
        "query_type",
        "learnable_pos_bias",
        "learnable_slope",
        "mask_outside_bands",
    ),
    "sfc_mamba": ("d_inner", "n_bands", "query_type"),
    "band_split": ("n_bands",),
}
# Derived buffers, ignored by name: the Mamba segment indices (integer, identical in every file) inside the
# network, and the STFT windows of their ModelWrapper beside it.
DERIVED_NETWORK_BUFFERS: tuple[str, ...] = ("segment_indices",)
DERIVED_WRAPPER_KEYS: tuple[str, ...] = ("stft.0.window", "istft.window")

Transform = Callable[[torch.Tensor], torch.Tensor]


def _identity(t: torch.Tensor) -> torch.Tensor:
    return t


@dataclass(frozen=True)
class KeyMapping:
    """One tensor: our key, the released key(s) it may sit at, and the layout conversions."""

    ours: str
    candidates: tuple[str, ...]  # released names, the first is canonical
    to_ours: Transform = _identity
    to_theirs: Transform = _identity


# ---------------------------------------------------------------------------------------- config -> id


def _find_dicts(tree: Any, path: str = "") -> Iterator[tuple[str, dict]]:
    if isinstance(tree, Mapping):
        yield path, dict(tree)
        for key, value in tree.items():
            yield from _find_dicts(value, f"{path}.{key}" if path else str(key))
    elif isinstance(tree, list):
        for i, value in enumerate(tree):
            yield from _find_dicts(value, f"{path}[{i}]")


def _single_value(tree: Any, key: str, where: str) -> Any:
    """The one value of ``key`` anywhere in ``tree``; refuses a missing or contradictory key."""
    values = {repr(d[key]): d[key] for _, d in _find_dicts(tree) if key in d}
    if not values:
        raise UserError(f"{where}: key {key!r} not found; the importer needs it")
    if len(values) > 1:
        raise UserError(f"{where}: key {key!r} has conflicting values {sorted(values)}")
    return next(iter(values.values()))


def _encoder_section(tree: Any, where: str) -> tuple[str, str, dict]:
    found = []
    for path, d in _find_dicts(tree):
        target = d.get("_target_")
        if isinstance(target, str) and target.endswith("Encoder"):
            found.append((path, target, d))
    if len(found) != 1:
        names = [t for _, t, _ in found]
        raise UserError(
            f"{where}: expected exactly one encoder `_target_` (one of {sorted(ENCODER_CLASSES)}), "
            f"found {names or 'none'}"
        )
    path, target, section = found[0]
    cls = target.rsplit(".", 1)[-1]
    if cls not in ENCODER_CLASSES:
        raise UserError(
            f"{where}: key {path}._target_ = {target!r}: our zoo has no counterpart "
            f"(known: {sorted(ENCODER_CLASSES)})"
        )
    return path, ENCODER_CLASSES[cls], section


def _pos_bias_variant(section: dict, path: str, where: str) -> str | None:
    learn_bias, learn_slope, mask = (
        section["learnable_pos_bias"],
        section["learnable_slope"],
        section["mask_outside_bands"],
    )
    # ASSUMPTION: the spec lists no key that switches the bias off; a `use_pos_bias: false` (if a
    # release has it) gives the no-bias ablation.
    if section.get("use_pos_bias", True) is False:
        return "nobias"
    if learn_bias and learn_slope:
        raise UserError(
            f"{where}: {path}.learnable_slope = true together with learnable_pos_bias = true: our zoo "
            "learns either the bias matrix or the slope, not both"
        )
    if mask and not learn_bias:
        raise UserError(
            f"{where}: {path}.mask_outside_bands = true needs learnable_pos_bias = true in our zoo"
        )
    if mask:
        return "bandmask"
    if learn_bias:
        return None
    return "learnslope" if learn_slope else "fixedbias"


def _size(n_layers: Any, emb_dim: Any, where: str) -> str:
    for size, dims in SEPARATOR_DIMS.items():
        if (dims["num_layers"], dims["dim"]) == (n_layers, emb_dim):
            return size
    known = {s: (d["num_layers"], d["dim"]) for s, d in SEPARATOR_DIMS.items()}
    raise UserError(
        f"{where}: separator n_layers={n_layers}, emb_dim={emb_dim} is not a size of our zoo "
        f"(size: (n_layers, emb_dim) = {known})"
    )


def experiment_from_config(tree: Any, where: str = "merged_config.yaml") -> Experiment:
    """The experiment id of a released model from its resolved training config.

    Refuses, naming the key, a config our zoo cannot express. Never reads the folder name.
    """
    path, encoder, section = _encoder_section(tree, where)
    for key in ENCODER_KEYS[encoder]:
        if key not in section:
            raise UserError(f"{where}: key {path}.{key} not found; the importer needs it")
    n_src, n_chan = _single_value(tree, "n_src", where), _single_value(tree, "n_chan", where)
    tasks = [t for t in TASKS.values() if (len(t.sources), t.num_channels) == (n_src, n_chan)]
    if not tasks:
        raise UserError(
            f"{where}: n_src={n_src}, n_chan={n_chan} match no task of ours "
            f"({ {t.name: (len(t.sources), t.num_channels) for t in TASKS.values()} })"
        )
    size = _size(
        _single_value(tree, "n_layers", where), _single_value(tree, "emb_dim", where), where
    )
    variants: list[str] = []
    if encoder != "band_split":
        if section["d_inner"] != SFC_DIMS[encoder][size]:
            raise UserError(
                f"{where}: {path}.d_inner = {section['d_inner']}, but our {encoder} {size} uses "
                f"{SFC_DIMS[encoder][size]}"
            )
        query = section["query_type"]
        if query not in ("learnable", "adaptive"):
            raise UserError(
                f"{where}: {path}.query_type = {query!r} is not 'learnable' or 'adaptive'"
            )
        if query != DEFAULT_QUERY[encoder]:
            variants.append("adaptive" if encoder == "sfc_ca" else "learnable")
    if encoder == "sfc_ca":
        bias = _pos_bias_variant(section, path, where)
        variants += [bias] if bias else []
    # ASSUMPTION: SFC-Mamba releases use the default middle query placement (no key in the spec).
    for key, ours in (("n_fft", 2048), ("hop_length", 512), ("sample_rate", 44100)):
        values = {repr(d[key]) for _, d in _find_dicts(tree) if key in d}
        if values and values != {repr(ours)}:
            raise UserError(f"{where}: {key} = {sorted(values)}, our models use {ours}")
    num_bands = section["n_bands"]
    if not isinstance(num_bands, int) or isinstance(num_bands, bool):
        raise UserError(f"{where}: {path}.n_bands = {num_bands!r} is not an integer")
    exp = Experiment(tasks[0].name, encoder, size, num_bands, variants=tuple(variants))
    exp.model_config()  # validates K and the combination
    return exp


# ----------------------------------------------------------------------------------------- key table


def _band_split_perms(config: ModelConfig) -> tuple[list[torch.Tensor], list[torch.Tensor]]:
    """Index permutations ours[i] = theirs[perm[i]] for the band-split input and output layouts."""
    from sfc.bands import musical_bands

    chans, srcs = config.num_channels, config.num_sources
    enc, dec = [], []
    for start, end in musical_bands(config.num_bands, config.n_fft, config.sample_rate):
        w = end - start
        # ours: (re/im, channel, bin); theirs: (channel, re/im, bin)
        ri, c, b = torch.meshgrid(
            torch.arange(2), torch.arange(chans), torch.arange(w), indexing="ij"
        )
        enc.append((c * 2 * w + ri * w + b).flatten())
        # ours per GLU half: ((re/im, source, channel), bin); theirs: ((source, channel), bin, re/im).
        # ASSUMPTION: the GLU halves are outermost in both (nn.GLU splits the last axis in two).
        ri, n, c, b = torch.meshgrid(
            torch.arange(2),
            torch.arange(srcs),
            torch.arange(chans),
            torch.arange(w),
            indexing="ij",
        )
        half = (((n * chans + c) * w + b) * 2 + ri).flatten()
        dec.append(torch.cat([half, half + half.numel()]))
    return enc, dec


def _permute(perm: torch.Tensor, dim: int) -> tuple[Transform, Transform]:
    inverse = torch.argsort(perm)
    return (lambda t: t.index_select(dim, perm)), (lambda t: t.index_select(dim, inverse))


_SEPARATOR_PARTS = {
    "norms.0.weight": "ffn_norm.1.gamma",  # before the first FFN (their lists are reversed)
    "norms.1.weight": "attn_norm.gamma",
    "norms.2.weight": "ffn_norm.0.gamma",
    "attn.qkv.weight": "attn.qkv.weight",
    "attn.proj.weight": "attn.aggregate_heads.0.weight",
}
_FFN = {"ffn1": "ffn.1", "ffn2": "ffn.0", "conv": "conv1d", "deconv": "deconv1d"}
_CA_BLOCK = {
    "norm_kv.weight": "norm_attn_kv.weight",
    "norm_q.weight": "norm_attn_q.weight",
    "norm_ffn.weight": "norm_ffn.weight",
    "attn.to_q.weight": "mixer.q_proj.weight",
    "attn.proj.weight": "mixer.aggregate_heads.0.weight",
}
_SFC_FIXED = {
    "encoder.input_conv.weight": "encoder.input_conv.0.weight",
    "encoder.input_conv.bias": "encoder.input_conv.0.bias",
    "encoder.input_norm.weight": "encoder.input_conv.2.weight",
    "encoder.output_conv.weight": "encoder.output_conv.0.weight",
    "encoder.output_conv.bias": "encoder.output_conv.0.bias",
    "encoder.output_norm.weight": "encoder.output_conv.2.weight",
    "encoder.query.query": "encoder.query",
    "encoder.query.weight": "encoder.freq_weights",
    "decoder.query.query": "decoder.query",
    "decoder.query.norm.weight": "decoder.query_mlp.0.weight",
}


def _separator_key(key: str) -> str | None:
    m = re.fullmatch(r"separator\.(freq|time)_paths\.(\d+)\.(.+)", key)
    if not m:
        return None
    path, layer, rest = m.groups()
    prefix = f"blocks.{layer}.{'freq_path' if path == 'freq' else 'frame_path'}."
    if rest in _SEPARATOR_PARTS:
        return prefix + _SEPARATOR_PARTS[rest]
    f = re.fullmatch(r"(ffn[12])\.(conv|deconv)\.(weight|bias)", rest)
    return prefix + f"{_FFN[f.group(1)]}.{_FFN[f.group(2)]}.{f.group(3)}" if f else None


def _kv_perm(dim: int, heads: int) -> torch.Tensor:
    """ours[i] = theirs[perm[i]] for the rows of the fused key/value projection.

    Theirs: [k; v] = H W_kv, each half then split into heads (spec: "kv fused: k then v"), rows (k/v,
    head, d). Ours splits the fused output into heads first, then each head's slice into k and v: rows
    (head, k/v, d). Same function, rows permuted.
    """
    head = dim // heads
    h, j, d = torch.meshgrid(
        torch.arange(heads), torch.arange(2), torch.arange(head), indexing="ij"
    )
    return (j * dim + h * head + d).flatten()


def _sfc_key(key: str, config: ModelConfig) -> tuple[tuple[str, ...], Transform, Transform] | None:
    if key in _SFC_FIXED:
        return (_SFC_FIXED[key],), _identity, _identity
    m = re.fullmatch(r"(encoder|decoder)\.(.+)", key)
    if not m:
        return None
    part, rest = m.groups()
    if part == "decoder" and re.fullmatch(r"(input|output)_conv\.(weight|bias)", rest):
        return (key,), _identity, _identity
    q = re.fullmatch(r"query\.mlp\.fc_(in|out)\.(weight|bias)", rest)
    if part == "decoder" and q:
        linear = "linear1" if q.group(1) == "in" else "linear2"
        return (f"decoder.query_mlp.1.{linear}.{q.group(2)}",), _identity, _identity
    b = re.fullmatch(r"block\.(.+)", rest)
    if not b:
        return None
    sub = b.group(1)
    if sub in _CA_BLOCK:
        return (f"{part}.block.{_CA_BLOCK[sub]}",), _identity, _identity
    if sub == "attn.to_kv.weight":
        perm = _kv_perm(SFC_DIMS["sfc_ca"][config.size], CA_HEADS[config.size])
        return ((f"{part}.block.mixer.kv_proj.weight",), *_permute(perm, 0))
    if sub == "attn.bias":  # ours (H, L_q, L_kv), theirs (1, H, L_q, L_kv)
        return (f"{part}.block.mixer.pos_bias.pos_bias",), (lambda t: t[0]), (lambda t: t[None])
    if sub == "attn.slope":  # ours (H,), theirs (H, 1, 1)
        return (
            (f"{part}.block.mixer.pos_bias.slope",),
            (lambda t: t.reshape(-1)),
            (lambda t: t.view(-1, 1, 1)),
        )
    f = re.fullmatch(r"mlp\.fc_(in|out)\.(weight|bias)", sub)
    if f:
        linear = "linear1" if f.group(1) == "in" else "linear2"
        return (f"{part}.block.feed_forward.{linear}.{f.group(2)}",), _identity, _identity
    s = re.fullmatch(r"(forward|backward)_scan\.(norm|mamba)\.(.+)", sub)
    if s:
        direction, what, name = s.groups()
        tail = f"{direction}_block.{'norm' if what == 'norm' else 'mixer'}.{name}"
        # ASSUMPTION: the spec names these `forward_block.*` below the encoder/decoder without saying
        # whether a `block.` level sits between; either is accepted (exactly one must be present).
        return (f"{part}.block.{tail}", f"{part}.{tail}"), _identity, _identity
    return None


def _band_split_key(key: str, perms) -> tuple[tuple[str, ...], Transform, Transform] | None:
    enc_perms, dec_perms = perms
    m = re.fullmatch(r"encoder\.(norms|projs)\.(\d+)\.(weight|bias)", key)
    if m:
        kind, k, name = m.group(1), int(m.group(2)), m.group(3)
        theirs = f"encoder.norm_fc_modules.{k}.{'norm' if kind == 'norms' else 'fc'}.{name}"
        if kind == "projs" and name == "bias":
            return (theirs,), _identity, _identity
        return ((theirs,), *_permute(enc_perms[k], 0 if kind == "norms" else 1))
    m = re.fullmatch(r"decoder\.mlps\.(\d+)\.([013])\.(weight|bias)", key)
    if m:
        k, layer, name = int(m.group(1)), m.group(2), m.group(3)
        part = {"0": "norm", "1": "hidden.0", "3": "output.0"}[layer]
        theirs = (f"decoder.norm_mlp.{k}.{part}.{name}",)
        if layer == "3":
            return (theirs, *_permute(dec_perms[k], 0))  # theirs is a 1-tuple here
        return theirs, _identity, _identity
    return None


def key_table(config: ModelConfig, state_dict: Mapping[str, torch.Tensor]) -> list[KeyMapping]:
    """The mapping of every tensor of our model (``state_dict``) to its released name and layout."""
    if config.separator != "tf_locoformer" or not config.band_locality:
        raise UserError("the released models are TF-Locoformer models with band locality")
    perms = _band_split_perms(config) if config.encoder == "band_split" else None
    table = []
    for key in state_dict:
        sep = _separator_key(key)
        if sep is not None:
            table.append(KeyMapping(key, (sep,)))
            continue
        found = _band_split_key(key, perms) if perms else _sfc_key(key, config)
        if found is None:
            raise UserError(f"internal: no released name for our tensor {key!r}")  # a zoo change
        table.append(KeyMapping(key, *found))
    return table


def to_released(model: torch.nn.Module) -> dict[str, torch.Tensor]:
    """Our model's tensors under the released names and layouts (below `ema_model.module.model.`)."""
    state = model.state_dict()
    return {
        m.candidates[0]: m.to_theirs(state[m.ours]).clone() for m in key_table(model.config, state)
    }
