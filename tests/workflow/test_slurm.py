"""Part of the CI DAG through the SLURM executor, on a one-node Slurm started on 127.0.0.1.

Needs Debian's slurmctld, slurmd, slurm-client and munge (root); skipped, saying so, without them.
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
MISSING = [
    t for t in ("slurmctld", "slurmd", "sbatch", "squeue", "munged") if shutil.which(t) is None
]


@pytest.fixture(scope="module")
def slurm_cluster():
    if MISSING:
        pytest.skip(
            f"slurm is not installed (missing {MISSING}): "
            "apt-get install -y --no-install-recommends slurmctld slurmd slurm-client munge"
        )
    if os.geteuid() != 0:
        pytest.skip("starting slurmctld/slurmd/munged needs root")
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
