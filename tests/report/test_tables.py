"""Paper tables: aggregation, seeds, paper values and differences, renderers."""

from __future__ import annotations

import json
import math

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from sfc.errors import UserError
from sfc.experiments import PAPER_TABLES
from sfc.report import tables
from sfc.report.paper_values import PAPER_VALUES, paper_value

STEMS = ("bass", "drums", "vocals", "other")


def _scores(exp: str, offset: float) -> pd.DataFrame:
    """Three tracks whose cSDR median (1, 2, 10 -> 2) differs from their mean (4.33)."""
    rows = []
    for i, track in enumerate(("a", "b", "c")):
        for j, stem in enumerate(STEMS):
            value = (1.0, 2.0, 10.0)[i] + j + offset
            rows += [(exp, track, stem, "csdr", value), (exp, track, stem, "usdr", value)]
        rows.append((exp, track, "avg", "csdr", 999.0))  # must be ignored (avg is recomputed)
    return pd.DataFrame(rows, columns=list(tables.SCORE_COLUMNS))


def _describe(exp: str, total: int, gflops: float) -> dict:
    return {"experiment": exp, "params": {"total": total}, "gmacs_per_second": gflops}


def test_aggregation_median_mean_and_avg():
    values = tables.model_values(_scores("mss-sfc_ca-small-k64", 0.0)).set_index(
        ["column", "target"]
    )
    # cSDR: median over tracks; uSDR: mean over tracks (spec §9)
    assert values.loc[("csdr", "bass"), "value"] == pytest.approx(2.0)
    assert values.loc[("usdr", "bass"), "value"] == pytest.approx(13.0 / 3.0)
    # avg = mean of the stem aggregates (2, 3, 4, 5), not the 999 rows of the input
    assert values.loc[("csdr", "avg"), "value"] == pytest.approx(3.5)


def test_seeds_give_mean_and_spread_and_paper_difference():
    scores = pd.concat(
        [_scores("mss-sfc_ca-small-k64", 0.0), _scores("mss-sfc_ca-small-k64-s1", 1.0)]
    )
    describe = {
        "mss-sfc_ca-small-k64": _describe("mss-sfc_ca-small-k64", 5_820_000, 41.0),
        "mss-sfc_ca-small-k64-s1": _describe("mss-sfc_ca-small-k64-s1", 5_820_000, 41.0),
    }
    frame = tables.build_table(
        "main_mss", ["mss-sfc_ca-small-k64", "mss-sfc_ca-small-k64-s1"], scores, describe
    )
    assert set(frame["experiment"]) == {"mss-sfc_ca-small-k64"}  # seeds folded into one row
    cell = frame[(frame["column"] == "csdr") & (frame["target"] == "avg")].iloc[0]
    assert cell["n_seeds"] == 2
    assert cell["ours"] == pytest.approx(4.0)  # mean of 3.5 and 4.5
    assert cell["spread"] == pytest.approx(math.sqrt(0.5))  # sample std of (3.5, 4.5)
    assert cell["row"] == "A3" and cell["paper"] == pytest.approx(9.27)
    assert cell["diff"] == pytest.approx(4.0 - 9.27)
    stem = frame[(frame["column"] == "csdr") & (frame["target"] == "vocals")].iloc[0]
    assert math.isnan(stem["paper"]) and math.isnan(stem["diff"])  # "?" in the paper -> empty
    params = frame[frame["column"] == "params"].iloc[0]
    assert params["ours"] == pytest.approx(5.82) and params["paper"] == pytest.approx(5.8)
    assert "flops" not in set(frame["column"])  # FLOPs belong to the cost table


def test_compare_with_maps_a_demo_model_to_a_paper_row():
    exp = "mss-band_split-tiny-k32"
    frame = tables.build_table(
        "main_mss",
        [exp],
        _scores(exp, 0.0),
        {exp: _describe(exp, 1_000_000, 1.0)},
        {exp: "mss-band_split-small-k64"},
    )
    cell = frame[(frame["column"] == "usdr") & (frame["target"] == "avg")].iloc[0]
    assert cell["row"] == "A1" and cell["paper"] == pytest.approx(8.26)


def test_cost_table_reads_describe_only():
    exp = "mss-band_split-small-k64"
    frame = tables.build_table(
        "cost", [exp], pd.DataFrame(), {exp: _describe(exp, 34_650_000, 36.0)}
    )
    flops = frame[frame["column"] == "flops"].iloc[0]
    assert flops["row"] == "J1" and flops["diff"] == pytest.approx(36.0 - 36.49)
    assert list(frame["column"]) == ["params", "flops"]


def test_missing_scores_name_the_experiment():
    with pytest.raises(UserError, match="mss-sfc_ca-small-k48"):
        tables.build_table(
            "num_bands", ["mss-sfc_ca-small-k48"], _scores("mss-sfc_ca-small-k64", 0), {}
        )


def test_load_scores_checks_columns(tmp_path):
    path = tmp_path / "bad.csv"
    path.write_text("experiment,track,value\nx,y,1\n")
    with pytest.raises(UserError, match="metric"):
        tables.load_scores([path])


def test_load_describe_falls_back_to_file_stem(tmp_path):
    path = tmp_path / "mss-sfc_ca-tiny-k16.json"
    path.write_text(json.dumps({"params": {"total": 10}}))
    assert list(tables.load_describe([path])) == ["mss-sfc_ca-tiny-k16"]


def test_renderers_hold_the_numbers():
    exp = "mss-sfc_ca-small-k64"
    frame = tables.build_table(
        "main_mss", [exp], _scores(exp, 0.0), {exp: _describe(exp, 5_820_000, 41)}
    )
    md = tables.to_markdown(frame, tables.title_of("main_mss"))
    assert "| A3 | mss-sfc_ca-small-k64 | 1 | 5.82 / 5.80 / +0.02 | cSDR |" in md
    assert "3.50 / 9.27 / -5.77" in md  # avg cSDR: ours / paper / difference
    tex = tables.to_latex(frame, "t")
    assert (
        "mss-sfc\\_ca-small-k64" in tex
        and "\\begin{tabular}" in tex
        and "3.50 / 9.27 / -5.77" in tex
    )


def test_paper_values_cover_only_paper_experiments():
    for table, rows in PAPER_VALUES.items():
        assert set(rows) == set(PAPER_TABLES[table]), table
    assert paper_value("main_cass", "cass-sfc_ca-medium-k64", "si_sdr", "avg") == pytest.approx(
        11.83
    )
    assert paper_value("cost", "mss-sfc_mamba-medium-k64", "flops", "total") is None  # "?" in J5


# ----------------------------------------------------------------------- significance vs band-split

BS, CA, CA_SEED1 = "mss-band_split-small-k64", "mss-sfc_ca-small-k64", "mss-sfc_ca-small-k64-s1"
TRACKS = [f"t{i}" for i in range(8)]
# per-track SFC-CA minus band-split differences (mean over the two SFC-CA seeds), one row per stem
DIFFS = {
    "vocals": np.array([1.1, 0.9, 1.2, 0.8, 1.0, 1.05, 0.95, 1.0]),  # clearly better: p ~ 1e-8
    "bass": np.array([1.0, -1.0] * 4),  # mean 0: t = 0, p = 1 exactly
    "drums": np.array([0.6, -0.4, 0.9, -0.2, 0.7, 0.1, -0.5, 0.4]),  # noisy: p ~ 0.2
    "other": np.array([-0.5, -0.6, -0.4, -0.55, -0.45, -0.5, -0.6, -0.4]),  # clearly worse
}


def _paired_scores() -> tuple[pd.DataFrame, dict[str, np.ndarray]]:
    """Band-split and two SFC-CA seeds whose per-track seed mean is band-split + DIFFS."""
    rng = np.random.default_rng(0)
    rows, bs = [], {}
    for stem, diff in DIFFS.items():
        bs[stem] = rng.normal(5.0, 2.0, len(TRACKS))
        jitter = rng.normal(0.0, 0.3, len(TRACKS))  # seeds differ; their mean does not
        for exp, values in (
            (BS, bs[stem]),
            (CA, bs[stem] + diff + jitter),
            (CA_SEED1, bs[stem] + diff - jitter),
        ):
            for track, value in zip(TRACKS, values):
                rows += [(exp, track, stem, m, value) for m in ("csdr", "usdr")]
    rows += [(CA, t, "avg", "csdr", 999.0) for t in TRACKS]  # ignored by the test as by the cells
    return pd.DataFrame(rows, columns=list(tables.SCORE_COLUMNS)), bs


def test_band_split_counterpart():
    assert tables.band_split_counterpart("mss-sfc_ca-small-k64-nobias") == BS
    assert tables.band_split_counterpart("mss-sfc_mamba-medium-k48") == "mss-band_split-medium-k48"
    assert (
        tables.band_split_counterpart("cass-sfc_ca-small-k64-gru")
        == "cass-band_split-small-k64-gru"
    )
    assert tables.band_split_counterpart(BS) is None


def test_cells_are_tested_against_their_band_split_counterpart():
    scores, bs = _paired_scores()
    other_k = "mss-sfc_ca-small-k32"  # no band-split K = 32 in this table: not tested
    scores = pd.concat([scores, scores[scores["experiment"] == CA].assign(experiment=other_k)])
    experiments = [BS, CA, CA_SEED1, other_k]
    describe = {e: _describe(e, 5_000_000, 40.0) for e in experiments}
    frame = tables.build_table("main_mss", experiments, scores, describe)
    cells = frame.set_index(["experiment", "column", "target"])
    expected = {stem: stats.ttest_rel(bs[stem] + d, bs[stem]).pvalue for stem, d in DIFFS.items()}
    avg_bs = np.mean([bs[s] for s in DIFFS], axis=0)  # avg: per-track mean over the stems
    avg_ca = np.mean([bs[s] + DIFFS[s] for s in DIFFS], axis=0)
    expected["avg"] = stats.ttest_rel(avg_ca, avg_bs).pvalue
    assert expected["bass"] == pytest.approx(1.0) and expected["vocals"] < 1e-6
    assert 0.05 < expected["drums"] < 0.5 and expected["other"] < 1e-6
    for column in ("csdr", "usdr"):
        for target, p in expected.items():
            cell = cells.loc[(CA, column, target)]
            assert cell["baseline"] == BS
            assert cell["p_value"] == pytest.approx(p, rel=1e-9, abs=1e-15), (column, target)
            assert cell["significant"] == (p < 0.05)
        for exp in (BS, other_k):  # the baseline itself, and a model without a counterpart
            assert cells.loc[(exp, column, "vocals"), "baseline"] == ""
            assert math.isnan(cells.loc[(exp, column, "vocals"), "p_value"])
            assert cells.loc[(exp, column, "vocals"), "significant"] is None
    assert math.isnan(cells.loc[(CA, "params", "total"), "p_value"])  # cost cells: no test
    md = tables.to_markdown(frame, "t")
    ca_line = next(line for line in md.splitlines() if f"| {CA} |" in line and "cSDR" in line)
    cols = [c.strip() for c in ca_line.strip("|").split("|")]
    header = [c.strip() for c in md.splitlines()[4].strip("|").split("|")]
    by_target = dict(zip(header, cols))
    assert {t for t in DIFFS if "†" in by_target[t]} == {"vocals", "other"}
    assert ("†" in by_target["avg"]) == (expected["avg"] < 0.05)
    assert "†" not in md.split(f"| {other_k} |")[1]
    assert "p < 0.05" in md and "$^\\dagger$" in tables.to_latex(frame, "t")


def test_significance_needs_two_paired_tracks():
    scores, _ = _paired_scores()
    scores = scores[scores["track"].isin(["t0"]) | (scores["experiment"] != BS)]
    frame = tables.build_table("main_mss", [BS, CA], scores, {})
    cell = frame[(frame["experiment"] == CA) & (frame["target"] == "vocals")].iloc[0]
    assert cell["baseline"] == BS and math.isnan(cell["p_value"]) and cell["significant"] is None
