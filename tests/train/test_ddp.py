"""DistributedDataParallel under torchrun: a global batch of 2 as 2 CPU processes (gloo) x 1 example
== 1 process x 2 accumulation steps of 1 example, through the whole engine."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import torch

from sfc.models import build_model
from sfc.train.engine import train

from .conftest import EXPERIMENT, fast_config, load_ckpt, run_paths, train_args

REPO = Path(__file__).resolve().parents[2]


def test_two_ranks_match_one_process_with_the_doubled_batch(mss_data, tmp_path):
    # ASSUMPTION: a small lr keeps Adam from amplifying the float re-association of the gradient
    # all-reduce (sum of 2 per-rank means vs 1 mean over 2B) beyond 1e-6 in 4 steps; the largest weight difference
    # is ~4e-6 at lr 3e-3 and ~1.5e-6 at lr 3e-4 (Adam divides tiny gradients by their own size).
    cfg = fast_config(lr=1e-4, micro_batch_size=1)  # global batch 2
    ref_paths = run_paths(*mss_data, tmp_path / "single")
    train(EXPERIMENT, cfg, ref_paths, device="cpu")  # 1 process x 2 accumulation steps x 1
    paths = run_paths(*mss_data, tmp_path / "ddp")  # 2 processes x 1 accumulation step x 1
    cmd = [
        sys.executable,
        "-m",
        "torch.distributed.run",
        "--standalone",
        "--nproc_per_node",
        "2",
        "-m",
        "sfc.cli",
        *train_args(EXPERIMENT, paths, cfg),
    ]
    env = {**os.environ, "PYTHONPATH": str(REPO), "OMP_NUM_THREADS": "1"}
    proc = subprocess.run(cmd, cwd=REPO, env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]

    final = load_ckpt(paths.output)
    digests = final["provenance"]["rank_weight_sha256"]
    assert len(digests) == 2 and digests[0] == digests[1]  # both ranks hold bit-identical weights
    assert final["provenance"]["device"]["world_size"] == 2
    assert final["provenance"]["batch"] == {
        "global_batch": 2, "world_size": 2, "per_rank": 1, "micro": 1, "accumulation": 1
    }  # fmt: skip
    single_prov = load_ckpt(ref_paths.output)["provenance"]["batch"]
    assert (single_prov["world_size"], single_prov["accumulation"]) == (1, 2)
    ddp, single = load_ckpt(paths.ckpt_dir / "last.pt"), load_ckpt(ref_paths.ckpt_dir / "last.pt")
    assert ddp["step"] == single["step"] == 4 and ddp["sampler"]["global_batch"] == 2
    for key in ("model", "ema"):
        for name, value in single[key].items():
            torch.testing.assert_close(
                ddp[key][name], value, rtol=0, atol=1e-6, msg=f"{key}.{name}"
            )
    torch.manual_seed(cfg.seed)  # the engine's initial weights
    init = build_model(EXPERIMENT).state_dict()  # the comparison is not between untrained models
    assert max((single["model"][k] - v).abs().max().item() for k, v in init.items()) > 1e-4
