"""Training and evaluation datasets.

PAPER: spec §8 (dynamic mixing, the authors' ``HDF5WavDMDataset``): for every example each source
is drawn independently from a random source-active segment of that stem (so sources of different
songs are mixed), cropped at a random offset to 6 s, optionally dropped (zeroed; resampled until at
least one source is active), RMS-normalised over channels and time, scaled by a uniform random gain
in [-10, +10] dB; the mixture is the sum of the sources. Validation and test use whole tracks.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from sfc.data.cache import INT16_SCALE, STFT_ARGS, open_cache_array, read_index
from sfc.data.tracks import list_tracks, load_track
from sfc.errors import UserError
from sfc.experiments import DEFAULT_SEED, TASKS

# PAPER: spec §8 source dropout per task (0.1 MUSDB18-HQ, 0.05 DnR).
SOURCE_DROPOUT = {"mss": 0.1, "cass": 0.05}
RMS_EPS = 1e-8  # ASSUMPTION: floor of the RMS used for normalisation (spec silent)


class DynamicMixDataset(torch.utils.data.Dataset):
    """Dynamically mixed training examples from a train-split cache (``sfc data cache``).

    Example ``index`` of epoch ``e`` depends only on ``(seed, e, index)``
    (``np.random.default_rng([seed, epoch, index])``), whatever the worker. With a DataLoader, call
    ``set_epoch`` before creating the epoch's iterator (workers copy the dataset when the iterator
    starts, so use ``persistent_workers=False``).

    Args:
        cache_dir: a cache folder built from the train split.
        task: ``mss`` or ``cass``; must match the cache.
        num_examples: examples per epoch.
        segment_seconds: crop length (PAPER: 6 s); at most the cache's segment length.
        source_dropout: per-source dropout probability; None = the task's value (spec §8).
        gain_db: gains are uniform in [-gain_db, +gain_db] dB.
        normalize: RMS-normalise each source before the gain (False: raw levels).
        seed: base seed (PAPER: 2026).

    Shapes:
        __getitem__ -> mix (C, L) float32, sources (N, C, L) float32, sources in task order.
    """

    def __init__(
        self,
        cache_dir,
        task: str,
        num_examples: int,
        segment_seconds: float = 6.0,
        source_dropout: float | None = None,
        gain_db: float = 10.0,
        seed: int = DEFAULT_SEED,
        normalize: bool = True,
    ) -> None:
        self.cache_dir = Path(cache_dir)
        self.index = read_index(self.cache_dir)
        _check_cache(self.index, self.cache_dir, task)
        self.task, self.num_examples, self.seed, self.epoch = task, int(num_examples), seed, 0
        self.sources = TASKS[task].sources
        self.dropout = SOURCE_DROPOUT[task] if source_dropout is None else float(source_dropout)
        if not 0.0 <= self.dropout < 1.0:
            raise UserError(f"source_dropout must lie in [0, 1), got {self.dropout}")
        self.gain_db = float(gain_db)
        self.normalize = bool(normalize)
        self.segment_samples = int(self.index["segment_samples"])
        self.length = int(round(segment_seconds * self.index["sample_rate"]))
        if not 0 < self.length <= self.segment_samples:
            raise UserError(
                f"segment_seconds={segment_seconds} must be positive and at most the cache's "
                f"{self.segment_samples / self.index['sample_rate']:g}-s segments"
            )
        self.offsets = [
            np.asarray(self.index["stems"][s]["segments"], dtype=np.int64)[:, 2]
            for s in self.sources
        ]
        self._arrays: list[np.ndarray] | None = None  # opened lazily in each worker
        self._open()  # a missing or truncated array fails here, naming the file, not in a worker
        self._arrays = None

    def __len__(self) -> int:
        return self.num_examples

    def set_epoch(self, epoch: int) -> None:
        self.epoch = int(epoch)

    def __getstate__(self) -> dict:
        state = dict(self.__dict__)
        state["_arrays"] = None  # memory maps are reopened in the worker
        return state

    def _open(self) -> list[np.ndarray]:
        if self._arrays is None:
            stems = self.index["stems"]
            self._arrays = [
                open_cache_array(self.cache_dir / stems[s]["file"], self._rows_needed(n))
                for n, s in enumerate(self.sources)
            ]
        return self._arrays

    def _rows_needed(self, source: int) -> int:
        """Rows the index addresses in one stem's array (segments laid end to end, or one per row)."""
        offsets = self.offsets[source]
        if not len(offsets):
            return 0
        last = int(offsets.max())
        return last + 1 if self.index["format"] == "stft" else last + self.segment_samples

    def read_segment(self, source: int, segment: int, start: int) -> np.ndarray:
        """``self.length`` samples from ``start`` of one cached segment, shape (C, L) float32."""
        array, offset = self._open()[source], int(self.offsets[source][segment])
        if self.index["format"] == "stft":
            spec = torch.from_numpy(np.array(array[offset]))  # (C, F, T), copied out of the map
            window = torch.hann_window(STFT_ARGS["n_fft"])
            wav = torch.istft(
                spec, **STFT_ARGS, window=window, center=True, length=self.segment_samples
            )
            return wav[:, start : start + self.length].numpy()  # (C, L)
        block = np.asarray(array[offset + start : offset + start + self.length]).T  # (C, L)
        if block.dtype == np.int16:
            return block.astype(np.float32) / np.float32(INT16_SCALE)
        return block.astype(np.float32, copy=True)

    def draw(self, index: int) -> list[tuple[int, int, float, bool]]:
        """The random choices of one example: (segment, start, gain dB, active) per source."""
        if not 0 <= index < self.num_examples:
            raise IndexError(index)
        rng = np.random.default_rng([self.seed, self.epoch, index])
        num = len(self.sources)
        # ASSUMPTION (as the authors' HDF5WavDMDataset): each source's segment is drawn independently,
        # so sources usually, not necessarily, come from different tracks.
        segs = [int(rng.integers(len(o))) for o in self.offsets]
        starts = rng.integers(0, self.segment_samples - self.length + 1, size=num)
        gains = rng.uniform(-self.gain_db, self.gain_db, size=num)
        active = rng.random(num) >= self.dropout
        while not active.any():  # PAPER: resampled until at least one source is active
            active = rng.random(num) >= self.dropout
        return [(segs[n], int(starts[n]), float(gains[n]), bool(active[n])) for n in range(num)]

    def __getitem__(self, index) -> tuple[torch.Tensor, torch.Tensor]:
        channels = self.index["num_channels"]
        sources = np.zeros(
            (len(self.sources), channels, self.length), dtype=np.float32
        )  # (N, C, L)
        for n, (seg, start, gain, active) in enumerate(self.draw(int(index))):
            if not active:
                continue  # source dropout: the target is silent
            x = self.read_segment(n, seg, start)  # (C, L)
            rms = max(float(np.sqrt(np.mean(np.square(x, dtype=np.float64)))), RMS_EPS)
            if not self.normalize:  # raw levels (the LightSAFT recipe, lightsaft.md §4)
                rms = 1.0
            sources[n] = x * np.float32(10.0 ** (gain / 20.0) / rms)
        mix = sources.sum(axis=0)  # (C, L)
        return torch.from_numpy(mix), torch.from_numpy(sources)


def _check_cache(index: dict, cache_dir: Path, task: str) -> None:
    if task not in TASKS:
        raise UserError(f"unknown task {task!r}: expected one of {sorted(TASKS)}")
    if index.get("split") != "train":
        raise UserError(
            f"{cache_dir}: cache built from split {index.get('split')!r}; training reads only the train split"
        )
    if index.get("task") != task:
        raise UserError(f"{cache_dir}: cache of task {index.get('task')!r}, not {task!r}")
    if list(index.get("sources", [])) != list(TASKS[task].sources):
        raise UserError(
            f"{cache_dir}: cache sources {index.get('sources')} != {list(TASKS[task].sources)}"
        )


class TrackDataset(torch.utils.data.Dataset):
    """Whole tracks of the ``valid`` or ``test`` split, loaded on access.

    Shapes:
        __getitem__ -> (name, mix (C, L) float32, sources (N, C, L) float32)
    """

    def __init__(self, root, task: str, split: str) -> None:
        if split not in ("valid", "test"):
            raise UserError(f"TrackDataset reads the 'valid' or 'test' split, not {split!r}")
        self.refs = list_tracks(root, task, split)
        if not self.refs:
            raise UserError(f"{root}: no {split} tracks for task {task}")

    def __len__(self) -> int:
        return len(self.refs)

    def __getitem__(self, index) -> tuple[str, torch.Tensor, torch.Tensor]:
        track = load_track(self.refs[index])
        return track.ref.name, torch.from_numpy(track.mixture), torch.from_numpy(track.sources)
