"""Selective scan whose backward recomputes the states per chunk (memory-lean training without CUDA).

PAPER: Sec. III-C; as mamba_ssm's CUDA kernel, the backward pass recomputes the scan states instead of
keeping them for autograd. Recurrence (per channel e, state n):

    h_t = a_t * h_{t-1} + x_t,   a_t = exp(dt_t A),   x_t = dt_t u_t B_t,   y_t = sum_n C_t h_t

Forward: chunks of Q steps; per chunk a_t and x_t are formed in one vectorised pass and the states
overwrite x in place (one fused multiply-add per step, no autograd graph); only the state entering each
chunk is kept, (L / Q) x B' x E x N numbers instead of 3 x L x B' x E x N.

Backward, chunks in reverse: recompute the chunk's states from its entry state, then the adjoint
    g_t = dL/dh_t = dy_t C_t + a_{t+1} g_{t+1}
(one fused multiply-add per step), and everything else in vectorised form:
    dC_t = sum_e dy_t h_t,   dx_t = g_t,   d(dt_t A) = g_t h_{t-1} a_t,
    dA = sum d(dt A) dt,   d dt += sum_n d(dt A) A + sum_n g B u,   du = sum_n g B dt,   dB = sum_e g dt u.
Equal to autograd through the chunked scan to float32 rounding (tests/models/test_mamba.py).

Everything runs time-major, (L, B', ...), so that one step is a contiguous slice, with states laid out
(B', N, E).
"""

from __future__ import annotations

import torch


def _chunk_terms(
    u: torch.Tensor, delta: torch.Tensor, A_t: torch.Tensor, B: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor]:
    """Decays exp(dt A) and inputs dt u B of one time-major chunk, each (Q, B', N, E)."""
    decay = torch.exp(delta.unsqueeze(2) * A_t)  # (Q, B', N, E)
    drive = (delta * u).unsqueeze(2) * B.unsqueeze(-1)  # (Q, B', N, E)
    return decay, drive


def _states_in_place(decay: torch.Tensor, drive: torch.Tensor, h0: torch.Tensor) -> torch.Tensor:
    """Run h_t = a_t h_{t-1} + x_t over a chunk, overwriting ``drive`` with the states (Q, B', N, E)."""
    prev = h0
    for a_t, x_t in zip(decay, drive):
        x_t.addcmul_(a_t, prev)  # (B', N, E)
        prev = x_t
    return drive


class RecomputedSelectiveScan(torch.autograd.Function):
    """Autograd function of the chunked scan with per-chunk recomputation.

    Inputs are time-major, u and delta (L, B', E), B and C (L, B', N), and A is given transposed,
    A_t (N, E): states are laid out (B', N, E) so that E, the longer axis, is the contiguous one (the
    broadcasts and reductions then vectorise; 2-4x faster on CPU than (B', E, N)).
    """

    @staticmethod
    def forward(ctx, u, delta, A_t, B, C, chunk_size: int):  # noqa: ANN001, ANN205 - autograd API
        length = u.shape[0]
        h = u.new_zeros(u.shape[1], A_t.shape[0], u.shape[2])  # (B', N, E)
        y = u.new_empty(u.shape)  # (L, B', E)
        entries = []
        for start in range(0, length, chunk_size):
            part = slice(start, start + chunk_size)
            entries.append(h)
            states = _states_in_place(*_chunk_terms(u[part], delta[part], A_t, B[part]), h)
            torch.sum(states * C[part].unsqueeze(-1), 2, out=y[part])  # (Q, B', E)
            h = states[-1].clone()  # (B', N, E); drops the rest of the chunk
        ctx.chunk_size = chunk_size
        ctx.save_for_backward(u, delta, A_t, B, C, torch.stack(entries))  # entries (L/Q, B', N, E)
        return y

    @staticmethod
    def backward(ctx, dy):  # noqa: ANN001, ANN205 - autograd API
        u, delta, A_t, B, C, entries = ctx.saved_tensors
        q = ctx.chunk_size
        dy = dy.contiguous()  # (L, B', E)
        du, ddelta = torch.empty_like(u), torch.empty_like(delta)  # (L, B', E)
        dB, dC = torch.empty_like(B), torch.empty_like(C)  # (L, B', N)
        dA_t = torch.zeros_like(A_t)  # (N, E)
        carry = None  # dL/dh at the end of the chunk from later steps: a_{t+1} g_{t+1}
        for index in reversed(range(entries.shape[0])):
            part = slice(index * q, (index + 1) * q)
            u_c, dt_c, B_c, C_c, dy_c = u[part], delta[part], B[part], C[part], dy[part]
            decay, states = _chunk_terms(u_c, dt_c, A_t, B_c)  # (Q, B', N, E)
            states = _states_in_place(decay, states, entries[index])
            torch.sum(states * dy_c.unsqueeze(2), -1, out=dC[part])  # (Q, B', N)
            g = dy_c.unsqueeze(2) * C_c.unsqueeze(-1)  # (Q, B', N, E)
            if carry is not None:
                g[-1] += carry
            for t in range(g.shape[0] - 2, -1, -1):  # adjoint, backwards in time
                g[t].addcmul_(decay[t + 1], g[t + 1])
            carry = decay[0] * g[0]  # (B', N, E)
            # d(dt A) = g_t h_{t-1} a_t, with h_{t-1} the chunk's entry state for t = 0
            dz = g * decay  # (Q, B', N, E)
            dz[1:] *= states[:-1]
            dz[0] *= entries[index]
            dA_t += (dz * dt_c.unsqueeze(2)).sum((0, 1))
            d_dtu = (g * B_c.unsqueeze(-1)).sum(2)  # d(dt u) (Q, B', E)
            torch.sum(g * (dt_c * u_c).unsqueeze(2), -1, out=dB[part])  # (Q, B', N)
            torch.mul(d_dtu, dt_c, out=du[part])
            torch.addcmul((dz * A_t).sum(2), d_dtu, u_c, out=ddelta[part])
        return du, ddelta, dA_t, dB, dC, None


def selective_scan_recomputed(
    u: torch.Tensor,
    delta: torch.Tensor,
    A: torch.Tensor,
    B: torch.Tensor,
    C: torch.Tensor,
    chunk_size: int = 16,
) -> torch.Tensor:
    """Chunked selective scan with O(activations) autograd memory (the default pure-PyTorch scan).

    Args:
        u: inputs (B', L, E).
        delta: positive step sizes (B', L, E) (after softplus).
        A: negative state matrix (E, N).
        B: input projections (B', L, N).
        C: output projections (B', L, N).
        chunk_size: steps per chunk Q (memory of one chunk: Q x B' x E x N, a few in the backward).

    Returns:
        y (B', L, E), without the D skip and the SiLU gate.
    """
    if chunk_size < 1:
        raise ValueError(f"chunk_size must be >= 1, got {chunk_size}")
    u, delta, B, C = (t.transpose(0, 1).contiguous() for t in (u, delta, B, C))  # (L, B', .)
    A_t = A.transpose(0, 1).contiguous()  # (N, E)
    y = RecomputedSelectiveScan.apply(u, delta, A_t, B, C, chunk_size)  # (L, B', E)
    return y.transpose(0, 1)  # (B', L, E)
