"""``sfc data ...`` through the package's CLI dispatcher."""

from __future__ import annotations

import json

from sfc.cli import main
from sfc.data.cache import read_index


def test_generate_check_segment_cache(tmp_path, capsys):
    root, cache = tmp_path / "demo", tmp_path / "cache"
    args = ["--num-train", "1", "--num-valid", "1", "--num-test", "1", "--duration", "2.5"]
    assert (
        main(["data", "generate", "--task", "cass", "--out", str(root), "--seed", "3", *args]) == 0
    )
    assert main(["data", "check", "--root", str(root), "--task", "cass"]) == 0
    out = capsys.readouterr().out.strip().splitlines()[-1]
    assert json.loads(out) == {
        "folders": {"cv": 1, "tr": 1, "tt": 1},
        "splits": {"train": 1, "valid": 1, "test": 1},
    }
    seg = ["--segment-seconds", "1", "--hop-seconds", "0.5"]
    report = tmp_path / "seg.json"
    assert (
        main(
            ["data", "segment", "--root", str(root), "--task", "cass", *seg, "--json", str(report)]
        )
        == 0
    )
    summary = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert summary["tracks"] == 1 and all(0 < n <= 4 for n in summary["segments"].values())
    assert set(json.loads(report.read_text())["00000"]) == {"speech", "music", "sfx"}
    cmd = ["data", "cache", "--root", str(root), "--task", "cass", "--out", str(cache), *seg]
    assert main(cmd) == 0
    index = read_index(cache)
    assert index["format"] == "wav" and index["segment_samples"] == 44_100
    assert {k: len(v["segments"]) for k, v in index["stems"].items()} == summary["segments"]


def test_errors_are_one_line_and_exit_2(tmp_path, capsys):
    assert (
        main(
            [
                "data",
                "cache",
                "--root",
                str(tmp_path / "none"),
                "--task",
                "mss",
                "--out",
                str(tmp_path / "c"),
            ]
        )
        == 2
    )
    err = capsys.readouterr().err
    assert err.startswith("sfc data: error: missing split folder") and err.count("\n") == 1
    assert not (tmp_path / "c").exists()
