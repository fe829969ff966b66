"""The formulation before the CPU performance work (issue 12), for parity tests and "before" figures.

Two code paths changed without changing any state dict:

* ``ConvSwiGLU`` ran its output layer as ``ConvTranspose1d`` and cropped [k-1, k-1+S); it now runs the
  equivalent valid ``conv1d`` with the flipped, transposed kernel.
* ``Mamba``'s pure-PyTorch scan let autograd keep every state, decay and input
  (``selective_scan_chunked``); it now recomputes them per chunk in its backward
  (``sfc.models.mamba_scan``).

``reference_formulation()`` swaps the old paths back in for the duration of a ``with`` block, so that
the benchmark (``python -m sfc.bench``) and the tests compare both on the same weights.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import torch
import torch.nn.functional as F

from sfc.models import mamba
from sfc.models.tf_locoformer import ConvSwiGLU


def transposed_conv_forward(self: ConvSwiGLU, x: torch.Tensor) -> torch.Tensor:
    """The authors' ConvSwiGLU: conv, SwiGLU, ConvTranspose1d, then the crop [k-1, k-1+S).

    Shapes:
        x (B', S, D) -> (B', S, D)
    """
    length = x.shape[1]
    h = self.conv(F.pad(x.transpose(1, 2), (self.pad, self.pad)))  # (B', 2H, S + k - 1)
    value, gate = h.chunk(2, dim=1)
    h = self.dropout(value * F.silu(gate))  # (B', H, S + k - 1)
    h = self.deconv(h)[..., self.pad : self.pad + length]  # (B', D, S)
    return self.dropout(h.transpose(1, 2))


@contextlib.contextmanager
def reference_formulation() -> Iterator[None]:
    """Run ConvSwiGLU and the pure-PyTorch Mamba scan as before issue 12 inside the block."""
    saved = ConvSwiGLU.forward, mamba.selective_scan
    ConvSwiGLU.forward = transposed_conv_forward
    mamba.selective_scan = mamba.selective_scan_chunked
    try:
        yield
    finally:
        ConvSwiGLU.forward, mamba.selective_scan = saved
