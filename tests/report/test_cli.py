"""`sfc report table` end to end through the package CLI, with provenance."""

from __future__ import annotations

import json

import pandas as pd

from sfc.cli import main


def test_report_table_cli(tmp_path):
    exp = "mss-sfc_ca-tiny-k16"
    scores = tmp_path / f"{exp}.csv"
    pd.DataFrame(
        [
            (exp, "t1", stem, metric, 1.5)
            for stem in ("bass", "drums", "vocals", "other")
            for metric in ("usdr", "csdr")
        ],
        columns=["experiment", "track", "target", "metric", "value"],
    ).to_csv(scores, index=False)
    describe = tmp_path / f"{exp}.json"
    describe.write_text(
        json.dumps({"experiment": exp, "params": {"total": 157776}, "gmacs_per_second": 1.3})
    )
    out = {ext: tmp_path / "out" / f"main_mss.{ext}" for ext in ("md", "csv", "tex")}
    prov = tmp_path / "out" / "main_mss.provenance.json"
    argv = ["report", "table", "--table", "main_mss", "--experiments", exp, "--scores", str(scores)]
    argv += ["--describe", str(describe), "--compare-with", f"{exp}=mss-sfc_ca-small-k64"]
    argv += ["--md", str(out["md"]), "--csv", str(out["csv"]), "--tex", str(out["tex"])]
    argv += ["--provenance", str(prov), "--config-json", json.dumps({"name": "t"})]
    assert main(argv) == 0
    table = pd.read_csv(out["csv"])
    avg = table[(table["column"] == "usdr") & (table["target"] == "avg")].iloc[0]
    assert avg["ours"] == 1.5 and avg["paper"] == 8.95 and abs(avg["diff"] - (1.5 - 8.95)) < 1e-9
    assert "1.50 / 8.95 / -7.45" in out["md"].read_text()
    assert "mss-sfc\\_ca-tiny-k16" in out["tex"].read_text()
    record = json.loads(prov.read_text())
    assert record["config"] == {"name": "t"}
    assert record["packages"]["torch"] and str(scores) in record["inputs"]
    assert "commit" in record["git"]


def test_report_bad_compare_with(tmp_path, capsys):
    argv = [
        "report",
        "table",
        "--table",
        "x",
        "--experiments",
        "mss-sfc_ca-tiny-k16",
        "--compare-with",
        "oops",
    ]
    argv += [
        "--md",
        str(tmp_path / "a"),
        "--csv",
        str(tmp_path / "b"),
        "--tex",
        str(tmp_path / "c"),
    ]
    assert main(argv) == 2
    assert "ID=PAPER_ID" in capsys.readouterr().err
