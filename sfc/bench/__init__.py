"""Benchmarks (run as modules, e.g. ``python -m sfc.bench.loader``)."""

from __future__ import annotations
