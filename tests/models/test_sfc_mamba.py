"""SFC-Mamba: query insertion (spec §6.1, §14 item 11), bidirectionality, sizes, shape/gradient contract."""

from __future__ import annotations

import pytest
import torch

from sfc.bands import musical_bands
from sfc.models.config import ModelConfig
from sfc.models.sfc_mamba import (
    BiMambaInterleaved,
    Interleave,
    MambaEncoderBlock,
    build,
    insert_bins,
    query_positions,
)

# PAPER: spec §6.1: m_k = floor((s_k + e_k) / 2) for the K = 64 musical bands (code prepare_query_indices).
SPEC_MIDDLES_K64 = [
    1, 2, 2, 2, 2, 2, 2, 2, 3, 3, 3, 4, 4, 4, 5, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 16, 18, 20, 22, 25,
    28, 31, 34, 38, 42, 48, 53, 59, 66, 74, 82, 92, 103, 114, 128, 142, 159, 178, 198, 221, 247, 275,
    307, 343, 383, 428, 477, 532, 595, 663, 741, 827, 923, 971,
]  # fmt: skip
F_BINS = 1025


pytestmark = pytest.mark.usefixtures("one_thread")


def scan_order(positions: torch.Tensor, num_bins: int, reverse: bool) -> list[str]:
    """The sequence a scan reads, as labels 'b<f>' / 'q<k>', via Interleave.merge."""
    layout = Interleave(positions, num_bins, reverse)
    bins = torch.arange(num_bins, dtype=torch.float32).view(1, -1, 1)
    tokens = -1.0 - torch.arange(len(positions), dtype=torch.float32).view(1, -1, 1)
    seq = layout.merge(bins, tokens).flatten().tolist()
    return [f"b{int(v)}" if v >= 0 else f"q{int(-v - 1)}" for v in seq]


def bins_read_before(order: list[str], k: int) -> list[int]:
    """Bins the scan has read when it reaches token k."""
    return [int(x[1:]) for x in order[: order.index(f"q{k}")] if x[0] == "b"]


def test_middle_positions_match_the_spec():
    bands = musical_bands(64)
    fwd_bins, bwd_bins = insert_bins(bands, "middle")
    assert fwd_bins.tolist() == SPEC_MIDDLES_K64 == bwd_bins.tolist()
    fwd, bwd = query_positions(bands)  # "middle" is the default
    expected = [m + k for k, m in enumerate(SPEC_MIDDLES_K64)]
    assert fwd.tolist() == bwd.tolist() == expected
    assert query_positions(bands, decoder=True)[0].tolist() == expected
    order = scan_order(fwd, F_BINS, reverse=False)
    assert len(order) == F_BINS + 64
    for k, m in enumerate(SPEC_MIDDLES_K64):
        assert bins_read_before(order, k) == list(range(m))  # token k sits right before bin m_k


def test_start_end_positions_see_the_whole_band():
    """Spec §14 item 11: encoder forward after band k, backward (reading high-to-low) after its start."""
    bands = musical_bands(64)
    enc_fwd, enc_bwd = query_positions(bands, "start_end", F_BINS)
    dec_fwd, dec_bwd = query_positions(bands, "start_end", F_BINS, decoder=True)
    assert torch.equal(dec_fwd, query_positions(bands, "start_end", F_BINS)[1])  # mirrored
    fwd_order = scan_order(enc_fwd, F_BINS, reverse=False)
    bwd_order = scan_order(enc_bwd, F_BINS, reverse=True)
    dec_fwd_order = scan_order(dec_fwd, F_BINS, reverse=False)
    dec_bwd_order = scan_order(dec_bwd, F_BINS, reverse=True)
    for k, (start, end) in enumerate(bands):
        assert bins_read_before(fwd_order, k) == list(range(end))  # read up to the band's last bin
        assert bins_read_before(bwd_order, k) == list(range(F_BINS - 1, start - 1, -1))
        assert bins_read_before(dec_fwd_order, k) == list(range(start))  # token before the band
        assert bins_read_before(dec_bwd_order, k) == list(range(F_BINS - 1, end - 1, -1))


def test_uniform_positions_ignore_the_band_layout():
    bins_64, _ = insert_bins(musical_bands(64), "uniform", F_BINS)
    fake_bands = tuple((16 * k, 16 * k + 1) for k in range(63)) + ((1000, F_BINS),)
    assert torch.equal(insert_bins(fake_bands, "uniform", F_BINS)[0], bins_64)
    gaps = set(bins_64.diff().tolist())
    assert gaps <= {16, 17} and 0 < int(bins_64[0]) < 16 and int(bins_64[-1]) < F_BINS
    fwd, bwd = query_positions(musical_bands(64), "uniform", F_BINS)
    assert torch.equal(fwd, bwd) and torch.equal(fwd, bins_64 + torch.arange(64))


@pytest.mark.parametrize("reverse", [False, True])
def test_interleave_round_trip(reverse):
    positions = query_positions(musical_bands(8, n_fft=64))[0]
    layout = Interleave(positions, 33, reverse)
    bins, tokens = torch.randn(2, 33, 3), torch.randn(2, 8, 3)
    seq = layout.merge(bins, tokens)
    assert seq.shape == (2, 41, 3)
    natural = seq.flip(1) if reverse else seq
    assert torch.equal(natural[:, positions], tokens)
    out_bins, out_tokens = layout.split(seq)
    assert torch.equal(out_bins, bins) and torch.equal(out_tokens, tokens)


def test_backward_scan_is_the_forward_scan_of_the_flipped_sequence():
    """Flip the input and swap the two scans' weights: the output halves swap and flip."""
    dim, positions = 4, torch.tensor([2, 9])  # symmetric layout: 11 - {2, 9} = {9, 2}
    block = BiMambaInterleaved(dim, (positions, positions), num_bins=10)
    swapped = BiMambaInterleaved(dim, (positions, positions), num_bins=10)
    swapped.forward_scan.load_state_dict(block.backward_scan.state_dict())
    swapped.backward_scan.load_state_dict(block.forward_scan.state_dict())
    bins, tokens = torch.randn(3, 10, dim), torch.randn(3, 2, dim)
    out_bins, out_tokens = block(bins, tokens)
    flip_bins, flip_tokens = swapped(bins.flip(1), tokens.flip(1))
    for out, flipped in ((out_bins, flip_bins), (out_tokens, flip_tokens)):
        assert out.shape[-1] == 2 * dim
        torch.testing.assert_close(flipped.flip(1), torch.cat([out[..., dim:], out[..., :dim]], -1))


def bin_sensitivity(out: torch.Tensor, bins: torch.Tensor) -> torch.Tensor:
    """sum |d out / d bins| per bin, shape (F,)."""
    return torch.autograd.grad(out.sum(), bins, retain_graph=True)[0][0].abs().sum(-1)


@pytest.mark.parametrize("placement", ["middle", "start_end"])
def test_each_direction_reads_only_its_side(placement):
    """Forward half of token k depends on bins before its slot only; backward half on bins after it."""
    bands = musical_bands(8, n_fft=64)  # F = 33
    fwd_bins, bwd_bins = insert_bins(bands, placement)
    block = MambaEncoderBlock(4, query_positions(bands, placement), num_bins=33)
    bins = torch.randn(1, 33, 4, requires_grad=True)
    tokens, _ = block(bins, torch.randn(1, 8, 4))  # (1, K, 8)
    for k in (2, 5):
        g_fwd, g_bwd = (
            bin_sensitivity(tokens[0, k, half], bins) for half in (slice(0, 4), slice(4, 8))
        )
        m_f, m_b = int(fwd_bins[k]), int(bwd_bins[k])
        assert g_fwd[m_f:].max() == 0 and g_fwd[m_f - 1] > 0
        assert g_bwd[:m_b].max() == 0 and g_bwd[m_b] > 0


@pytest.mark.parametrize(("size", "paper_params"), [("small", 0.123e6), ("medium", 0.242e6)])
def test_parameter_count_matches_the_paper(size, paper_params):
    """Spec §6.3: SFC-Mamba enc + dec on MUSDB (C = 2, N = 4, K = 64): 0.123 M small, 0.242 M medium."""
    with torch.device("meta"):  # also checks that the build works on meta (parameter counting)
        encoder, decoder = build(ModelConfig(encoder="sfc_mamba", size=size))
    count = sum(p.numel() for m in (encoder, decoder) for p in m.parameters())
    assert abs(count - paper_params) / paper_params < 0.005, count


@pytest.mark.parametrize("query", [None, "learnable"])
def test_encoder_decoder_shape_and_gradient_contract(query):
    config = ModelConfig(encoder="sfc_mamba", size="small", query=query)  # None: adaptive (default)
    encoder, decoder = build(config)
    x = torch.randn(1, 4, 4, F_BINS)  # (B, 2C, T, F)
    z, aux = encoder(x)
    assert z.shape == (1, 96, 4, 64)  # (B, D, T, K)
    assert (aux is None) == (query == "learnable")
    if aux is not None:
        assert aux.shape == (4, F_BINS, 64)  # (B*T, F, 2D')
    mask = decoder(z, aux)
    assert mask.shape == (1, 16, 4, F_BINS)  # (B, 2NC, T, F)
    mask.square().mean().backward()
    for name, p in [*encoder.named_parameters(), *decoder.named_parameters()]:
        assert p.grad is not None and torch.isfinite(p.grad).all(), name
        assert p.grad.abs().sum() > 0, name


@pytest.mark.parametrize("placement", ["start_end", "uniform"])
def test_placement_variants_build_and_run(placement):
    config = ModelConfig(encoder="sfc_mamba", size="tiny", num_bands=16, query_placement=placement)
    encoder, decoder = build(config)
    z, aux = encoder(torch.randn(1, 4, 2, F_BINS))
    assert decoder(z, aux).shape == (1, 16, 2, F_BINS)
