"""The pure-PyTorch Mamba: scans against the sequential reference, mamba_ssm's parameter contract."""

from __future__ import annotations

import contextlib
import math
import sys
from types import SimpleNamespace

import pytest
import torch
import torch.nn.functional as F

from sfc.models import mamba as mamba_mod
from sfc.models.mamba import (
    Mamba,
    selective_scan,
    selective_scan_chunked,
    selective_scan_naive,
    selective_scan_parallel,
)
from sfc.models.mamba_scan import selective_scan_recomputed

from .conftest import mamba_ssm_reference

# mamba_ssm v1 `Mamba(d_model=32, d_state, d_conv=4, expand)` state dict: the portability contract.
EXPECTED_STATE = {
    # the paper's configuration (spec §6.1): d_state 8, expand 1, dt_rank ceil(32 / 16) = 2
    (8, 1): {
        "A_log": (32, 8),
        "D": (32,),
        "in_proj.weight": (64, 32),
        "conv1d.weight": (32, 1, 4),
        "conv1d.bias": (32,),
        "x_proj.weight": (18, 32),
        "dt_proj.weight": (32, 2),
        "dt_proj.bias": (32,),
        "out_proj.weight": (32, 32),
    },
    # mamba_ssm's own defaults: d_state 16, expand 2
    (16, 2): {
        "A_log": (64, 16),
        "D": (64,),
        "in_proj.weight": (128, 32),
        "conv1d.weight": (64, 1, 4),
        "conv1d.bias": (64,),
        "x_proj.weight": (34, 64),
        "dt_proj.weight": (64, 2),
        "dt_proj.bias": (64,),
        "out_proj.weight": (32, 64),
    },
}
SCANS = {
    "chunked": selective_scan_chunked,
    "parallel": selective_scan_parallel,
    "recomputed": selective_scan_recomputed,
}
# SFC-Mamba small (spec §6.1): d_model 32, d_state 8, d_conv 4, expand 1; sequences of F + K = 1025 + 64
SMALL = {"d_model": 32, "d_state": 8, "d_conv": 4, "expand": 1}
SMALL_LENGTH = 1089


pytestmark = pytest.mark.usefixtures("one_thread")


def scan_inputs(batch=3, length=150, inner=8, num_state=4, dt_shift=-2.0):
    u, B, C = (torch.randn(batch, length, d) for d in (inner, num_state, num_state))
    delta = F.softplus(torch.randn(batch, length, inner) + dt_shift)
    A = -torch.exp(torch.randn(inner, num_state))
    return [t.requires_grad_() for t in (u, delta, A, B, C)]


@pytest.mark.parametrize("name", SCANS)
@pytest.mark.parametrize("chunk", [16, 64])
def test_scan_matches_sequential_reference(name, chunk):
    inputs = scan_inputs()  # L = 150 is not a multiple of the chunk: exercises the padding
    ref = selective_scan_naive(*inputs)
    out = SCANS[name](*inputs, chunk_size=chunk)
    assert out.shape == ref.shape == (3, 150, 8)
    assert (out - ref).abs().max().item() < 1e-5 * max(1.0, ref.abs().max().item())
    grads_ref = torch.autograd.grad(ref.square().sum(), inputs)
    grads = torch.autograd.grad(out.square().sum(), inputs)
    for g, g_ref in zip(grads, grads_ref):
        torch.testing.assert_close(g, g_ref, rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("name", SCANS)
def test_scan_is_finite_for_huge_steps(name):
    """dt * A of -1000 per step (far beyond fp32 exp range over a chunk) must neither overflow nor NaN."""
    inputs = [t.detach() for t in scan_inputs(dt_shift=200.0)]
    out = SCANS[name](*inputs)
    assert torch.isfinite(out).all()
    torch.testing.assert_close(out, selective_scan_naive(*inputs), rtol=1e-5, atol=1e-4)


def test_default_scan_is_the_recomputing_scan():
    inputs = [t.detach() for t in scan_inputs()]
    assert torch.equal(selective_scan(*inputs), selective_scan_recomputed(*inputs))


@pytest.mark.parametrize("chunk", [1, 7, 16, 64, 200])
def test_recomputed_scan_equals_autograd_through_the_chunked_scan(chunk):
    """Outputs and all five gradients to 1e-6 relative (fp32) of the formulation autograd stores."""
    torch.manual_seed(1)
    inputs = scan_inputs(batch=4, length=150, inner=16, num_state=8)
    weight = torch.randn(4, 150, 16)  # a loss that weights every output differently
    results = []
    for scan in (selective_scan_chunked, selective_scan_recomputed):
        out = scan(*inputs, chunk_size=chunk)
        results.append([out, *torch.autograd.grad((out * weight).sum(), inputs)])
    for name, ours, ref in zip(["y", "du", "ddelta", "dA", "dB", "dC"], *results):
        rel = ((ours - ref).abs().max() / ref.abs().max()).item()
        assert rel < 1e-6, f"{name}: relative difference {rel:.1e}"


def test_recomputed_scan_gradcheck_float64():
    inputs = [
        t.detach().double()[:2, :23].requires_grad_() if t.dim() == 3 else t for t in scan_inputs()
    ]
    inputs[2] = inputs[2].detach().double().requires_grad_()  # A
    assert torch.autograd.gradcheck(
        lambda *a: selective_scan_recomputed(*a, chunk_size=5), inputs, eps=1e-6, atol=1e-5
    )


def _saved_numel(scan, inputs) -> int:
    """Numbers autograd keeps for the backward of one scan call (saved tensors, by storage)."""
    seen = {}

    def pack(t):
        seen[t.untyped_storage().data_ptr()] = t.untyped_storage().nbytes() // t.element_size()
        return t

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        scan(*inputs)
    return sum(seen.values())


def test_recomputed_scan_keeps_no_per_step_states():
    batch, length, inner, num_state = 2, 256, 8, 4
    inputs = scan_inputs(batch, length, inner, num_state)
    per_step_states = batch * length * inner * num_state
    inputs_numel = sum(t.numel() for t in inputs)
    lean = _saved_numel(selective_scan_recomputed, inputs)
    assert (
        lean <= inputs_numel + per_step_states // 16
    )  # inputs + one entry state per 16-step chunk
    assert (
        _saved_numel(selective_scan_chunked, inputs) >= 3 * per_step_states
    )  # states, decays, inputs


def test_recomputed_scan_rejects_bad_chunk_size():
    with pytest.raises(ValueError, match="chunk_size"):
        selective_scan_recomputed(*[t.detach() for t in scan_inputs()], chunk_size=0)


@pytest.mark.parametrize(("d_state", "expand"), list(EXPECTED_STATE))
def test_state_dict_has_mamba_ssm_names_and_shapes(d_state, expand):
    block = Mamba(32, d_state=d_state, d_conv=4, expand=expand)
    got = {k: tuple(v.shape) for k, v in block.state_dict().items()}
    assert got == EXPECTED_STATE[(d_state, expand)]
    assert block.in_proj.bias is None and block.out_proj.bias is None and block.x_proj.bias is None
    assert block.conv1d.groups == block.d_inner and block.conv1d.padding == (3,)


def test_defaults_are_the_paper_configuration():
    block = Mamba(48)
    config = (block.d_state, block.d_conv, block.d_inner, block.dt_rank)
    assert config == (8, 4, 48, math.ceil(48 / 16))


def test_initialisation_follows_mamba_ssm():
    block = Mamba(64, d_state=8, expand=1, dt_min=0.001, dt_max=0.1)
    expected_a = torch.log(torch.arange(1, 9, dtype=torch.float32)).repeat(64, 1)
    assert torch.equal(block.A_log.data, expected_a)
    assert torch.equal(block.D.data, torch.ones(64))
    bound, largest = block.dt_rank**-0.5, block.dt_proj.weight.abs().max()
    assert 0.5 * bound < largest <= bound
    dt = F.softplus(block.dt_proj.bias.data)  # inverse softplus round trip gives dt back
    assert dt.min() >= 0.001 - 1e-6 and dt.max() <= 0.1 + 1e-6
    assert dt.min() < 0.004 and dt.max() > 0.025  # spread over the log-uniform range
    assert block.A_log._no_weight_decay and block.D._no_weight_decay


def test_forward_shape_causality_and_state_dict_round_trip():
    block = Mamba(16)
    x = torch.randn(2, 40, 16, requires_grad=True)
    y = block(x)
    assert y.shape == x.shape
    (grad,) = torch.autograd.grad(y[:, 20].sum(), x)
    assert grad[:, 21:].abs().max() == 0  # causal: no dependence on later steps
    assert grad[:, :21].abs().sum() > 0
    clone = Mamba(16)
    clone.load_state_dict(block.state_dict())
    assert torch.equal(clone(x), y)


def test_cpu_forward_never_touches_cuda_kernels(monkeypatch):
    def boom():
        raise AssertionError("cuda_kernels() called for a CPU input")

    monkeypatch.setattr(mamba_mod, "cuda_kernels", boom)
    assert Mamba(8)(torch.randn(1, 5, 8)).shape == (1, 5, 8)


def test_bf16_autocast_runs_the_scan_in_float32(monkeypatch):
    """The scan must see float32 inputs with autocast off (else its einsums would run in bf16)."""
    seen = []

    def spy(*inputs):
        seen.append(([t.dtype for t in inputs], torch.is_autocast_enabled("cpu")))
        out = selective_scan(*inputs)
        seen.append(([out.dtype], torch.is_autocast_enabled("cpu")))
        return out

    monkeypatch.setattr(mamba_mod, "selective_scan", spy)
    block = Mamba(16)
    x = torch.randn(2, 30, 16)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        assert torch.is_autocast_enabled("cpu")
        y = block(x)
    assert len(seen) == 2  # the spy really ran
    for dtypes, autocast_on in seen:
        assert dtypes == [torch.float32] * len(dtypes) and not autocast_on
    assert y.dtype == torch.bfloat16  # the projections around the scan do run in bf16
    torch.testing.assert_close(y.float(), block(x), rtol=0.05, atol=0.05)


def _reference_pair(mamba_ssm_ref):
    """mamba_ssm.Mamba and ours with one state dict; A_log and D moved off their init so they count."""
    ref = mamba_ssm_ref.Mamba(**SMALL)
    with torch.no_grad():
        ref.A_log.add_(0.3 * torch.randn_like(ref.A_log))
        ref.D.copy_(torch.randn_like(ref.D))
        ref.conv1d.bias.copy_(0.2 * torch.randn_like(ref.conv1d.bias))
    ours = Mamba(32)  # the paper's defaults are SMALL
    ours.load_state_dict(ref.state_dict())  # strict: same names and shapes
    return ref, ours


def _max_rel(a: torch.Tensor, b: torch.Tensor) -> float:
    """max |a - b| relative to max |b| (magnitude-relative: a real bug moves it by orders)."""
    return ((a - b).abs().max() / b.abs().max()).item()


def test_pure_path_matches_mamba_ssm_reference_on_cpu(mamba_ssm_ref):
    """Ours vs mamba_ssm.Mamba's own non-fused path on selective_scan_ref (measured 3e-8 / 3e-7)."""
    ref, ours = _reference_pair(mamba_ssm_ref)
    x = torch.randn(2, SMALL_LENGTH, 32)
    weight = torch.randn(2, SMALL_LENGTH, 32)  # a random cotangent, so no gradient cancels
    x_ref, x_ours = x.clone().requires_grad_(), x.clone().requires_grad_()
    y_ref, y = ref(x_ref), ours(x_ours)
    assert y.shape == y_ref.shape == x.shape
    diff = _max_rel(y, y_ref)
    print(f"output: max|diff| / max|y| = {diff:.1e}")
    assert diff < 1e-6
    (y_ref * weight).sum().backward()
    (y * weight).sum().backward()
    grads_ref = dict(ref.named_parameters())
    for name, param in [("input", x_ours), *ours.named_parameters()]:
        reference = x_ref if name == "input" else grads_ref[name]
        assert reference.grad.abs().max() > 0, name
        diff = _max_rel(param.grad, reference.grad)
        print(f"grad {name}: {diff:.1e}")
        assert diff < 1e-5, name


def _causal_conv1d_ref(x, weight, bias=None, activation=None):
    """causal-conv1d's ``causal_conv1d_fn`` contract in plain PyTorch: x (B, E, L), weight (E, W)."""
    width = weight.shape[-1]
    out = F.conv1d(x, weight.unsqueeze(1), bias, padding=width - 1, groups=x.shape[1])
    out = out[..., : x.shape[-1]]
    return F.silu(out) if activation in ("silu", "swish") else out


@pytest.mark.parametrize("fused", ["mamba_inner_fn", "selective_scan_fn"])
def test_kernel_call_site_matches_mamba_ssm_reference(mamba_ssm_ref, fused):
    """Our CUDA-kernel dispatch, fed mamba_ssm's reference functions, gives mamba_ssm.Mamba's output."""
    ref, ours = _reference_pair(mamba_ssm_ref)
    interface = mamba_ssm_ref.interface  # a fresh module per test: patching it needs no undo
    interface.causal_conv1d_fn = _causal_conv1d_ref
    interface.selective_scan_fn = interface.selective_scan_ref
    kernels = SimpleNamespace(
        mamba_inner_fn=mamba_ssm_ref.mamba_inner_ref if fused == "mamba_inner_fn" else None,
        selective_scan_fn=mamba_ssm_ref.selective_scan_ref,
    )
    x = torch.randn(2, SMALL_LENGTH, 32)
    y_ref = ref(x)
    y = ours._forward_kernels(x, kernels)
    diff = _max_rel(y, y_ref)
    print(f"{fused} call site: max|diff| / max|y| = {diff:.1e}")
    assert diff < 1e-6
    (grad,) = torch.autograd.grad(y.square().sum(), ours.dt_proj.weight)
    (grad_ref,) = torch.autograd.grad(y_ref.square().sum(), ref.dt_proj.weight)
    assert _max_rel(grad, grad_ref) < 1e-5


def _mamba_modules() -> dict:
    return {n: m for n, m in sys.modules.items() if "mamba_ssm" in n or n == "selective_scan_cuda"}


def test_reference_import_restores_sys_modules():
    before = _mamba_modules()
    with mamba_ssm_reference() as ref:
        assert sys.modules["mamba_ssm.modules.mamba_simple"].selective_scan_fn is (
            ref.selective_scan_ref
        )
        assert sys.modules["selective_scan_cuda"].__dict__.keys() <= {
            "__name__",
            "__doc__",
            "__package__",
            "__loader__",
            "__spec__",
        }
    assert _mamba_modules() == before


@pytest.mark.gpu
def test_pure_path_matches_mamba_ssm_on_cuda():
    """Same state dict in both directions; pure scan (use_kernels=False) vs mamba_ssm's fused path."""
    mamba_ssm = pytest.importorskip("mamba_ssm")
    torch.manual_seed(0)
    ref = mamba_ssm.Mamba(32, d_state=8, d_conv=4, expand=1).cuda()
    ours = Mamba(32, use_kernels=False).cuda()
    ours.load_state_dict(ref.state_dict())  # strict: same names and shapes
    ref.load_state_dict(Mamba(32).state_dict())  # and back
    ours.load_state_dict(ref.state_dict())
    x = torch.randn(8, 1089, 32, device="cuda", requires_grad=True)
    y_ref, y = ref(x), ours(x)
    diff = (y - y_ref).abs().max().item()
    print(f"pure vs mamba_ssm: max|diff| = {diff:.2e} (max|y| = {y_ref.abs().max().item():.2f})")
    assert diff < 1e-4
    g_ref = torch.autograd.grad(y_ref.square().sum(), x)[0]
    g = torch.autograd.grad(y.square().sum(), x)[0]
    torch.testing.assert_close(g, g_ref, rtol=1e-3, atol=1e-3)
    fused = Mamba(32).cuda()
    fused.load_state_dict(ref.state_dict())
    assert (fused(x) - y_ref).abs().max().item() < 1e-5  # our kernel dispatch == mamba_ssm's


def test_mamba_block_outputs_and_gradients_match_the_reference_scan():
    """Module level: the block with the recomputing scan vs the stored-autograd scan, <= 5e-6."""
    from sfc.bench.reference import reference_formulation

    torch.manual_seed(0)
    block = Mamba(32)
    x = torch.randn(6, 300, 32, requires_grad=True)
    results = []
    for reference in (False, True):
        block.zero_grad()
        x.grad = None
        with reference_formulation() if reference else contextlib.nullcontext():
            y = block(x)
            (y * torch.cos(torch.arange(y.numel()).view_as(y))).sum().backward()
        results.append([y.detach(), x.grad] + [p.grad.clone() for p in block.parameters()])
    for ours, ref in zip(*results):
        assert (ours - ref).abs().max().item() <= 5e-6 * max(1.0, ref.abs().max().item())
