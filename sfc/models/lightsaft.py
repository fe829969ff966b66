"""LightSAFT-Net: a one-hot conditioned TFC U-Net with Latent Source-Aware Frequency Transforms.

PAPER: Jeong, Kim, Choi, Chung, Jung, "LightSAFT" (MDX'21); every value from the authors' released code
as read in ../shared/spec/lightsaft.md §2-§3 (`dcun_tfc_gpocm_lightsaft.py`, `LaSAFT.py`
`TFC_LightSAFT`, `control_models.py`, `PoCM_utils.py`). Released configuration (size ``mdx``): 9 blocks,
4,159,844 parameters; ``mdx7`` is the 7-block sibling branch (3,874,324, probably the paper's "3.8 M").

One forward pass separates the one stem named by ``cond`` (an index into the task's source order);
without ``cond`` the wrapper (sfc/models/unet.py) runs all N stems as one batch of B·N passes.

DEVIATION: the condition index follows the pipeline's source order (bass, drums, vocals, other), not
the authors' (vocals, drums, bass, other); it only matters for loading their checkpoint.

Shapes (B batch, D = internal channels, T frames, f frequency size of a level, S latent sources,
b = max(f // 16, 16) features per latent source, E embedding size):
    network(x (B, 2C, T, F), cond (B,)) -> (B, 2C, T, F)
"""

from __future__ import annotations

import math
from typing import Any

import torch
from torch import nn

from sfc.errors import UserError
from sfc.models.config import ModelConfig
from sfc.models.unet import TFC, SpectrogramUNetModel, down, first_conv, last_conv, up, xavier_init

# PAPER: lightsaft.md §3 `__define_small_params__` (mdx) and branch `lightsaft4dmx` (mdx7).
# ASSUMPTION: `tiny` is ours, for CPU demos and tests (every mechanism, 2 levels, narrow).
LIGHTSAFT_DIMS: dict[str, dict[str, Any]] = {
    "mdx": dict(num_blocks=9, channels=16, num_tfc_layers=5, num_latent=16, dk=64, emb_dim=64),
    "mdx7": dict(num_blocks=7, channels=16, num_tfc_layers=5, num_latent=16, dk=64, emb_dim=64),
    "tiny": dict(num_blocks=5, channels=8, num_tfc_layers=2, num_latent=4, dk=16, emb_dim=16),
}


class LightSAFT(nn.Module):
    """Latent source-aware frequency transform, light version (shared synthesis).

    PAPER: lightsaft.md §3 "LightSAFT block": analysis Linear(f -> S·b) + BN2d + ReLU; attention weights
    alpha = softmax_S(q^T K / sqrt(d_k)) from the condition embedding only; mix the S groups; synthesis
    Linear(b -> f) + BN2d + ReLU. The caller adds the result to x.

    Shapes:
        x (B, D, T, f), emb (B, E) -> (B, D, T, f)
    """

    def __init__(
        self,
        channels: int,
        freqs: int,
        num_latent: int = 16,
        dk: int = 64,
        emb_dim: int = 64,
        bn_factor: int = 16,
        min_bn_units: int = 16,
    ) -> None:
        super().__init__()
        self.num_latent = num_latent
        self.bn_units = max(freqs // bn_factor, min_bn_units)
        self.analysis = nn.Sequential(
            nn.Linear(freqs, num_latent * self.bn_units, bias=False),
            nn.BatchNorm2d(channels),
            nn.ReLU(),
        )
        self.synthesis = nn.Sequential(
            nn.Linear(self.bn_units, freqs, bias=False), nn.BatchNorm2d(channels), nn.ReLU()
        )
        self.query = nn.Linear(emb_dim, dk)
        self.keys = nn.Parameter(torch.randn(dk, num_latent))  # input-independent, (d_k, S)

    def weights(self, emb: torch.Tensor) -> torch.Tensor:
        """alpha (B, S): depends only on the condition embedding (B, E)."""
        logits = self.query(emb) @ self.keys / math.sqrt(self.keys.shape[0])  # (B, S)
        return logits.softmax(dim=-1)

    def forward(self, x: torch.Tensor, emb: torch.Tensor) -> torch.Tensor:
        feats = self.analysis(x)  # (B, D, T, S·b)
        feats = feats.unflatten(-1, (self.num_latent, self.bn_units))  # (B, D, T, S, b)
        alpha = self.weights(emb).to(feats.dtype)  # (B, S)
        mixed = torch.einsum("bdtsk,bs->bdtk", feats, alpha)  # (B, D, T, b)
        return self.synthesis(mixed)  # (B, D, T, f)


class ConditionControl(nn.Module):
    """Condition MLP and the GPoCM Γ/β heads, one (D×D, D) pair per decoder level.

    PAPER: lightsaft.md §3 "Condition path" (`dense_control_block`, 64 -> 128 -> 256 -> 512, Dropout
    0.5 and BN1d after the second and third linear layers; heads end in affine-free BN1d).

    Shapes:
        emb (B, E) -> gammas: list of (B, D, D) (row = input channel), betas: list of (B, D)
    """

    def __init__(self, emb_dim: int, channels: int, num_levels: int, dropout: float = 0.5):
        super().__init__()
        widths = [emb_dim, 2 * emb_dim, 4 * emb_dim, 8 * emb_dim]
        layers: list[nn.Module] = [nn.Linear(widths[0], widths[1]), nn.ReLU()]
        for i in (1, 2):
            layers += [
                nn.Linear(widths[i], widths[i + 1]),
                nn.ReLU(),
                nn.Dropout(dropout),
                nn.BatchNorm1d(widths[i + 1]),
            ]
        self.mlp = nn.Sequential(*layers)
        self.channels, self.num_levels = channels, num_levels
        self.gamma = nn.Sequential(
            nn.Linear(widths[-1], num_levels * channels * channels),
            nn.BatchNorm1d(num_levels * channels * channels, affine=False),
        )
        self.beta = nn.Sequential(
            nn.Linear(widths[-1], num_levels * channels),
            nn.BatchNorm1d(num_levels * channels, affine=False),
        )

    def forward(self, emb: torch.Tensor) -> tuple[list[torch.Tensor], list[torch.Tensor]]:
        h = self.mlp(emb)  # (B, 8E)
        d = self.channels
        gammas = self.gamma(h).view(-1, self.num_levels, d, d)  # (B, levels, D, D)
        betas = self.beta(h).view(-1, self.num_levels, d)  # (B, levels, D)
        return list(gammas.unbind(1)), list(betas.unbind(1))


def gpocm(x: torch.Tensor, gamma: torch.Tensor, beta: torch.Tensor) -> torch.Tensor:
    """Gated point-wise convolutional modulation: x * sigmoid(Σ_c x[c] Γ[c, c'] + β[c']).

    Shapes:
        x (B, D, T, f), gamma (B, D, D), beta (B, D) -> (B, D, T, f)
    """
    pocm = torch.einsum("bctf,bcd->bdtf", x, gamma.to(x.dtype)) + beta.to(x.dtype)[..., None, None]
    return x * torch.sigmoid(pocm)


class LightSAFTNet(SpectrogramUNetModel):
    """LightSAFT-Net on the complex-as-channels STFT (mapping output).

    PAPER: lightsaft.md §3 (forward order of `dcun_tfc_gpocm_lightsaft.py`): encoder levels
    TFC -> x + LightSAFT -> skip -> Down (not gated); middle TFC -> x + LightSAFT; decoder levels
    Up -> concat skip -> TFC -> GPoCM gate -> x + LightSAFT; last conv to 2C channels.

    Args:
        config: model config (family ``lightsaft``; size ``mdx``, ``mdx7`` or ``tiny``).
        num_blocks, channels, num_tfc_layers, num_latent, dk, emb_dim: override LIGHTSAFT_DIMS.
    """

    conditioned = True

    def __init__(self, config: ModelConfig, **overrides: Any) -> None:
        dims = {**LIGHTSAFT_DIMS[config.size], **overrides}
        num_blocks, d = dims["num_blocks"], dims["channels"]
        if num_blocks % 2 != 1 or num_blocks < 3:
            raise UserError(f"LightSAFT-Net needs an odd number of blocks >= 3, got {num_blocks}")
        num_down = num_blocks // 2
        super().__init__(config, num_down)
        freqs = [(config.n_fft // 2) >> i for i in range(num_down + 1)]  # 1024, 512, ..., f_mid
        saft = dict(num_latent=dims["num_latent"], dk=dims["dk"], emb_dim=dims["emb_dim"])
        layers = dims["num_tfc_layers"]
        in_ch = 2 * config.num_channels
        self.embedding = nn.Embedding(config.num_sources, dims["emb_dim"])
        self.first = first_conv(in_ch, d)
        self.enc_tfc = nn.ModuleList(TFC(d, d, layers) for _ in range(num_down))
        self.enc_saft = nn.ModuleList(LightSAFT(d, f, **saft) for f in freqs[:-1])
        self.downs = nn.ModuleList(down(d) for _ in range(num_down))
        self.mid_tfc = TFC(d, d, layers)
        self.mid_saft = LightSAFT(d, freqs[-1], **saft)
        self.ups = nn.ModuleList(up(d) for _ in range(num_down))
        self.dec_tfc = nn.ModuleList(TFC(2 * d, d, layers) for _ in range(num_down))
        self.dec_saft = nn.ModuleList(LightSAFT(d, f, **saft) for f in reversed(freqs[:-1]))
        self.control = ConditionControl(dims["emb_dim"], d, num_down)
        self.last = last_conv(d, in_ch)
        xavier_init(self)

    def network(self, x: torch.Tensor, cond: torch.Tensor | None) -> torch.Tensor:
        if cond is None or cond.dim() != 1 or cond.shape[0] != x.shape[0]:
            raise UserError(f"LightSAFT-Net needs one condition per example, got {cond!r}")
        if self.training and x.shape[0] > 1 and bool((cond == cond[0]).all()):
            # The Γ/β heads end in affine-free BatchNorm: one condition per batch normalises them to 0.
            raise UserError(
                "LightSAFT-Net training batch holds a single condition; every training batch must mix "
                "conditions (the GPoCM heads batch-normalise over the batch)"
            )
        emb = self.embedding(cond)  # (B, E)
        gammas, betas = self.control(emb)  # lists of (B, D, D), (B, D)
        x = self.first(x)  # (B, D, T, F-1)
        skips = []
        for tfc, saft, dn in zip(self.enc_tfc, self.enc_saft, self.downs):
            x = tfc(x)  # (B, D, T, f)
            x = x + saft(x, emb)
            skips.append(x)
            x = dn(x)  # (B, D, T/2, f/2)
        x = self.mid_tfc(x)
        x = x + self.mid_saft(x, emb)
        for i, (upsample, tfc, saft) in enumerate(zip(self.ups, self.dec_tfc, self.dec_saft)):
            x = torch.cat([upsample(x), skips.pop()], dim=1)  # (B, 2D, 2T, 2f)
            x = tfc(x)  # (B, D, T, f)
            x = gpocm(x, gammas[i], betas[i])
            x = x + saft(x, emb)
        return self.last(x)  # (B, 2C, T, F)


def build(config: ModelConfig) -> LightSAFTNet:
    return LightSAFTNet(config)
