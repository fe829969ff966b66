"""Training the baseline families: LightSAFT-Net (conditioned, spectrogram MSE, the `lightsaft` recipe's
options) and the MSTFA (reconstructed) U-Net (dedicated single target)."""

from __future__ import annotations

import csv
from dataclasses import replace

import pytest
import torch

from sfc.errors import UserError
from sfc.models import load_model
from sfc.train.config import recipe_config
from sfc.train.engine import draw_conditions, train
from sfc.train.schedule import build_scheduler

from .conftest import fast_config, load_ckpt, run_paths


def read_log(paths) -> list[dict[str, str]]:
    with (paths.work_dir / "log.csv").open() as f:
        return list(csv.DictReader(f))


def lightsaft_config(**overrides):
    """The `lightsaft` recipe's options at the fast test size."""
    lsaft = recipe_config("lightsaft", "mss")
    keys = (
        "schedule", "optimizer", "weight_decay", "grad_clip", "ema_decay", "loss", "gain_db",
        "source_dropout", "normalize_sources", "valid_chunking", "val_metric",
    )  # fmt: skip
    cfg = fast_config(**{k: getattr(lsaft, k) for k in keys}, recipe="lightsaft")
    cfg = replace(cfg, valid_chunk_seconds=1.0, valid_shift_seconds=1.0, valid_trim_seconds=0.1)
    return replace(cfg, **overrides)


def test_lightsaft_recipe_holds_the_authors_values():
    cfg = recipe_config("lightsaft", "mss")
    assert (cfg.batch_size, cfg.lr, cfg.optimizer, cfg.weight_decay) == (64, 5e-4, "adam", 0.0)
    assert cfg.grad_clip is None and cfg.ema_decay == 0.0 and cfg.schedule == "constant"
    assert round(cfg.segment_seconds * 44_100) == 261_120 and not cfg.normalize_sources
    assert (cfg.loss, cfg.val_metric, cfg.valid_chunking) == ("spec_mse", "l1", "trimmed")
    assert round(cfg.valid_trim_seconds * 44_100) == 16_384
    plan = cfg.batch_plan(4)
    assert (plan.per_rank, plan.micro, plan.accumulation) == (16, 16, 1)  # the authors' 4 x 16


def test_constant_schedule_keeps_the_lr():
    param = torch.nn.Parameter(torch.zeros(1))
    opt = torch.optim.Adam([param], lr=5e-4)
    sched = build_scheduler(opt, recipe_config("lightsaft", "mss"))
    lrs = []
    for _ in range(5):
        lrs.append(opt.param_groups[0]["lr"])
        opt.step()
        sched.step()
    assert lrs == [5e-4] * 5


def test_conditions_do_not_depend_on_the_batch_split_and_always_mix():
    cfg = replace(recipe_config("lightsaft", "mss"), batch_size=16)
    for step in range(50):
        whole = draw_conditions(cfg, step, 0, 16, 4)
        parts = [draw_conditions(cfg, step, first, 8, 4) for first in (0, 8)]
        assert torch.equal(whole, torch.cat(parts))  # 8 i.i.d. draws are never all equal here
        pairs = [draw_conditions(cfg, step, first, 2, 4) for first in range(0, 16, 2)]
        assert all(len(set(p.tolist())) == 2 for p in pairs)  # redrawn when single-condition
        assert torch.equal(draw_conditions(cfg, step, 4, 2, 4), pairs[2])  # a resume repeats it
    assert not torch.equal(draw_conditions(cfg, 0, 0, 16, 4), draw_conditions(cfg, 1, 0, 16, 4))


def test_lightsaft_trains_end_to_end_with_its_recipe(mss_data, tmp_path):
    root, cache = mss_data
    paths = run_paths(root, cache, tmp_path)
    cfg = lightsaft_config()
    train("mss-lightsaft-tiny", cfg, paths, device="cpu")
    model, ckpt = load_model(paths.output)
    assert ckpt["experiment"] == "mss-lightsaft-tiny" and model.conditioned
    last = load_ckpt(paths.ckpt_dir / "last.pt")
    assert last["scheduler"]["_last_lr"] == [cfg.lr]  # constant
    assert "exp_avg" in next(iter(last["optimizer"]["state"].values()))  # Adam state
    val = [r for r in read_log(paths) if r["val_loss"]]
    assert val and all(float(r["val_loss"]) > 0 for r in val)
    assert all(val[-1][f"val_usdr_{s}"] for s in ("bass", "drums", "vocals", "other"))


def test_conditioned_model_refuses_micro_batches_of_one(mss_data, tmp_path):
    root, cache = mss_data
    cfg = lightsaft_config(micro_batch_size=1)
    with pytest.raises(UserError, match="micro-batches of >= 2"):
        train("mss-lightsaft-tiny", cfg, run_paths(root, cache, tmp_path), device="cpu")


def test_spec_mse_needs_a_mapping_model(mss_data, tmp_path):
    root, cache = mss_data
    with pytest.raises(UserError, match="spec_mse needs a spectrogram-mapping model"):
        train(
            "mss-sfc_ca-tiny-k32",
            fast_config(loss="spec_mse"),
            run_paths(root, cache, tmp_path),
            device="cpu",
        )


def test_dedicated_mstfa_unet_trains_and_validates_on_its_target_only(mss_data, tmp_path):
    root, cache = mss_data
    paths = run_paths(root, cache, tmp_path)
    train("mss-mstfa_unet-tiny-vocals", fast_config(total_steps=2), paths, device="cpu")
    model, _ = load_model(paths.output)
    assert model.num_sources == 1
    val = [r for r in read_log(paths) if r["val_loss"]][-1]
    assert val["val_usdr_vocals"] and "val_usdr_bass" not in val
