"""TF-Locoformer's ConvSwiGLU: the conv1d form of the transposed convolution against conv_transpose1d."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from sfc.models import build_model
from sfc.models.tf_locoformer import ConvSwiGLU

pytestmark = pytest.mark.usefixtures("one_thread")


def transposed_forward(self: ConvSwiGLU, x: torch.Tensor) -> torch.Tensor:
    """The authors' formulation: conv, SwiGLU, ConvTranspose1d, then crop [k-1, k-1+S)."""
    length = x.shape[1]
    h = self.conv(F.pad(x.transpose(1, 2), (self.pad, self.pad)))  # (B', 2H, S + k - 1)
    value, gate = h.chunk(2, dim=1)
    h = self.dropout(value * F.silu(gate))
    h = self.deconv(h)[..., self.pad : self.pad + length]  # (B', D, S)
    return self.dropout(h.transpose(1, 2))


@pytest.mark.parametrize("kernel_size, length", [(8, 1), (8, 37), (3, 5), (1, 9)])
def test_conv_form_equals_transposed_conv_with_gradients(kernel_size, length):
    torch.manual_seed(0)
    ffn = ConvSwiGLU(dim=12, hidden=16, kernel_size=kernel_size, dropout=0.0)
    with torch.no_grad():
        ffn.deconv.bias.normal_()  # a non-zero bias must come through too
    x = torch.randn(3, length, 12, requires_grad=True)
    grads = []
    for fwd in (ffn.forward, lambda t: transposed_forward(ffn, t)):
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


def test_whole_model_output_unchanged(monkeypatch):
    torch.manual_seed(0)
    model = build_model("mss-sfc_ca-tiny-k32").eval()
    mix = torch.randn(1, model.num_channels, model.sample_rate // 2) * 0.1
    with torch.no_grad():
        ours = model(mix)
        monkeypatch.setattr(ConvSwiGLU, "forward", transposed_forward)
        ref = model(mix)
    torch.testing.assert_close(ours, ref, rtol=0, atol=5e-6)
