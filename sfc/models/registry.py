"""Registries of encoder/decoder pairs and separators, model building and model files.

A new encoder is one module with a ``build(config) -> (encoder, decoder)`` function plus one entry in
ENCODER_BUILDERS; a new separator likewise in SEPARATOR_BUILDERS.
"""

from __future__ import annotations

import importlib
from pathlib import Path
from typing import Any

import torch
from torch import nn

from sfc.errors import UserError
from sfc.models.config import ModelConfig
from sfc.models.model import SeparationModel

# name -> "module:function"; imported lazily so `import sfc.models` stays light.
ENCODER_BUILDERS: dict[str, str] = {
    "band_split": "sfc.models.band_split:build",
    "sfc_ca": "sfc.models.sfc_ca:build",
    "sfc_mamba": "sfc.models.sfc_mamba:build",
}
SEPARATOR_BUILDERS: dict[str, str] = {
    "tf_locoformer": "sfc.models.tf_locoformer:build",
    "gru": "sfc.models.gru:build",
    "mstfa": "sfc.models.mstfa:build",
}
# Model families beside SeparationModel (family -> "module:function"), same outward contract
# forward(mix (B, C, L)) -> (B, N, C, L).
MODEL_BUILDERS: dict[str, str] = {
    "lightsaft": "sfc.models.lightsaft:build",
    "mstfa_unet": "sfc.models.mstfa_unet:build",
}


def _resolve(spec: str):
    module, func = spec.split(":")
    return getattr(importlib.import_module(module), func)


def build_model(config: ModelConfig | str) -> nn.Module:
    """Build a model from a ModelConfig or an experiment id (SeparationModel or a U-Net family)."""
    if isinstance(config, str):
        from sfc.experiments import parse_experiment

        config = parse_experiment(config).model_config()
    if config.family in MODEL_BUILDERS:
        return _resolve(MODEL_BUILDERS[config.family])(config)
    encoder, decoder = _resolve(ENCODER_BUILDERS[config.encoder])(config)
    separator = _resolve(SEPARATOR_BUILDERS[config.separator])(config)
    return SeparationModel(config, encoder, separator, decoder)


def model_checkpoint(model: nn.Module, experiment: str | None = None, **extra: Any) -> dict:
    """The dict a model file holds: constructor arguments, weights and provenance extras."""
    return {
        "experiment": experiment,
        "model_config": model.config.to_dict(),
        "model": model.state_dict(),
        **extra,
    }


def load_model(
    path: str | Path, map_location: str | torch.device = "cpu"
) -> tuple[nn.Module, dict]:
    """Load a model file written from ``model_checkpoint`` (or a training checkpoint holding one).

    Returns:
        The model in eval mode and the whole checkpoint dict.
    """
    path = Path(path)
    if not path.is_file():
        raise UserError(f"checkpoint not found: {path}")
    try:
        ckpt = torch.load(path, map_location=map_location, weights_only=False)
    except Exception as err:  # noqa: BLE001 - any unpickling failure is a bad file for the user
        raise UserError(f"cannot read checkpoint {path}: {err}") from err
    if not isinstance(ckpt, dict) or "model_config" not in ckpt or "model" not in ckpt:
        raise UserError(
            f"{path} is not an sfc model checkpoint (no 'model_config'/'model' entries)"
        )
    model = build_model(ModelConfig.from_dict(ckpt["model_config"]))
    model.load_state_dict(ckpt["model"])
    return model.eval(), ckpt
