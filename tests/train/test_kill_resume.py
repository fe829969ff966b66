"""A real ``sfc train`` process killed with SIGKILL, then stopped with SIGTERM, then resumed, ends
bit-identical to the uninterrupted in-process reference run."""

from __future__ import annotations

import csv
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from sfc.train.engine import EXIT_PREEMPTED

from .conftest import EXPERIMENT, assert_same_run, fast_config, load_ckpt, run_paths, train_args

REPO = Path(__file__).resolve().parents[2]


def _start(paths) -> subprocess.Popen:
    cmd = [
        sys.executable,
        "-m",
        "sfc.cli",
        *train_args(EXPERIMENT, paths, fast_config()),
    ]
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    return subprocess.Popen(
        cmd, cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    )


def _rows(log: Path) -> list[int]:
    if not log.is_file():
        return []
    with log.open() as f:
        return [int(r["step"]) for r in csv.DictReader(f) if r["loss"]]


def _wait_for_row(proc: subprocess.Popen, log: Path, after: int, timeout: float = 120.0) -> int:
    """Block until the CSV log holds a training row with step > ``after``; return that step."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        steps = _rows(log)
        if steps and steps[-1] > after:
            return steps[-1]
        assert proc.poll() is None, proc.communicate()[0]
        time.sleep(0.05)
    proc.kill()
    raise AssertionError("no progress")


def test_sigkill_and_sigterm_then_resume_is_bit_identical(reference, mss_data, tmp_path):
    ref_paths, _ = reference
    paths = run_paths(ref_paths.data_root, mss_data[1], tmp_path)
    log = paths.work_dir / "log.csv"

    proc = _start(paths)
    _wait_for_row(proc, log, after=0)
    proc.send_signal(signal.SIGKILL)  # no chance to clean up
    assert proc.wait(60) == -signal.SIGKILL
    last = (
        paths.ckpt_dir / "last.pt"
    )  # killed before the first checkpoint: the resume starts afresh
    killed_at = load_ckpt(last)["step"] if last.is_file() else 0
    assert killed_at < 4 and not paths.output.exists()
    assert not list(paths.ckpt_dir.glob("**/*.pt")) or last.is_file()

    proc = _start(paths)  # resumes; SIGTERM (SLURM) -> checkpoint and exit 75
    _wait_for_row(proc, log, after=max([killed_at, *_rows(log)]))  # a row of this process
    proc.send_signal(signal.SIGTERM)
    out = proc.communicate(timeout=120)[0]
    assert proc.returncode == EXIT_PREEMPTED, out
    assert "stopped by signal" in out
    stopped_at = load_ckpt(paths.ckpt_dir / "last.pt")["step"]
    assert killed_at < stopped_at <= 4 and not paths.output.exists()

    proc = _start(paths)
    out = proc.communicate(timeout=300)[0]
    assert proc.returncode == 0, out
    assert_same_run(ref_paths, paths)
