"""Part of the CI DAG through the SLURM executor, on a one-node Slurm started on 127.0.0.1.

Needs root and Debian's slurmctld, slurmd, slurm-client and munge, which it installs with apt-get on first use;
skipped, saying so, where neither is possible.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from .conftest import CONFIG_DIR, REPO, snakemake

pytestmark = pytest.mark.slow
SCRIPTS = Path(__file__).parent / "slurm"
STATE = "/tmp/sfc-slurm-test"
TOOLS = ("slurmctld", "slurmd", "sbatch", "squeue", "munged")
PACKAGES = ["slurmctld", "slurmd", "slurm-client", "munge"]


def _missing() -> list[str]:
    return [t for t in TOOLS if shutil.which(t) is None]


def _install_slurm() -> None:
    """Install Debian's Slurm on first use (root + apt-get), unless SFC_NO_SLURM_INSTALL=1.

    Not part of envs/setup.sh on purpose: with slurm-client installed and no controller running, the
    SLURM executor plugin's `scontrol show config` probe adds ~9 s to every Snakemake start.
    """
    if os.environ.get("SFC_NO_SLURM_INSTALL") == "1" or shutil.which("apt-get") is None:
        return
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    cmd = ["apt-get", "install", "-y", "-qq", "--no-install-recommends", *PACKAGES]
    if subprocess.run(cmd, env=env, capture_output=True, timeout=600).returncode != 0:
        subprocess.run(["apt-get", "update", "-qq"], env=env, capture_output=True, timeout=600)
        subprocess.run(cmd, env=env, capture_output=True, timeout=600)


@pytest.fixture(scope="module")
def slurm_cluster():
    if os.geteuid() != 0:
        pytest.skip("installing and starting slurmctld/slurmd/munged needs root")
    if _missing():
        _install_slurm()
    if _missing():
        pytest.skip(
            f"slurm is not installed (missing {_missing()}) and could not be installed: "
            f"apt-get install -y --no-install-recommends {' '.join(PACKAGES)}"
        )
    proc = subprocess.run(
        [str(SCRIPTS / "start_slurm.sh"), STATE], capture_output=True, text=True, timeout=120
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    os.environ["SLURM_CONF"] = f"{STATE}/slurm.conf"
    yield f"{STATE}/slurm.conf"
    subprocess.run([str(SCRIPTS / "stop_slurm.sh"), STATE], capture_output=True, timeout=60)
    os.environ.pop("SLURM_CONF", None)


def test_generate_and_cache_through_slurm(slurm_cluster, tmp_path):
    targets = ["results/ci/cache/mss", "results/ci/describe/mss-sfc_ca-tiny-k16.json"]
    proc = snakemake(
        *targets,
        "--configfile", str(CONFIG_DIR / "ci.yaml"),
        "--profile", str(REPO / "workflow/profiles/slurm"),
        # the test cluster: no accounting database, 2 CPUs, no GPU
        "--slurm-no-account", "--slurm-status-command", "squeue",
        "--slurm-init-seconds-before-status-checks", "1", "--seconds-between-status-checks", "2",
        "--default-resources", "mem_mb=1000", "runtime=10", "cpus_per_task=1",
        "--set-resources", "cache:mem_mb=1000",
        cwd=tmp_path,
        timeout=900,
    )  # fmt: skip
    output = proc.stdout + proc.stderr
    assert proc.returncode == 0, output[-5000:]
    # generate and cache ran as SLURM jobs (describe is a local rule)
    assert output.count("has been submitted with SLURM jobid") == 2, output[-3000:]
    for rule in ("generate", "cache"):
        assert re.search(
            rf"rule {rule}:(.|\n)*?submitted with SLURM jobid \d+ \(log: .*rule_{rule}/", output
        ), rule
    assert any((tmp_path / "results/ci/cache/mss").iterdir())
    assert (tmp_path / "results/ci/describe/mss-sfc_ca-tiny-k16.json").stat().st_size > 0
