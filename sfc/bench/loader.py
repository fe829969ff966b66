"""Loader throughput versus number of workers, optionally against a model's training-step time.

    python -m sfc.bench.loader --cache CACHE_DIR --task mss --workers 0 1 2 \
        [--model mss-sfc_ca-small-k64]

For each worker count it times ``--batches`` batches of ``--batch-size`` dynamically mixed
examples (after one warm-up batch), ``--repeats`` times, and prints the median examples/s and
source segments/s (examples x sources). With ``--model`` it also times one forward + backward of
that model on a batch of the same shape and prints the median step time, so the loader can be
compared with what training consumes.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time

import torch

from sfc.data.dataset import DynamicMixDataset


def time_loader(dataset: DynamicMixDataset, workers: int, batch_size: int, batches: int) -> float:
    """Seconds to load ``batches`` batches after a warm-up batch."""
    loader = torch.utils.data.DataLoader(
        dataset, batch_size=batch_size, shuffle=True, num_workers=workers, drop_last=True
    )
    it = iter(loader)
    next(it)  # warm-up: worker start, memory maps opened
    start = time.perf_counter()
    for _ in range(batches):
        next(it)
    return time.perf_counter() - start


def time_step(model_id: str, batch: tuple[torch.Tensor, torch.Tensor], repeats: int) -> list[float]:
    """Seconds of one forward + backward (L1 loss on the estimates) of ``model_id`` on ``batch``."""
    from sfc.models import build_model

    model = build_model(model_id)
    mix, sources = batch  # (B, C, L), (B, N, C, L)
    times = []
    for _ in range(repeats + 1):
        model.zero_grad(set_to_none=True)
        start = time.perf_counter()
        est = model(mix)  # (B, N, C, L)
        (est - sources).abs().mean().backward()
        times.append(time.perf_counter() - start)
    return times[1:]  # the first call is a warm-up


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--cache", required=True)
    p.add_argument("--task", required=True, choices=["mss", "cass"])
    p.add_argument("--workers", type=int, nargs="+", default=[0, 1, 2])
    p.add_argument("--batch-size", type=int, default=4)
    p.add_argument("--batches", type=int, default=10)
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--segment-seconds", type=float, default=6.0)
    p.add_argument("--model", help="experiment id whose forward+backward step time is measured")
    p.add_argument("--threads", type=int, default=None, help="torch threads in the main process")
    args = p.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    dataset = DynamicMixDataset(args.cache, args.task, 10_000, args.segment_seconds)
    num_src = len(dataset.sources)
    result = {"cache": args.cache, "format": dataset.index["format"], "batch_size": args.batch_size}
    for w in args.workers:
        runs = [time_loader(dataset, w, args.batch_size, args.batches) for _ in range(args.repeats)]
        eps = args.batches * args.batch_size / statistics.median(runs)
        result[f"workers={w}"] = {
            "examples_per_s": round(eps, 2),
            "segments_per_s": round(eps * num_src, 2),
        }
        print(f"workers={w}: median {eps:.2f} examples/s = {eps * num_src:.2f} segments/s")
    if args.model:
        batch = next(iter(torch.utils.data.DataLoader(dataset, batch_size=args.batch_size)))
        step = statistics.median(time_step(args.model, batch, args.repeats))
        result["step_s"] = round(step, 4)
        result["examples_per_s_needed"] = round(args.batch_size / step, 2)
        print(
            f"{args.model}: median forward+backward {step:.3f} s per batch of {args.batch_size} "
            f"-> training consumes {args.batch_size / step:.2f} examples/s"
        )
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
