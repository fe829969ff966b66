"""Metric functions against hand-computed values and fast_bss_eval; score tables and the paired t-test."""

from __future__ import annotations

import json

import fast_bss_eval
import numpy as np
import pandas as pd
import pytest
from scipy import stats

from sfc.eval.metrics import TASK_METRICS, csdr, score_track, si_sdr, snr, spec_snr, usdr
from sfc.eval.table import (
    aggregate,
    aggregate_dict,
    paired_ttest,
    read_track_result,
    tidy_table,
    track_result_path,
)
from sfc.provenance import write_json_atomic

SR = 44100


def tones(num_sources: int, num_channels: int, seconds: float, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    t = np.arange(int(seconds * SR)) / SR
    x = [
        np.sin(2 * np.pi * 200 * (n + 1) * t + rng.uniform(0, 6))
        + 0.1 * rng.standard_normal(t.size)
        for n in range(num_sources * num_channels)
    ]
    return np.stack(x).reshape(num_sources, num_channels, -1)  # (N, C, L)


def test_snr_and_usdr_hand_computed():
    ref = np.ones((2, 2, 1000))
    est = ref.copy()
    est[0, 0] *= 0.9  # error energy 0.01 L -> 20 dB
    est[0, 1] *= 0.99  # 40 dB
    est[1] *= 0.5  # 6.0206 dB on both channels
    np.testing.assert_allclose(snr(ref, est), [[20, 40], [6.0206, 6.0206]], atol=1e-3)
    np.testing.assert_allclose(usdr(ref, est), [30, 6.0206], atol=1e-3)
    assert usdr(ref, ref)[0] == pytest.approx(
        10 * np.log10((1000 + 1e-8) / 1e-8)
    )  # ε keeps it finite


def test_si_sdr_matches_fast_bss_eval_and_known_value():
    ref = tones(3, 1, 0.5)
    rng = np.random.default_rng(1)
    est = 0.5 * ref + 0.2 * rng.standard_normal(ref.shape) + 0.3 * np.roll(ref, 1, axis=0)
    ours = si_sdr(ref, est)  # (N, C)
    theirs = fast_bss_eval.si_sdr(ref, est, clamp_db=80)  # (N, C): one reference per batch item
    np.testing.assert_allclose(ours, theirs, atol=1e-6)
    # scale invariance and a known answer: est = 3·ref + orthogonal noise of 1/100 the scaled energy
    noise = rng.standard_normal(ref.shape[-1])
    noise -= noise @ ref[0, 0] / (ref[0, 0] @ ref[0, 0]) * ref[0, 0]
    noise *= np.sqrt(0.01 * 9 * (ref[0, 0] @ ref[0, 0]) / (noise @ noise))
    assert si_sdr(ref[:1], 3 * ref[:1] + noise)[0, 0] == pytest.approx(20.0, abs=1e-6)
    assert si_sdr(ref, ref)[0, 0] == pytest.approx(80.0)  # clamp
    assert si_sdr(ref, np.zeros_like(ref))[0, 0] == pytest.approx(-80.0)


def test_spec_snr_known_answer_and_close_to_time_domain_snr():
    ref = tones(2, 2, 1.0)
    np.testing.assert_allclose(spec_snr(ref, 0.9 * ref), [20.0, 20.0], atol=1e-6)  # STFT is linear
    rng = np.random.default_rng(2)
    est = ref + 0.1 * rng.standard_normal(ref.shape)
    np.testing.assert_allclose(spec_snr(ref, est), usdr(ref, est), atol=0.3)
    # the blocked STFT equals one whole-signal torch.stft (block boundaries carry no error)
    import torch

    from sfc.eval.metrics import _stft_energy

    x = torch.from_numpy(ref.reshape(-1, ref.shape[-1]))
    whole = torch.stft(
        x, 2048, 512, window=torch.hann_window(2048, dtype=x.dtype), return_complex=True
    )
    expected = whole[..., : x.shape[-1] // 512].abs().square().sum((-2, -1))
    torch.testing.assert_close(_stft_energy(x, 2048, 512, block_frames=7), expected)


def test_csdr_is_nanmedian_over_frames():
    frames = np.array([[1.0, np.nan, 3.0, 10.0], [np.nan] * 4, [2.0, 2.0, np.inf, np.nan]])
    out = csdr(frames)
    assert out[0] == 3.0 and np.isnan(out[1]) and out[2] == 2.0


@pytest.mark.parametrize("task", ["mss", "cass"])
def test_score_track_applies_the_task_metrics(task):
    from sfc.experiments import TASKS

    spec = TASKS[task]
    ref = tones(len(spec.sources), spec.num_channels, 2.2)
    est = 0.8 * ref + 0.05 * np.roll(ref, 1, axis=0)
    res = score_track(ref, est.astype(np.float32), spec.sources, TASK_METRICS[task])
    assert set(res["scores"]) == set(TASK_METRICS[task])
    for metric, per_target in res["scores"].items():
        assert list(per_target) == list(spec.sources), metric
    first = spec.sources[0]
    assert res["scores"][TASK_METRICS[task][0]][first] == pytest.approx(usdr(ref, est)[0], abs=1e-4)
    if task == "mss":
        assert len(res["csdr_frames"][first]) == 2  # 2.2 s -> two 1-s frames
        assert res["scores"]["csdr"][first] == pytest.approx(np.median(res["csdr_frames"][first]))
    else:
        assert res["scores"]["si_sdr"][first] == pytest.approx(si_sdr(ref, est)[0].mean(), abs=1e-4)
    json.dumps(res)  # JSON-serialisable as stored per track


def _table(
    values: dict[str, list[float]], experiment: str = "exp", metric: str = "usdr"
) -> pd.DataFrame:
    results = []
    for i in range(len(next(iter(values.values())))):
        scores = {metric: {t: v[i] for t, v in values.items()}}
        results.append({"experiment": experiment, "track": f"track{i}", "scores": scores})
    return tidy_table(results)


def test_tidy_table_and_aggregates():
    table = _table({"bass": [1.0, 2.0, 6.0, np.nan], "vocals": [4.0, 4.0, 5.0, 7.0]}, metric="csdr")
    assert list(table.columns) == ["experiment", "track", "target", "metric", "value"]
    assert len(table) == 8
    agg = aggregate(table).set_index(["aggregate", "target"])["value"]
    assert agg[("median", "bass")] == 2.0  # NaN track skipped
    assert agg[("median", "vocals")] == 4.5
    assert agg[("median", "avg")] == pytest.approx(3.25)  # mean of the stem medians
    si = aggregate_dict(_table({"speech": [1.0, 2.0, 9.0]}, metric="si_sdr"))["si_sdr"]
    assert si["mean"]["speech"] == pytest.approx(4.0) and si["median"]["speech"] == 2.0
    us = aggregate_dict(_table({"bass": [1.0, 2.0, 9.0]}))["usdr"]
    assert list(us) == ["mean"] and us["mean"]["bass"] == pytest.approx(4.0)


def test_paired_ttest_matches_scipy_and_effect_size():
    a = _table({"bass": [1.0, 2.0, 3.0, 4.0, 5.0], "drums": [2.0, 2.0, 2.0, 2.0, 2.0]})
    b = _table({"bass": [1.5, 2.4, 3.9, 4.2, 5.8], "drums": [2.1, 2.0, 2.5, 2.2, 2.3]})
    res = paired_ttest(a, b, "usdr", "bass")
    diff = np.array([0.5, 0.4, 0.9, 0.2, 0.8])
    expected = stats.ttest_rel([1.5, 2.4, 3.9, 4.2, 5.8], [1.0, 2.0, 3.0, 4.0, 5.0])
    assert res["num_tracks"] == 5
    assert res["t"] == pytest.approx(expected.statistic) and res["p"] == pytest.approx(
        expected.pvalue
    )
    assert res["cohens_dz"] == pytest.approx(diff.mean() / diff.std(ddof=1))
    avg = paired_ttest(a, b, "usdr")  # per-track mean over the stems
    assert avg["mean_diff"] == pytest.approx(
        ((diff + np.array([0.1, 0, 0.5, 0.2, 0.3])) / 2).mean()
    )
    with pytest.raises(ValueError, match=">= 2 tracks"):
        paired_ttest(a.iloc[:2], b, "usdr", "bass")


def test_track_result_files_are_safe_unique_and_settings_checked(tmp_path):
    p1 = track_result_path(tmp_path, "AC/DC - Back: In Black")
    p2 = track_result_path(tmp_path, "AC_DC - Back_ In Black")
    assert p1.parent == tmp_path and p1 != p2 and "/" not in p1.name
    write_json_atomic(p1, {"settings": {"csdr": "fast"}, "scores": {}})
    assert read_track_result(p1, {"csdr": "fast"}) is not None
    assert read_track_result(p1, {"csdr": "museval"}) is None  # other settings: score again
    p2.write_text('{"settings": {"csdr": "fa')  # a truncated file is not a result
    assert read_track_result(p2, {"csdr": "fast"}) is None
    assert not list(tmp_path.glob(".*.tmp"))  # no temporary files left behind
