"""TF-Locoformer's ConvSwiGLU: the conv1d form of the transposed convolution against conv_transpose1d."""

from __future__ import annotations

import contextlib

import pytest
import torch

from sfc.bench.reference import reference_formulation, transposed_conv_forward
from sfc.models import build_model
from sfc.models.tf_locoformer import ConvSwiGLU

pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.mark.parametrize("kernel_size, length", [(8, 1), (8, 37), (3, 5), (1, 9)])
def test_conv_form_equals_transposed_conv_with_gradients(kernel_size, length):
    torch.manual_seed(0)
    ffn = ConvSwiGLU(dim=12, hidden=16, kernel_size=kernel_size, dropout=0.0)
    with torch.no_grad():
        ffn.deconv.bias.normal_()  # a non-zero bias must come through too
    x = torch.randn(3, length, 12, requires_grad=True)
    grads = []
    for fwd in (ffn.forward, lambda t: transposed_conv_forward(ffn, t)):
        ffn.zero_grad()
        x.grad = None
        out = fwd(x)
        (out * torch.linspace(-1, 1, out.numel()).view_as(out)).sum().backward()
        grads.append([out.detach(), x.grad] + [p.grad for p in ffn.parameters()])
    assert grads[0][0].shape == (3, length, 12)
    for ours, ref in zip(*grads):
        torch.testing.assert_close(ours, ref, rtol=1e-5, atol=5e-6)


def test_state_dict_keeps_the_transposed_conv_layout():
    ffn = ConvSwiGLU(dim=12, hidden=16, kernel_size=8, dropout=0.1)
    shapes = {k: tuple(v.shape) for k, v in ffn.state_dict().items()}
    assert shapes == {
        "conv.weight": (32, 12, 8),
        "conv.bias": (32,),
        "deconv.weight": (16, 12, 8),  # ConvTranspose1d: (in, out, k)
        "deconv.bias": (12,),
    }


@pytest.mark.parametrize(
    "experiment", ["mss-sfc_ca-tiny-k32", "mss-band_split-tiny-k16", "mss-sfc_mamba-tiny-k32"]
)
def test_whole_model_outputs_and_gradients_unchanged(experiment):
    """Module level: same weights, new vs reference formulation, outputs and gradients <= 5e-6."""
    torch.manual_seed(0)
    model = build_model(experiment)
    model.eval()  # no dropout; gradients still flow
    mix = torch.randn(1, model.num_channels, model.sample_rate // 2) * 0.1
    results = []
    for context in (contextlib.nullcontext(), reference_formulation()):
        model.zero_grad()
        with context:
            out = model(mix)
            out.square().mean().backward()
        results.append([out.detach()] + [p.grad.clone() for p in model.parameters()])
    for ours, ref in zip(*results):
        scale = max(1.0, ref.abs().max().item())
        assert (ours - ref).abs().max().item() <= 5e-6 * scale


def test_reference_formulation_is_restored():
    forward = ConvSwiGLU.forward
    with reference_formulation():
        assert ConvSwiGLU.forward is transposed_conv_forward
    assert ConvSwiGLU.forward is forward
