"""Silent reference stems (one convention for every metric), strict JSON, counts per cell, and a bad
track that is recorded instead of stopping the whole evaluation."""

from __future__ import annotations

import json
import math

import numpy as np
import pandas as pd
import pytest
import torch

from sfc.errors import UserError
from sfc.eval.metrics import TASK_METRICS, score_track
from sfc.eval.table import aggregate, aggregate_dict, tidy_table

SR = 8000


def _refs_ests(silent: int | None):
    rng = np.random.default_rng(0)
    refs = 0.1 * rng.standard_normal((4, 2, 3 * SR))
    if silent is not None:
        refs[silent] = 0.0
    ests = refs + 0.01 * rng.standard_normal(refs.shape)
    return refs, ests


@pytest.mark.parametrize("task", ["mss", "cass"])
def test_silent_reference_is_undefined_in_every_metric(task):
    targets = ["a", "b", "c", "d"][: 4 if task == "mss" else 3]
    refs, ests = _refs_ests(silent=1)
    refs, ests = refs[: len(targets)], ests[: len(targets)]
    res = score_track(refs, ests, targets, TASK_METRICS[task], SR)
    assert res["silent_references"] == ["b"]
    for metric in TASK_METRICS[task]:
        assert math.isnan(res["scores"][metric]["b"]), metric  # not −102 dB
        if metric == "csdr":
            continue  # PAPER: museval makes a frame NaN for every stem when any reference is silent
        assert all(math.isfinite(res["scores"][metric][t]) for t in targets if t != "b"), metric


def test_silent_reference_is_left_out_of_the_mean_and_counted():
    results = []
    for i, silent in enumerate([None, 3]):
        refs, ests = _refs_ests(silent)
        res = score_track(refs, ests, ["bass", "drums", "other", "vocals"], ["usdr"], SR)
        results.append({"experiment": "x", "track": f"t{i}", **res})
    table = tidy_table(results)
    agg = aggregate(table).set_index(["metric", "target"])
    assert agg.loc[("usdr", "vocals"), "num_tracks"] == 1
    assert agg.loc[("usdr", "bass"), "num_tracks"] == 2
    assert agg.loc[("usdr", "vocals"), "value"] > 15  # the silent track did not drag it down
    counts = aggregate_dict(table, counts=True)
    assert counts["usdr"]["mean"]["vocals"] == 1


def test_json_writer_writes_null_for_nan(tmp_path):
    from sfc.provenance import write_json_atomic

    write_json_atomic(tmp_path / "a.json", {"x": float("nan"), "y": [1.0, float("inf")], "z": 2})

    def strict(name):
        raise ValueError(f"bare {name} in JSON")

    data = json.loads((tmp_path / "a.json").read_text(), parse_constant=strict)
    assert data == {"x": None, "y": [1.0, None], "z": 2}


def test_report_cells_show_how_many_tracks_entered():
    from sfc.report.tables import build_table, to_markdown

    rows = []
    for track in ("t1", "t2", "t3"):
        for target in ("vocals", "bass", "drums", "other"):
            value = math.nan if (target == "vocals" and track != "t1") else 5.0
            rows.append(("mss-sfc_ca-small-k64", track, target, "usdr", value))
    scores = pd.DataFrame(rows, columns=["experiment", "track", "target", "metric", "value"])
    frame = build_table(
        "main_mss", ["mss-sfc_ca-small-k64"], scores, {"mss-sfc_ca-small-k64": {"params": {}}}
    )
    cell = frame[(frame["column"] == "usdr") & (frame["target"] == "vocals")].iloc[0]
    assert cell["n_tracks"] == 1
    assert frame[(frame["column"] == "usdr") & (frame["target"] == "bass")].iloc[0]["n_tracks"] == 3
    md = to_markdown(frame, "t")
    assert "(n=1)" in md and "(n=3)" not in md  # only cells with fewer tracks than the row say so


def test_a_bad_track_is_recorded_and_the_rest_scored(tmp_path, monkeypatch, capsys):
    from sfc.cli import main
    from sfc.data import tracks as tracks_mod
    from sfc.models import build_model, model_checkpoint

    exp = "mss-sfc_ca-tiny-k32"
    torch.manual_seed(0)
    ckpt = tmp_path / "model.pt"
    torch.save(model_checkpoint(build_model(exp), experiment=exp), ckpt)
    sr = 44100

    def load(ref):
        if ref.name == "B - Bad":
            raise UserError(f"{ref.path}/vocals.wav: 100 samples, but the mixture has 200")
        rng = np.random.default_rng(0)
        src = (0.1 * rng.standard_normal((4, 2, sr // 2))).astype(np.float32)
        src[2] = 0.0  # a silent vocals stem (task order: bass, drums, vocals, other)
        return tracks_mod.Track(ref=ref, mixture=src.sum(0), sources=src, sample_rate=sr)

    refs = [tracks_mod.TrackRef("mss", "test", n, tmp_path / n) for n in ("A - One", "B - Bad")]
    refs.append(tracks_mod.TrackRef("mss", "test", "C - Three", tmp_path / "C"))
    monkeypatch.setattr(tracks_mod, "list_tracks", lambda root, task, split: list(refs))
    monkeypatch.setattr(tracks_mod, "load_track", load)
    args = ["evaluate", str(ckpt), "--data-root", str(tmp_path), "--task", "mss"]
    args += ["--out-dir", str(tmp_path / "tracks"), "--scores", str(tmp_path / "s.csv")]
    args += ["--device", "cpu", "--chunk-seconds", "0.5", "--shift-seconds", "0.5"]
    rc = main(args)
    err = capsys.readouterr().err
    assert rc == 2 and "1 of 3 track(s) could not be scored" in err and "B - Bad" in err
    table = pd.read_csv(tmp_path / "s.csv")
    assert sorted(set(table["track"])) == ["A - One", "C - Three"]
    text = (tmp_path / "s.json").read_text()
    summary = json.loads(text, parse_constant=lambda c: pytest.fail(f"bare {c}"))
    assert list(summary["failed_tracks"]) == ["B - Bad"]
    assert "100 samples" in summary["failed_tracks"]["B - Bad"]
    assert summary["num_tracks"] == 2
    assert summary["aggregates"]["usdr"]["mean"]["vocals"] is None  # silent in every track
    assert summary["num_tracks_per_aggregate"]["usdr"]["mean"]["vocals"] == 0
