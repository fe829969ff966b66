"""Separation memory benchmark: peak RSS of ``sfc separate`` on 1-, 3- and 10-minute stereo tracks.

Each run is a fresh process (``sfc separate`` on one generated 44.1-kHz stereo wav, the small SFC-CA with
random weights, CPU), so its peak resident set size (``ru_maxrss``) is the run's own. Goal (issue 10):
with the streamed separation the 10-minute peak stays within 1.2x of the 1-minute peak.
``--mode whole`` runs the in-memory path instead (whole track read, ``separate_track``, whole stems
written) for comparison.

Run: ``python -m sfc.bench.separate [--minutes 1 3 10] [--repeats 3] [--json out.json]``.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import soundfile as sf
import torch

SAMPLE_RATE = 44100


def write_track(path: Path, minutes: float, seed: int = 0) -> None:
    """A stereo music-like wav written in 10-s blocks (the benchmark itself stays small)."""
    rng = np.random.default_rng(seed)
    total = int(minutes * 60 * SAMPLE_RATE)
    block = 10 * SAMPLE_RATE
    with sf.SoundFile(path, "w", SAMPLE_RATE, 2, subtype="PCM_16") as out:
        for start in range(0, total, block):
            t = (start + np.arange(min(block, total - start))) / SAMPLE_RATE  # (l,)
            tone = 0.2 * np.sin(2 * np.pi * 110 * t) + 0.1 * np.sin(2 * np.pi * 440 * t)
            noise = 0.05 * rng.standard_normal((len(t), 2))
            out.write((tone[:, None] + noise).astype(np.float32))


def child(mode: str, checkpoint: Path, wav: Path, out: Path, batch_size: int) -> dict:
    """One separation in this process; returns its peak RSS (MiB) and wall time."""
    from sfc.cli import main

    tic = time.perf_counter()
    if mode == "stream":
        rc = main(["separate", str(checkpoint), str(wav), "--out", str(out), "--device", "cpu",
                   "--batch-size", str(batch_size)])  # fmt: skip
        if rc != 0:
            raise SystemExit(rc)
    else:
        from sfc.eval.separate import separate_track
        from sfc.eval.separate_cli import read_audio, write_wav_atomic
        from sfc.models import load_model

        model, _ = load_model(checkpoint, map_location="cpu")
        audio, sr = read_audio(wav)
        est = separate_track(model, torch.from_numpy(audio), batch_size=batch_size).numpy()
        for n, stem in enumerate(np.clip(est, -1, 1)):
            write_wav_atomic(out / f"stem{n}.wav", stem, sr)
    seconds = time.perf_counter() - tic
    peak_kib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # KiB on Linux
    return {"peak_rss_mib": peak_kib / 1024, "seconds": seconds}


def run(args: argparse.Namespace) -> dict:
    from sfc.models import build_model, model_checkpoint

    results: dict[str, dict] = {}
    with tempfile.TemporaryDirectory(prefix="sfc-bench-sep-") as tmp:
        tmp = Path(tmp)
        torch.manual_seed(0)
        checkpoint = tmp / "model.pt"
        torch.save(
            model_checkpoint(build_model(args.experiment), experiment=args.experiment), checkpoint
        )
        for minutes in args.minutes:
            wav = tmp / f"track-{minutes:g}min.wav"
            write_track(wav, minutes)
            runs = []
            for r in range(args.repeats):
                out = tmp / f"out-{minutes:g}-{r}"
                cmd = [sys.executable, "-m", "sfc.bench.separate", "--child", args.mode,
                       str(checkpoint), str(wav), str(out), str(args.batch_size)]  # fmt: skip
                proc = subprocess.run(cmd, capture_output=True, text=True, env=dict(os.environ))
                if proc.returncode != 0:
                    raise SystemExit(f"benchmark run failed:\n{proc.stderr[-3000:]}")
                runs.append(json.loads(proc.stdout.strip().splitlines()[-1]))
                print(f"{minutes:g} min, run {r + 1}: {runs[-1]}", file=sys.stderr)
            results[f"{minutes:g}"] = {
                "median_peak_rss_mib": statistics.median(x["peak_rss_mib"] for x in runs),
                "median_seconds": statistics.median(x["seconds"] for x in runs),
                "runs": runs,
            }
            wav.unlink()
    return results


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv and argv[0] == "--child":
        mode, ckpt, wav, out, batch = argv[1:6]
        print(json.dumps(child(mode, Path(ckpt), Path(wav), Path(out), int(batch))))
        return 0
    parser = argparse.ArgumentParser(prog="python -m sfc.bench.separate", description=__doc__)
    parser.add_argument("--minutes", type=float, nargs="+", default=[1, 3, 10],
                        help="track lengths to separate")  # fmt: skip
    parser.add_argument("--repeats", type=int, default=3, help="runs per length (median)")
    parser.add_argument("--experiment", default="mss-sfc_ca-small-k64", help="model to run")
    parser.add_argument("--batch-size", type=int, default=4, help="chunks per model call")
    parser.add_argument("--mode", choices=["stream", "whole"], default="stream",
                        help="stream: sfc separate; whole: the in-memory path, for comparison")  # fmt: skip
    parser.add_argument("--json", type=Path, help="also write the results here")
    args = parser.parse_args(argv)
    torch.set_num_threads(max(1, torch.get_num_threads()))
    results = run(args)
    base = results[f"{args.minutes[0]:g}"]["median_peak_rss_mib"]
    print(f"sfc separate peak RSS ({args.experiment}, CPU, mode {args.mode}, "
          f"median of {args.repeats}; {platform.node()}):")  # fmt: skip
    for minutes, res in results.items():
        ratio = res["median_peak_rss_mib"] / base
        print(f"  {minutes:>4} min: {res['median_peak_rss_mib']:8.0f} MiB  "
              f"({ratio:.2f}x the {args.minutes[0]:g}-min run; {res['median_seconds']:.0f} s)")  # fmt: skip
    if args.json:
        from sfc.provenance import write_json_atomic

        write_json_atomic(args.json, {"experiment": args.experiment, "mode": args.mode,
                                      "results": results})  # fmt: skip
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
