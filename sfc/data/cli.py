"""``sfc data``: download, check, generate, segment and cache datasets.

Examples::

    sfc data download --dataset musdb18hq --out data/musdb18hq
    sfc data download --dataset dnr_v2 --out data/dnr_v2 --existing /datasets/dnr_v2
    sfc data generate --task mss --out data/demo_mss --seed 2026
    sfc data check --root data/demo_mss --task mss
    sfc data segment --root data/demo_mss --task mss
    sfc data cache --root data/demo_mss --task mss --out cache/demo_mss
"""

from __future__ import annotations

import argparse
import json

from sfc.errors import UserError

DATASET_TASK = {"musdb18hq": "mss", "dnr_v2": "cass"}


def add_arguments(parser: argparse.ArgumentParser) -> None:
    sub = parser.add_subparsers(
        dest="action", metavar="ACTION", required=True, help="what to do with the data"
    )

    p = sub.add_parser(
        "download", help="download, verify and extract a dataset (or link an existing copy)"
    )
    p.add_argument(
        "--dataset", required=True, choices=sorted(DATASET_TASK), help="dataset to fetch"
    )
    p.add_argument("--out", required=True, help="dataset root to create (must not exist)")
    p.add_argument(
        "--existing", help="use this copy on disk instead of downloading (validated, linked)"
    )
    p.add_argument("--archive-dir", help="where archives go (default: <parent of --out>/downloads)")
    p.add_argument("--retries", type=int, default=5, help="attempts per file, resuming each time")

    p = sub.add_parser("check", help="validate the layout of a dataset root and count its tracks")
    _root_task(p)

    p = sub.add_parser("generate", help="write the deterministic demo dataset (no download)")
    p.add_argument(
        "--task", required=True, choices=["mss", "cass"], help="music (mss) or cinematic (cass)"
    )
    p.add_argument("--out", required=True, help="dataset root to create (must not exist)")
    p.add_argument("--seed", type=int, default=2026, help="seed of the generated audio")
    p.add_argument("--num-train", type=int, default=8, help="tracks in the train split")
    p.add_argument("--num-valid", type=int, default=2, help="tracks in the valid split")
    p.add_argument("--num-test", type=int, default=3, help="tracks in the test split")
    p.add_argument("--duration", type=float, default=20.0, help="seconds per track")

    p = sub.add_parser("segment", help="report the source-active segments of the train split")
    _root_task(p)
    _sad_args(p)
    p.add_argument("--json", help="also write the per-track segment starts to this JSON file")

    p = sub.add_parser("cache", help="build the training-segment cache from the train split")
    _root_task(p)
    p.add_argument("--out", required=True, help="cache folder to create (must not exist)")
    p.add_argument(
        "--format", default="wav", choices=["wav", "stft"], help="default wav (measured faster)"
    )
    p.add_argument(
        "--dtype",
        default="auto",
        choices=["auto", "float32", "int16"],
        help="sample type of the wav cache (auto: int16 when every stem is 16-bit PCM)",
    )
    _sad_args(p)


def _root_task(p: argparse.ArgumentParser) -> None:
    p.add_argument("--root", required=True, help="dataset root")
    p.add_argument(
        "--task", required=True, choices=["mss", "cass"], help="music (mss) or cinematic (cass)"
    )


def _sad_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--segment-seconds", type=float, default=8.0, help="PAPER: 8 s")
    p.add_argument("--hop-seconds", type=float, default=4.0, help="PAPER: 4 s")


def _sad(args: argparse.Namespace):
    from sfc.data.segment import SADConfig

    return SADConfig(segment_seconds=args.segment_seconds, hop_seconds=args.hop_seconds)


def main(args: argparse.Namespace) -> int:
    handlers = {
        "download": _download,
        "check": _check,
        "generate": _generate,
        "segment": _segment,
        "cache": _cache,
    }
    return handlers[args.action](args)


def _download(args: argparse.Namespace) -> int:
    from sfc.data import download

    if args.existing:
        out = download.link_existing(args.dataset, args.existing, args.out)
        print(f"{args.dataset}: using existing copy {args.existing} via {out}")
    else:
        out = download.fetch(args.dataset, args.out, args.archive_dir, retries=args.retries)
        print(f"{args.dataset}: extracted to {out}")
    return 0


def _check(args: argparse.Namespace) -> int:
    from sfc.data.download import validate_layout
    from sfc.data.tracks import SPLITS, list_tracks

    folders = validate_layout(args.root, args.task)
    splits = {s: len(list_tracks(args.root, args.task, s)) for s in SPLITS}
    print(json.dumps({"folders": folders, "splits": splits}))
    return 0


def _generate(args: argparse.Namespace) -> int:
    from sfc.data.synth import SynthConfig, generate

    cfg = SynthConfig(args.seed, args.num_train, args.num_valid, args.num_test, args.duration)
    print(f"wrote {generate(args.task, args.out, cfg)}")
    return 0


def _segment(args: argparse.Namespace) -> int:
    from tqdm import tqdm

    from sfc.data.audio import SAMPLE_RATE
    from sfc.data.segment import active_segments
    from sfc.data.tracks import list_tracks, load_track
    from sfc.experiments import TASKS
    from sfc.provenance import write_text_atomic

    sad, report = _sad(args), {}
    for ref in tqdm(list_tracks(args.root, args.task, "train"), desc="segment"):
        track = load_track(ref)
        report[ref.name] = {
            name: active_segments(stem, SAMPLE_RATE, sad, name=f"{ref.name}/{name}").tolist()
            for name, stem in zip(TASKS[args.task].sources, track.sources)
        }
    totals = {s: sum(len(t[s]) for t in report.values()) for s in TASKS[args.task].sources}
    print(json.dumps({"tracks": len(report), "segments": totals}))
    if args.json:
        write_text_atomic(args.json, json.dumps(report, indent=1) + "\n")
    return 0


def _cache(args: argparse.Namespace) -> int:
    from sfc.data.cache import build_cache

    if args.segment_seconds <= 0:
        raise UserError("--segment-seconds must be positive")
    out = build_cache(args.root, args.task, args.out, args.format, _sad(args), args.dtype)
    print(f"wrote {out}")
    return 0
