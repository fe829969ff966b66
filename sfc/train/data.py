"""Training batches and validation tracks.

The train split comes only from the dynamic-mixing cache; validation only from the ``valid`` split.
No function here takes a split argument, so training, validation and checkpoint selection cannot read
the test split.

Batches are a pure function of the step: at step s (epoch e = s // steps_per_epoch, position
p = s % steps_per_epoch) the global batch is dataset items [p*G, (p+1)*G) of epoch e, G = batch_size
(the global batch, whatever the number of processes); rank r takes the r-th contiguous slice of G / W
items and feeds it as consecutive micro-batches (gradient accumulation). So a resumed run sees exactly
the batches an uninterrupted run sees, and every split of G into processes x micro-batches x
accumulation steps sees the same examples in the same optimizer step.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import DataLoader, Sampler

from sfc.train.config import BatchPlan, TrainConfig
from sfc.train.dist import DistInfo

VALID_SPLIT = "valid"  # the only split besides the train cache that training ever opens


class StepBatches(Sampler[list[int]]):
    """This rank's micro-batch index lists for the positions ``start..steps_per_epoch-1`` of one epoch,
    ``plan.accumulation`` lists per position.

    The dataset draws fresh random mixtures per (seed, epoch, index), so no shuffling is needed.
    """

    def __init__(self, start: int, steps_per_epoch: int, plan: BatchPlan, rank: int) -> None:
        self.start, self.steps_per_epoch, self.plan, self.rank = start, steps_per_epoch, plan, rank

    def __iter__(self) -> Iterator[list[int]]:
        plan = self.plan
        for pos in range(self.start, self.steps_per_epoch):
            first = pos * plan.global_batch + self.rank * plan.per_rank
            for j in range(plan.accumulation):
                yield list(range(first + j * plan.micro, first + (j + 1) * plan.micro))

    def __len__(self) -> int:
        return (self.steps_per_epoch - self.start) * self.plan.accumulation


def build_train_dataset(cache_dir: Path, config: TrainConfig, info: DistInfo):
    """The dynamic-mixing dataset sized to one epoch of global batches."""
    from sfc.data.dataset import DynamicMixDataset

    return DynamicMixDataset(
        cache_dir,
        config.task,
        num_examples=config.steps_per_epoch * config.batch_size,
        segment_seconds=config.segment_seconds,
        source_dropout=config.source_dropout,
        gain_db=config.gain_db,
        seed=config.seed,
        normalize=config.normalize_sources,
    )


def iterate_batches(
    dataset, config: TrainConfig, info: DistInfo, start_step: int
) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
    """Endless (mix (B, C, L), sources (B, N, C, L)) micro-batches from ``start_step`` on, B = the
    plan's micro-batch, ``accumulation`` of them per optimizer step."""
    plan = config.batch_plan(info.world_size)
    epoch, pos = divmod(start_step, config.steps_per_epoch)
    while True:
        dataset.set_epoch(epoch)
        # A dedicated generator: creating the iterator must not consume the global torch RNG
        # (it draws the workers' base seed), or a resumed run would diverge from an uninterrupted one.
        generator = torch.Generator().manual_seed(
            config.seed * 1_000_003 + epoch * 1_009 + info.rank
        )
        loader = DataLoader(
            dataset,
            batch_sampler=StepBatches(pos, config.steps_per_epoch, plan, info.rank),
            num_workers=config.num_workers,
            generator=generator,
            pin_memory=info.device.type == "cuda",
        )
        for mix, sources in loader:
            yield mix.float(), sources.float()
        epoch, pos = epoch + 1, 0


@dataclass(frozen=True)
class ValidTrack:
    """A whole validation track."""

    name: str
    mixture: np.ndarray  # (C, L)
    sources: np.ndarray  # (N, C, L)


def load_valid_tracks(
    data_root: Path, task: str, limit: int | None, info: DistInfo
) -> list[ValidTrack]:
    """This rank's share (every world_size-th) of the first ``limit`` tracks of the valid split."""
    from sfc.data.tracks import list_tracks, load_track

    refs = sorted(list_tracks(data_root, task, VALID_SPLIT), key=lambda r: r.name)[:limit]
    tracks = []
    for ref in refs[info.rank :: info.world_size]:
        track = load_track(ref)
        tracks.append(
            ValidTrack(
                ref.name,
                np.asarray(track.mixture, np.float32),
                np.asarray(track.sources, np.float32),
            )
        )
    return tracks
