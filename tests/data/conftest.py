"""Fixtures of the data tests: small generated datasets, shared by the whole session."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from sfc.data.synth import SynthConfig, generate

SR = 44_100


@pytest.fixture(scope="session")
def mss_root(tmp_path_factory) -> Path:
    """MUSDB layout: 3 train + 1 valid + 1 test tracks of 9 s."""
    out = tmp_path_factory.mktemp("mss") / "demo"
    return generate(
        "mss",
        out,
        SynthConfig(seed=11, num_train=3, num_valid=1, num_test=1, duration=9.0),
        progress=False,
    )


@pytest.fixture(scope="session")
def cass_root(tmp_path_factory) -> Path:
    """DnR layout: 2 tr + 1 cv + 1 tt tracks of 9 s."""
    out = tmp_path_factory.mktemp("cass") / "demo"
    return generate(
        "cass",
        out,
        SynthConfig(seed=12, num_train=2, num_valid=1, num_test=1, duration=9.0),
        progress=False,
    )


@pytest.fixture
def mss_copy(mss_root, tmp_path) -> Path:
    """A private MUSDB-layout copy of one train track (empty valid list and test split) to break."""
    root = tmp_path / "copy"
    shutil.copytree(
        mss_root / "train" / "Demo Band 00 - Song 00", root / "train" / "Demo Band 00 - Song 00"
    )
    (root / "test").mkdir()
    (root / "valid_tracks.txt").write_text("")
    return root


def write_tiny_musdb(
    root: Path,
    names: dict[str, list[str]],
    seconds: float = 2.0,
    subtype: str = "FLOAT",
    seed: int = 0,
) -> Path:
    """A MUSDB-layout tree of short tracks of noise bursts (any subtype), for layout tests.

    Args:
        root: dataset root to create.
        names: folder ("train"/"test") -> track names.
    """
    rng = np.random.default_rng(seed)
    n = int(seconds * SR)
    for folder, tracks in names.items():
        for name in tracks:
            stems = {
                s: (0.1 * rng.standard_normal((n, 2))).astype(np.float32)
                for s in ("drums", "bass", "other", "vocals")
            }
            mix = sum(stems.values())
            (root / folder / name).mkdir(parents=True)
            for s, x in {**stems, "mixture": mix}.items():
                sf.write(root / folder / name / f"{s}.wav", x, SR, subtype=subtype)
    return root
