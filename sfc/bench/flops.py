"""Cost table (spec Table C): parameters and FLOPs per second of audio beside the paper's values.

    python -m sfc.bench.flops [--seconds 1 6] [experiment ...]

The paper's "FLOPs (G/s)" match multiply-accumulates (MACs): our MAC counts land within 10 % of every
reported value, our FLOP counts (2 per MAC) near twice them. torch's counter covers matmuls,
convolutions and attention; norms, activations, softmax and the STFT are not counted, which explains the
remaining few percent.
"""

from __future__ import annotations

import argparse

from sfc.experiments import PAPER_TABLES
from sfc.models import build_model
from sfc.models.describe import count_parameters, flops_per_second
from sfc.report.paper_values import paper_value


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("experiments", nargs="*", default=PAPER_TABLES["cost"])
    parser.add_argument(
        "--seconds", type=float, nargs="+", default=[1.0], help="input durations to count on"
    )
    args = parser.parse_args(argv)
    head = f"{'experiment':28s} {'params M':>9s} {'paper M':>8s}"
    for s in args.seconds:
        head += f" {f'GMAC/s@{s:g}s':>12s}"
    print(head + f" {'paper G/s':>10s} {'ours/paper':>10s}")
    for exp_id in args.experiments:
        model = build_model(exp_id)
        params = count_parameters(model)["total"] / 1e6
        macs = [flops_per_second(model, s) / 2e9 for s in args.seconds]
        paper_p = paper_value("cost", exp_id, "params", "total")
        paper_f = paper_value("cost", exp_id, "flops", "total")
        line = f"{exp_id:28s} {params:9.2f} {paper_p if paper_p else float('nan'):8.1f}"
        line += "".join(f" {m:12.2f}" for m in macs)
        ratio = f"{macs[0] / paper_f:10.3f}" if paper_f else f"{'-':>10s}"
        print(line + f" {paper_f if paper_f else float('nan'):10.2f} {ratio}")


if __name__ == "__main__":
    main()
