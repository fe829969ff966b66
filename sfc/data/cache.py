"""Cache of training segments: memory-mapped ``.npy`` arrays plus a JSON index.

Built from the **train split only** (the index records split, root and task; the training dataset
refuses any other split). Each stem's segments come from source-activity detection (spec §1.3).

Two formats:

# DEVIATION: the authors store every 8-s segment in HDF5 (spec §1.3); here overlapping segments share
# their samples in one memory-mapped array, which holds the same segments in half the space.

* ``wav`` (default, chosen by measurement — see the README of this area): per stem one array
  ``<stem>.npy`` of shape (L_total, C), the kept 8-s segments of every track laid end to end, where
  overlapping segments share their samples (runs of overlapping segments are stored once, silent
  stretches are not stored). A segment is the slice ``[offset, offset + segment_samples)``.
  Stored as int16 when every train stem is 16-bit PCM (lossless, half the size), else float32.
* ``stft``: per stem one array ``<stem>.npy`` of shape (S, C, F, T) complex64, the STFT (n_fft 2048,
  hop 512, Hann, centred, all frames kept so that the iSTFT is exact) of each kept segment.

Arrays are written through a fixed-size ``.npy`` header that is rewritten with the final shape, so
one pass over the audio suffices; the cache folder is built beside ``out`` and renamed at the end.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from dataclasses import asdict
from pathlib import Path
from typing import Literal

import numpy as np
import torch
from tqdm import tqdm

from sfc.data.audio import SAMPLE_RATE, wav_info
from sfc.data.segment import SADConfig, active_segments
from sfc.data.tracks import list_tracks, load_track
from sfc.errors import UserError
from sfc.experiments import TASKS
from sfc.provenance import write_text_atomic

CACHE_VERSION = 1
INDEX_FILE = "index.json"
CACHE_FORMATS = ("wav", "stft")
STFT_ARGS = {"n_fft": 2048, "hop_length": 512}  # PAPER: spec §2
INT16_SCALE = 32768.0  # libsndfile's float <-> PCM_16 convention
_HEADER_BYTES = 256

CacheFormat = Literal["wav", "stft"]


class NpyAppender:
    """Write a ``.npy`` file by appending rows along axis 0; the header is fixed at close."""

    def __init__(self, path: Path, row_shape: tuple[int, ...], dtype: np.dtype) -> None:
        self.path, self.row_shape, self.dtype = path, tuple(row_shape), np.dtype(dtype)
        self.num_rows = 0
        self._file = open(path, "wb")  # noqa: SIM115 (closed in close())
        self._file.write(self._header())

    def _header(self) -> bytes:
        shape = (self.num_rows, *self.row_shape)
        text = f"{{'descr': '{self.dtype.str}', 'fortran_order': False, 'shape': {shape}, }}"
        body = text.ljust(_HEADER_BYTES - 10 - 1) + "\n"
        return b"\x93NUMPY\x01\x00" + len(body).to_bytes(2, "little") + body.encode("latin1")

    def append(self, rows: np.ndarray) -> int:
        """Append rows (R, *row_shape); returns the index of the first appended row."""
        if rows.shape[1:] != self.row_shape:
            raise ValueError(f"row shape {rows.shape[1:]} != {self.row_shape}")
        first = self.num_rows
        self._file.write(np.ascontiguousarray(rows, dtype=self.dtype).tobytes())
        self.num_rows += rows.shape[0]
        return first

    def close(self) -> None:
        self._file.seek(0)
        self._file.write(self._header())
        self._file.close()


def merge_runs(starts: np.ndarray, length: int) -> list[tuple[int, int]]:
    """Merge segments [s, s + length) into disjoint runs (start, end), sorted."""
    runs: list[tuple[int, int]] = []
    for s in np.sort(starts).tolist():
        if runs and s <= runs[-1][1]:
            runs[-1] = (runs[-1][0], max(runs[-1][1], s + length))
        else:
            runs.append((s, s + length))
    return runs


def stft_segments(stem: np.ndarray, starts: np.ndarray, length: int) -> np.ndarray:
    """Complex STFT of each segment, all frames kept. stem (C, L) -> (S, C, F, T) complex64."""
    segs = np.stack([stem[:, s : s + length] for s in starts.tolist()])  # (S, C, Ls)
    x = torch.from_numpy(segs).reshape(-1, length)
    window = torch.hann_window(STFT_ARGS["n_fft"])
    spec = torch.stft(
        x, **STFT_ARGS, window=window, center=True, pad_mode="reflect", return_complex=True
    )
    return spec.reshape(*segs.shape[:2], *spec.shape[-2:]).numpy()  # (S, C, F, T)


def choose_dtype(refs, task: str, dtype: str) -> np.dtype:
    """``auto``: int16 when every train stem is 16-bit PCM (lossless), else float32."""
    if dtype != "auto":
        return np.dtype(dtype)
    subtypes = {wav_info(r.path / f"{s}.wav").subtype for r in refs for s in TASKS[task].sources}
    return np.dtype(np.int16) if subtypes == {"PCM_16"} else np.dtype(np.float32)


def _to_storage(x: np.ndarray, dtype: np.dtype) -> np.ndarray:
    if dtype == np.int16:
        return np.clip(np.round(x * INT16_SCALE), -32768, 32767).astype(np.int16)
    return x.astype(dtype)


class _StemWriter:
    """Segments of one stem in either format, with their index entries."""

    def __init__(
        self, folder: Path, stem: str, fmt: str, channels: int, seg_len: int, dtype: np.dtype
    ):
        self.fmt, self.seg_len, self.dtype, self.file = fmt, seg_len, dtype, f"{stem}.npy"
        if fmt == "wav":
            self.out = NpyAppender(folder / self.file, (channels,), dtype)
        else:
            frames = seg_len // STFT_ARGS["hop_length"] + 1
            row = (channels, STFT_ARGS["n_fft"] // 2 + 1, frames)
            self.out = NpyAppender(folder / self.file, row, np.complex64)
        self.segments: list[list[int]] = []  # [track index, start in track, offset in array]

    def add(self, track_index: int, stem: np.ndarray, starts: np.ndarray) -> None:
        if starts.size == 0:
            return
        if self.fmt == "stft":
            first = self.out.append(stft_segments(stem, starts, self.seg_len))
            self.segments += [
                [track_index, int(s), first + i] for i, s in enumerate(starts.tolist())
            ]
            return
        for a, b in merge_runs(starts, self.seg_len):
            base = self.out.append(_to_storage(stem[:, a:b].T, self.dtype))  # (b - a, C)
            self.segments += [
                [track_index, int(s), base + int(s) - a] for s in starts.tolist() if a <= s < b
            ]

    def entry(self) -> dict:
        self.out.close()
        return {
            "file": self.file,
            "dtype": str(self.out.dtype),
            "shape": [self.out.num_rows, *self.out.row_shape],
            "segments": self.segments,
        }


def build_cache(
    root: str | Path,
    task: str,
    out: str | Path,
    fmt: CacheFormat = "wav",
    sad: SADConfig | None = None,
    dtype: str = "auto",
    progress: bool = True,
) -> Path:
    """Segment the train split of ``root`` and write the cache folder ``out`` (must not exist).

    Args:
        root: dataset root (MUSDB layout for ``mss``, DnR layout for ``cass``).
        task: ``mss`` or ``cass``.
        out: the cache folder to create.
        fmt: ``wav`` or ``stft``.
        sad: segmentation parameters (None: the paper's 8-s segments, spec §1.3).
        dtype: ``auto``, ``float32`` or ``int16`` for the ``wav`` format.
        progress: show a progress bar.

    Returns:
        ``out``.
    """
    if fmt not in CACHE_FORMATS:
        raise UserError(f"unknown cache format {fmt!r}: expected one of {list(CACHE_FORMATS)}")
    out, sad = Path(out), sad or SADConfig()
    if out.exists():
        raise UserError(f"{out} already exists; refusing to overwrite it")
    refs = list_tracks(root, task, "train")  # only ever the train split
    if not refs:
        raise UserError(f"{root}: no train tracks for task {task}")
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(dir=out.parent, prefix=f".{out.name}.tmp-"))
    try:
        index = _write_cache(refs, task, tmp, fmt, sad, choose_dtype(refs, task, dtype), progress)
        index["root"] = str(Path(root).resolve())
        write_text_atomic(tmp / INDEX_FILE, json.dumps(index, indent=1) + "\n")
        os.rename(tmp, out)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return out


def _write_cache(
    refs, task: str, folder: Path, fmt: str, sad: SADConfig, dtype: np.dtype, progress: bool
) -> dict:
    sources, channels = TASKS[task].sources, TASKS[task].num_channels
    seg_len = sad.segment_samples(SAMPLE_RATE)
    writers = [_StemWriter(folder, s, fmt, channels, seg_len, dtype) for s in sources]
    for i, ref in enumerate(tqdm(refs, desc=f"cache {task} ({fmt})", disable=not progress)):
        track = load_track(ref)
        for writer, stem, name in zip(writers, track.sources, sources):
            writer.add(
                i, stem, active_segments(stem, SAMPLE_RATE, sad, name=f"{ref.path / name}.wav")
            )
    stems = {name: w.entry() for name, w in zip(sources, writers)}
    empty = [name for name, e in stems.items() if not e["segments"]]
    if empty:
        raise UserError(
            f"no active {sad.segment_seconds:g}-s segment for stem(s) {empty} in the train split"
        )
    return {
        "version": CACHE_VERSION,
        "format": fmt,
        "task": task,
        "split": "train",
        "sources": list(sources),
        "num_channels": channels,
        "sample_rate": SAMPLE_RATE,
        "segment_samples": seg_len,
        "sad": asdict(sad),
        "stft": STFT_ARGS if fmt == "stft" else None,
        "tracks": [r.name for r in refs],
        "stems": stems,
    }


def open_cache_array(path: str | Path, min_rows: int = 0) -> np.ndarray:
    """Memory-map one cache array; UserError naming the file when it is missing, not a valid ``.npy``
    file, shorter than its header says (truncated: a full disk, an interrupted copy) or shorter than
    the ``min_rows`` the index needs."""
    path = Path(path)
    if not path.is_file():
        raise UserError(f"{path}: cache array missing; rebuild the cache with `sfc data cache`")
    try:
        array = np.load(path, mmap_mode="r")
    except ValueError as err:  # numpy: bad header, or "mmap length is greater than file size"
        size = path.stat().st_size
        raise UserError(
            f"{path}: cache array truncated or not a valid .npy file ({size} bytes: {err}); "
            "rebuild the cache with `sfc data cache`"
        ) from err
    if array.shape[0] < min_rows:
        raise UserError(
            f"{path}: cache array truncated: {array.shape[0]} rows, the index needs {min_rows}; "
            "rebuild the cache with `sfc data cache`"
        )
    return array


def read_index(cache_dir: str | Path) -> dict:
    """Load and check the index of a cache folder."""
    path = Path(cache_dir) / INDEX_FILE
    if not path.is_file():
        raise UserError(
            f"{cache_dir} is not a cache folder (no {INDEX_FILE}); build it with `sfc data cache`"
        )
    try:
        index = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as err:
        raise UserError(f"{path}: corrupt cache index: {err}") from err
    if index.get("version") != CACHE_VERSION:
        raise UserError(
            f"{path}: cache version {index.get('version')}, expected {CACHE_VERSION}; rebuild it"
        )
    return index
