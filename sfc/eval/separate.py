"""Chunked whole-track separation ("CSS").

PAPER: spec §9. A track is cut into 12-s chunks with a 6-s shift; each chunk is separated on its own (the
model recomputes its input RMS scaling per chunk, spec §2); where chunks overlap their estimates are
averaged (rectangular cross-fade); the last chunk is zero-padded; all-silent chunks are not sent to the
model and count as an all-zero estimate. Chunks go through the model in batches under bf16 autocast on
GPU (fp32 on CPU; ``precision="bf16"`` opts in to bf16 autocast on CPU too); only one batch of chunks
lives on the device at a time.

``separate_stream`` is the streaming core: it reads the mixture chunk by chunk and yields the finished
estimate in order, so memory depends on the batch of chunks, not on the track length (``sfc separate``
writes the blocks straight to the stem files); ``separate_track`` collects its blocks for scoring.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator
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


Chunking = Literal["overlap", "trimmed"]


def separate_by(
    chunking: Chunking,
    model: nn.Module,
    mix: torch.Tensor,
    chunk_seconds: float,
    shift_seconds: float,
    trim_seconds: float,
    batch_size: int,
    device: torch.device | str | None = None,
    precision: Precision = "auto",
) -> torch.Tensor:
    """Whole-track separation with the named chunking: ``overlap`` (``separate_track``, the paper's) or
    ``trimmed`` (``separate_track_trimmed``, LightSAFT-Net's); the other one's hop/trim is unused.

    Shapes:
        mix: (C, L) -> (N, C, L)
    """
    if chunking == "trimmed":
        return separate_track_trimmed(
            model, mix, chunk_seconds, trim_seconds, batch_size, device, precision=precision
        )
    if chunking != "overlap":
        raise ValueError(f"chunking must be 'overlap' or 'trimmed', got {chunking!r}")
    return separate_track(
        model, mix, chunk_seconds, shift_seconds, batch_size, device, precision=precision
    )


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


def inference_autocast(device: torch.device, precision: Precision = "auto") -> torch.autocast:
    """The autocast context of separation: bf16 on CUDA for ``auto``, else as ``precision`` says.

    PAPER: spec §2/§9: bf16 autocast on GPU. fp32 on CPU by default (what was run); ``bf16`` on CPU is an
    opt-in speed mode (the Mamba scan and the norms stay in fp32 inside the model).
    """
    if precision not in PRECISIONS:
        raise ValueError(f"precision must be one of {PRECISIONS}, got {precision!r}")
    use_bf16 = precision == "bf16" or (precision == "auto" and device.type == "cuda")
    return torch.autocast(device_type=device.type, dtype=torch.bfloat16, enabled=use_bf16)


def _check_args(model: nn.Module, length: int, chunk: int, shift: int, batch_size: int) -> None:
    if length < 1:
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
        progress: show a tqdm bar over the chunks.
        precision: ``auto`` (bf16 autocast on CUDA, fp32 elsewhere), ``fp32`` or ``bf16`` (autocast on
            any device).

    Returns:
        the estimated sources, float32 on CPU.

    Shapes:
        mix: (C, L) -> (N, C, L)
    """
    if mix.dim() != 2:
        raise ValueError(
            f"separate_track expects a mixture of shape (C, L), got {tuple(mix.shape)}"
        )
    audio = mix.detach().to("cpu", torch.float32)  # (C, L)

    def read(start: int, stop: int) -> torch.Tensor:
        return audio[:, start:stop]  # (C, <= stop - start)

    blocks = separate_stream(
        model,
        read,
        audio.shape[-1],
        chunk_seconds,
        shift_seconds,
        batch_size,
        device,
        progress,
        precision,
    )
    return torch.cat(list(blocks), dim=-1)  # (N, C, L)


@torch.inference_mode()
def separate_stream(
    model: nn.Module,
    read: Callable[[int, int], torch.Tensor],
    length: int,
    chunk_seconds: float = 12.0,
    shift_seconds: float = 6.0,
    batch_size: int = 4,
    device: str | torch.device | None = None,
    progress: bool = False,
    precision: Precision = "auto",
) -> Iterator[torch.Tensor]:
    """Chunked separation that yields the finished output in order, holding a bounded window.

    The same computation as ``separate_track`` (which is built on it): chunks in order, the non-silent
    ones ``batch_size`` at a time through the model, estimates overlap-added into a running window; as
    soon as no later chunk can touch a sample it is divided by its chunk count and yielded. Memory is
    O(batch_size x chunk), whatever ``length`` is.

    Args:
        model: as for ``separate_track``.
        read: ``read(start, stop)`` -> the mixture samples [start, stop) as float32 (C, <= stop - start)
            on CPU (fewer at the end of the track: the rest is zero-padded).
        length: track length L in samples.
        chunk_seconds, shift_seconds, batch_size, device, progress, precision: as for
            ``separate_track``.

    Yields:
        consecutive blocks of the estimate, float32 on CPU, together L samples long.

    Shapes:
        yields (N, C, l) blocks, sum of l = L
    """
    sample_rate = model.sample_rate
    chunk = round(chunk_seconds * sample_rate)
    shift = round(shift_seconds * sample_rate)
    _check_args(model, length, chunk, shift, batch_size)
    if precision not in PRECISIONS:
        raise ValueError(f"precision must be one of {PRECISIONS}, got {precision!r}")
    device = torch.device(device) if device is not None else _model_device(model)
    model.to(device)
    was_training = model.training
    model.eval()
    starts = chunk_starts(length, chunk, shift)
    window = _Window(model.num_sources, model.num_channels)
    autocast = inference_autocast(device, precision)
    pending: list[tuple[int, torch.Tensor]] = []  # (start, chunk (C, chunk)) awaiting the model
    bar = tqdm(total=len(starts), desc="chunks", unit="chunk", disable=not progress, leave=False)
    try:
        for i, s in enumerate(starts):
            piece = _padded(read(s, min(s + chunk, length)), model.num_channels, chunk)
            # ASSUMPTION: a skipped (silent) chunk still counts in the average as an all-zero
            # estimate ("output 0", spec §9); the authors' exact bookkeeping is not in the spec.
            window.cover(s, chunk)
            if piece.abs().amax() > 0:
                pending.append((s, piece))
            last = i + 1 == len(starts)
            if len(pending) == batch_size or (last and pending):
                batch = torch.stack([p for _, p in pending])  # (B, C, chunk)
                with autocast:
                    est = model(batch.to(device)).float().cpu()  # (B, N, C, chunk)
                for b, (start, _) in enumerate(pending):
                    window.add(start, est[b])
                bar.update(len(pending))
                pending = []
            if not pending:  # every chunk so far is in: samples before the next start are final
                final = length if last else starts[i + 1]
                if final > window.base:
                    yield window.pop(final)
    finally:
        bar.close()
        model.train(was_training)


def _padded(piece: torch.Tensor, num_channels: int, chunk: int) -> torch.Tensor:
    """A chunk zero-padded to ``chunk`` samples. Shapes: (C, l) -> (C, chunk)."""
    if piece.dim() != 2 or piece.shape[0] != num_channels:
        raise ValueError(
            f"the model separates {num_channels}-channel audio, got a block of {tuple(piece.shape)}"
        )
    out = torch.zeros(num_channels, chunk, dtype=torch.float32)
    out[:, : piece.shape[-1]] = piece
    return out


class _Window:
    """Running overlap-add sums over [base, base + width): estimates (N, C, width), counts (width,)."""

    def __init__(self, num_sources: int, num_channels: int) -> None:
        self.base = 0
        self.sums = torch.zeros(num_sources, num_channels, 0)
        self.counts = torch.zeros(0)

    def _grow(self, end: int) -> None:
        extra = end - self.base - self.counts.shape[0]
        if extra > 0:
            self.sums = torch.cat([self.sums, self.sums.new_zeros(*self.sums.shape[:2], extra)], -1)
            self.counts = torch.cat([self.counts, self.counts.new_zeros(extra)])

    def cover(self, start: int, chunk: int) -> None:
        self._grow(start + chunk)
        self.counts[start - self.base : start - self.base + chunk] += 1.0

    def add(self, start: int, est: torch.Tensor) -> None:  # est (N, C, chunk)
        self.sums[..., start - self.base : start - self.base + est.shape[-1]] += est

    def pop(self, end: int) -> torch.Tensor:
        """The finished average over [base, end), removed from the window. Shapes: -> (N, C, l)."""
        n = end - self.base
        out = self.sums[..., :n] / self.counts[:n]  # every sample is covered by >= 1 chunk
        self.sums, self.counts = self.sums[..., n:].clone(), self.counts[n:].clone()
        self.base = end
        return out
