"""The training engine: a flat, step-based loop (one global batch per step), resumable at any step.

PAPER: spec §8. AdamW (lr 1e-3, wd 1e-2), warm-up + step decay per step, gradient clipping at 5, EMA 0.999
used for validation and inference, bf16 autocast on GPU (fp32 on CPU), validation on whole tracks with
chunked inference, top-k checkpoints by validation loss averaged (EMA weights) into the final model.

Exit codes of ``sfc train`` (see sfc/train/cli.py): 0 done, 3 non-finite loss (the last good checkpoint
is kept), 75 stopped by SIGTERM/SIGUSR1 after writing a checkpoint (resume by running the same command).

Other model families plug in through config values (lightsaft.md §4, mstfa.md §4): ``optimizer``
(AdamW or plain Adam), ``schedule`` (constant), ``grad_clip`` None, ``ema_decay`` 0, ``loss``
``spec_mse`` (MSE on the network's complex-STFT output). A **conditioned** model (LightSAFT-Net) is
trained on one target per example: the condition of global-batch example i at step s is drawn from a
generator seeded by (seed, s), so a resumed run repeats it and every split of the global batch into
processes and micro-batches sees the same conditions; a micro-batch holding a single condition is
redrawn (see ``draw_conditions``). A **dedicated** model (one target) is trained and validated on its
target's reference only; the mixture is still the sum of all stems.
"""

from __future__ import annotations

import contextlib
import hashlib
import math
import signal
import time
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import nn
from torch.nn.parallel import DistributedDataParallel

from sfc.errors import UserError
from sfc.experiments import parse_experiment
from sfc.models import build_model, model_checkpoint
from sfc.provenance import write_json_atomic
from sfc.train import checkpoint as ckpt
from sfc.train.config import TrainConfig
from sfc.train.data import build_train_dataset, iterate_batches, load_valid_tracks
from sfc.train.dist import (
    DistInfo,
    all_gather,
    all_reduce_mean,
    barrier,
    get_rng_state,
    init_distributed,
    seed_everything,
    set_rng_state,
)
from sfc.train.ema import EMA
from sfc.train.logs import RunLog, provenance
from sfc.train.loss import spec_mse_loss, thresholded_snr_loss
from sfc.train.schedule import build_scheduler
from sfc.train.validate import validate

EXIT_DIVERGED = 3
EXIT_PREEMPTED = 75  # EX_TEMPFAIL: try again (resume)
CHECKPOINT_FORMAT = "sfc-train-checkpoint/1"
# Keys that may change between a run and its resumption; any other difference is an error.
# micro_batch_size only sets how a process splits its share of the (fixed) global batch.
RESUME_MUTABLE = frozenset(
    {"num_workers", "log_every", "checkpoint_every", "valid_batch_size", "micro_batch_size"}
)


class TrainingStopped(Exception):
    """The run stopped early on purpose; ``exit_code`` says why."""

    exit_code = 1


class Diverged(TrainingStopped):
    exit_code = EXIT_DIVERGED


class Preempted(TrainingStopped):
    exit_code = EXIT_PREEMPTED


@dataclass(frozen=True)
class RunPaths:
    """Paths chosen by the caller (Snakemake): inputs, the resumable work dir and the final model file."""

    data_root: Path
    cache_dir: Path
    work_dir: Path
    output: Path

    @property
    def ckpt_dir(self) -> Path:
        return self.work_dir / "checkpoints"


@dataclass
class Run:
    """Everything the loop mutates, plus what it needs to write checkpoints."""

    experiment: str
    config: TrainConfig
    paths: RunPaths
    info: DistInfo
    model: nn.Module  # the live weights (unwrapped): a SeparationModel or a U-Net family
    ema: EMA
    optimizer: torch.optim.Optimizer
    scheduler: torch.optim.lr_scheduler.LambdaLR
    step: int = 0
    topk: list[ckpt.TopEntry] = field(default_factory=list)
    ddp: nn.Module | None = None  # the DDP wrapper when world_size > 1
    compiled: nn.Module | None = None  # torch.compile of the training net (config.compile)
    target_indices: list[int] | None = None  # a dedicated model's targets in the task's sources

    @property
    def conditioned(self) -> bool:
        return bool(getattr(self.model, "conditioned", False))

    @property
    def net(self) -> nn.Module:
        if self.compiled is not None:
            return self.compiled
        return self.ddp if self.ddp is not None else self.model

    @property
    def autocast(self) -> torch.autocast:
        # PAPER: spec §2/§8: the whole model under bf16 autocast on GPU; the STFT, norms and loss in fp32.
        precision = self.config.precision
        use_bf16 = precision == "bf16" or (precision == "auto" and self.info.device.type == "cuda")
        return torch.autocast(self.info.device.type, dtype=torch.bfloat16, enabled=use_bf16)


def train(experiment: str, config: TrainConfig, paths: RunPaths, device: str = "auto") -> Path:
    """Train (or resume) one experiment; write the averaged model to ``paths.output``.

    Raises:
        Diverged: a non-finite loss or gradient norm (no checkpoint is written for that step).
        Preempted: SIGTERM/SIGUSR1 arrived; a checkpoint of the last finished step was written.
    """
    with StopSignals() as stop:  # first, so a signal during the (slow) setup is not lost
        run = setup_run(experiment, config, paths, device)
        dataset = build_train_dataset(paths.cache_dir, config, run.info)
        tracks = load_valid_tracks(paths.data_root, config.task, config.num_valid_tracks, run.info)
        sources = parse_experiment(experiment).targets
        log = RunLog(paths.work_dir, sources, run.step, config.total_steps, run.info)
        log.message(
            f"sfc train {experiment}: step {run.step}/{config.total_steps} on {run.info.device} "
            f"x{run.info.world_size}, work dir {paths.work_dir}"
        )
        plan = config.batch_plan(run.info.world_size)
        log.message(f"sfc train {experiment}: {plan.describe()}")
        batches = iterate_batches(dataset, config, run.info, run.step)
        window: list[
            tuple[float, float]
        ] = []  # (loss, seconds) of the steps since the last log row
        try:
            while run.step < config.total_steps:
                tic = time.perf_counter()
                micro = [next(batches) for _ in range(plan.accumulation)]  # (B, C, L), (B, N, C, L)
                lr = run.optimizer.param_groups[0]["lr"]
                loss = accumulate_gradients(run, micro)
                # One all-reduce per step: the mean loss (logging, NaN guard) and the stop flag, so every
                # rank takes the same decision at the same step.
                loss_value, stop_requested = sync_scalars(loss, stop.requested, run.info)
                check_finite("loss", loss_value, run)
                grad_norm = clip_and_step(run)
                check_finite("gradient norm", grad_norm, run)
                run.step += 1
                window.append((loss_value, time.perf_counter() - tic))
                if run.step % config.log_every == 0 or run.step == config.total_steps:
                    log.step(train_row(run, window, lr, grad_norm))
                    window = []
                else:
                    log.step({})
                validated = run.step % config.valid_every == 0 or run.step == config.total_steps
                if validated:
                    validate_and_rank(run, tracks, sources, log)
                if validated or stop_requested or run.step % config.checkpoint_every == 0:
                    save_checkpoint(run)
                if stop_requested:
                    raise Preempted(
                        f"stopped by signal after step {run.step}; checkpoint written to "
                        f"{paths.ckpt_dir / ckpt.LAST}; run the same command to resume"
                    )
        finally:
            log.close()
    return finalize(run)


def train_row(
    run: Run, window: list[tuple[float, float]], lr: float, grad_norm: float
) -> dict[str, Any]:
    """One CSV/TensorBoard row: mean loss and training speed (data + step) over ``window``."""
    return {
        "step": run.step,
        "epoch": (run.step - 1) // run.config.steps_per_epoch,
        "loss": sum(w[0] for w in window) / len(window),
        "lr": lr,
        "grad_norm": grad_norm,
        "steps_per_s": len(window) / sum(w[1] for w in window),
    }


def setup_run(experiment: str, config: TrainConfig, paths: RunPaths, device: str) -> Run:
    """Build model, EMA, optimizer and scheduler; restore them from the work dir's last checkpoint."""
    info = init_distributed(device)
    exp = parse_experiment(experiment)
    if exp.task != config.task:
        raise UserError(
            f"experiment {experiment} is a {exp.task} model, the train config is for {config.task}"
        )
    seed_everything(config.seed)  # identical initial weights on every rank
    model = build_model(exp.model_config()).to(info.device)
    check_family_config(model, config, info)
    ema = EMA(model, config.ema_decay)
    # PAPER: the authors' AdamW receives every parameter, so weight decay applies to all of them
    # (biases, norm gains, queries and positional biases included). LightSAFT: plain Adam.
    optim = torch.optim.Adam if config.optimizer == "adam" else torch.optim.AdamW
    optimizer = optim(
        model.parameters(), lr=config.lr, betas=config.betas, weight_decay=config.weight_decay
    )
    run = Run(
        exp.id, config, paths, info, model, ema, optimizer, build_scheduler(optimizer, config)
    )
    run.target_indices = exp.target_indices if exp.target else None
    last = paths.ckpt_dir / ckpt.LAST
    if last.is_file():
        restore_checkpoint(run, torch.load(last, map_location=info.device, weights_only=False))
    else:
        # ASSUMPTION: each rank gets its own dropout stream (seed + rank); the data does not use it.
        seed_everything(config.seed + info.rank)
        if info.is_main:
            paths.ckpt_dir.mkdir(parents=True, exist_ok=True)
    if info.is_main:
        write_json_atomic(paths.work_dir / "provenance.json", run_provenance(run))
    if info.enabled:
        if info.device.type == "cuda" and any(
            isinstance(m, nn.modules.batchnorm._BatchNorm) for m in model.modules()
        ):
            # PAPER: lightsaft.md §4 `--sync_batchnorm True`; in place (the module keeps its identity)
            nn.SyncBatchNorm.convert_sync_batchnorm(model)
        run.ddp = DistributedDataParallel(
            model, device_ids=[info.device.index] if info.device.type == "cuda" else None
        )
    compile_net(run)
    return run


def compile_net(run: Run) -> None:
    """Wrap the training net in ``torch.compile`` when ``config.compile`` asks for it.

    Same weights and state dict (the compiled module shares the parameters); checkpoints, EMA and
    validation keep using the plain model. The complex mask and the iSTFT fall back to eager.
    """
    if run.config.compile:
        run.compiled = torch.compile(run.ddp if run.ddp is not None else run.model)


def run_provenance(run: Run) -> dict[str, Any]:
    """provenance.json of a run: config, code, machine, data, and the effective global batch."""
    prov = provenance(
        run.experiment, run.config.to_dict(), run.info, run.paths.data_root, run.paths.cache_dir
    )
    prov["batch"] = run.config.batch_plan(run.info.world_size).to_dict()
    return prov


def check_family_config(model: nn.Module, config: TrainConfig, info: DistInfo) -> None:
    """UserError for a train config the model family cannot use."""
    if config.loss == "spec_mse" and not hasattr(model, "spec_sources"):
        raise UserError(
            "train config: loss spec_mse needs a spectrogram-mapping model (lightsaft, mstfa_unet); "
            f"{type(model).__name__} outputs masked waveforms: use loss thresholded_snr"
        )
    micro = config.batch_plan(info.world_size).micro
    if getattr(model, "conditioned", False) and micro < 2:
        raise UserError(
            f"train config: a conditioned model needs micro-batches of >= 2 examples with mixed "
            f"conditions (BatchNorm over the batch); the batch plan gives {micro}"
        )


def draw_conditions(
    config: TrainConfig, step: int, first: int, size: int, num_sources: int
) -> torch.Tensor:
    """Conditions of the global-batch examples [first, first + size) at ``step``, shape (size,).

    PAPER: lightsaft.md §4: a target index drawn uniformly per example. The draw covers the whole global
    batch from a generator seeded by (seed, step), so it does not depend on the number of processes or
    the micro-batch split, and a resumed run repeats it.
    DEVIATION: a micro-batch (> 1 example) holding a single condition is redrawn from a generator seeded
    by (seed, step, first, attempt): the GPoCM heads batch-normalise over the micro-batch, so a single
    condition would zero them (the authors' 16 per GPU with SyncBN over 64 make that ~4^-63 unlikely).
    """
    gen = torch.Generator().manual_seed(config.seed * 1_000_003 + step)
    cond = torch.randint(num_sources, (config.batch_size,), generator=gen)[first : first + size]
    attempt = 0
    while size > 1 and bool((cond == cond[0]).all()):
        attempt += 1
        gen = torch.Generator().manual_seed(
            ((config.seed * 1_000_003 + step) * 65_537 + first) * 101 + attempt
        )
        cond = torch.randint(num_sources, (size,), generator=gen)
    return cond


def forward_loss(run: Run, mix: torch.Tensor, refs: torch.Tensor, first: int = 0) -> torch.Tensor:
    """Scalar training loss of one micro-batch; the model runs under the autocast policy, the loss in
    fp32 (or fp64 for a float64 model).

    Args:
        mix: (B, C, L); refs: (B, N_task, C, L) every stem of the mixture.
        first: index of the micro-batch's first example in the global batch (conditioned models).
    """
    run.net.train()
    mix, refs = (
        mix.to(run.info.device, non_blocking=True),
        refs.to(run.info.device, non_blocking=True),
    )
    if run.target_indices is not None:
        refs = refs[:, run.target_indices]  # (B, N, C, L) a dedicated model's targets
    kwargs: dict[str, Any] = {}
    if run.conditioned:
        cond = draw_conditions(run.config, run.step, first, mix.shape[0], refs.shape[1])
        refs = refs[torch.arange(mix.shape[0]), cond].unsqueeze(1)  # (B, 1, C, L) the target
        kwargs["cond"] = cond.to(run.info.device)
    if run.config.loss == "spec_mse":
        with run.autocast:
            est = run.net(mix, output="spec", **kwargs)  # (B, N·2C, T, F)
        return spec_mse_loss(est, run.model.spec_sources(refs))
    with run.autocast:
        est = run.net(mix, **kwargs)  # (B, N, C, L), or (B, C, L) for one condition
    return thresholded_snr_loss(est.view(refs.shape), refs, mix)


def accumulate_gradients(
    run: Run, micro_batches: list[tuple[torch.Tensor, torch.Tensor]]
) -> torch.Tensor:
    """Forward and backward every micro-batch of this rank's share of one global batch.

    Each micro-batch loss is divided by their number, so the accumulated gradient is the gradient of
    the mean loss over the rank's share; DDP averages it over ranks on the last backward (the others
    run under ``no_sync``). All micro-batches have the same size, so the result equals one pass over the
    whole global batch.

    Returns:
        The rank's mean loss (detached scalar).
    """
    run.optimizer.zero_grad(set_to_none=True)
    total = torch.zeros((), device=run.info.device)
    plan = run.config.batch_plan(run.info.world_size)
    for j, (mix, refs) in enumerate(micro_batches):
        last = j == len(micro_batches) - 1
        sync = contextlib.nullcontext() if run.ddp is None or last else run.ddp.no_sync()
        # the micro-batch's position in the global batch (sfc/train/data.py: rank slices, in order)
        first = run.info.rank * plan.per_rank + j * plan.micro
        with sync:
            loss = forward_loss(run, mix, refs, first) / len(micro_batches)
            loss.backward()
        total = total + loss.detach().to(total.dtype)
    return total


def clip_and_step(run: Run) -> float:
    """Clip the global gradient norm (unless ``grad_clip`` is None), optimizer step, lr step, EMA update.

    Returns:
        The gradient norm before clipping. A non-finite norm returns before the optimizer step.
    """
    max_norm = run.config.grad_clip if run.config.grad_clip is not None else math.inf
    grad_norm = torch.nn.utils.clip_grad_norm_(run.model.parameters(), max_norm).item()
    if not math.isfinite(grad_norm):
        return grad_norm
    run.optimizer.step()
    run.scheduler.step()
    run.ema.update(run.model)
    return grad_norm


def sync_scalars(loss: torch.Tensor, stop: bool, info: DistInfo) -> tuple[float, bool]:
    """(mean loss over ranks, whether any rank asked to stop)."""
    values = torch.stack([loss.float(), torch.tensor(float(stop), device=loss.device)])
    loss_mean, stop_any = all_reduce_mean(values, info).tolist()
    return loss_mean, stop_any > 0


def check_finite(what: str, value: float, run: Run) -> None:
    if not math.isfinite(value):
        last = run.paths.ckpt_dir / ckpt.LAST
        kept = (
            f"the last good checkpoint {last} is kept"
            if last.is_file()
            else "no checkpoint was written yet"
        )
        raise Diverged(
            f"non-finite {what} ({value}) at step {run.step + 1}: training stopped; {kept}. "
            "Lower the learning rate or check the data, then train again in a fresh --work-dir."
        )


def validate_and_rank(run: Run, tracks, sources: tuple[str, ...], log: RunLog) -> None:
    """Validate the EMA weights; write them as a top-k file if they rank among the best."""
    with run.autocast:
        metrics = validate(
            run.ema.module, tracks, run.config, run.info, sources, run.target_indices
        )
    log.write({"step": run.step, "epoch": (run.step - 1) // run.config.steps_per_epoch, **metrics})
    log.message(
        f"step {run.step}: val_loss {metrics['val_loss']:.3f}  val_usdr {metrics['val_usdr']:.2f} dB "
        f"(mixture {metrics['mix_usdr']:.2f} dB, gain {metrics['val_usdr_gain']:+.2f} dB)"
    )
    entry = ckpt.TopEntry(run.step, metrics["val_loss"], f"{ckpt.TOP_DIR}/step_{run.step:08d}.pt")
    kept, _ = ckpt.update_topk(run.topk, entry, run.config.top_k)
    if entry in kept and run.info.is_main:
        ckpt.atomic_save(
            model_checkpoint(run.ema.module, run.experiment, step=run.step, metrics=metrics),
            run.paths.ckpt_dir / entry.path,
        )
    run.topk = kept  # evicted files are deleted after the next last.pt names the new list


def save_checkpoint(run: Run) -> None:
    """Atomically write last.pt (rank 0), then delete top-k files it no longer names."""
    rng = all_gather(get_rng_state(), run.info)
    if run.info.is_main:
        state = {
            "format": CHECKPOINT_FORMAT,
            "experiment": run.experiment,
            "train_config": run.config.to_dict(),
            "model_config": run.model.config.to_dict(),
            "model": run.model.state_dict(),
            "ema": run.ema.state_dict(),
            "optimizer": run.optimizer.state_dict(),
            "scheduler": run.scheduler.state_dict(),
            "step": run.step,
            # the batches are a pure function of the step (sfc/train/data.py): this is the sampler state
            "sampler": {
                "epoch": run.step // run.config.steps_per_epoch,
                "position": run.step % run.config.steps_per_epoch,
                "global_batch": run.config.batch_size,
            },
            "topk": ckpt.topk_to_list(run.topk),
            "rng": rng,
            "world_size": run.info.world_size,
        }
        ckpt.atomic_save(state, run.paths.ckpt_dir / ckpt.LAST)
        ckpt.remove_orphans(run.paths.ckpt_dir, run.topk)
    barrier(run.info)


def restore_checkpoint(run: Run, state: dict[str, Any]) -> None:
    """Load every piece of a last.pt into ``run``; refuse a checkpoint of another experiment or config."""
    if state.get("format") != CHECKPOINT_FORMAT or state.get("experiment") != run.experiment:
        raise UserError(
            f"{run.paths.ckpt_dir / ckpt.LAST} is not a checkpoint of {run.experiment}; "
            "use a fresh --work-dir"
        )
    saved, now = state["train_config"], run.config.to_dict()
    changed = sorted(k for k in now if saved.get(k) != now[k] and k not in RESUME_MUTABLE)
    if changed:
        raise UserError(
            f"cannot resume from {run.paths.work_dir}: train config differs in {changed} "
            f"(saved {[saved.get(k) for k in changed]}, now {[now[k] for k in changed]}); "
            "use a fresh --work-dir"
        )
    run.model.load_state_dict(state["model"])
    run.ema.load_state_dict(state["ema"])
    run.optimizer.load_state_dict(state["optimizer"])
    run.scheduler.load_state_dict(state["scheduler"])
    run.step, run.topk = state["step"], ckpt.topk_from_list(state["topk"])
    if state["world_size"] == run.info.world_size:
        set_rng_state(state["rng"][run.info.rank])
    else:
        warnings.warn(
            f"resuming with {run.info.world_size} processes instead of {state['world_size']}: "
            "the examples of every step are the same (global batch), the dropout streams differ "
            "from an uninterrupted run",
            stacklevel=2,
        )
        seed_everything(run.config.seed + 7919 * run.step + run.info.rank)
    if run.info.is_main:
        ckpt.remove_orphans(run.paths.ckpt_dir, run.topk)


def weights_digest(model: nn.Module) -> str:
    """sha256 of every tensor's bytes: equal digests = bit-identical weights."""
    digest = hashlib.sha256()
    for key, value in model.state_dict().items():
        digest.update(key.encode())
        # reshape(-1): 0-dim tensors (BatchNorm num_batches_tracked) cannot be viewed as bytes
        digest.update(
            value.detach().cpu().contiguous().reshape(-1).view(torch.uint8).numpy().tobytes()
        )
    return digest.hexdigest()


def finalize(run: Run) -> Path:
    """Average the top-k EMA weights into the final model file (``--output``)."""
    digests = all_gather(weights_digest(run.model), run.info)
    if len(set(digests)) != 1:
        raise RuntimeError(f"ranks hold different weights after training: {digests}")
    if run.info.is_main:
        states = [
            torch.load(run.paths.ckpt_dir / e.path, map_location="cpu", weights_only=False)["model"]
            for e in run.topk
        ]
        final = build_model(run.model.config)
        final.load_state_dict(ckpt.average_state_dicts(states))
        prov = run_provenance(run)
        prov["rank_weight_sha256"] = digests
        payload = model_checkpoint(
            final,
            run.experiment,
            step=run.step,
            train_config=run.config.to_dict(),
            averaged=ckpt.topk_to_list(run.topk),
            provenance=prov,
        )
        ckpt.atomic_save(payload, run.paths.output)
        write_json_atomic(run.paths.work_dir / "provenance.json", prov)
    barrier(run.info)
    return run.paths.output


class StopSignals:
    """Turn SIGTERM / SIGUSR1 (SLURM's time-limit warning) into a flag the loop reads between steps."""

    SIGNALS = (signal.SIGTERM, signal.SIGUSR1)

    def __enter__(self) -> StopSignals:
        self.requested = False
        self.previous: dict[int, Any] = {}
        try:
            for sig in self.SIGNALS:
                self.previous[sig] = signal.signal(sig, self._handle)
        except ValueError:  # not the main thread: no handlers (tests driving train() from a thread)
            self.previous = {}
        return self

    def _handle(self, signum: int, frame: Any) -> None:
        self.requested = True

    def __exit__(self, *exc: Any) -> None:
        for sig, handler in self.previous.items():
            signal.signal(sig, handler)
