"""Experiment ids: one trained model = one id = one table cell.

Grammar: ``<task>-<encoder>-<size>-k<bands>[-gru|-mstfa][-<variant>...][-s<seed>]``, and for the
baseline U-Net families (sfc/models/lightsaft.py, sfc/models/mstfa_unet.py):
``<task>-lightsaft-<mdx|mdx7|tiny>[-s<seed>]`` and
``<task>-mstfa_unet[-<tiny|small>]-<target>[-ms1][-noattn][-s<seed>]``

* task: ``mss`` (MUSDB18-HQ, stereo, 4 stems) or ``cass`` (DnR v2, mono, 3 stems)
* encoder: ``band_split``, ``sfc_ca``, ``sfc_mamba``; size: ``tiny``, ``small``, ``medium``
* ``gru``: the GRU dual-path separator of the separator-swap table instead of TF-Locoformer;
  ``mstfa``: the MSTFA (reconstructed) separator (``ms1`` after it: single-scale ablation)
* ``lightsaft``: LightSAFT-Net, conditioned, all sources (``mdx``: the released 9-block model)
* ``mstfa_unet``: MSTFA (reconstructed) U-Net host, a dedicated single-``target`` model (default size
  ``base``); ``ms1``: scales (1,) instead of (1, 2, 4); ``noattn``: without the MSTFA blocks
* variants (ablations, spec §11), each allowed for one encoder only, in the order listed below
* ``s<seed>``: a repeat with another training seed (default seed: 2026)

Examples: ``mss-sfc_ca-small-k64``, ``cass-band_split-medium-k64``, ``mss-sfc_mamba-small-k32``,
``mss-sfc_ca-small-k64-nobias``, ``mss-sfc_ca-small-k64-gru``, ``mss-sfc_ca-tiny-k32-s1``.
"""

from __future__ import annotations

import argparse
import json
import re
from dataclasses import dataclass, replace
from typing import Any

from sfc.errors import UserError
from sfc.models.config import ENCODERS, FAMILY_SIZES, SIZES, ModelConfig


@dataclass(frozen=True)
class Task:
    name: str
    dataset: str
    sources: tuple[str, ...]
    num_channels: int


TASKS: dict[str, Task] = {
    # PAPER: spec §1.1 (stereo, bass/drums/vocals/other) and §1.2 (mono, speech/music/sfx).
    "mss": Task("mss", "musdb18hq", ("bass", "drums", "vocals", "other"), 2),
    "cass": Task("cass", "dnr_v2", ("speech", "music", "sfx"), 1),
}
DEFAULT_SEED = 2026  # PAPER: spec §8

# variant tag -> (encoder it applies to, ModelConfig overrides)
VARIANTS: dict[str, tuple[str, dict[str, Any]]] = {
    "nolocality": ("band_split", {"band_locality": False}),
    "adaptive": ("sfc_ca", {"query": "adaptive"}),
    "nobias": ("sfc_ca", {"pos_bias": "none"}),
    "fixedbias": ("sfc_ca", {"pos_bias": "fixed"}),
    "learnslope": ("sfc_ca", {"pos_bias": "learnable_slope"}),
    "bandmask": ("sfc_ca", {"pos_bias": "band_mask"}),
    "learnable": ("sfc_mamba", {"query": "learnable"}),
    "startend": ("sfc_mamba", {"query_placement": "start_end"}),
    "uniform": ("sfc_mamba", {"query_placement": "uniform"}),
}
_VARIANT_ORDER = list(VARIANTS)
# MSTFA (reconstructed) ablations: tag -> (where it applies, ModelConfig overrides); mstfa.md §6.
MSTFA_VARIANTS: dict[str, tuple[str, dict[str, Any]]] = {
    "ms1": ("mstfa separator or mstfa_unet", {"scales": (1,)}),
    "noattn": ("mstfa_unet", {"attention": False}),
}
_CONFLICTS = [{"nobias", "fixedbias", "learnslope", "bandmask"}, {"startend", "uniform"}]


@dataclass(frozen=True)
class Experiment:
    """A parsed experiment id."""

    task: str
    encoder: str
    size: str
    num_bands: int
    separator: str = "tf_locoformer"
    variants: tuple[str, ...] = ()
    seed: int = DEFAULT_SEED
    family: str = "sfc"  # for the U-Net families, ``encoder`` holds the family name too
    target: str | None = None  # a dedicated single-source model

    @property
    def id(self) -> str:
        if self.family == "lightsaft":
            parts = [self.task, self.family, self.size]
        elif self.family == "mstfa_unet":
            size = [] if self.size == "base" else [self.size]
            parts = [self.task, self.family, *size, str(self.target)]
        else:
            parts = [self.task, self.encoder, self.size, f"k{self.num_bands}"]
            if self.separator in ("gru", "mstfa"):
                parts.append(self.separator)
        parts.extend(self.variants)
        if self.seed != DEFAULT_SEED:
            parts.append(f"s{self.seed}")
        return "-".join(parts)

    @property
    def task_spec(self) -> Task:
        return TASKS[self.task]

    @property
    def targets(self) -> tuple[str, ...]:
        """The sources the model outputs, in its output order."""
        return (self.target,) if self.target else TASKS[self.task].sources

    @property
    def target_indices(self) -> list[int]:
        """Positions of ``targets`` in the task's source order (slice the references with them)."""
        return [TASKS[self.task].sources.index(t) for t in self.targets]

    def model_config(self) -> ModelConfig:
        task = TASKS[self.task]
        if self.family != "sfc":
            cfg = ModelConfig(
                family=self.family,  # type: ignore[arg-type]
                size=self.size,  # type: ignore[arg-type]
                num_channels=task.num_channels,
                num_sources=len(self.targets),
                hop_length=1024,  # PAPER: lightsaft.md §2 / ASSUMPTION: mstfa.md §2 host U
            )
        else:
            cfg = ModelConfig(
                encoder=self.encoder,  # type: ignore[arg-type]
                separator=self.separator,  # type: ignore[arg-type]
                size=self.size,  # type: ignore[arg-type]
                num_bands=self.num_bands,
                num_channels=task.num_channels,
                num_sources=len(task.sources),
            )
        for tag in self.variants:
            cfg = replace(cfg, **(VARIANTS.get(tag) or MSTFA_VARIANTS[tag])[1])
        return cfg


def parse_experiment(exp_id: str) -> Experiment:
    """Parse and validate an experiment id; raises UserError naming the bad part."""
    if not isinstance(exp_id, str) or not exp_id:
        raise UserError(f"experiment id must be a non-empty string, got {exp_id!r}")
    parts = exp_id.split("-")
    if len(parts) >= 2 and parts[1] in FAMILY_SIZES and parts[1] != "sfc":
        return _parse_family(exp_id, parts)
    if len(parts) < 4:
        raise UserError(
            f"unknown experiment id {exp_id!r}: expected <task>-<encoder>-<size>-k<bands>[-gru][-variant...]"
        )
    task, encoder, size, bands, *rest = parts
    if task not in TASKS:
        raise UserError(
            f"unknown experiment id {exp_id!r}: task {task!r} is not one of {sorted(TASKS)}"
        )
    if encoder not in ENCODERS:
        raise UserError(
            f"unknown experiment id {exp_id!r}: encoder {encoder!r} is not one of {list(ENCODERS)}"
        )
    if size not in SIZES:
        raise UserError(
            f"unknown experiment id {exp_id!r}: size {size!r} is not one of {list(SIZES)}"
        )
    match = re.fullmatch(r"k([1-9][0-9]*)", bands)
    if not match or not 2 <= int(match.group(1)) <= 1025:
        raise UserError(
            f"unknown experiment id {exp_id!r}: bands {bands!r} must look like k64 (2..1025)"
        )
    separator, variants, seed = "tf_locoformer", [], DEFAULT_SEED
    if rest and rest[0] in ("gru", "mstfa"):
        separator, rest = rest[0], rest[1:]
    if rest and re.fullmatch(r"s[0-9]+", rest[-1]):
        seed, rest = int(rest[-1][1:]), rest[:-1]
    if separator == "mstfa" and rest[:1] == ["ms1"]:
        variants, rest = ["ms1"], rest[1:]
    for tag in rest:
        if tag not in VARIANTS:
            raise UserError(
                f"unknown experiment id {exp_id!r}: variant {tag!r} is not one of {_VARIANT_ORDER}"
            )
        if VARIANTS[tag][0] != encoder:
            raise UserError(
                f"experiment id {exp_id!r}: variant {tag!r} applies to {VARIANTS[tag][0]}, not {encoder}"
            )
        variants.append(tag)
    own = [v for v in variants if v in VARIANTS]
    if len(set(own)) != len(own) or own != sorted(own, key=_VARIANT_ORDER.index):
        raise UserError(
            f"experiment id {exp_id!r}: variants must be unique and in the order {_VARIANT_ORDER}"
        )
    for group in _CONFLICTS:
        if len(group & set(variants)) > 1:
            raise UserError(
                f"experiment id {exp_id!r}: variants {sorted(group & set(variants))} exclude each other"
            )
    exp = Experiment(task, encoder, size, int(match.group(1)), separator, tuple(variants), seed)
    exp.model_config()  # validates the combination
    return exp


def _parse_family(exp_id: str, parts: list[str]) -> Experiment:
    """The U-Net family ids: ``<task>-lightsaft-<size>``, ``<task>-mstfa_unet[-<size>]-<target>``."""
    task, family, *rest = parts
    if task not in TASKS:
        raise UserError(
            f"unknown experiment id {exp_id!r}: task {task!r} is not one of {sorted(TASKS)}"
        )
    seed = DEFAULT_SEED
    if rest and re.fullmatch(r"s[0-9]+", rest[-1]):
        seed, rest = int(rest[-1][1:]), rest[:-1]
    sizes = FAMILY_SIZES[family]
    if family == "lightsaft":
        if len(rest) != 1 or rest[0] not in sizes:
            raise UserError(
                f"unknown experiment id {exp_id!r}: expected <task>-lightsaft-<size>[-s<seed>], "
                f"size one of {list(sizes)}"
            )
        return Experiment(task, family, rest[0], 0, "", (), seed, family)
    size = rest.pop(0) if rest and rest[0] in sizes and rest[0] != "base" else "base"
    sources = TASKS[task].sources
    if not rest or rest[0] not in sources:
        raise UserError(
            f"unknown experiment id {exp_id!r}: expected <task>-mstfa_unet[-<size>]-<target>"
            f"[-ms1][-noattn][-s<seed>], target one of {list(sources)}"
        )
    target, tags = rest[0], rest[1:]
    if tags not in ([], ["ms1"], ["noattn"], ["ms1", "noattn"]):
        raise UserError(
            f"unknown experiment id {exp_id!r}: after the target only -ms1 and -noattn (in this "
            f"order) may follow, got {tags}"
        )
    exp = Experiment(task, family, size, 0, "", tuple(tags), seed, family, target)
    exp.model_config()
    return exp


def _grid(tasks, encoders, sizes, bands, suffix="") -> list[str]:
    return [
        f"{t}-{e}-{s}-k{k}{suffix}" for t in tasks for s in sizes for k in bands for e in encoders
    ]


# Every trained model the paper's tables and ablations need (spec §10-§12), grouped by table.
# ASSUMPTION: ablations, the number-of-bands table and the separator swap use the small model on
# MUSDB18-HQ (spec §14 item 7).
PAPER_TABLES: dict[str, list[str]] = {
    "main_mss": _grid(["mss"], ENCODERS, ["small", "medium"], [64]),
    "main_cass": _grid(["cass"], ENCODERS, ["small", "medium"], [64]),
    "cost": _grid(["mss"], ENCODERS, ["small", "medium"], [64]),
    "num_bands": _grid(["mss"], ENCODERS, ["small"], [32, 48, 64]),
    "separator": _grid(["mss"], ENCODERS, ["small"], [64], "-gru"),
    "ablation_band_locality": ["mss-band_split-small-k64", "mss-band_split-small-k64-nolocality"],
    "ablation_query_placement": [
        "mss-sfc_mamba-small-k64",
        "mss-sfc_mamba-small-k64-startend",
        "mss-sfc_mamba-small-k64-uniform",
    ],
    "ablation_pos_bias": [
        "mss-sfc_ca-small-k64-nobias",
        "mss-sfc_ca-small-k64-fixedbias",
        "mss-sfc_ca-small-k64-learnslope",
        "mss-sfc_ca-small-k64",
    ],
    "ablation_query_type": [
        "mss-sfc_ca-small-k64",
        "mss-sfc_ca-small-k64-adaptive",
        "mss-sfc_mamba-small-k64-learnable",
        "mss-sfc_mamba-small-k64",
    ],
    "ablation_receptive_field": [
        "mss-band_split-small-k64",
        "mss-sfc_ca-small-k64-bandmask",
        "mss-sfc_ca-small-k64",
    ],
    # Not in the SFC paper: the baselines of the project's other papers beside the SFC small models
    # (LightSAFT-Net as released, 9 and 7 blocks; MSTFA (reconstructed) as the U-Net host with its
    # two ablations and as the pipeline's separator, to compare with TF-Locoformer all else equal).
    "baselines": [
        "mss-lightsaft-mdx",
        "mss-lightsaft-mdx7",
        "mss-mstfa_unet-vocals",
        "mss-mstfa_unet-vocals-ms1",
        "mss-mstfa_unet-vocals-noattn",
        "mss-band_split-small-k64-mstfa",
        "mss-band_split-small-k64-mstfa-ms1",
        "mss-band_split-small-k64",
        "mss-sfc_ca-small-k64",
        "mss-sfc_mamba-small-k64",
    ],
}


def paper_experiment_ids() -> list[str]:
    """All distinct experiment ids of the paper, in table order."""
    return list(dict.fromkeys(i for ids in PAPER_TABLES.values() for i in ids))


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--table", choices=sorted(PAPER_TABLES), help="only the ids of this table")
    parser.add_argument("--json", action="store_true", help="print JSON (table -> ids)")


def main(args: argparse.Namespace) -> int:
    tables = {args.table: PAPER_TABLES[args.table]} if args.table else PAPER_TABLES
    if args.json:
        print(json.dumps(tables, indent=2))
    else:
        for ids in tables.values():
            for exp_id in ids:
                print(exp_id)
    return 0
