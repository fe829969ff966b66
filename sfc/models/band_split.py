"""Band-split (BS) encoder/decoder of BandIt: the baseline that SFC replaces.

PAPER: Sec. II-B; spec §3.2 and the "no band locality" ablation of §11.1.

Encoder, band k of width w_k: (Re, Im) of all C channels of the band, a vector of 2*C*w_k values ->
LayerNorm -> Linear -> D. Decoder, band k: LayerNorm(D) -> Linear(D, H) -> Tanh ->
Linear(H, 2 * 2*N*C*w_k) -> GLU -> the band's complex mask, weighted by 1 / (bands covering the bin)
and overlap-added into the full-band mask.
"""

from __future__ import annotations

import torch
from torch import nn

from sfc.bands import Band, musical_bands, overlap_weights
from sfc.models.config import SEPARATOR_DIMS, ModelConfig


class BandSplitEncoder(nn.Module):
    """Per-band LayerNorm + Linear.

    Shapes:
        forward(x (B, 2C, T, F)) -> (z (B, D, T, K), None)
    """

    def __init__(self, bands: tuple[Band, ...], num_channels: int, dim: int) -> None:
        super().__init__()
        self.bands = bands
        widths = [2 * num_channels * (end - start) for start, end in bands]
        self.norms = nn.ModuleList(nn.LayerNorm(w) for w in widths)
        self.projs = nn.ModuleList(nn.Linear(w, dim) for w in widths)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, None]:
        x = x.transpose(1, 2)  # (B, T, 2C, F)
        tokens = []
        for (start, end), norm, proj in zip(self.bands, self.norms, self.projs):
            band = x[..., start:end].flatten(2)  # (B, T, 2C*w)
            tokens.append(proj(norm(band)))  # (B, T, D)
        return torch.stack(tokens, dim=1).permute(0, 3, 2, 1), None  # (B, D, T, K)


class BandSplitDecoder(nn.Module):
    """Per-band MLP + GLU mask estimation with overlap-add (H = 4D; spec §3.2, §14 item 3).

    Shapes:
        forward(z (B, D, T, K), _) -> (B, 2*N*C, T, F)
    """

    def __init__(
        self,
        bands: tuple[Band, ...],
        num_channels: int,
        num_sources: int,
        dim: int,
        hidden: int,
        num_freqs: int,
    ) -> None:
        super().__init__()
        self.bands = bands
        self.num_out = 2 * num_sources * num_channels  # (re/im, N, C) per bin
        self.num_freqs = num_freqs
        self.mlps = nn.ModuleList(
            nn.Sequential(
                nn.LayerNorm(dim),
                nn.Linear(dim, hidden),
                nn.Tanh(),
                nn.Linear(hidden, 2 * self.num_out * (end - start)),
                nn.GLU(dim=-1),
            )
            for start, end in bands
        )
        self.register_buffer("freq_weights", overlap_weights(bands, num_freqs), persistent=False)
        cols = torch.cat([torch.arange(start, end) for start, end in bands])
        self.register_buffer("cols", cols, persistent=False)

    def forward(self, z: torch.Tensor, aux: object = None) -> torch.Tensor:
        batch, _, frames, _ = z.shape
        z = z.permute(0, 3, 2, 1)  # (B, K, T, D)
        masks = []
        for k, ((start, end), mlp) in enumerate(zip(self.bands, self.mlps)):
            m = mlp(z[:, k]).view(batch, frames, self.num_out, end - start)  # (B, T, 2NC, w)
            masks.append(m * self.freq_weights[start:end].to(m.dtype))
        masks = torch.cat(masks, dim=-1)  # (B, T, 2NC, sum w)
        full = masks.new_zeros(batch, frames, self.num_out, self.num_freqs)
        full = full.index_add(-1, self.cols, masks)  # (B, T, 2NC, F)
        return full.permute(0, 2, 1, 3)  # (B, 2NC, T, F)


def build(config: ModelConfig) -> tuple[BandSplitEncoder, BandSplitDecoder]:
    """Band-split encoder/decoder for a ModelConfig (encoder == "band_split")."""
    dim = SEPARATOR_DIMS[config.size]["dim"]
    bands = musical_bands(config.num_bands, config.n_fft, config.sample_rate)
    if not config.band_locality:
        # ASSUMPTION (spec §11.1, §14 item 10): the "no band locality" ablation keeps K per-band modules
        # but each one reads the whole spectrum and writes a full-band mask; the decoder's overlap-add
        # weights 1/K then average the K masks.
        bands = ((0, config.num_freqs),) * config.num_bands
    encoder = BandSplitEncoder(bands, config.num_channels, dim)
    decoder = BandSplitDecoder(
        bands, config.num_channels, config.num_sources, dim, 4 * dim, config.num_freqs
    )
    return encoder, decoder
