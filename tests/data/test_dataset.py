"""Dynamic mixing (spec §8) and whole-track datasets."""

from __future__ import annotations

import json
import pickle
import shutil

import numpy as np
import pytest
import torch

from sfc.data.cache import build_cache
from sfc.data.dataset import DynamicMixDataset, TrackDataset
from sfc.data.segment import SADConfig
from sfc.data.tracks import list_tracks, load_track
from sfc.errors import UserError

from .conftest import SR


@pytest.fixture(scope="module")
def cache(mss_root, tmp_path_factory):
    sad = SADConfig(segment_seconds=4.0, hop_seconds=2.0)
    return build_cache(
        mss_root, "mss", tmp_path_factory.mktemp("dm") / "cache", "wav", sad, progress=False
    )


@pytest.fixture(scope="module")
def cass_cache(cass_root, tmp_path_factory):
    sad = SADConfig(segment_seconds=4.0, hop_seconds=2.0)
    return build_cache(
        cass_root, "cass", tmp_path_factory.mktemp("dm") / "cache", "wav", sad, progress=False
    )


def test_shapes_and_mixture_is_the_sum(cache, cass_cache):
    mix, src = DynamicMixDataset(cache, "mss", 8, segment_seconds=3.0)[0]
    assert mix.shape == (2, 3 * SR) and src.shape == (4, 2, 3 * SR)
    assert mix.dtype == src.dtype == torch.float32
    torch.testing.assert_close(mix, src.sum(0), rtol=0, atol=0)
    mix, src = DynamicMixDataset(cass_cache, "cass", 8, segment_seconds=3.0)[5]
    assert mix.shape == (1, 3 * SR) and src.shape == (3, 1, 3 * SR)


def test_deterministic_per_seed_epoch_index(cache):
    ds = DynamicMixDataset(cache, "mss", 8, segment_seconds=3.0, seed=1)
    first = ds[3][1]
    assert torch.equal(first, DynamicMixDataset(cache, "mss", 8, segment_seconds=3.0, seed=1)[3][1])
    assert not torch.equal(first, ds[4][1])
    ds.set_epoch(1)
    assert not torch.equal(first, ds[3][1])
    ds.set_epoch(0)
    assert torch.equal(first, ds[3][1])
    assert not torch.equal(
        first, DynamicMixDataset(cache, "mss", 8, segment_seconds=3.0, seed=2)[3][1]
    )


def test_same_examples_whatever_the_workers(cache):
    ds = DynamicMixDataset(cache, "mss", 6, segment_seconds=1.0)
    ds.set_epoch(3)
    serial = torch.cat([b[1] for b in torch.utils.data.DataLoader(ds, batch_size=2, num_workers=0)])
    parallel = torch.cat(
        [b[1] for b in torch.utils.data.DataLoader(ds, batch_size=2, num_workers=2)]
    )
    assert torch.equal(serial, parallel)
    pickle.loads(pickle.dumps(ds))  # memory maps are dropped, not pickled


def test_sources_are_rms_normalised_then_gained(cache):
    ds = DynamicMixDataset(cache, "mss", 50, segment_seconds=2.0, source_dropout=0.0)
    for i in range(5):
        draws = ds.draw(i)
        src = ds[i][1].double()  # (N, C, L)
        for n, (_, _, gain, active) in enumerate(draws):
            assert active and -10.0 <= gain <= 10.0
            rms = src[n].square().mean().sqrt().item()
            assert rms == pytest.approx(10 ** (gain / 20), rel=1e-4)


def test_each_source_is_a_crop_of_a_cached_segment(cache, mss_root):
    ds = DynamicMixDataset(cache, "mss", 10, segment_seconds=1.5, source_dropout=0.0)
    refs = list_tracks(mss_root, "mss", "train")
    src = ds[7][1]
    for n, (seg, start, _, _) in enumerate(ds.draw(7)):
        t, tstart, _ = ds.index["stems"][ds.sources[n]]["segments"][seg]
        raw = load_track(refs[t]).sources[n][:, tstart + start : tstart + start + int(1.5 * SR)]
        ratio = src[n].numpy() / np.where(raw == 0, np.nan, raw)
        assert np.nanstd(ratio) < 1e-4 * np.nanmean(
            np.abs(ratio)
        )  # a constant gain of the raw crop


def test_source_dropout(cache):
    ds = DynamicMixDataset(cache, "mss", 400, segment_seconds=1.0, source_dropout=0.5)
    active = np.array([[a for *_, a in ds.draw(i)] for i in range(400)])  # (400, N)
    assert active.any(axis=1).all()  # never all silent
    # P(dropped | not all dropped) = (0.5 - 0.5^4) / (1 - 0.5^4) = 0.467
    assert 0.42 < 1 - active.mean() < 0.51
    i = int(np.flatnonzero(~active.all(axis=1))[0])
    src = ds[i][1]
    for n in np.flatnonzero(~active[i]):
        assert torch.count_nonzero(src[n]) == 0
    assert (
        DynamicMixDataset(cache, "mss", 1, segment_seconds=1.0).dropout == 0.1
    )  # PAPER: spec §8 defaults per task


def test_refuses_a_cache_of_another_split(cache, tmp_path):
    bad = shutil.copytree(cache, tmp_path / "bad")
    index = json.loads((bad / "index.json").read_text())
    index["split"] = "test"
    (bad / "index.json").write_text(json.dumps(index))
    with pytest.raises(UserError, match="split 'test'; training reads only the train split"):
        DynamicMixDataset(bad, "mss", 4)


@pytest.mark.parametrize("keep", [0.5, 0.999, 100 / 1e9])
def test_truncated_cache_array_is_named_when_opened(cache, tmp_path, keep):
    bad = shutil.copytree(cache, tmp_path / "bad")
    index = json.loads((bad / "index.json").read_text())
    victim = bad / index["stems"]["drums"]["file"]
    data = victim.read_bytes()
    victim.write_bytes(
        data[: max(int(len(data) * keep), 100)]
    )  # as after a full disk or a cut copy
    with pytest.raises(UserError, match=rf"{victim.name}.*(truncated|not a valid)"):
        DynamicMixDataset(bad, "mss", 4, segment_seconds=1.0)
    victim.unlink()
    with pytest.raises(UserError, match=rf"{victim.name}.*missing"):
        DynamicMixDataset(bad, "mss", 4, segment_seconds=1.0)


def test_refuses_wrong_task_and_too_long_crops(cache):
    with pytest.raises(UserError, match="cache of task 'mss', not 'cass'"):
        DynamicMixDataset(cache, "cass", 4)
    with pytest.raises(UserError, match="at most the cache's 4-s segments"):
        DynamicMixDataset(cache, "mss", 4, segment_seconds=6.0)
    with pytest.raises(UserError, match="source_dropout"):
        DynamicMixDataset(cache, "mss", 4, segment_seconds=1.0, source_dropout=1.0)
    with pytest.raises(IndexError):
        DynamicMixDataset(cache, "mss", 4, segment_seconds=1.0)[4]


def test_track_dataset(mss_root, cass_root):
    ds = TrackDataset(mss_root, "mss", "valid")
    name, mix, src = ds[0]
    track = load_track(list_tracks(mss_root, "mss", "valid")[0])
    assert len(ds) == 1 and name == track.ref.name
    assert torch.equal(mix, torch.from_numpy(track.mixture)) and src.shape == (4, 2, 9 * SR)
    assert len(TrackDataset(cass_root, "cass", "test")) == 1
    with pytest.raises(UserError, match="'valid' or 'test'"):
        TrackDataset(mss_root, "mss", "train")
