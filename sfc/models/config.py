"""Model configuration: one frozen dataclass that fully determines a model's constructor.

Sizes follow spec §5.3, §6.1 and §7.2; `tiny` is ours, for CPU demos and tests.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any, Literal

from sfc.errors import UserError

FamilyName = Literal["sfc", "lightsaft", "mstfa_unet"]
EncoderName = Literal["band_split", "sfc_ca", "sfc_mamba"]
SeparatorName = Literal["tf_locoformer", "gru", "mstfa"]
SizeName = Literal["tiny", "small", "medium", "mdx", "mdx7", "base"]
QueryType = Literal["learnable", "adaptive"]
PosBias = Literal["none", "fixed", "learnable_slope", "learnable", "band_mask"]
Placement = Literal["middle", "start_end", "uniform"]

FAMILIES: tuple[str, ...] = ("sfc", "lightsaft", "mstfa_unet")
ENCODERS: tuple[str, ...] = ("band_split", "sfc_ca", "sfc_mamba")
SEPARATORS: tuple[str, ...] = ("tf_locoformer", "gru", "mstfa")
SIZES: tuple[str, ...] = ("tiny", "small", "medium")
# Sizes of the U-Net families (sfc/models/lightsaft.py, sfc/models/mstfa_unet.py hold their values).
FAMILY_SIZES: dict[str, tuple[str, ...]] = {
    "sfc": SIZES,
    "lightsaft": ("tiny", "mdx", "mdx7"),
    "mstfa_unet": ("tiny", "small", "base"),
}

# PAPER: spec §7.2 (TF-Locoformer small / medium).
# ASSUMPTION: `tiny` is not in the paper; it keeps every mechanism at a size a 2-core CPU trains in minutes.
SEPARATOR_DIMS: dict[str, dict[str, Any]] = {
    "tiny": dict(
        num_layers=1, dim=32, num_heads=2, ffn_hidden=32, kernel_size=4, num_groups=2, dropout=0.0
    ),
    "small": dict(
        num_layers=4, dim=96, num_heads=4, ffn_hidden=128, kernel_size=8, num_groups=4, dropout=0.1
    ),
    "medium": dict(
        num_layers=6, dim=128, num_heads=8, ffn_hidden=192, kernel_size=8, num_groups=8, dropout=0.1
    ),
}
# PAPER: spec §5.3 / §6.1: D' (d_inner) of the SFC encoders; CA uses 4 heads at both paper sizes.
SFC_DIMS: dict[str, dict[str, int]] = {
    "sfc_ca": {"tiny": 16, "small": 64, "medium": 96},
    "sfc_mamba": {"tiny": 16, "small": 32, "medium": 48},
}
CA_HEADS: dict[str, int] = {"tiny": 2, "small": 4, "medium": 4}
# PAPER: spec §4.3: SFC-CA defaults to learnable queries, SFC-Mamba to adaptive ones.
DEFAULT_QUERY: dict[str, str] = {"sfc_ca": "learnable", "sfc_mamba": "adaptive"}

_CHOICES: dict[str, tuple[Any, ...]] = {
    "family": FAMILIES,
    "encoder": ENCODERS,
    "separator": SEPARATORS,
    "query": (None, "learnable", "adaptive"),
    "pos_bias": ("none", "fixed", "learnable_slope", "learnable", "band_mask"),
    "query_placement": ("middle", "start_end", "uniform"),
}


@dataclass(frozen=True)
class ModelConfig:
    """Everything needed to build a separation model.

    Attributes:
        family: ``sfc`` (the paper's SeparationModel: STFT, encoder, separator, decoder, mask) or one of
            the baseline U-Net families ``lightsaft`` (LightSAFT-Net) and ``mstfa_unet`` (MSTFA U-Net,
            reconstructed); the U-Net families ignore encoder, separator and num_bands.
        encoder: encoder/decoder pair (`band_split`, `sfc_ca`, `sfc_mamba`).
        separator: dual-path separator (`tf_locoformer`, `gru`).
        size: separator/encoder size (`tiny`, `small`, `medium`).
        num_bands: K, the number of musical bands / compressed tokens.
        num_channels: C, audio channels (2 for MUSDB18-HQ, 1 for DnR).
        num_sources: N, separated sources.
        query: SFC query type; None picks the encoder's paper default.
        pos_bias: SFC-CA positional bias variant (spec §5.2, §11.3, §11.5).
        query_placement: SFC-Mamba query insertion (spec §6.1, §11.2).
        band_locality: False gives the band-split "no band locality" ablation (spec §11.1).
        scales: MSTFA (reconstructed) key/value pooling scales, one per head group (mstfa.md §3.2).
        attention: False removes the MSTFA blocks of the MSTFA U-Net (the "no attention" ablation).
    """

    family: FamilyName = "sfc"

    encoder: EncoderName = "sfc_ca"
    separator: SeparatorName = "tf_locoformer"
    size: SizeName = "small"
    num_bands: int = 64
    num_channels: int = 2
    num_sources: int = 4
    n_fft: int = 2048
    hop_length: int = 512
    sample_rate: int = 44100
    query: QueryType | None = None
    pos_bias: PosBias = "learnable"
    query_placement: Placement = "middle"
    band_locality: bool = True
    scales: tuple[int, ...] = (1, 2, 4)
    attention: bool = True

    def __post_init__(self) -> None:
        object.__setattr__(self, "scales", tuple(self.scales))  # a list after a JSON round trip
        if not self.scales or any(
            not isinstance(s, int) or isinstance(s, bool) or s < 1 for s in self.scales
        ):
            raise UserError(f"model config: scales must be positive integers, got {self.scales!r}")
        if self.family in FAMILY_SIZES and self.size not in FAMILY_SIZES[self.family]:
            raise UserError(
                f"model config: size={self.size!r} is not one of {FAMILY_SIZES[self.family]} "
                f"for the {self.family} family"
            )
        for key, choices in _CHOICES.items():
            if getattr(self, key) not in choices:
                raise UserError(
                    f"model config: {key}={getattr(self, key)!r} is not one of {choices}"
                )
        for key in (
            "num_bands",
            "num_channels",
            "num_sources",
            "n_fft",
            "hop_length",
            "sample_rate",
        ):
            value = getattr(self, key)
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                raise UserError(f"model config: {key} must be a positive integer, got {value!r}")
        if self.num_bands < 2 or self.num_bands > self.num_freqs:
            raise UserError(
                f"model config: num_bands={self.num_bands} must be in [2, {self.num_freqs}]"
            )

    @property
    def num_freqs(self) -> int:
        return self.n_fft // 2 + 1

    @property
    def query_type(self) -> str | None:
        """The effective query type of an SFC encoder (None for band-split)."""
        return self.query or DEFAULT_QUERY.get(self.encoder)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ModelConfig:
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise UserError(
                f"model config: unknown key(s) {unknown}; known keys are {sorted(known)}"
            )
        return cls(**data)
