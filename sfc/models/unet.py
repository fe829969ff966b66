"""Shared parts of the spectrogram U-Net families (LightSAFT-Net, MSTFA U-Net): TFC, TDF, down/up,
the complex-as-channels STFT front end with direct complex mapping, and the waveform wrapper.

PAPER: lightsaft.md §2-§3 (authors' code `dcun_base.py`, `building_blocks.py`, `fourier.py`).

Front end (unlike SeparationModel): n_fft 2048, hop 1024, Hann, centred, **every frame kept**
(T = 1 + L // hop), no input scaling, channels ordered [Re ch0, Re ch1, ..., Im ch0, Im ch1, ...], and
the network outputs the target's complex STFT directly (mapping, no mask).

Shapes (B batch, C audio channels, T frames, F = 1025 bins, f a level's frequency size):
    spec(wav (B, C, L)) -> (B, 2C, T, F)
    forward(mix (B, C, L)) -> (B, N, C, L)
"""

from __future__ import annotations

import abc

import torch
from torch import nn

from sfc.errors import UserError
from sfc.models.config import ModelConfig
from sfc.models.model import AudioModel
from sfc.stft import STFT


class TFC(nn.Module):
    """Densely connected convolutions (time-frequency convolutions).

    PAPER: lightsaft.md §3 2a: layer j takes [input, outputs of layers < j] (C_in + growth·j channels),
    Conv2d 3×3 (bias) -> BN2d -> ReLU; the block returns the last layer's output only.

    Shapes:
        x (B, C_in, T, f) -> (B, growth, T, f)
    """

    def __init__(
        self, in_channels: int, growth: int = 16, num_layers: int = 5, kernel_size: int = 3
    ) -> None:
        super().__init__()
        self.layers = nn.ModuleList(
            nn.Sequential(
                nn.Conv2d(in_channels + growth * j, growth, kernel_size, padding=kernel_size // 2),
                nn.BatchNorm2d(growth),
                nn.ReLU(),
            )
            for j in range(num_layers)
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        feats = [x]
        for layer in self.layers:
            out = layer(torch.cat(feats, dim=1))  # (B, growth, T, f)
            feats.append(out)
        return out


class TDF(nn.Module):
    """Time-distributed fully connected bottleneck over frequency, with a residual.

    ASSUMPTION (mstfa.md §3.2 host U): Linear(f -> max(f // 16, 16)) -> BN2d -> ReLU ->
    Linear(-> f) -> BN2d -> ReLU, no biases (`tfc_tdf_bias = False` of the TFC-TDF code), x + TDF(x).

    Shapes:
        x (B, D, T, f) -> (B, D, T, f)
    """

    def __init__(self, channels: int, freqs: int, bn_factor: int = 16, min_units: int = 16):
        super().__init__()
        hidden = max(freqs // bn_factor, min_units)
        self.net = nn.Sequential(
            nn.Linear(freqs, hidden, bias=False),
            nn.BatchNorm2d(channels),
            nn.ReLU(),
            nn.Linear(hidden, freqs, bias=False),
            nn.BatchNorm2d(channels),
            nn.ReLU(),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.net(x)


def down(channels: int) -> nn.Sequential:
    """Conv2d (2, 2) stride (2, 2) with bias, BN2d, no activation: (B, D, T, f) -> (B, D, T/2, f/2)."""
    return nn.Sequential(nn.Conv2d(channels, channels, 2, stride=2), nn.BatchNorm2d(channels))


def up(channels: int) -> nn.Sequential:
    """ConvTranspose2d (2, 2) stride (2, 2), BN2d: (B, D, T, f) -> (B, D, 2T, 2f)."""
    return nn.Sequential(
        nn.ConvTranspose2d(channels, channels, 2, stride=2), nn.BatchNorm2d(channels)
    )


def first_conv(in_channels: int, channels: int) -> nn.Sequential:
    """Conv2d kernel (1, 2), no padding: F 1025 -> 1024, then BN2d and ReLU."""
    return nn.Sequential(
        nn.Conv2d(in_channels, channels, (1, 2)), nn.BatchNorm2d(channels), nn.ReLU()
    )


def last_conv(channels: int, out_channels: int) -> nn.Conv2d:
    """Conv2d kernel (1, 2), padding (0, 1): F 1024 -> 1025, identity activation (mapping)."""
    return nn.Conv2d(channels, out_channels, (1, 2), padding=(0, 1))


def xavier_init(module: nn.Module) -> None:
    """Xavier-normal for every parameter with >= 2 dimensions; biases and BN keep PyTorch defaults.

    PAPER: lightsaft.md §3 "Initialisation" (`weight_initialization.py`, Identity last activation).
    """
    for param in module.parameters():
        if param.dim() >= 2:
            nn.init.xavier_normal_(param)


class SpectrogramUNetModel(AudioModel, abc.ABC):
    """Waveform wrapper of a complex-mapping U-Net: STFT, length padding, iSTFT.

    Subclasses define ``network(x (B, 2C, T, F), cond (B,) or None) -> (B, 2C, T, F)`` (one source
    per pass for conditioned models) or ``-> (B, N·2C, T, F)`` (all sources at once), the number of
    (2, 2) downsamplings ``num_down``, and whether they are ``conditioned``.
    """

    conditioned = False

    def __init__(self, config: ModelConfig, num_down: int) -> None:
        super().__init__()
        self.config = config
        self.num_down = num_down
        self.stft = STFT(config.n_fft, config.hop_length)

    def padded_length(self, length: int) -> int:
        """The smallest hop·(m·2^num_down − 1) >= length, so that T = 1 + L // hop ≡ 0 (mod 2^num_down).

        PAPER: the authors always feed hop·(256 − 1) = 261,120 samples, which needs no padding.
        """
        mult, hop = 2**self.num_down, self.config.hop_length
        frames = -(-(length // hop + 1) // mult) * mult  # ceil to a multiple of 2^num_down
        while hop * (frames - 1) < length:
            frames += mult
        return hop * (frames - 1)

    def check_input(self, mix: torch.Tensor) -> None:
        if mix.dim() != 3 or not torch.is_floating_point(mix):
            raise UserError(
                f"expected floating-point input (batch, channels, samples), got {tuple(mix.shape)} "
                f"{mix.dtype}"
            )
        self.check_channels(mix)

    def spec(self, wav: torch.Tensor) -> torch.Tensor:
        """Complex-as-channels STFT of the padded waveform: (B, C, L) -> (B, 2C, T, F), fp32."""
        pad = self.padded_length(wav.shape[-1]) - wav.shape[-1]
        wav = nn.functional.pad(wav.float(), (0, pad))  # (B, C, L')
        spec = self.stft(wav, drop_last=False).transpose(-1, -2)  # (B, C, T, F) all frames
        return torch.cat([spec.real, spec.imag], dim=1)  # (B, 2C, T, F)

    def inverse(self, feats: torch.Tensor, length: int) -> torch.Tensor:
        """(B, N·2C, T, F) network output (per source [Re, Im] x C) -> (B, N, C, length)."""
        batch, _, frames, freqs = feats.shape
        feats = feats.float().view(batch, -1, 2, self.num_channels, frames, freqs)
        spec = torch.complex(feats[:, :, 0], feats[:, :, 1]).transpose(-1, -2)  # (B, N, C, F, T)
        wav = self.stft.inverse(spec, self.config.hop_length * (frames - 1))  # (B, N, C, L')
        return wav[..., :length]

    @abc.abstractmethod
    def network(self, x: torch.Tensor, cond: torch.Tensor | None) -> torch.Tensor:
        """(B, 2C, T, F) -> (B, 2C, T, F) for one condition per example, or (B, N·2C, T, F)."""

    def spec_sources(self, refs: torch.Tensor) -> torch.Tensor:
        """Targets in the network's output layout: (B, N, C, L) -> (B, N·2C, T, F)."""
        batch, num = refs.shape[:2]
        spec = self.spec(refs.flatten(0, 1))  # (B·N, 2C, T, F)
        return spec.reshape(batch, num * spec.shape[1], *spec.shape[-2:])

    def forward(
        self, mix: torch.Tensor, cond: torch.Tensor | None = None, output: str = "wave"
    ) -> torch.Tensor:
        """Separate.

        Args:
            mix: mixture (B, C, L), raw level (no scaling).
            cond: conditioned models only: one source index per example (B,); None runs all N
                sources (the batch is repeated N times, one pass).
            output: ``wave`` or ``spec`` (the raw network output, for spectrogram losses).

        Returns:
            wave: (B, N, C, L), or (B, C, L) when ``cond`` is given.
            spec: (B, N·2C, T, F), or (B, 2C, T, F) when ``cond`` is given.
        """
        self.check_input(mix)
        if cond is not None and not self.conditioned:
            raise UserError(f"{type(self).__name__} is not conditioned; call it without cond")
        batch, length = mix.shape[0], mix.shape[-1]
        x = self.spec(mix)  # (B, 2C, T, F)
        if self.conditioned and cond is None:
            num = self.num_sources
            x = x.repeat_interleave(num, dim=0)  # (B·N, 2C, T, F): example b, source n at b·N + n
            run_cond = torch.arange(num, device=mix.device).repeat(batch)  # (B·N,)
        else:
            run_cond = cond
        out = self.network(x, run_cond).float()  # (B·N, 2C, T, F) or (B, N·2C, T, F)
        if output == "spec":
            return out.reshape(batch, -1, *out.shape[-2:])
        if output != "wave":
            raise ValueError(f"output must be 'wave' or 'spec', got {output!r}")
        wav = self.inverse(out.reshape(batch, -1, *out.shape[-2:]), length)  # (B, N, C, L)
        return wav[:, 0] if cond is not None else wav
