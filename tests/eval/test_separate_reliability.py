"""``sfc separate`` reliability: mirrored output paths, no silent overwrite, bad samples, bad --out, notes."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch
from tqdm import tqdm

from sfc.cli import main

SR = 44100
EXP = "mss-sfc_ca-tiny-k32"
STEMS = ("bass", "drums", "other", "vocals")


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory) -> Path:
    from sfc.models import build_model, model_checkpoint

    torch.manual_seed(0)
    path = tmp_path_factory.mktemp("ckpt") / "model.pt"
    torch.save(model_checkpoint(build_model(EXP), experiment=EXP), path)
    return path


def _wav(path: Path, seconds: float = 0.3, channels: int = 2, sr: int = SR, seed: int = 0):
    audio = 0.1 * np.random.default_rng(seed).standard_normal((int(seconds * sr), channels))
    path.parent.mkdir(parents=True, exist_ok=True)
    sf.write(path, audio.astype(np.float32), sr, subtype="FLOAT")
    return audio


def _separate(checkpoint: Path, *args: str) -> int:
    opts = ["--device", "cpu", "--chunk-seconds", "0.3", "--shift-seconds", "0.15"]
    return main(["separate", str(checkpoint), *args, *opts])


def _musdb_tree(root: Path) -> None:
    _wav(root / "Artist - One" / "mixture.wav", seed=1)
    _wav(root / "Artist - Two" / "mixture.wav", seed=2)


def test_output_mirrors_input_tree(tmp_path, checkpoint):
    _musdb_tree(tmp_path / "test")
    assert _separate(checkpoint, str(tmp_path / "test"), "--out", str(tmp_path / "out")) == 0
    for song in ("Artist - One", "Artist - Two"):
        for stem in STEMS:
            assert (tmp_path / "out" / song / "mixture" / f"{stem}.wav").is_file()
    assert not (tmp_path / "out" / "mixture").exists()
    assert not (tmp_path / "out" / "mixture_2").exists()
    assert not [p for p in (tmp_path / "out").rglob(".*")]  # no hidden temporary folder left


def test_existing_output_is_never_overwritten_without_flag(tmp_path, checkpoint, capsys):
    _musdb_tree(tmp_path / "test")
    out = tmp_path / "out"
    assert _separate(checkpoint, str(tmp_path / "test"), "--out", str(out)) == 0
    target = out / "Artist - One" / "mixture"
    (target / "bass.wav").write_bytes(b"an older model's stem")
    (target / "extra.wav").write_bytes(b"a stem of a different model")
    capsys.readouterr()
    rc = _separate(checkpoint, str(tmp_path / "test"), "--out", str(out))
    err = capsys.readouterr().err
    assert rc == 2 and "--overwrite" in err and "Artist - One" in err
    assert (target / "bass.wav").read_bytes() == b"an older model's stem"  # untouched
    # with --overwrite the whole folder is replaced: the stale extra stem is gone
    assert _separate(checkpoint, str(tmp_path / "test"), "--out", str(out), "--overwrite") == 0
    assert sorted(p.name for p in target.iterdir()) == [f"{s}.wav" for s in STEMS]
    assert sf.info(target / "bass.wav").frames == int(0.3 * SR)
    assert not [p for p in out.rglob(".*")]


def test_out_inside_input_folder_is_not_read_as_input(tmp_path, checkpoint, capsys):
    _wav(tmp_path / "music" / "song.wav")
    out = tmp_path / "music" / "separated"
    assert _separate(checkpoint, str(tmp_path / "music"), "--out", str(out)) == 0
    capsys.readouterr()
    assert _separate(checkpoint, str(tmp_path / "music"), "--out", str(out), "--overwrite") == 0
    assert "separated 1 of 1 file(s)" in capsys.readouterr().out
    assert sorted(p.relative_to(out).as_posix() for p in out.rglob("*.wav")) == [
        f"song/{s}.wav" for s in STEMS
    ]


@pytest.mark.parametrize("bad, name", [(np.nan, "NaN"), (np.inf, "Inf")])
def test_non_finite_samples_are_refused(tmp_path, checkpoint, capsys, bad, name):
    audio = _wav(tmp_path / "in" / "song.wav", seconds=0.3)
    audio[int(0.25 * SR), 1] = bad
    sf.write(tmp_path / "in" / "song.wav", audio.astype(np.float32), SR, subtype="FLOAT")
    rc = _separate(checkpoint, str(tmp_path / "in" / "song.wav"), "--out", str(tmp_path / "o"))
    err = capsys.readouterr().err
    assert rc == 2 and "song.wav" in err and name in err and "0.250 s" in err
    assert not (tmp_path / "o" / "song").exists()


def test_bad_out_is_refused_before_any_work(tmp_path, checkpoint, capsys, monkeypatch):
    import sfc.eval.separate_cli as cli

    _wav(tmp_path / "in" / "song.wav")
    calls = []
    monkeypatch.setattr(cli, "separate_file", lambda *a, **k: calls.append(a))
    (tmp_path / "afile").write_text("x")
    rc = _separate(checkpoint, str(tmp_path / "in"), "--out", str(tmp_path / "afile"))
    assert rc == 2 and "--out" in capsys.readouterr().err and not calls
    if os.geteuid() != 0:  # root writes anywhere
        locked = tmp_path / "locked"
        locked.mkdir()
        locked.chmod(0o500)
        rc = _separate(checkpoint, str(tmp_path / "in"), "--out", str(locked / "out"))
        assert rc == 2 and "--out" in capsys.readouterr().err and not calls


def test_notes_are_printed_through_the_progress_bar(tmp_path, checkpoint, monkeypatch):
    _wav(tmp_path / "in" / "voice.wav", channels=1, sr=22050)
    written = []
    real = tqdm.write
    monkeypatch.setattr(tqdm, "write", lambda s, *a, **k: written.append(s) or real(s, *a, **k))
    assert _separate(checkpoint, str(tmp_path / "in"), "--out", str(tmp_path / "out")) == 0
    assert any("duplicated" in s for s in written) and any(
        "resampled 22050 Hz" in s for s in written
    )


def test_streamed_file_equals_in_memory_separation(tmp_path, checkpoint):
    from sfc.eval.separate import separate_track
    from sfc.models import load_model

    audio = _wav(tmp_path / "in" / "song.wav", seconds=0.8)
    assert _separate(checkpoint, str(tmp_path / "in"), "--out", str(tmp_path / "out")) == 0
    model, _ = load_model(checkpoint, map_location="cpu")
    mix = torch.from_numpy(sf.read(tmp_path / "in" / "song.wav", dtype="float32")[0].T.copy())
    want = separate_track(model, mix, 0.3, 0.15, 4).clamp(-1, 1).numpy()  # (N, C, L)
    for n, stem in enumerate(["bass", "drums", "vocals", "other"]):
        got, sr = sf.read(tmp_path / "out" / "song" / f"{stem}.wav", dtype="float32")
        assert sr == SR and got.shape == (audio.shape[0], 2)
        np.testing.assert_allclose(got.T, want[n], atol=2e-6)  # 24-bit quantisation
