"""Observability: tqdm progress bar, CSV log, TensorBoard scalars and provenance.json.

Only rank 0 writes. On resume, rows and events after the resumed step are dropped, so the logs of a
resumed run read like those of an uninterrupted one.
"""

from __future__ import annotations

import csv
import hashlib
import platform
import socket
import sys
from pathlib import Path
from typing import Any

import torch
from tqdm import tqdm

from sfc.provenance import atomic_file, git_commit, package_versions
from sfc.train.dist import DistInfo

TRAIN_COLUMNS = ["step", "epoch", "loss", "lr", "grad_norm", "steps_per_s"]
VALID_COLUMNS = ["val_loss", "val_usdr", "mix_usdr", "val_usdr_gain"]


class RunLog:
    """CSV + TensorBoard + progress bar of one run (no-ops on ranks other than 0)."""

    def __init__(
        self,
        work_dir: Path,
        sources: tuple[str, ...],
        start_step: int,
        total_steps: int,
        info: DistInfo,
    ) -> None:
        self.enabled = info.is_main
        self.columns = TRAIN_COLUMNS + VALID_COLUMNS + [f"val_usdr_{s}" for s in sources]
        self.csv_path = work_dir / "log.csv"
        self.bar = tqdm(
            total=total_steps,
            initial=start_step,
            disable=not self.enabled,
            unit="step",
            dynamic_ncols=True,
            mininterval=1.0 if sys.stderr.isatty() else 30.0,
        )
        self.writer = None
        if self.enabled:
            _truncate_csv(self.csv_path, self.columns, start_step)
            from torch.utils.tensorboard import SummaryWriter

            self.writer = SummaryWriter(
                str(work_dir / "tensorboard"), purge_step=start_step or None
            )

    def step(self, row: dict[str, Any]) -> None:
        """Advance the bar by one step; ``row`` is written to CSV/TensorBoard when it has a loss."""
        if not self.enabled:
            return
        self.bar.update(1)
        if "loss" in row:
            self.bar.set_postfix(loss=f"{row['loss']:.3f}", lr=f"{row['lr']:.2e}", refresh=False)
            self.write(row)

    def write(self, row: dict[str, Any]) -> None:
        if not self.enabled:
            return
        with self.csv_path.open("a", newline="") as f:
            csv.DictWriter(f, self.columns, restval="").writerow(
                {k: _fmt(v) for k, v in row.items()}
            )
        for key, value in row.items():
            if key not in ("step", "epoch") and value is not None:
                group = "valid" if key.startswith(("val_", "mix_")) else "train"
                self.writer.add_scalar(f"{group}/{key}", value, row["step"])
        self.writer.flush()

    def message(self, text: str) -> None:
        if self.enabled:
            self.bar.write(text, file=sys.stderr)

    def close(self) -> None:
        self.bar.close()
        if self.writer is not None:
            self.writer.close()


def _fmt(value: Any) -> Any:
    return f"{value:.6g}" if isinstance(value, float) else value


def _truncate_csv(path: Path, columns: list[str], keep_until: int) -> None:
    """Keep the header and rows with step <= keep_until (a fresh file when keep_until is 0)."""
    rows = []
    if keep_until > 0 and path.is_file():
        with path.open(newline="") as f:
            rows = [r for r in csv.DictReader(f) if int(r["step"]) <= keep_until]
    with atomic_file(path) as f:
        writer = csv.DictWriter(f, columns, restval="", extrasaction="ignore")
        writer.writeheader()
        writer.writerows(rows)


def device_description(info: DistInfo) -> dict[str, Any]:
    desc = {
        "type": info.device.type,
        "world_size": info.world_size,
        "host": socket.gethostname(),
        "torch_threads": torch.get_num_threads(),
    }
    if info.device.type == "cuda":
        desc["name"] = torch.cuda.get_device_name(info.device)
    else:
        desc["name"] = platform.processor() or platform.machine()
    return desc


def folder_fingerprint(folder: Path) -> str | None:
    """sha256 over the relative paths and sizes of the files under ``folder`` (cheap, not content)."""
    if not folder.is_dir():
        return None
    digest = hashlib.sha256()
    for path in sorted(p for p in folder.rglob("*") if p.is_file()):
        digest.update(f"{path.relative_to(folder)}\t{path.stat().st_size}\n".encode())
    return digest.hexdigest()


def provenance(
    experiment: str, config: dict[str, Any], info: DistInfo, data_root: Path, cache_dir: Path
) -> dict[str, Any]:
    """Everything needed to say where a trained model came from."""
    return {
        "experiment": experiment,
        "train_config": config,
        "git": git_commit(),
        "packages": package_versions(),
        "python": platform.python_version(),
        "device": device_description(info),
        "command": sys.argv,
        "data": {
            "data_root": str(data_root),
            "cache_dir": str(cache_dir),
            "cache_fingerprint": folder_fingerprint(cache_dir),
        },
    }
