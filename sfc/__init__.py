"""sfc: replication pipeline for Spectral Feature Compression (Saijo & Bando, 2026).

`import sfc` works on a CPU-only machine; CUDA-only libraries are imported lazily.
"""

from __future__ import annotations

__version__ = "0.1.0"
