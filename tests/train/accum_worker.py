"""Three optimizer steps of a small float64 model, with the global batch split as the plan says.

Imported by test_global_batch.py for the single-process splits and run as a script under torchrun for
the two-rank split:
    python -m torch.distributed.run --standalone --nproc_per_node 2 accum_worker.py OUT MICRO
"""

from __future__ import annotations

import sys
from dataclasses import replace
from pathlib import Path

import torch
from torch import nn
from torch.nn.parallel import DistributedDataParallel

from sfc.train.config import recipe_config
from sfc.train.data import StepBatches
from sfc.train.dist import DistInfo, init_distributed
from sfc.train.ema import EMA
from sfc.train.engine import Run, RunPaths, accumulate_gradients, clip_and_step, sync_scalars
from sfc.train.schedule import build_scheduler

GLOBAL_BATCH, STEPS, SOURCES, CHANNELS, LENGTH = 4, 3, 2, 2, 256


class ToyModel(nn.Module):
    """(B, C, L) -> (B, N, C, L): a per-source FIR filter bank with a nonlinearity, so the gradient
    depends on every example of the batch in a non-trivial way."""

    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv1d(CHANNELS, SOURCES * CHANNELS, 9, padding=4)
        self.gain = nn.Parameter(torch.ones(SOURCES, CHANNELS, 1))

    def forward(self, mix: torch.Tensor) -> torch.Tensor:
        y = torch.tanh(self.conv(mix)).view(mix.shape[0], SOURCES, CHANNELS, -1)  # (B, N, C, L)
        return y * self.gain * mix.unsqueeze(1)


def fixed_data() -> tuple[torch.Tensor, torch.Tensor]:
    """(mix (E, C, L), refs (E, N, C, L)) for every example of every step, float64; one source of
    one example is silent, so the inactive-source branch of the loss takes part."""
    g = torch.Generator().manual_seed(11)
    examples = GLOBAL_BATCH * STEPS
    gains = 10 ** (
        torch.empty(examples, SOURCES, 1, 1, dtype=torch.float64).uniform_(-1, 1, generator=g)
    )
    refs = (
        torch.randn(examples, SOURCES, CHANNELS, LENGTH, generator=g, dtype=torch.float64) * gains
    )
    refs[1, 0] = 0.0
    return refs.sum(1), refs


def run_steps(info: DistInfo, micro: int) -> dict:
    """Train STEPS steps with the global batch split over ``info.world_size`` ranks x micro-batches."""
    torch.manual_seed(0)
    model = ToyModel().double()
    cfg = replace(
        recipe_config("demo", "mss"),
        batch_size=GLOBAL_BATCH,
        micro_batch_size=micro,
        lr=1e-2,
        warmup_steps=1,
        grad_clip=0.5,  # active: the clipping sees the accumulated gradient
        ema_decay=0.5,
        precision="fp32",
    )
    optimizer = torch.optim.AdamW(
        model.parameters(), lr=cfg.lr, betas=cfg.betas, weight_decay=cfg.weight_decay
    )
    paths = RunPaths(Path(), Path(), Path(), Path())
    run = Run("toy", cfg, paths, info, model, EMA(model, cfg.ema_decay), optimizer,
              build_scheduler(optimizer, cfg))  # fmt: skip
    if info.enabled:
        run.ddp = DistributedDataParallel(model)
    plan = cfg.batch_plan(info.world_size)
    mix, refs = fixed_data()
    indices = list(StepBatches(0, STEPS, plan, info.rank))
    out: dict = {"plan": plan.to_dict(), "grads": [], "losses": [], "examples": []}
    for step in range(STEPS):
        lists = indices[step * plan.accumulation : (step + 1) * plan.accumulation]
        loss = accumulate_gradients(run, [(mix[i], refs[i]) for i in lists])
        out["losses"].append(sync_scalars(loss, False, info)[0])
        out["grads"].append({n: p.grad.clone() for n, p in model.named_parameters()})
        out["examples"].append(lists)
        clip_and_step(run)
    out["params"] = {k: v.clone() for k, v in model.state_dict().items()}
    out["ema"] = run.ema.state_dict()
    return out


if __name__ == "__main__":
    info = init_distributed("cpu")
    result = run_steps(info, int(sys.argv[2]))
    gathered = [None] * info.world_size
    torch.distributed.all_gather_object(gathered, result["examples"])
    result["examples_by_rank"] = gathered
    if info.is_main:
        torch.save(result, sys.argv[1])
    torch.distributed.destroy_process_group()
