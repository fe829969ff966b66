"""Mamba (v1) block in pure PyTorch, state-dict compatible with ``mamba_ssm.Mamba``.

PAPER: Sec. III-C; spec §6.1 (code uses mamba-ssm v1 ``Mamba`` with d_state 8, d_conv 4, expand 1).

Parameter names, shapes and initialisation follow mamba_ssm's ``Mamba`` so that a state dict moves
between the two:

    in_proj   Linear(D -> 2E, no bias)           E = expand * D
    conv1d    depthwise causal Conv1d(E, E, d_conv, padding d_conv - 1, bias)
    x_proj    Linear(E -> R + 2N, no bias)       R = dt_rank = ceil(D / 16), N = d_state
    dt_proj   Linear(R -> E, bias)               weight ~ U(+-R^-0.5), bias = softplus^-1(dt),
                                                 dt ~ log-uniform[dt_min, dt_max] (floored at 1e-4)
    A_log     (E, N) = log(1 .. N) per channel   A = -exp(A_log)
    D         (E,) ones
    out_proj  Linear(E -> D, no bias)

Selective scan (per channel e, state n; dt = softplus(dt_proj(.))):
    h_t = exp(dt_t A) * h_{t-1} + dt_t B_t u_t,    y_t = C_t . h_t + D u_t,    out = y * SiLU(z)

Dispatch: on CUDA with mamba_ssm importable, its fused kernels run the block (``mamba_inner_fn`` when
causal-conv1d is installed, else ``selective_scan_fn``); everywhere else the pure-PyTorch chunked scan
(exact: the same recurrence, 1e-6 from the step-by-step reference in fp32) whose backward recomputes
the states per chunk as mamba_ssm's kernel does (``sfc.models.mamba_scan``).
"""

from __future__ import annotations

import functools
import math
import warnings
from types import SimpleNamespace

import torch
import torch.nn.functional as F
from torch import nn

from sfc.models.mamba_scan import selective_scan_recomputed


def selective_scan_naive(
    u: torch.Tensor, delta: torch.Tensor, A: torch.Tensor, B: torch.Tensor, C: torch.Tensor
) -> torch.Tensor:
    """Sequential reference scan, one step per position (slow; for tests and the benchmark).

    Args:
        u: inputs (B', L, E).
        delta: positive step sizes (B', L, E) (after softplus).
        A: negative state matrix (E, N).
        B: input projections (B', L, N).
        C: output projections (B', L, N).

    Returns:
        y (B', L, E), without the D skip and the SiLU gate.
    """
    h = u.new_zeros(u.shape[0], u.shape[2], A.shape[1])  # (B', E, N)
    ys = []
    # unbind, not x[:, t]: the backward of L selects would zero-fill L full-size gradients
    for u_t, dt_t, b_t, c_t in zip(*(x.unbind(1) for x in (u, delta, B, C))):
        decay = torch.exp(dt_t[..., None] * A)  # (B', E, N)
        h = decay * h + (dt_t * u_t)[..., None] * b_t[:, None, :]  # (B', E, N)
        ys.append((h * c_t[:, None, :]).sum(-1))  # (B', E)
    return torch.stack(ys, dim=1)  # (B', L, E)


def _chunk_inputs(
    u: torch.Tensor, delta: torch.Tensor, A: torch.Tensor, B: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-step decay exp(dt A) and input dt B u, each (B', Q, E, N)."""
    decay = torch.exp(delta.unsqueeze(-1) * A)  # (B', Q, E, N)
    drive = (delta * u).unsqueeze(-1) * B.unsqueeze(2)  # (B', Q, E, N)
    return decay, drive


def selective_scan_chunked(
    u: torch.Tensor,
    delta: torch.Tensor,
    A: torch.Tensor,
    B: torch.Tensor,
    C: torch.Tensor,
    chunk_size: int = 64,
) -> torch.Tensor:
    """Chunked scan (the default): vectorised set-up and read-out per chunk, one fused op per step.

    Per chunk of `chunk_size` steps the decays and inputs are computed in one vectorised pass, the
    recurrence h <- a h + x runs as a single addcmul per step (exact and overflow-free: only decays
    exp(dt A) <= 1 multiply), and C . h is read out by one einsum. This is work-efficient and keeps
    the working set of a chunk in cache, which on a CPU beats the log-depth parallel scan (measured by
    ``python -m sfc.bench.mamba``); without autograd the memory is O(B' Q E N) instead of O(B' L E N).

    Returns:
        y (B', L, E), without the D skip and the SiLU gate.
    """
    # Autograd keeps every state, decay and input here, O(B' L E N) memory per block in training; the
    # default ``selective_scan`` runs this forward with a recomputing backward (sfc.models.mamba_scan).
    h = u.new_zeros(u.shape[0], u.shape[2], A.shape[1])  # (B', E, N)
    ys = []
    for start in range(0, u.shape[1], chunk_size):
        part = slice(start, start + chunk_size)
        decay, drive = _chunk_inputs(u[:, part], delta[:, part], A, B[:, part])  # (B', Q, E, N)
        states = []
        for a_t, x_t in zip(decay.unbind(1), drive.unbind(1)):  # unbind: one backward stack
            h = torch.addcmul(x_t, a_t, h)  # (B', E, N)
            states.append(h)
        states = torch.stack(states, dim=1)  # (B', Q, E, N)
        ys.append(torch.einsum("bqen,bqn->bqe", states, C[:, part]))  # (B', Q, E)
    return torch.cat(ys, dim=1)  # (B', L, E)


def _shift_combine(
    decay: torch.Tensor, state: torch.Tensor, step: int
) -> tuple[torch.Tensor, torch.Tensor]:
    """One Hillis-Steele level along axis 2: compose each step's map with the one `step` earlier."""
    pad = (0, 0, 0, 0, step, 0)  # shift by `step` along axis 2
    prev_state = F.pad(state, pad)[:, :, : state.shape[2]]  # 0 before the chunk start
    prev_decay = F.pad(decay, pad, value=1.0)[:, :, : decay.shape[2]]  # identity before the start
    return decay * prev_decay, torch.addcmul(state, decay, prev_state)


def selective_scan_parallel(
    u: torch.Tensor,
    delta: torch.Tensor,
    A: torch.Tensor,
    B: torch.Tensor,
    C: torch.Tensor,
    chunk_size: int = 32,
) -> torch.Tensor:
    """Chunked parallel scan: a few large kernels instead of L small ones (short inputs on a GPU).

    All chunks at once: a log-depth Hillis-Steele scan of the affine maps h -> a h + x inside each chunk
    gives every step's state from a zero start and the decay product since the chunk start; a loop of
    L / chunk_size steps carries the state across chunks; one addcmul adds it back. Only products of
    decays <= 1 are formed, so nothing overflows whatever dt grows to (unlike exp(-cumsum) forms).
    Work is O(L log Q) and memory O(B' L E N) per level, so on a CPU (memory-bound) and for training
    the chunked scan is faster and leaner; see ``python -m sfc.bench.mamba``.

    Returns:
        y (B', L, E), without the D skip and the SiLU gate.
    """
    batch, length, inner = u.shape
    num_state = A.shape[1]
    pad = (-length) % chunk_size
    if pad:  # delta = 0 on the padding: decay 1, no input; padded outputs are dropped
        u, delta, B, C = (F.pad(t, (0, 0, 0, pad)) for t in (u, delta, B, C))
    chunks = (length + pad) // chunk_size
    shape = (batch, chunks, chunk_size, inner, num_state)
    decay, state = (t.reshape(shape) for t in _chunk_inputs(u, delta, A, B))  # (B', nc, Q, E, N)
    step = 1
    while step < chunk_size:
        decay, state = _shift_combine(decay, state, step)  # inclusive scan within chunks
        step *= 2
    carry = state.new_zeros(batch, inner, num_state)  # (B', E, N)
    starts = []
    ends = zip(decay[:, :, -1].unbind(1), state[:, :, -1].unbind(1))  # (B', E, N) per chunk
    for end_decay, end_state in ends:  # state entering each chunk
        starts.append(carry)
        carry = torch.addcmul(end_state, end_decay, carry)  # (B', E, N)
    state = torch.addcmul(
        state, decay, torch.stack(starts, dim=1).unsqueeze(2)
    )  # (B', nc, Q, E, N)
    y = torch.einsum("bcqen,bcqn->bcqe", state, C.reshape(batch, chunks, chunk_size, num_state))
    return y.reshape(batch, chunks * chunk_size, inner)[:, :length]  # (B', L, E)


def selective_scan(
    u: torch.Tensor, delta: torch.Tensor, A: torch.Tensor, B: torch.Tensor, C: torch.Tensor
) -> torch.Tensor:
    """Pure-PyTorch selective scan used by ``Mamba``: the chunked scan with a recomputing backward.

    Same forward as ``selective_scan_chunked`` (bitwise), but its custom backward recomputes each
    chunk's states instead of letting autograd keep every (B', E, N) state, decay and input (3 L B' E N
    numbers per block), so training memory grows like the activations. The parallel scan launches fewer
    kernels, but its O(B' L E N log Q) autograd memory rules it out as the default.
    """
    return selective_scan_recomputed(u, delta, A, B, C)


@functools.lru_cache(maxsize=1)
def cuda_kernels() -> SimpleNamespace | None:
    """mamba_ssm's fused ops, or None when mamba_ssm is absent or broken (imported lazily)."""
    try:
        from mamba_ssm.ops.selective_scan_interface import mamba_inner_fn, selective_scan_fn
    except ImportError:
        return None
    except Exception as err:  # noqa: BLE001 - a mis-built extension must not break the pure path
        warnings.warn(
            f"mamba_ssm failed to import ({err}); using the pure-PyTorch scan", stacklevel=2
        )
        return None
    try:
        import causal_conv1d  # noqa: F401

        inner_fn = mamba_inner_fn
    except Exception:  # noqa: BLE001 - mamba_inner_fn needs causal-conv1d; fall back to the scan only
        inner_fn = None
    return SimpleNamespace(mamba_inner_fn=inner_fn, selective_scan_fn=selective_scan_fn)


# PAPER: Sec. III-C
class Mamba(nn.Module):
    """Mamba v1 block with mamba_ssm's parameter layout; pure-PyTorch path + optional CUDA kernels.

    PAPER: Sec. III-C (spec §6.1). Defaults are the paper's configuration (d_state 8, d_conv 4,
    expand 1, dt_rank ceil(d_model / 16)); mamba_ssm's own defaults are d_state 16, expand 2.

    Args:
        d_model: model width D.
        d_state: SSM state size N.
        d_conv: causal depthwise convolution kernel.
        expand: inner width E = expand * D.
        dt_rank: rank R of the dt projection, or "auto" for ceil(D / 16).
        dt_min: lower end of the log-uniform dt initialisation.
        dt_max: upper end of the log-uniform dt initialisation.
        dt_init_floor: lower clamp of the initial dt.
        dt_scale: scale of the dt_proj weight init range.
        conv_bias: bias in conv1d.
        bias: biases in in_proj / out_proj.
        use_kernels: use mamba_ssm's CUDA kernels when the input is on CUDA and they import.

    Shapes:
        forward(x (B', L, D)) -> (B', L, D)
    """

    def __init__(
        self,
        d_model: int,
        d_state: int = 8,
        d_conv: int = 4,
        expand: int = 1,
        dt_rank: int | str = "auto",
        dt_min: float = 0.001,
        dt_max: float = 0.1,
        dt_init_floor: float = 1e-4,
        dt_scale: float = 1.0,
        conv_bias: bool = True,
        bias: bool = False,
        use_kernels: bool = True,
    ) -> None:
        super().__init__()
        self.d_model, self.d_state, self.d_conv = d_model, d_state, d_conv
        self.d_inner = int(expand * d_model)
        self.dt_rank = math.ceil(d_model / 16) if dt_rank == "auto" else int(dt_rank)
        self.use_kernels = use_kernels
        self.in_proj = nn.Linear(d_model, 2 * self.d_inner, bias=bias)
        self.conv1d = nn.Conv1d(
            self.d_inner,
            self.d_inner,
            d_conv,
            groups=self.d_inner,
            padding=d_conv - 1,
            bias=conv_bias,
        )
        self.x_proj = nn.Linear(self.d_inner, self.dt_rank + 2 * d_state, bias=False)
        self.dt_proj = nn.Linear(self.dt_rank, self.d_inner, bias=True)
        self._init_dt(dt_min, dt_max, dt_init_floor, dt_scale)
        a = torch.arange(1, d_state + 1, dtype=torch.float32).repeat(self.d_inner, 1)  # (E, N)
        self.A_log = nn.Parameter(torch.log(a))
        self.D = nn.Parameter(torch.ones(self.d_inner))
        self.A_log._no_weight_decay = True  # same markers as mamba_ssm
        self.D._no_weight_decay = True
        self.out_proj = nn.Linear(self.d_inner, d_model, bias=bias)

    def _init_dt(self, dt_min: float, dt_max: float, floor: float, scale: float) -> None:
        """mamba_ssm's dt init: weight U(+-R^-0.5 * scale); bias = softplus^-1(log-uniform dt)."""
        std = self.dt_rank**-0.5 * scale
        nn.init.uniform_(self.dt_proj.weight, -std, std)
        log_dt = torch.rand(self.d_inner) * (math.log(dt_max) - math.log(dt_min)) + math.log(dt_min)
        dt = torch.exp(log_dt).clamp(min=floor)  # (E,)
        with torch.no_grad():
            self.dt_proj.bias.copy_(dt + torch.log(-torch.expm1(-dt)))  # inverse softplus
        self.dt_proj.bias._no_reinit = True

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        kernels = cuda_kernels() if (self.use_kernels and x.is_cuda) else None
        if kernels is not None:
            return self._forward_kernels(x, kernels)
        return self._forward_pure(x)

    def _conv(self, x: torch.Tensor) -> torch.Tensor:
        """Causal depthwise conv + SiLU on channels-first input (B', E, L)."""
        return F.silu(self.conv1d(x)[..., : x.shape[-1]])  # (B', E, L)

    def _forward_pure(self, x: torch.Tensor) -> torch.Tensor:
        u, z = self.in_proj(x).chunk(2, dim=-1)  # (B', L, E) each
        u = self._conv(u.transpose(1, 2)).transpose(1, 2)  # (B', L, E)
        dt, B, C = self.x_proj(u).split([self.dt_rank, self.d_state, self.d_state], dim=-1)
        # PAPER: as mamba_ssm, the scan runs in float32 whatever the autocast dtype.
        with torch.autocast(device_type=x.device.type, enabled=False):
            u, z = u.float(), z.float()
            dt = F.softplus(
                F.linear(dt.float(), self.dt_proj.weight.float(), self.dt_proj.bias.float())
            )
            A = -torch.exp(self.A_log.float())  # (E, N)
            y = selective_scan(u, dt, A, B.float(), C.float())  # (B', L, E)
            y = (y + u * self.D.float()) * F.silu(z)  # (B', L, E)
        return self.out_proj(y.to(x.dtype))  # (B', L, D)

    def _forward_kernels(self, x: torch.Tensor, kernels: SimpleNamespace) -> torch.Tensor:
        xz = self.in_proj(x).transpose(1, 2)  # (B', 2E, L)
        A = -torch.exp(self.A_log.float())  # (E, N)
        if kernels.mamba_inner_fn is not None:
            return kernels.mamba_inner_fn(
                xz,
                self.conv1d.weight,
                self.conv1d.bias,
                self.x_proj.weight,
                self.dt_proj.weight,
                self.out_proj.weight,
                self.out_proj.bias,
                A,
                None,
                None,
                self.D.float(),
                delta_bias=self.dt_proj.bias.float(),
                delta_softplus=True,
            )  # (B', L, D)
        u, z = xz.chunk(2, dim=1)  # (B', E, L)
        u = self._conv(u)  # (B', E, L)
        dt, B, C = self.x_proj(u.transpose(1, 2)).split(
            [self.dt_rank, self.d_state, self.d_state], dim=-1
        )
        dt = (dt @ self.dt_proj.weight.T).transpose(1, 2)  # (B', E, L), bias added in the kernel
        y = kernels.selective_scan_fn(
            u.contiguous(),
            dt.contiguous(),
            A,
            B.transpose(1, 2).contiguous(),
            C.transpose(1, 2).contiguous(),
            self.D.float(),
            z=z.contiguous(),
            delta_bias=self.dt_proj.bias.float(),
            delta_softplus=True,
        )  # (B', E, L)
        return self.out_proj(y.transpose(1, 2))  # (B', L, D)
