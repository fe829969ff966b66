"""The training-segment cache: contents equal the source audio, provenance, formats, atomicity."""

from __future__ import annotations

import json

import numpy as np
import pytest
import soundfile as sf

from sfc.data.cache import NpyAppender, build_cache, merge_runs, read_index
from sfc.data.segment import SADConfig
from sfc.data.tracks import list_tracks, load_track
from sfc.errors import UserError

from .conftest import SR, write_tiny_musdb

SAD = SADConfig(segment_seconds=4.0, hop_seconds=2.0)


@pytest.fixture(scope="module")
def wav_cache(mss_root, tmp_path_factory):
    return build_cache(
        mss_root, "mss", tmp_path_factory.mktemp("c") / "wav", "wav", SAD, progress=False
    )


def test_npy_appender_round_trip(tmp_path):
    out = NpyAppender(tmp_path / "a.npy", (3,), np.float32)
    out.append(np.arange(6, dtype=np.float32).reshape(2, 3))
    assert out.append(np.ones((4, 3), np.float32)) == 2
    out.close()
    arr = np.load(tmp_path / "a.npy", mmap_mode="r")
    assert arr.shape == (6, 3) and arr.dtype == np.float32
    np.testing.assert_array_equal(arr[:2], np.arange(6).reshape(2, 3))
    np.testing.assert_array_equal(arr[2:], 1)


def test_merge_runs():
    assert merge_runs(np.array([8, 0, 4, 20]), 8) == [(0, 16), (20, 28)]
    assert merge_runs(np.array([], dtype=np.int64), 8) == []


def test_index_records_provenance_and_train_tracks_only(wav_cache, mss_root):
    index = read_index(wav_cache)
    assert (index["split"], index["task"], index["format"]) == ("train", "mss", "wav")
    assert index["root"] == str(mss_root.resolve())
    assert index["segment_samples"] == 4 * SR and index["sad"]["segment_seconds"] == 4.0
    train = [r.name for r in list_tracks(mss_root, "mss", "train")]
    assert index["tracks"] == train  # no valid or test track
    assert index["sources"] == ["bass", "drums", "vocals", "other"]
    assert all(e["dtype"] == "float32" for e in index["stems"].values())  # the demo wavs are float


def test_cached_segments_equal_the_track_audio(wav_cache, mss_root):
    index = read_index(wav_cache)
    refs = list_tracks(mss_root, "mss", "train")
    tracks = {i: load_track(r) for i, r in enumerate(refs)}
    for n, name in enumerate(index["sources"]):
        entry = index["stems"][name]
        arr = np.load(wav_cache / entry["file"], mmap_mode="r")  # (L_total, C)
        assert arr.shape == tuple(entry["shape"])
        # 9-s tracks with 4-s segments every 2 s: at most 3 per track, the silent passages drop some
        assert 0 < len(entry["segments"]) <= 3 * len(refs)
        for t, start, offset in entry["segments"]:
            np.testing.assert_array_equal(
                arr[offset : offset + 4 * SR].T, tracks[t].sources[n][:, start : start + 4 * SR]
            )
        # overlapping segments share samples: less stored than segments x length
        assert arr.shape[0] <= len(entry["segments"]) * 4 * SR


def test_stft_cache_inverts_to_the_same_audio(mss_root, wav_cache, tmp_path):
    from sfc.data.dataset import DynamicMixDataset

    stft = build_cache(mss_root, "mss", tmp_path / "stft", "stft", SAD, progress=False)
    index = read_index(stft)
    assert index["format"] == "stft" and index["stft"] == {"n_fft": 2048, "hop_length": 512}
    a = DynamicMixDataset(wav_cache, "mss", 4, segment_seconds=3.0)
    b = DynamicMixDataset(stft, "mss", 4, segment_seconds=3.0)
    for i in range(2):
        np.testing.assert_allclose(a[i][1].numpy(), b[i][1].numpy(), atol=1e-4)


def test_pcm16_sources_are_stored_as_int16_losslessly(tmp_path):
    root = write_tiny_musdb(
        tmp_path / "pcm", {"train": ["A - B", "C - D"], "test": []}, seconds=5.0, subtype="PCM_16"
    )
    (root / "test").mkdir()
    (root / "valid_tracks.txt").write_text("C - D\n")
    cache = build_cache(root, "mss", tmp_path / "cache", "wav", SAD, progress=False)
    index = read_index(cache)
    assert index["tracks"] == ["A - B"]
    entry = index["stems"]["vocals"]
    assert entry["dtype"] == "int16"
    arr = np.load(cache / entry["file"], mmap_mode="r")
    track = load_track(list_tracks(root, "mss", "train")[0])
    t, start, offset = entry["segments"][0]
    np.testing.assert_array_equal(
        arr[offset : offset + 4 * SR].T / 32768.0, track.sources[2][:, start : start + 4 * SR]
    )


def test_short_train_track_is_skipped_with_a_warning(tmp_path):
    root = write_tiny_musdb(
        tmp_path / "m", {"train": ["Long - One", "Short - Two"], "test": []}, seconds=5.0
    )
    short = root / "train" / "Short - Two"
    for wav in short.glob("*.wav"):
        sf.write(wav, np.full((SR, 2), 0.1, np.float32), SR, subtype="FLOAT")
    (root / "test").mkdir()
    (root / "valid_tracks.txt").write_text("")
    with pytest.warns(UserWarning, match=r"skipping .*Short - Two.*shorter than one 4-s segment"):
        cache = build_cache(root, "mss", tmp_path / "cache", "wav", SAD, progress=False)
    index = read_index(cache)
    assert {seg[0] for e in index["stems"].values() for seg in e["segments"]} == {0}


def test_bad_input_leaves_no_cache_behind(mss_copy, tmp_path):
    ref = list_tracks(mss_copy, "mss", "train")[0]
    (ref.path / "bass.wav").write_bytes(b"not a wav")
    with pytest.raises(UserError, match=r"bass\.wav"):
        build_cache(mss_copy, "mss", tmp_path / "cache", "wav", SAD, progress=False)
    assert list(tmp_path.glob("*cache*")) == []  # neither the folder nor its temporary


def test_refuses_to_overwrite_and_unknown_format(wav_cache, mss_root, tmp_path):
    before = (wav_cache / "index.json").read_bytes()
    with pytest.raises(UserError, match="already exists"):
        build_cache(mss_root, "mss", wav_cache, "wav", SAD, progress=False)
    assert (wav_cache / "index.json").read_bytes() == before
    with pytest.raises(UserError, match="unknown cache format"):
        build_cache(mss_root, "mss", tmp_path / "x", "hdf5", SAD, progress=False)


def test_read_index_errors(tmp_path):
    with pytest.raises(UserError, match="not a cache folder"):
        read_index(tmp_path)
    (tmp_path / "index.json").write_text(json.dumps({"version": 0}))
    with pytest.raises(UserError, match="cache version"):
        read_index(tmp_path)
