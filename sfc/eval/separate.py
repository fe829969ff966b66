"""Chunked whole-track separation ("CSS").

PAPER: spec §9. A track is cut into 12-s chunks with a 6-s shift; each chunk is separated on its own (the
model recomputes its input RMS scaling per chunk, spec §2); where chunks overlap their estimates are
averaged (rectangular cross-fade); the last chunk is zero-padded; all-silent chunks are not sent to the
model and count as an all-zero estimate. Chunks go through the model in batches under bf16 autocast on
GPU (fp32 on CPU; ``precision="bf16"`` opts in to bf16 autocast on CPU too); only one batch of chunks
lives on the device at a time.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from typing import Literal

import torch
from torch import nn
from tqdm import tqdm

Precision = Literal["auto", "fp32", "bf16"]
PRECISIONS: tuple[str, ...] = ("auto", "fp32", "bf16")


def separate_track_trimmed(
    model: nn.Module,
    mix: torch.Tensor,
    window_seconds: float = 261_120 / 44_100,
    trim_seconds: float = 8_192 / 44_100,
    batch_size: int = 4,
    device: torch.device | str | None = None,
    progress: bool = False,
    precision: Precision = "auto",
) -> torch.Tensor:
    """Separate a whole track in non-overlapping trimmed windows (LightSAFT-Net's inference).

    PAPER: lightsaft.md §5 (`test_lightsaft.py`, `SingleTrackSet`): the track is zero-padded by the trim
    in front and by the trim plus the remainder at the end; windows hop by their centre
    (window − 2·trim); the first and last ``trim`` samples of every output are cut off and the centres
    concatenated, with no overlap-add. Defaults: window 261,120, trim 8,192 (MDX submission).

    Shapes:
        mix: (C, L) -> (N, C, L)
    """
    sample_rate = model.sample_rate
    window, trim = round(window_seconds * sample_rate), round(trim_seconds * sample_rate)
    centre = window - 2 * trim
    if trim < 0 or centre < 1 or batch_size < 1 or mix.dim() != 2:
        raise ValueError(
            f"need a (C, L) mixture, 0 <= 2·trim < window and batch_size >= 1; got {tuple(mix.shape)}, "
            f"window={window}, trim={trim}, batch_size={batch_size}"
        )
    device = torch.device(device) if device is not None else _model_device(model)
    was_training = model.training
    model.to(device).eval()
    num_ch, length = mix.shape
    num = max(1, math.ceil(length / centre))
    padded = torch.zeros(num_ch, num * centre + 2 * trim, dtype=torch.float32)  # (C, L')
    padded[:, trim : trim + length] = mix.detach().to("cpu", torch.float32)
    out = torch.zeros(model.num_sources, num_ch, num * centre, dtype=torch.float32)
    autocast = inference_autocast(device, precision)
    starts = [i * centre for i in range(num)]
    try:
        for first in tqdm(
            range(0, num, batch_size), desc="windows", disable=not progress, leave=False
        ):
            idx = range(first, min(first + batch_size, num))
            chunks = torch.stack([padded[:, starts[i] : starts[i] + window] for i in idx])
            with torch.no_grad(), autocast:
                est = model(chunks.to(device)).float().cpu()  # (B, N, C, window)
            for b, i in enumerate(idx):
                out[..., starts[i] : starts[i] + centre] = est[b, ..., trim : trim + centre]
    finally:
        model.train(was_training)
    return out[..., :length].contiguous()


def chunk_starts(length: int, chunk: int, shift: int) -> list[int]:
    """Start samples of the chunks covering ``length`` samples.

    The first chunk starts at 0, the next ones every ``shift`` samples; the last one is the first whose
    end reaches ``length`` (it is zero-padded past the end). A track shorter than a chunk gets one chunk.

    Args:
        length: track length L in samples (>= 1).
        chunk: chunk length in samples.
        shift: hop between chunk starts in samples (1 <= shift <= chunk).

    Returns:
        the chunk start samples, ascending.
    """
    num_chunks = 1 if length <= chunk else math.ceil((length - chunk) / shift) + 1
    return [i * shift for i in range(num_chunks)]


def _model_device(model: nn.Module) -> torch.device:
    param = next(iter(model.parameters()), None)
    return param.device if param is not None else torch.device("cpu")


def _batches(starts: list[int], active: list[bool], batch_size: int) -> Iterator[list[int]]:
    """Indices of the non-silent chunks, ``batch_size`` at a time."""
    todo = [i for i, keep in enumerate(active) if keep]
    for first in range(0, len(todo), batch_size):
        yield todo[first : first + batch_size]


def inference_autocast(device: torch.device, precision: Precision = "auto") -> torch.autocast:
    """The autocast context of separation: bf16 on CUDA for ``auto``, else as ``precision`` says.

    PAPER: spec §2/§9: bf16 autocast on GPU. fp32 on CPU by default (what was run); ``bf16`` on CPU is an
    opt-in speed mode (the Mamba scan and the norms stay in fp32 inside the model).
    """
    if precision not in PRECISIONS:
        raise ValueError(f"precision must be one of {PRECISIONS}, got {precision!r}")
    use_bf16 = precision == "bf16" or (precision == "auto" and device.type == "cuda")
    return torch.autocast(device_type=device.type, dtype=torch.bfloat16, enabled=use_bf16)


def _check_args(
    model: nn.Module, mix: torch.Tensor, chunk: int, shift: int, batch_size: int
) -> None:
    if mix.dim() != 2:
        raise ValueError(
            f"separate_track expects a mixture of shape (C, L), got {tuple(mix.shape)}"
        )
    if mix.shape[0] != model.num_channels:
        raise ValueError(
            f"the model separates {model.num_channels}-channel audio, got {mix.shape[0]}"
        )
    if mix.shape[1] < 1:
        raise ValueError("cannot separate an empty track (0 samples)")
    if chunk < 1 or not 1 <= shift <= chunk:
        raise ValueError(f"need 1 <= shift <= chunk samples, got chunk={chunk}, shift={shift}")
    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}")


@torch.inference_mode()
def separate_track(
    model: nn.Module,
    mix: torch.Tensor,
    chunk_seconds: float = 12.0,
    shift_seconds: float = 6.0,
    batch_size: int = 4,
    device: str | torch.device | None = None,
    progress: bool = False,
    precision: Precision = "auto",
) -> torch.Tensor:
    """Separate a whole track in overlapping chunks.

    PAPER: spec §9 (12-s chunks, 6-s shift, overlap averaged, last chunk zero-padded, silent chunks skipped).

    Args:
        model: a separation model, ``model(mix (B, C, L)) -> (B, N, C, L)``, with ``num_channels``,
            ``num_sources`` and ``sample_rate`` attributes. It is moved to ``device`` and run in eval
            mode; its train/eval mode is restored afterwards.
        mix: the mixture, any float dtype, any device.
        chunk_seconds: chunk length in seconds.
        shift_seconds: hop between chunk starts in seconds (<= chunk_seconds).
        batch_size: chunks per model call.
        device: where the model runs; None keeps the model's current device.
        progress: show a tqdm bar over the batches.
        precision: ``auto`` (bf16 autocast on CUDA, fp32 elsewhere), ``fp32`` or ``bf16`` (autocast on
            any device).

    Returns:
        the estimated sources, float32 on CPU.

    Shapes:
        mix: (C, L) -> (N, C, L)
    """
    sample_rate = model.sample_rate
    chunk = round(chunk_seconds * sample_rate)
    shift = round(shift_seconds * sample_rate)
    _check_args(model, mix, chunk, shift, batch_size)
    if precision not in PRECISIONS:
        raise ValueError(f"precision must be one of {PRECISIONS}, got {precision!r}")
    device = torch.device(device) if device is not None else _model_device(model)
    model.to(device)
    was_training = model.training
    model.eval()

    num_ch, length = mix.shape
    starts = chunk_starts(length, chunk, shift)
    padded_len = starts[-1] + chunk
    padded = torch.zeros(num_ch, padded_len, dtype=torch.float32)  # (C, L') on CPU
    padded[:, :length] = mix.detach().to("cpu", torch.float32)
    out = torch.zeros(model.num_sources, num_ch, padded_len, dtype=torch.float32)  # (N, C, L')
    weight = torch.zeros(padded_len, dtype=torch.float32)  # (L',) chunks covering each sample
    for s in starts:
        # ASSUMPTION: a skipped (silent) chunk still counts in the average as an all-zero estimate
        # ("output 0", spec §9); the authors' exact bookkeeping is not in the spec.
        weight[s : s + chunk] += 1.0
    active = [bool(padded[:, s : s + chunk].abs().amax() > 0) for s in starts]

    autocast = inference_autocast(device, precision)
    batches = list(_batches(starts, active, batch_size))
    try:
        for idx in tqdm(batches, desc="chunks", unit="batch", disable=not progress, leave=False):
            chunks = torch.stack(
                [padded[:, starts[i] : starts[i] + chunk] for i in idx]
            )  # (B, C, chunk)
            with autocast:
                est = model(chunks.to(device))  # (B, N, C, chunk)
            est = est.float().cpu()
            for b, i in enumerate(idx):
                out[..., starts[i] : starts[i] + chunk] += est[b]
    finally:
        model.train(was_training)
    out /= weight  # (N, C, L') every sample is covered by >= 1 chunk
    return out[..., :length].contiguous()
