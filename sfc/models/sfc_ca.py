"""SFC-CA: spectral feature compression by cross-attention with a band-aware positional bias.

PAPER: Sec. III-B; spec §5. Encoder: K queries attend to the F embedded bins of each frame; decoder:
F queries attend to the K compressed tokens. Each block is
    Q' = MHCA(RMSNorm(H), RMSNorm(Q))            (no residual around the attention)
    Y  = Q' + SwiGLU(RMSNorm(Q'))
with attention logits q.k / sqrt(d_h) + s_h * B_h; B is initialised from the musical band layout
(linear decay in bin distance, ALiBi-like) and, by default, learned.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from sfc.bands import Band, band_membership, musical_bands
from sfc.models.config import CA_HEADS, SEPARATOR_DIMS, SFC_DIMS, ModelConfig, PosBias
from sfc.models.layers import RMSNorm, SwiGLUMLP
from sfc.models.sfc_common import BandMeanQuery, LearnableQuery, MLPQuery, SFCDecoder, SFCEncoder


def initial_position_bias(bands: tuple[Band, ...], num_freqs: int) -> torch.Tensor:
    """Band-aware bias B[k, f] at initialisation (spec §5.2, `gentle_slope`).

    Outside band k = [s, e): minus the bin distance to the band edge (-1 next to it). Inside: a gentle
    slope -|m - f| / (floor((e - s) / 2) + 1) in (-1, 0], zero at the centre m = floor((s + e) / 2).

    Returns:
        (K, F) float32 tensor.
    """
    f = torch.arange(num_freqs, dtype=torch.float32)
    rows = []
    for start, end in bands:
        below = f - start  # negative below the band
        above = (end - 1) - f  # negative above the band
        inside = -(f - (start + end) // 2).abs() / ((end - start) // 2 + 1)
        rows.append(torch.where(f < start, below, torch.where(f > end - 1, above, inside)))
    return torch.stack(rows)


class BandAwareCrossAttention(nn.Module):
    """Multi-head cross-attention with an additive per-head positional bias.

    Args:
        dim: width D'.
        num_heads: heads H (head width D' / H).
        bias_init: (L_q, L_kv) initial bias, or None for no bias.
        mode: "none", "fixed" (slope 1, frozen), "learnable_slope" (frozen matrix, learnable s_h),
            "learnable" (learnable matrix per head, slope 1) or "band_mask" ("learnable" plus -inf
            outside each query's band).
        allowed: (L_q, L_kv) bool, True inside the band; needed for "band_mask".

    Shapes:
        forward(kv (B', L_kv, D'), q (B' | 1, L_q, D')) -> (B', L_q, D')
    """

    def __init__(
        self,
        dim: int,
        num_heads: int,
        bias_init: torch.Tensor | None,
        mode: PosBias = "learnable",
        allowed: torch.Tensor | None = None,
    ) -> None:
        super().__init__()
        self.num_heads, self.mode = num_heads, mode
        self.to_q = nn.Linear(dim, dim, bias=False)
        self.to_kv = nn.Linear(dim, 2 * dim, bias=False)
        self.proj = nn.Linear(dim, dim, bias=False)
        if mode != "none":
            assert bias_init is not None
            heads = bias_init.expand(num_heads, *bias_init.shape).clone()  # (H, L_q, L_kv)
            if mode in ("learnable", "band_mask"):
                self.bias = nn.Parameter(heads)
                self.register_buffer("slope", torch.ones(num_heads))
            else:
                self.register_buffer("bias", heads)
                slope = torch.ones(num_heads)
                self.slope = nn.Parameter(slope) if mode == "learnable_slope" else nn.Buffer(slope)
        if mode == "band_mask":
            assert allowed is not None
            self.register_buffer("outside", ~allowed, persistent=False)

    def position_bias(self) -> torch.Tensor | None:
        """The effective bias s_h * B_h, shape (H, L_q, L_kv), without the band mask; None if absent."""
        if self.mode == "none":
            return None
        return self.slope.view(-1, 1, 1) * self.bias

    def attn_bias(self, dtype: torch.dtype) -> torch.Tensor | None:
        bias = self.position_bias()
        if bias is None:
            return None
        if self.mode == "band_mask":
            bias = bias.masked_fill(self.outside, float("-inf"))
        return bias.to(dtype).unsqueeze(0)  # (1, H, L_q, L_kv)

    def split_heads(self, x: torch.Tensor) -> torch.Tensor:
        return x.view(*x.shape[:2], self.num_heads, -1).transpose(1, 2)  # (B', H, L, D'/H)

    def forward(self, kv: torch.Tensor, q: torch.Tensor, return_weights: bool = False):
        batch = kv.shape[0]
        k, v = self.split_heads(self.to_kv(kv)).chunk(2, dim=-1)  # (B', H, L_kv, D'/H)
        q = self.split_heads(self.to_q(q)).expand(batch, -1, -1, -1)  # (B', H, L_q, D'/H)
        bias = self.attn_bias(q.dtype)
        if return_weights:
            logits = q @ k.transpose(-1, -2) / q.shape[-1] ** 0.5  # (B', H, L_q, L_kv)
            weights = torch.softmax(logits if bias is None else logits + bias, dim=-1)
            return weights
        # PAPER: spec §5.2: FlashAttention does not support the float bias; SDPA picks another kernel.
        out = F.scaled_dot_product_attention(q, k, v, attn_mask=bias)  # (B', H, L_q, D'/H)
        return self.proj(out.transpose(1, 2).flatten(2))  # (B', L_q, D')


class CrossAttnBlock(nn.Module):
    """Pre-normed cross-attention (no residual) followed by a residual SwiGLU MLP of hidden 2D'.

    Shapes:
        forward(kv (B', L_kv, D'), q (B' | 1, L_q, D')) -> (B', L_q, D')
    """

    def __init__(self, dim: int, attn: BandAwareCrossAttention) -> None:
        super().__init__()
        self.norm_kv, self.norm_q, self.norm_ffn = RMSNorm(dim), RMSNorm(dim), RMSNorm(dim)
        self.attn = attn
        self.mlp = SwiGLUMLP(dim, 2 * dim)

    def forward(self, kv: torch.Tensor, q: torch.Tensor) -> torch.Tensor:
        h = self.attn(self.norm_kv(kv), self.norm_q(q))  # (B', L_q, D')
        return h + self.mlp(self.norm_ffn(h))

    def weights(self, kv: torch.Tensor, q: torch.Tensor) -> torch.Tensor:
        """Softmax attention weights, shape (B', H, L_q, L_kv)."""
        return self.attn(self.norm_kv(kv), self.norm_q(q), return_weights=True)


class CAEncoderBlock(CrossAttnBlock):
    """Compressor: K queries read the F bins; e is passed on for adaptive decoder queries."""

    def forward(self, e: torch.Tensor, queries: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return super().forward(e, queries), e  # (B*T, K, D'), (B*T, F, D')


class SFCCrossAttnEncoder(SFCEncoder):
    """SFC-CA encoder with access to its positional bias and attention weights (for the figures)."""

    def position_bias(self) -> torch.Tensor | None:
        """Effective encoder bias s_h * B_h, shape (H, K, F)."""
        return self.block.attn.position_bias()

    @torch.no_grad()
    def attention(self, x: torch.Tensor) -> torch.Tensor:
        """Attention weights of the K queries over the F bins for input features x (B, 2C, T, F).

        Returns:
            (B*T, H, K, F) softmax weights.
        """
        e = self.embed(x)  # (B*T, F, D')
        return self.block.weights(e, self.query(e))


def _attention(dim: int, heads: int, bias: torch.Tensor, allowed: torch.Tensor, mode: PosBias):
    return BandAwareCrossAttention(dim, heads, None if mode == "none" else bias, mode, allowed)


def build(config: ModelConfig) -> tuple[SFCCrossAttnEncoder, SFCDecoder]:
    """SFC-CA encoder/decoder for a ModelConfig (encoder == "sfc_ca")."""
    dim, inner, heads = (
        SEPARATOR_DIMS[config.size]["dim"],
        SFC_DIMS["sfc_ca"][config.size],
        CA_HEADS[config.size],
    )
    bands = musical_bands(config.num_bands, config.n_fft, config.sample_rate)
    bias = initial_position_bias(bands, config.num_freqs)  # (K, F)
    allowed = band_membership(bands, config.num_freqs)  # (K, F)
    enc_block = CAEncoderBlock(inner, _attention(inner, heads, bias, allowed, config.pos_bias))
    # PAPER: spec §5.2: the decoder bias is initialised with the transpose of the encoder's.
    dec_block = CrossAttnBlock(inner, _attention(inner, heads, bias.T, allowed.T, config.pos_bias))
    if config.query_type == "adaptive":
        enc_query, dec_query = BandMeanQuery(bands, config.num_freqs), MLPQuery(inner, inner)
    else:
        enc_query, dec_query = (
            LearnableQuery(config.num_bands, inner),
            LearnableQuery(config.num_freqs, inner),
        )
    encoder = SFCCrossAttnEncoder(config.num_channels, dim, inner, inner, enc_block, enc_query)
    decoder = SFCDecoder(
        config.num_channels, config.num_sources, dim, inner, inner, dec_block, dec_query
    )
    return encoder, decoder


@torch.no_grad()
def encoder_attention(model: nn.Module, mix: torch.Tensor) -> torch.Tensor:
    """Encoder attention weights of an SFC-CA SeparationModel for one mixture (spec §12, fig. 5).

    Args:
        model: a SeparationModel whose encoder is SFCCrossAttnEncoder.
        mix: (C, L) waveform.

    Returns:
        (T, H, K, F) softmax weights of the K queries over the F bins, per frame.
    """
    if not isinstance(model.encoder, SFCCrossAttnEncoder):
        raise TypeError(
            f"encoder_attention needs an SFC-CA model, got {type(model.encoder).__name__}"
        )
    _, _, feats = model.features(mix.unsqueeze(0))  # (1, 2C, T, F)
    return model.encoder.attention(feats)
