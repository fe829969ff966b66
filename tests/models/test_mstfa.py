"""MSTFA (reconstructed, spec mstfa.md): block contracts, ablation switches, both hosts, ids."""

from __future__ import annotations

import pytest
import torch

from sfc.errors import UserError
from sfc.experiments import parse_experiment
from sfc.models import build_model, load_model, model_checkpoint
from sfc.models.mstfa import MSTFABlock, MultiScaleAttention, head_scales, rotate
from sfc.models.mstfa_unet import MSTFAUNet


def test_block_builds_with_defaults_and_matches_the_parameter_formula():
    block = MSTFABlock()
    assert sum(p.numel() for p in block.parameters()) == 12 * 48**2 + 17 * 48 == 28_464
    for dim in (12, 24):
        count = sum(p.numel() for p in MSTFABlock(dim, 3).parameters())
        assert count == 12 * dim**2 + 17 * dim


@pytest.mark.parametrize("frames, freqs", [(7, 5), (9, 13), (1, 3)])
def test_block_preserves_shape_for_odd_lengths(frames, freqs):
    x = torch.randn(2, 12, frames, freqs)
    assert MSTFABlock(12, 3).eval()(x).shape == x.shape


def test_single_scale_is_plain_rotary_axial_attention():
    """scales (1,): every head attends to all keys at full resolution (hand-written reference)."""
    torch.manual_seed(0)
    attn = MultiScaleAttention(16, 2, scales=(1,))
    x = torch.randn(3, 11, 16)
    q, k, v = attn.qkv(x).view(3, 11, 3, 2, 8).unbind(2)
    q, k, v = (t.transpose(1, 2) for t in (q, k, v))
    pos = torch.arange(11)
    scores = rotate(q, pos) @ rotate(k, pos).transpose(-1, -2) / 8**0.5
    ref = (scores.softmax(-1) @ v).transpose(1, 2).reshape(3, 11, 16)
    torch.testing.assert_close(attn(x), attn.out(ref), atol=1e-5, rtol=1e-5)


def test_pooled_heads_see_averaged_keys_and_values():
    """A scale-4 head on a sequence whose values are constant per block of 4 behaves as full attention
    over the block means; with (1, 2, 4) the heads split 2/1/1 and the output differs from (1,)."""
    assert head_scales(4, (1, 2, 4)) == [1, 1, 2, 4] and head_scales(6, (1, 2, 4)) == [
        1,
        1,
        2,
        2,
        4,
        4,
    ]
    with pytest.raises(UserError, match="cannot cover"):
        head_scales(2, (1, 2, 4))
    pooled = MultiScaleAttention._pool(torch.arange(10.0).view(1, 1, 10, 1), 4)
    torch.testing.assert_close(pooled.flatten(), torch.tensor([1.5, 5.5, 8.5]))  # ceil mode
    torch.manual_seed(1)
    multi = MultiScaleAttention(16, 4, (1, 2, 4))
    single = MultiScaleAttention(16, 4, (1,))
    single.load_state_dict(multi.state_dict())
    x = torch.randn(2, 12, 16)
    assert not torch.allclose(multi(x), single(x))


def test_block_output_does_not_depend_on_the_batch():
    torch.manual_seed(2)
    block = MSTFABlock(12, 3).train()  # no BatchNorm inside: train mode too
    x = torch.randn(3, 12, 6, 5)
    torch.testing.assert_close(block(x)[1:2], block(x[1:2]), atol=1e-5, rtol=1e-5)


def test_unet_host_defaults_and_ablation_switches():
    base = build_model("mss-mstfa_unet-vocals")
    assert isinstance(base, MSTFAUNet) and base.num_sources == 1
    blocks = [m for m in base.modules() if isinstance(m, MSTFABlock)]
    assert len(blocks) == 9  # one per U-Net level
    assert sum(p.numel() for b in blocks for p in b.parameters()) == 9 * 28_464 == 256_176
    noattn = build_model("mss-mstfa_unet-vocals-noattn")
    assert not any(isinstance(m, MSTFABlock) for m in noattn.modules())
    total = lambda m: sum(p.numel() for p in m.parameters())  # noqa: E731
    assert total(base) - total(noattn) == 256_176
    ms1 = build_model("mss-mstfa_unet-vocals-ms1")
    assert {s for b in ms1.modules() if isinstance(b, MultiScaleAttention) for s in b.scales} == {1}
    assert total(ms1) == total(base)  # pooling has no weights


def test_dedicated_unet_outputs_its_target_only_and_round_trips(tmp_path):
    torch.manual_seed(3)
    model = build_model("mss-mstfa_unet-tiny-vocals").eval()
    mix = torch.randn(2, 2, 5_000)
    with torch.no_grad():
        out = model(mix)
    assert out.shape == (2, 1, 2, 5_000)
    exp = parse_experiment("mss-mstfa_unet-tiny-vocals")
    assert exp.targets == ("vocals",) and exp.target_indices == [2]
    path = tmp_path / "m.pt"
    torch.save(model_checkpoint(model, exp.id), path)
    loaded, _ = load_model(path)
    with torch.no_grad():
        torch.testing.assert_close(loaded(mix), out)


def test_separator_host_keeps_the_pipeline_contract():
    model = build_model("mss-band_split-tiny-k32-mstfa").eval()
    assert type(model.separator).__name__ == "MSTFASeparator"
    with torch.no_grad():
        assert model(torch.randn(1, 2, 8_000)).shape == (1, 4, 2, 8_000)
    gru = build_model("mss-band_split-tiny-k32-gru")
    assert sum(p.numel() for p in model.encoder.parameters()) == sum(
        p.numel() for p in gru.encoder.parameters()
    )  # everything but the separator is equal
    ms1 = build_model("mss-band_split-tiny-k32-mstfa-ms1")
    assert ms1.config.scales == (1,) and model.config.scales == (1, 2, 4)
    z = torch.randn(1, 32, 5, 7)
    with torch.no_grad():
        assert model.separator(z).shape == z.shape
        assert not torch.allclose(z, model.separator(z))


@pytest.mark.parametrize(
    "exp_id, message",
    [
        ("mss-mstfa_unet", "target one of"),
        ("mss-mstfa_unet-piano", "target one of"),
        ("mss-mstfa_unet-vocals-noattn-ms1", "in this order"),
        ("mss-sfc_ca-small-k64-gru-ms1", "variant 'ms1' is not one of"),
        ("mss-mstfa_unet-medium-vocals", "target one of"),
    ],
)
def test_bad_mstfa_ids(exp_id, message):
    with pytest.raises(UserError, match=message):
        parse_experiment(exp_id)


def test_mstfa_ids_round_trip():
    for exp_id in (
        "mss-mstfa_unet-vocals",
        "mss-mstfa_unet-small-vocals-ms1-noattn",
        "mss-mstfa_unet-tiny-bass-s3",
        "mss-band_split-small-k64-mstfa",
        "mss-band_split-small-k64-mstfa-ms1-nolocality",
        "mss-sfc_ca-tiny-k32-mstfa-nobias-s2",
    ):
        assert parse_experiment(exp_id).id == exp_id
