"""MSTFA (reconstructed): multi-scale temporal-frequency attention block and its separator.

NOT the paper's model. Chen, Zheng, Zhang, Guo, Yu, "Multi-scale temporal-frequency attention for music
source separation" (arXiv 2209.00805): only the abstract is public, so every value here is an
ASSUMPTION from ../shared/spec/mstfa.md §3.2 (block) and §3.3 (host P: this block as the pipeline's
separator, `-mstfa` experiment tag). Label every result "MSTFA (reconstructed)".

Block (x (B, D, T, F) -> same shape):
    x <- x + TA(LN(x))    multi-head self-attention along T, per frequency position, RoPE on T
    x <- x + FA(LN(x))    the same along F within each frame (own weights, RoPE on F)
    x <- x + FFN(LN(x))   Linear(D -> 2D), GELU, Linear(2D -> D)
Multi-scale: heads are split over ``scales``; a head of scale s attends to keys/values average-pooled
along the attended axis with kernel = stride = s (ceil mode), queries at full resolution.
Parameters per block: 12 D^2 + 17 D (28,464 at D = 48).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from sfc.errors import UserError
from sfc.models.config import SEPARATOR_DIMS, ModelConfig

# ASSUMPTION: head counts of the separator (host P) per size; the TF-Locoformer's heads (2, 4, 8) are
# not all >= 3 = len(scales), so tiny gets 4 (D 32 = 4 x 8).
SEPARATOR_HEADS: dict[str, int] = {"tiny": 4, "small": 4, "medium": 8}


def head_scales(num_heads: int, scales: tuple[int, ...]) -> list[int]:
    """The scale of every head: heads split evenly over ``scales``, a remainder to the finest ones.

    ASSUMPTION (mstfa.md §3.2 says "split evenly" and asks for a multiple; uneven counts are allowed
    here so the pipeline's head counts can host three scales).
    """
    if num_heads < len(scales):
        raise UserError(f"MSTFA: {num_heads} heads cannot cover {len(scales)} scales {scales}")
    per, extra = divmod(num_heads, len(scales))
    return [s for i, s in enumerate(scales) for _ in range(per + (i < extra))]


def rotate(x: torch.Tensor, pos: torch.Tensor, base: float = 10_000.0) -> torch.Tensor:
    """Rotary position encoding at (possibly fractional) positions.

    Shapes:
        x (..., S, d) with d even, pos (S,) -> (..., S, d)
    """
    half = x.shape[-1] // 2
    inv = base ** (-torch.arange(half, device=x.device, dtype=torch.float32) / half)  # (d/2,)
    angle = pos.float()[:, None] * inv  # (S, d/2)
    cos, sin = angle.cos().to(x.dtype), angle.sin().to(x.dtype)
    x1, x2 = x[..., :half], x[..., half:]
    return torch.cat([x1 * cos - x2 * sin, x2 * cos + x1 * sin], dim=-1)


class MultiScaleAttention(nn.Module):
    """Multi-head self-attention along a sequence whose head groups see pooled keys/values.

    Shapes:
        x (B', S, D) -> (B', S, D)
    """

    def __init__(self, dim: int, num_heads: int, scales: tuple[int, ...] = (1, 2, 4)) -> None:
        super().__init__()
        if dim % num_heads or (dim // num_heads) % 2:
            raise UserError(f"MSTFA: dim {dim} must split into {num_heads} heads of even size")
        self.num_heads, self.head_dim = num_heads, dim // num_heads
        self.scales = head_scales(num_heads, scales)
        self.qkv = nn.Linear(dim, 3 * dim)
        self.out = nn.Linear(dim, dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        batch, length, dim = x.shape
        q, k, v = self.qkv(x).view(batch, length, 3, self.num_heads, self.head_dim).unbind(2)
        q, k, v = (t.transpose(1, 2) for t in (q, k, v))  # (B', H, S, d)
        pos = torch.arange(length, device=x.device)
        q = rotate(q, pos)
        out = torch.empty_like(q)  # (B', H, S, d)
        for scale in dict.fromkeys(self.scales):
            heads = [h for h, s in enumerate(self.scales) if s == scale]
            kh, vh = k[:, heads], v[:, heads]  # (B', h, S, d)
            if scale > 1:
                kh, vh = (self._pool(t, scale) for t in (kh, vh))  # (B', h, ceil(S/s), d)
            # a pooled key sits at the centre of the positions it averages
            kpos = torch.arange(kh.shape[2], device=x.device) * scale + (scale - 1) / 2
            out[:, heads] = F.scaled_dot_product_attention(q[:, heads], rotate(kh, kpos), vh)
        return self.out(out.transpose(1, 2).reshape(batch, length, dim))

    @staticmethod
    def _pool(t: torch.Tensor, scale: int) -> torch.Tensor:
        """Average-pool along S (ceil mode): (B', h, S, d) -> (B', h, ceil(S / scale), d)."""
        lead = t.shape[:2]
        flat = t.flatten(0, 1).transpose(1, 2)  # (B'h, d, S)
        pooled = F.avg_pool1d(flat, scale, scale, ceil_mode=True)  # (B'h, d, S')
        return pooled.transpose(1, 2).reshape(*lead, -1, t.shape[-1])


class MSTFABlock(nn.Module):
    """Temporal attention, frequency attention and a feed-forward layer, each pre-normed and residual.

    Shapes:
        x (B, D, T, F) -> (B, D, T, F)
    """

    def __init__(
        self,
        dim: int = 48,
        num_heads: int = 6,
        scales: tuple[int, ...] = (1, 2, 4),
        ffn_mult: int = 2,
    ) -> None:
        super().__init__()
        self.time_norm, self.freq_norm, self.ffn_norm = (nn.LayerNorm(dim) for _ in range(3))
        self.time_attn = MultiScaleAttention(dim, num_heads, scales)
        self.freq_attn = MultiScaleAttention(dim, num_heads, scales)
        self.ffn = nn.Sequential(
            nn.Linear(dim, ffn_mult * dim), nn.GELU(), nn.Linear(ffn_mult * dim, dim)
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        batch, dim, frames, freqs = x.shape
        h = x.permute(0, 3, 2, 1).reshape(batch * freqs, frames, dim)  # (B·F, T, D)
        h = h + self.time_attn(self.time_norm(h))
        h = h.view(batch, freqs, frames, dim).transpose(1, 2).reshape(batch * frames, freqs, dim)
        h = h + self.freq_attn(self.freq_norm(h))  # (B·T, F, D)
        h = h + self.ffn(self.ffn_norm(h))
        return h.view(batch, frames, freqs, dim).permute(0, 3, 1, 2)  # (B, D, T, F)


class MSTFASeparator(nn.Module):
    """Host P (mstfa.md §3.3): a stack of MSTFA blocks as the pipeline's separator, F = K bands.

    Shapes:
        z (B, D, T, K) -> (B, D, T, K)
    """

    def __init__(
        self,
        num_layers: int = 4,
        dim: int = 96,
        num_heads: int = 4,
        scales: tuple[int, ...] = (1, 2, 4),
    ) -> None:
        super().__init__()
        self.blocks = nn.ModuleList(MSTFABlock(dim, num_heads, scales) for _ in range(num_layers))

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        for block in self.blocks:
            z = block(z)
        return z


def build(config: ModelConfig) -> MSTFASeparator:
    dims = SEPARATOR_DIMS[config.size]
    return MSTFASeparator(
        dims["num_layers"], dims["dim"], SEPARATOR_HEADS[config.size], config.scales
    )
