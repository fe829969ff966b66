"""LightSAFT-Net's evaluation pieces: the MDX SDR (channels pooled, eps 1e-7, mean over tracks) and the
trimmed non-overlapping windows (lightsaft.md §5)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch
from torch import nn

from sfc.eval.metrics import mdx_sdr, score_track, usdr
from sfc.eval.separate import separate_track_trimmed
from sfc.eval.table import aggregate


def test_mdx_sdr_pools_channels_hand_computed():
    ref = np.array([[[1.0, 2.0], [3.0, 4.0]]])  # (N=1, C=2, L=2): energy 30
    est = np.array([[[1.0, 1.0], [3.0, 3.0]]])  # error energy 1 + 1 = 2
    expected = 10 * np.log10((30 + 1e-7) / (2 + 1e-7))  # 11.76 dB, pooled over both channels
    np.testing.assert_allclose(mdx_sdr(ref, est), [expected], rtol=1e-12)
    # the per-channel mean (uSDR) is 10.48 dB: pooling is not the channel mean
    assert abs(usdr(ref, est)[0] - expected) > 1.0
    # eps 1e-7 (not 1e-8): a silent reference with a silent estimate scores 0 dB, a perfect one huge
    assert mdx_sdr(np.zeros((1, 2, 3)), np.zeros((1, 2, 3)))[0] == 0.0
    np.testing.assert_allclose(mdx_sdr(ref, ref), [10 * np.log10((30 + 1e-7) / 1e-7)])


def test_mdx_sdr_is_scored_per_track_and_averaged_over_tracks():
    rng = np.random.default_rng(0)
    targets = ("bass", "drums", "vocals", "other")
    rows = []
    per_track = []
    for track in ("a", "b", "c"):
        ref = rng.standard_normal((4, 2, 500))
        est = ref + rng.uniform(0.1, 1.0) * rng.standard_normal((4, 2, 500))
        res = score_track(ref, est, targets, ["mdx_sdr"])
        per_track.append([res["scores"]["mdx_sdr"][t] for t in targets])
        rows += [["m", track, t, "mdx_sdr", v] for t, v in res["scores"]["mdx_sdr"].items()]
    agg = aggregate(
        pd.DataFrame(rows, columns=["experiment", "track", "target", "metric", "value"])
    )
    avg = agg[(agg.target == "avg")].value.item()
    assert avg == pytest.approx(np.mean(per_track))  # mean over songs of the mean over stems
    assert set(agg["aggregate"]) == {"mean"}


class PositionModel(nn.Module):
    """Source 0 = the mixture, source 1 = each sample's position inside its window."""

    num_channels, num_sources, sample_rate = 1, 2, 10

    def forward(self, mix: torch.Tensor) -> torch.Tensor:  # (B, C, L) -> (B, N, C, L)
        pos = torch.arange(mix.shape[-1], dtype=mix.dtype).expand_as(mix)
        return torch.stack([mix, pos], dim=1)


@pytest.mark.parametrize("length", [1, 7, 16, 17, 40])
def test_trimmed_windows_keep_the_centres_without_overlap(length):
    # window 2.0 s = 20 samples, trim 0.4 s = 4 samples: centres of 12 samples, hop 12
    mix = torch.randn(1, length)
    out = separate_track_trimmed(PositionModel(), mix, 2.0, 0.4, batch_size=2)
    assert out.shape == (2, 1, length)
    torch.testing.assert_close(out[0], mix)  # front padding by the trim, then cut: aligned
    expected = torch.arange(length) % 12 + 4  # every output sample comes from a window's centre
    torch.testing.assert_close(out[1, 0], expected.float())


def test_trimmed_windows_reject_a_trim_that_eats_the_window():
    with pytest.raises(ValueError, match="2·trim < window"):
        separate_track_trimmed(PositionModel(), torch.randn(1, 30), 1.0, 0.5)
