"""Training-step benchmark: median step time and peak memory of the real training step.

Runs the engine's own step (forward under the autocast policy, thresholded SNR loss, backward, clip,
AdamW, lr schedule, EMA) on random batches, so the figure is what ``sfc train`` spends per step
without data loading. PAPER: spec §8 (batch 4 x 6 s per GPU, bf16), Table C (training cost).

    python -m sfc.bench.train_step --experiment mss-sfc_ca-small-k64 --steps 200 --device cuda
    python -m sfc.bench.train_step --experiment mss-sfc_ca-tiny-k32 --steps 3 --segment-seconds 1 --device cpu
"""

from __future__ import annotations

import argparse
import contextlib
import json
import resource
import statistics
import sys
import time
from dataclasses import replace
from pathlib import Path

import torch

from sfc.bench.reference import reference_formulation
from sfc.experiments import parse_experiment
from sfc.train.config import recipe_config
from sfc.train.dist import DistInfo, resolve_device
from sfc.train.ema import EMA
from sfc.train.engine import Run, RunPaths, accumulate_gradients, clip_and_step, compile_net
from sfc.train.schedule import build_scheduler


def build_run(
    experiment: str,
    batch_size: int,
    segment_seconds: float,
    device: torch.device,
    precision: str,
    compile: bool = False,
) -> Run:
    """A Run with the paper recipe's optimizer, schedule and EMA, and no work dir."""
    exp = parse_experiment(experiment)
    config = replace(
        recipe_config("paper", exp.task),
        batch_size=batch_size,  # one process, one pass: global batch = micro-batch
        micro_batch_size=batch_size,
        segment_seconds=segment_seconds,
        precision=precision,
        compile=compile,
    )
    torch.manual_seed(config.seed)
    from sfc.models import build_model

    model = build_model(exp.model_config()).to(device)
    optimizer = torch.optim.AdamW(
        model.parameters(), lr=config.lr, betas=config.betas, weight_decay=config.weight_decay
    )
    paths = RunPaths(Path(), Path(), Path(), Path())  # nothing is read or written
    run = Run(
        exp.id,
        config,
        paths,
        DistInfo(0, 1, device),
        model,
        EMA(model, config.ema_decay),
        optimizer,
        build_scheduler(optimizer, config),
    )
    compile_net(run)
    return run


def random_batch(run: Run, generator: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    """Sources (B, N, C, L) of unit-variance noise at random gains, and their mixture (B, C, L)."""
    cfg, mcfg = run.config, run.model.config
    length = round(cfg.segment_seconds * mcfg.sample_rate)
    shape = (cfg.batch_size, mcfg.num_sources, mcfg.num_channels, length)
    gains = 10 ** (torch.empty(shape[:2] + (1, 1)).uniform_(-10, 10, generator=generator) / 20)
    sources = torch.randn(shape, generator=generator) * gains  # (B, N, C, L)
    return sources.sum(1), sources


def peak_rss_gib() -> tuple[float, str]:
    """The process's peak resident memory in GiB, and what was read.

    VmHWM (Linux) belongs to this process image only; ``ru_maxrss`` also counts the parent's memory at
    fork time when this process was started by fork + exec (a Linux quirk), so it is the fallback.
    """
    status = Path("/proc/self/status")
    if status.is_file():
        for line in status.read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 2**20, "process peak RSS (VmHWM)"  # KiB -> GiB
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20, "process max RSS"


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def benchmark(run: Run, steps: int, warmup: int) -> dict[str, float]:
    """Time ``steps`` training steps after ``warmup`` untimed ones; report median and peak memory.

    The first warm-up step is timed separately (``first_step_s``: includes compilation with
    ``--compile``); on CPU the peak is the process's max RSS, so run one case per process.
    """
    device, generator = run.info.device, torch.Generator().manual_seed(0)
    batch = [t.to(device) for t in random_batch(run, generator)]
    times = []
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
    tic = time.perf_counter()
    accumulate_gradients(run, [batch])
    clip_and_step(run)
    first = time.perf_counter() - tic
    for i in range(1, max(warmup, 1) + steps):
        _sync(device)
        tic = time.perf_counter()
        loss = accumulate_gradients(run, [batch])
        clip_and_step(run)
        _sync(device)
        if i >= max(warmup, 1):
            times.append(time.perf_counter() - tic)
    if device.type == "cuda":
        peak = torch.cuda.max_memory_allocated(device) / 2**30
        kind = "cuda max_memory_allocated"
    else:
        peak, kind = peak_rss_gib()
    return {
        "median_step_s": statistics.median(times),
        "mean_step_s": statistics.fmean(times),
        "min_step_s": min(times),
        "steps": steps,
        "first_step_s": first,
        "peak_memory_gib": peak,
        "peak_memory_kind": kind,
        "final_loss": float(loss.detach()),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m sfc.bench.train_step", description=__doc__.split("\n")[0]
    )
    parser.add_argument("--experiment", required=True)
    parser.add_argument("--steps", type=int, default=200)
    parser.add_argument(
        "--warmup", type=int, default=None, help="untimed steps first (default min(10, steps))"
    )
    parser.add_argument("--batch-size", type=int, default=4, help="PAPER: 4 per GPU")
    parser.add_argument("--segment-seconds", type=float, default=6.0, help="PAPER: 6 s")
    parser.add_argument(
        "--precision",
        choices=["auto", "bf16", "fp32"],
        default="auto",
        help="auto = bf16 autocast on CUDA, fp32 on CPU",
    )
    parser.add_argument("--device", default="auto")
    parser.add_argument("--threads", type=int, default=None, help="torch intra-op threads")
    parser.add_argument(
        "--compile", action="store_true", help="torch.compile the model (train.compile)"
    )
    parser.add_argument(
        "--reference",
        action="store_true",
        help="the formulation before issue 12 (sfc.bench.reference), for before/after figures",
    )
    parser.add_argument("--json", action="store_true", help="print one JSON line")
    args = parser.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    device = resolve_device(args.device)
    run = build_run(
        args.experiment,
        args.batch_size,
        args.segment_seconds,
        device,
        args.precision,
        args.compile,
    )
    warmup = min(10, args.steps) if args.warmup is None else args.warmup
    with reference_formulation() if args.reference else contextlib.nullcontext():
        figures = benchmark(run, args.steps, warmup)
    result = {
        "experiment": run.experiment,
        "device": str(device),
        "batch_size": args.batch_size,
        "segment_seconds": args.segment_seconds,
        "precision": args.precision,
        "autocast_bf16": args.precision == "bf16"
        or (args.precision == "auto" and device.type == "cuda"),
        "params_m": sum(p.numel() for p in run.model.parameters()) / 1e6,
        "threads": torch.get_num_threads(),
        "compile": args.compile,
        "reference": args.reference,
        **figures,
    }
    if device.type == "cuda":
        result["device_name"] = torch.cuda.get_device_name(device)
    if args.json:
        print(json.dumps(result))
    else:
        for key, value in result.items():
            print(f"{key:>18}: {value:.4g}" if isinstance(value, float) else f"{key:>18}: {value}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
