"""Model zoo contracts: band edges, bias init, parameter counts, shapes, gradients, ids, I/O."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
import torch

from sfc.bands import musical_bands, overlap_weights
from sfc.errors import UserError
from sfc.experiments import paper_experiment_ids, parse_experiment
from sfc.models import build_model, load_model, model_checkpoint
from sfc.models.config import ModelConfig
from sfc.models.describe import count_parameters
from sfc.models.sfc_ca import initial_position_bias
from sfc.stft import STFT

# spec §3.1, K = 64 ("(1,3)x5" expanded)
K64 = [(0, 3)] + [(1, 3)] * 5 + [
    (1, 4), (1, 4), (2, 4), (2, 4), (2, 5), (3, 5), (3, 6), (3, 6), (4, 7), (4, 7), (5, 8), (5, 9),
    (6, 10), (7, 11), (8, 12), (9, 13), (10, 14), (11, 15), (12, 17), (14, 19), (15, 21), (17, 23),
    (19, 26), (21, 29), (24, 32), (27, 35), (30, 39), (33, 44), (37, 48), (42, 54), (47, 60), (52, 67),
    (58, 74), (65, 83), (73, 92), (81, 103), (91, 115), (101, 128), (113, 143), (126, 159), (141, 177),
    (158, 198), (176, 221), (196, 246), (219, 275), (245, 306), (273, 342), (305, 381), (341, 425),
    (381, 475), (425, 530), (474, 591), (530, 660), (591, 736), (660, 822), (737, 917), (823, 1024),
    (918, 1025),
]  # fmt: skip
K32 = [
    (0, 3), (1, 3), (1, 3), (1, 4), (1, 5), (2, 5), (3, 6), (3, 7), (4, 9), (6, 11), (7, 13), (9, 16),
    (11, 20), (14, 24), (18, 30), (23, 37), (28, 46), (36, 57), (45, 71), (56, 88), (70, 110), (88, 137),
    (110, 171), (137, 214), (172, 267), (215, 334), (269, 417), (337, 521), (421, 652), (527, 815),
    (659, 1018), (824, 1025),
]  # fmt: skip


def test_band_edges_match_spec():
    assert list(musical_bands(64)) == K64
    assert list(musical_bands(32)) == K32
    # spec §3.1: total widths (the bands overlap) for K = 64, 48, 32
    assert [sum(e - s for s, e in musical_bands(k)) for k in (64, 48, 32)] == [2142, 2097, 2041]


def test_band_edges_on_exact_bin_boundaries_follow_numpy_float64():
    """Issue 9 item 5: for K = 2, 5, 10 a band limit lands exactly on a bin (32, 8, 256, 512 before
    rounding); the authors' numpy float64 arithmetic puts it just below, so floor gives the bin before."""
    assert musical_bands(2) == ((0, 33), (31, 1025))
    assert musical_bands(5) == ((0, 5), (1, 24), (7, 129), (45, 726), (255, 1025))
    assert musical_bands(10)[-1] == (511, 1025)


def test_overlap_weights_sum_to_one_over_bands():
    bands = musical_bands(48)
    w = overlap_weights(bands, 1025)
    total = torch.zeros(1025)
    for s, e in bands:
        total[s:e] += w[s:e]
    torch.testing.assert_close(total, torch.ones(1025))


def test_position_bias_hand_checked_band():
    bias = initial_position_bias(musical_bands(64), 1025)  # (K, F)
    row = bias[40]  # band 40 = bins [73, 92), centre 82, half-width 9 + 1 = 10
    assert row[82] == 0
    assert row[72] == -1 and row[71] == -2 and row[0] == -73
    assert row[92] == -1 and row[93] == -2 and row[1024] == -(1024 - 91)
    torch.testing.assert_close(row[73:92], -(torch.arange(73, 92) - 82).abs().float() / 10)
    assert float(row[73]) == pytest.approx(-0.9) and float(row[81]) == pytest.approx(-0.1)
    # symmetric about the band centre, maximal (0) inside the band for every band
    assert all(int(bias[k].argmax()) == (s + e) // 2 for k, (s, e) in enumerate(musical_bands(64)))
    assert float(bias.min()) == pytest.approx(-1022)


# spec §6.3 (M parameters), every row
PAPER_PARAMS = [
    ("mss-band_split-small-k64", 34.65), ("mss-sfc_ca-small-k64", 5.82), ("mss-sfc_mamba-small-k64", 5.14),
    ("mss-band_split-small-k48", 33.48), ("mss-sfc_ca-small-k48", 5.69), ("mss-sfc_mamba-small-k48", 5.14),
    ("mss-band_split-small-k32", 32.17), ("mss-sfc_ca-small-k32", 5.56), ("mss-sfc_mamba-small-k32", 5.14),
    ("mss-band_split-medium-k64", 55.49), ("mss-sfc_ca-medium-k64", 16.01), ("mss-sfc_mamba-medium-k64", 15.20),
    ("mss-band_split-medium-k48", 53.66), ("mss-sfc_ca-medium-k48", 15.88), ("mss-sfc_mamba-medium-k48", 15.20),
    ("mss-band_split-medium-k32", 51.65), ("mss-sfc_ca-medium-k32", 15.75), ("mss-sfc_mamba-medium-k32", 15.20),
    ("cass-band_split-small-k64", 17.74), ("cass-sfc_ca-small-k64", 5.81), ("cass-sfc_mamba-small-k64", 5.14),
    ("cass-band_split-medium-k64", 32.95), ("cass-sfc_ca-medium-k64", 16.00), ("cass-sfc_mamba-medium-k64", 15.19),
]  # fmt: skip


def _meta_model(exp_id: str):
    with torch.device("meta"):
        return build_model(exp_id)


@pytest.mark.parametrize("exp_id,millions", PAPER_PARAMS)
def test_parameter_counts_match_paper(exp_id, millions):
    total = count_parameters(_meta_model(exp_id))["total"]
    assert total / 1e6 == pytest.approx(millions, rel=0.005)


def test_separator_parameter_counts():
    # spec §6.3 / §7.2: TF-Locoformer small 5.021 M, medium 14.959 M
    assert count_parameters(_meta_model("mss-sfc_ca-small-k64"))["separator"] == 5_021_440
    assert count_parameters(_meta_model("mss-sfc_ca-medium-k64"))["separator"] == 14_959_104
    # the bias matrices: 2 x 4 heads x 64 x 1025 (spec §5.3)
    ca = _meta_model("mss-sfc_ca-small-k64")
    assert ca.encoder.block.attn.bias.numel() + ca.decoder.block.attn.bias.numel() == 524_800


TINY = [
    "mss-band_split-tiny-k16",
    "mss-band_split-tiny-k8-nolocality",
    "mss-sfc_ca-tiny-k16",
    "mss-sfc_ca-tiny-k16-adaptive",
    "mss-sfc_ca-tiny-k16-nobias",
    "mss-sfc_ca-tiny-k16-fixedbias",
    "mss-sfc_ca-tiny-k16-learnslope",
    "mss-sfc_ca-tiny-k16-bandmask",
    "mss-sfc_mamba-tiny-k16",
    "mss-sfc_mamba-tiny-k16-learnable",
    "mss-sfc_mamba-tiny-k16-startend",
    "mss-sfc_mamba-tiny-k16-uniform",
    "cass-band_split-tiny-k16",
    "cass-sfc_ca-tiny-k16",
    "cass-sfc_mamba-tiny-k16",
    "mss-band_split-tiny-k16-gru",
    "mss-sfc_ca-tiny-k16-gru",
    "mss-sfc_mamba-tiny-k16-gru",
]


@pytest.mark.parametrize("exp_id", TINY)
def test_shape_and_gradient_contract(exp_id):
    model = build_model(exp_id)
    mix = torch.randn(2, model.num_channels, 4 * 2048 + 123)
    est = model(mix)
    assert est.shape == (2, model.num_sources, model.num_channels, mix.shape[-1])
    assert torch.isfinite(est).all()
    est.square().mean().backward()
    missing = [
        n
        for n, p in model.named_parameters()
        if p.requires_grad and (p.grad is None or not p.grad.abs().sum())
    ]
    assert not missing, f"parameters without gradient: {missing[:5]}"


@pytest.mark.parametrize("exp_id", TINY[:3])
def test_model_is_scale_equivariant_and_batch_independent(exp_id):
    model = build_model(exp_id).eval()
    mix = torch.randn(2, model.num_channels, 3 * 2048)
    with torch.no_grad():
        est = model(mix)
        torch.testing.assert_close(model(3.0 * mix), 3.0 * est, rtol=1e-4, atol=1e-5)
        torch.testing.assert_close(model(mix[1:]), est[1:], rtol=1e-4, atol=1e-5)


def test_pos_bias_variants_have_the_right_trainable_parts():
    def trainable(exp_id):
        attn = build_model(exp_id).encoder.block.attn
        return {n for n, p in attn.named_parameters() if p.requires_grad} - {
            "to_q.weight",
            "to_kv.weight",
            "proj.weight",
        }

    assert trainable("mss-sfc_ca-tiny-k16") == {"bias"}
    assert trainable("mss-sfc_ca-tiny-k16-bandmask") == {"bias"}
    assert trainable("mss-sfc_ca-tiny-k16-learnslope") == {"slope"}
    assert trainable("mss-sfc_ca-tiny-k16-fixedbias") == set()
    assert trainable("mss-sfc_ca-tiny-k16-nobias") == set()


def test_band_mask_limits_attention_to_the_band():
    model = build_model("mss-sfc_ca-tiny-k16-bandmask")
    weights = model.encoder.attention(torch.randn(1, 4, 3, 1025))  # (B*T, H, K, F)
    for k, (s, e) in enumerate(musical_bands(16)):
        assert weights[:, :, k, :s].sum() == 0 and weights[:, :, k, e:].sum() == 0
        torch.testing.assert_close(weights[:, :, k, s:e].sum(-1), torch.ones(3, 2))


def test_decoder_bias_is_transposed_encoder_bias():
    model = build_model("mss-sfc_ca-tiny-k16")
    torch.testing.assert_close(
        model.decoder.block.attn.bias, model.encoder.block.attn.bias.transpose(1, 2)
    )


def test_stft_round_trip():
    stft = STFT()
    for length in (44100, 6 * 44100, 2048 * 3 + 5):
        wav = torch.randn(2, 2, length)
        spec = stft(wav)
        assert spec.shape == (2, 2, 1025, length // 512)
        assert (stft.inverse(spec, length) - wav).abs().max() < 1e-5


def test_every_paper_experiment_builds_on_meta():
    ids = paper_experiment_ids()
    assert len(ids) == 37  # 30 of the SFC paper + 7 of the baselines table
    for exp_id in ids:
        model = _meta_model(exp_id)
        assert model.config == parse_experiment(exp_id).model_config()


def test_save_load_gives_identical_output(tmp_path):
    for exp_id in ("mss-sfc_ca-tiny-k16-adaptive", "cass-band_split-tiny-k16"):
        model = build_model(exp_id).eval()
        path = tmp_path / f"{exp_id}.pt"
        torch.save(model_checkpoint(model, exp_id), path)
        loaded, ckpt = load_model(path)
        assert ckpt["experiment"] == exp_id
        mix = torch.randn(1, model.num_channels, 3 * 2048)
        with torch.no_grad():
            assert torch.equal(model(mix), loaded(mix))


@pytest.mark.parametrize(
    "mix,message",
    [
        (torch.randn(1, 1, 8192), "2-channel audio, got 1"),
        (torch.randn(1, 2, 1000), "shorter than one STFT window"),
        (torch.randn(2, 8192), "expected input of shape"),
    ],
)
def test_bad_input_gives_clear_error(mix, message):
    with pytest.raises(UserError, match=message):
        build_model("mss-sfc_ca-tiny-k16")(mix)


@pytest.mark.parametrize(
    "exp_id,message",
    [
        ("mss-sfc_ca-huge-k64", "size 'huge'"),
        ("music-sfc_ca-small-k64", "task 'music'"),
        ("mss-sfc_ca-small-64", "bands '64'"),
        ("mss-sfc_ca-small-k64-startend", "applies to sfc_mamba"),
        ("mss-sfc_ca-small-k64-foo", "variant 'foo'"),
        ("mss-sfc_ca-small", "expected <task>"),
    ],
)
def test_bad_experiment_id(exp_id, message):
    with pytest.raises(UserError, match=message):
        parse_experiment(exp_id)


def test_unknown_config_option():
    with pytest.raises(UserError, match=r"unknown key\(s\) \['heads'\]"):
        ModelConfig.from_dict({"encoder": "sfc_ca", "heads": 8})
    with pytest.raises(UserError, match="pos_bias='sharp'"):
        ModelConfig(pos_bias="sharp")


def test_describe_cli_prints_json():
    out = subprocess.run(
        [sys.executable, "-m", "sfc", "describe", "mss-sfc_ca-tiny-k16"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    info = json.loads(out)
    assert info["params"]["total"] == sum(
        info["params"][k] for k in ("encoder", "decoder", "separator")
    )
    assert info["gflops_per_second"] > 0
    bad = subprocess.run(
        [sys.executable, "-m", "sfc", "describe", "mss-x-tiny-k16"], capture_output=True, text=True
    )
    assert bad.returncode == 2 and "encoder 'x'" in bad.stderr and "Traceback" not in bad.stderr
