"""Benchmark of the pure-PyTorch selective scans: ``python -m sfc.bench.mamba [--batch 16]``.

Prints the median wall time (forward, and forward + backward) of the naive per-step reference, the
chunked sequential scan (CPU default) and the chunked parallel scan on one SFC-Mamba-sized input:
L = F + K = 1089, E = D' = 32 (small), N = 8, batch B*T given on the command line.
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable

import torch
import torch.nn.functional as F

from sfc.models.mamba import selective_scan_chunked, selective_scan_naive, selective_scan_parallel

SCANS: dict[str, Callable[..., torch.Tensor]] = {
    "naive": selective_scan_naive,
    "chunked": selective_scan_chunked,
    "parallel": selective_scan_parallel,
}


def scan_inputs(batch: int, length: int, inner: int, num_state: int) -> tuple[torch.Tensor, ...]:
    """Random (u, delta, A, B, C) with Mamba-like magnitudes; u, B, C require grad."""
    gen = torch.Generator().manual_seed(0)
    u, B, C = (torch.randn(batch, length, d, generator=gen) for d in (inner, num_state, num_state))
    delta = F.softplus(torch.randn(batch, length, inner, generator=gen) - 3.0)
    A = -torch.arange(1, num_state + 1.0).repeat(inner, 1)
    return u.requires_grad_(), delta, A, B.requires_grad_(), C.requires_grad_()


def median_time(fn: Callable[[], object], repeats: int) -> float:
    """Median wall time of `fn` in seconds over `repeats` runs after one warm-up."""
    fn()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch", type=int, default=16, help="B*T, the scan batch")
    parser.add_argument("--length", type=int, default=1089, help="L = F + K")
    parser.add_argument("--inner", type=int, default=32, help="E = D'")
    parser.add_argument("--state", type=int, default=8, help="N = d_state")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--threads", type=int, default=0, help="torch threads (0: keep)")
    args = parser.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    inputs = scan_inputs(args.batch, args.length, args.inner, args.state)
    reference = selective_scan_naive(*inputs).detach()
    print(
        f"scan B'={args.batch} L={args.length} E={args.inner} N={args.state} threads={torch.get_num_threads()}"
    )
    for name, scan in SCANS.items():
        err = (scan(*inputs).detach() - reference).abs().max().item()
        with torch.no_grad():
            fwd = median_time(lambda scan=scan: scan(*inputs), args.repeats)
        both = median_time(lambda scan=scan: scan(*inputs).sum().backward(), args.repeats)
        print(
            f"  {name:9s} fwd {fwd * 1e3:8.1f} ms   fwd+bwd {both * 1e3:8.1f} ms   max|diff| {err:.1e}"
        )


if __name__ == "__main__":
    main()
