"""The demo DAG end to end on CI settings (workflow/config/ci.yaml), then kill-and-resume of a training job.

Runs in a temporary working directory (``snakemake --directory``), so the checkout stays clean.
"""

from __future__ import annotations

import json
import math
import os
import re
import signal
import subprocess
import time

import pandas as pd
import pytest
import yaml

from .conftest import CONFIG_DIR, SNAKEFILE, snakemake

pytestmark = pytest.mark.slow
CI = yaml.safe_load((CONFIG_DIR / "ci.yaml").read_text())
CA_MODEL = "mss-sfc_ca-tiny-k16"


@pytest.fixture(scope="module")
def ci_run(tmp_path_factory):
    workdir = tmp_path_factory.mktemp("ci_run")
    start = time.perf_counter()
    proc = snakemake(
        "--cores", "2", "--configfile", str(CONFIG_DIR / "ci.yaml"), cwd=workdir, timeout=1200
    )
    print(f"\nCI DAG: {time.perf_counter() - start:.0f} s wall")
    assert proc.returncode == 0, (proc.stdout + proc.stderr)[-5000:]
    return workdir / "results" / "ci"


def test_tables_hold_numbers(ci_run):
    for table in ("main_mss", "num_bands", "cost"):
        for ext in ("md", "csv", "tex", "provenance.json"):
            assert (ci_run / "tables" / f"{table}.{ext}").is_file(), f"{table}.{ext}"
    main = pd.read_csv(ci_run / "tables" / "main_mss.csv")
    avg = main[(main["column"] == "csdr") & (main["target"] == "avg")]
    assert list(avg["experiment"]) == [CA_MODEL]
    assert avg["paper"].tolist() == [9.27]  # compared with the small SFC-CA of the paper (A3)
    assert all(math.isfinite(v) for v in avg["ours"])
    assert re.search(r"\| cSDR \| -?\d+\.\d\d", (ci_run / "tables" / "main_mss.md").read_text())
    cost = pd.read_csv(ci_run / "tables" / "cost.csv")
    assert (cost.loc[cost["column"] == "params", "ours"] > 0).all()
    record = json.loads((ci_run / "tables" / "main_mss.provenance.json").read_text())
    assert (
        record["config"]["name"] == "ci" and record["git"]["commit"] and record["packages"]["torch"]
    )


def test_figures_exist(ci_run):
    names = [f"position_bias-{CA_MODEL}", f"attention-{CA_MODEL}", "num_bands", "params"]
    for name in names:
        png = ci_run / "figures" / f"{name}.png"
        assert png.read_bytes()[:4] == b"\x89PNG" and png.stat().st_size > 5000, name
        assert (ci_run / "figures" / f"{name}.provenance.json").is_file()


def test_heavy_rules_have_logs_and_benchmarks(ci_run):
    for rule in ("generate", "cache", "train", "evaluate"):
        assert list((ci_run / "benchmarks" / rule).glob("*.tsv")), rule
        assert list((ci_run / "logs" / rule).glob("*.log")), rule


def test_interrupted_training_resumes(ci_run, tmp_path):
    """Kill a training job after its first checkpoint; the rerun continues from that step."""
    workdir = ci_run.parent.parent
    config = dict(
        CI,
        train={
            "set": dict(CI["train"]["set"], total_steps=3, steps_per_epoch=3, checkpoint_every=1)
        },
    )
    config_path = tmp_path / "resume.yaml"
    config_path.write_text(yaml.safe_dump(config))
    exp = CA_MODEL
    target = f"results/ci/models/{exp}.pt"
    args = [
        "snakemake",
        "-s",
        str(SNAKEFILE),
        target,
        "--cores",
        "2",
        "--configfile",
        str(config_path),
    ]
    launched = time.time()
    proc = subprocess.Popen(args, cwd=workdir, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            start_new_session=True)  # fmt: skip
    try:
        deadline = time.time() + 300
        while time.time() < deadline:
            fresh = [
                p
                for p in (ci_run / "work" / exp).glob("*/checkpoints/last.pt")
                if p.stat().st_mtime > launched
            ]
            if fresh or proc.poll() is not None:
                break
            time.sleep(0.5)
        assert fresh, "no checkpoint was written"
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)  # a hard crash: Snakemake and its job die at once
        proc.wait()
    assert not (workdir / target).exists()
    snakemake("--unlock", "--configfile", str(config_path), cwd=workdir)
    rerun = snakemake(target, "--cores", "2", "--configfile", str(config_path), cwd=workdir)
    assert rerun.returncode == 0, (rerun.stdout + rerun.stderr)[-4000:]
    log = (ci_run / "logs" / "train" / f"{exp}.log").read_text()
    start_step = int(re.search(rf"sfc train {exp}: step (\d+)/3", log).group(1))
    assert start_step >= 1, log[-2000:]  # resumed, not started over
    assert (workdir / target).is_file()


def _chromium() -> str:
    """Debian's headless Chromium, installed with apt-get on first use (root), else the test skips."""
    import shutil

    for name in ("chromium", "chromium-browser"):
        if shutil.which(name):
            return shutil.which(name)
    if (
        os.environ.get("SFC_NO_CHROMIUM_INSTALL") != "1"
        and shutil.which("apt-get")
        and os.geteuid() == 0
    ):
        env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
        cmd = ["apt-get", "install", "-y", "-qq", "--no-install-recommends", "chromium"]
        if subprocess.run(cmd, env=env, capture_output=True, timeout=900).returncode != 0:
            subprocess.run(["apt-get", "update", "-qq"], env=env, capture_output=True, timeout=600)
            subprocess.run(cmd, env=env, capture_output=True, timeout=900)
    if shutil.which("chromium") is None:
        pytest.skip("headless Chromium is not installed: apt-get install chromium (needs root)")
    return shutil.which("chromium")


@pytest.fixture(scope="module")
def ci_report(ci_run):
    workdir = ci_run.parent.parent
    report = workdir / "report.html"
    proc = snakemake(
        "--report", str(report), "--configfile", str(CONFIG_DIR / "ci.yaml"), cwd=workdir
    )
    assert proc.returncode == 0, (proc.stdout + proc.stderr)[-4000:]
    return report


def test_html_report_holds_every_table_and_figure(ci_report, ci_run):
    html = ci_report.read_text()
    tables = sorted(p.name for p in (ci_run / "tables").glob("*.csv"))
    figures = sorted(p.name for p in (ci_run / "figures").glob("*.png"))
    assert tables and figures
    for name in [*tables, *figures, "cost_summary.csv"]:
        assert name in html, name
    for table in tables:  # every table's provenance record
        assert table.replace(".csv", ".provenance.json") in html
    summary = pd.read_csv(ci_run / "cost_summary.csv")
    assert set(summary["experiment"]) == set(
        pd.read_csv(CONFIG_DIR / "ci.tsv", sep="\t")["experiment"]
    )
    trained = summary[summary["train_hours"].notna()]
    assert len(trained) and (trained["gpu_hours"] >= trained["train_hours"]).all()


def test_html_report_renders_in_headless_chromium(ci_report, tmp_path):
    from matplotlib.image import imread

    chromium = _chromium()
    base = [chromium, "--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars",
            "--window-size=1280,900", "--virtual-time-budget=20000"]  # fmt: skip
    shot = tmp_path / "report.png"
    proc = subprocess.run(
        [*base, "--enable-logging=stderr", "--v=0", f"--screenshot={shot}", ci_report.as_uri()],
        capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert proc.returncode == 0 and shot.is_file(), proc.stderr[-3000:]
    image = imread(shot)[..., :3]  # (H, W, 3) in [0, 1]
    assert image.std() > 0.05, "the screenshot is blank"
    assert len({tuple(c) for c in (image[::20, ::20].reshape(-1, 3) * 255).astype(int)}) > 20
    console = [ln for ln in proc.stderr.splitlines() if "CONSOLE" in ln]
    assert not [ln for ln in console if re.search(r"error|uncaught", ln, re.I)], console
    dom = subprocess.run(
        [*base, "--dump-dom", ci_report.as_uri()], capture_output=True, text=True, timeout=300
    )
    assert dom.returncode == 0 and "Tables" in dom.stdout and "Figures" in dom.stdout
    assert not re.search(r"uncaught|something went wrong", dom.stdout, re.I)


def test_baselines_table_holds_every_family(ci_run):
    frame = pd.read_csv(ci_run / "tables" / "baselines.csv")
    assert list(dict.fromkeys(frame["experiment"])) == [
        "mss-lightsaft-tiny",
        "mss-mstfa_unet-tiny-vocals",
        CA_MODEL,
    ]
    mdx = frame[(frame["column"] == "mdx_sdr") & (frame["target"] == "avg")].set_index("experiment")
    assert mdx["ours"].map(math.isfinite).all()
    # LightSAFT-Net's only reported score is on the hidden MDX test set: shown, never differenced
    assert mdx.loc["mss-lightsaft-tiny", "paper"] == 5.394
    assert math.isnan(mdx.loc["mss-lightsaft-tiny", "diff"])
    vocals_only = frame[frame["experiment"] == "mss-mstfa_unet-tiny-vocals"]["target"]
    assert set(vocals_only) <= {"vocals", "avg", "total"}  # a dedicated model scores its target
    assert {"params", "flops"} <= set(frame["column"])
    assert "MDX SDR" in (ci_run / "tables" / "baselines.md").read_text()
