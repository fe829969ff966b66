"""``sfc train EXPERIMENT_ID``: train one experiment; resumable; torchrun-aware.

Single process:
    sfc train mss-sfc_ca-small-k64 --data-root data/musdb18hq --cache-dir cache/mss \\
        --work-dir work/mss-sfc_ca-small-k64 --output models/mss-sfc_ca-small-k64.pt
Multi-GPU (DistributedDataParallel; batch_size is the global batch, kept on any number of GPUs by
gradient accumulation, see TrainConfig.batch_plan):
    torchrun --standalone --nproc_per_node 8 -m sfc.cli train mss-sfc_ca-small-k64 ...same arguments...

Re-running the same command resumes from ``<work-dir>/checkpoints/last.pt``. Exit codes: 0 done,
2 bad input, 3 non-finite loss (last good checkpoint kept), 75 stopped by SIGTERM/SIGUSR1 after a
checkpoint (resume by running the command again).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from sfc.experiments import parse_experiment
from sfc.provenance import check_writable
from sfc.train.config import RECIPES, resolve_config


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("experiment", help="experiment id, e.g. mss-sfc_ca-small-k64")
    parser.add_argument(
        "--data-root", type=Path, required=True, help="dataset root (valid split is read)"
    )
    parser.add_argument(
        "--cache-dir", type=Path, required=True, help="training-segment cache (sfc data cache)"
    )
    parser.add_argument(
        "--work-dir",
        type=Path,
        required=True,
        help="resumable checkpoints, logs, TensorBoard events, provenance.json",
    )
    parser.add_argument(
        "--output", type=Path, required=True, help="final model file (top-k EMA average)"
    )
    parser.add_argument(
        "--recipe", choices=RECIPES, default="paper", help="paper values or the CPU demo"
    )
    parser.add_argument("--config", type=Path, help="YAML file of train-config overrides")
    parser.add_argument(
        "--set",
        dest="sets",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="override one train-config key (repeatable), e.g. --set lr=3e-3",
    )
    parser.add_argument(
        "--device", default="auto", help="auto, cpu, cuda or cuda:N (torchrun: per rank)"
    )


def main(args: argparse.Namespace) -> int:
    from sfc.train.engine import TrainingStopped, train

    exp = parse_experiment(args.experiment)
    config = resolve_config(exp.task, args.recipe, exp.seed, args.config, args.sets)
    check_writable(args.work_dir, "--work-dir")  # before any data is read: not after the training
    check_writable(args.output.parent, "--output")
    try:
        output = train(exp.id, config, _paths(args), args.device)
    except TrainingStopped as stop:
        print(f"sfc train: {stop}", file=sys.stderr)
        return stop.exit_code
    print(f"sfc train: wrote {output}")
    return 0


def _paths(args: argparse.Namespace):
    from sfc.train.engine import RunPaths

    return RunPaths(args.data_root, args.cache_dir, args.work_dir, args.output)
