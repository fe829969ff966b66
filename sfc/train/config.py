"""Training recipes: one frozen dataclass holding every value the training engine reads.

PAPER: spec §8 (training recipe). ``paper`` recipes hold the authors' values per task; ``demo`` recipes are
ours, sized so a tiny model learns something on a 2-core CPU in a few minutes.

Overrides come from a YAML file (a flat mapping) and/or ``--set key=value`` pairs; unknown keys and
badly-typed values are a UserError naming the key.
"""

from __future__ import annotations

import dataclasses
import math
import types
import typing
from dataclasses import dataclass, fields, replace
from pathlib import Path
from typing import Any, Literal

import yaml

from sfc.errors import UserError

Precision = Literal["auto", "bf16", "fp32"]
LossName = Literal["thresholded_snr", "spec_mse"]
OptimizerName = Literal["adamw", "adam"]
ScheduleName = Literal["warmup_step", "constant"]
ValMetric = Literal["thresholded_snr", "l1"]
Chunking = Literal["overlap", "trimmed"]
RECIPES: tuple[str, ...] = ("paper", "demo", "lightsaft", "mstfa")


@dataclass(frozen=True)
class BatchPlan:
    """The global batch of one optimizer step, as processes x micro-batches x accumulation steps."""

    global_batch: int
    world_size: int
    per_rank: int  # examples per process per step
    micro: int  # examples per forward/backward pass
    accumulation: int  # forward/backward passes per process per step

    def describe(self) -> str:
        return (
            f"global batch {self.global_batch} = {self.world_size} process(es) x micro-batch "
            f"{self.micro} x {self.accumulation} accumulation step(s)"
        )

    def to_dict(self) -> dict[str, int]:
        return dataclasses.asdict(self)


@dataclass(frozen=True)
class TrainConfig:
    """Every training hyper-parameter. Steps are optimizer steps (one global batch each).

    Attributes:
        recipe: name of the recipe the values came from (``paper``, ``demo``, ``lightsaft``, ``mstfa``).
        task: ``mss`` or ``cass``; must match the experiment id's task.
        total_steps: optimizer steps of the whole run.
        steps_per_epoch: steps per epoch (epoch = the dynamic-mixing dataset length / global batch).
        warmup_steps: linear warm-up length, from ~0 to ``lr``.
        decay_start: first step at which the step decay applies.
        decay_every: steps between two multiplications by ``decay_gamma``.
        decay_gamma: step-decay factor.
        schedule: ``warmup_step`` (warm-up, constant, step decay) or ``constant`` (lr throughout).
        batch_size: the GLOBAL batch: examples per optimizer step over all processes (paper: 32).
        micro_batch_size: examples per forward/backward pass on one process (paper: 4 per GPU). With
            W processes each takes batch_size / W examples per step, in batch_size / W / micro
            forward/backward passes whose gradients are accumulated (see ``batch_plan``).
        lr: peak learning rate.
        optimizer: ``adamw`` (decoupled weight decay) or ``adam`` (plain Adam, L2 ``weight_decay``).
        weight_decay: weight decay.
        betas: Adam(W) betas.
        grad_clip: max global gradient norm; None = no clipping (the norm is still logged).
        loss: ``thresholded_snr`` (waveforms, the paper's) or ``spec_mse`` (MSE on the complex STFT in
            the network's output layout; spectrogram U-Net families only).
        ema_decay: decay of the exponential moving average of the weights, updated every step.
        precision: ``auto`` = bf16 autocast on CUDA, fp32 on CPU.
        compile: run the training forward/backward through ``torch.compile`` (opt-in, ours: not in
            the paper's recipe). The first steps pay minutes of compilation; inductor caches the result
            on disk for later runs. Tested on CPU only.
        segment_seconds: training segment length.
        source_dropout: probability of zeroing each source in a training mixture.
        gain_db: sources are scaled by a uniform random gain in [-gain_db, +gain_db] dB.
        normalize_sources: RMS-normalise every source before the gain (False: raw levels).
        num_workers: DataLoader worker processes per rank (0 = load in the main process).
        valid_every_epochs: validate (and maybe enter the top-k) every this many epochs.
        num_valid_tracks: validate on the first this many valid tracks (None = all).
        valid_chunk_seconds: chunk length of chunked inference on whole tracks.
        valid_shift_seconds: chunk shift of chunked inference (``overlap`` chunking).
        valid_chunking: ``overlap`` (the paper's overlap-averaged chunks) or ``trimmed`` (LightSAFT's
            non-overlapping windows whose first and last ``valid_trim_seconds`` are cut off).
        valid_trim_seconds: the trim of ``trimmed`` chunking.
        val_metric: checkpoints are ranked by ``thresholded_snr`` (the training loss on whole tracks)
            or ``l1`` (time-domain mean absolute error, LightSAFT's ``raw_l1``).
        valid_batch_size: chunks separated at once.
        top_k: number of best checkpoints (by validation loss) kept and averaged into the final model.
        checkpoint_every: steps between two resumable checkpoints (also written after each validation).
        log_every: steps between two rows of the CSV / TensorBoard training log.
        seed: base seed of model init, data and dropout.
    """

    recipe: str = "paper"
    task: str = "mss"
    # schedule (PAPER: spec §8, MUSDB18-HQ column)
    total_steps: int = 99_000
    steps_per_epoch: int = 110
    warmup_steps: int = 5_000
    decay_start: int = 60_500
    decay_every: int = 220
    decay_gamma: float = 0.98
    schedule: ScheduleName = "warmup_step"
    # optimisation. PAPER: spec §8: 8 GPUs x 4 = a global batch of 32, kept on any number of GPUs.
    batch_size: int = 32
    micro_batch_size: int = 4
    lr: float = 1e-3
    optimizer: OptimizerName = "adamw"
    weight_decay: float = 1e-2
    betas: tuple[float, float] = (0.9, 0.999)
    grad_clip: float | None = 5.0
    ema_decay: float = 0.999
    precision: Precision = "auto"
    compile: bool = False
    loss: LossName = "thresholded_snr"
    # data
    segment_seconds: float = 6.0
    source_dropout: float = 0.1
    gain_db: float = 10.0
    normalize_sources: bool = True
    num_workers: int = 4
    # validation and checkpoints
    valid_every_epochs: int = 5
    num_valid_tracks: int | None = None
    valid_chunk_seconds: float = 12.0
    valid_shift_seconds: float = 6.0
    valid_batch_size: int = 4
    valid_chunking: Chunking = "overlap"
    valid_trim_seconds: float = 0.0
    val_metric: ValMetric = "thresholded_snr"
    top_k: int = 5
    checkpoint_every: int = 110
    log_every: int = 10
    seed: int = 2026

    def __post_init__(self) -> None:
        hints = typing.get_type_hints(TrainConfig)
        for f in fields(self):
            object.__setattr__(self, f.name, _coerce(f.name, getattr(self, f.name), hints[f.name]))
        positive = (
            "total_steps",
            "steps_per_epoch",
            "decay_every",
            "batch_size",
            "micro_batch_size",
            "valid_every_epochs",
            "valid_batch_size",
            "top_k",
            "checkpoint_every",
            "log_every",
        )
        for key in positive:
            if getattr(self, key) < 1:
                raise UserError(f"train config: {key} must be >= 1, got {getattr(self, key)}")
        self._check_ranges()
        if self.recipe not in RECIPES:
            raise UserError(f"train config: recipe {self.recipe!r} is not one of {RECIPES}")
        if not 0.0 <= self.source_dropout < 1.0 or not 0.0 <= self.ema_decay < 1.0:
            raise UserError("train config: source_dropout and ema_decay must be in [0, 1)")
        if self.valid_shift_seconds > self.valid_chunk_seconds:
            raise UserError("train config: valid_shift_seconds must not exceed valid_chunk_seconds")
        if not 0.0 <= 2 * self.valid_trim_seconds < self.valid_chunk_seconds:
            raise UserError(
                "train config: valid_trim_seconds must be >= 0 and under half of valid_chunk_seconds"
            )
        if self.grad_clip is not None and self.grad_clip <= 0:
            raise UserError(
                f"train config: grad_clip must be positive or null (no clipping), got {self.grad_clip}"
            )

    def _check_ranges(self) -> None:
        """UserError naming the key for a value outside its meaningful range (before torch sees it)."""
        floats = {
            f.name: getattr(self, f.name)
            for f in fields(self)
            if f.type in ("float", "float | None") and getattr(self, f.name) is not None
        }
        for key, value in {**floats, "betas": self.betas}.items():
            if not all(math.isfinite(v) for v in (value if key == "betas" else (value,))):
                raise UserError(f"train config: {key} must be a finite number, got {value!r}")
        rules = (  # (key, lower bound, lower bound included)
            ("lr", 0.0, False),
            ("grad_clip", 0.0, False),
            ("segment_seconds", 0.0, False),
            ("valid_chunk_seconds", 0.0, False),
            ("valid_shift_seconds", 0.0, False),
            ("weight_decay", 0.0, True),
            ("gain_db", 0.0, True),
            ("warmup_steps", 0, True),
            ("decay_start", 0, True),
            ("num_workers", 0, True),
        )
        for key, low, closed in rules:
            value = getattr(self, key)
            if value is None:  # grad_clip None: no clipping
                continue
            if value < low or (value == low and not closed):
                raise UserError(
                    f"train config: {key} must be {'>=' if closed else '>'} {low:g}, got {value!r}"
                )
        if not 0.0 < self.decay_gamma <= 1.0:
            raise UserError(f"train config: decay_gamma must be in (0, 1], got {self.decay_gamma}")
        if not all(0.0 <= b < 1.0 for b in self.betas):
            raise UserError(f"train config: betas must be in [0, 1), got {list(self.betas)}")
        if self.num_valid_tracks is not None and self.num_valid_tracks < 1:
            raise UserError(
                f"train config: num_valid_tracks must be >= 1 or null, got {self.num_valid_tracks}"
            )

    def batch_plan(self, world_size: int) -> BatchPlan:
        """How ``world_size`` processes make up the global batch; a UserError if they cannot."""
        if world_size < 1 or self.batch_size % world_size:
            raise UserError(
                f"train config: the global batch_size {self.batch_size} cannot be split over "
                f"{world_size} processes; use a number of GPUs that divides it, or --set batch_size"
            )
        per_rank = self.batch_size // world_size
        micro = min(self.micro_batch_size, per_rank)
        if per_rank % micro:
            raise UserError(
                f"train config: each of the {world_size} processes takes {per_rank} examples per "
                f"step, which micro_batch_size {micro} does not divide; set micro_batch_size to a "
                f"divisor of {per_rank}"
            )
        return BatchPlan(self.batch_size, world_size, per_rank, micro, per_rank // micro)

    @property
    def valid_every(self) -> int:
        """Steps between two validations."""
        return self.valid_every_epochs * self.steps_per_epoch

    def to_dict(self) -> dict[str, Any]:
        data = dataclasses.asdict(self)
        data["betas"] = list(self.betas)
        return data


# PAPER: spec §8, DnR column: 150 epochs x 1,354 steps, decay x0.96 per epoch from epoch 75, dropout 0.05,
# validation every epoch on 80 cv mixtures (10 per GPU x 8 GPUs).
_PAPER: dict[str, dict[str, Any]] = {
    "mss": {},
    "cass": dict(
        task="cass",
        total_steps=203_100,
        steps_per_epoch=1_354,
        decay_start=101_550,
        decay_every=1_354,
        decay_gamma=0.96,
        source_dropout=0.05,
        valid_every_epochs=1,
        num_valid_tracks=80,
        checkpoint_every=1_354,
    ),
}
# ASSUMPTION (ours): the demo recipe trades the paper's schedule for one a tiny model runs on a 2-core
# CPU in under 10 minutes: 1-s segments, batch 2, 700 steps, lr 2e-3 with a short warm-up and x0.7 every
# 50 steps from step 450, EMA 0.99, validation every 100 steps on whole tracks with 10-s chunks (no
# overlap, to halve its cost), top-3 average. Measured on the generated demo data (`sfc data generate
# --task mss`, quiet 2-core CPU): mss-sfc_ca-tiny-k32 reaches val uSDR +1.59 dB at step 100, +2.98 at
# 300, +3.66 at 600 and +3.77 dB at step 700 (the mixture scores -5.17 dB), in ~9.5 minutes.
_DEMO_COMMON: dict[str, Any] = dict(
    recipe="demo",
    total_steps=700,
    steps_per_epoch=50,
    warmup_steps=40,
    decay_start=450,
    decay_every=50,
    decay_gamma=0.7,
    batch_size=2,
    micro_batch_size=2,
    lr=2e-3,
    ema_decay=0.99,
    segment_seconds=1.0,
    num_workers=0,
    valid_every_epochs=2,
    num_valid_tracks=None,
    valid_chunk_seconds=10.0,
    valid_shift_seconds=10.0,
    top_k=3,
    checkpoint_every=50,
    log_every=5,
)
_DEMO: dict[str, dict[str, Any]] = {
    "mss": dict(_DEMO_COMMON, task="mss", source_dropout=0.1),
    "cass": dict(_DEMO_COMMON, task="cass", source_dropout=0.05),
}


# PAPER: lightsaft.md §4 (branch `lightsaft4dmx_9_256` + README command): Adam (no weight decay) at a
# constant 5e-4, global batch 64 (16 per GPU x 4), no clipping, no EMA, raw levels (no per-stem
# normalisation, gains or dropout), 261,120-sample windows (256 frames), spectrogram MSE, validation
# every epoch by time-domain L1 on trimmed windows (trim 16,384 in the training code), one checkpoint.
# ASSUMPTION (lightsaft.md §4 estimate, stated nowhere): ~200 steps per epoch, ~1.4e5 steps (694 epochs).
# DEVIATION: bf16 autocast (precision auto) instead of fp16 AMP; the dynamic-mixing cache samples only
# SAD-active 8-s segments where the authors sample anywhere in a track.
_LIGHTSAFT: dict[str, dict[str, Any]] = {
    "mss": dict(
        recipe="lightsaft",
        task="mss",
        total_steps=139_000,
        steps_per_epoch=200,
        warmup_steps=0,
        schedule="constant",
        batch_size=64,
        micro_batch_size=16,
        lr=5e-4,
        optimizer="adam",
        weight_decay=0.0,
        grad_clip=None,
        ema_decay=0.0,
        loss="spec_mse",
        segment_seconds=261_120 / 44_100,
        source_dropout=0.0,
        gain_db=0.0,
        normalize_sources=False,
        valid_every_epochs=1,
        valid_chunk_seconds=261_120 / 44_100,
        valid_shift_seconds=261_120 / 44_100,
        valid_chunking="trimmed",
        valid_trim_seconds=16_384 / 44_100,
        valid_batch_size=8,
        val_metric="l1",
        top_k=1,
        checkpoint_every=200,
    )
}
# ASSUMPTION (mstfa.md §4, reconstruction): the pipeline's tested recipe; host U has BatchNorm, so 8
# examples per micro-batch (the spec asks for >= 8 per GPU).
_MSTFA: dict[str, dict[str, Any]] = {"mss": dict(recipe="mstfa", micro_batch_size=8)}


def recipe_config(recipe: str, task: str) -> TrainConfig:
    """The recipe's values for a task."""
    table = {"paper": _PAPER, "demo": _DEMO, "lightsaft": _LIGHTSAFT, "mstfa": _MSTFA}
    if recipe not in table:
        raise UserError(f"unknown recipe {recipe!r}; known recipes are {list(table)}")
    if task not in table[recipe]:
        raise UserError(f"unknown task {task!r}; known tasks are {list(table[recipe])}")
    return TrainConfig(**table[recipe][task])


def apply_overrides(config: TrainConfig, overrides: dict[str, Any], source: str) -> TrainConfig:
    """Replace fields of ``config``; unknown keys raise a UserError naming the key and ``source``."""
    known = {f.name for f in fields(TrainConfig)}
    for key in overrides:
        if key not in known:
            raise UserError(
                f"{source}: unknown train config key {key!r}; known keys: {sorted(known)}"
            )
    return replace(config, **overrides)


def load_yaml_overrides(path: str | Path) -> dict[str, Any]:
    """Read a flat YAML mapping of overrides."""
    path = Path(path)
    if not path.is_file():
        raise UserError(f"train config file not found: {path}")
    try:
        data = yaml.safe_load(path.read_text()) or {}
    except yaml.YAMLError as err:
        raise UserError(f"cannot parse train config file {path}: {err}") from err
    if not isinstance(data, dict):
        raise UserError(f"{path}: expected a mapping of key: value, got {type(data).__name__}")
    return data


def parse_set_overrides(pairs: list[str]) -> dict[str, Any]:
    """Parse ``key=value`` strings; values are YAML scalars (``lr=3e-3``, ``num_valid_tracks=null``)."""
    out: dict[str, Any] = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key.strip():
            raise UserError(f"--set expects key=value, got {pair!r}")
        out[key.strip()] = yaml.safe_load(value) if value.strip() else None
    return out


def resolve_config(
    task: str,
    recipe: str = "paper",
    seed: int | None = None,
    yaml_path: str | Path | None = None,
    sets: list[str] | None = None,
) -> TrainConfig:
    """Recipe -> experiment seed -> YAML file -> ``--set`` pairs, later ones winning."""
    config = recipe_config(recipe, task)
    if seed is not None:
        config = replace(config, seed=seed)
    if yaml_path is not None:
        config = apply_overrides(config, load_yaml_overrides(yaml_path), str(yaml_path))
    if sets:
        config = apply_overrides(config, parse_set_overrides(sets), "--set")
    if config.task != task:
        raise UserError(
            f"train config: task {config.task!r} does not match the experiment's task {task!r}"
        )
    return config


def _coerce(key: str, value: Any, hint: Any) -> Any:
    """Check ``value`` against a field's type hint; convert the lossless cases (int -> float, '3e-3')."""
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if origin in (typing.Union, types.UnionType):
        if value is None and type(None) in args:
            return None
        (hint,) = [a for a in args if a is not type(None)]
        return _coerce(key, value, hint)
    if origin is Literal:
        if value not in args:
            raise UserError(f"train config: {key}={value!r} is not one of {args}")
        return value
    if origin is tuple:
        if not isinstance(value, (list, tuple)) or len(value) != len(args):
            raise UserError(
                f"train config: {key} must be a list of {len(args)} values, got {value!r}"
            )
        return tuple(_coerce(key, v, a) for v, a in zip(value, args))
    if hint is float and isinstance(value, str):  # PyYAML reads `3e-3` as a string
        try:
            return float(value)
        except ValueError:
            pass
    if hint is float and isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    if not isinstance(value, hint) or (hint is int and isinstance(value, bool)):
        raise UserError(f"train config: {key} must be {hint.__name__}, got {value!r}")
    return value
