"""LightSAFT-Net (faithful to the authors' released code, spec lightsaft.md): counts, shapes, conditioning."""

from __future__ import annotations

import pytest
import torch

from sfc.errors import UserError
from sfc.experiments import parse_experiment
from sfc.models import build_model, load_model, model_checkpoint
from sfc.models.lightsaft import LightSAFT, LightSAFTNet


@pytest.mark.parametrize(
    "exp_id, params", [("mss-lightsaft-mdx", 4_159_844), ("mss-lightsaft-mdx7", 3_874_324)]
)
def test_parameter_counts_match_authors_code(exp_id, params):
    model = build_model(exp_id)
    assert isinstance(model, LightSAFTNet)
    assert sum(p.numel() for p in model.parameters()) == params


def test_released_config_parts_match_spec_breakdown():
    """lightsaft.md §3 table: the per-part formula counts and the 6,092 BN buffers."""
    model = build_model("mss-lightsaft-mdx")
    count = lambda m: sum(p.numel() for p in m.parameters())  # noqa: E731
    assert [count(s) for s in model.enc_saft] + [count(model.mid_saft)] == [
        1_119_360, 283_776, 74_880, 40_064, 22_656,
    ]  # fmt: skip
    assert count(model.enc_tfc[0]) == 34_800 and count(model.dec_tfc[0]) == 46_320
    assert count(model.control.mlp) == 174_464
    assert count(model.control.gamma) + count(model.control.beta) == 558_144
    bn = [b for name, b in model.named_buffers() if "running" in name or "num_batches" in name]
    assert sum(b.numel() for b in bn) == 6_092


def test_network_keeps_the_spectrogram_shape():
    """(B, 4, T, 1025) in gives the same shape out (T = 32 instead of 256 to stay fast on CPU)."""
    model = build_model("mss-lightsaft-mdx").eval()
    x = torch.randn(2, 4, 32, 1025)
    with torch.no_grad():
        assert model.network(x, torch.tensor([0, 3])).shape == (2, 4, 32, 1025)


def test_front_end_layout_round_trips_with_an_identity_network(monkeypatch):
    """Complex-as-channels [Re L, Re R, Im L, Im R], all frames, padding: mapping x -> x gives mix back."""
    model = build_model("mss-lightsaft-tiny").eval()
    monkeypatch.setattr(model, "network", lambda x, cond: x)
    mix = torch.randn(2, 2, 5_000)
    out = model(mix)  # (B, N, C, L)
    assert out.shape == (2, 4, 2, 5_000)
    torch.testing.assert_close(out, mix[:, None].expand_as(out), atol=1e-5, rtol=1e-5)
    spec = model.spec(mix)
    padded = torch.nn.functional.pad(mix[0, 1], (0, model.padded_length(5_000) - 5_000))
    ref = torch.stft(padded, 2048, 1024, window=torch.hann_window(2048), return_complex=True)
    assert spec.shape == (2, 4, ref.shape[1], 1025) and ref.shape[1] == 8  # every frame kept
    torch.testing.assert_close(spec[0, 1], ref.real.T)  # Re R
    torch.testing.assert_close(spec[0, 3], ref.imag.T)  # Im R


@pytest.mark.parametrize("length", [1, 1024, 15_359, 15_360, 261_120])
def test_padding_is_the_smallest_multiple_of_16_frames(length):
    model = build_model("mss-lightsaft-tiny")  # 2 downsamplings: T multiple of 4
    padded = model.padded_length(length)
    frames = padded // 1024 + 1
    assert padded >= length and frames % 4 == 0
    assert padded - 4 * 1024 < length  # nothing smaller would do
    assert build_model("mss-lightsaft-mdx").padded_length(261_120) == 261_120  # authors' window


def test_attention_weights_depend_only_on_the_condition():
    torch.manual_seed(0)
    model = build_model("mss-lightsaft-tiny").eval()
    seen = []  # the block's alpha, recomputed from the embedding it was called with
    block: LightSAFT = model.enc_saft[0]
    handle = block.register_forward_hook(lambda m, a, o: seen.append(m.weights(a[1]).detach()))
    with torch.no_grad():
        model(torch.randn(1, 2, 8_000), torch.tensor([1]))
        model(10 * torch.randn(1, 2, 8_000), torch.tensor([1]))
        model(torch.randn(1, 2, 8_000), torch.tensor([2]))
    handle.remove()
    torch.testing.assert_close(seen[0], seen[1])
    assert not torch.allclose(seen[0], seen[2])
    torch.testing.assert_close(seen[0].sum(), torch.tensor(1.0))


def test_no_condition_equals_one_conditioned_pass_per_source():
    torch.manual_seed(1)
    model = build_model("mss-lightsaft-tiny").eval()
    mix = torch.randn(2, 2, 9_000)
    with torch.no_grad():
        every = model(mix)  # (B, N, C, L)
        one_by_one = torch.stack([model(mix, torch.full((2,), n)) for n in range(4)], dim=1)
    torch.testing.assert_close(every, one_by_one, atol=1e-5, rtol=1e-4)
    assert not torch.allclose(every[:, 0], every[:, 1])  # the condition changes the output


def test_single_condition_training_batch_is_rejected():
    model = build_model("mss-lightsaft-tiny").train()
    with pytest.raises(UserError, match="single condition"):
        model(torch.randn(3, 2, 4_000), torch.tensor([2, 2, 2]))
    model(torch.randn(3, 2, 4_000), torch.tensor([2, 0, 2]))  # mixed conditions train


def test_spec_output_has_the_target_layout_and_trains():
    model = build_model("mss-lightsaft-tiny").train()
    mix, refs = torch.randn(2, 2, 4_000), torch.randn(2, 4, 2, 4_000)
    cond = torch.tensor([0, 3])
    out = model(mix, cond, output="spec")  # (B, 2C, T, F)
    target = model.spec(refs[torch.arange(2), cond])
    assert out.shape == target.shape == (2, 4, 8, 1025)  # 4,000 samples -> 7,168 padded
    torch.nn.functional.mse_loss(out, target).backward()
    assert all(p.grad is not None for p in model.parameters() if p.requires_grad)


def test_save_load_gives_identical_output(tmp_path):
    torch.manual_seed(2)
    model = build_model("mss-lightsaft-tiny").eval()
    path = tmp_path / "m.pt"
    torch.save(model_checkpoint(model, "mss-lightsaft-tiny"), path)
    loaded, ckpt = load_model(path)
    mix = torch.randn(1, 2, 6_000)
    with torch.no_grad():
        torch.testing.assert_close(loaded(mix), model(mix))
    assert ckpt["model_config"]["family"] == "lightsaft"


@pytest.mark.parametrize(
    "exp_id, message",
    [
        ("mss-lightsaft", "expected <task>-lightsaft-<size>"),
        ("mss-lightsaft-small", "size one of"),
        ("mss-lightsaft-mdx-nobias", "expected <task>-lightsaft-<size>"),
    ],
)
def test_bad_lightsaft_ids(exp_id, message):
    with pytest.raises(UserError, match=message):
        parse_experiment(exp_id)


def test_lightsaft_ids_round_trip():
    for exp_id in ("mss-lightsaft-mdx", "mss-lightsaft-mdx7-s3", "cass-lightsaft-tiny"):
        exp = parse_experiment(exp_id)
        assert exp.id == exp_id and exp.family == "lightsaft"
    assert parse_experiment("cass-lightsaft-tiny").model_config().num_channels == 1


def test_lightsaft_block_mixes_latent_sources_with_alpha_by_hand():
    """z = sum_s alpha_s V[..., s, :] with V the analysis output read as S groups of b features."""
    torch.manual_seed(4)
    block = LightSAFT(channels=3, freqs=64, num_latent=4, dk=8, emb_dim=5).eval()
    x, emb = torch.randn(2, 3, 6, 64), torch.randn(2, 5)
    feats = block.analysis(x)  # (B, D, T, S·b), b = 16
    alpha = torch.softmax((block.query(emb) @ block.keys) / 8**0.5, dim=-1)  # (B, S)
    mixed = sum(alpha[:, s, None, None, None] * feats[..., 16 * s : 16 * (s + 1)] for s in range(4))
    torch.testing.assert_close(block(x, emb), block.synthesis(mixed))
    assert block.bn_units == 16 and LightSAFT(16, 1024).bn_units == 64  # b = max(f // 16, 16)
