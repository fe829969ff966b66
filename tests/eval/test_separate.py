"""Chunked separation: overlap averaging, silent-chunk skipping, short tracks, and a real tiny model."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from sfc.eval.separate import chunk_starts, separate_track


class ToyModel(nn.Module):
    """Obeys the model contract at a 10 Hz "sample rate" so chunks are a few samples long.

    mode ``scale``: source n = (n + 1) · mix (chunking must be invisible);
    mode ``mean``: source n = (n + 1) · the chunk's mean over samples (reveals every chunk boundary).
    """

    def __init__(self, mode: str, num_channels: int = 2, num_sources: int = 3):
        super().__init__()
        self.mode, self.num_channels, self.num_sources, self.sample_rate = (
            mode,
            num_channels,
            num_sources,
            10,
        )
        self.gain = nn.Parameter(torch.arange(1.0, num_sources + 1))  # (N,)
        self.seen: list[torch.Tensor] = []

    def forward(self, mix: torch.Tensor) -> torch.Tensor:  # (B, C, L) -> (B, N, C, L)
        self.seen.append(mix.clone())
        x = mix if self.mode == "scale" else mix.mean(-1, keepdim=True).expand_as(mix)
        return self.gain.view(1, -1, 1, 1) * x.unsqueeze(1)


def test_chunk_starts():
    assert chunk_starts(5, 10, 5) == [0]  # shorter than a chunk
    assert chunk_starts(10, 10, 5) == [0]
    assert chunk_starts(11, 10, 5) == [0, 5]
    assert chunk_starts(23, 10, 5) == [0, 5, 10, 15]
    assert chunk_starts(30, 10, 10) == [0, 10, 20]


@pytest.mark.parametrize("length", [3, 10, 23, 57])
@pytest.mark.parametrize("batch_size", [1, 3])
def test_identity_like_model_chunked_equals_unchunked(length, batch_size):
    model = ToyModel("scale")
    mix = torch.randn(2, length)
    out = separate_track(model, mix, chunk_seconds=1.0, shift_seconds=0.5, batch_size=batch_size)
    assert out.shape == (3, 2, length) and out.dtype == torch.float32
    torch.testing.assert_close(out, torch.arange(1.0, 4).view(3, 1, 1) * mix, rtol=0, atol=1e-6)
    assert all(
        chunk.shape[-1] == 10 for chunk in model.seen
    )  # every call sees a full, padded chunk


def test_overlap_average_and_silent_chunk_exactly():
    model = ToyModel("mean", num_channels=1, num_sources=1)
    mix = torch.zeros(1, 23)  # chunks of 10 samples at 0, 5, 10, 15 (last one zero-padded to 25)
    mix[0, :5] = 2.0  # chunk 0 mean 1.0
    mix[0, 15:23] = (
        4.0  # chunk 2 (10..20) mean 2.0, chunk 3 (15..25) mean 3.2; chunk 1 (5..15) silent
    )
    out = separate_track(model, mix, chunk_seconds=1.0, shift_seconds=0.5, batch_size=2)[0, 0]
    expected = torch.tensor(
        [1.0] * 5
        + [(1.0 + 0.0) / 2] * 5
        + [(0.0 + 2.0) / 2] * 5
        + [(2.0 + 3.2) / 2] * 5
        + [3.2] * 3
    )
    torch.testing.assert_close(out, expected)
    assert (
        sum(batch.shape[0] for batch in model.seen) == 3
    )  # the silent chunk never reached the model
    assert [b.shape[0] for b in model.seen] == [2, 1]  # batched


def test_all_silent_track_and_mode_restored():
    model = ToyModel("scale").train()
    out = separate_track(model, torch.zeros(2, 25), chunk_seconds=1.0, shift_seconds=0.5)
    assert out.abs().max() == 0 and not model.seen
    assert model.training  # the caller's mode is put back


def test_bad_arguments():
    model = ToyModel("scale")
    with pytest.raises(ValueError, match="2-channel"):
        separate_track(model, torch.randn(1, 30), 1.0, 0.5)
    with pytest.raises(ValueError, match="shift"):
        separate_track(model, torch.randn(2, 30), 1.0, 1.5)
    with pytest.raises(ValueError, match=r"\(C, L\)"):
        separate_track(model, torch.randn(1, 2, 30), 1.0, 0.5)


@pytest.fixture(scope="module")
def tiny_model():
    from sfc.models import build_model

    torch.manual_seed(0)
    return build_model("mss-sfc_ca-tiny-k32").eval()


def test_real_tiny_model_single_chunk_equals_direct_call_and_batching_is_invisible(tiny_model):
    sr = tiny_model.sample_rate
    mix = 0.1 * torch.randn(2, int(0.5 * sr))
    with torch.inference_mode():
        direct = tiny_model(mix[None])[0]  # (N, C, L)
    one_chunk = separate_track(tiny_model, mix, chunk_seconds=0.5, shift_seconds=0.25)
    torch.testing.assert_close(one_chunk, direct, rtol=1e-4, atol=1e-5)
    a = separate_track(tiny_model, mix, chunk_seconds=0.3, shift_seconds=0.15, batch_size=1)
    b = separate_track(tiny_model, mix, chunk_seconds=0.3, shift_seconds=0.15, batch_size=5)
    assert a.shape == (4, 2, mix.shape[-1]) and torch.isfinite(a).all()
    torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-5)
    assert not torch.allclose(a, one_chunk, atol=1e-4)  # chunking does change a real model's output


def test_bf16_precision_on_cpu_is_opt_in_and_close(tiny_model):
    """``precision="bf16"`` autocasts on CPU (outputs change a little); auto and fp32 are the fp32 path."""
    sr = tiny_model.sample_rate
    mix = 0.1 * torch.randn(2, int(0.5 * sr))
    kwargs = dict(chunk_seconds=0.5, shift_seconds=0.25)
    auto = separate_track(tiny_model, mix, **kwargs)
    assert torch.equal(separate_track(tiny_model, mix, precision="fp32", **kwargs), auto)
    bf16 = separate_track(tiny_model, mix, precision="bf16", **kwargs)
    assert bf16.dtype == torch.float32 and not torch.equal(bf16, auto)
    snr = 10 * torch.log10(auto.square().sum() / (bf16 - auto).square().sum())
    assert snr > 20.0  # bf16 has 8 mantissa bits; the difference stays small
    with pytest.raises(ValueError, match="precision"):
        separate_track(tiny_model, mix, precision="fp16", **kwargs)


@pytest.mark.parametrize("batch_size", [1, 2, 3])
def test_stream_yields_early_and_equals_the_whole_track(batch_size):
    from sfc.eval.separate import separate_stream

    model = ToyModel("mean")  # every chunk boundary shows in the output
    mix = torch.randn(2, 97)
    mix[:, 30:52] = 0.0  # silent chunks (20..30 and 30..40 partly) are skipped, still counted
    reads: list[int] = []

    def read(start, stop):
        reads.append(stop)
        return mix[:, start:stop]

    blocks, seen_at_yield = [], []
    for block in separate_stream(model, read, 97, 1.0, 0.5, batch_size):
        blocks.append(block)
        seen_at_yield.append(max(reads))
    whole = separate_track(ToyModel("mean"), mix, 1.0, 0.5, batch_size)
    torch.testing.assert_close(torch.cat(blocks, -1), whole)
    assert len(blocks) > 1 and sum(b.shape[-1] for b in blocks) == 97
    # bounded look-ahead: a block is out once at most `batch_size` more chunks were read
    assert seen_at_yield[0] <= 10 + batch_size * 5
    assert all(b.shape[-1] <= 10 + batch_size * 5 for b in blocks)
