"""``sfc train`` argument errors, and the training-step benchmark on CPU."""

from __future__ import annotations

import json
import math

import pytest

from sfc.bench import train_step
from sfc.cli import main

from .conftest import EXPERIMENT


@pytest.mark.parametrize(
    "extra, message",
    [
        (["--set", "bogus=1"], "unknown train config key 'bogus'"),
        (["--set", "lr=fast"], "lr must be float"),
        (["--config", "missing.yaml"], "train config file not found"),
    ],
)
def test_bad_options_exit_2_naming_the_problem(extra, message, tmp_path, capsys):
    argv = [
        "train",
        EXPERIMENT,
        "--data-root",
        str(tmp_path),
        "--cache-dir",
        str(tmp_path),
        "--work-dir",
        str(tmp_path / "w"),
        "--output",
        str(tmp_path / "m.pt"),
        *extra,
    ]
    assert main(argv) == 2
    assert message in capsys.readouterr().err
    assert not (tmp_path / "w").exists()  # nothing written before the config is valid


def test_unknown_experiment_exits_2(tmp_path, capsys):
    argv = [
        "train",
        "mss-nope-tiny-k32",
        "--data-root",
        ".",
        "--cache-dir",
        ".",
        "--work-dir",
        ".",
        "--output",
        "m.pt",
    ]
    assert main(argv) == 2 and "encoder 'nope'" in capsys.readouterr().err


def test_train_step_benchmark_runs_on_cpu(capsys):
    argv = [
        "--experiment",
        EXPERIMENT,
        "--steps",
        "2",
        "--warmup",
        "0",
        "--batch-size",
        "1",
        "--segment-seconds",
        "0.25",
        "--device",
        "cpu",
        "--json",
    ]
    assert train_step.main(argv) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["steps"] == 2 and result["median_step_s"] > 0 and result["peak_memory_gib"] > 0
    assert result["autocast_bf16"] is False and math.isfinite(result["final_loss"])
    assert 0.1 < result["params_m"] < 1.0


def test_train_step_benchmark_compile_and_reference_switches(monkeypatch, capsys):
    """--compile goes through train.compile (torch.compile, spied here: compiling takes minutes);
    --reference runs the pre-issue-12 formulation and restores it afterwards."""
    import torch

    from sfc.models.tf_locoformer import ConvSwiGLU

    compiled = []
    monkeypatch.setattr(torch, "compile", lambda module: compiled.append(module) or module)
    forward = ConvSwiGLU.forward
    argv = ["--experiment", EXPERIMENT, "--steps", "1", "--warmup", "0", "--batch-size", "1"]
    argv += ["--segment-seconds", "0.25", "--device", "cpu", "--json", "--threads", "1"]
    assert train_step.main(argv + ["--compile", "--reference"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["compile"] and result["reference"] and result["threads"] == 1
    assert len(compiled) == 1 and compiled[0].__class__.__name__ == "SeparationModel"
    assert result["first_step_s"] > 0 and math.isfinite(result["final_loss"])
    assert ConvSwiGLU.forward is forward
