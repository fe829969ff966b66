"""Separation metrics as pure functions, and ``score_track`` that applies a task's metrics to one track.

PAPER: spec §9 and §14 items 5 and 12.

* ``usdr`` (MSS) / ``snr`` (CASS): per channel 10·log10((‖s‖² + ε) / (‖s − ŝ‖² + ε)), ε = 1e-8, mean over
  channels; aggregated by the mean over tracks.
* ``csdr`` (MSS): BSSEval v4 framewise SDR (1-s frames), per track the nanmedian over frames; aggregated by
  the median over tracks (see ``sfc.eval.bsseval``).
* ``si_sdr`` (CASS): scale-invariant SDR clamped to ±80 dB, as ``fast_bss_eval`` computes it; aggregated
  by both mean and median (spec §14 item 5).
* ``spec_snr`` (ablations): 10·log10(Σ|S|² / Σ|S − Ŝ|²) over the complex STFT (n_fft 2048, hop 512), per
  channel, mean over channels (spec §14 item 12).
* ``mdx_sdr`` (MSS, for the LightSAFT-Net comparison): the MDX-challenge SDR,
  10·log10((Σ s² + ε) / (Σ (s − ŝ)² + ε)) summed over all samples **and channels together**, ε = 1e-7;
  aggregated by the mean over tracks (lightsaft.md §5, `evaluator/music_demixing.py`).

Every array is (N, C, L) = (sources, channels, samples), float; values are float dB.

Silent references: one convention for every metric. A reference stem whose mean square over channels and
samples is at most ``SILENT_MEAN_SQUARE`` (RMS -100 dBFS) has no defined score: ``score_track`` gives NaN
for it in every metric (written ``null`` in JSON) and lists it under ``silent_references``; the
aggregates over tracks leave it out and count the tracks that entered (``sfc.eval.table``).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import torch

from sfc.eval.bsseval import CsdrBackend, pad_or_truncate, sdr_frames

SNR_EPS = 1e-8  # PAPER: spec §9 "ε 1e-8"
SI_SDR_CLAMP_DB = 80.0  # PAPER: spec §9 (fast_bss_eval clamp_db=80)
MDX_EPS = 1e-7  # PAPER: lightsaft.md §5 (MDX challenge evaluator)
TASK_METRICS: dict[str, tuple[str, ...]] = {
    "mss": ("usdr", "csdr", "spec_snr", "mdx_sdr"),
    "cass": ("snr", "si_sdr", "spec_snr"),
}
METRICS: tuple[str, ...] = ("usdr", "csdr", "snr", "si_sdr", "spec_snr", "mdx_sdr")
# ASSUMPTION: the spec has no rule for silent reference stems. Scored, uSDR of a silent stem is
# 10·log10(ε / (‖ŝ‖² + ε)) ≈ −100 dB whatever the model does, so it says nothing about the model and
# would dominate a mean; it is excluded from every metric instead (and counted).
SILENT_MEAN_SQUARE = 1e-10  # RMS -100 dBFS


def silent_references(references: np.ndarray | torch.Tensor) -> np.ndarray:
    """Which reference stems are silent (mean square <= SILENT_MEAN_SQUARE).

    Shapes:
        references: (N, C, L) -> (N,) bool
    """
    ref = _as_f64(references)
    return np.square(ref).mean(axis=(-2, -1)) <= SILENT_MEAN_SQUARE


def _as_f64(x: np.ndarray | torch.Tensor) -> np.ndarray:
    if isinstance(x, torch.Tensor):
        x = x.detach().cpu().numpy()
    return np.asarray(x, dtype=np.float64)


def snr(references: np.ndarray, estimates: np.ndarray, eps: float = SNR_EPS) -> np.ndarray:
    """SNR per source and channel (the paper's uSDR before the channel mean).

    ASSUMPTION: ε is added to both energies (the MDX-challenge form); spec §9 gives only "ε 1e-8".

    Shapes:
        references, estimates: (N, C, L) -> (N, C)
    """
    ref, est = _as_f64(references), _as_f64(estimates)
    num = np.square(ref).sum(-1) + eps  # (N, C)
    den = np.square(ref - est).sum(-1) + eps  # (N, C)
    return 10.0 * np.log10(num / den)


def usdr(references: np.ndarray, estimates: np.ndarray, eps: float = SNR_EPS) -> np.ndarray:
    """uSDR per source: SNR per channel, mean over channels (spec §9).

    Shapes:
        references, estimates: (N, C, L) -> (N,)
    """
    return snr(references, estimates, eps).mean(-1)


def mdx_sdr(references: np.ndarray, estimates: np.ndarray, eps: float = MDX_EPS) -> np.ndarray:
    """MDX-challenge SDR per source: channels pooled, no frames, no BSSEval filters.

    Shapes:
        references, estimates: (N, C, L) -> (N,)
    """
    ref, est = _as_f64(references), _as_f64(estimates)
    num = np.square(ref).sum((-2, -1)) + eps  # (N,)
    den = np.square(ref - est).sum((-2, -1)) + eps  # (N,)
    return 10.0 * np.log10(num / den)


def si_sdr(
    references: np.ndarray, estimates: np.ndarray, clamp_db: float | None = SI_SDR_CLAMP_DB
) -> np.ndarray:
    """Scale-invariant SDR per source and channel (no mean removal, no permutation).

    Computed as fast_bss_eval does: coherence ρ = ⟨s, ŝ⟩² / (‖s‖²‖ŝ‖²), SI-SDR = 10·log10(ρ / (1 − ρ)),
    with ρ clamped to [δ, 1 − δ], δ = e / (1 + e), e = 10^(−clamp_db/10) (i.e. the result to ±clamp_db).

    Shapes:
        references, estimates: (N, C, L) -> (N, C)
    """
    ref, est = _as_f64(references), _as_f64(estimates)
    ref_energy = np.square(ref).sum(-1)  # (N, C)
    est_energy = np.square(est).sum(-1)  # (N, C)
    cross = (ref * est).sum(-1)  # (N, C)
    with np.errstate(invalid="ignore", divide="ignore"):
        coh = np.square(cross) / (ref_energy * est_energy)
    coh = np.nan_to_num(coh, nan=0.0, posinf=0.0)  # a silent signal has no coherence
    delta = 0.0
    if clamp_db is not None:
        e = 10.0 ** (-clamp_db / 10.0)
        delta = e / (1.0 + e)
    coh = np.clip(coh, delta, 1.0 - delta)
    with np.errstate(divide="ignore"):
        return 10.0 * np.log10(coh / (1.0 - coh))


def _stft_energy(
    x: torch.Tensor, n_fft: int, hop_length: int, block_frames: int = 2048
) -> torch.Tensor:
    """Σ|STFT(x)|² per row, computed in blocks of frames to bound memory on long tracks.

    Same STFT as the model (spec §2): Hann, centred with reflect padding, onesided, last frame dropped.

    Shapes:
        x: (M, L) float64 -> (M,)
    """
    num_frames = x.shape[-1] // hop_length  # T = L // hop (last frame dropped)
    pad = n_fft // 2
    mode = "reflect" if x.shape[-1] > pad else "constant"
    xp = torch.nn.functional.pad(x[:, None], (pad, pad), mode=mode)[:, 0]  # (M, L + n_fft)
    window = torch.hann_window(n_fft, dtype=x.dtype)
    total = torch.zeros(x.shape[0], dtype=x.dtype)
    for k0 in range(0, num_frames, block_frames):
        k1 = min(k0 + block_frames, num_frames)
        seg = xp[:, k0 * hop_length : (k1 - 1) * hop_length + n_fft]  # frames k0 .. k1-1
        spec = torch.stft(seg, n_fft, hop_length, window=window, center=False, return_complex=True)
        total += spec.abs().square().sum(dim=(-2, -1))
    return total


def spec_snr(
    references: np.ndarray, estimates: np.ndarray, n_fft: int = 2048, hop_length: int = 512
) -> np.ndarray:
    """Spectral-domain SNR per source, mean over channels (spec §14 item 12).

    Shapes:
        references, estimates: (N, C, L) -> (N,)
    """
    ref = torch.from_numpy(_as_f64(references))
    err = ref - torch.from_numpy(_as_f64(estimates))
    num_src, num_ch, length = ref.shape
    num = _stft_energy(ref.reshape(-1, length), n_fft, hop_length)  # (N*C,)
    den = _stft_energy(err.reshape(-1, length), n_fft, hop_length)  # (N*C,)
    # ASSUMPTION: the same ε as the time-domain SNR keeps silent references finite.
    out = 10.0 * torch.log10((num + SNR_EPS) / (den + SNR_EPS))
    return out.view(num_src, num_ch).mean(-1).numpy()


def csdr_frames(
    references: np.ndarray,
    estimates: np.ndarray,
    sample_rate: int = 44100,
    backend: CsdrBackend = "fast",
) -> np.ndarray:
    """BSSEval v4 SDR per source and 1-s frame (museval defaults at ``sample_rate``).

    Shapes:
        references, estimates: (N, C, L) -> (N, T)
    """
    return sdr_frames(_as_f64(references), _as_f64(estimates), sample_rate, sample_rate, backend)


def csdr(frames: np.ndarray) -> np.ndarray:
    """Per-track cSDR: nanmedian over frames (NaN when every frame is NaN).

    Shapes:
        frames: (N, T) -> (N,)
    """
    out = np.full(frames.shape[0], np.nan)
    for n, row in enumerate(frames):
        if not np.isnan(row).all():
            out[n] = np.nanmedian(row)
    return out


def score_track(
    references: np.ndarray | torch.Tensor,
    estimates: np.ndarray | torch.Tensor,
    targets: Sequence[str],
    metrics: Sequence[str],
    sample_rate: int = 44100,
    csdr_backend: CsdrBackend = "fast",
) -> dict[str, Any]:
    """Apply ``metrics`` to one track.

    Args:
        references: true sources, in ``targets`` order.
        estimates: estimated sources, same order and shape.
        targets: source names (e.g. ``TASKS["mss"].sources``).
        metrics: names from ``METRICS`` (e.g. ``TASK_METRICS["mss"]``).
        sample_rate: for the 1-s cSDR frames.
        csdr_backend: ``fast`` (ours) or ``museval``.

    Returns:
        ``{"scores": {metric: {target: dB}}, "silent_references": [target, ...],
        "csdr_frames": {target: [dB or None per frame]}}`` (``csdr_frames`` only when ``csdr`` is asked
        for; NaN frames become None). A silent reference's scores are NaN in every metric.

    Shapes:
        references, estimates: (N, C, L)
    """
    ref, est = _as_f64(references), _as_f64(estimates)
    if ref.shape[0] != len(targets) or ref.shape[:2] != est.shape[:2]:
        raise ValueError(f"shapes {ref.shape} / {est.shape} do not match {len(targets)} targets")
    est = pad_or_truncate(ref, est)
    unknown = sorted(set(metrics) - set(METRICS))
    if unknown:
        raise ValueError(f"unknown metric(s) {unknown}; known: {METRICS}")
    per_source: dict[str, np.ndarray] = {}
    result: dict[str, Any] = {"scores": {}}
    for name in metrics:
        if name in ("usdr", "snr"):
            per_source[name] = usdr(ref, est)
        elif name == "si_sdr":
            per_source[name] = si_sdr(ref, est).mean(-1)
        elif name == "spec_snr":
            per_source[name] = spec_snr(ref, est)
        elif name == "mdx_sdr":
            per_source[name] = mdx_sdr(ref, est)
        elif name == "csdr":
            frames = csdr_frames(ref, est, sample_rate, csdr_backend)  # (N, T)
            per_source[name] = csdr(frames)
            result["csdr_frames"] = {
                t: [None if np.isnan(v) else float(v) for v in row]
                for t, row in zip(targets, frames)
            }
    silent = silent_references(ref)  # (N,)
    result["silent_references"] = [t for t, s in zip(targets, silent) if s]
    for name, values in per_source.items():
        values = np.where(silent, np.nan, values)  # (N,) one convention for every metric
        result["scores"][name] = {t: float(v) for t, v in zip(targets, values)}
    if "csdr_frames" in result:
        for t, s in zip(targets, silent):
            if s:
                result["csdr_frames"][t] = [None] * len(result["csdr_frames"][t])
    return result
