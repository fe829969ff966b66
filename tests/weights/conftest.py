"""Synthetic released model folders in the documented layout (spec released-weights.md), built from our
own models through the inverse key mapping: `merged_config.yaml` + Lightning-style `checkpoints/*.ckpt`."""

from __future__ import annotations

import collections
from pathlib import Path

import pytest
import torch
import yaml

from sfc.experiments import parse_experiment
from sfc.models.config import SEPARATOR_DIMS, SFC_DIMS
from sfc.weights.keymap import to_released

CLASSES = {"sfc_ca": "CrossAttn", "sfc_mamba": "Mamba", "band_split": "Bandit"}


def released_config(exp_id: str) -> dict:
    """A resolved training config with the keys the spec lists, nested as a Hydra config would be."""
    exp = parse_experiment(exp_id)
    cfg = exp.model_config()
    enc: dict = {
        "_target_": f"core.model.encoders.{CLASSES[exp.encoder]}Encoder",
        "n_bands": exp.num_bands,
    }
    if exp.encoder != "band_split":
        enc.update(d_inner=SFC_DIMS[exp.encoder][exp.size], query_type=cfg.query_type)
    if exp.encoder == "sfc_ca":
        enc.update(
            learnable_pos_bias=cfg.pos_bias in ("learnable", "band_mask"),
            learnable_slope=cfg.pos_bias == "learnable_slope",
            mask_outside_bands=cfg.pos_bias == "band_mask",
        )
    dec = dict(enc, _target_=enc["_target_"].replace("Encoder", "Decoder"))
    dims = SEPARATOR_DIMS[exp.size]
    return {
        "seed": 0,
        "model": {
            "_target_": "core.tasks.sup_task.SupervisedTask",
            "ema_decay": 0.999,
            "model": {
                "_target_": "core.model.model_wrapper.ModelWrapper",
                "n_fft": 2048,
                "hop_length": 512,
                "model": {
                    "_target_": "core.model.bslocoformer.BSLocoformer",
                    "n_src": cfg.num_sources,
                    "n_chan": cfg.num_channels,
                    "n_layers": dims["num_layers"],
                    "emb_dim": dims["dim"],
                    "encoder": enc,
                    "decoder": dec,
                },
            },
        },
        "css_segment_size": 12,
        "css_shift_size": 6,
    }


def lightning_checkpoint(raw: torch.nn.Module, ema: torch.nn.Module, epoch: int) -> dict:
    """A Lightning-style checkpoint dict: trained copy at `model.*`, EMA copy at `ema_model.module.*`."""
    state: dict = collections.OrderedDict()
    window = torch.hann_window(2048, periodic=True)
    for prefix, model in (("model.", raw), ("ema_model.module.", ema)):
        state[prefix + "stft.0.window"] = window
        state[prefix + "istft.window"] = window
        for key, value in to_released(model).items():
            state[prefix + "model." + key] = value
        if model.config.encoder == "sfc_mamba":  # integer derived buffers, identical in every file
            for part in ("encoder", "decoder"):
                state[f"{prefix}model.{part}.segment_indices"] = torch.arange(10, dtype=torch.long)
    state["ema_model.n_averaged"] = torch.tensor(1000 * epoch)
    return {
        "epoch": epoch,
        "global_step": 1000 * epoch,
        "pytorch-lightning_version": "2.4.0",
        "state_dict": state,
        "loops": {"fit_loop": {"epoch_progress": {"current": {"completed": epoch}}}},
        "callbacks": {
            "ModelCheckpoint{'monitor': 'val/loss'}": {"best_model_score": torch.tensor(0.5)}
        },
        "hparams_name": "kwargs",
    }


def write_released(
    folder: Path, exp_id: str, ema_models: list, raw_models: list | None = None, last=None
) -> Path:
    """Write a released folder: one `epoch=XXXX.ckpt` per EMA model (+ `last.ckpt` if given)."""
    (folder / "checkpoints").mkdir(parents=True)
    (folder / "merged_config.yaml").write_text(yaml.safe_dump(released_config(exp_id)))
    raw_models = raw_models or ema_models
    for i, (raw, ema) in enumerate(zip(raw_models, ema_models)):
        torch.save(
            lightning_checkpoint(raw, ema, i), folder / "checkpoints" / f"epoch={i:04d}.ckpt"
        )
    if last is not None:
        torch.save(lightning_checkpoint(last, last, 99), folder / "checkpoints" / "last.ckpt")
    return folder


@pytest.fixture
def released_folder(tmp_path):
    """Factory: write_released into tmp_path/<name>."""

    def make(exp_id: str, ema_models: list, name: str = "model", **kwargs) -> Path:
        return write_released(tmp_path / name, exp_id, ema_models, **kwargs)

    return make
