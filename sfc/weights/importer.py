"""Import a released model folder (`merged_config.yaml` + `checkpoints/*.ckpt`) into one sfc model file.

As the authors load them for separation (spec released-weights.md): the plain mean of every checkpoint
except `last.ckpt`, the EMA copy (`ema_model.module.*`), the network below its `model.` prefix. Every
network tensor is consumed exactly once (derived buffers ignored by name), shape-checked and loaded
strictly into the model of the experiment id that the config describes.
"""

from __future__ import annotations

import pickle
from pathlib import Path
from typing import Any

import torch
import yaml
from tqdm import tqdm

from sfc.errors import UserError
from sfc.models.config import ModelConfig
from sfc.provenance import atomic_file, provenance, sha256
from sfc.weights.keymap import (
    DERIVED_NETWORK_BUFFERS,
    DERIVED_WRAPPER_KEYS,
    experiment_from_config,
    key_table,
)

EMA_PREFIX = "ema_model.module."
RAW_PREFIX = "model."
NETWORK = "model."  # below the task prefix: their ModelWrapper holds the network at `model.`
# The allow-list beyond torch's weights_only defaults (tensors, dicts, lists, strings, numbers). Lightning's
# own entries (epoch, loops, callbacks, optimizer states) are plain containers, so none is needed; a class
# of theirs (hyper-parameters as an omegaconf object, ...) is refused with its name, never unpickled.
# torch cannot rebuild a defaultdict under weights_only at all, so the list stays empty until a real
# file shows what it needs. ASSUMPTION: the released files hold no such object (untested without them).
SAFE_GLOBALS: tuple[Any, ...] = ()


def load_checkpoint(path: Path) -> dict[str, Any]:
    """Unpickle a Lightning checkpoint with ``weights_only=True`` and SAFE_GLOBALS only."""
    try:
        with torch.serialization.safe_globals(list(SAFE_GLOBALS)):
            ckpt = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as err:
        lines = [ln.strip() for ln in str(err).splitlines() if ln.strip()]
        hits = [ln for ln in lines if "global" in ln.lower() or "SETITEM" in ln]
        first = hits[0] if hits else type(err).__name__
        raise UserError(
            f"{path}: refusing to unpickle an object outside the weights-only allow-list ({first}); "
            "the importer never runs torch.load(weights_only=False) on downloaded files"
        ) from err
    except Exception as err:  # noqa: BLE001 - a corrupt or truncated file is the user's input
        raise UserError(f"{path}: cannot read checkpoint: {err}") from err
    if not isinstance(ckpt, dict) or not isinstance(ckpt.get("state_dict"), dict):
        raise UserError(f"{path}: not a Lightning checkpoint (no 'state_dict' dict)")
    return ckpt


def checkpoint_files(folder: Path) -> tuple[list[Path], list[Path]]:
    """(averaged, excluded) checkpoint files of a released folder: all `*.ckpt` but `last.ckpt`."""
    ckpt_dir = folder / "checkpoints"
    files = sorted(ckpt_dir.glob("*.ckpt")) if ckpt_dir.is_dir() else []
    used = [p for p in files if p.name != "last.ckpt"]
    if not used:
        raise UserError(
            f"{folder}: no checkpoints to average in {ckpt_dir} (expected epoch=*.ckpt beside last.ckpt)"
        )
    return used, [p for p in files if p.name == "last.ckpt"]


def network_tensors(state: dict[str, Any], path: Path, use_ema: bool) -> dict[str, torch.Tensor]:
    """The network's tensors of one checkpoint, keys below the chosen copy's `model.` prefix."""
    prefix = EMA_PREFIX if use_ema else RAW_PREFIX
    if not any(k.startswith(prefix) for k in state):
        raise UserError(
            f"{path}: no '{prefix}*' tensors"
            + (" (no EMA copy; pass --no-ema to import the raw weights)" if use_ema else "")
        )
    out = {}
    for key, value in state.items():
        if not key.startswith(prefix):
            continue  # the other copy and `ema_model.n_averaged`
        sub = key[len(prefix) :]
        if sub.startswith(NETWORK):
            name = sub[len(NETWORK) :]
            if name.rsplit(".", 1)[-1] not in DERIVED_NETWORK_BUFFERS:
                out[name] = value
        elif sub not in DERIVED_WRAPPER_KEYS:
            raise UserError(f"{path}: unexpected tensor {key!r} (neither network nor STFT window)")
    return out


def average_checkpoints(files: list[Path], use_ema: bool = True) -> dict[str, torch.Tensor]:
    """Plain mean of each network tensor over ``files`` (accumulated in float64, stored as loaded)."""
    sums: dict[str, torch.Tensor] = {}
    dtypes: dict[str, torch.dtype] = {}
    for path in tqdm(files, desc="average checkpoints", unit="ckpt", leave=False):
        tensors = network_tensors(load_checkpoint(path)["state_dict"], path, use_ema)
        if sums and set(tensors) != set(sums):
            diff = sorted(set(tensors) ^ set(sums))[:5]
            raise UserError(f"{path}: its tensors differ from {files[0].name}'s (e.g. {diff})")
        for key, value in tensors.items():
            if not torch.is_tensor(value) or not value.is_floating_point():
                raise UserError(f"{path}: network entry {key!r} is not a floating-point tensor")
            dtypes[key] = value.dtype
            sums[key] = sums[key] + value.double() if key in sums else value.double()
    return {k: (v / len(files)).to(dtypes[k]) for k, v in sums.items()}


def convert(
    config: ModelConfig, tensors: dict[str, torch.Tensor], where: str
) -> tuple[torch.nn.Module, list[str]]:
    """Build our model for ``config`` and load the released ``tensors`` into it strictly."""
    from sfc.models.registry import build_model

    model = build_model(config)
    ours = model.state_dict()
    unused, state, errors = dict(tensors), {}, []
    for m in key_table(config, ours):
        present = [c for c in m.candidates if c in unused]
        if len(present) != 1:
            what = "missing" if not present else f"present under several names {present}"
            errors.append(f"{m.candidates[0]} {what} (our {m.ours})")
            continue
        raw = unused.pop(present[0])
        try:
            value = m.to_ours(raw)
        except (IndexError, RuntimeError):  # a permutation or reshape that cannot fit this shape
            value = None
        if value is None or value.shape != ours[m.ours].shape:
            errors.append(
                f"{present[0]}: shape {tuple(raw.shape)} does not fit our {m.ours} "
                f"{tuple(ours[m.ours].shape)}"
            )
            continue
        state[m.ours] = value.to(ours[m.ours].dtype)
    errors += [f"{k}: no counterpart in our model" for k in sorted(unused)]
    if errors:
        shown = "\n  ".join(errors[:20]) + (
            f"\n  ... {len(errors) - 20} more" if len(errors) > 20 else ""
        )
        raise UserError(f"{where}: the released tensors do not fit {config}:\n  {shown}")
    model.load_state_dict(state, strict=True)
    return model.eval(), sorted(tensors)


def check_forward(model: torch.nn.Module) -> None:
    """One forward pass on a second of noise: the model runs and its output is finite."""
    mix = torch.randn(
        1, model.num_channels, model.sample_rate, generator=torch.Generator().manual_seed(0)
    )
    with torch.no_grad():
        out = model(0.1 * mix)
    if (
        out.shape != (1, model.num_sources, model.num_channels, mix.shape[-1])
        or not out.isfinite().all()
    ):
        raise UserError("the imported model's forward pass gave a wrong shape or non-finite output")


def import_released(
    folder: str | Path,
    out: str | Path,
    use_ema: bool = True,
    forward_check: bool = True,
    source: dict | None = None,
    expect: str | None = None,
) -> dict:
    """Import one released model folder into an sfc model file at ``out``; returns the file's metadata.

    Args:
        folder: `<dataset>/<recipe name>/` holding `merged_config.yaml` and `checkpoints/*.ckpt`.
        out: the model file to write (atomically), loadable by ``sfc.models.load_model``.
        use_ema: take the EMA copy as the authors do for separation.
        forward_check: run one forward pass before writing.
        source: the download manifest (repository, commit, folder, checksums), kept as provenance.
        expect: the experiment id the caller expects; a different one is refused before any work.
    """
    from sfc.models.registry import model_checkpoint

    folder = Path(folder)
    config_path = folder / "merged_config.yaml"
    if not config_path.is_file():
        raise UserError(f"{folder}: no merged_config.yaml (is this a released model folder?)")
    try:
        tree = yaml.safe_load(config_path.read_text(encoding="utf-8"))
    except yaml.YAMLError as err:
        raise UserError(f"{config_path}: not valid YAML: {err}") from err
    exp = experiment_from_config(tree, str(config_path))
    if expect is not None and exp.id != expect:
        raise UserError(f"{config_path} describes {exp.id}, not the expected {expect}")
    used, excluded = checkpoint_files(folder)
    tensors = average_checkpoints(used, use_ema)
    model, released_keys = convert(exp.model_config(), tensors, str(folder))
    if forward_check:
        check_forward(model)
    released = {
        "folder": folder.name if source is None else source.get("folder", folder.name),
        "source": source,  # repository, revision (commit) and folder, when downloaded by sfc
        "merged_config": tree,
        "averaged": [p.name for p in used],
        "excluded": [p.name for p in excluded],
        "copy": "ema" if use_ema else "raw",
        "checksums": {
            str(p.relative_to(folder)): sha256(p) for p in [config_path, *used, *excluded]
        },
        "num_tensors": len(released_keys),
        "num_parameters": sum(p.numel() for p in model.parameters()),
    }
    ckpt = model_checkpoint(
        model,
        exp.id,
        released=released,
        provenance=provenance({"importer": "sfc weights import", "use_ema": use_ema}, []),
    )
    out = Path(out)
    with atomic_file(out, "wb") as handle:
        torch.save(ckpt, handle)
    return {"experiment": exp.id, **{k: v for k, v in released.items() if k != "merged_config"}}
