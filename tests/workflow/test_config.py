"""The workflow's configs: experiment table = the paper's grid, dry runs, validation, lint, format."""

from __future__ import annotations

import csv
import resource
import shutil
import subprocess
import time

import pytest
import yaml

from sfc.experiments import PAPER_TABLES, paper_experiment_ids

from .conftest import CONFIG_DIR, REPO, job_counts, snakemake

PAPER = str(CONFIG_DIR / "paper.yaml")


def test_experiments_table_equals_paper_tables():
    with open(CONFIG_DIR / "experiments.tsv", newline="") as handle:
        rows = list(csv.DictReader(handle, delimiter="\t"))
    tables: dict[str, list[str]] = {}
    for row in rows:
        tables.setdefault(row["table"], []).append(row["experiment"])
        assert row["compare_with"] == ""  # paper models are compared with themselves
    assert tables == PAPER_TABLES


def test_paper_dry_run_lists_every_job_fast():
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    proc = snakemake("-n", "--configfile", PAPER)
    wall = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    assert proc.returncode == 0, proc.stderr[-3000:]
    counts = job_counts(proc.stdout + proc.stderr)
    print(
        f"\npaper dry run: {sum(counts.values()) - counts.get('total', 0)} jobs, wall {wall:.1f} s, cpu {cpu:.1f} s"
    )
    print(counts)
    num_models = len(paper_experiment_ids())
    assert counts["train"] == counts["evaluate"] == counts["describe"] == num_models == 37
    assert counts["make_table"] == len(PAPER_TABLES)
    assert counts["download"] == 2 and counts["cache"] == 2
    # ASSUMPTION: the 2-core test machine is shared; CPU time is the load-independent measure of the
    # "< 10 s" acceptance, wall time is printed (about 5 s on an idle machine). Wall time is asserted
    # only without slurm-client: with it installed but no controller reachable, the SLURM executor
    # plugin waits ~9 s for `scontrol show config` each time Snakemake starts (its 10-s timeout).
    assert cpu < 10.0
    if shutil.which("scontrol") is None:
        assert wall < 10.0


@pytest.mark.parametrize(
    "options, expected",
    [
        (["--profile", str(REPO / "workflow/profiles/local")],
         "(1 GPU resource(s), one process each): global batch 32 = 1 process(es) x micro-batch 4 x 8 accumulation step(s)"),
        (["--set-resources", "train:gpu=2"],
         "(2 GPU resource(s), one process each): global batch 32 = 2 process(es) x micro-batch 4 x 4 accumulation step(s)"),
        (["--profile", str(REPO / "workflow/profiles/slurm")],
         "(8 GPU resource(s), one process each): global batch 32 = 8 process(es) x micro-batch 4 x 1 accumulation step(s)"),
    ],
)  # fmt: skip
def test_dry_run_shows_the_effective_global_batch_per_training_job(options, expected):
    target = "results/paper/models/mss-sfc_ca-small-k64.pt"
    proc = snakemake(target, "-n", "--configfile", PAPER, *options)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert f"train mss-sfc_ca-small-k64 {expected}" in proc.stdout + proc.stderr


def test_gpu_count_that_does_not_divide_the_global_batch_stops_the_dry_run():
    target = "results/paper/models/mss-sfc_ca-small-k64.pt"
    proc = snakemake(target, "-n", "--configfile", PAPER, "--set-resources", "train:gpu=3")
    assert proc.returncode != 0
    assert "global batch_size 32 cannot be split over 3 processes" in proc.stdout + proc.stderr


def test_one_cell_target():
    target = "results/paper/scores/mss-sfc_ca-small-k64.csv"
    proc = snakemake(
        target, "-n", "--configfile", PAPER
    )  # the target first: --configfile takes several
    assert proc.returncode == 0, proc.stderr[-3000:]
    counts = job_counts(proc.stdout + proc.stderr)
    assert counts == {"download": 1, "cache": 1, "train": 1, "evaluate": 1, "total": 4}


def _bad_config(tmp_path, **changes):
    config = yaml.safe_load((CONFIG_DIR / "ci.yaml").read_text())
    for dotted, value in changes.items():
        *parents, key = dotted.split(".")
        node = config
        for part in parents:
            node = node[part]
        node[key] = value
    path = tmp_path / "bad.yaml"
    path.write_text(yaml.safe_dump(config))
    return path


@pytest.mark.parametrize(
    "changes, message",
    [
        ({"data.colour": "red"}, "colour"),  # unknown key
        ({"data.seed": "zero"}, "seed"),  # wrong type
        (
            {"figures.attention": ["mss-sfc_cb-tiny-k16"]},
            "mss-sfc_cb-tiny-k16",
        ),  # unknown experiment id
    ],
)
def test_bad_config_fails_before_any_job(tmp_path, changes, message):
    proc = snakemake(
        "--cores", "1", "--configfile", str(_bad_config(tmp_path, **changes)), cwd=tmp_path
    )
    assert proc.returncode != 0
    assert message in proc.stdout + proc.stderr
    assert not (tmp_path / "results").exists()  # no job ran


@pytest.mark.parametrize(
    "value, message",
    [
        ({"learning_rate": 0.1}, "'learning_rate'"),  # unknown key
        ({"total_steps": "many"}, "total_steps must be int"),  # wrong type
        ({"lr": -1}, "lr"),  # out of range
    ],
)
def test_bad_train_set_fails_the_dry_run(tmp_path, value, message):
    """`train.set` goes through the code `sfc train --set` uses when the DAG is built, not in the jobs."""
    config = _bad_config(tmp_path, **{"train.set": value})
    proc = snakemake("-n", "--configfile", str(config), cwd=tmp_path)
    output = proc.stdout + proc.stderr
    assert proc.returncode != 0 and "train.set" in output and message in output, output[-3000:]
    assert not (tmp_path / "results").exists()


def test_unknown_experiment_in_table_is_named(tmp_path):
    table = tmp_path / "exp.tsv"
    table.write_text(
        "table\texperiment\tcompare_with\nmain_mss\tmss-sfc_ca-tiny-k16\t\nmain_mss\tmss-bs-tiny-k16\t\n"
    )
    proc = snakemake(
        "-n", "--configfile", str(_bad_config(tmp_path, experiments=str(table))), cwd=tmp_path
    )
    assert proc.returncode != 0
    output = proc.stdout + proc.stderr
    assert f"{table}:3" in output and "mss-bs-tiny-k16" in output


def test_lint_is_clean():
    proc = snakemake("--lint")
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    assert "Congratulations" in proc.stdout + proc.stderr


def test_snakefmt_check():
    exe = shutil.which("snakefmt")
    if exe is None:
        pytest.skip("snakefmt is not installed")
    proc = subprocess.run(
        [exe, "--check", "Snakefile", "workflow"], cwd=REPO, capture_output=True, text=True
    )
    assert proc.returncode == 0, proc.stderr


def test_released_dry_run_plans_download_import_evaluate_tables():
    proc = snakemake("-n", "--configfile", str(CONFIG_DIR / "released.yaml"))
    assert proc.returncode == 0, proc.stderr[-3000:]
    counts = job_counts(proc.stdout + proc.stderr)
    released = yaml.safe_load((CONFIG_DIR / "released.yaml").read_text())["released"]["models"]
    assert counts["download_released"] == counts["import_released"] == len(released) == 6
    assert counts["evaluate"] == 6 and counts["make_table"] == 2
    assert "train" not in counts  # released models are imported, never trained
