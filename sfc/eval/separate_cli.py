"""``sfc separate``: separate your own audio files with a trained checkpoint.

One folder per input file under ``--out``, holding one 24-bit wav per source (names from the task of the
checkpoint). Mono/stereo and sample-rate mismatches are converted (with a printed note) and converted back.
A bad file in a batch does not stop the others; the failures are listed at the end (non-zero exit).
"""

from __future__ import annotations

import argparse
from math import gcd
from pathlib import Path

import numpy as np
import soundfile as sf
import torch
from scipy.signal import resample_poly
from tqdm import tqdm

from sfc.errors import UserError
from sfc.eval.separate import PRECISIONS, separate_track
from sfc.provenance import atomic_file

AUDIO_SUFFIXES = {".wav", ".flac", ".ogg", ".aiff", ".aif", ".mp3"}


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "checkpoint",
        type=Path,
        help="model file (`sfc train`, `sfc weights import`) or a released model's name "
        "<dataset>/<recipe> (`sfc weights list`), downloaded and imported on first use",
    )
    parser.add_argument(
        "inputs", type=Path, nargs="+", help="audio files and/or folders of audio files"
    )
    parser.add_argument("--out", type=Path, required=True, help="output folder")
    parser.add_argument(
        "--device", choices=["cpu", "cuda"], default=None, help="default: cuda if present"
    )
    parser.add_argument(
        "--chunk-seconds", type=float, default=12.0, help="chunk length (paper: 12)"
    )
    parser.add_argument("--shift-seconds", type=float, default=6.0, help="chunk hop (paper: 6)")
    parser.add_argument("--batch-size", type=int, default=4, help="chunks per model call")
    add_speed_arguments(parser)


def add_speed_arguments(parser: argparse.ArgumentParser) -> None:
    """--precision and --threads, shared by `sfc separate` and `sfc evaluate`."""
    parser.add_argument(
        "--precision",
        choices=PRECISIONS,
        default="auto",
        help="auto: bf16 autocast on CUDA, fp32 on CPU; bf16: autocast on CPU too (faster, not bit-equal)",
    )
    parser.add_argument(
        "--threads", type=int, default=None, help="torch intra-op threads (default: torch's choice)"
    )


def apply_threads(args: argparse.Namespace) -> None:
    """Set torch's intra-op threads from --threads; a UserError for a bad value."""
    if args.threads is None:
        return
    if args.threads < 1:
        raise UserError(f"--threads must be >= 1, got {args.threads}")
    torch.set_num_threads(args.threads)


def source_names(ckpt: dict, num_sources: int, num_channels: int) -> list[str]:
    """Source names from the checkpoint's experiment id, else from the task with the model's shape."""
    from sfc.experiments import TASKS, parse_experiment

    exp = ckpt.get("experiment")
    if exp:
        try:
            names = list(parse_experiment(exp).targets)
            if len(names) == num_sources:
                return names
        except UserError:
            pass
    for task in TASKS.values():
        if len(task.sources) == num_sources and task.num_channels == num_channels:
            return list(task.sources)
    return [f"source{i}" for i in range(num_sources)]


def expand_inputs(inputs: list[Path]) -> list[Path]:
    """Files as given plus the audio files (by suffix) found under folders, in sorted order."""
    files: list[Path] = []
    for path in inputs:
        if path.is_dir():
            found = sorted(
                p for p in path.rglob("*") if p.is_file() and p.suffix.lower() in AUDIO_SUFFIXES
            )
            if not found:
                raise UserError(
                    f"no audio files ({', '.join(sorted(AUDIO_SUFFIXES))}) in folder {path}"
                )
            files.extend(found)
        elif path.is_file():
            files.append(path)
        else:
            raise UserError(f"input not found: {path}")
    return files


def read_audio(path: Path) -> tuple[np.ndarray, int]:
    """Any soundfile-readable file as float32 (C, L) and its sample rate; UserError when unreadable."""
    try:
        data, sr = sf.read(str(path), dtype="float32", always_2d=True)  # (L, C)
    except (RuntimeError, sf.LibsndfileError) as err:  # LibsndfileError subclasses RuntimeError
        raise UserError(f"cannot read audio file {path}: {err}") from err
    if data.shape[0] == 0:
        raise UserError(f"{path}: empty audio file (0 samples)")
    return np.ascontiguousarray(data.T), int(sr)


def to_model_channels(audio: np.ndarray, num_channels: int, name: str) -> np.ndarray:
    """Mono→stereo by duplication, any→mono by averaging (with a note). Shapes: (C, L) -> (C', L)."""
    have = audio.shape[0]
    if have == num_channels:
        return audio
    if num_channels == 1:
        print(f"note: {name}: {have} channels averaged to mono for this mono model")
        return audio.mean(axis=0, keepdims=True)
    if have == 1:
        print(
            f"note: {name}: mono input duplicated to {num_channels} channels; stems are written in mono"
        )
        return np.repeat(audio, num_channels, axis=0)
    raise UserError(f"{name}: {have}-channel audio cannot be fed to a {num_channels}-channel model")


def resample(audio: np.ndarray, sr_from: int, sr_to: int) -> np.ndarray:
    """Polyphase resampling along the last axis (scipy.signal.resample_poly). Shapes: (..., L) -> (..., L')."""
    if sr_from == sr_to:
        return audio
    g = gcd(sr_from, sr_to)
    return resample_poly(audio, sr_to // g, sr_from // g, axis=-1).astype(np.float32)


def write_wav_atomic(path: Path, audio: np.ndarray, sample_rate: int) -> None:
    """24-bit PCM wav (PAPER: spec §9), written to a temporary file then renamed. Shapes: audio (C, L)."""
    with atomic_file(path, "wb") as handle:
        sf.write(handle, audio.T, sample_rate, subtype="PCM_24", format="WAV")


def separate_file(
    model, path: Path, out_dir: Path, names: list[str], args: argparse.Namespace
) -> None:
    """Read, convert, separate, convert back and write one file's stems to ``out_dir``."""
    audio, sr = read_audio(path)  # (C, L)
    mix = to_model_channels(audio, model.num_channels, path.name)  # (C', L)
    if sr != model.sample_rate:
        print(
            f"note: {path.name}: resampled {sr} Hz -> {model.sample_rate} Hz for the model and back"
        )
    mix = resample(mix, sr, model.sample_rate)  # (C', L')
    est = separate_track(
        model,
        torch.from_numpy(mix),
        args.chunk_seconds,
        args.shift_seconds,
        args.batch_size,
        progress=True,
        precision=args.precision,
    ).numpy()  # (N, C', L')
    est = resample(est, model.sample_rate, sr)[..., : audio.shape[1]]  # (N, C', ~L)
    est = np.pad(est, [(0, 0), (0, 0), (0, audio.shape[1] - est.shape[-1])])  # (N, C', L)
    if audio.shape[0] == 1 and est.shape[1] > 1:
        est = est.mean(axis=1, keepdims=True)  # back to mono, like the input
    peak = float(np.abs(est).max())
    if peak > 1.0:
        print(f"note: {path.name}: estimates peak at {peak:.2f}; clipped to [-1, 1] for 24-bit wav")
    for name, stem in zip(names, np.clip(est, -1.0, 1.0)):
        write_wav_atomic(out_dir / f"{name}.wav", stem, sr)


def check_chunking(args: argparse.Namespace) -> None:
    """UserError for chunk/shift/batch options separate_track cannot use."""
    if not 0 < args.shift_seconds <= args.chunk_seconds:
        raise UserError(
            f"need 0 < --shift-seconds <= --chunk-seconds, got {args.shift_seconds} and {args.chunk_seconds}"
        )
    if args.batch_size < 1:
        raise UserError(f"--batch-size must be >= 1, got {args.batch_size}")


def _out_dirs(files: list[Path], out: Path) -> list[Path]:
    """One output folder per file, named after the file stem (made unique when stems repeat)."""
    used: dict[str, int] = {}
    dirs = []
    for f in files:
        used[f.stem] = used.get(f.stem, 0) + 1
        dirs.append(out / (f.stem if used[f.stem] == 1 else f"{f.stem}_{used[f.stem]}"))
    return dirs


def main(args: argparse.Namespace) -> int:
    from sfc.models import load_model

    check_chunking(args)
    apply_threads(args)
    files = expand_inputs(args.inputs)
    device = args.device or ("cuda" if torch.cuda.is_available() else "cpu")
    if device == "cuda" and not torch.cuda.is_available():
        raise UserError("--device cuda given but CUDA is not available on this machine")
    checkpoint = args.checkpoint
    from sfc.weights.resolve import is_released_name, released_model

    if is_released_name(checkpoint):
        checkpoint = released_model(str(checkpoint))
    model, ckpt = load_model(checkpoint, map_location="cpu")
    model.to(device)
    names = source_names(ckpt, model.num_sources, model.num_channels)
    failed: list[tuple[Path, str]] = []
    for path, out_dir in zip(tqdm(files, desc="files", unit="file"), _out_dirs(files, args.out)):
        try:
            separate_file(model, path, out_dir, names, args)
        except UserError as err:
            failed.append((path, str(err)))
    done = len(files) - len(failed)
    print(f"separated {done} of {len(files)} file(s) into {args.out} ({', '.join(names)})")
    if failed:
        lines = "\n".join(f"  {p}: {msg}" for p, msg in failed)
        raise UserError(f"{len(failed)} file(s) could not be separated:\n{lines}")
    return 0
