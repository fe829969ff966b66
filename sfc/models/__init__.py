"""Model zoo: encoder/decoder pairs and separators behind registries chosen by name.

Attributes are loaded lazily so that `sfc.models.config` (and `sfc.experiments`, imported by every
Snakemake DAG build) does not import torch.
"""

from __future__ import annotations

import importlib
from typing import Any

_EXPORTS = {
    "ModelConfig": "sfc.models.config",
    "SeparationModel": "sfc.models.model",
    "ENCODER_BUILDERS": "sfc.models.registry",
    "SEPARATOR_BUILDERS": "sfc.models.registry",
    "MODEL_BUILDERS": "sfc.models.registry",
    "build_model": "sfc.models.registry",
    "load_model": "sfc.models.registry",
    "model_checkpoint": "sfc.models.registry",
}
__all__ = list(_EXPORTS)


def __getattr__(name: str) -> Any:
    if name not in _EXPORTS:
        raise AttributeError(f"module 'sfc.models' has no attribute {name!r}")
    return getattr(importlib.import_module(_EXPORTS[name]), name)
