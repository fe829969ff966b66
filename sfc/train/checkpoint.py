"""Resumable checkpoints, the top-k list and the final average.

Every write is atomic (temporary file in the same folder, fsync, os.replace), so a run killed at any
moment leaves either the previous file or the new one, never a truncated file under the real name.

Work-dir layout (the work dir is not a Snakemake output; only ``--output`` is):
    checkpoints/last.pt            model, EMA, optimizer, scheduler, step, RNG states, top-k, config
    checkpoints/top/step_XXXXXXXX.pt   EMA weights of one top-k validation step
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import torch

from sfc.provenance import atomic_file

LAST = "last.pt"
TOP_DIR = "top"


@dataclass(frozen=True)
class TopEntry:
    """One kept validation result: lower ``val_loss`` is better."""

    step: int
    val_loss: float
    path: str  # relative to the checkpoint folder


def atomic_save(obj: Any, path: str | Path) -> None:
    """torch.save to a temporary sibling, then os.replace onto ``path``."""
    with atomic_file(path, "wb") as handle:
        torch.save(obj, handle)


def update_topk(
    topk: list[TopEntry], entry: TopEntry, k: int
) -> tuple[list[TopEntry], list[TopEntry]]:
    """Insert ``entry`` and keep the ``k`` lowest losses (ties: the earlier step wins).

    Returns:
        (kept entries sorted best first, evicted entries)
    """
    ranked = sorted([*topk, entry], key=lambda e: (e.val_loss, e.step))
    return ranked[:k], ranked[k:]


def topk_to_list(topk: list[TopEntry]) -> list[dict[str, Any]]:
    return [asdict(e) for e in topk]


def topk_from_list(items: list[dict[str, Any]]) -> list[TopEntry]:
    return [TopEntry(**item) for item in items]


def average_state_dicts(states: list[dict[str, torch.Tensor]]) -> dict[str, torch.Tensor]:
    """Element-wise mean of floating-point tensors (in float64, cast back); others from the first."""
    if not states:
        raise ValueError("no state dicts to average")
    out = {}
    for key, first in states[0].items():
        if first.is_floating_point():
            total = sum(s[key].double() for s in states)
            out[key] = (total / len(states)).to(first.dtype)
        else:
            out[key] = first.clone()
    return out


def remove_orphans(ckpt_dir: Path, topk: list[TopEntry]) -> None:
    """Delete top-k files and temporaries that no checkpoint refers to (left by a killed run)."""
    keep = {ckpt_dir / e.path for e in topk}
    for path in (ckpt_dir / TOP_DIR).glob("*.pt"):
        if path not in keep:
            path.unlink(missing_ok=True)
    for folder in (ckpt_dir, ckpt_dir / TOP_DIR):
        for tmp in folder.glob(".*.tmp"):
            tmp.unlink(missing_ok=True)
