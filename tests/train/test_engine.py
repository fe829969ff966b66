"""The training loop end to end on the real tiny SFC-CA model (in-process runs, CPU, fp32).

One reference run (module fixture) is checked for its output file, logs, provenance and top-k average,
and for never touching the test split; crash-and-resume and the NaN guard are compared against it.
"""

from __future__ import annotations

import csv
import math
from pathlib import Path

import pytest
import torch

from sfc.errors import UserError
from sfc.models import load_model
from sfc.train import engine
from sfc.train.checkpoint import average_state_dicts
from sfc.train.engine import Diverged, train

from .conftest import EXPERIMENT, assert_same_run, fast_config, load_ckpt, run_paths


def test_output_is_a_loadable_top_k_average_with_provenance(reference):
    paths, _ = reference
    model, ckpt = load_model(paths.output)
    assert ckpt["experiment"] == EXPERIMENT and ckpt["step"] == 4
    prov = ckpt["provenance"]
    assert prov["train_config"]["total_steps"] == 4 and prov["device"]["type"] == "cpu"
    # pip's metadata may or may not carry the local "+cpu" tag that torch.__version__ has
    assert prov["packages"]["torch"].split("+")[0] == torch.__version__.split("+")[0]
    assert set(prov["git"]) == {"commit", "dirty"} and len(prov["rank_weight_sha256"]) == 1
    assert (paths.work_dir / "provenance.json").is_file()
    # the final weights are the mean of the kept top-k EMA files, which are the EMA at those steps
    kept = ckpt["averaged"]
    assert len(kept) == 1 and kept[0]["step"] in (2, 4)
    tops = [load_ckpt(paths.ckpt_dir / e["path"])["model"] for e in kept]
    expected = average_state_dicts(tops)
    assert all(torch.equal(model.state_dict()[k], expected[k]) for k in expected)
    last = load_ckpt(paths.ckpt_dir / "last.pt")
    if kept[0]["step"] == 4:
        assert all(torch.equal(last["ema"][k], expected[k]) for k in expected)
    assert sorted(p.name for p in (paths.ckpt_dir / "top").iterdir()) == [
        Path(kept[0]["path"]).name
    ]
    mix = torch.randn(1, 2, 4096)
    assert model(mix).shape == (1, 4, 2, 4096)


def test_logs_have_every_step_and_validation(reference):
    paths, _ = reference
    with (paths.work_dir / "log.csv").open() as f:
        rows = list(csv.DictReader(f))
    train_rows = [r for r in rows if r["loss"]]
    valid_rows = [r for r in rows if r["val_loss"]]
    assert [int(r["step"]) for r in train_rows] == [1, 2, 3, 4]
    assert [int(r["step"]) for r in valid_rows] == [2, 4]
    assert all(math.isfinite(float(r["loss"])) and float(r["grad_norm"]) > 0 for r in train_rows)
    # lr of step s (1-based) is 3e-3 * min(s / warmup, 1) * decay: warm-up 2, decay from step index 3
    assert [float(r["lr"]) for r in train_rows] == pytest.approx([1.5e-3, 3e-3, 3e-3, 1.5e-3])
    v = valid_rows[-1]
    assert float(v["val_usdr_gain"]) == pytest.approx(
        float(v["val_usdr"]) - float(v["mix_usdr"]), abs=1e-4
    )
    assert list((paths.work_dir / "tensorboard").glob("events.out.tfevents.*"))


def test_training_never_touches_the_test_split(reference):
    _, seen = reference
    assert ("list", "valid") in seen and ("load", "valid") in seen
    assert all(split != "test" for _, split in seen)


def test_crash_then_resume_is_bit_identical(reference, mss_data, tmp_path, monkeypatch):
    ref_paths, _ = reference
    root, cache = mss_data
    paths = run_paths(ref_paths.data_root, cache, tmp_path)
    real_step = engine.clip_and_step

    def crash_at_step_3(run):
        if run.step == 2:  # steps 1-2 done and checkpointed; die inside step 3
            raise KeyboardInterrupt("simulated crash")
        return real_step(run)

    monkeypatch.setattr(engine, "clip_and_step", crash_at_step_3)
    with pytest.raises(KeyboardInterrupt):
        train(EXPERIMENT, fast_config(), paths, device="cpu")
    assert load_ckpt(paths.ckpt_dir / "last.pt")["step"] == 2 and not paths.output.exists()
    monkeypatch.setattr(engine, "clip_and_step", real_step)
    train(EXPERIMENT, fast_config(), paths, device="cpu")  # resumes from step 2
    assert_same_run(ref_paths, paths)
    with (paths.work_dir / "log.csv").open() as f:
        assert [int(r["step"]) for r in csv.DictReader(f) if r["loss"]] == [1, 2, 3, 4]


def test_nan_loss_stops_and_keeps_the_last_good_checkpoint(
    reference, mss_data, tmp_path, monkeypatch
):
    ref_paths, _ = reference
    paths = run_paths(ref_paths.data_root, mss_data[1], tmp_path)
    real_loss = engine.thresholded_snr_loss
    calls = {"n": 0}

    def nan_at_third_step(est, ref, mix):
        calls["n"] += 1
        loss = real_loss(est, ref, mix)
        return loss * float("nan") if calls["n"] == 3 else loss

    monkeypatch.setattr(engine, "thresholded_snr_loss", nan_at_third_step)
    with pytest.raises(Diverged, match=r"non-finite loss \(nan\) at step 3.*last good checkpoint"):
        train(EXPERIMENT, fast_config(), paths, device="cpu")
    last = load_ckpt(paths.ckpt_dir / "last.pt")
    assert last["step"] == 2 and all(torch.isfinite(v).all() for v in last["model"].values())
    assert not paths.output.exists()


def test_resume_with_another_config_is_refused(reference, tmp_path):
    ref_paths, _ = reference
    with pytest.raises(UserError, match=r"differs in \['lr'\]"):
        train(EXPERIMENT, fast_config(lr=1e-2), ref_paths, device="cpu")
