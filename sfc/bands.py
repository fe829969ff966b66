"""The "musical" band layout of BandIt, used by every encoder/decoder of the paper.

PAPER: Sec. II / IV (all models use the Musical split); spec §3.1.

K centre frequencies are equally spaced in MIDI pitch between one STFT bin (df = fs / n_fft) and
Nyquist (10 octaves for n_fft = 2048). Band k covers the bins floor(c_k / m / df) ... ceil(c_k * m / df)
(inclusive), m = 2 ** (octaves / K); band 0 reaches down to bin 0 and band K-1 up to Nyquist. Bands
overlap; the band-split decoder weights each bin by 1 / (number of bands covering it).
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np
import torch

from sfc.errors import UserError

Band = tuple[int, int]  # [start, end) in STFT bins


def _hz_to_midi(f: np.ndarray | float) -> np.ndarray:
    # PAPER: librosa's formula, log2(f) - log2(440), as the authors' BandIt filterbank computes it.
    return 12.0 * (np.log2(np.asarray(f, dtype=np.float64)) - np.log2(440.0)) + 69.0


def _midi_to_hz(m: np.ndarray) -> np.ndarray:
    return 440.0 * 2.0 ** ((np.asarray(m, dtype=np.float64) - 69.0) / 12.0)


@lru_cache(maxsize=64)
def musical_bands(num_bands: int, n_fft: int = 2048, sample_rate: int = 44100) -> tuple[Band, ...]:
    """Band edges of the musical layout.

    Args:
        num_bands: number of bands K (>= 2).
        n_fft: STFT size; the number of bins is F = n_fft // 2 + 1.
        sample_rate: sampling rate in Hz.

    Returns:
        K pairs (start, end), half-open bin ranges, ordered from low to high frequency.
    """
    if num_bands < 2:
        raise UserError(f"num_bands must be >= 2, got {num_bands}")
    num_freqs = n_fft // 2 + 1
    df = sample_rate / n_fft
    f_min, f_max = df, sample_rate / 2
    # PAPER: the authors' numpy float64 arithmetic, step for step (np.linspace of MIDI pitches, np.power
    # for the multiplier). For K = 2, 5, 10 some limits fall exactly on a bin, and any other order of
    # operations rounds them to the other side (K = 2: band 1 starts at bin 31 here, 32 otherwise).
    mult = np.power(2.0, np.log2(f_max / f_min) / num_bands)
    lo_midi, hi_midi = max(0.0, float(_hz_to_midi(f_min))), float(_hz_to_midi(f_max))
    centres = _midi_to_hz(np.linspace(lo_midi, hi_midi, num_bands))  # (K,) Hz
    starts = np.floor(centres / mult / df).astype(int)
    ends = np.minimum(
        np.ceil(centres * mult / df).astype(int) + 1, num_freqs
    )  # inclusive -> [s, e)
    bands = [(int(s), int(e)) for s, e in zip(starts, ends)]
    bands[0] = (0, bands[0][1])
    bands[-1] = (bands[-1][0], num_freqs)
    return tuple(bands)


def band_membership(bands: tuple[Band, ...], num_freqs: int) -> torch.Tensor:
    """Boolean matrix (K, F): entry [k, f] is True when bin f belongs to band k."""
    member = torch.zeros(len(bands), num_freqs, dtype=torch.bool, device="cpu")  # constant table
    for k, (start, end) in enumerate(bands):
        member[k, start:end] = True
    return member


def overlap_weights(bands: tuple[Band, ...], num_freqs: int) -> torch.Tensor:
    """Per-bin weight 1 / (number of bands covering the bin), shape (F,)."""
    count = band_membership(bands, num_freqs).sum(0)
    if bool((count == 0).any()):
        raise ValueError("the band layout leaves some bins uncovered")
    return 1.0 / count.float()
