"""TF-Locoformer dual-path separator without positional encoding (BS-Locoformer's separator).

PAPER: Sec. II-A; spec §7. Each layer runs a frequency path (sequences along K) then a time path
(sequences along T); each path is a Macaron block:
    x = x + FFN_1(RMSGroupNorm(x)); x = x + MHSA(RMSGroupNorm(x)); x = x + FFN_2(RMSGroupNorm(x))
with FFN = SwiGLU conv-deconv (kernel 8, stride 1) and no positional encoding.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from sfc.models.config import SEPARATOR_DIMS, ModelConfig

_TINY = torch.finfo(torch.float32).tiny


class RMSGroupNorm(nn.Module):
    """RMS normalisation within groups of D/G channels at every position, gain only, in float32.

    PAPER: as the authors' code, eps is added to the RMS, x / (sqrt(mean x^2) + eps); adding it inside
    the square root instead differs by 5e-3 at RMS 0.1 and 0.3 at RMS 0.01. The mean of squares is
    clamped at the smallest normal float before the square root, which changes no forward value (the
    eps dominates there) but keeps the gradient finite for an all-zero group (sqrt'(0) = inf gives
    NaN gradients in the unclamped form).

    Shapes:
        x (..., D) -> (..., D)
    """

    def __init__(self, num_groups: int, dim: int, eps: float = 1e-5) -> None:
        super().__init__()
        if dim % num_groups:
            raise ValueError(f"dim {dim} is not divisible by num_groups {num_groups}")
        self.num_groups, self.eps = num_groups, eps
        self.weight = nn.Parameter(torch.ones(dim))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        dtype, shape = x.dtype, x.shape
        with torch.autocast(device_type=x.device.type, enabled=False):
            g = x.float().view(*shape[:-1], self.num_groups, -1)  # (..., G, D/G)
            mean_sq = g.square().mean(-1, keepdim=True).clamp_min(_TINY)  # (..., G, 1)
            g = g / (mean_sq.sqrt() + self.eps)
            out = g.view(shape) * self.weight.float()
        return out.to(dtype)


class ConvSwiGLU(nn.Module):
    """SwiGLU feed-forward with a 1-D convolution in and a transposed convolution out (stride 1).

    The output layer is an ``nn.ConvTranspose1d`` (the authors' layer and state dict), but it runs as a
    plain ``conv1d`` with the flipped, in/out-swapped kernel: for stride 1 the transposed convolution
    followed by the crop [k-1, k-1+S) equals a valid convolution of the same input with that kernel,
    which skips the 2(k-1) cropped outputs and runs faster on CPU (``python -m sfc.bench``).
    Equal to the ``conv_transpose1d`` path to float32 rounding (tests/models/test_tf_locoformer.py).

    Shapes:
        x (B', S, D) -> (B', S, D)
    """

    def __init__(self, dim: int, hidden: int, kernel_size: int, dropout: float) -> None:
        super().__init__()
        self.pad = kernel_size - 1
        self.conv = nn.Conv1d(dim, 2 * hidden, kernel_size)
        self.deconv = nn.ConvTranspose1d(hidden, dim, kernel_size)
        self.dropout = nn.Dropout(dropout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.conv(F.pad(x.transpose(1, 2), (self.pad, self.pad)))  # (B', 2H, S + k - 1)
        value, gate = h.chunk(2, dim=1)
        h = self.dropout(value * F.silu(gate))  # (B', H, S + k - 1)
        # transposed conv (H -> D) then crop [k-1, k-1+S) == valid conv with W'[d, h, j] = W[h, d, k-1-j]
        weight = self.deconv.weight.transpose(0, 1).flip(-1)  # (D, H, k)
        h = F.conv1d(h, weight, self.deconv.bias)  # (B', D, S)
        return self.dropout(h.transpose(1, 2))


class SelfAttention(nn.Module):
    """Multi-head self-attention without positional encoding (spec §7.1).

    Shapes:
        x (B', S, D) -> (B', S, D)
    """

    def __init__(self, dim: int, num_heads: int, dropout: float) -> None:
        super().__init__()
        self.num_heads, self.attn_dropout = num_heads, dropout
        self.qkv = nn.Linear(dim, 3 * dim, bias=False)
        self.proj = nn.Linear(dim, dim, bias=False)
        self.dropout = nn.Dropout(dropout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        batch, length, dim = x.shape
        qkv = self.qkv(x).view(batch, length, 3, self.num_heads, dim // self.num_heads)
        q, k, v = qkv.permute(2, 0, 3, 1, 4)  # each (B', H, S, D/H)
        # PAPER: as the authors' code, dropout acts on the attention weights (inside SDPA, training only)
        # and again after the output projection.
        p = self.attn_dropout if self.training else 0.0
        out = F.scaled_dot_product_attention(q, k, v, dropout_p=p)  # (B', H, S, D/H)
        return self.dropout(self.proj(out.transpose(1, 2).reshape(batch, length, dim)))


class MacaronPath(nn.Module):
    """FFN -> MHSA -> FFN, each pre-normed with a residual (no 1/2 factor on the FFNs).

    Shapes:
        x (B', S, D) -> (B', S, D)
    """

    def __init__(
        self,
        dim: int,
        num_heads: int,
        ffn_hidden: int,
        kernel_size: int,
        num_groups: int,
        dropout: float,
    ):
        super().__init__()
        self.norms = nn.ModuleList(RMSGroupNorm(num_groups, dim) for _ in range(3))
        self.ffn1 = ConvSwiGLU(dim, ffn_hidden, kernel_size, dropout)
        self.attn = SelfAttention(dim, num_heads, dropout)
        self.ffn2 = ConvSwiGLU(dim, ffn_hidden, kernel_size, dropout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x + self.ffn1(self.norms[0](x))
        x = x + self.attn(self.norms[1](x))
        return x + self.ffn2(self.norms[2](x))


def along_freq(path: nn.Module, z: torch.Tensor) -> torch.Tensor:
    """Apply a sequence module along K with T folded into the batch. z: (B, D, T, K)."""
    batch, dim, frames, bands = z.shape
    x = z.permute(0, 2, 3, 1).reshape(batch * frames, bands, dim)  # (B*T, K, D)
    return path(x).view(batch, frames, bands, dim).permute(0, 3, 1, 2)


def along_time(path: nn.Module, z: torch.Tensor) -> torch.Tensor:
    """Apply a sequence module along T with K folded into the batch. z: (B, D, T, K)."""
    batch, dim, frames, bands = z.shape
    x = z.permute(0, 3, 2, 1).reshape(batch * bands, frames, dim)  # (B*K, T, D)
    return path(x).view(batch, bands, frames, dim).permute(0, 3, 2, 1)


class TFLocoformer(nn.Module):
    """Stack of dual-path layers, frequency path first (`tf_order: ft`).

    Shapes:
        z (B, D, T, K) -> (B, D, T, K)
    """

    def __init__(
        self,
        num_layers: int = 4,
        dim: int = 96,
        num_heads: int = 4,
        ffn_hidden: int = 128,
        kernel_size: int = 8,
        num_groups: int = 4,
        dropout: float = 0.1,
    ) -> None:
        super().__init__()
        args = (dim, num_heads, ffn_hidden, kernel_size, num_groups, dropout)
        self.freq_paths = nn.ModuleList(MacaronPath(*args) for _ in range(num_layers))
        self.time_paths = nn.ModuleList(MacaronPath(*args) for _ in range(num_layers))

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        for freq_path, time_path in zip(self.freq_paths, self.time_paths):
            z = along_freq(freq_path, z)
            z = along_time(time_path, z)
        return z


def build(config: ModelConfig) -> TFLocoformer:
    return TFLocoformer(**SEPARATOR_DIMS[config.size])
