"""Source-activity segmentation (spec §1.3) on signals with known silent and quiet parts."""

from __future__ import annotations

import numpy as np
import pytest

from sfc.data.segment import SADConfig, active_segments, chunk_energies, segment_starts
from sfc.errors import UserError

SR = 1000  # a low rate keeps these signals small; the rule is in seconds


def _stem(levels: list[tuple[float, float]], seconds: int = 40, channels: int = 2) -> np.ndarray:
    """Constant-magnitude signal (+-a alternating) with amplitude a over [t0, t1) given as (t1, a)."""
    amp = np.zeros(seconds * SR)
    t0 = 0
    for t1, a in levels:
        amp[int(t0 * SR) : int(t1 * SR)] = a
        t0 = t1
    sign = np.where(np.arange(amp.size) % 2 == 0, 1.0, -1.0)
    return np.tile(amp * sign, (channels, 1)).astype(np.float32)  # (C, L)


def test_segment_starts():
    assert segment_starts(40 * SR, 8 * SR, 4 * SR).tolist() == [i * 4 * SR for i in range(9)]
    assert segment_starts(8 * SR, 8 * SR, 4 * SR).tolist() == [0]
    assert segment_starts(8 * SR - 1, 8 * SR, 4 * SR).size == 0


def test_silent_part_drops_the_segments_mostly_inside_it():
    # active 0-20 s, silent 20-32 s, active 32-40 s. Segments [s, s + 8) with >= 4 s of activity
    # have 5 of 10 active chunks and are kept (the rule is ">= 5").
    stem = _stem([(20, 1.0), (32, 0.0), (40, 1.0)])
    kept = active_segments(stem, SR)
    assert (kept // SR).tolist() == [0, 4, 8, 12, 16, 28, 32]


def test_percentile_threshold_drops_quiet_but_nonzero_parts():
    # 30 % of the track is quiet (chunk energy 2 * 0.05^2 * 800 = 4, far above the 1e-3 floor). The
    # 15th percentile of the chunk energies is that quiet energy, which no quiet chunk exceeds.
    stem = _stem([(20, 1.0), (32, 0.05), (40, 1.0)])
    energy = chunk_energies(stem, segment_starts(stem.shape[-1], 8 * SR, 4 * SR), 8 * SR, 10, 1e-5)
    assert np.percentile(energy, 15) == pytest.approx(4.0)
    assert (active_segments(stem, SR) // SR).tolist() == [0, 4, 8, 12, 16, 28, 32]


def test_threshold_floor_applies_to_very_quiet_parts():
    # 0-10 s at 1e-4 (chunk energy 1.6e-5), 10-20 s at 2e-4 (6.4e-5), 20-40 s loud. The 15th
    # percentile is 1.6e-5, so without the 1e-3 floor the 10-20 s chunks would count as active and
    # the segments starting at 8 and 12 s would be kept.
    stem = _stem([(10, 1e-4), (20, 2e-4), (40, 1.0)])
    assert (active_segments(stem, SR) // SR).tolist() == [16, 20, 24, 28, 32]
    no_floor = SADConfig(threshold_floor=0.0)
    assert (active_segments(stem, SR, no_floor) // SR).tolist() == [8, 12, 16, 20, 24, 28, 32]


def test_zero_energy_is_replaced():
    energy = chunk_energies(np.zeros((2, 8 * SR), np.float32), np.array([0]), 8 * SR, 10, 1e-5)
    assert energy.shape == (1, 10) and np.all(energy == 1e-5)


def test_short_track_is_skipped_with_a_warning():
    with pytest.warns(
        UserWarning, match=r"skipping bass\.wav: 7\.00 s is shorter than one 8-s segment"
    ):
        assert active_segments(np.ones((2, 7 * SR), np.float32), SR, name="bass.wav").size == 0


def test_segment_length_is_a_parameter():
    stem = _stem([(10, 1.0), (14, 0.0), (20, 1.0)], seconds=20)
    kept = active_segments(stem, SR, SADConfig(segment_seconds=4.0, hop_seconds=2.0))
    # 4-s segments every 2 s; [10, 14) is silent: [8,12) and [12,16) have half activity -> kept,
    # [10,14) has none -> dropped
    assert (kept // SR).tolist() == [0, 2, 4, 6, 8, 12, 14, 16]


def test_bad_config():
    with pytest.raises(UserError):
        SADConfig(segment_seconds=0)
    with pytest.raises(UserError):
        SADConfig(min_active_chunks=11)
