"""Parts shared by SFC-CA and SFC-Mamba: convolutional front/back ends and the query builders.

PAPER: Sec. III-A; spec §4. An SFC encoder is
    input_conv (3x3 over T, F) -> RMSNorm -> frame-wise compression F -> K -> output_conv (3x3 over T, K) -> RMSNorm
and the decoder mirrors it with transposed convolutions. Compression runs frame-wise: the sequence axis
is frequency and the batch is B*T.

Compressor contract (the only part that differs between SFC-CA and SFC-Mamba):
    encoder block(e (B*T, F, D'), queries (B*T | 1, K, D')) -> (z (B*T, K, D''), e_enc (B*T, F, D'') | None)
    decoder block(h (B*T, K, D'), queries (B*T | 1, F, D')) -> (B*T, F, D'')
"""

from __future__ import annotations

import torch
from torch import nn

from sfc.bands import Band
from sfc.models.layers import RMSNorm, SwiGLUMLP


class LearnableQuery(nn.Module):
    """Input-independent queries, N(0, 1) initialised (spec §4.3).

    Shapes:
        forward(context) -> (1, L_q, D')
    """

    def __init__(self, num_queries: int, dim: int) -> None:
        super().__init__()
        self.query = nn.Parameter(torch.randn(num_queries, dim))

    def forward(self, context: torch.Tensor | None = None) -> torch.Tensor:
        return self.query.unsqueeze(0)


class BandMeanQuery(nn.Module):
    """Adaptive encoder queries: a learnable weighted mean of the embedded bins of each band.

    q_k = sum_{f in band k} a_{k,f} e_f / sum_{f in band k} a_{k,f}, with a initialised to 1 / w_k
    (spec §4.3). One weight per (band, bin) pair: sum of band widths parameters (2142 for K = 64).

    Shapes:
        forward(e (B*T, F, D')) -> (B*T, K, D')
    """

    def __init__(self, bands: tuple[Band, ...], num_freqs: int) -> None:
        super().__init__()
        rows = torch.cat([torch.full((e - s,), k) for k, (s, e) in enumerate(bands)])
        cols = torch.cat([torch.arange(s, e) for s, e in bands])
        widths = torch.tensor([float(e - s) for s, e in bands])
        self.register_buffer("rows", rows, persistent=False)
        self.register_buffer("cols", cols, persistent=False)
        self.num_bands, self.num_freqs = len(bands), num_freqs
        self.weight = nn.Parameter(1.0 / widths[rows])

    def forward(self, e: torch.Tensor) -> torch.Tensor:
        dense = e.new_zeros(self.num_bands, self.num_freqs, dtype=self.weight.dtype)
        dense = dense.index_put((self.rows, self.cols), self.weight)  # (K, F)
        # PAPER: as the authors' code, each band's weight sum is clamped at 1e-8 before dividing.
        dense = dense / dense.sum(-1, keepdim=True).clamp_min(1e-8)
        return torch.einsum("kf,bfd->bkd", dense.to(e.dtype), e)


class MLPQuery(nn.Module):
    """Adaptive decoder queries from the encoder's uncompressed output: RMSNorm -> SwiGLU MLP (spec §4.3).

    Shapes:
        forward(e_enc (B*T, F, D'')) -> (B*T, F, D')
    """

    def __init__(self, dim_in: int, dim_out: int) -> None:
        super().__init__()
        self.norm = RMSNorm(dim_in)
        self.mlp = SwiGLUMLP(dim_in, 2 * dim_out, dim_out)

    def forward(self, e_enc: torch.Tensor) -> torch.Tensor:
        return self.mlp(self.norm(e_enc))


class SFCEncoder(nn.Module):
    """Frame-wise spectral feature compression F -> K (spec §4.1).

    Args:
        num_channels: audio channels C (the input has 2C real channels).
        dim: separator width D.
        inner: SFC width D'.
        block_dim: width D'' of the compressor's outputs (D' for CA, 2D' for bidirectional Mamba).
        block: the compressor.
        query: the encoder query builder (LearnableQuery or BandMeanQuery).

    Shapes:
        forward(x (B, 2C, T, F)) -> (z (B, D, T, K), e_enc (B*T, F, D'') | None)
    """

    def __init__(
        self,
        num_channels: int,
        dim: int,
        inner: int,
        block_dim: int,
        block: nn.Module,
        query: nn.Module,
    ):
        super().__init__()
        self.input_conv = nn.Conv2d(2 * num_channels, inner, 3, padding=1)
        self.input_norm = RMSNorm(inner)
        self.query = query
        self.block = block
        self.output_conv = nn.Conv2d(block_dim, dim, 3, padding=1)
        self.output_norm = RMSNorm(dim)

    def embed(self, x: torch.Tensor) -> torch.Tensor:
        """Per-bin embedding E, shape (B*T, F, D')."""
        h = self.input_conv(x)  # (B, D', T, F)
        h = self.input_norm(h.permute(0, 2, 3, 1))  # (B, T, F, D')
        return h.flatten(0, 1)  # (B*T, F, D')

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor | None]:
        batch, _, frames, _ = x.shape
        e = self.embed(x)  # (B*T, F, D')
        z, e_enc = self.block(e, self.query(e))  # (B*T, K, D'')
        z = z.view(batch, frames, *z.shape[1:]).permute(0, 3, 1, 2)  # (B, D'', T, K)
        z = self.output_conv(z)  # (B, D, T, K)
        z = self.output_norm(z.permute(0, 2, 3, 1)).permute(0, 3, 1, 2)  # (B, D, T, K)
        return z, e_enc


class SFCDecoder(nn.Module):
    """Frame-wise decompression K -> F producing the complex mask channels (spec §4.2).

    Args:
        num_channels: audio channels C.
        num_sources: sources N.
        dim: separator width D.
        inner: SFC width D'.
        block_dim: width D'' of the decompressor's outputs.
        block: the decompressor.
        query: LearnableQuery(F, D') or MLPQuery(D''_enc, D') fed with the encoder's e_enc.

    Shapes:
        forward(z (B, D, T, K), e_enc (B*T, F, D'') | None) -> (B, 2*N*C, T, F)
    """

    def __init__(
        self,
        num_channels: int,
        num_sources: int,
        dim: int,
        inner: int,
        block_dim: int,
        block: nn.Module,
        query: nn.Module,
    ):
        super().__init__()
        self.input_conv = nn.ConvTranspose2d(dim, inner, 3, padding=1)
        self.query = query
        self.block = block
        self.output_conv = nn.ConvTranspose2d(
            block_dim, 2 * num_channels * num_sources, 3, padding=1
        )

    def forward(self, z: torch.Tensor, e_enc: torch.Tensor | None) -> torch.Tensor:
        batch, _, frames, _ = z.shape
        h = self.input_conv(z).permute(0, 2, 3, 1).flatten(0, 1)  # (B*T, K, D')
        y = self.block(h, self.query(e_enc))  # (B*T, F, D'')
        y = y.view(batch, frames, *y.shape[1:]).permute(0, 3, 1, 2)  # (B, D'', T, F)
        return self.output_conv(y)  # (B, 2NC, T, F)
