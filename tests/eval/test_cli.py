"""``sfc separate`` and ``sfc evaluate`` end to end with a tiny model: outputs, resume, bad input."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import soundfile as sf
import torch

from sfc.cli import main

SR = 44100
EXP = "mss-sfc_ca-tiny-k32"


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory) -> Path:
    from sfc.models import build_model, model_checkpoint

    torch.manual_seed(0)
    path = tmp_path_factory.mktemp("ckpt") / "model.pt"
    torch.save(model_checkpoint(build_model(EXP), experiment=EXP), path)
    return path


def _wav(path: Path, seconds: float, channels: int, sr: int = SR) -> np.ndarray:
    audio = 0.1 * np.random.default_rng(len(str(path))).standard_normal(
        (int(seconds * sr), channels)
    )
    path.parent.mkdir(parents=True, exist_ok=True)
    sf.write(path, audio.astype(np.float32), sr)
    return audio


def test_separate_files_and_folder_with_a_bad_file(tmp_path, checkpoint, capsys):
    _wav(tmp_path / "in" / "song.wav", 0.7, 2)
    _wav(tmp_path / "in" / "sub" / "voice.flac", 0.5, 1, sr=22050)  # mono, other rate
    (tmp_path / "in" / "broken.wav").write_bytes(b"RIFF....not audio")
    rc = main(
        [
            "separate",
            str(checkpoint),
            str(tmp_path / "in"),
            "--out",
            str(tmp_path / "out"),
            "--device",
            "cpu",
            "--chunk-seconds",
            "0.5",
            "--shift-seconds",
            "0.25",
        ]
    )
    err = capsys.readouterr()
    assert rc != 0 and "broken.wav" in err.err and "1 file(s) could not be separated" in err.err
    assert "duplicated" in err.out and "resampled 22050 Hz" in err.out  # the printed notes
    for stem in ("bass", "drums", "vocals", "other"):
        song = sf.info(tmp_path / "out" / "song" / f"{stem}.wav")
        assert (song.samplerate, song.channels, song.frames, song.subtype) == (
            SR,
            2,
            int(0.7 * SR),
            "PCM_24",
        )
        voice = sf.info(tmp_path / "out" / "sub" / "voice" / f"{stem}.wav")
        assert (voice.samplerate, voice.channels, voice.frames) == (22050, 1, int(0.5 * 22050))
    assert not (tmp_path / "out" / "broken").exists()


def test_separate_clear_errors(tmp_path, checkpoint, capsys):
    rc = main(["separate", str(checkpoint), str(tmp_path / "nope.wav"), "--out", str(tmp_path)])
    assert rc == 2 and "input not found" in capsys.readouterr().err
    _wav(tmp_path / "a.wav", 0.3, 2)
    torch.save({"weights": torch.zeros(3)}, tmp_path / "other.pt")
    rc = main(
        ["separate", str(tmp_path / "other.pt"), str(tmp_path / "a.wav"), "--out", str(tmp_path)]
    )
    assert rc == 2 and "not an sfc model checkpoint" in capsys.readouterr().err
    (tmp_path / "garbage.pt").write_bytes(b"\x00not a pickle")
    rc = main(
        ["separate", str(tmp_path / "garbage.pt"), str(tmp_path / "a.wav"), "--out", str(tmp_path)]
    )
    assert rc == 2 and "cannot read checkpoint" in capsys.readouterr().err
    (tmp_path / "bad.wav").write_bytes(b"junk")
    rc = main(["separate", str(checkpoint), str(tmp_path / "bad.wav"), "--out", str(tmp_path)])
    assert rc == 2 and "cannot read audio file" in capsys.readouterr().err
    rc = main(
        ["separate", str(checkpoint), str(tmp_path / "a.wav"), "--out", str(tmp_path)]
        + ["--threads", "0"]
    )
    assert rc == 2 and "--threads must be >= 1" in capsys.readouterr().err


def test_separate_threads_and_bf16_precision(tmp_path, checkpoint, monkeypatch):
    """--threads sets torch's threads; --precision bf16 reaches the streaming separation."""
    from sfc.eval import separate as separate_module

    seen = {}
    real = separate_module.separate_stream
    monkeypatch.setattr(
        separate_module, "separate_stream", lambda *a, **k: seen.update(k) or real(*a, **k)
    )
    monkeypatch.setattr(torch, "set_num_threads", lambda n: seen.update(threads=n))
    _wav(tmp_path / "a.wav", 0.3, 2)
    argv = ["separate", str(checkpoint), str(tmp_path / "a.wav"), "--out", str(tmp_path / "o")]
    assert main(argv + ["--precision", "bf16", "--threads", "1"]) == 0
    assert seen["precision"] == "bf16" and seen["threads"] == 1
    assert len(list((tmp_path / "o" / "a").glob("*.wav"))) == 4  # one stem per source


@pytest.fixture()
def fake_tracks(monkeypatch, tmp_path):
    """Two generated MSS tracks served through the sfc.data.tracks contract."""
    from sfc.data import tracks as tracks_mod

    def make(ref):
        rng = np.random.default_rng(len(ref.name))
        t = np.arange(int(1.0 * SR)) / SR
        src = np.stack([np.sin(2 * np.pi * f * t)[None].repeat(2, 0) for f in (60, 200, 440, 900)])
        src = (0.1 * src + 0.01 * rng.standard_normal(src.shape)).astype(np.float32)  # (4, 2, L)
        return tracks_mod.Track(ref=ref, mixture=src.sum(0), sources=src, sample_rate=SR)

    refs = [
        tracks_mod.TrackRef("mss", "test", name, tmp_path / name) for name in ("A - One", "B - Two")
    ]
    monkeypatch.setattr(tracks_mod, "list_tracks", lambda root, task, split: list(refs))
    calls = []
    monkeypatch.setattr(tracks_mod, "load_track", lambda ref: calls.append(ref.name) or make(ref))
    return calls


def test_evaluate_writes_tables_and_resumes(tmp_path, checkpoint, fake_tracks, capsys):
    args = [
        "evaluate",
        str(checkpoint),
        "--data-root",
        str(tmp_path),
        "--task",
        "mss",
        "--out-dir",
        str(tmp_path / "tracks"),
        "--scores",
        str(tmp_path / "scores.csv"),
        "--experiment",
        EXP,
        "--device",
        "cpu",
        "--chunk-seconds",
        "1.0",
        "--shift-seconds",
        "0.5",
    ]
    assert main(args) == 0
    table = pd.read_csv(tmp_path / "scores.csv")
    assert list(table.columns) == ["experiment", "track", "target", "metric", "value"]
    assert len(table) == 2 * 4 * 4
    assert set(table["metric"]) == {"usdr", "csdr", "spec_snr", "mdx_sdr"}
    assert table["value"].notna().all() and (table["experiment"] == EXP).all()
    summary = json.loads((tmp_path / "scores.json").read_text())
    assert summary["num_tracks"] == 2 and summary["provenance"]["versions"]["torch"]
    csdr_bass = table[(table.metric == "csdr") & (table.target == "bass")]["value"].median()
    assert summary["aggregates"]["csdr"]["median"]["bass"] == pytest.approx(csdr_bass)
    assert fake_tracks == ["A - One", "B - Two"]

    files = sorted((tmp_path / "tracks").glob("*.json"))
    assert len(files) == 2
    files[0].unlink()  # as if killed before the first track was scored
    kept = files[1].stat().st_mtime_ns
    assert main(args) == 0
    assert (
        len(fake_tracks) == 3 and files[1].stat().st_mtime_ns == kept
    )  # only the missing one redone
    assert "scored 1 track(s), reused 1" in capsys.readouterr().out
    pd.testing.assert_frame_equal(pd.read_csv(tmp_path / "scores.csv"), table)


def test_evaluate_rejects_checkpoint_of_another_experiment(
    tmp_path, checkpoint, fake_tracks, capsys
):
    rc = main(
        [
            "evaluate",
            str(checkpoint),
            "--data-root",
            str(tmp_path),
            "--task",
            "mss",
            "--out-dir",
            str(tmp_path),
            "--scores",
            str(tmp_path / "s.csv"),
            "--experiment",
            "mss-sfc_ca-tiny-k32-s7",
        ]
    )
    assert rc == 2 and "checkpoint of another experiment" in capsys.readouterr().err
    rc = main(
        [
            "evaluate",
            str(checkpoint),
            "--data-root",
            str(tmp_path),
            "--task",
            "cass",
            "--out-dir",
            str(tmp_path),
            "--scores",
            str(tmp_path / "s.csv"),
        ]
    )
    assert rc == 2 and "task 'cass'" in capsys.readouterr().err
    assert not fake_tracks


def test_evaluate_a_dedicated_model_with_trimmed_windows(tmp_path, fake_tracks):
    """A one-target MSTFA (reconstructed) model is scored on its target only; --chunking trimmed."""
    from sfc.models import build_model, model_checkpoint

    exp = "mss-mstfa_unet-tiny-vocals"
    torch.manual_seed(0)
    path = tmp_path / "vocals.pt"
    torch.save(model_checkpoint(build_model(exp), experiment=exp), path)
    args = ["evaluate", str(path), "--data-root", str(tmp_path), "--task", "mss"]
    args += ["--out-dir", str(tmp_path / "eval"), "--scores", str(tmp_path / "s.csv")]
    args += ["--device", "cpu", "--chunking", "trimmed", "--chunk-seconds", "0.5"]
    args += ["--shift-seconds", "0.5"]  # unused by trimmed chunking, checked all the same
    assert main(args + ["--trim-seconds", "0.05"]) == 0
    table = pd.read_csv(tmp_path / "s.csv")
    assert set(table["target"]) == {"vocals"} and "mdx_sdr" in set(table["metric"])
    summary = json.loads((tmp_path / "s.json").read_text())
    assert summary["settings"]["chunking"] == "trimmed"
