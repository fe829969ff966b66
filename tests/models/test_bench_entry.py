"""``python -m sfc.bench``: the table's Mamba section runs and its figures are consistent."""

from __future__ import annotations

import json

import pytest

from sfc.bench.__main__ import main

pytestmark = pytest.mark.usefixtures("one_thread")


def test_bench_mamba_section_prints_rows_and_writes_json(tmp_path, capsys):
    out = tmp_path / "bench.json"
    assert main(["--only", "mamba", "--repeats", "1", "--json", str(out)]) == 0
    text = capsys.readouterr().out
    assert "scan stored autograd (before)" in text and "scan recomputing backward" in text
    rows = json.loads(out.read_text())["rows"]
    before, after = rows
    assert before["ratio"] == 1.0 and before["seconds"] > 0 and after["seconds"] > 0
    # what autograd keeps for the backward: the recomputing scan keeps far less than every state
    assert after["memory_gib"] < 0.3 * before["memory_gib"]


def test_bench_rejects_bad_repeats():
    with pytest.raises(SystemExit):
        main(["--only", "mamba", "--repeats", "0"])
