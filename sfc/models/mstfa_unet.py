"""MSTFA (reconstructed) U-Net: the dedicated host network of mstfa.md §3.2 (host U).

NOT the paper's model: every value is an ASSUMPTION of ../shared/spec/mstfa.md (only the abstract of
arXiv 2209.00805 is public). Label every result "MSTFA (reconstructed)".

An unconditioned TFC-TDF U-Net on the complex-as-channels STFT (n_fft 2048, hop 1024, all frames,
mapping output; the LightSAFT-Net front end of sfc/models/unet.py), with an MSTFA block (D = C) after
every TFC-TDF block, so attention runs at every level ("multi-scale" by depth as well as by K/V
pooling). ``attention=False`` drops the MSTFA blocks (the "no attention" ablation); ``scales=(1,)``
is the "no multi-scale" ablation. A dedicated model outputs one target (N = 1).

Shapes:
    network(x (B, 2C, T, F), None) -> (B, N·2C, T, F)
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from sfc.models.config import ModelConfig
from sfc.models.mstfa import MSTFABlock
from sfc.models.unet import TDF, TFC, SpectrogramUNetModel, down, first_conv, last_conv, up

# ASSUMPTION (mstfa.md §3.2): base C = D = 48, H = 6 (2 heads per scale); small C = D = 24, H = 3
# (the spec's low-memory fallback); MSTFA blocks at every level (attn_levels None). tiny is ours, for
# CPU demos and tests: attention only on the 2 innermost levels (the middle and the f = 512 levels),
# since frequency attention over 1,024 bins costs ~10x the rest of the tiny model on a CPU.
MSTFA_UNET_DIMS: dict[str, dict[str, Any]] = {
    "base": dict(num_blocks=9, channels=48, num_heads=6, num_tfc_layers=5, attn_levels=None),
    "small": dict(num_blocks=9, channels=24, num_heads=3, num_tfc_layers=5, attn_levels=None),
    "tiny": dict(num_blocks=5, channels=12, num_heads=3, num_tfc_layers=2, attn_levels=2),
}


class MSTFAUNet(SpectrogramUNetModel):
    """TFC-TDF U-Net with MSTFA blocks (reconstruction).

    Args:
        config: model config (family ``mstfa_unet``; ``scales`` and ``attention`` are the ablations).
        num_blocks, channels, num_heads, num_tfc_layers, attn_levels: override MSTFA_UNET_DIMS
            (attn_levels: MSTFA blocks only on this many innermost levels, the middle counting as
            one; None = every level).
    """

    def __init__(self, config: ModelConfig, **overrides: Any) -> None:
        dims = {**MSTFA_UNET_DIMS[config.size], **overrides}
        num_down, d = dims["num_blocks"] // 2, dims["channels"]
        super().__init__(config, num_down)
        freqs = [(config.n_fft // 2) >> i for i in range(num_down + 1)]
        layers, in_ch = dims["num_tfc_layers"], 2 * config.num_channels
        inner = num_down + 1 if dims["attn_levels"] is None else dims["attn_levels"]

        def level(in_channels: int, f: int) -> nn.Sequential:
            depth = freqs.index(f)  # 0 = outermost level, num_down = middle
            attn = (
                MSTFABlock(d, dims["num_heads"], config.scales)
                if config.attention and depth > num_down - inner
                else nn.Identity()
            )
            return nn.Sequential(TFC(in_channels, d, layers), TDF(d, f), attn)

        self.first = first_conv(in_ch, d)
        self.encoders = nn.ModuleList(level(d, f) for f in freqs[:-1])
        self.downs = nn.ModuleList(down(d) for _ in range(num_down))
        self.middle = level(d, freqs[-1])
        self.ups = nn.ModuleList(up(d) for _ in range(num_down))
        self.decoders = nn.ModuleList(level(2 * d, f) for f in reversed(freqs[:-1]))
        self.last = last_conv(d, in_ch * config.num_sources)

    def network(self, x: torch.Tensor, cond: torch.Tensor | None) -> torch.Tensor:
        x = self.first(x)  # (B, D, T, F-1)
        skips = []
        for enc, dn in zip(self.encoders, self.downs):
            x = enc(x)  # (B, D, T, f)
            skips.append(x)
            x = dn(x)  # (B, D, T/2, f/2)
        x = self.middle(x)
        for upsample, dec in zip(self.ups, self.decoders):
            x = dec(torch.cat([upsample(x), skips.pop()], dim=1))  # (B, D, T, f)
        return self.last(x)  # (B, N·2C, T, F)


def build(config: ModelConfig) -> MSTFAUNet:
    return MSTFAUNet(config)
