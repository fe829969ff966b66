"""GRU dual-path separator for the separator-swap table.

PAPER: Sec. V (TF-Locoformer replaced by a GRU-based dual-path model); the configuration is not
given. ASSUMPTION (spec §14 item 9): BSRNN-style paths, each RMSGroupNorm -> BiGRU (hidden D) ->
Linear(2D -> D) with a residual, frequency path then time path, the same number of layers L and width D
as the TF-Locoformer of the same size.
"""

from __future__ import annotations

import torch
from torch import nn

from sfc.models.config import SEPARATOR_DIMS, ModelConfig
from sfc.models.tf_locoformer import RMSGroupNorm, along_freq, along_time


class GRUPath(nn.Module):
    """Pre-normed bidirectional GRU with a linear projection and a residual.

    Shapes:
        x (B', S, D) -> (B', S, D)
    """

    def __init__(self, dim: int, num_groups: int) -> None:
        super().__init__()
        self.norm = RMSGroupNorm(num_groups, dim)
        self.gru = nn.GRU(dim, dim, batch_first=True, bidirectional=True)
        self.proj = nn.Linear(2 * dim, dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h, _ = self.gru(self.norm(x))  # (B', S, 2D)
        return x + self.proj(h)


class GRUSeparator(nn.Module):
    """Dual-path BiGRU stack.

    Shapes:
        z (B, D, T, K) -> (B, D, T, K)
    """

    def __init__(self, num_layers: int = 4, dim: int = 96, num_groups: int = 4) -> None:
        super().__init__()
        self.freq_paths = nn.ModuleList(GRUPath(dim, num_groups) for _ in range(num_layers))
        self.time_paths = nn.ModuleList(GRUPath(dim, num_groups) for _ in range(num_layers))

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        for freq_path, time_path in zip(self.freq_paths, self.time_paths):
            z = along_freq(freq_path, z)
            z = along_time(time_path, z)
        return z


def build(config: ModelConfig) -> GRUSeparator:
    dims = SEPARATOR_DIMS[config.size]
    return GRUSeparator(dims["num_layers"], dims["dim"], dims["num_groups"])
