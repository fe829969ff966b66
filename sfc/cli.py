"""Command-line entry point: ``sfc <command> ...``.

Each command lives in its own module exposing ``add_arguments(parser)`` and ``main(args) -> int``;
modules are imported only when their command runs, so ``sfc describe`` never imports the data stack.

Exit codes shared by every command: 0 done, 2 bad input (one line naming it), 74 operating-system error
(disk full, permission denied, read-only file system, missing file: one line naming the path and the
operation; writes are atomic, so nothing half-written is left), 130 interrupted (Ctrl-C). ``sfc train``
adds 3 (non-finite loss) and 75 (stopped by a signal after a checkpoint).
"""

from __future__ import annotations

import argparse
import importlib
import sys
import traceback

from sfc import __version__
from sfc.errors import UserError

DESCRIPTION = (
    "Input-adaptive spectral feature compression for music and cinematic-audio source separation: "
    "data, training, separation, evaluation and the paper's tables (Saijo & Bando, 2026)."
)
EXIT_USER_ERROR = 2
EXIT_OS_ERROR = 74  # EX_IOERR of sysexits.h
EXIT_INTERRUPTED = 130

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
    parser = argparse.ArgumentParser(prog="sfc", description=DESCRIPTION)
    parser.add_argument("--version", action="version", version=f"sfc {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for name, (module, help_text) in COMMANDS.items():
        p = sub.add_parser(name, help=help_text, description=help_text)
        p.set_defaults(_module=module)
        # arguments are added lazily in main() for the chosen command only
    return parser


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    parser = build_parser()
    if not argv or argv[0] in ("-h", "--help", "--version") or argv[0] not in COMMANDS:
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
        return EXIT_USER_ERROR
    except OSError as err:
        print(f"sfc {name}: error: {describe_os_error(err)}", file=sys.stderr)
        return EXIT_OS_ERROR
    except KeyboardInterrupt:
        print(f"sfc {name}: interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED


def describe_os_error(err: OSError) -> str:
    """One line: what failed, on which path(s), in which operation (the innermost frame's call)."""
    what = err.strerror or type(err).__name__
    paths = [str(p) for p in (err.filename, err.filename2) if p is not None]
    frames = traceback.extract_tb(err.__traceback__)
    where = ""
    if frames:
        # the operation: the innermost call; the context: the innermost frame of this package
        own = [f for f in frames if "/sfc/" in f.filename.replace("\\", "/")]
        frame = frames[-1]
        where = f" (in {frame.name}: {(frame.line or '').strip()})"
        if own and own[-1] is not frame:
            where = (
                f" (in {frame.name}, called from {own[-1].name}: {(own[-1].line or '').strip()})"
            )
    target = f": {' -> '.join(paths)}" if paths else (f": {err}" if not err.strerror else "")
    return f"{what}{target}{where}"


if __name__ == "__main__":
    raise SystemExit(main())
