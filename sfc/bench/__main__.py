"""One table of the CPU performance figures: ``python -m sfc.bench [--quick] [--threads 1]``.

Sections (each "ratio" is time or memory over the first row of its group, the fp32 eager path of the
formulation before issue 12 where there is one; ``sfc.bench.reference``):

* separation: one 12-s stereo chunk through SFC-CA small and band-split small (``--quick``: tiny models,
  3 s), reference fp32 vs today's fp32 vs bf16 autocast on CPU (and ``--compile``), interleaved
  repeats; the output difference to the reference is printed beside each row.
* training: the engine's real step (``python -m sfc.bench.train_step``), one fresh process per row so
  that the peak memory (max RSS) belongs to that row: SFC-CA small before/after (2-s clip, batch 1),
  SFC-Mamba small before/after beside SFC-CA small (1-s clip; the memory goal), SFC-Mamba tiny beside
  SFC-CA tiny (the demo's 1-s clips, batch 2; the time goal).
* mamba: the selective scan alone at SFC-Mamba tiny's demo shape, stored-autograd vs recomputing
  backward; "peak memory" is what autograd keeps for the backward (saved tensors).
* metrics: cSDR of 4-stem stereo audio, museval vs ours.

Times are medians of wall time; on a machine shared with other work they are loaded-machine figures.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import platform
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass

import torch

from sfc.bench.reference import reference_formulation


@dataclass
class Row:
    section: str
    case: str
    seconds: float
    memory_gib: float | None = None
    ratio: float | None = None
    note: str = ""


def _fmt(row: Row) -> str:
    mem = f"{row.memory_gib:8.3f}" if row.memory_gib is not None else f"{'-':>8s}"
    ratio = f"{row.ratio:6.2f}x" if row.ratio is not None else f"{'-':>7s}"
    return f"{row.section:11s} {row.case:48s} {row.seconds:9.3f} {mem} {ratio}  {row.note}"


def interleaved_medians(cases: dict[str, Callable[[], object]], repeats: int) -> dict[str, float]:
    """Median wall time of each case; one warm-up call each, then the cases alternate per repeat."""
    for fn in cases.values():
        fn()
    times: dict[str, list[float]] = {name: [] for name in cases}
    for _ in range(repeats):
        for name, fn in cases.items():
            tic = time.perf_counter()
            fn()
            times[name].append(time.perf_counter() - tic)
    return {name: statistics.median(t) for name, t in times.items()}


def bench_separation(experiment: str, seconds: float, repeats: int, compile: bool) -> list[Row]:
    """One chunk of ``seconds`` through ``experiment`` under inference mode, per formulation."""
    from sfc.eval.separate import inference_autocast
    from sfc.models import build_model

    torch.manual_seed(0)
    model = build_model(experiment).eval()
    mix = 0.1 * torch.randn(1, model.num_channels, round(seconds * model.sample_rate))
    cpu = torch.device("cpu")

    def run(net: torch.nn.Module, precision: str = "fp32", reference: bool = False):
        def call() -> torch.Tensor:
            context = reference_formulation() if reference else contextlib.nullcontext()
            with torch.inference_mode(), context, inference_autocast(cpu, precision):
                return net(mix).float()

        return call

    cases = {
        "reference fp32 (before)": run(model, reference=True),
        "fp32": run(model),
        "bf16 autocast": run(model, "bf16"),
    }
    if compile:
        cases["fp32 + torch.compile"] = run(torch.compile(model))
    outputs = {name: fn() for name, fn in cases.items()}
    medians = interleaved_medians(cases, repeats)
    ref_out, base = outputs["reference fp32 (before)"], medians["reference fp32 (before)"]
    rows = []
    for name, t in medians.items():
        diff = (outputs[name] - ref_out).abs().max().item()
        snr = 10 * torch.log10(ref_out.square().sum() / (outputs[name] - ref_out).square().sum())
        note = f"RTF {t / seconds:.3f}; max|diff| {diff:.1e}"
        note += f"; diff SNR {snr.item():.1f} dB" if diff > 0 else ""
        rows.append(Row("separation", f"{experiment} {name}", t, None, t / base, note))
    return rows


def train_step_case(experiment: str, seconds: float, batch: int, threads: int, *extra: str) -> dict:
    """One ``sfc.bench.train_step`` run in a fresh process (its own max RSS); the JSON it prints."""
    argv = [sys.executable, "-m", "sfc.bench.train_step", "--experiment", experiment, "--json"]
    argv += ["--device", "cpu", "--steps", "3", "--warmup", "1", "--threads", str(threads)]
    argv += ["--batch-size", str(batch), "--segment-seconds", str(seconds), *extra]
    out = subprocess.run(argv, capture_output=True, text=True, env=os.environ.copy())
    if out.returncode:
        raise RuntimeError(f"train_step {experiment} {extra} failed:\n{out.stderr[-2000:]}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def bench_training(quick: bool, threads: int, compile: bool) -> list[Row]:
    size = "tiny-k32" if quick else "small-k64"
    groups = [  # (label, [(experiment, extra args)], seconds, batch)
        (
            "SFC-CA step",
            [(f"mss-sfc_ca-{size}", ("--reference",)), (f"mss-sfc_ca-{size}", ())]
            + ([(f"mss-sfc_ca-{size}", ("--compile",))] if compile else []),
            1.0 if quick else 2.0,
            1,
        ),
        (
            "Mamba memory",
            [
                (f"mss-sfc_ca-{size}", ()),
                (f"mss-sfc_mamba-{size}", ("--reference",)),
                (f"mss-sfc_mamba-{size}", ()),
            ],
            1.0,
            1,
        ),
        (
            "Mamba time",
            [("mss-sfc_ca-tiny-k32", ()), ("mss-sfc_mamba-tiny-k32", ())],
            1.0 if not quick else 0.5,
            2,
        ),
    ]
    rows = []
    for label, cases, seconds, batch in groups:
        base = None
        for experiment, extra in cases:
            res = train_step_case(experiment, seconds, batch, threads, *extra)
            base = base or res
            tag = (
                " (before)"
                if "--reference" in extra
                else " compile"
                if "--compile" in extra
                else ""
            )
            note = f"{label}: {batch} x {seconds:g} s; mem ratio {res['peak_memory_gib'] / base['peak_memory_gib']:.2f}"
            if "--compile" in extra:
                note += f"; first step (compiling) {res['first_step_s']:.0f} s"
            rows.append(
                Row(
                    "training",
                    experiment + tag,
                    res["median_step_s"],
                    res["peak_memory_gib"],
                    res["median_step_s"] / base["median_step_s"],
                    note,
                )
            )
    return rows


def _saved_gib(fn: Callable[[], torch.Tensor]) -> float:
    """GiB of tensors autograd keeps for the backward of ``fn()`` (distinct storages)."""
    sizes: dict[int, int] = {}

    def pack(t: torch.Tensor) -> torch.Tensor:
        sizes[t.untyped_storage().data_ptr()] = t.untyped_storage().nbytes()
        return t

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        fn()
    return sum(sizes.values()) / 2**30


def bench_mamba(repeats: int) -> list[Row]:
    from sfc.bench.mamba import scan_inputs
    from sfc.models.mamba import selective_scan_chunked
    from sfc.models.mamba_scan import selective_scan_recomputed

    inputs = scan_inputs(172, 1057, 16, 8)  # SFC-Mamba tiny, batch 2 x 1 s: B' = 2 T
    scans = {"stored autograd (before)": selective_scan_chunked}
    scans["recomputing backward"] = selective_scan_recomputed
    cases = {n: (lambda s=s: s(*inputs).sum().backward()) for n, s in scans.items()}
    medians = interleaved_medians(cases, repeats)
    base = medians["stored autograd (before)"]
    base_mem = _saved_gib(lambda: selective_scan_chunked(*inputs))
    rows = []
    for name, scan in scans.items():
        mem = _saved_gib(lambda scan=scan: scan(*inputs))
        note = f"B'=172 L=1057 E=16 N=8 fwd+bwd; saved-for-backward ratio {mem / base_mem:.3f}"
        rows.append(Row("mamba", f"scan {name}", medians[name], mem, medians[name] / base, note))
    return rows


def bench_metrics(seconds: float) -> list[Row]:
    from sfc.bench.eval import bench_csdr

    res = bench_csdr(seconds, repeats=3, museval_repeats=1)
    scale = seconds / 60.0
    note = f"{seconds:g} s 4-stem stereo; max|frame diff| {res['max_abs_frame_diff_db']:.1e} dB"
    note += f"; speed-up {res['speedup']:.0f}x"
    return [
        Row("metrics", "cSDR museval", res["museval_s_per_min"] * scale, None, 1.0, note),
        Row(
            "metrics",
            "cSDR ours (fast)",
            res["ours_s_per_min"] * scale,
            None,
            1 / res["speedup"],
            note,
        ),
    ]


SECTIONS = ("separation", "training", "mamba", "metrics")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m sfc.bench", description=__doc__.splitlines()[0]
    )
    parser.add_argument("--quick", action="store_true", help="tiny models and short inputs")
    parser.add_argument("--only", nargs="+", choices=SECTIONS, default=list(SECTIONS))
    parser.add_argument("--threads", type=int, default=1, help="torch threads (default 1)")
    parser.add_argument("--repeats", type=int, default=3, help="timed repeats per case")
    parser.add_argument("--seconds", type=float, default=None, help="separation chunk length")
    parser.add_argument("--compile", action="store_true", help="add torch.compile rows (slow)")
    parser.add_argument("--json", default=None, help="also write the rows here")
    args = parser.parse_args(argv)
    if args.threads < 1 or args.repeats < 1:
        parser.error("--threads and --repeats must be >= 1")
    torch.set_num_threads(args.threads)
    seconds = args.seconds or (3.0 if args.quick else 12.0)
    size = "tiny-k32" if args.quick else "small-k64"
    print(
        f"# {platform.processor() or platform.machine()}, {os.cpu_count()} CPUs, torch "
        f"{torch.__version__}, {args.threads} thread(s), load average {os.getloadavg()[0]:.1f}"
    )
    print(f"{'section':11s} {'case':48s} {'median s':>9s} {'peak GiB':>8s} {'ratio':>7s}  note")
    rows: list[Row] = []

    def emit(new: list[Row]) -> None:
        for row in new:
            print(_fmt(row), flush=True)
        rows.extend(new)

    if "separation" in args.only:
        for model in ("sfc_ca", "band_split"):
            emit(bench_separation(f"mss-{model}-{size}", seconds, args.repeats, args.compile))
    if "training" in args.only:
        emit(bench_training(args.quick, args.threads, args.compile))
    if "mamba" in args.only:
        emit(bench_mamba(args.repeats))
    if "metrics" in args.only:
        emit(bench_metrics(5.0 if args.quick else 20.0))
    print(f"# load average at the end {os.getloadavg()[0]:.1f}")
    if args.json:
        from dataclasses import asdict

        from sfc.provenance import write_json_atomic

        write_json_atomic(args.json, {"argv": sys.argv[1:], "rows": [asdict(r) for r in rows]})
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
