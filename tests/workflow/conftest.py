"""Helpers for the workflow tests: run Snakemake on this checkout's Snakefile."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
SNAKEFILE = REPO / "Snakefile"
CONFIG_DIR = REPO / "workflow" / "config"


def snakemake(*args: str, cwd: Path = REPO, timeout: float = 600) -> subprocess.CompletedProcess:
    """Run ``snakemake -s Snakefile ARGS`` and return the finished process (text output)."""
    exe = shutil.which("snakemake")
    if exe is None:
        pytest.skip("snakemake is not installed")
    cmd = [exe, "-s", str(SNAKEFILE), *args]
    if cwd != REPO:
        cmd += ["--directory", str(cwd)]
    return subprocess.run(cmd, cwd=cwd, capture_output=True, text=True, timeout=timeout)


def job_counts(output: str) -> dict[str, int]:
    """The "Job stats" table of a Snakemake run: rule -> number of jobs."""
    counts: dict[str, int] = {}
    lines = output.splitlines()
    start = next(i for i, line in enumerate(lines) if line.strip() == "Job stats:")
    for line in lines[start + 3 :]:
        parts = line.split()
        if len(parts) != 2 or not parts[1].isdigit():
            break
        counts[parts[0]] = int(parts[1])
    return counts
