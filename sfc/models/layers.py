"""Building blocks shared by the encoders, decoders and separators."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


class RMSNorm(nn.Module):
    """RMS normalisation over the last axis, gain only (no bias), computed in float32.

    Shapes:
        x (..., D) -> (..., D)
    """

    def __init__(self, dim: int, eps: float = 1e-6) -> None:
        super().__init__()
        self.eps = eps
        self.weight = nn.Parameter(torch.ones(dim))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        dtype = x.dtype
        x = x.float()
        x = x * torch.rsqrt(x.square().mean(-1, keepdim=True) + self.eps)
        return (x * self.weight.float()).to(dtype)


class SwiGLUMLP(nn.Module):
    """Linear(D_in -> 2H) split into value/gate, value * SiLU(gate), Linear(H -> D_out).

    ASSUMPTION: both linears carry biases (spec §4.3/§5.1 leave this open; the difference is < 0.01 %
    of any model's parameters, well inside the paper's rounding).

    Shapes:
        x (..., D_in) -> (..., D_out)
    """

    def __init__(self, dim_in: int, hidden: int, dim_out: int | None = None) -> None:
        super().__init__()
        self.fc_in = nn.Linear(dim_in, 2 * hidden)
        self.fc_out = nn.Linear(hidden, dim_out or dim_in)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        value, gate = self.fc_in(x).chunk(2, dim=-1)
        return self.fc_out(value * F.silu(gate))
