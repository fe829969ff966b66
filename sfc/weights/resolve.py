"""A released model by name: downloaded and imported on first use, then reused from the sfc cache.

sfc separate musdb18hq/<recipe name> song.wav --out separated/
"""

from __future__ import annotations

import os
import re
from pathlib import Path

from sfc.weights.hub import DEFAULT_REVISION, REPO_ID

# `<dataset>/<recipe name>`: what `sfc weights list` prints
RELEASED_NAME = re.compile(r"[A-Za-z0-9_.-]+/[A-Za-z0-9_.+-]+")


def model_cache_dir() -> Path:
    """$SFC_CACHE, else $XDG_CACHE_HOME/sfc, else ~/.cache/sfc."""
    if os.environ.get("SFC_CACHE"):
        return Path(os.environ["SFC_CACHE"])
    return Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "sfc"


def is_released_name(value: str | Path) -> bool:
    """True for `<dataset>/<recipe>` strings that are not an existing path."""
    return not Path(value).exists() and bool(RELEASED_NAME.fullmatch(str(value)))


def released_model(name: str, repo_id: str = REPO_ID, revision: str = DEFAULT_REVISION) -> Path:
    """The sfc model file of a released model folder, made on first use (per repository commit)."""
    from sfc.weights.hub import download_folder
    from sfc.weights.importer import import_released

    manifest = download_folder(name, repo_id, revision)
    out = (
        model_cache_dir()
        / "released"
        / repo_id.replace("/", "--")
        / manifest["revision"]
        / f"{name.replace('/', '--')}.pt"
    )
    if not out.is_file():
        import_released(manifest["local_path"], out, source=manifest)
    return out
