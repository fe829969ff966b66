"""``sfc evaluate``: separate and score a test split with a trained checkpoint, resumably per track.

Each track's scores go to ``<out-dir>/<track>-<hash>.json`` (atomic); a rerun with the same settings only
scores the tracks without a file. A track that cannot be scored (unreadable, stems of different lengths)
is recorded under ``failed_tracks`` in the aggregate JSON and the others are scored; the command then
exits 2 naming it. Silent reference stems are left out of every metric's mean/median and counted
(``num_tracks_per_aggregate``); JSON holds ``null`` where a value is undefined. The merged tidy table (``--scores``, CSV: experiment, track, target,
metric, value) and the aggregates with provenance (``--aggregate``, JSON) are rewritten at the end.
"""

from __future__ import annotations

import argparse
import platform
import sys
import time
from pathlib import Path
from typing import Any

import torch
from tqdm import tqdm

from sfc.errors import UserError
from sfc.eval.metrics import TASK_METRICS, score_track
from sfc.eval.separate import separate_by
from sfc.eval.separate_cli import add_speed_arguments, apply_threads, check_chunking
from sfc.eval.table import (
    aggregate_dict,
    read_track_result,
    tidy_table,
    track_result_path,
)
from sfc.provenance import (
    check_writable,
    git_commit,
    package_versions,
    sha256,
    write_json_atomic,
    write_text_atomic,
)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("model", type=Path, help="model file (checkpoint) to evaluate")
    parser.add_argument("--data-root", type=Path, required=True, help="dataset root folder")
    parser.add_argument(
        "--task",
        choices=sorted(TASK_METRICS),
        required=True,
        help="task of the dataset and model: mss (MUSDB18-HQ) or cass (DnR v2)",
    )
    parser.add_argument("--split", default="test", help="dataset split (default: test)")
    parser.add_argument(
        "--out-dir", type=Path, required=True, help="folder for the per-track result files"
    )
    parser.add_argument("--scores", type=Path, required=True, help="tidy per-track CSV to write")
    parser.add_argument(
        "--aggregate", type=Path, default=None, help="aggregate JSON (default: --scores with .json)"
    )
    parser.add_argument(
        "--experiment", default=None, help="experiment id; must match the checkpoint's"
    )
    parser.add_argument("--csdr", choices=["fast", "museval"], default="fast", help="cSDR backend")
    parser.add_argument(
        "--device", choices=["cpu", "cuda"], default=None, help="default: cuda if present"
    )
    parser.add_argument(
        "--limit-tracks", type=int, default=None, help="score only the first N tracks"
    )
    parser.add_argument(
        "--chunk-seconds", type=float, default=12.0, help="chunk length (paper: 12)"
    )
    parser.add_argument("--shift-seconds", type=float, default=6.0, help="chunk hop (paper: 6)")
    parser.add_argument("--batch-size", type=int, default=4, help="chunks per model call")
    add_speed_arguments(parser)
    parser.add_argument(
        "--chunking",
        choices=["overlap", "trimmed"],
        default="overlap",
        help="overlap: the paper's overlap-averaged chunks; trimmed: LightSAFT-Net's non-overlapping "
        "windows of --chunk-seconds with --trim-seconds cut at both ends (lightsaft.md §5)",
    )
    parser.add_argument(
        "--trim-seconds",
        type=float,
        default=8_192 / 44_100,
        help="trim of --chunking trimmed (default: 8,192 samples at 44.1 kHz)",
    )


def check_experiment(ckpt: dict, experiment: str | None, path: Path) -> str:
    """The experiment label for the table; UserError when ``--experiment`` contradicts the checkpoint."""
    stored = ckpt.get("experiment")
    if experiment:
        from sfc.experiments import parse_experiment

        parse_experiment(experiment)  # UserError for a malformed id
    if experiment and stored and stored != experiment:
        raise UserError(
            f"{path} is a checkpoint of another experiment: {stored!r}, not {experiment!r}"
        )
    if experiment and not stored:
        # ASSUMPTION: a checkpoint without an experiment id cannot be checked; trust --experiment.
        print(f"note: {path} records no experiment id; labelling its scores {experiment!r}")
    return experiment or stored or path.stem


def check_task(model, task: str, experiment: str | None, label: str | None = None) -> None:
    """UserError when the model (or ``--experiment``) does not fit ``--task``; ``label`` is the
    experiment the checkpoint records (its targets decide the number of sources)."""
    from sfc.experiments import TASKS, parse_experiment

    if experiment and parse_experiment(experiment).task != task:
        raise UserError(f"experiment {experiment!r} is not a {task!r} experiment")
    spec = TASKS[task]
    targets = model_targets(label or experiment, task)
    if (model.num_channels, model.num_sources) != (spec.num_channels, len(targets)):
        raise UserError(
            f"the model separates {model.num_sources} source(s) from {model.num_channels}-channel audio; "
            f"task {task!r} has {len(targets)} target(s) ({', '.join(targets)}) "
            f"in {spec.num_channels} channel(s)"
        )


def model_targets(experiment: str | None, task: str) -> tuple[str, ...]:
    """The sources a model outputs: its experiment's targets (a dedicated model has one), else the
    task's sources."""
    from sfc.experiments import TASKS, parse_experiment

    try:
        return parse_experiment(experiment).targets if experiment else TASKS[task].sources
    except UserError:  # a free-form label (a checkpoint without a parseable id)
        return TASKS[task].sources


def provenance(device: torch.device) -> dict[str, Any]:
    """Git commit, package versions and device, written next to every aggregate (house style 5)."""
    name = (
        torch.cuda.get_device_name(device)
        if device.type == "cuda"
        else platform.processor() or "cpu"
    )
    return {
        "git": git_commit(),
        "python": platform.python_version(),
        "versions": package_versions(),
        "device": f"{device.type}: {name}",
        "command": sys.argv,
    }


def score_one(
    model, ref, settings: dict[str, Any], args: argparse.Namespace, experiment: str
) -> dict:
    """Load, separate and score one track; returns the per-track result dict."""
    from sfc.data.tracks import load_track
    from sfc.experiments import TASKS

    track = load_track(ref)
    if track.sample_rate != model.sample_rate:
        raise UserError(
            f"track {ref.name}: {track.sample_rate} Hz, the model expects {model.sample_rate} Hz"
        )
    t0 = time.perf_counter()
    mix = torch.from_numpy(track.mixture)
    est = separate_by(
        args.chunking,
        model,
        mix,
        args.chunk_seconds,
        args.shift_seconds,
        args.trim_seconds,
        args.batch_size,
        precision=args.precision,
    )  # (N, C, L)
    t1 = time.perf_counter()
    targets = model_targets(experiment, args.task)
    index = [TASKS[args.task].sources.index(t) for t in targets]
    res = score_track(
        track.sources[index],
        est.numpy(),
        targets,
        TASK_METRICS[args.task],
        track.sample_rate,
        args.csdr,
    )
    t2 = time.perf_counter()
    return {
        "settings": settings,
        "experiment": experiment,
        "track": ref.name,
        "path": str(ref.path),
        "num_samples": int(track.mixture.shape[-1]),
        "seconds_separate": t1 - t0,
        "seconds_score": t2 - t1,
        **res,
    }


def main(args: argparse.Namespace) -> int:
    from sfc.models import load_model

    check_chunking(args)
    apply_threads(args)
    check_writable(args.out_dir, "--out-dir")  # before any model or track is loaded
    check_writable(args.scores.parent, "--scores")
    if args.aggregate is not None:
        check_writable(args.aggregate.parent, "--aggregate")
    try:
        from sfc.data.tracks import list_tracks
    except ImportError as err:
        raise UserError(f"the dataset loader sfc.data.tracks is not available: {err}") from err
    device = torch.device(args.device or ("cuda" if torch.cuda.is_available() else "cpu"))
    if device.type == "cuda" and not torch.cuda.is_available():
        raise UserError("--device cuda given but CUDA is not available on this machine")
    model, ckpt = load_model(args.model, map_location="cpu")
    experiment = check_experiment(ckpt, args.experiment, args.model)
    check_task(model, args.task, args.experiment, experiment)
    model.to(device)
    refs = list_tracks(args.data_root, args.task, args.split)
    if args.limit_tracks is not None:
        refs = refs[: max(args.limit_tracks, 0)]
    if not refs:
        raise UserError(f"no {args.task} tracks in split {args.split!r} under {args.data_root}")
    settings = {
        "experiment": experiment,
        "checkpoint_sha256": sha256(args.model),
        "task": args.task,
        "split": args.split,
        "metrics": list(TASK_METRICS[args.task]),
        "csdr": args.csdr,
        "chunk_seconds": args.chunk_seconds,
        "shift_seconds": args.shift_seconds,
        "chunking": args.chunking,
        "trim_seconds": args.trim_seconds if args.chunking == "trimmed" else None,
        "device_type": device.type,
    }
    if args.precision != "auto":  # "auto" is what device_type implies; earlier results stay valid
        settings["precision"] = args.precision
    results, reused, failed = [], 0, {}
    for ref in tqdm(refs, desc=f"evaluate {experiment}", unit="track"):
        path = track_result_path(args.out_dir, ref.name)
        result = read_track_result(path, settings)
        if result is None:
            try:
                result = score_one(model, ref, settings, args, experiment)
            except UserError as err:  # a bad track (e.g. stems of different lengths): record, go on
                failed[ref.name] = str(err)
                tqdm.write(f"sfc evaluate: track {ref.name} could not be scored: {err}")
                continue
            write_json_atomic(path, result)
        else:
            reused += 1
        results.append(result)
    if not results:
        lines = "\n".join(f"  {name}: {msg}" for name, msg in failed.items())
        raise UserError(f"no track could be scored:\n{lines}")
    table = tidy_table(results)
    write_text_atomic(args.scores, table.to_csv(index=False))
    summary = {
        "experiment": experiment,
        "task": args.task,
        "split": args.split,
        "num_tracks": len(results),
        "aggregates": aggregate_dict(table),
        # tracks that entered each mean/median (silent reference stems are left out, sfc.eval.metrics)
        "num_tracks_per_aggregate": aggregate_dict(table, counts=True),
        "silent_references": {
            r["track"]: r.get("silent_references", [])
            for r in results
            if r.get("silent_references")
        },
        "failed_tracks": failed,
        "settings": settings,
        "checkpoint": str(args.model),
        "model_config": ckpt.get("model_config"),
        "tracks": [r["track"] for r in results],
        "provenance": provenance(device),
    }
    write_json_atomic(args.aggregate or args.scores.with_suffix(".json"), summary)
    print(f"scored {len(results) - reused} track(s), reused {reused}; table: {args.scores}")
    counts = summary["num_tracks_per_aggregate"]
    for metric, per_agg in summary["aggregates"].items():
        for how, per_target in per_agg.items():
            print(
                f"  {metric} ({how}): "
                + "  ".join(
                    f"{t} {v:.2f} (n={counts[metric][how][t]})" for t, v in per_target.items()
                )
            )
    if failed:
        lines = "\n".join(f"  {name}: {msg}" for name, msg in failed.items())
        raise UserError(
            f"{len(failed)} of {len(refs)} track(s) could not be scored (the others are in "
            f"{args.scores}; a rerun retries only these):\n{lines}"
        )
    return 0
