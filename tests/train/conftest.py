"""Shared fixtures: a tiny generated MUSDB-layout dataset and its cache, and a fast train config."""

from __future__ import annotations

import shutil
from dataclasses import replace
from pathlib import Path

import pytest
import torch

import sfc.data.tracks as tracks_module
from sfc.data.cache import build_cache
from sfc.data.segment import SADConfig
from sfc.data.synth import SynthConfig, generate
from sfc.train.config import TrainConfig, recipe_config
from sfc.train.engine import RunPaths, train

EXPERIMENT = "mss-sfc_ca-tiny-k32"


@pytest.fixture(scope="session")
def mss_data(tmp_path_factory) -> tuple[Path, Path]:
    """(dataset root, train cache): 2 train + 1 valid + 1 test tracks of 3 s, 2-s cache segments."""
    base = tmp_path_factory.mktemp("train_data")
    root = generate(
        "mss",
        base / "mss",
        SynthConfig(seed=5, num_train=2, num_valid=1, num_test=1, duration=3.0),
        progress=False,
    )
    cache = build_cache(
        root,
        "mss",
        base / "cache",
        sad=SADConfig(segment_seconds=2.0, hop_seconds=1.0),
        progress=False,
    )
    return root, cache


def fast_config(**overrides) -> TrainConfig:
    """4 steps of batch 2 x 0.25 s, validation (1 track, one 3-s chunk) after steps 2 and 4."""
    cfg = replace(
        recipe_config("demo", "mss"),
        total_steps=4,
        steps_per_epoch=2,
        warmup_steps=2,
        decay_start=3,
        decay_every=1,
        batch_size=2,
        segment_seconds=0.25,
        valid_every_epochs=1,
        num_valid_tracks=1,
        valid_chunk_seconds=3.0,
        valid_shift_seconds=3.0,
        top_k=1,
        checkpoint_every=1,
        log_every=1,
        ema_decay=0.5,
        lr=3e-3,
        decay_gamma=0.5,
    )
    return replace(cfg, **overrides)


def set_args(cfg: TrainConfig) -> list[str]:
    """The ``--set`` arguments that turn the demo recipe into ``cfg`` on the command line."""
    base = recipe_config("demo", "mss").to_dict()
    out = []
    for key, value in cfg.to_dict().items():
        if value != base[key]:
            out += ["--set", f"{key}={'null' if value is None else value}"]
    return out


def run_paths(root: Path, cache: Path, base: Path) -> RunPaths:
    return RunPaths(root, cache, base / "work", base / "model.pt")


def load_ckpt(path: Path) -> dict:
    return torch.load(path, map_location="cpu", weights_only=False)


@pytest.fixture(scope="session")
def reference(mss_data, tmp_path_factory):
    """An uninterrupted 4-step run on a copy of the dataset whose test split was deleted, with every
    track listing/loading recorded."""
    root, cache = mss_data
    base = tmp_path_factory.mktemp("reference")
    no_test = base / "data"
    shutil.copytree(root, no_test, ignore=shutil.ignore_patterns("test"))
    seen: list[tuple[str, str]] = []
    list_tracks, load_track = tracks_module.list_tracks, tracks_module.load_track

    def spy_list(r, task, split):
        seen.append(("list", split))
        return list_tracks(r, task, split)

    def spy_load(ref):
        seen.append(("load", ref.split))
        return load_track(ref)

    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(tracks_module, "list_tracks", spy_list)
        mp.setattr(tracks_module, "load_track", spy_load)
        paths = run_paths(no_test, cache, base)
        train(EXPERIMENT, fast_config(), paths, device="cpu")
    return paths, seen


def assert_same_run(a: RunPaths, b: RunPaths) -> None:
    """Bit-identical last checkpoints (model, EMA, optimizer, step, top-k) and final models."""
    la, lb = load_ckpt(a.ckpt_dir / "last.pt"), load_ckpt(b.ckpt_dir / "last.pt")
    assert la["step"] == lb["step"] and la["topk"] == lb["topk"]
    for key in ("model", "ema"):
        assert all(torch.equal(la[key][k], lb[key][k]) for k in la[key]), key
    for sa, sb in zip(la["optimizer"]["state"].values(), lb["optimizer"]["state"].values()):
        assert all(torch.equal(sa[k], sb[k]) for k in sa)
    fa, fb = load_ckpt(a.output)["model"], load_ckpt(b.output)["model"]
    assert all(torch.equal(fa[k], fb[k]) for k in fa)


def train_args(experiment: str, paths: RunPaths, cfg: TrainConfig) -> list[str]:
    """``sfc train`` arguments (after ``-m sfc.cli``) that run ``cfg`` on CPU with ``paths``."""
    return [
        "train",
        experiment,
        "--data-root",
        str(paths.data_root),
        "--cache-dir",
        str(paths.cache_dir),
        "--work-dir",
        str(paths.work_dir),
        "--output",
        str(paths.output),
        "--recipe",
        "demo",
        "--device",
        "cpu",
        *set_args(cfg),
    ]
