"""SFC-Mamba: spectral feature compression by a bidirectional Mamba with band-aware query insertion.

PAPER: Sec. III-C; spec §6. Per frame, the K band tokens are inserted into the sequence of the F bin
tokens (default: token k immediately before bin m_k = floor((s_k + e_k) / 2) of band k = [s_k, e_k)),
and the F + K sequence is scanned by a forward and a backward Mamba block (RMSNorm -> Mamba, no
residual, separate weights). Outputs of both directions are concatenated (2D').

    encoder: bins = embedded bins E, tokens = K queries   -> tokens out (compressed), bins out (e_enc)
    decoder: bins = F queries, tokens = K compressed      -> bins out (decompressed)

No positional bias: the order is implicit in the recurrence.

Shapes (B' = B*T):
    interleaved sequence (B', F + K, D'); block outputs (B', K | F, 2D')
"""

from __future__ import annotations

import torch
from torch import nn

from sfc.bands import Band, musical_bands
from sfc.models.config import SEPARATOR_DIMS, SFC_DIMS, ModelConfig, Placement
from sfc.models.layers import RMSNorm
from sfc.models.mamba import Mamba
from sfc.models.sfc_common import BandMeanQuery, LearnableQuery, MLPQuery, SFCDecoder, SFCEncoder

# PAPER: spec §6.1 (code): mamba-ssm v1 Mamba with d_state 8, d_conv 4, expand 1, dt_rank ceil(D'/16).
MAMBA_KWARGS = dict(d_state=8, d_conv=4, expand=1, dt_rank="auto")
TensorPair = tuple[torch.Tensor, torch.Tensor]


def insert_bins(
    bands: tuple[Band, ...],
    placement: Placement = "middle",
    num_freqs: int | None = None,
    decoder: bool = False,
) -> TensorPair:
    """The bin before which each band token is inserted, for the forward and the backward scan.

    Bins are indices in low-to-high order; F (= num_freqs) means "after the last bin".

    Args:
        bands: K half-open bin ranges [s_k, e_k).
        placement: "middle": before m_k = floor((s_k + e_k) / 2) in both scans (spec §6.1, default).
            "start_end": encoder forward scan after the last bin of band k (before e_k), backward scan
            before its first bin (before s_k, which the backward scan reads last); the decoder swaps
            them so that each scan meets token k before the bins of band k (spec §14 item 11).
            "uniform": K evenly spaced bins, independent of the band layout (BIMBA-like ablation).
        num_freqs: F; defaults to the end of the last band.
        decoder: the decoder's layout (matters for "start_end" only).

    Returns:
        (forward, backward) long tensors of shape (K,).
    """
    num_freqs = bands[-1][1] if num_freqs is None else num_freqs
    # index arithmetic stays on the CPU, also when a model is built under torch.device("meta")
    starts = torch.tensor([s for s, _ in bands], device="cpu")  # (K,)
    ends = torch.tensor([e for _, e in bands], device="cpu")  # (K,)
    if placement == "middle":
        middle = (starts + ends) // 2  # (K,)
        return middle, middle
    if placement == "start_end":
        return (starts, ends) if decoder else (ends, starts)
    if placement == "uniform":
        # ASSUMPTION: spec §11.2 gives no formula; BIMBA inserts queries at fixed intervals, so token
        # k goes before the centre bin floor((k + 1/2) F / K) of the k-th of K equal bin ranges.
        k = torch.arange(len(bands), device="cpu")
        uniform = ((2 * k + 1) * num_freqs) // (2 * len(bands))  # (K,)
        return uniform, uniform
    raise ValueError(f"unknown query placement {placement!r}")


def positions_from_bins(bins: torch.Tensor) -> torch.Tensor:
    """Index of each token in the interleaved F + K sequence, given its insertion bin.

    A token sits after every bin below its insertion bin and after the tokens inserted before it
    (ties keep token order), so for non-decreasing bins the position of token k is bins[k] + k.
    """
    order = torch.argsort(bins, stable=True)
    positions = torch.empty_like(bins)
    positions[order] = bins[order] + torch.arange(len(bins), device=bins.device)
    return positions  # (K,)


def query_positions(
    bands: tuple[Band, ...],
    placement: Placement = "middle",
    num_freqs: int | None = None,
    decoder: bool = False,
) -> TensorPair:
    """Positions of the K band tokens in the (forward, backward) interleaved sequences of length F + K.

    Positions index the sequence in low-to-high order for both scans (the backward scan reads it
    flipped). Arguments as in ``insert_bins``; for "middle" the position of token k is m_k + k.
    """
    fwd, bwd = insert_bins(bands, placement, num_freqs, decoder)
    return positions_from_bins(fwd), positions_from_bins(bwd)


class Interleave(nn.Module):
    """Merge F bin tokens and K band tokens into one scan-ordered sequence, and split it back.

    Args:
        positions: (K,) positions of the band tokens in the low-to-high sequence of length F + K.
        num_bins: F.
        reverse: give the sequence in high-to-low (backward scan) order; the flip is folded into
            the gather indices.

    Shapes:
        merge(bins (B', F, D), tokens (B', K, D)) -> (B', F + K, D)
        split(seq (B', F + K, D)) -> (bins (B', F, D), tokens (B', K, D)), both low-to-high
    """

    def __init__(self, positions: torch.Tensor, num_bins: int, reverse: bool = False) -> None:
        super().__init__()
        positions = positions.to("cpu")
        total, cpu = num_bins + len(positions), torch.device("cpu")
        is_token = torch.zeros(total, dtype=torch.bool, device=cpu)
        is_token[positions] = True
        if int(is_token.sum()) != len(positions):
            raise ValueError("band token positions must be distinct")
        bin_pos = (~is_token).nonzero().squeeze(1)  # (F,)
        source = torch.empty(total, dtype=torch.long, device=cpu)  # index into cat([bins, tokens])
        source[bin_pos] = torch.arange(num_bins, device=cpu)
        source[positions] = num_bins + torch.arange(len(positions), device=cpu)
        if reverse:
            source, bin_pos, positions = source.flip(0), total - 1 - bin_pos, total - 1 - positions
        device = torch.get_default_device()  # meta under torch.device("meta"), as the parameters
        self.register_buffer("source", source.to(device), persistent=False)
        self.register_buffer("bin_index", bin_pos.to(device), persistent=False)
        self.register_buffer("token_index", positions.to(device, copy=True), persistent=False)

    def merge(self, bins: torch.Tensor, tokens: torch.Tensor) -> torch.Tensor:
        return torch.cat([bins, tokens], dim=1).index_select(1, self.source)  # (B', F+K, D)

    def split(self, seq: torch.Tensor) -> TensorPair:
        return seq.index_select(1, self.bin_index), seq.index_select(1, self.token_index)


# PAPER: Sec. III-C
class MambaScan(nn.Module):
    """One scan direction: RMSNorm -> Mamba, no residual (spec §6.1).

    Shapes:
        forward(seq (B', L, D')) -> (B', L, D')
    """

    def __init__(self, dim: int) -> None:
        super().__init__()
        self.norm = RMSNorm(dim)
        self.mamba = Mamba(dim, **MAMBA_KWARGS)

    def forward(self, seq: torch.Tensor) -> torch.Tensor:
        return self.mamba(self.norm(seq))  # (B', L, D')


# PAPER: Sec. III-C
class BiMambaInterleaved(nn.Module):
    """Bidirectional Mamba over bins interleaved with band tokens; each direction has its own layout.

    Spec §6.1.

    Args:
        dim: D'.
        positions: (forward, backward) token positions from ``query_positions``.
        num_bins: F.

    Shapes:
        forward(bins (B' | 1, F, D'), tokens (B' | 1, K, D')) -> (bins (B', F, 2D'), tokens (B', K, 2D'))
    """

    def __init__(self, dim: int, positions: TensorPair, num_bins: int) -> None:
        super().__init__()
        self.forward_layout = Interleave(positions[0], num_bins)
        self.backward_layout = Interleave(positions[1], num_bins, reverse=True)
        self.forward_scan = MambaScan(dim)
        self.backward_scan = MambaScan(dim)

    @staticmethod
    def _scan(
        layout: Interleave, scan: MambaScan, bins: torch.Tensor, tokens: torch.Tensor
    ) -> TensorPair:
        seq = scan(layout.merge(bins, tokens))  # (B', F+K, D') in scan order
        return layout.split(seq)  # (B', F, D'), (B', K, D')

    def forward(self, bins: torch.Tensor, tokens: torch.Tensor) -> TensorPair:
        batch = max(bins.shape[0], tokens.shape[0])
        bins = bins.expand(batch, -1, -1)  # (B', F, D')
        tokens = tokens.expand(batch, -1, -1)  # (B', K, D')
        fwd = self._scan(self.forward_layout, self.forward_scan, bins, tokens)
        bwd = self._scan(self.backward_layout, self.backward_scan, bins, tokens)
        bins_out = torch.cat([fwd[0], bwd[0]], dim=-1)  # (B', F, 2D')
        tokens_out = torch.cat([fwd[1], bwd[1]], dim=-1)  # (B', K, 2D')
        return bins_out, tokens_out


# PAPER: Sec. III-C
class MambaEncoderBlock(BiMambaInterleaved):
    """Compressor: K queries read the F bins; bin outputs are kept for adaptive decoder queries.

    Shapes:
        forward(e (B', F, D'), queries (B' | 1, K, D')) -> (z (B', K, 2D'), e_enc (B', F, 2D') | None)
    """

    def __init__(self, dim: int, positions: TensorPair, num_bins: int, return_bins: bool = True):
        super().__init__(dim, positions, num_bins)
        self.return_bins = return_bins

    def forward(self, e: torch.Tensor, queries: torch.Tensor):  # type: ignore[override]
        bins_out, tokens_out = super().forward(e, queries)
        return tokens_out, (bins_out if self.return_bins else None)


# PAPER: Sec. III-C
class MambaDecoderBlock(BiMambaInterleaved):
    """Decompressor: the F queries at the bin positions read the K compressed tokens.

    Shapes:
        forward(h (B', K, D'), queries (B' | 1, F, D')) -> (B', F, 2D')
    """

    def forward(self, h: torch.Tensor, queries: torch.Tensor) -> torch.Tensor:  # type: ignore[override]
        return super().forward(queries, h)[0]


def build(config: ModelConfig) -> tuple[SFCEncoder, SFCDecoder]:
    """SFC-Mamba encoder/decoder for a ModelConfig (encoder == "sfc_mamba")."""
    dim, inner = SEPARATOR_DIMS[config.size]["dim"], SFC_DIMS["sfc_mamba"][config.size]
    num_freqs, placement = config.num_freqs, config.query_placement
    bands = musical_bands(config.num_bands, config.n_fft, config.sample_rate)
    adaptive = config.query_type == "adaptive"
    enc_positions = query_positions(bands, placement, num_freqs)
    dec_positions = query_positions(bands, placement, num_freqs, decoder=True)
    enc_block = MambaEncoderBlock(inner, enc_positions, num_freqs, return_bins=adaptive)
    dec_block = MambaDecoderBlock(inner, dec_positions, num_freqs)
    if adaptive:
        enc_query, dec_query = BandMeanQuery(bands, num_freqs), MLPQuery(2 * inner, inner)
    else:
        enc_query = LearnableQuery(config.num_bands, inner)
        dec_query = LearnableQuery(num_freqs, inner)
    channels, sources = config.num_channels, config.num_sources
    encoder = SFCEncoder(channels, dim, inner, 2 * inner, enc_block, enc_query)
    decoder = SFCDecoder(channels, sources, dim, inner, 2 * inner, dec_block, dec_query)
    return encoder, decoder
