"""``sfc separate``: separate your own audio files with a trained checkpoint.

One folder per input file under ``--out``, holding one 24-bit wav per source (names from the task of the
checkpoint). The folder mirrors the input's path relative to the folder it was found in
(``test/Song/mixture.wav`` -> ``OUT/Song/mixture/vocals.wav``); a file given directly gets ``OUT/<stem>/``.
Existing output folders are never written over unless ``--overwrite`` is given; each folder is written as
a hidden temporary folder and renamed into place at the end, so it is complete or absent. Files under
``--out`` are never read as inputs. ``--out`` is checked for writability before any work.
Mono/stereo and sample-rate mismatches are converted (with a note, printed through the progress bar) and
converted back. Files holding NaN or Inf samples are refused. A bad file in a batch does not stop the
others; the failures are listed at the end (non-zero exit).
"""

from __future__ import annotations

import argparse
import os
import shutil
import tempfile
from math import gcd
from pathlib import Path

import numpy as np
import soundfile as sf
import torch
from scipy.signal import resample_poly
from tqdm import tqdm

from sfc.errors import UserError
from sfc.eval.separate import PRECISIONS, separate_track
from sfc.provenance import atomic_file, check_writable, current_umask

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
        "--overwrite",
        action="store_true",
        help="replace existing output folders (each one atomically); default: refuse to start",
    )
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


def _inside(path: Path, folder: Path) -> bool:
    return path.resolve().is_relative_to(folder.resolve())


def expand_inputs(inputs: list[Path], out: Path) -> list[tuple[Path, Path]]:
    """Each input file and its output folder relative to ``out``, in sorted order per folder.

    A folder contributes the audio files (by suffix) found under it, except those under ``out``, each with
    its path relative to the folder, suffix dropped; a file contributes ``<stem>``. UserError for a missing
    input, a folder without audio, a file inside an output folder of this run or two inputs sharing an
    output folder.
    """
    pairs: list[tuple[Path, Path]] = []
    for path in inputs:
        if path.is_dir():
            found = sorted(
                p
                for p in path.rglob("*")
                if p.is_file() and p.suffix.lower() in AUDIO_SUFFIXES and not _inside(p, out)
            )
            if not found:
                raise UserError(
                    f"no audio files ({', '.join(sorted(AUDIO_SUFFIXES))}) in folder {path}"
                )
            pairs.extend((p, p.relative_to(path).with_suffix("")) for p in found)
        elif path.is_file():
            pairs.append((path, Path(path.stem)))
        else:
            raise UserError(f"input not found: {path}")
    seen: dict[Path, Path] = {}
    for src, rel in pairs:
        if rel in seen:
            raise UserError(
                f"{seen[rel]} and {src} would both be written to {out / rel}; "
                "separate them in two runs with different --out folders"
            )
        seen[rel] = src
    targets = {(out / rel).resolve() for rel in seen}
    for src, _ in pairs:
        hit = targets.intersection(src.resolve().parents)
        if hit:
            raise UserError(f"input {src} is inside the output folder {hit.pop()} of this run")
    return pairs


def check_out(out: Path, rels: list[Path], overwrite: bool) -> None:
    """UserError unless ``out`` is a writable folder (made if missing) and, without ``overwrite``, holds
    none of the output folders ``rels``. Runs before any model is loaded."""
    check_writable(out, "--out")
    existing = [out / rel for rel in rels if (out / rel).exists()]
    if existing and not overwrite:
        shown = "\n".join(f"  {p}" for p in existing[:10])
        more = f"\n  ... and {len(existing) - 10} more" if len(existing) > 10 else ""
        raise UserError(
            f"{len(existing)} output folder(s) already exist; pass --overwrite to replace them "
            f"or choose another --out:\n{shown}{more}"
        )


def note(message: str) -> None:
    """Print a note through the progress bars (tqdm.write), so it does not break the bar's line."""
    tqdm.write(f"note: {message}")


def read_audio(path: Path) -> tuple[np.ndarray, int]:
    """Any soundfile-readable file as float32 (C, L) and its sample rate; UserError when unreadable or
    when it holds a NaN or infinite sample (named with the first bad sample's time)."""
    try:
        data, sr = sf.read(str(path), dtype="float32", always_2d=True)  # (L, C)
    except (RuntimeError, sf.LibsndfileError) as err:  # LibsndfileError subclasses RuntimeError
        raise UserError(f"cannot read audio file {path}: {err}") from err
    if data.shape[0] == 0:
        raise UserError(f"{path}: empty audio file (0 samples)")
    check_finite(data, path, int(sr))
    return np.ascontiguousarray(data.T), int(sr)


def check_finite(data: np.ndarray, path: Path, sample_rate: int, offset: int = 0) -> None:
    """UserError naming ``path`` and the time of the first NaN/Inf sample. Shapes: data (L, C)."""
    bad = ~np.isfinite(data)  # (L, C)
    if not bad.any():
        return
    frame, channel = np.argwhere(bad)[0]
    kind = "NaN" if np.isnan(data[frame, channel]) else "Inf"
    frame = int(frame) + offset
    raise UserError(
        f"{path}: {kind} sample at {frame / sample_rate:.3f} s (sample {frame}, channel {channel}); "
        "refusing to separate a file with non-finite samples"
    )


def to_model_channels(
    audio: np.ndarray, num_channels: int, name: str, quiet: bool = False
) -> np.ndarray:
    """Mono→stereo by duplication, any→mono by averaging (with a note unless ``quiet``).

    Shapes: (C, L) -> (C', L)
    """
    have = audio.shape[0]
    if have == num_channels:
        return audio
    if num_channels == 1:
        if not quiet:
            note(f"{name}: {have} channels averaged to mono for this mono model")
        return audio.mean(axis=0, keepdims=True)
    if have == 1:
        if not quiet:
            note(
                f"{name}: mono input duplicated to {num_channels} channels; stems are written in mono"
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
    """Read, convert, separate, convert back and write one file's stems to ``out_dir``.

    At the model's sample rate the file is streamed (``separate_stream``): memory depends on the batch of
    chunks, not on the track length. Another rate is resampled in memory, whole file at once.
    """
    info = audio_info(path)
    if info.samplerate == model.sample_rate:
        separate_file_streaming(model, path, out_dir, names, args)
        return
    # DEVIATION (memory): resampling is done on the whole track in memory (scipy resample_poly), so
    # this path holds the track; files at the model's rate take the streaming path above.
    audio, sr = read_audio(path)  # (C, L)
    mix = to_model_channels(audio, model.num_channels, path.name)  # (C', L)
    if sr != model.sample_rate:
        note(f"{path.name}: resampled {sr} Hz -> {model.sample_rate} Hz for the model and back")
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
        note(f"{path.name}: estimates peak at {peak:.2f}; clipped to [-1, 1] for 24-bit wav")
    for name, stem in zip(names, np.clip(est, -1.0, 1.0)):
        write_wav_atomic(out_dir / f"{name}.wav", stem, sr)


def audio_info(path: Path) -> sf._SoundFileInfo:
    """The header of an audio file; UserError when unreadable or empty."""
    try:
        info = sf.info(str(path))
    except (RuntimeError, sf.LibsndfileError) as err:
        raise UserError(f"cannot read audio file {path}: {err}") from err
    if info.frames <= 0:
        raise UserError(f"{path}: empty audio file (0 samples)")
    return info


def _scan_finite(handle: sf.SoundFile, path: Path, block: int) -> None:
    """Refuse the file before any work when a sample is NaN or infinite (read in blocks)."""
    handle.seek(0)
    offset = 0
    while True:
        data = handle.read(block, dtype="float32", always_2d=True)  # (l, C)
        if not len(data):
            break
        check_finite(data, path, handle.samplerate, offset)
        offset += len(data)


def separate_file_streaming(
    model, path: Path, out_dir: Path, names: list[str], args: argparse.Namespace
) -> None:
    """Separate a file at the model's rate chunk by chunk, writing each stem as its blocks are done."""
    from sfc.eval.separate import separate_stream

    try:
        handle = sf.SoundFile(str(path))
    except (RuntimeError, sf.LibsndfileError) as err:
        raise UserError(f"cannot read audio file {path}: {err}") from err
    with handle:
        sr, length, have = handle.samplerate, handle.frames, handle.channels
        _scan_finite(handle, path, block=round(args.chunk_seconds * sr))
        to_model_channels(np.zeros((have, 1), np.float32), model.num_channels, path.name)  # note

        def read(start: int, stop: int) -> torch.Tensor:
            handle.seek(start)
            data = handle.read(stop - start, dtype="float32", always_2d=True)  # (l, C)
            mix = to_model_channels(data.T, model.num_channels, path.name, quiet=True)  # (C', l)
            return torch.from_numpy(np.ascontiguousarray(mix))

        out_channels = 1 if have == 1 else model.num_channels
        writers = [
            sf.SoundFile(
                str(out_dir / f"{name}.wav"), "w", sr, out_channels, subtype="PCM_24", format="WAV"
            )
            for name in names
        ]
        peak = 0.0
        try:
            blocks = separate_stream(
                model, read, length, args.chunk_seconds, args.shift_seconds, args.batch_size,
                progress=True, precision=args.precision,
            )  # fmt: skip
            for block in blocks:  # (N, C', l)
                est = block.numpy()
                if out_channels == 1 and est.shape[1] > 1:
                    est = est.mean(axis=1, keepdims=True)  # back to mono, like the input
                peak = max(peak, float(np.abs(est).max()))
                for writer, stem in zip(writers, np.clip(est, -1.0, 1.0)):
                    writer.write(stem.T)
        finally:
            for writer in writers:
                writer.close()
    if peak > 1.0:
        note(f"{path.name}: estimates peak at {peak:.2f}; clipped to [-1, 1] for 24-bit wav")


def check_chunking(args: argparse.Namespace) -> None:
    """UserError for chunk/shift/batch options separate_track cannot use."""
    if not 0 < args.shift_seconds <= args.chunk_seconds:
        raise UserError(
            f"need 0 < --shift-seconds <= --chunk-seconds, got {args.shift_seconds} and {args.chunk_seconds}"
        )
    if args.batch_size < 1:
        raise UserError(f"--batch-size must be >= 1, got {args.batch_size}")


def replace_folder(tmp: Path, target: Path) -> None:
    """Move the finished folder ``tmp`` onto ``target``, replacing a previous one as a whole."""
    if not target.exists():
        os.replace(tmp, target)
        return
    old = Path(tempfile.mkdtemp(prefix=f".{target.name}.old-", dir=target.parent))
    os.replace(target, old / target.name)
    os.replace(tmp, target)
    shutil.rmtree(old, ignore_errors=True)


def separate_to_folder(
    model, path: Path, out_dir: Path, names: list[str], args: argparse.Namespace
) -> None:
    """Separate one file into a hidden temporary folder beside ``out_dir``, then rename it into place."""
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out_dir.name}.", suffix=".tmp", dir=out_dir.parent))
    try:
        separate_file(model, path, tmp, names, args)
        os.chmod(tmp, 0o777 & ~current_umask())  # mkdtemp makes it 0700
        replace_folder(tmp, out_dir)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def main(args: argparse.Namespace) -> int:
    from sfc.models import load_model

    check_chunking(args)
    apply_threads(args)
    pairs = expand_inputs(args.inputs, args.out)
    check_out(args.out, [rel for _, rel in pairs], args.overwrite)
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
    for path, rel in tqdm(pairs, desc="files", unit="file"):
        try:
            separate_to_folder(model, path, args.out / rel, names, args)
        except UserError as err:
            failed.append((path, str(err)))
    done = len(pairs) - len(failed)
    print(f"separated {done} of {len(pairs)} file(s) into {args.out} ({', '.join(names)})")
    if failed:
        lines = "\n".join(f"  {p}: {msg}" for p, msg in failed)
        raise UserError(f"{len(failed)} file(s) could not be separated:\n{lines}")
    return 0
