"""STFT front end: analysis, RMS input scaling, complex masking support, synthesis.

PAPER: spec §2. n_fft 2048, hop 512, Hann window, centred with reflect padding, onesided (F = 1025).
The last frame is dropped, T = L // hop_length, as in the authors' code.
"""

from __future__ import annotations

import torch
from torch import nn


class STFT(nn.Module):
    """Complex STFT and its inverse, computed in float32 whatever the autocast state.

    Args:
        n_fft: FFT size.
        hop_length: hop in samples.

    Shapes:
        forward: wav (..., L) -> spec (..., F, T), complex64, T = L // hop_length
            (T + 1 frames with ``drop_last=False``)
        inverse: spec (..., F, T) -> wav (..., L)
    """

    def __init__(self, n_fft: int = 2048, hop_length: int = 512) -> None:
        super().__init__()
        self.n_fft = n_fft
        self.hop_length = hop_length
        self.register_buffer("window", torch.hann_window(n_fft), persistent=False)

    @property
    def num_freqs(self) -> int:
        return self.n_fft // 2 + 1

    def num_frames(self, length: int) -> int:
        return length // self.hop_length

    def forward(self, wav: torch.Tensor, drop_last: bool = True) -> torch.Tensor:
        lead, length = wav.shape[:-1], wav.shape[-1]
        with torch.autocast(device_type=wav.device.type, enabled=False):
            spec = torch.stft(
                wav.reshape(-1, length).float(),
                n_fft=self.n_fft,
                hop_length=self.hop_length,
                window=self.window,
                center=True,
                pad_mode="reflect",
                return_complex=True,
            )  # (B', F, T + 1)
        if drop_last:
            spec = spec[..., : self.num_frames(length)]  # (B', F, T)
        return spec.reshape(*lead, *spec.shape[-2:])

    def inverse(self, spec: torch.Tensor, length: int) -> torch.Tensor:
        lead = spec.shape[:-2]
        # Synthesis runs in float64: with the last frame dropped, the final ~hop samples are covered by
        # one window tail only, and dividing by that small envelope amplifies float32 rounding ~30x.
        with torch.autocast(device_type=spec.device.type, enabled=False):
            wav = torch.istft(
                spec.reshape(-1, *spec.shape[-2:]).to(torch.complex128),
                n_fft=self.n_fft,
                hop_length=self.hop_length,
                window=self.window.double(),
                center=True,
                length=length,
            )  # (B', L)
        return wav.float().reshape(*lead, length)


def rms_scale(spec: torch.Tensor, eps: float = 1e-15) -> torch.Tensor:
    """Input scale s = sqrt(mean max(|X|^2, eps)) over all but the batch axis, shape (B, 1, ..., 1).

    PAPER: spec §2 `scaling: true`; the model divides its input by s and multiplies its output by s.
    As in the authors' code, each bin's power is clipped at ``eps`` before the mean, and the caller
    passes the full STFT (every frame, the last one included; see SeparationModel.features).
    """
    power = spec.abs().square().clamp_min(eps).flatten(1).mean(1)  # (B,)
    return power.sqrt().view(-1, *([1] * (spec.dim() - 1)))
