"""Training batches and validation tracks.

The train split comes only from the dynamic-mixing cache; validation only from the ``valid`` split.
No function here takes a split argument, so training, validation and checkpoint selection cannot read
the test split.

Batches are a pure function of the step: at step s (epoch e = s // steps_per_epoch, position
p = s % steps_per_epoch) the global batch is dataset items [p*G, (p+1)*G) of epoch e, G = batch_size x
world_size, and rank r takes the r-th contiguous slice of B items. So a resumed run sees exactly the
batches an uninterrupted run sees, and 2 ranks x B hold the same examples as 1 process x 2B.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import DataLoader, Sampler

from sfc.train.config import TrainConfig
from sfc.train.dist import DistInfo

VALID_SPLIT = "valid"  # the only split besides the train cache that training ever opens


class StepBatches(Sampler[list[int]]):
    """Per-rank index lists for the positions ``start..steps_per_epoch-1`` of one epoch.

    The dataset draws fresh random mixtures per (seed, epoch, index), so no shuffling is needed.
    """

    def __init__(self, start: int, steps_per_epoch: int, batch_size: int, info: DistInfo) -> None:
        self.start, self.steps_per_epoch, self.batch_size, self.info = (
            start,
            steps_per_epoch,
            batch_size,
            info,
        )

    def __iter__(self) -> Iterator[list[int]]:
        global_batch = self.batch_size * self.info.world_size
        for pos in range(self.start, self.steps_per_epoch):
            first = pos * global_batch + self.info.rank * self.batch_size
            yield list(range(first, first + self.batch_size))

    def __len__(self) -> int:
        return self.steps_per_epoch - self.start


def build_train_dataset(cache_dir: Path, config: TrainConfig, info: DistInfo):
    """The dynamic-mixing dataset sized to one epoch of global batches."""
    from sfc.data.dataset import DynamicMixDataset

    return DynamicMixDataset(
        cache_dir,
        config.task,
        num_examples=config.steps_per_epoch * config.batch_size * info.world_size,
        segment_seconds=config.segment_seconds,
        source_dropout=config.source_dropout,
        gain_db=config.gain_db,
        seed=config.seed,
    )


def iterate_batches(
    dataset, config: TrainConfig, info: DistInfo, start_step: int
) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
    """Endless (mix (B, C, L), sources (B, N, C, L)) batches from ``start_step`` on."""
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
            batch_sampler=StepBatches(pos, config.steps_per_epoch, config.batch_size, info),
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
