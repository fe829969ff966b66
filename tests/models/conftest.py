"""Fixtures shared by the model tests."""

from __future__ import annotations

import contextlib

import pytest
import torch


@pytest.fixture
def one_thread():
    """The Mamba scans run thousands of tiny ops: with 2+ intra-op threads on a shared CPU, OpenMP
    synchronisation makes them 10-100x slower (measured), so those tests run single-threaded."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


MAMBA_SSM_VERSION = "2.3.2.post1"  # pinned in envs/setup.sh


@contextlib.contextmanager
def mamba_ssm_reference():
    """mamba-ssm's pure-PyTorch reference on a CPU-only machine, without its CUDA extensions.

    The wheel built with MAMBA_SKIP_CUDA_BUILD=TRUE (envs/setup.sh) has no ``selective_scan_cuda`` and the
    package ``__init__`` imports triton-only modules, so the modules are loaded by hand: bare package
    modules (``__init__`` not run) with the real ``__path__``, an empty ``selective_scan_cuda``, a stub
    ``mamba_ssm.ops.triton.layer_norm``; ``mamba_simple.selective_scan_fn`` is pointed at
    ``selective_scan_ref``, and with no causal-conv1d ``mamba_simple.Mamba`` takes its non-fused path.
    Every ``mamba_ssm*`` / ``selective_scan_cuda`` entry of ``sys.modules`` is restored afterwards.

    Yields:
        SimpleNamespace(Mamba, selective_scan_ref, mamba_inner_ref, interface): ``interface`` is the
        ``selective_scan_interface`` module, whose globals a test may patch (they vanish with it).
    """
    import importlib
    import importlib.util
    import sys
    import types
    from importlib import metadata
    from pathlib import Path

    spec = importlib.util.find_spec("mamba_ssm")
    if spec is None or not spec.submodule_search_locations:
        pytest.skip(f"mamba-ssm {MAMBA_SSM_VERSION} is not installed (envs/setup.sh installs it)")
    installed = metadata.version("mamba_ssm")
    if installed != MAMBA_SSM_VERSION:  # e.g. a CUDA build from the gpu extra: other module layout
        pytest.skip(
            f"mamba-ssm {installed} installed; the CPU reference is pinned to {MAMBA_SSM_VERSION}"
        )
    root = Path(next(iter(spec.submodule_search_locations)))

    def ours(name: str) -> bool:
        return name == "selective_scan_cuda" or name.split(".")[0] == "mamba_ssm"

    saved = {name: module for name, module in sys.modules.items() if ours(name)}
    for name in saved:
        del sys.modules[name]
    try:
        for package in ("mamba_ssm", "mamba_ssm.ops", "mamba_ssm.ops.triton", "mamba_ssm.modules"):
            module = types.ModuleType(package)
            module.__path__ = [str(root.joinpath(*package.split(".")[1:]))]
            sys.modules[package] = module
        sys.modules["selective_scan_cuda"] = types.ModuleType("selective_scan_cuda")
        layer_norm = types.ModuleType("mamba_ssm.ops.triton.layer_norm")

        def _layer_norm_fwd(*args, **kwargs):
            raise AssertionError("the triton layer norm must not run in the CPU reference")

        layer_norm._layer_norm_fwd = _layer_norm_fwd  # RMSNorm etc. absent: mamba_simple skips them
        sys.modules[layer_norm.__name__] = layer_norm
        interface = importlib.import_module("mamba_ssm.ops.selective_scan_interface")
        simple = importlib.import_module("mamba_ssm.modules.mamba_simple")
        simple.selective_scan_fn = interface.selective_scan_ref
        simple.causal_conv1d_fn = None  # the non-fused path even where causal-conv1d is installed
        yield types.SimpleNamespace(
            Mamba=simple.Mamba,
            selective_scan_ref=interface.selective_scan_ref,
            mamba_inner_ref=interface.mamba_inner_ref,
            interface=interface,
        )
    finally:
        for name in [name for name in sys.modules if ours(name)]:
            del sys.modules[name]
        sys.modules.update(saved)


@pytest.fixture
def mamba_ssm_ref():
    """``mamba_ssm_reference()`` for one test."""
    with mamba_ssm_reference() as ref:
        yield ref
