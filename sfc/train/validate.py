"""Validation on whole tracks with chunked inference, run on the EMA weights.

PAPER: spec §8-§9: validation separates whole valid tracks with 12-s chunks and 6-s shift; checkpoints
are ranked by the validation loss (the training loss on the whole track). uSDR is logged beside it,
together with the uSDR of the unprocessed mixture (the mixture used as every source's estimate) so the
improvement can be read off directly.

``val_metric: l1`` ranks by the time-domain mean absolute error instead (LightSAFT's `raw_l1`,
lightsaft.md §4), and ``valid_chunking: trimmed`` separates with LightSAFT's trimmed windows. A dedicated
model (one target) is scored on its targets only (``target_indices`` into the task's sources).
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from sfc.eval.metrics import usdr
from sfc.eval.separate import separate_by
from sfc.train.config import TrainConfig
from sfc.train.data import ValidTrack
from sfc.train.dist import DistInfo, all_gather
from sfc.train.loss import thresholded_snr_loss


def score_valid_track(
    model: nn.Module,
    track: ValidTrack,
    config: TrainConfig,
    device: torch.device,
    target_indices: list[int] | None = None,
) -> dict[str, np.ndarray | float]:
    """Loss and per-source uSDR of one whole track (estimate vs reference, and mixture vs reference)."""
    mix = torch.from_numpy(track.mixture)  # (C, L)
    ref = torch.from_numpy(track.sources)  # (N_task, C, L)
    if target_indices is not None:
        ref = ref[target_indices]  # (N, C, L) the model's targets
    est = separate_by(
        config.valid_chunking,
        model,
        mix,
        config.valid_chunk_seconds,
        config.valid_shift_seconds,
        config.valid_trim_seconds,
        config.valid_batch_size,
        device,
    )  # (N, C, L)
    if config.val_metric == "l1":
        # ASSUMPTION: the mean over the whole track; the authors average per-window means.
        loss = (est - ref).abs().mean().item()
    else:
        loss = thresholded_snr_loss(est[None], ref[None], mix[None]).item()
    return {
        "loss": loss,
        "usdr": usdr(ref, est),  # (N,) per-channel SNR, mean over channels
        "mix_usdr": usdr(ref, mix.expand_as(ref)),
    }  # (N,) the unprocessed mixture as estimate


def validate(
    model: nn.Module,
    tracks: list[ValidTrack],
    config: TrainConfig,
    info: DistInfo,
    sources: tuple[str, ...],
    target_indices: list[int] | None = None,
) -> dict[str, float]:
    """Metrics averaged over all ranks' tracks (each rank scores its own share).

    Returns:
        val_loss (``config.val_metric``), val_usdr (mean over sources), mix_usdr, val_usdr_gain, and val_usdr_<source>.
    """
    mine = [score_valid_track(model, t, config, info.device, target_indices) for t in tracks]
    scores = [s for part in all_gather(mine, info) for s in part]
    if not scores:
        raise RuntimeError("validation found no tracks")
    est_usdr = np.stack([s["usdr"] for s in scores]).mean(0)  # (N,) mean over tracks
    mix_usdr = np.stack([s["mix_usdr"] for s in scores]).mean(0)  # (N,)
    out = {
        "val_loss": float(np.mean([s["loss"] for s in scores])),
        "val_usdr": float(est_usdr.mean()),
        "mix_usdr": float(mix_usdr.mean()),
        "val_usdr_gain": float(est_usdr.mean() - mix_usdr.mean()),
    }
    out.update({f"val_usdr_{name}": float(v) for name, v in zip(sources, est_usdr)})
    return out
