"""Track listing, the split rules, loading, and bad inputs naming the file."""

from __future__ import annotations

import numpy as np
import pytest
import soundfile as sf

from sfc.data.tracks import MUSDB_VALID_TRACKS, list_tracks, load_track
from sfc.errors import UserError
from sfc.experiments import TASKS

from .conftest import SR, write_tiny_musdb


def test_real_valid_list_gives_86_14_50_style_split(tmp_path):
    others = [f"Artist {i} - Song {i}" for i in range(3)]
    root = tmp_path / "musdb"
    for name in [*MUSDB_VALID_TRACKS, *others]:
        (root / "train" / name).mkdir(parents=True)
    (root / "test" / "Zed - Test").mkdir(parents=True)
    assert [r.name for r in list_tracks(root, "mss", "train")] == sorted(others)
    assert sorted(r.name for r in list_tracks(root, "mss", "valid")) == sorted(MUSDB_VALID_TRACKS)
    assert len(MUSDB_VALID_TRACKS) == 14
    test = list_tracks(root, "mss", "test")
    assert [(r.split, r.name, r.path) for r in test] == [
        ("test", "Zed - Test", root / "test" / "Zed - Test")
    ]


def test_missing_valid_track_is_an_error(tmp_path):
    (tmp_path / "train" / "Only - One").mkdir(parents=True)
    with pytest.raises(UserError, match="valid-list tracks missing"):
        list_tracks(tmp_path, "mss", "train")


def test_dnr_split_folders(cass_root):
    got = {
        s: [(r.name, r.path.parent.name) for r in list_tracks(cass_root, "cass", s)]
        for s in ("train", "valid", "test")
    }
    assert got == {
        "train": [("00000", "tr"), ("00001", "tr")],
        "valid": [("00002", "cv")],
        "test": [("00003", "tt")],
    }


def test_unknown_task_or_split(mss_root):
    with pytest.raises(UserError, match="unknown task"):
        list_tracks(mss_root, "speech", "train")
    with pytest.raises(UserError, match="unknown split"):
        list_tracks(mss_root, "mss", "tr")
    with pytest.raises(UserError, match="missing split folder"):
        list_tracks(mss_root / "nowhere", "mss", "test")


@pytest.mark.parametrize("task", ["mss", "cass"])
def test_load_track_order_and_shapes(task, mss_root, cass_root):
    root = mss_root if task == "mss" else cass_root
    ref = list_tracks(root, task, "test")[0]
    track = load_track(ref)
    spec = TASKS[task]
    assert track.sample_rate == SR
    assert track.mixture.shape == (spec.num_channels, 9 * SR) and track.mixture.dtype == np.float32
    assert track.sources.shape == (len(spec.sources), spec.num_channels, 9 * SR)
    assert track.sources.dtype == np.float32
    for n, name in enumerate(spec.sources):  # task order, not file order
        on_disk = sf.read(ref.path / f"{name}.wav", dtype="float32", always_2d=True)[0].T
        np.testing.assert_array_equal(track.sources[n], on_disk)
    np.testing.assert_allclose(track.sources.sum(0), track.mixture, atol=1e-6)


def _first_train(root):
    return list_tracks(root, "mss", "train")[0]


def _rewrite(path, data, sr=SR, subtype="FLOAT"):
    path.unlink()
    sf.write(path, data, sr, subtype=subtype)


def test_missing_stem(mss_copy):
    ref = _first_train(mss_copy)
    (ref.path / "vocals.wav").unlink()
    with pytest.raises(UserError, match=r"missing audio file: .*vocals\.wav"):
        load_track(ref)


def test_wrong_sample_rate(mss_copy):
    ref = _first_train(mss_copy)
    _rewrite(ref.path / "bass.wav", np.zeros((9 * 48_000, 2), np.float32), sr=48_000)
    with pytest.raises(UserError, match=r"bass\.wav: sample rate 48000 Hz, expected 44100"):
        load_track(ref)


def test_mono_where_stereo_expected(mss_copy):
    ref = _first_train(mss_copy)
    _rewrite(ref.path / "drums.wav", np.zeros(9 * SR, np.float32))
    with pytest.raises(UserError, match=r"drums\.wav: 1 channel\(s\), expected stereo"):
        load_track(ref)


def test_empty_wav(mss_copy):
    ref = _first_train(mss_copy)
    _rewrite(ref.path / "other.wav", np.zeros((0, 2), np.float32))
    with pytest.raises(UserError, match=r"other\.wav: empty audio file"):
        load_track(ref)


def test_corrupt_wav(mss_copy):
    ref = _first_train(mss_copy)
    (ref.path / "mixture.wav").write_bytes(b"RIFF\x00\x00garbage, not a wav file at all")
    with pytest.raises(UserError, match=r"cannot read audio file .*mixture\.wav"):
        load_track(ref)


def test_stems_of_different_lengths(mss_copy):
    ref = _first_train(mss_copy)
    _rewrite(ref.path / "vocals.wav", np.zeros((SR, 2), np.float32))
    with pytest.raises(UserError, match=r"vocals\.wav: 44100 samples, but the mixture has"):
        load_track(ref)


def test_pcm16_reads_as_float(tmp_path):
    root = write_tiny_musdb(tmp_path / "pcm", {"train": ["A - B"]}, seconds=0.5, subtype="PCM_16")
    (root / "valid_tracks.txt").write_text("")
    (root / "test").mkdir()
    track = load_track(list_tracks(root, "mss", "train")[0])
    assert track.sources.dtype == np.float32
    # 16-bit samples are multiples of 1 / 32768
    np.testing.assert_array_equal(track.sources * 32768, np.round(track.sources * 32768))
