"""The thresholded SNR loss with the inactive-source term, against a direct numpy computation."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from sfc.train.loss import snr_db, source_activity, thresholded_snr_loss


def _reference(est, ref, mix):
    """The authors' formula written loop by loop in float64 (spec §8; issue 9 items 6-7).

    Activity has no eps (a silent mixture is 0/0: inactive); the inactive term uses the error energy.
    """
    tau, eps = 1e-3, 1e-8
    out = np.zeros(ref.shape[:3])
    for b, n, c in np.ndindex(*ref.shape[:3]):
        s, e, x = ref[b, n, c], est[b, n, c], mix[b, c]
        ps, px, pe = (s**2).sum(), (x**2).sum(), ((s - e) ** 2).sum()
        active = px > 0 and ps > 0 and 10 * np.log10(ps / px) >= -60
        if active:
            out[b, n, c] = 10 * np.log10(pe + tau * ps + eps) - 10 * np.log10(ps + eps)
        else:
            out[b, n, c] = 0.1 * 10 * np.log10(pe + tau * px + eps)
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


def test_quiet_reference_uses_error_energy_and_silent_mixture_is_inactive():
    """A -70 dB reference (non-zero, inactive) scores its error energy; a silent mixture item scores
    the inactive term for every source (not +89 dB), beside an ordinary item in the same batch."""
    g = torch.Generator().manual_seed(3)
    ref = torch.randn(3, 2, 1, 600, generator=g, dtype=torch.float64)
    ref[0, 1] *= 10 ** (-70 / 20)  # quiet but not zero
    ref[1] = 0.0  # silent mixture: every source silent
    mix = ref.sum(1)
    est = ref + 0.1 * torch.randn(ref.shape, generator=g, dtype=torch.float64)
    est[0, 1] = ref[0, 1]  # exact estimate of the quiet source: error energy 0, |est|^2 > 0
    per_item = thresholded_snr_loss(est, ref, mix, reduce=False)
    expected = _reference(est.numpy(), ref.numpy(), mix.numpy())
    np.testing.assert_allclose(per_item.numpy(), expected, rtol=1e-4, atol=1e-4)
    active = source_activity(ref, mix)
    assert not active[0, 1].any() and not active[1].any() and active[2].all()
    tau_mix = 1e-3 * mix[0, 0].square().sum().item()
    assert per_item[0, 1, 0].item() == pytest.approx(np.log10(tau_mix + 1e-8), rel=1e-4)
    assert per_item[1].numpy() == pytest.approx(
        0.1 * 10 * np.log10(est[1].square().sum(-1).numpy() + 1e-8), rel=1e-4
    )
    assert per_item[1].max() < 10  # the silent item no longer costs ~+88 dB (active, 0 dB / eps)
    assert torch.isfinite(thresholded_snr_loss(est, ref, mix))


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
