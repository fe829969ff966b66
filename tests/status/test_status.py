"""`sfc status`: every cell of a config with its state, progress, GPU-hours and what is left."""

from __future__ import annotations

import json

from sfc.cli import main
from sfc.status import config_cells, find_config

BENCH = "s\th:m:s\tmax_rss\tmax_vms\tmax_uss\tmax_pss\tio_in\tio_out\tmean_load\tcpu_time\n{s}\t0\t1\t1\t1\t1\t0\t0\t1\t1\n"


def _write(path, text):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)


def _demo_results(tmp_path):
    res = tmp_path / "results" / "demo"
    done, training, failed = "mss-band_split-tiny-k32", "mss-sfc_ca-tiny-k32", "mss-sfc_ca-tiny-k16"
    _write(res / "scores" / f"{done}.csv", "experiment,track,target,metric,value\n")
    _write(res / "models" / f"{done}.pt", "x")
    _write(res / "benchmarks" / "train" / f"{done}.tsv", BENCH.format(s=7200.0))
    _write(res / "benchmarks" / "evaluate" / f"{done}.tsv", BENCH.format(s=1800.0))
    work = res / "work" / training / "demo-abcdef12"
    rows = "".join(f"{s},0,{-s / 100:.2f},0.001,1.0,2.0\n" for s in (100, 200, 300))
    _write(work / "log.csv", "step,epoch,loss,lr,grad_norm,steps_per_s\n" + rows)
    _write(work / "provenance.json", json.dumps({"train_config": {"total_steps": 7500}}))
    _write(res / "logs" / "train" / f"{failed}.log", "step 10\nRuntimeError: CUDA out of memory\n")
    _write(res / "describe" / "mss-sfc_mamba-tiny-k32.json", "{}")
    return res


def test_status_shows_every_cell_of_the_demo(tmp_path, capsys, monkeypatch):
    res = _demo_results(tmp_path)
    monkeypatch.chdir(tmp_path)  # the config is found by name in the checkout
    assert main(["status", str(res), "--json"]) == 0
    cells = {c["experiment"]: c for c in json.loads(capsys.readouterr().out)}
    config = find_config(res, None)
    assert list(cells) == list(config_cells(config, config["_path"]))  # every cell, in order
    assert len(cells) == 7
    done = cells["mss-band_split-tiny-k32"]
    assert done["state"] == "done" and done["gpu_hours"] == 2.5
    train = cells["mss-sfc_ca-tiny-k32"]
    assert train["state"] == "training"
    assert "step 300/7500" in train["detail"] and "loss -3" in train["detail"]
    # ETA: 7200 steps left at 2 steps/s = 1 h, plus the measured evaluation (0.5 h)
    assert abs(train["left_hours"] - 1.5) < 1e-9
    failed = cells["mss-sfc_ca-tiny-k16"]
    assert failed["state"] == "failed" and "out of memory" in failed["detail"]
    assert failed["left_hours"] == 2.5  # the measured train + evaluate hours
    # SFC-Mamba is trained in the demo's main_mss: a describe record alone does not make it done
    assert cells["mss-sfc_mamba-tiny-k32"]["state"] == "not started"
    assert cells["mss-sfc_ca-tiny-k32-nobias"]["state"] == "not started"
    assert main(["status", str(res)]) == 0
    out = capsys.readouterr().out
    assert "GPU-hours spent 2.50" in out and "7 cell(s)" in out


def test_status_of_an_unknown_results_folder_is_a_clear_error(tmp_path, capsys):
    (tmp_path / "nonesuch").mkdir()
    assert main(["status", str(tmp_path / "nonesuch")]) == 2
    assert "no workflow config with name 'nonesuch'" in capsys.readouterr().err
