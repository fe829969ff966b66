"""Provenance and atomic writes, shared by every stage of the pipeline.

House style principle 5: every result carries the resolved config, git commit, package versions,
input checksums and the machine it was made on. Writes are atomic: a temporary file beside the target,
then ``os.replace``, so an interrupted job never leaves a file that looks complete.
"""

from __future__ import annotations

import datetime as _dt
import hashlib
import json
import math
import os
import platform
import subprocess
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from importlib import metadata
from pathlib import Path
from typing import IO, Any

PACKAGES = (
    "sfc",
    "torch",
    "numpy",
    "scipy",
    "soundfile",
    "pandas",
    "matplotlib",
    "museval",
    "fast-bss-eval",
    "snakemake",
    "tqdm",
    "pyyaml",
    "tensorboard",
    "h5py",
    "huggingface_hub",
)


@contextmanager
def atomic_file(path: str | Path, mode: str = "w") -> Iterator[IO]:
    """Open a temporary file beside ``path``; on success flush, fsync and rename it onto ``path``."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        os.chmod(
            fd, 0o666 & ~current_umask()
        )  # mkstemp makes 0600; a plain open() honours the umask
        with os.fdopen(fd, mode, **({} if "b" in mode else {"encoding": "utf-8"})) as handle:
            yield handle
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def current_umask() -> int:
    """The process umask: from /proc (Linux, thread-safe), else by setting it and putting it back."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("Umask:"):
                return int(line.split()[1], 8)
    except (OSError, ValueError, IndexError):
        pass
    mask = os.umask(0o077)
    os.umask(mask)
    return mask


def check_writable(folder: str | Path, option: str) -> None:
    """Make ``folder`` if missing and probe it with a temporary file; UserError naming ``option``.

    Called by the commands before their expensive part, so an unwritable output fails at the start.
    """
    from sfc.errors import UserError

    folder = Path(folder)
    try:
        if folder.exists() and not folder.is_dir():
            raise NotADirectoryError(20, "exists and is not a folder", str(folder))
        folder.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryFile(dir=folder):
            pass
    except OSError as err:
        raise UserError(
            f"{option} {folder}: cannot write there ({err.strerror or err}"
            + (f": {err.filename}" if err.filename and str(err.filename) != str(folder) else "")
            + ")"
        ) from err


def write_text_atomic(path: str | Path, text: str) -> None:
    """Write ``text`` to ``path`` atomically."""
    with atomic_file(path) as handle:
        handle.write(text)


def json_safe(data: Any) -> Any:
    """``data`` with every non-finite float (NaN, inf; numpy scalars too) replaced by None."""
    if isinstance(data, dict):
        return {k: json_safe(v) for k, v in data.items()}
    if isinstance(data, (list, tuple)):
        return [json_safe(v) for v in data]
    if isinstance(data, float) or type(data).__name__ in ("float32", "float64", "float16"):
        return float(data) if math.isfinite(data) else None
    return data


def write_json_atomic(path: str | Path, data: Any, indent: int = 2) -> None:
    """Write ``data`` as strict JSON atomically: NaN and inf are written ``null`` (bare ``NaN`` is not
    JSON, and other readers reject it)."""
    text = json.dumps(json_safe(data), indent=indent, default=str, allow_nan=False)
    write_text_atomic(path, text + "\n")


def git_commit(cwd: str | Path | None = None) -> dict[str, Any]:
    """The commit of the checkout (default: the one holding this package) and whether it is dirty."""
    cwd = Path(__file__).resolve().parent if cwd is None else cwd

    def _git(*args: str) -> str | None:
        try:
            out = subprocess.run(
                ["git", *args], cwd=cwd, capture_output=True, text=True, timeout=10
            )
        except (OSError, subprocess.TimeoutExpired):
            return None
        return out.stdout.strip() if out.returncode == 0 else None

    commit = _git("rev-parse", "HEAD")
    status = _git("status", "--porcelain", "--untracked-files=no")
    return {"commit": commit, "dirty": None if status is None else bool(status)}


def package_versions(names: tuple[str, ...] = PACKAGES) -> dict[str, str | None]:
    """Installed versions of the packages a result depends on (None when not installed)."""
    versions: dict[str, str | None] = {}
    for name in names:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = None
    return versions


def sha256(path: str | Path) -> str:
    """SHA-256 of a file's bytes."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def provenance(config: dict[str, Any] | None, inputs: list[str | Path]) -> dict[str, Any]:
    """The provenance record of a result made from ``inputs`` under ``config``."""
    return {
        "created": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
        "config": config,
        "git": git_commit(),
        "packages": package_versions(),
        "python": platform.python_version(),
        "machine": {"platform": platform.platform(), "node": platform.node()},
        "inputs": {str(p): sha256(p) for p in inputs if Path(p).is_file()},
    }


def write_provenance(
    path: str | Path, config: dict[str, Any] | None, inputs: list[str | Path]
) -> None:
    """Write the provenance record as JSON (atomically)."""
    write_text_atomic(path, json.dumps(provenance(config, inputs), indent=2, sort_keys=True) + "\n")
