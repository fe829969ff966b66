"""TrainConfig: paper values per task, demo recipe, overrides and their errors."""

from __future__ import annotations

import pytest

from sfc.errors import UserError
from sfc.train.config import TrainConfig, parse_set_overrides, recipe_config, resolve_config


def test_defaults_are_the_paper_mss_recipe():
    cfg = TrainConfig()
    assert cfg == recipe_config("paper", "mss")
    # PAPER: spec §8, MUSDB18-HQ column
    assert (cfg.total_steps, cfg.steps_per_epoch, cfg.valid_every) == (99_000, 110, 550)
    assert (cfg.warmup_steps, cfg.decay_start, cfg.decay_every, cfg.decay_gamma) == (
        5_000,
        60_500,
        220,
        0.98,
    )
    assert (cfg.lr, cfg.weight_decay, cfg.betas, cfg.grad_clip, cfg.ema_decay) == (
        1e-3,
        1e-2,
        (0.9, 0.999),
        5.0,
        0.999,
    )
    assert (cfg.batch_size, cfg.segment_seconds, cfg.source_dropout, cfg.seed, cfg.top_k) == (
        32,
        6.0,
        0.1,
        2026,
        5,
    )
    assert (cfg.valid_chunk_seconds, cfg.valid_shift_seconds) == (12.0, 6.0)
    assert cfg.compile is False  # torch.compile is opt-in, not the paper's recipe


def test_paper_cass_recipe():
    cfg = recipe_config("paper", "cass")
    assert (cfg.total_steps, cfg.steps_per_epoch, cfg.valid_every) == (203_100, 1_354, 1_354)
    assert (cfg.decay_start, cfg.decay_every, cfg.decay_gamma) == (101_550, 1_354, 0.96)
    assert (
        cfg.total_steps == 150 * cfg.steps_per_epoch and cfg.decay_start == 75 * cfg.steps_per_epoch
    )
    assert (cfg.source_dropout, cfg.num_valid_tracks, cfg.batch_size) == (0.05, 80, 32)
    assert cfg.micro_batch_size == 4


@pytest.mark.parametrize(
    "world_size, per_rank, micro, accumulation",
    [(1, 32, 4, 8), (2, 16, 4, 4), (4, 8, 4, 2), (8, 4, 4, 1), (16, 2, 2, 1), (32, 1, 1, 1)],
)
def test_paper_global_batch_is_32_on_any_number_of_gpus(world_size, per_rank, micro, accumulation):
    plan = recipe_config("paper", "mss").batch_plan(world_size)
    assert (plan.global_batch, plan.per_rank, plan.micro, plan.accumulation) == (
        32,
        per_rank,
        micro,
        accumulation,
    )
    assert plan.world_size * plan.micro * plan.accumulation == 32


@pytest.mark.parametrize("world_size", [3, 5, 6, 7, 64])
def test_world_size_that_does_not_divide_the_global_batch_is_refused(world_size):
    with pytest.raises(UserError, match=f"cannot be split over {world_size} processes"):
        recipe_config("paper", "mss").batch_plan(world_size)


def test_micro_batch_that_does_not_divide_the_rank_share_is_refused():
    cfg = resolve_config("mss", "paper", sets=["micro_batch_size=3"])
    with pytest.raises(UserError, match="micro_batch_size 3 does not divide"):
        cfg.batch_plan(2)  # 16 examples per process


def test_demo_recipe_is_small():
    cfg = recipe_config("demo", "mss")
    assert cfg.recipe == "demo" and cfg.task == "mss"
    assert cfg.total_steps <= 1000 and cfg.segment_seconds < 6.0 and cfg.num_workers == 0


def test_yaml_then_set_overrides(tmp_path):
    path = tmp_path / "over.yaml"
    path.write_text("lr: 3e-3\nbatch_size: 2\nbetas: [0.8, 0.99]\n")
    cfg = resolve_config(
        "mss", "paper", seed=7, yaml_path=path, sets=["batch_size=3", "num_valid_tracks=null"]
    )
    assert cfg.lr == pytest.approx(3e-3) and isinstance(
        cfg.lr, float
    )  # YAML reads 3e-3 as a string
    assert cfg.batch_size == 3  # --set wins over the file
    assert cfg.betas == (0.8, 0.99) and cfg.seed == 7 and cfg.num_valid_tracks is None


def test_unknown_key_is_an_error_naming_it(tmp_path):
    with pytest.raises(UserError, match="'learning_rate'"):
        resolve_config("mss", sets=["learning_rate=1"])
    path = tmp_path / "bad.yaml"
    path.write_text("warmup: 10\n")
    with pytest.raises(UserError, match=r"bad\.yaml.*'warmup'"):
        resolve_config("mss", yaml_path=path)


@pytest.mark.parametrize(
    "pair, match",
    [
        ("batch_size=two", "batch_size must be int"),
        ("batch_size=0", "batch_size must be >= 1"),
        ("precision=fp16", "precision"),
        ("compile=maybe", "compile must be bool"),
        ("betas=[0.9]", "betas must be a list of 2"),
        ("lr", "key=value"),
        ("task=cass", "does not match"),
    ],
)
def test_bad_values_are_errors(pair, match):
    with pytest.raises(UserError, match=match):
        resolve_config("mss", sets=[pair])


def test_set_values_are_yaml_scalars():
    assert parse_set_overrides(["a=1", "b=0.5", "c=auto", "d=[1, 2]"]) == {
        "a": 1,
        "b": 0.5,
        "c": "auto",
        "d": [1, 2],
    }


@pytest.mark.parametrize(
    "pair, match",
    [
        ("lr=-1", r"lr must be > 0, got -1\.0"),
        ("lr=0", "lr must be > 0"),
        ("weight_decay=-0.1", "weight_decay must be >= 0"),
        ("grad_clip=0", "grad_clip must be > 0"),
        ("decay_gamma=0", r"decay_gamma must be in \(0, 1\]"),
        ("decay_gamma=1.5", "decay_gamma"),
        ("betas=[0.9, 1.0]", r"betas must be in \[0, 1\)"),
        ("segment_seconds=0", "segment_seconds must be > 0"),
        ("valid_chunk_seconds=-2", "valid_chunk_seconds must be > 0"),
        ("valid_shift_seconds=0", "valid_shift_seconds must be > 0"),
        ("gain_db=-3", "gain_db must be >= 0"),
        ("warmup_steps=-1", "warmup_steps must be >= 0"),
        ("decay_start=-5", "decay_start must be >= 0"),
        ("num_workers=-1", "num_workers must be >= 0"),
        ("num_valid_tracks=0", "num_valid_tracks must be >= 1"),
        ("lr=.nan", "lr must be a finite number"),
        ("grad_clip=.inf", "grad_clip must be a finite number"),
    ],
)
def test_out_of_range_values_are_errors_naming_the_key(pair, match):
    with pytest.raises(UserError, match=match):
        resolve_config("mss", sets=[pair])


def test_no_clipping_is_a_valid_grad_clip():
    assert resolve_config("mss", sets=["grad_clip=null"]).grad_clip is None
    assert resolve_config("mss", "lightsaft").grad_clip is None
