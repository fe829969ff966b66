"""Numerics that must equal the authors' released code (issue 9, items 1-4), each against a direct
re-computation of their formula."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from sfc.models import build_model, tf_locoformer
from sfc.models.sfc_common import BandMeanQuery
from sfc.models.tf_locoformer import RMSGroupNorm, SelfAttention


@pytest.mark.parametrize("rms", [1.0, 0.1, 0.01, 1e-4])
def test_rms_group_norm_divides_by_rms_plus_eps(rms):
    """x / (sqrt(mean x^2) + eps) per group: at RMS 0.01 the other form (eps inside the root) is
    0.3 away, so a tolerance of 1e-5 tells the two apart at every level below 1."""
    norm = RMSGroupNorm(num_groups=4, dim=16)
    with torch.no_grad():
        norm.weight.copy_(torch.linspace(0.5, 2.0, 16))
    x = torch.randn(3, 5, 16, dtype=torch.float64)
    x = x / x.square().mean(-1, keepdim=True).sqrt() * rms
    g = x.numpy().reshape(3, 5, 4, 4)
    ref = g / (np.sqrt((g**2).mean(-1, keepdims=True)) + 1e-5)
    ref = ref.reshape(3, 5, 16) * norm.weight.detach().double().numpy()
    out = norm(x.float()).detach().double().numpy()
    np.testing.assert_allclose(out, ref, rtol=1e-5, atol=1e-6)
    other = x.numpy().reshape(3, 5, 4, 4)
    other = other / np.sqrt((other**2).mean(-1, keepdims=True) + 1e-5)
    if rms <= 0.1:
        assert np.abs(other.reshape(3, 5, 16) * norm.weight.detach().numpy() - out).max() > 1e-3


def test_rms_group_norm_all_zero_group_has_finite_gradients():
    norm = RMSGroupNorm(num_groups=2, dim=8)
    x = torch.randn(4, 8)
    x[1, :4] = 0.0  # one all-zero group
    x.requires_grad_(True)
    out = norm(x)
    assert torch.isfinite(out).all() and (out[1, :4] == 0).all()
    (out * torch.randn_like(out)).sum().backward()
    assert torch.isfinite(x.grad).all() and torch.isfinite(norm.weight.grad).all()


def _numpy_stft(wav: np.ndarray, n_fft: int = 2048, hop: int = 512) -> np.ndarray:
    """Centred (reflect-padded), periodic-Hann, onesided STFT with every frame kept: (..., F, T + 1)."""
    pad = np.pad(wav, [(0, 0)] * (wav.ndim - 1) + [(n_fft // 2, n_fft // 2)], mode="reflect")
    window = 0.5 - 0.5 * np.cos(2 * np.pi * np.arange(n_fft) / n_fft)
    num = 1 + (pad.shape[-1] - n_fft) // hop
    frames = np.stack([pad[..., t * hop : t * hop + n_fft] * window for t in range(num)], -1)
    return np.fft.rfft(frames, axis=-2)


def test_input_scale_uses_the_full_stft_with_per_bin_clip():
    """s = sqrt(mean over (C, F, T+1) of max(|X|^2, 1e-15)): the last frame (dropped afterwards) counts,
    and every silent bin counts as 1e-15. A signal that is loud only in its last 300 samples makes the
    last frame matter, and one silent channel makes the per-bin clip matter."""
    model = build_model("mss-sfc_ca-tiny-k16").eval()
    length = 4 * 512 + 100
    wav = np.zeros((2, 2, length))
    rng = np.random.default_rng(0)
    wav[0, 0, -300:] = rng.standard_normal(300)
    wav[0, 0, :-300] = 1e-3 * rng.standard_normal(length - 300)
    wav[1] = rng.standard_normal((2, length))
    spec, scale, feats = model.features(torch.from_numpy(wav).float())
    full = _numpy_stft(wav)  # (B, C, F, T + 1)
    assert full.shape[-1] == length // 512 + 1
    expected = np.sqrt(np.maximum(np.abs(full) ** 2, 1e-15).mean(axis=(1, 2, 3)))
    np.testing.assert_allclose(scale.flatten().numpy(), expected, rtol=1e-5)
    dropped = np.sqrt((np.abs(full[..., :-1]) ** 2).mean(axis=(1, 2, 3)))
    assert abs(dropped[0] / expected[0] - 1) > 0.05  # the last frame matters for this signal
    np.testing.assert_allclose(
        spec.transpose(-1, -2).numpy(), full[..., :-1] / expected[:, None, None, None], atol=1e-4
    )
    silent = model.features(torch.zeros(1, 2, length))[1]
    assert silent.item() == pytest.approx(np.sqrt(1e-15), rel=1e-5)


def test_self_attention_drops_attention_weights_in_training_only(monkeypatch):
    seen = []
    real = F.scaled_dot_product_attention

    def spy(*args, **kwargs):
        seen.append(kwargs.get("dropout_p", 0.0))
        return real(*args, **kwargs)

    monkeypatch.setattr(tf_locoformer.F, "scaled_dot_product_attention", spy)
    attn = SelfAttention(dim=16, num_heads=2, dropout=0.1)
    x = torch.randn(2, 7, 16)
    attn.train()(x)
    attn.eval()(x)
    assert seen == [0.1, 0.0]
    # the separator of the paper's small model passes its dropout (0.1) to the attention weights
    sep = build_model("mss-sfc_ca-small-k64").separator
    assert {m.attn_dropout for m in sep.modules() if isinstance(m, SelfAttention)} == {0.1}


def test_self_attention_dropout_changes_training_outputs():
    attn = SelfAttention(dim=16, num_heads=2, dropout=0.5)
    attn.dropout.p = 0.0  # only the attention-weight dropout left
    x = torch.randn(2, 7, 16)
    attn.train()
    a, b = attn(x), attn(x)
    assert not torch.allclose(a, b)
    attn.eval()
    torch.testing.assert_close(attn(x), attn(x))


def test_band_mean_query_clamps_the_weight_sum():
    """A band whose weights all reach zero gives a zero query, not NaN (sum clamped at 1e-8)."""
    bands = ((0, 3), (2, 6), (5, 9))
    query = BandMeanQuery(bands, num_freqs=9)
    with torch.no_grad():
        query.weight[3:7] = 0.0  # every weight of band 1
    e = torch.randn(2, 9, 4)
    out = query(e)  # (2, 3, 4)
    assert torch.isfinite(out).all() and (out[:, 1] == 0).all()
    torch.testing.assert_close(out[:, 0], e[:, 0:3].mean(1))
