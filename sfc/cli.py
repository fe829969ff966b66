"""Command-line entry point: ``sfc <command> ...``.

Each command lives in its own module exposing ``add_arguments(parser)`` and ``main(args) -> int``;
modules are imported only when their command runs, so ``sfc describe`` never imports the data stack.
"""

from __future__ import annotations

import argparse
import importlib
import sys

from sfc.errors import UserError

# command name -> (module, one-line help)
COMMANDS: dict[str, tuple[str, str]] = {
    "describe": ("sfc.models.describe", "parameter counts and FLOPs of an experiment id"),
    "experiments": ("sfc.experiments", "list the experiment ids of the paper"),
    "data": ("sfc.data.cli", "download, verify, generate, segment and cache datasets"),
    "train": ("sfc.train.cli", "train one experiment"),
    "separate": ("sfc.eval.separate_cli", "separate audio files with a trained checkpoint"),
    "evaluate": ("sfc.eval.cli", "separate and score a test split with a trained checkpoint"),
    "report": ("sfc.report.cli", "build the paper's tables and figures from scores"),
    "weights": ("sfc.weights.cli", "list, download and import the authors' released models"),
    "status": (
        "sfc.status",
        "state of every table cell of a results folder (done/training/failed)",
    ),
}


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="sfc", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for name, (module, help_text) in COMMANDS.items():
        p = sub.add_parser(name, help=help_text, description=help_text)
        p.set_defaults(_module=module)
        # arguments are added lazily in main() for the chosen command only
    return parser


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    parser = build_parser()
    if not argv or argv[0] in ("-h", "--help") or argv[0] not in COMMANDS:
        parser.parse_args(argv)  # prints help / the unknown-command error and exits
        return 2
    name = argv[0]
    module = importlib.import_module(COMMANDS[name][0])
    sub = argparse.ArgumentParser(prog=f"sfc {name}", description=COMMANDS[name][1])
    module.add_arguments(sub)
    args = sub.parse_args(argv[1:])
    try:
        return int(module.main(args) or 0)
    except UserError as err:
        print(f"sfc {name}: error: {err}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    raise SystemExit(main())
