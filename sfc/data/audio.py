"""Reading and writing wav files with clear errors and atomic writes."""

from __future__ import annotations

import os
from pathlib import Path
from typing import BinaryIO

import numpy as np
import soundfile as sf

from sfc.errors import UserError
from sfc.provenance import atomic_file

SAMPLE_RATE = 44_100  # PAPER: spec §2


def read_wav(
    path: str | Path, sample_rate: int = SAMPLE_RATE, num_channels: int | None = None
) -> np.ndarray:
    """Read a wav file as float32, checking sample rate, channel count and emptiness.

    Args:
        path: the wav file.
        sample_rate: the required sample rate.
        num_channels: the required number of channels, or None for any.

    Returns:
        the audio, shape (C, L), float32.

    Raises:
        UserError: naming the file, when it is missing, unreadable, empty or of the wrong format.
    """
    path = Path(path)
    if not path.is_file():
        raise UserError(f"missing audio file: {path}")
    try:
        data, sr = sf.read(str(path), dtype="float32", always_2d=True)  # (L, C)
    except (RuntimeError, sf.LibsndfileError) as err:  # LibsndfileError subclasses RuntimeError
        raise UserError(f"cannot read audio file {path}: {err}") from err
    if sr != sample_rate:
        raise UserError(f"{path}: sample rate {sr} Hz, expected {sample_rate} Hz")
    if num_channels is not None and data.shape[1] != num_channels:
        kind = {1: "mono", 2: "stereo"}.get(num_channels, f"{num_channels}-channel")
        raise UserError(f"{path}: {data.shape[1]} channel(s), expected {kind}")
    if data.shape[0] == 0:
        raise UserError(f"{path}: empty audio file (0 samples)")
    return np.ascontiguousarray(data.T)  # (C, L)


def wav_info(path: str | Path) -> sf._SoundFileInfo:
    """Header of a wav file; raises UserError naming the file when it cannot be read."""
    path = Path(path)
    if not path.is_file():
        raise UserError(f"missing audio file: {path}")
    try:
        return sf.info(str(path))
    except (RuntimeError, sf.LibsndfileError) as err:
        raise UserError(f"cannot read audio file {path}: {err}") from err


def write_wav(
    path: str | Path, audio: np.ndarray, sample_rate: int = SAMPLE_RATE, subtype: str = "FLOAT"
) -> None:
    """Write audio (C, L) atomically: to a temporary file beside ``path``, then ``os.replace``.

    Args:
        path: destination wav file.
        audio: shape (C, L).
        sample_rate: sample rate in Hz.
        subtype: libsndfile subtype; ``FLOAT`` keeps float32 samples exact.
    """
    with atomic_file(path, "w+b") as handle:
        sf.write(
            handle, np.ascontiguousarray(audio.T), sample_rate, subtype=subtype, format="WAV"
        )  # (L, C)
        _zero_peak_timestamp(handle)


def _zero_peak_timestamp(f: BinaryIO) -> None:
    """Zero the timestamp of the PEAK chunk libsndfile adds to float wavs (so same audio => same bytes).

    RIFF layout: "RIFF" size "WAVE", then chunks (4-byte id, 4-byte little-endian size, body padded
    to even length); the PEAK body starts with a 4-byte version and a 4-byte timestamp.
    """
    f.seek(0)
    head = f.read(12)
    if head[:4] != b"RIFF" or head[8:12] != b"WAVE":
        return
    while chunk := f.read(8):
        if len(chunk) < 8:
            return
        size = int.from_bytes(chunk[4:], "little")
        if chunk[:4] == b"PEAK":
            f.seek(4, os.SEEK_CUR)
            f.write(b"\0\0\0\0")
            return
        f.seek(size + (size & 1), os.SEEK_CUR)
