"""Source-activity segmentation of training stems.

PAPER: spec §1.3 (BSRNN Sec. IV-A, the authors' ``chunking_sad_inst.py``), per stem and per track:

1. cut the stem into segments of 8 s with a hop of 4 s;
2. split each segment into 10 equal chunks; chunk energy = sum of x^2 (an energy of 0 becomes 1e-5);
3. threshold = 15th percentile of all chunk energies of the track, floored at 1e-3;
4. keep a segment if at least 5 of its 10 chunks exceed the threshold.

Tracks shorter than one segment are skipped with a warning.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass

import numpy as np

from sfc.errors import UserError


@dataclass(frozen=True)
class SADConfig:
    """Segmentation parameters; the defaults are the paper's (spec §1.3)."""

    segment_seconds: float = 8.0
    hop_seconds: float = 4.0
    num_chunks: int = 10
    percentile: float = 15.0
    threshold_floor: float = 1e-3
    min_active_chunks: int = 5
    zero_energy: float = 1e-5

    def __post_init__(self) -> None:
        if self.segment_seconds <= 0 or self.hop_seconds <= 0:
            raise UserError("segment and hop lengths must be positive")
        if not 1 <= self.min_active_chunks <= self.num_chunks:
            raise UserError("min_active_chunks must lie in 1..num_chunks")

    def segment_samples(self, sample_rate: int) -> int:
        return int(round(self.segment_seconds * sample_rate))

    def hop_samples(self, sample_rate: int) -> int:
        return int(round(self.hop_seconds * sample_rate))


def segment_starts(length: int, segment: int, hop: int) -> np.ndarray:
    """Start samples of all whole segments of a signal of ``length`` samples.

    # ASSUMPTION: the trailing partial segment is dropped (segments never run past the end).
    """
    if length < segment:
        return np.zeros(0, dtype=np.int64)
    return np.arange(0, length - segment + 1, hop, dtype=np.int64)


def chunk_energies(
    stem: np.ndarray, starts: np.ndarray, segment: int, num_chunks: int, zero_energy: float
) -> np.ndarray:
    """Energy of each chunk of each segment.

    Args:
        stem: shape (C, L).
        starts: segment starts, shape (S,).
        segment: segment length in samples.
        num_chunks: chunks per segment (the last samples of a segment not filling a chunk are ignored).
        zero_energy: the value that replaces an energy of exactly 0.

    Returns:
        shape (S, num_chunks), float64.
    """
    chunk = segment // num_chunks
    power = np.square(stem, dtype=np.float64).sum(axis=0)  # (L,)
    csum = np.concatenate([[0.0], np.cumsum(power)])  # (L + 1,)
    edges = starts[:, None] + chunk * np.arange(num_chunks + 1)[None, :]  # (S, num_chunks + 1)
    energy = np.diff(csum[edges], axis=1)  # (S, num_chunks)
    energy = np.maximum(energy, 0.0)  # cumsum round-off
    energy[energy == 0.0] = zero_energy
    return energy


def active_segments(
    stem: np.ndarray, sample_rate: int, config: SADConfig = SADConfig(), name: str = ""
) -> np.ndarray:
    """Start samples of the segments of ``stem`` kept by source-activity detection.

    Args:
        stem: shape (C, L).
        sample_rate: in Hz.
        config: segmentation parameters.
        name: what to call the stem in the warning for a too-short track.

    Returns:
        kept segment starts, shape (S_kept,), int64; empty (with a warning) if the track is shorter
        than one segment.
    """
    seg, hop = config.segment_samples(sample_rate), config.hop_samples(sample_rate)
    starts = segment_starts(stem.shape[-1], seg, hop)
    if starts.size == 0:
        warnings.warn(
            f"skipping {name or 'stem'}: {stem.shape[-1] / sample_rate:.2f} s is shorter than one "
            f"{config.segment_seconds:g}-s segment",
            stacklevel=2,
        )
        return starts
    energy = chunk_energies(stem, starts, seg, config.num_chunks, config.zero_energy)  # (S, chunks)
    threshold = max(float(np.percentile(energy, config.percentile)), config.threshold_floor)
    keep = (energy > threshold).sum(axis=1) >= config.min_active_chunks  # (S,)
    return starts[keep]
