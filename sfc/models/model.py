"""The separation model: STFT -> encoder -> dual-path separator -> decoder -> complex mask -> iSTFT.

PAPER: Sec. II and spec §2, §4 (code `BSLocoformer.forward`).

Encoder/decoder contract (every registry entry follows it):
    encoder(x (B, 2C, T, F)) -> (z (B, D, T, K), aux)   aux: uncompressed embedding or None
    decoder(z (B, D, T, K), aux) -> mask (B, 2*N*C, T, F)
Separator contract:
    separator(z (B, D, T, K)) -> (B, D, T, K)
"""

from __future__ import annotations

import torch
from torch import nn

from sfc.errors import UserError
from sfc.models.config import ModelConfig
from sfc.stft import STFT, rms_scale


class AudioModel(nn.Module):
    """What every waveform separator of the zoo exposes, read from its ``config`` (a ModelConfig):
    channels, sources, sample rate, and the channel check of its input (B, C, L).
    """

    config: ModelConfig

    @property
    def num_channels(self) -> int:
        return self.config.num_channels

    @property
    def num_sources(self) -> int:
        return self.config.num_sources

    @property
    def sample_rate(self) -> int:
        return self.config.sample_rate

    def check_channels(self, mix: torch.Tensor) -> None:
        """UserError unless ``mix`` (B, C, L) has the model's number of channels."""
        if mix.shape[1] != self.num_channels:
            raise UserError(
                f"this model separates {self.num_channels}-channel audio, got {mix.shape[1]} channel(s)"
            )


class SeparationModel(AudioModel):
    """Waveform-to-waveform separator built from a ModelConfig.

    Shapes:
        forward: mix (B, C, L) -> estimates (B, N, C, L)
    """

    def __init__(
        self, config: ModelConfig, encoder: nn.Module, separator: nn.Module, decoder: nn.Module
    ):
        super().__init__()
        self.config = config
        self.stft = STFT(config.n_fft, config.hop_length)
        self.encoder = encoder
        self.separator = separator
        self.decoder = decoder

    def check_input(self, mix: torch.Tensor) -> None:
        """Raise UserError for input this model cannot separate."""
        if mix.dim() != 3:
            raise UserError(
                f"expected input of shape (batch, channels, samples), got {tuple(mix.shape)}"
            )
        self.check_channels(mix)
        if mix.shape[-1] < self.config.n_fft:
            raise UserError(
                f"input of {mix.shape[-1]} samples is shorter than one STFT window ({self.config.n_fft})"
            )
        if not torch.is_floating_point(mix):
            raise UserError(f"expected floating-point audio, got {mix.dtype}")

    def features(self, mix: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """The encoder's input for a checked mixture (B, C, L).

        Returns:
            spec (B, C, T, F) complex, RMS-scaled; scale (B, 1, 1, 1); feats (B, 2C, T, F) real.
        """
        self.check_input(mix)
        full = self.stft(mix, drop_last=False)  # (B, C, F, T + 1) complex
        # PAPER: the scale comes from the full STFT, the last frame (dropped below) included. The
        # authors divide the waveform and analyse it again; dividing its STFT is the same up to rounding.
        scale = rms_scale(full)  # (B, 1, 1, 1)
        spec = (full[..., : self.stft.num_frames(mix.shape[-1])] / scale).transpose(
            -1, -2
        )  # (B, C, T, F)
        return spec, scale, torch.cat([spec.real, spec.imag], dim=1)  # feats (B, 2C, T, F)

    def forward(self, mix: torch.Tensor) -> torch.Tensor:
        spec, scale, feats = self.features(mix)
        batch, num_ch, length = mix.shape
        z, aux = self.encoder(feats)  # (B, D, T, K)
        z = self.separator(z)  # (B, D, T, K)
        mask = self.decoder(z, aux)  # (B, 2*N*C, T, F)
        mask = mask.float().view(batch, 2, self.num_sources, num_ch, *mask.shape[-2:])
        mask = torch.complex(mask[:, 0], mask[:, 1])  # (B, N, C, T, F)
        est = mask * spec.unsqueeze(1)  # (B, N, C, T, F)
        wav = self.stft.inverse(est.transpose(-1, -2), length)  # (B, N, C, L)
        return wav * scale  # (B, N, C, L); scale (B, 1, 1, 1)
