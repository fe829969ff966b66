"""``sfc weights``: the authors' released models: list and download them from the Hub, import them.

    sfc weights list                                   # model folders of the repository, listed now
    sfc weights download FOLDER --manifest M.json      # fetch one folder into the Hub cache, verified
    sfc weights import FOLDER|M.json --out MODEL.pt    # average, EMA copy, map, load strictly, write

The imported model file is an ordinary sfc model file: `sfc separate MODEL.pt song.wav --out sep/` and
`sfc evaluate MODEL.pt ...` use it as they use a trained one.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from sfc.errors import UserError
from sfc.provenance import write_json_atomic
from sfc.weights.hub import DEFAULT_REVISION, REPO_ID


def _hub_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--repo", default=REPO_ID, help=f"Hub model repository (default {REPO_ID})")
    parser.add_argument(
        "--revision",
        default=DEFAULT_REVISION,
        help="branch, tag or commit (pin a commit to reproduce)",
    )
    parser.add_argument(
        "--endpoint", default=None, help="Hub endpoint (default: $HF_ENDPOINT or huggingface.co)"
    )


def add_arguments(parser: argparse.ArgumentParser) -> None:
    sub = parser.add_subparsers(
        dest="action", metavar="ACTION", required=True, help="list, download or import"
    )
    p = sub.add_parser("list", help="list the released model folders")
    _hub_arguments(p)
    p = sub.add_parser("download", help="download one released model folder (Hub cache, HF_HOME)")
    p.add_argument("folder", help="folder in the repository, e.g. musdb18hq/<recipe name>")
    _hub_arguments(p)
    p.add_argument("--cache-dir", type=Path, default=None, help="default: the Hub cache (HF_HOME)")
    p.add_argument("--manifest", type=Path, default=None, help="write the download manifest (JSON)")
    p = sub.add_parser("import", help="import a released model folder into an sfc model file")
    p.add_argument(
        "source", type=Path, help="released model folder, or a download manifest (.json)"
    )
    p.add_argument("--out", type=Path, required=True, help="model file to write")
    p.add_argument(
        "--experiment",
        default=None,
        help="refuse unless the folder's config gives this experiment id",
    )
    p.add_argument(
        "--summary", type=Path, default=None, help="also write the import summary (JSON)"
    )
    p.add_argument("--no-ema", action="store_true", help="import the raw weights, not the EMA copy")
    p.add_argument(
        "--no-forward-check", action="store_true", help="skip the forward pass before writing"
    )


def _import(args: argparse.Namespace) -> int:
    from sfc.weights.importer import import_released

    source, folder = None, args.source
    if args.source.suffix == ".json":
        try:
            source = json.loads(args.source.read_text(encoding="utf-8"))
            folder = Path(source["local_path"])
        except (OSError, ValueError, KeyError, TypeError) as err:
            raise UserError(
                f"{args.source}: not a download manifest of `sfc weights download`: {err}"
            ) from err
    if not folder.is_dir():
        raise UserError(f"released model folder not found: {folder}")
    summary = import_released(
        folder,
        args.out,
        use_ema=not args.no_ema,
        forward_check=not args.no_forward_check,
        source=source,
        expect=args.experiment,
    )
    if args.summary:
        write_json_atomic(args.summary, summary)
    print(
        f"imported {summary['folder']} as {summary['experiment']}: {summary['num_tensors']} tensors, "
        f"{summary['num_parameters']:,} parameters, mean of {len(summary['averaged'])} checkpoint(s) "
        f"({summary['copy']} copy) -> {args.out}"
    )
    return 0


def main(args: argparse.Namespace) -> int:
    from sfc.weights import hub

    if args.action == "list":
        commit = hub.resolve_revision(args.repo, args.revision, args.endpoint)
        folders = hub.model_folders(hub.list_files(args.repo, commit, args.endpoint))
        print(f"# {args.repo}@{commit}")
        print("\n".join(folders))
        return 0
    if args.action == "download":
        manifest = hub.download_folder(
            args.folder, args.repo, args.revision, args.cache_dir, args.endpoint
        )
        if args.manifest:
            write_json_atomic(args.manifest, manifest)
        print(f"{manifest['folder']} @ {manifest['revision']}: {manifest['local_path']}")
        return 0
    return _import(args)
