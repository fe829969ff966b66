"""``sfc report``: build one table or one figure from explicit input files into explicit outputs.

    sfc report table --table main_mss --experiments ID... --scores CSV... --describe JSON...
                     --md OUT.md --csv OUT.csv --tex OUT.tex --provenance OUT.json [--config-json JSON]
    sfc report position-bias --model MODEL.pt --out FIG.png
    sfc report attention --model MODEL.pt --data-root DIR [--split test] [--track NAME] --out FIG.png
    sfc report num_bands --tables CSV... --out FIG.png
    sfc report params --tables CSV... --out FIG.png

Every command also accepts ``--provenance OUT.json`` and ``--config-json JSON``.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from sfc.errors import UserError


def _common(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--provenance", type=Path, help="write provenance JSON here")
    parser.add_argument(
        "--config-json", default=None, help="the workflow's resolved config, as JSON"
    )


def add_arguments(parser: argparse.ArgumentParser) -> None:
    sub = parser.add_subparsers(dest="what", required=True, metavar="WHAT", help="what to build")
    p = sub.add_parser("table", help="one paper table (Markdown, CSV, LaTeX)")
    p.add_argument("--table", required=True, help="table name, e.g. main_mss")
    p.add_argument("--experiments", nargs="+", required=True, help="experiment ids, in row order")
    p.add_argument("--scores", nargs="*", default=[], type=Path, help="tidy score CSVs")
    p.add_argument("--describe", nargs="*", default=[], type=Path, help="`sfc describe` JSON files")
    p.add_argument(
        "--compare-with",
        nargs="*",
        default=[],
        metavar="ID=PAPER_ID",
        help="compare a model with another paper experiment's reported values",
    )
    p.add_argument("--md", type=Path, required=True, help="Markdown table to write")
    p.add_argument("--csv", type=Path, required=True, help="CSV table to write")
    p.add_argument("--tex", type=Path, required=True, help="LaTeX table to write")
    _common(p)
    p = sub.add_parser("position-bias", help="initial vs learned SFC-CA positional bias")
    p.add_argument("--model", type=Path, required=True, help="trained SFC-CA model file")
    p.add_argument("--out", type=Path, required=True, help="PNG figure to write")
    _common(p)
    p = sub.add_parser("attention", help="SFC-CA attention maps beside input spectrograms")
    p.add_argument("--model", type=Path, required=True, help="trained SFC-CA model file")
    p.add_argument("--data-root", type=Path, required=True, help="dataset root of the track")
    p.add_argument("--split", default="test", help="dataset split of the track")
    p.add_argument("--track", default=None, help="track folder name (default: the first)")
    p.add_argument("--seconds", type=float, default=10.0, help="excerpt length")
    p.add_argument("--out", type=Path, required=True, help="PNG figure to write")
    _common(p)
    for name, text in (("num_bands", "SDR vs number of bands"), ("params", "parameters vs SDR")):
        p = sub.add_parser(name, help=text)
        p.add_argument("--tables", nargs="+", type=Path, required=True, help="table CSVs")
        p.add_argument("--out", type=Path, required=True, help="PNG figure to write")
        _common(p)


def _config(args: argparse.Namespace) -> dict | None:
    if args.config_json is None:
        return None
    try:
        return json.loads(args.config_json)
    except json.JSONDecodeError as err:
        raise UserError(f"--config-json is not valid JSON: {err}") from err


def _table(args: argparse.Namespace) -> list[Path]:
    from sfc.provenance import write_text_atomic
    from sfc.report import tables

    compare = {}
    for item in args.compare_with:
        if "=" not in item:
            raise UserError(f"--compare-with expects ID=PAPER_ID, got {item!r}")
        key, value = item.split("=", 1)
        compare[key] = value
    frame = tables.build_table(
        args.table,
        args.experiments,
        tables.load_scores(args.scores),
        tables.load_describe(args.describe),
        compare,
    )
    title = tables.title_of(args.table)
    write_text_atomic(args.csv, frame.to_csv(index=False, float_format="%.6g"))
    write_text_atomic(args.md, tables.to_markdown(frame, title))
    write_text_atomic(args.tex, tables.to_latex(frame, title))
    return [*args.scores, *args.describe]


def main(args: argparse.Namespace) -> int:
    from sfc.provenance import write_provenance
    from sfc.report import figures

    config = _config(args)
    if args.what == "table":
        inputs = _table(args)
    elif args.what == "position-bias":
        inputs = list(figures.plot_position_bias(args.model, args.out).inputs)
    elif args.what == "attention":
        plotted = figures.plot_attention(
            args.model, args.data_root, args.out, args.split, args.track, args.seconds
        )
        inputs = list(plotted.inputs)
    elif args.what == "num_bands":
        inputs = list(figures.plot_num_bands(args.tables, args.out).inputs)
    else:
        inputs = list(figures.plot_params(args.tables, args.out).inputs)
    if args.provenance:
        write_provenance(args.provenance, config, inputs)
    return 0
