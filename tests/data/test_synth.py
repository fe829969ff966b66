"""The demo generator: layout, exact mixtures, determinism, silences, distinct spectra."""

from __future__ import annotations

import filecmp
import itertools
import time

import numpy as np
import pytest
import soundfile as sf

from sfc.data.synth import DNR_FILE_ORDER, MUSDB_FILE_ORDER, SynthConfig, generate
from sfc.data.tracks import list_tracks
from sfc.errors import UserError


def test_musdb_layout_and_format(mss_root):
    assert sorted(p.name for p in (mss_root / "train").iterdir()) == [
        f"Demo Band {i:02d} - Song {i:02d}" for i in range(4)
    ]
    assert [p.name for p in (mss_root / "test").iterdir()] == ["Demo Band 04 - Song 04"]
    for wav in (mss_root / "train" / "Demo Band 00 - Song 00").glob("*.wav"):
        info = sf.info(wav)
        assert (info.samplerate, info.channels, info.subtype, info.frames) == (
            44_100,
            2,
            "FLOAT",
            9 * 44_100,
        )
    assert sorted(
        w.stem for w in (mss_root / "test" / "Demo Band 04 - Song 04").glob("*.wav")
    ) == sorted(["mixture", *MUSDB_FILE_ORDER])


def test_dnr_layout_and_format(cass_root):
    assert {f: len(list((cass_root / f).iterdir())) for f in ("tr", "cv", "tt")} == {
        "tr": 2,
        "cv": 1,
        "tt": 1,
    }
    for wav in (cass_root / "cv" / "00002").glob("*.wav"):
        info = sf.info(wav)
        assert (info.samplerate, info.channels, info.subtype) == (44_100, 1, "FLOAT")


def test_generated_valid_list_drives_the_split(mss_root):
    assert (mss_root / "valid_tracks.txt").read_text() == "Demo Band 03 - Song 03\n"
    counts = {
        s: [r.name for r in list_tracks(mss_root, "mss", s)] for s in ("train", "valid", "test")
    }
    assert counts["valid"] == ["Demo Band 03 - Song 03"]
    assert len(counts["train"]) == 3 and "Demo Band 03 - Song 03" not in counts["train"]


@pytest.mark.parametrize(
    "task,folder,mix_name,order",
    [("mss", "train", "mixture", MUSDB_FILE_ORDER), ("cass", "tr", "mix", DNR_FILE_ORDER)],
)
def test_mixture_is_the_exact_sum(task, folder, mix_name, order, mss_root, cass_root):
    root = mss_root if task == "mss" else cass_root
    for track in (root / folder).iterdir():
        mix = sf.read(track / f"{mix_name}.wav", dtype="float32")[0]
        total = sf.read(track / f"{order[0]}.wav", dtype="float32")[0].copy()
        for name in order[1:]:
            total += sf.read(track / f"{name}.wav", dtype="float32")[0]
        np.testing.assert_array_equal(mix, total)
        assert np.abs(mix).max() <= 0.9 + 1e-6


def test_same_seed_gives_identical_bytes(tmp_path):
    cfg = SynthConfig(seed=5, num_train=1, num_valid=1, num_test=0, duration=1.5)
    a = generate("mss", tmp_path / "a", cfg, progress=False)
    time.sleep(1.0)  # libsndfile stamps float wavs with the time: it must not leak into the bytes
    b = generate("mss", tmp_path / "b", cfg, progress=False)
    c = generate(
        "mss",
        tmp_path / "c",
        SynthConfig(seed=6, num_train=1, num_valid=1, num_test=0, duration=1.5),
        progress=False,
    )
    files = sorted(p.relative_to(a) for p in a.rglob("*") if p.is_file())
    assert len(files) == 2 * 5 + 2  # 2 tracks x 5 wavs + valid list + synth.json
    match, mismatch, errors = filecmp.cmpfiles(a, b, [str(f) for f in files], shallow=False)
    assert not mismatch and not errors
    assert (a / "train" / "Demo Band 00 - Song 00" / "vocals.wav").read_bytes() != (
        c / "train" / "Demo Band 00 - Song 00" / "vocals.wav"
    ).read_bytes()


def test_every_stem_has_a_silent_passage(mss_root, cass_root):
    for track in [*(mss_root / "train").iterdir(), *(cass_root / "tr").iterdir()]:
        for wav in track.glob("*.wav"):
            if wav.stem in ("mixture", "mix"):
                continue
            x = np.abs(sf.read(wav, always_2d=True)[0]).max(axis=1)  # (L,)
            edges = np.flatnonzero(np.diff(np.concatenate([[0], x == 0, [0]]).astype(int)))
            longest = (edges[1::2] - edges[::2]).max(initial=0)  # longest run of exact zeros
            assert longest >= 0.5 * 44_100, f"{wav}: no 0.5-s silence"


def _band_spectrum(x: np.ndarray) -> np.ndarray:
    spec = np.abs(np.fft.rfft(x.mean(axis=0))) ** 2
    freqs = np.fft.rfftfreq(x.shape[-1], 1 / 44_100)
    edges = np.geomspace(30, 20_000, 41)
    bands = np.array(
        [spec[(freqs >= a) & (freqs < b)].sum() for a, b in zip(edges[:-1], edges[1:])]
    )
    return np.log10(bands / bands.sum() + 1e-9)


def test_stems_are_spectrally_distinct_and_not_white_noise(mss_root, cass_root):
    for track in [mss_root / "train" / "Demo Band 00 - Song 00", cass_root / "tr" / "00000"]:
        stems = {
            w.stem: sf.read(w, always_2d=True)[0].T
            for w in track.glob("*.wav")
            if w.stem not in ("mixture", "mix")
        }
        spectra = {k: _band_spectrum(v) for k, v in stems.items()}
        for a, b in itertools.combinations(spectra, 2):
            assert np.corrcoef(spectra[a], spectra[b])[0, 1] < 0.9, (a, b)
        for name, x in stems.items():
            spec = np.abs(np.fft.rfft(x.mean(axis=0))) ** 2
            freqs = np.fft.rfftfreq(x.shape[-1], 1 / 44_100)
            assert spec[freqs > 5000].sum() / spec.sum() < 0.5, f"{name} looks like white noise"


def test_bass_is_low_and_drums_are_bright(mss_root):
    track = mss_root / "train" / "Demo Band 00 - Song 00"

    def centroid_and_hf(name):
        x = sf.read(track / f"{name}.wav")[0].mean(axis=1)
        spec, freqs = np.abs(np.fft.rfft(x)) ** 2, np.fft.rfftfreq(x.size, 1 / 44_100)
        return (freqs * spec).sum() / spec.sum(), spec[freqs > 5000].sum() / spec.sum()

    feats = {n: centroid_and_hf(n) for n in MUSDB_FILE_ORDER}
    assert feats["bass"][0] < 200
    assert feats["drums"][1] == max(f[1] for f in feats.values())
    assert 200 < feats["vocals"][0] < 3000 and 200 < feats["other"][0] < 3000


def test_refuses_to_overwrite(mss_root):
    before = sorted(p.name for p in mss_root.rglob("*"))
    with pytest.raises(UserError, match="already exists"):
        generate(
            "mss",
            mss_root,
            SynthConfig(num_train=1, num_valid=0, num_test=0, duration=1.0),
            progress=False,
        )
    assert sorted(p.name for p in mss_root.rglob("*")) == before


def test_bad_config_is_a_user_error():
    with pytest.raises(UserError):
        SynthConfig(num_train=0, num_valid=0)
    with pytest.raises(UserError):
        SynthConfig(duration=0.1)
