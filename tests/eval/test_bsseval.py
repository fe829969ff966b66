"""The fast framewise BSSEval v4 SDR against museval (the reference) and a stored museval regression."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import pytest

from sfc.eval.bsseval import frame_slices, num_frames, sdr_frames_fast, sdr_frames_museval

SR = 44100
REGRESSION = Path(__file__).parent / "data" / "regression.json"


def music_like(
    num_sources: int, num_channels: int, seconds: float, seed: int
) -> tuple[np.ndarray, np.ndarray]:
    """Harmonic tones, band-limited noise and gated stems with leaky, echoed estimates.

    Shapes:
        returns references (N, C, L), estimates (N, C, L), float32
    """
    rng = np.random.default_rng(seed)
    length = int(seconds * SR)
    t = np.arange(length) / SR
    stems = []
    for n in range(num_sources):
        kind = n % 3
        if kind == 0:  # harmonic tone with slow amplitude modulation
            x = sum(np.sin(2 * np.pi * 110 * (n + 1) * h * t) / h for h in range(1, 4))
            x = x * (0.6 + 0.4 * np.sin(2 * np.pi * 0.7 * t))
        elif kind == 1:  # low-pass filtered noise
            x = np.convolve(rng.standard_normal(length), np.hanning(64), mode="same") / 8
        else:  # vibrato tone
            x = np.sin(2 * np.pi * 440 * t + 2 * np.sin(2 * np.pi * 6 * t))
        gains = 1.0 + 0.3 * np.arange(num_channels)[:, None]  # (C, 1)
        stems.append(0.2 * x[None, :] * gains)
    refs = np.stack(stems)  # (N, C, L)
    ests = refs + 0.15 * np.roll(refs, 1, axis=0) + 0.05 * np.roll(refs, 300, axis=-1)
    ests = ests + 0.01 * rng.standard_normal(refs.shape)
    return refs.astype(np.float32), ests.astype(np.float32)


def assert_same(fast: np.ndarray, ref: np.ndarray) -> float:
    assert fast.shape == ref.shape
    np.testing.assert_array_equal(np.isnan(fast), np.isnan(ref))
    diff = np.nanmax(np.abs(fast - ref)) if np.isfinite(ref).any() else 0.0
    assert diff < 0.01, diff
    return float(diff)


def test_stereo_silent_antiphase_and_gapped_frames_match_museval():
    # museval on 4 stereo stems costs ~30 s here; the stored regression below covers 4 stems, this 2.
    refs, ests = music_like(2, 2, 3.5, seed=0)
    refs[0, 1, :SR] = -refs[0, 0, :SR]  # frame 0: channel sum exactly 0 -> museval calls it silent
    ests[1, :, SR + 5000 : SR + 7000] = 0.0  # frame 1: a short gap must not make the frame NaN
    refs[1, :, 2 * SR : 3 * SR] = 0.0  # frame 2: one stem silent -> NaN for every stem
    fast = sdr_frames_fast(refs, ests)
    assert fast.shape == (2, 3)  # the trailing half second is not a frame
    assert np.isnan(fast[:, [0, 2]]).all() and np.isfinite(fast[:, 1]).all()
    assert_same(fast, sdr_frames_museval(refs, ests))


def test_mono_three_sources_silent_estimate_and_uneven_length_match_museval():
    refs, ests = music_like(3, 1, 3.3, seed=1)
    ests[2, :, 2 * SR : 3 * SR] = 0.0  # silent estimate in frame 2
    fast = sdr_frames_fast(refs, ests)
    assert np.isnan(fast[:, 2]).all() and np.isfinite(fast[:, :2]).all()
    assert_same(fast, sdr_frames_museval(refs, ests))


def test_track_shorter_than_window_is_one_frame_and_estimates_are_padded():
    refs, ests = music_like(2, 1, 0.6, seed=3)
    short = ests[..., :-1000]  # museval zero-pads a short estimate
    fast = sdr_frames_fast(refs, short)
    assert fast.shape == (2, 1)
    assert_same(fast, sdr_frames_museval(refs, short))


@pytest.mark.parametrize("length", [1, 44099, 44100, 44101, 3 * 44100 - 1, 5 * 44100 + 7])
@pytest.mark.parametrize("window,hop", [(44100, 44100), (44100, 22050)])
def test_framing_matches_museval(length, window, hop):
    from museval.metrics import Framing

    expected = list(Framing(window, hop, length))
    assert num_frames(length, window, hop) == len(expected)
    assert frame_slices(length, window, hop) == expected


def test_overlapping_frames_equal_direct_snr():
    refs, ests = music_like(2, 2, 3.0, seed=4)
    out = sdr_frames_fast(refs, ests, window=SR, hop=SR // 2)
    assert out.shape == (2, 5)
    r, e = refs[..., SR // 2 : 3 * SR // 2].astype(np.float64), ests[..., SR // 2 : 3 * SR // 2]
    direct = 10 * np.log10((r**2).sum((1, 2)) / ((e - r) ** 2).sum((1, 2)))
    np.testing.assert_allclose(out[:, 1], direct, atol=1e-9)


def test_stem_silent_in_every_frame_gives_all_nan_from_museval_itself(monkeypatch):
    import museval

    refs, ests = music_like(2, 1, 1.5, seed=5)
    refs[1, :, :SR] = 0.0  # silent in the only frame; sound in the trailing half second (no frame)
    calls = []
    evaluate = museval.evaluate

    def spy(*args, **kwargs):
        calls.append(args)
        return evaluate(*args, **kwargs)

    monkeypatch.setattr(museval, "evaluate", spy)
    reference = sdr_frames_museval(refs, ests)
    assert len(calls) == 1  # the NaNs below come from museval, not from a shortcut of ours
    assert reference.shape == (2, 1) and np.isnan(reference).all()
    assert_same(sdr_frames_fast(refs, ests), reference)


def test_whole_silent_stem_gives_all_nan_where_museval_raises():
    import museval

    refs, ests = music_like(2, 1, 1.5, seed=5)
    refs[1] = 0.0
    with pytest.raises(ValueError, match="non-silent"):  # why both backends need the DEVIATION
        museval.evaluate(np.transpose(refs, (0, 2, 1)), np.transpose(ests, (0, 2, 1)))
    assert np.isnan(sdr_frames_fast(refs, ests)).all()
    assert np.isnan(sdr_frames_museval(refs, ests)).all()


def test_perfect_estimate_is_inf_and_float32_input_is_not_truncated():
    refs, _ = music_like(2, 2, 1.0, seed=6)
    assert np.isposinf(sdr_frames_fast(refs, refs.copy())).all()
    ests = refs + np.float32(1e-4)  # a 1e-4 offset on float32 gives a finite, large SDR
    assert 40 < sdr_frames_fast(refs, ests).min() < 200


def _regression_signal() -> tuple[np.ndarray, np.ndarray]:
    refs, ests = music_like(4, 2, 4.0, seed=2026)
    refs[2, :, 2 * SR : 3 * SR] = 0.0
    return refs, ests


def test_stored_museval_regression():
    data = json.loads(REGRESSION.read_text())
    refs, ests = _regression_signal()
    expected = np.array([[np.nan if v is None else v for v in row] for row in data["sdr_frames"]])
    fast = sdr_frames_fast(refs, ests)
    assert data["museval_version"]  # provenance of the stored numbers
    np.testing.assert_array_equal(np.isnan(fast), np.isnan(expected))
    np.testing.assert_allclose(fast, expected, atol=1e-6, equal_nan=True)


if (
    __name__ == "__main__" and "--regenerate" in sys.argv
):  # python tests/eval/test_bsseval.py --regenerate
    from importlib.metadata import version

    refs, ests = _regression_signal()
    frames = sdr_frames_museval(refs, ests)
    REGRESSION.parent.mkdir(exist_ok=True)
    REGRESSION.write_text(
        json.dumps(
            {
                "description": "museval.evaluate framewise SDR of tests/eval/test_bsseval.py::_regression_signal",
                "museval_version": version("museval"),
                "sdr_frames": [[None if np.isnan(v) else float(v) for v in row] for row in frames],
            },
            indent=1,
        )
        + "\n"
    )
    print(frames)
