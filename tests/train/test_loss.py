"""The thresholded SNR loss with the inactive-source term, against a direct numpy computation."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from sfc.train.loss import snr_db, source_activity, thresholded_snr_loss


def _reference(est, ref, mix):
    """Spec §8 formula written loop by loop in float64."""
    tau, eps = 1e-3, 1e-8
    out = np.zeros(ref.shape[:3])
    for b, n, c in np.ndindex(*ref.shape[:3]):
        s, e, x = ref[b, n, c], est[b, n, c], mix[b, c]
        ps, px = (s**2).sum(), (x**2).sum()
        if 10 * np.log10((ps + eps) / (px + eps)) >= -60:
            out[b, n, c] = 10 * np.log10(((s - e) ** 2).sum() + tau * ps + eps) - 10 * np.log10(
                ps + eps
            )
        else:
            out[b, n, c] = 0.1 * 10 * np.log10((e**2).sum() + tau * px + eps)
    return out


def test_matches_formula_with_active_and_inactive_sources():
    g = torch.Generator().manual_seed(1)
    ref = torch.randn(2, 3, 2, 800, generator=g)
    ref[0, 1] = 0.0  # silent source
    ref[1, 2] *= 1e-4  # -80 dB: counts as inactive
    mix = ref.sum(1)
    est = ref + 0.3 * torch.randn(ref.shape, generator=g)
    per_item = thresholded_snr_loss(est, ref, mix, reduce=False)
    expected = _reference(est.double().numpy(), ref.double().numpy(), mix.double().numpy())
    np.testing.assert_allclose(per_item.numpy(), expected, rtol=1e-4, atol=1e-4)
    assert thresholded_snr_loss(est, ref, mix).item() == pytest.approx(expected.mean(), rel=1e-4)
    active = source_activity(ref, mix)
    assert not active[0, 1].any() and not active[1, 2].any() and active[0, 0].all()


def test_perfect_estimate_is_capped_at_minus_30_db():
    ref = torch.randn(1, 2, 1, 1000)
    loss = thresholded_snr_loss(ref.clone(), ref, ref.sum(1))
    assert loss.item() == pytest.approx(-30.0, abs=1e-3)


def test_inactive_term_pushes_estimates_to_zero():
    ref = torch.zeros(1, 1, 1, 500)
    mix = torch.randn(1, 1, 500)
    est = torch.randn(1, 1, 1, 500, requires_grad=True)
    loss = thresholded_snr_loss(est, ref, mix)
    loss.backward()
    assert torch.isfinite(est.grad).all()
    assert (
        est.grad * est
    ).sum() > 0  # the gradient points away from zero: descent shrinks the estimate
    smaller = thresholded_snr_loss(0.5 * est.detach(), ref, mix)
    assert smaller < loss


def test_snr_db():
    ref = torch.ones(3, 100)
    assert snr_db(ref * 0.9, ref).numpy() == pytest.approx(np.full(3, 20.0), abs=1e-4)
