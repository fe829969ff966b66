"""Training learns: a short run of the tiny SFC-CA separates the generated data better than silence.

The bar is the all-zero estimate (uSDR 0 dB by construction), scored with the same metric and the same
chunked inference on the held-out valid track; the trained model must clear it by a margin that an
untrained model (checked here too) does not reach.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

from sfc.data.cache import build_cache
from sfc.data.segment import SADConfig
from sfc.data.synth import SynthConfig, generate
from sfc.eval.metrics import usdr
from sfc.eval.separate import separate_track
from sfc.models import build_model, load_model
from sfc.train.data import load_valid_tracks
from sfc.train.dist import DistInfo

from .conftest import EXPERIMENT, fast_config, run_paths

MARGIN_DB = 1.0


def _valid_usdr(model, tracks, cfg) -> tuple[float, float]:
    """(model uSDR, all-zero estimate uSDR), mean over sources and valid tracks."""
    ours, zero = [], []
    for track in tracks:
        mix = torch.from_numpy(track.mixture)
        ref = torch.from_numpy(track.sources)
        est = separate_track(
            model, mix, cfg.valid_chunk_seconds, cfg.valid_shift_seconds, 1, torch.device("cpu")
        )
        ours.append(usdr(ref, est).mean())
        zero.append(usdr(ref, torch.zeros_like(ref)).mean())
    return float(np.mean(ours)), float(np.mean(zero))


@pytest.mark.slow
def test_tiny_sfc_ca_beats_the_all_zero_estimate_on_valid(tmp_path):
    from sfc.train.engine import train

    root = generate(
        "mss",
        tmp_path / "mss",
        SynthConfig(seed=11, num_train=4, num_valid=1, num_test=0, duration=8.0),
        progress=False,
    )
    cache = build_cache(
        root,
        "mss",
        tmp_path / "cache",
        sad=SADConfig(segment_seconds=1.0, hop_seconds=0.5),
        progress=False,
    )
    cfg = fast_config(
        total_steps=80,
        steps_per_epoch=40,
        warmup_steps=10,
        decay_start=60,
        decay_every=10,
        decay_gamma=0.7,
        batch_size=4,
        micro_batch_size=4,
        segment_seconds=1.0,
        lr=3e-3,
        ema_decay=0.9,
        valid_chunk_seconds=8.0,
        valid_shift_seconds=8.0,
    )
    paths = run_paths(root, cache, tmp_path)
    train(EXPERIMENT, cfg, paths, device="cpu")
    tracks = load_valid_tracks(root, "mss", None, DistInfo(0, 1, torch.device("cpu")))

    untrained = build_model(EXPERIMENT).eval()
    before, zero = _valid_usdr(untrained, tracks, cfg)
    model, _ = load_model(paths.output)
    after, zero_again = _valid_usdr(model.eval(), tracks, cfg)

    assert zero == zero_again == pytest.approx(0.0, abs=1e-9)
    assert before < zero + MARGIN_DB, f"untrained model already at {before:.2f} dB"
    assert after > zero + MARGIN_DB, f"trained {after:.2f} dB vs all-zero {zero:.2f} dB"
