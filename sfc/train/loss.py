"""Thresholded negative SNR with an inactive-source term.

PAPER: spec §8 (code `ThresSNRLossWithInactiveSource`). Per batch item b, channel c, source n, with x the
mixture channel, tau = 10^(-30/10) and eps = 1e-8:

* active source (10 log10(|s|^2 / |x|^2) >= -60 dB, no eps: a silent mixture makes 0/0 and every
  source of that item inactive):
  l = 10 log10(|s - s_hat|^2 + tau |s|^2 + eps) - 10 log10(|s|^2 + eps)
* inactive source: l = 0.1 * 10 log10(|s - s_hat|^2 + tau |x|^2 + eps)  (the error energy: |s_hat|^2
  when the reference is exactly zero, not for a reference that is only below the -60 dB threshold)

L = mean over (b, n, c). No permutation search (fixed source order). Computed in float32 (float64
inputs stay float64).
"""

from __future__ import annotations

import math

import torch

EPS = 1e-8


def _at_least_fp32(x: torch.Tensor) -> torch.Tensor:
    """bf16/fp16 -> fp32; fp32 and fp64 unchanged (the fp64 path serves exactness tests)."""
    return x.to(torch.promote_types(x.dtype, torch.float32))


def _db(x: torch.Tensor) -> torch.Tensor:
    return 10.0 * torch.log10(x)


def source_activity(
    ref: torch.Tensor, mix: torch.Tensor, threshold_db: float = -60.0
) -> torch.Tensor:
    """Which (b, n, c) references are active: their energy is within ``threshold_db`` of the mixture's.

    PAPER: as the authors' code, the energy ratio has no eps. A silent reference in a non-silent mixture
    gives -inf dB and a silent mixture 0/0 = NaN: both compare False, so both are inactive.

    Args:
        ref: references (B, N, C, L).
        mix: mixture (B, C, L).

    Returns:
        Boolean tensor (B, N, C).
    """
    ref_pow = _at_least_fp32(ref).square().sum(-1)  # (B, N, C)
    mix_pow = _at_least_fp32(mix).square().sum(-1).unsqueeze(1)  # (B, 1, C)
    return _db(ref_pow / mix_pow) >= threshold_db


def thresholded_snr_loss(
    est: torch.Tensor,
    ref: torch.Tensor,
    mix: torch.Tensor,
    snr_max_db: float = 30.0,
    inactive_weight: float = 0.1,
    eps: float = EPS,
    reduce: bool = True,
) -> torch.Tensor:
    """The paper's training loss.

    Args:
        est: estimates (B, N, C, L).
        ref: references (B, N, C, L).
        mix: mixture (B, C, L).
        snr_max_db: soft cap of the SNR of active sources (tau = 10^(-snr_max_db / 10)).
        inactive_weight: weight of the inactive-source term (``zeroref_weight``).
        eps: added inside every log.
        reduce: return the mean (scalar) or the per-(b, n, c) losses (B, N, C).
    """
    est, ref, mix = _at_least_fp32(est), _at_least_fp32(ref), _at_least_fp32(mix)
    tau = math.pow(10.0, -snr_max_db / 10.0)
    ref_pow = ref.square().sum(-1)  # (B, N, C)
    mix_pow = mix.square().sum(-1).unsqueeze(1)  # (B, 1, C)
    err_pow = (ref - est).square().sum(-1)  # (B, N, C)
    active_loss = _db(err_pow + tau * ref_pow + eps) - _db(ref_pow + eps)  # (B, N, C)
    inactive_loss = inactive_weight * _db(err_pow + tau * mix_pow + eps)  # (B, N, C)
    loss = torch.where(source_activity(ref, mix), active_loss, inactive_loss)  # (B, N, C)
    return loss.mean() if reduce else loss


def spec_mse_loss(est: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Mean squared error over every element of two spectrogram tensors, in (at least) fp32.

    PAPER: lightsaft.md §4 `spec_mse`: the network's complex-as-channels output against the target's
    STFT in the same layout, raw units, averaged over all elements.

    Shapes:
        est, target: (B, N·2C, T, F) -> scalar
    """
    return torch.nn.functional.mse_loss(_at_least_fp32(est), _at_least_fp32(target))


def snr_db(est: torch.Tensor, ref: torch.Tensor, eps: float = EPS) -> torch.Tensor:
    """Plain SNR per leading index: 10 log10(|s|^2 / |s - s_hat|^2), (..., L) -> (...)."""
    est, ref = est.float(), ref.float()
    return _db((ref.square().sum(-1) + eps) / ((ref - est).square().sum(-1) + eps))
