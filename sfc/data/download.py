"""Resumable, verified download and atomic extraction of MUSDB18-HQ and DnR v2.

PAPER: spec §1.1 (Zenodo record 3338373, ``musdb18hq.zip``) and §1.2 (Zenodo record 6949108,
``dnr_v2.tar.gz.00`` .. ``.10``, concatenated then extracted).

Guarantees:

* the expected size and md5 of every file are known before its download starts: pinned (MUSDB18-HQ) or
  read from the Zenodo record's metadata (its JSON API lists them per file; DnR v2). A file whose size
  and checksum are both unknown is never accepted;
* downloads resume with HTTP Range from ``<file>.part``; a transfer that ends before the expected size
  (with or without ``Content-Length``) counts as cut and is resumed; retries back off exponentially
  (1, 2, 4, ... s, at most ``MAX_BACKOFF_SECONDS``) and say so; a file is renamed to its final name
  only after its size and md5 match;
* a checksum mismatch leaves the bytes aside as ``<file>.bad-md5`` and stops with the computed value;
  a rerun downloads the file again (and removes the bad copy once a good one is verified);
* a rerun re-verifies files that already have their final names; one that fails is set aside and
  downloaded again, the others are kept;
* extraction goes into a temporary folder beside the target, is checked, then renamed: an interrupted
  run never leaves a folder that looks complete. A corrupt split archive names the part being read;
  a tar that ends early or at a corrupt header is an error (``tarfile`` alone stops silently), and so
  are fewer tracks than expected;
* nothing that already exists is deleted or overwritten (``--out`` must not exist; ``--existing``
  only links to the user's copy after validating its layout).
"""

from __future__ import annotations

import dataclasses
import hashlib
import http.client
import io
import json
import os
import shutil
import sys
import tarfile
import tempfile
import time
import urllib.error
import urllib.request
import warnings
import zipfile
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from tqdm import tqdm

from sfc.data.audio import SAMPLE_RATE, wav_info
from sfc.data.tracks import SPLIT_DIRS, stem_files
from sfc.errors import UserError
from sfc.experiments import TASKS
from sfc.provenance import write_text_atomic

CHUNK = 1 << 20
MAX_BACKOFF_SECONDS = 60.0
_sleep = time.sleep  # replaced in tests


def backoff_seconds(retry: int) -> float:
    """Wait before retry number ``retry`` (1-based): 1, 2, 4, ... s, at most MAX_BACKOFF_SECONDS."""
    return float(min(2.0 ** (retry - 1), MAX_BACKOFF_SECONDS))


@dataclass(frozen=True)
class RemoteFile:
    """One file to download; ``size`` / ``md5`` None = unknown (not verified, computed value printed)."""

    name: str
    url: str
    size: int | None
    md5: str | None


@dataclass(frozen=True)
class DatasetSpec:
    """A downloadable dataset: its files, archive kind, task and expected track counts per folder."""

    name: str
    task: str
    files: tuple[RemoteFile, ...]
    archive: str  # "zip" or "tar.gz" (parts concatenated in order)
    counts: dict[str, int]
    metadata_url: str | None = None  # Zenodo JSON API of the record: sizes and md5 of its files


_ZENODO = "https://zenodo.org/records/{record}/files/{name}?download=1"
DATASETS: dict[str, DatasetSpec] = {
    "musdb18hq": DatasetSpec(
        name="musdb18hq",
        task="mss",
        files=(
            # Size and md5 as published by Zenodo for record 3338373 (found in several public
            # download scripts that check them; not re-downloaded here).
            RemoteFile(
                "musdb18hq.zip",
                _ZENODO.format(record=3338373, name="musdb18hq.zip"),
                22_656_664_047,
                "12d4f2ecd55245a4688754dd76363103",
            ),
        ),
        archive="zip",
        counts={"train": 100, "test": 50},  # PAPER: spec §1.1
    ),
    "dnr_v2": DatasetSpec(
        name="dnr_v2",
        task="cass",
        # The sizes and md5 values of the 11 parts are not pinned here: they are read from the
        # record's metadata (metadata_url) before any part is downloaded, and the verified values are
        # recorded in <archive-dir>/dnr_v2.checksums.json.
        files=tuple(
            RemoteFile(
                f"dnr_v2.tar.gz.{i:02d}",
                _ZENODO.format(record=6949108, name=f"dnr_v2.tar.gz.{i:02d}"),
                None,
                None,
            )
            for i in range(11)
        ),
        archive="tar.gz",
        # ASSUMPTION: counts from the DnR paper (spec §1.2 "inferred, verify on download"): fewer
        # tracks is an error (a short archive), more is a warning.
        counts={"tr": 3406, "cv": 487, "tt": 973},
        metadata_url="https://zenodo.org/api/records/6949108",
    ),
}


def get_dataset(name: str) -> DatasetSpec:
    if name not in DATASETS:
        raise UserError(f"unknown dataset {name!r}: expected one of {sorted(DATASETS)}")
    return DATASETS[name]


# ------------------------------------------------------------------------------------ download


def md5_file(path: Path, progress: bool = False) -> str:
    """md5 hex digest of a file, read in 1-MiB chunks."""
    digest = hashlib.md5()
    with (
        open(path, "rb") as f,
        tqdm(
            total=path.stat().st_size,
            unit="B",
            unit_scale=True,
            desc=f"md5 {path.name}",
            disable=not progress,
        ) as bar,
    ):
        for block in iter(lambda: f.read(CHUNK), b""):
            digest.update(block)
            bar.update(len(block))
    return digest.hexdigest()


def _open(url: str, start: int, timeout: float) -> http.client.HTTPResponse:
    request = urllib.request.Request(url, headers={"User-Agent": "sfc-data/0.1"})
    if start > 0:
        request.add_header("Range", f"bytes={start}-")
    return urllib.request.urlopen(request, timeout=timeout)  # noqa: S310 (http/https only, checked)


def _transfer(remote: RemoteFile, part: Path, timeout: float, progress: bool) -> None:
    """One HTTP request appending to ``part`` (resuming with Range); may raise on a cut connection."""
    start = part.stat().st_size if part.exists() else 0
    if remote.size is not None and start >= remote.size:
        return
    try:
        response = _open(remote.url, start, timeout)
    except urllib.error.HTTPError as err:
        if err.code == 416 and start > 0:  # range not satisfiable: nothing left to fetch
            return
        raise
    with response:
        if start > 0 and response.status != 206:  # server ignored Range: start again
            start = 0
        total = remote.size
        mode = "ab" if start > 0 else "wb"
        with (
            open(part, mode) as f,
            tqdm(
                total=total,
                initial=start,
                unit="B",
                unit_scale=True,
                desc=remote.name,
                disable=not progress,
            ) as bar,
        ):
            for block in iter(lambda: response.read(CHUNK), b""):
                f.write(block)
                bar.update(len(block))
        expected = response.headers.get("Content-Length")
        got = part.stat().st_size - start
        if expected is not None and got < int(expected):
            raise http.client.IncompleteRead(b"", int(expected) - got)


def _check_scheme(url: str) -> None:
    if not url.startswith(("http://", "https://")):
        raise UserError(f"refusing to download {url!r}: only http(s) URLs are allowed")


class _ShortTransfer(OSError):
    """The transfer ended (no error, no ``Content-Length``) before the expected size."""


def _retryable(err: Exception) -> bool:
    if isinstance(err, urllib.error.HTTPError):
        return err.code == 429 or err.code >= 500  # rate limit / server trouble: try again
    return isinstance(err, (OSError, http.client.HTTPException))


def _with_retries(what: str, attempt, retries: int) -> None:
    """Call ``attempt()`` up to ``retries`` times, backing off exponentially between tries (printed).

    Raises the last error when every try failed; a non-retryable error at once.
    """
    retries = max(retries, 1)
    for i in range(1, retries + 1):
        try:
            attempt()
            return
        except Exception as err:
            if not _retryable(err) or i == retries:
                raise
            wait = backoff_seconds(i)
            print(
                f"{what}: {type(err).__name__}: {err}; retry {i}/{retries - 1} in {wait:g} s",
                file=sys.stderr,
            )
            _sleep(wait)


def download_file(
    remote: RemoteFile,
    dest_dir: Path,
    retries: int = 5,
    timeout: float = 60.0,
    progress: bool = True,
) -> tuple[Path, str]:
    """Download ``remote`` into ``dest_dir``, resuming a previous ``.part``; verify size and md5.

    A file already under its final name is verified again; if it fails it is set aside as
    ``<name>.bad-md5`` and downloaded again.

    Returns:
        the verified file ``dest_dir / remote.name`` and its md5.

    Raises:
        UserError: the size and md5 are both unknown (nothing could verify the file), the transfer
            stayed incomplete after ``retries`` attempts (the ``.part`` file is kept, so a rerun
            resumes), the file is too large, or the md5 does not match (the bytes are moved to
            ``<name>.bad-md5``; a rerun downloads the file again).
    """
    _check_scheme(remote.url)
    if remote.size is None and remote.md5 is None:
        raise UserError(
            f"{remote.name}: expected size and checksum both unknown; refusing to download a file "
            "that nothing could verify (pin them, or give the dataset's metadata_url)"
        )
    dest_dir.mkdir(parents=True, exist_ok=True)
    final, part = dest_dir / remote.name, dest_dir / f"{remote.name}.part"
    bad = dest_dir / f"{remote.name}.bad-md5"
    if final.exists():
        problem = _verify_problem(final, remote, progress)
        if problem is None:
            return final, md5_file(final) if remote.md5 is None else remote.md5
        print(f"{final}: {problem}; set aside as {bad.name}, downloading again", file=sys.stderr)
        os.replace(final, bad)

    def attempt() -> None:
        _transfer(remote, part, timeout, progress)
        have = part.stat().st_size if part.exists() else 0
        if remote.size is not None and have < remote.size:
            raise _ShortTransfer(f"transfer ended at {have} of {remote.size} bytes")

    try:
        _with_retries(f"download of {remote.name}", attempt, retries)
    except urllib.error.HTTPError as err:
        raise UserError(f"download of {remote.url} failed: HTTP {err.code} {err.reason}") from err
    except (OSError, http.client.HTTPException) as err:
        have = part.stat().st_size if part.exists() else 0
        raise UserError(
            f"download of {remote.url} incomplete after {retries} attempt(s) ({have} bytes kept in "
            f"{part}; rerun to resume): {err}"
        ) from err
    digest = verify_file(part, remote, progress, bad_suffix=".bad-md5", final_name=remote.name)
    os.replace(part, final)
    bad.unlink(missing_ok=True)  # an earlier bad copy, now replaced by a verified one
    return final, digest


def _verify_problem(path: Path, remote: RemoteFile, progress: bool) -> str | None:
    """Why ``path`` does not match ``remote`` (size, then md5), or None when it does."""
    size = path.stat().st_size
    if remote.size is not None and size != remote.size:
        return f"{size} bytes, expected {remote.size}"
    if remote.md5 is not None:
        digest = md5_file(path, progress)
        if digest != remote.md5:
            return f"md5 {digest}, expected {remote.md5}"
    return None


def verify_file(
    path: Path,
    remote: RemoteFile,
    progress: bool = True,
    bad_suffix: str | None = None,
    final_name: str = "",
) -> str:
    """Check the size and md5 of ``path`` against ``remote``; return the computed md5.

    Where a value is unknown (None) it is not checked and the computed md5 is printed. On an md5
    mismatch with ``bad_suffix`` set, the file is renamed to ``<name><bad_suffix>`` (never deleted;
    a rerun downloads the file again and removes it once a good copy is verified).
    """
    size = path.stat().st_size
    if remote.size is not None and size != remote.size:
        kind = "truncated" if size < remote.size else "too large"
        raise UserError(
            f"{path}: {size} bytes, expected {remote.size} ({kind}); rerun to resume or remove the file"
        )
    digest = md5_file(path, progress)
    if remote.md5 is None:
        print(f"md5 {final_name or path.name} = {digest} (no pinned value; not verified)")
    elif digest != remote.md5:
        where = path
        if bad_suffix:
            where = path.with_name((final_name or path.name) + bad_suffix)
            os.replace(path, where)
        raise UserError(
            f"checksum mismatch for {final_name or path.name}: md5 {digest}, expected {remote.md5}; "
            f"the bytes are kept in {where} for inspection; a rerun downloads it again (and removes "
            "that copy once a good one is verified)"
        )
    return digest


# ------------------------------------------------------------------------------------ metadata


def _metadata_entries(data: object) -> dict[str, tuple[int | None, str | None]]:
    """``{file name: (size, md5)}`` from a Zenodo record document (``files`` as a list, or as
    ``{"entries": ...}``; checksums as ``md5:<hex>``)."""
    files = data.get("files") if isinstance(data, dict) else None
    if isinstance(files, dict):
        files = files.get("entries", files)
    if isinstance(files, dict):
        files = list(files.values())
    if not isinstance(files, list):
        raise ValueError("no 'files' list in the record")
    out: dict[str, tuple[int | None, str | None]] = {}
    for entry in files:
        if not isinstance(entry, dict):
            continue
        name = entry.get("key") or entry.get("filename")
        size = entry.get("size", entry.get("filesize"))
        checksum = str(entry.get("checksum") or "")
        algo, _, value = checksum.rpartition(":")
        md5_hex = value.lower() if algo in ("md5", "") and len(value) == 32 else None
        if name:
            out[str(name)] = (int(size) if size is not None else None, md5_hex)
    return out


def resolve_checksums(spec: DatasetSpec, timeout: float = 60.0, retries: int = 5) -> DatasetSpec:
    """``spec`` with every unknown size and md5 taken from the record's metadata (pinned values win).

    Raises:
        UserError: a file would still have neither a size nor an md5 (metadata unreachable, not
            JSON, or not listing the file).
    """
    unknown = [f for f in spec.files if f.size is None or f.md5 is None]
    if not unknown:
        return spec
    if spec.metadata_url is None:
        entries: dict[str, tuple[int | None, str | None]] = {}
    else:
        _check_scheme(spec.metadata_url)
        box: list[bytes] = []

        def attempt() -> None:
            with _open(spec.metadata_url, 0, timeout) as response:
                box.append(response.read())

        try:
            _with_retries(f"metadata of {spec.name}", attempt, retries)
            entries = _metadata_entries(json.loads(box[0].decode("utf-8")))
        except (OSError, http.client.HTTPException, ValueError) as err:
            raise UserError(
                f"{spec.name}: cannot read the expected sizes and md5 of "
                f"{', '.join(f.name for f in unknown)} from {spec.metadata_url} ({err}); a file whose "
                "size and checksum are both unknown is never accepted, so nothing was downloaded"
            ) from err
    files = []
    for f in spec.files:
        size, digest = entries.get(f.name, (None, None))
        f = RemoteFile(f.name, f.url, f.size if f.size is not None else size, f.md5 or digest)
        if f.size is None and f.md5 is None:
            raise UserError(
                f"{spec.name}: the size and checksum of {f.name} are both unknown "
                f"({spec.metadata_url or 'no metadata_url'} does not list them); refusing to "
                "download a file that nothing could verify"
            )
        files.append(f)
    return dataclasses.replace(spec, files=tuple(files))


# ---------------------------------------------------------------------------------- extraction


class ChainedReader(io.RawIOBase):
    """A read-only stream over several files in order (the parts of a split archive)."""

    def __init__(self, paths: list[Path]) -> None:
        super().__init__()
        self._paths: Iterator[Path] = iter(paths)
        self._file = None
        self.current: Path | None = paths[0] if paths else None  # the part the last bytes came from
        self._next()

    def _next(self) -> None:
        if self._file is not None:
            self._file.close()
        path = next(self._paths, None)
        self._file = open(path, "rb") if path is not None else None  # noqa: SIM115
        if path is not None:
            self.current = path

    def readable(self) -> bool:
        return True

    def readinto(self, buffer) -> int:
        """Bytes of the current part only (a read never spans two parts, so ``current`` is exact)."""
        while self._file is not None:
            n = self._file.readinto(buffer)
            if n:
                return n
            self._next()
        return 0

    def close(self) -> None:
        if self._file is not None:
            self._file.close()
            self._file = None
        super().close()


def _extract_zip(archive: Path, dest: Path) -> None:
    with zipfile.ZipFile(archive) as zf:
        for info in zf.infolist():
            target = (dest / info.filename).resolve()
            if not target.is_relative_to(dest.resolve()):
                raise UserError(f"{archive}: unsafe member path {info.filename!r}")
        for info in tqdm(zf.infolist(), desc=f"extract {archive.name}"):
            zf.extract(info, dest)


def _extract_tar_parts(parts: list[Path], dest: Path) -> None:
    """Stream the concatenated parts through tarfile; UserError naming the part being read when the
    archive is corrupt, and when it ends early or at a corrupt header (tarfile stops silently there).
    """
    # DEVIATION: the authors' data.sh `cat`s the parts into one file, then untars it; streaming the
    # parts through one reader extracts the same bytes without a second copy of the archive on disk.
    # No read-ahead buffer: tarfile's gzip layer reads one part at a time, so reader.current is the
    # part whose bytes failed.
    reader = ChainedReader(parts)
    try:
        with reader, tarfile.open(fileobj=reader, mode="r|gz") as tf:
            for member in tqdm(tf, desc=f"extract {parts[0].name.split('.')[0]}", unit=" files"):
                tf.extract(member, dest, filter="data")
            stopped_in = reader.current  # where iteration ended: the end marker or a bad header
            try:
                _check_tar_end(tf)
            except UserError as err:
                raise UserError(f"corrupt archive: part {_name(stopped_in)}: {err}") from err
    except UserError:
        raise
    except (tarfile.TarError, EOFError, OSError, zlib.error, ValueError) as err:
        raise UserError(
            f"corrupt archive: part {_name(reader.current)} (of {len(parts)}): "
            f"{type(err).__name__}: {err}"
        ) from err


def _name(path: Path | None) -> str:
    return path.name if path is not None else "?"


def _check_tar_end(tf: tarfile.TarFile) -> None:
    """After iteration: the archive must end with zero blocks only (the end-of-archive marker).

    tarfile ends iteration without an error at a corrupt or truncated header after the first member;
    then the rest of the stream is not all zeros (members follow) or is shorter than a block.
    """
    rest = 0
    while True:
        block = tf.fileobj.read(CHUNK)
        if not block:
            break
        if block.count(0) != len(block):
            raise UserError(
                f"corrupt member header after {tf.offset} bytes of the tar stream (members follow)"
            )
        rest += len(block)
    if rest < tarfile.BLOCKSIZE:
        raise UserError(f"tar stream truncated after {tf.offset} bytes (no end-of-archive marker)")


def find_root(folder: Path, split_dirs: list[str], max_depth: int = 2) -> Path | None:
    """The folder at most ``max_depth`` levels under ``folder`` that holds all of ``split_dirs``."""
    level = [folder]
    for _ in range(max_depth + 1):
        for cand in level:
            if all((cand / s).is_dir() for s in split_dirs):
                return cand
        level = [d for c in level for d in sorted(c.iterdir()) if d.is_dir()]
    return None


def extract(spec: DatasetSpec, archives: list[Path], out: Path) -> Path:
    """Extract ``archives`` into a temporary folder beside ``out``, validate, then rename to ``out``.

    Raises:
        UserError: ``out`` exists, the archive is corrupt, or its layout is not the dataset's. The
            temporary folder is removed; the archives are kept.
    """
    if out.exists() or out.is_symlink():
        raise UserError(f"{out} already exists; refusing to overwrite it")
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(dir=out.parent, prefix=f".{out.name}.extract-"))
    try:
        try:
            if spec.archive == "zip":
                _extract_zip(archives[0], tmp)
            else:
                _extract_tar_parts(archives, tmp)
        except UserError:
            raise
        except (zipfile.BadZipFile, tarfile.TarError, EOFError, OSError, ValueError) as err:
            raise UserError(
                f"corrupt archive {archives[0].name}: {type(err).__name__}: {err}"
            ) from err
        root = find_root(tmp, sorted(set(SPLIT_DIRS[spec.task].values())))
        if root is None:
            raise UserError(
                f"{archives[0].name}: no folder with {sorted(spec.counts)} found in the archive"
            )
        found = validate_layout(root, spec.task, spec.counts, strict=spec.name == "musdb18hq")
        short = [f"{f}: {found.get(f, 0)} tracks, expected {n}" for f, n in spec.counts.items()
                 if found.get(f, 0) < n]  # fmt: skip
        if short:  # a short archive is an error even where the exact count is only a warning
            raise UserError(
                f"{archives[0].name}: the archive holds too few tracks: {'; '.join(short)}"
            )
        os.rename(root, out)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return out


# --------------------------------------------------------------------------------- layout check


def validate_layout(
    root: str | Path, task: str, counts: dict[str, int] | None = None, strict: bool = True
) -> dict[str, int]:
    """Check the folders, files, sample rate and channels of a dataset root (headers only).

    Args:
        root: dataset root.
        task: ``mss`` (MUSDB layout) or ``cass`` (DnR layout).
        counts: expected number of tracks per split folder (e.g. ``{"train": 100, "test": 50}``).
        strict: a count mismatch is an error (True) or a warning (False).

    Returns:
        the number of tracks found per split folder.

    Raises:
        UserError: naming the first missing folder or file, or the first wav with a wrong format.
    """
    root = Path(root)
    if not root.is_dir():
        raise UserError(f"dataset root {root} is not a folder")
    found: dict[str, int] = {}
    num_channels = TASKS[task].num_channels
    for folder in sorted(set(SPLIT_DIRS[task].values())):
        split_dir = root / folder
        if not split_dir.is_dir():
            raise UserError(f"{root}: missing folder {folder}/")
        tracks = sorted(p for p in split_dir.iterdir() if p.is_dir() and not p.name.startswith("."))
        for track in tqdm(tracks, desc=f"check {folder}", leave=False):
            for stem in stem_files(task):
                _check_wav(track / f"{stem}.wav", num_channels)
        found[folder] = len(tracks)
    _check_counts(root, found, counts or {}, strict)
    return found


def _check_wav(path: Path, num_channels: int) -> None:
    info = wav_info(path)
    if info.samplerate != SAMPLE_RATE:
        raise UserError(f"{path}: sample rate {info.samplerate} Hz, expected {SAMPLE_RATE} Hz")
    if info.channels != num_channels:
        raise UserError(f"{path}: {info.channels} channel(s), expected {num_channels}")
    if info.frames == 0:
        raise UserError(f"{path}: empty audio file (0 samples)")


def _check_counts(root: Path, found: dict[str, int], counts: dict[str, int], strict: bool) -> None:
    for folder, want in counts.items():
        if found.get(folder) != want:
            msg = f"{root}/{folder}: {found.get(folder)} tracks, expected {want}"
            if strict:
                raise UserError(msg)
            warnings.warn(msg, stacklevel=3)


# --------------------------------------------------------------------------------- entry points


def fetch(
    name: str,
    out: str | Path,
    archive_dir: str | Path | None = None,
    retries: int = 5,
    progress: bool = True,
) -> Path:
    """Download, verify and extract dataset ``name`` (a key of DATASETS) to ``out`` (must not exist)."""
    return fetch_spec(get_dataset(name), out, archive_dir, retries, progress)


def fetch_spec(
    spec: DatasetSpec,
    out: str | Path,
    archive_dir: str | Path | None = None,
    retries: int = 5,
    progress: bool = True,
) -> Path:
    """Download, verify and extract ``spec`` to ``out`` (which must not exist).

    Archives go to ``archive_dir`` (default: ``<parent of out>/downloads``) and are kept, so a rerun
    after a failure resumes. The md5 of every file is written to
    ``<archive_dir>/<name>.checksums.json`` (provenance).
    """
    out = Path(out)
    if out.exists() or out.is_symlink():
        raise UserError(f"{out} already exists; refusing to overwrite it")
    archive_dir = Path(archive_dir) if archive_dir else out.parent / "downloads"
    spec = resolve_checksums(spec, retries=retries)  # before any byte: every file verifiable
    done = [download_file(f, archive_dir, retries=retries, progress=progress) for f in spec.files]
    sums = {path.name: digest for path, digest in done}
    write_text_atomic(
        archive_dir / f"{spec.name}.checksums.json", json.dumps(sums, indent=2) + "\n"
    )
    return extract(spec, [path for path, _ in done], out)


def link_existing(name: str, existing: str | Path, out: str | Path) -> Path:
    """Use a copy already on disk: validate its layout, then make ``out`` a symlink to it.

    The user's copy is only read. If ``out`` is already that link, nothing changes.
    """
    spec, existing, out = get_dataset(name), Path(existing).resolve(), Path(out)
    validate_layout(existing, spec.task, spec.counts, strict=spec.name == "musdb18hq")
    if out.is_symlink() and out.resolve() == existing:
        return out
    if out.exists() or out.is_symlink():
        raise UserError(f"{out} already exists; refusing to overwrite it")
    out.parent.mkdir(parents=True, exist_ok=True)
    out.symlink_to(existing, target_is_directory=True)
    return out
