"""Fixtures shared by the model tests."""

from __future__ import annotations

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
