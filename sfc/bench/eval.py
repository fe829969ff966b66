"""Evaluation benchmark: cSDR time per minute of 4-stem stereo audio (museval vs ours) and the
separation real-time factor of a tiny model on CPU.

Run: ``python -m sfc.bench.eval [--seconds 60] [--repeats 3] [--json out.json]``.
"""

from __future__ import annotations

import argparse
import platform
import statistics
import time
from collections.abc import Callable

import numpy as np
import torch

from sfc.eval.bsseval import sdr_frames_fast, sdr_frames_museval


def synthetic_stems(
    seconds: float, sample_rate: int = 44100, seed: int = 0
) -> tuple[np.ndarray, np.ndarray]:
    """Deterministic music-like references and imperfect estimates, float32.

    Stems: a bass tone with harmonics, filtered-noise "drums" in bursts, a vibrato "vocal" with silent
    gaps, and a chord; estimates add leakage from the other stems, a short echo and noise.

    Shapes:
        returns references (4, 2, L), estimates (4, 2, L)
    """
    rng = np.random.default_rng(seed)
    length = int(round(seconds * sample_rate))
    t = np.arange(length) / sample_rate  # (L,)
    bass = sum(np.sin(2 * np.pi * 55 * h * t) / h for h in range(1, 5))
    noise = np.convolve(rng.standard_normal(length), np.hanning(32), mode="same")
    drums = noise * (np.sin(2 * np.pi * 2 * t) > 0.6)  # bursts: partly silent
    vocal = np.sin(2 * np.pi * 330 * t + 3 * np.sin(2 * np.pi * 5 * t)) * (
        np.sin(2 * np.pi * 0.25 * t) > -0.3
    )
    other = sum(np.sin(2 * np.pi * f * t) for f in (261.6, 329.6, 392.0)) / 3
    mono = np.stack([bass, drums, vocal, other])  # (4, L)
    pan = np.array([[1.0, 0.9], [0.7, 1.0], [1.0, 1.0], [0.6, 1.0]])[:, :, None]  # (4, 2, 1)
    refs = 0.2 * mono[:, None, :] * pan  # (4, 2, L)
    echo = np.roll(refs, 441, axis=-1)
    ests = refs + 0.1 * refs[[1, 2, 3, 0]] + 0.05 * echo + 0.005 * rng.standard_normal(refs.shape)
    return refs.astype(np.float32), ests.astype(np.float32)


def median_time(fn: Callable[[], object], repeats: int) -> tuple[float, object]:
    """Median wall time of ``repeats`` calls, and the last result."""
    times, out = [], None
    for _ in range(repeats):
        t0 = time.perf_counter()
        out = fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times), out


def bench_csdr(seconds: float, repeats: int, museval_repeats: int) -> dict:
    refs, ests = synthetic_stems(seconds)
    t_ours, ours = median_time(lambda: sdr_frames_fast(refs, ests), repeats)
    t_ref, ref = median_time(lambda: sdr_frames_museval(refs, ests), museval_repeats)
    per_min = 60.0 / seconds
    return {
        "audio_seconds": seconds,
        "museval_s_per_min": t_ref * per_min,
        "ours_s_per_min": t_ours * per_min,
        "speedup": t_ref / t_ours,
        "max_abs_frame_diff_db": float(np.nanmax(np.abs(ref - ours))),
        "same_nan_frames": bool(np.array_equal(np.isnan(ref), np.isnan(ours))),
        "num_nan_frames": int(np.isnan(ref).sum()),
    }


def bench_separation(seconds: float, experiment: str, repeats: int) -> dict:
    from sfc.eval.separate import separate_track
    from sfc.models import build_model

    model = build_model(experiment).eval()
    mix = torch.randn(model.num_channels, int(seconds * model.sample_rate)) * 0.1
    separate_track(model, mix[:, : model.sample_rate * 12], device="cpu")  # warm-up
    t, _ = median_time(lambda: separate_track(model, mix, device="cpu"), repeats)
    return {
        "experiment": experiment,
        "audio_seconds": seconds,
        "wall_s": t,
        "rtf": t / seconds,
        "torch_threads": torch.get_num_threads(),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--seconds", type=float, default=60.0, help="audio length for the cSDR benchmark"
    )
    parser.add_argument("--repeats", type=int, default=5, help="repeats of the fast cSDR")
    parser.add_argument("--museval-repeats", type=int, default=3, help="repeats of museval")
    parser.add_argument(
        "--sep-seconds", type=float, default=30.0, help="audio length for the separation RTF"
    )
    parser.add_argument("--sep-experiment", default="mss-sfc_ca-tiny-k32")
    parser.add_argument("--skip-separation", action="store_true")
    parser.add_argument("--json", default=None, help="also write the results here")
    args = parser.parse_args(argv)
    result = {
        "machine": f"{platform.processor() or platform.machine()}, torch threads {torch.get_num_threads()}"
    }
    result["csdr"] = c = bench_csdr(args.seconds, args.repeats, args.museval_repeats)
    print(
        f"cSDR, 4-stem stereo, {args.seconds:g} s of audio, median of {args.museval_repeats}/{args.repeats} runs:"
    )
    print(
        f"  museval {c['museval_s_per_min']:.2f} s/min   ours {c['ours_s_per_min']:.4f} s/min   "
        f"speed-up {c['speedup']:.0f}x"
    )
    print(
        f"  max |frame SDR difference| {c['max_abs_frame_diff_db']:.2e} dB; "
        f"same NaN frames: {c['same_nan_frames']} ({c['num_nan_frames']} NaN)"
    )
    if not args.skip_separation:
        result["separation"] = s = bench_separation(args.sep_seconds, args.sep_experiment, 1)
        print(
            f"separation ({s['experiment']}, CPU, 12/6-s chunks): {s['wall_s']:.1f} s for "
            f"{s['audio_seconds']:g} s of audio, RTF {s['rtf']:.3f}"
        )
    if args.json:
        from sfc.provenance import write_json_atomic

        write_json_atomic(args.json, result)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
