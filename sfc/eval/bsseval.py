"""Framewise BSSEval v4 SDR ("cSDR" frames): a fast vectorised version and the museval reference.

PAPER: spec §9: cSDR = ``museval.evaluate(refs, ests)`` with its defaults — BSSEval v4, "images" variant
(``bsseval_sources_version=False``), time-invariant 512-tap distortion filters computed once on the whole
track (``framewise_filters=False``), window = hop = 1 s at 44.1 kHz.

Why the fast version needs no filters (read from museval 0.4 ``metrics.bss_eval``/``_bss_decomp_mtifilt``):
for reference j and its estimate, museval decomposes the zero-padded estimate of each frame as

    s_true  = s_j (zero-padded by 511 samples)
    e_spat  = P_j(s_j)   - s_true                  P_j: the 512-tap projection on source j only
    e_interf = P_all(s)  - s_true - e_spat         P_all: the projection on all references
    e_artif = ŝ - s_true - e_spat - e_interf       (literally ``-s_true - e_spat - e_interf`` then ``+= ŝ``)

and SDR = 10 log10(‖s_true‖² / ‖e_spat + e_interf + e_artif‖²). The three error terms sum to ŝ − s_true
*identically*, whatever the filters, so the v4-images SDR of a frame is

    SDR_t = 10 log10( Σ_{c, n∈t} s_j[c, n]² / Σ_{c, n∈t} (ŝ_j[c, n] − s_j[c, n])² )

(the filters and Gram matrix only matter for ISR/SIR/SAR, which the paper does not report). The rest is
museval's bookkeeping, reproduced exactly:

* estimates are zero-padded / truncated to the reference length (``pad_or_truncate``);
* frames: ``nwin = floor((L - win + hop) / hop)`` if win < L else 1; frame t = [t·hop, min(t·hop + win, L)),
  so a trailing partial frame is dropped (unless the whole track is shorter than one window);
* a frame is NaN for **every** source when any reference or any estimate is "silent" in it, museval's
  ``_any_source_silent``: the sum over channels is exactly 0 at every sample of the frame;
* a zero error energy gives +inf (``_safe_db``).

DEVIATION: museval raises ValueError when a whole reference or estimate is silent; both functions here
return all-NaN frames instead (what the framewise rule gives), so one silent stem does not stop a run.
"""

from __future__ import annotations

from typing import Literal

import numpy as np

CsdrBackend = Literal["fast", "museval"]


def num_frames(length: int, window: int, hop: int) -> int:
    """Number of BSSEval frames museval's ``Framing`` yields for ``length`` samples."""
    if window < length:
        return int(np.floor((length - window + hop) / hop))
    return 1


def frame_slices(length: int, window: int, hop: int) -> list[slice]:
    """The sample ranges of museval's frames (see module docstring)."""
    return [
        slice(t * hop, min(t * hop + window, length))
        for t in range(num_frames(length, window, hop))
    ]


def pad_or_truncate(references: np.ndarray, estimates: np.ndarray) -> np.ndarray:
    """Estimates zero-padded or cut to the reference length, as museval does.

    Shapes:
        references: (N, C, L); estimates: (N, C, L') -> (N, C, L)
    """
    length = references.shape[-1]
    if estimates.shape[-1] >= length:
        return estimates[..., :length]
    pad = [(0, 0)] * (estimates.ndim - 1) + [(0, length - estimates.shape[-1])]
    return np.pad(estimates, pad)


def _check(references: np.ndarray, estimates: np.ndarray) -> None:
    if references.ndim != 3 or estimates.ndim != 3 or references.shape[:2] != estimates.shape[:2]:
        raise ValueError(
            f"expected references and estimates of shape (N, C, L), got {references.shape} and {estimates.shape}"
        )


def _block_stats(ref: np.ndarray, est: np.ndarray, num_frames: int) -> tuple[np.ndarray, ...]:
    """Energies and silence of ``num_frames`` equal, contiguous frames filling ``ref``.

    Shapes:
        ref, est: (N, C, T*W) -> num (N, T), den (N, T), silent (T,)
    """
    n, c, length = ref.shape
    # museval's silence test: channel sum exactly 0 at every sample, in the input dtype as museval does.
    silent = (ref.sum(axis=1) == 0).reshape(n, num_frames, -1).all(-1).any(0)  # (T,)
    silent |= (est.sum(axis=1) == 0).reshape(n, num_frames, -1).all(-1).any(0)
    ref64 = ref.astype(np.float64)
    num = np.square(ref64).reshape(n, c, num_frames, -1).sum(axis=(1, 3))  # (N, T)
    den = np.square(est.astype(np.float64) - ref64).reshape(n, c, num_frames, -1).sum(axis=(1, 3))
    return num, den, silent


def _frame_stats(
    references: np.ndarray, estimates: np.ndarray, slices: list[slice], block: int = 4
):
    """Per-frame reference energy, error energy and silence, in blocks to bound memory.

    Shapes:
        references, estimates: (N, C, L) -> num (N, T), den (N, T), silent (T,)
    """
    width = slices[0].stop - slices[0].start
    contiguous = all(
        s.start == t * width and s.stop - s.start == width for t, s in enumerate(slices)
    )
    parts = []
    if contiguous:  # museval's default (hop == window), or one frame: reshape blocks of frames
        for t0 in range(0, len(slices), block):
            t1 = min(t0 + block, len(slices))
            win = slice(t0 * width, t1 * width)
            parts.append(_block_stats(references[..., win], estimates[..., win], t1 - t0))
    else:  # overlapping or uneven frames: one at a time
        parts = [_block_stats(references[..., w], estimates[..., w], 1) for w in slices]
    num, den, silent = (np.concatenate(p, axis=-1) for p in zip(*parts))
    return num, den, silent


def sdr_frames_fast(
    references: np.ndarray, estimates: np.ndarray, window: int = 44100, hop: int = 44100
) -> np.ndarray:
    """Framewise BSSEval v4 (images) SDR, identical to ``museval.evaluate(...)[0]`` (module docstring).

    Args:
        references: true sources.
        estimates: estimated sources (padded/cut to the reference length).
        window: frame length in samples (museval default: 1 s at 44.1 kHz).
        hop: frame hop in samples.

    Returns:
        SDR in dB per source and frame; NaN in frames where any source is silent.

    Shapes:
        references, estimates: (N, C, L) -> (N, T)
    """
    references, estimates = np.asarray(references), np.asarray(estimates)
    _check(references, estimates)
    estimates = pad_or_truncate(references, estimates)
    slices = frame_slices(references.shape[-1], window, hop)
    out = np.full((references.shape[0], len(slices)), np.nan)  # (N, T)
    whole_silent = (references.sum(axis=1) == 0).all(-1).any() or (estimates.sum(axis=1) == 0).all(
        -1
    ).any()
    if whole_silent:  # a whole stem silent: every frame is NaN (see DEVIATION above)
        return out
    num, den, silent = _frame_stats(references, estimates, slices)
    with np.errstate(divide="ignore"):
        sdr = np.where(
            den == 0, np.inf, 10.0 * np.log10(num / np.where(den == 0, 1.0, den))
        )  # (N, T)
    out[:, ~silent] = sdr[:, ~silent]
    return out


def sdr_frames_museval(
    references: np.ndarray, estimates: np.ndarray, window: int = 44100, hop: int = 44100
) -> np.ndarray:
    """Framewise SDR from ``museval.evaluate`` (the slow reference; ~48 s per minute of 4-stem stereo).

    Shapes:
        references, estimates: (N, C, L) -> (N, T)
    """
    import museval  # lazy: slow import, and only this backend needs it

    references, estimates = np.asarray(references), np.asarray(estimates)
    _check(references, estimates)
    est = pad_or_truncate(references, estimates)
    if (references.sum(axis=1) == 0).all(axis=1).any() or (est.sum(axis=1) == 0).all(axis=1).any():
        return np.full((references.shape[0], num_frames(references.shape[-1], window, hop)), np.nan)
    sdr, _, _, _ = museval.evaluate(
        np.transpose(references, (0, 2, 1)), np.transpose(est, (0, 2, 1)), win=window, hop=hop
    )  # (N, T)
    return np.asarray(sdr, dtype=np.float64)


def sdr_frames(
    references: np.ndarray,
    estimates: np.ndarray,
    window: int = 44100,
    hop: int = 44100,
    backend: CsdrBackend = "fast",
) -> np.ndarray:
    """Framewise BSSEval v4 SDR with the chosen backend (``fast`` or ``museval``).

    Shapes:
        references, estimates: (N, C, L) -> (N, T)
    """
    if backend == "fast":
        return sdr_frames_fast(references, estimates, window, hop)
    if backend == "museval":
        return sdr_frames_museval(references, estimates, window, hop)
    raise ValueError(f"unknown cSDR backend {backend!r}; use 'fast' or 'museval'")
