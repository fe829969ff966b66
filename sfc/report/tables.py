"""Paper tables from tidy score files: our value, the paper's value and their difference per cell.

Input: the CSVs written by ``sfc evaluate`` (columns experiment, track, target, metric, value; one row
per track, target and metric) and the JSON printed by ``sfc describe`` (parameters, FLOPs).

Aggregation over test tracks (PAPER: spec §9): uSDR / SNR / SpecSNR: mean; cSDR: median of the
per-track values (museval's per-track frame median is done by ``sfc evaluate``); SI-SDR: median as in
the released script, with the mean in a second column (spec §14 item 5). "avg" = mean of the per-stem
aggregates. Experiments that differ only in their ``-s<seed>`` suffix are repeats of one model: the
cell shows the mean over seeds ± their sample standard deviation.

Significance (PAPER: spec §9, "paired t-test on main results"): every score cell of a model whose
band-split counterpart (same task, size, K and separator; ``band_split_counterpart``) is in the same
table gets the two-sided paired t-test (``sfc.eval.table.paired_ttest``) of its per-track scores
against the counterpart's over the test tracks both scored; p < 0.05 marks the cell with † in the
rendered tables, and the CSV carries ``baseline``, ``p_value`` and ``significant``.
ASSUMPTION: the paper does not say how seeds and the "avg" column enter the test. A track's score is
the mean over the model's seed repeats; for "avg", the per-track mean over the stems (what
``paired_ttest`` does), whatever the cell's aggregate over tracks (mean or median).
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Literal

import numpy as np
import pandas as pd

from sfc.errors import UserError
from sfc.eval.table import paired_ttest
from sfc.experiments import DEFAULT_SEED, Experiment, parse_experiment
from sfc.report.paper_values import paper_row, paper_value

SCORE_COLUMNS = ("experiment", "track", "target", "metric", "value")
CELL_COLUMNS = (
    "table",
    "row",
    "experiment",
    "column",
    "label",
    "target",
    "ours",
    "spread",
    "n_seeds",
    "paper",
    "diff",
    "n_tracks",
)
SIGNIFICANCE_COLUMNS = ("baseline", "p_value", "significant")  # see the module docstring
TABLE_COLUMNS = (*CELL_COLUMNS, *SIGNIFICANCE_COLUMNS)
ALPHA = 0.05  # significance level of the paired t-test against the band-split counterpart
MARK = "†"


@dataclass(frozen=True)
class Column:
    """How one metric of the score files becomes a table column."""

    key: str
    metric: str
    aggregate: Literal["mean", "median"]
    label: str
    digits: int = 2


COLUMNS: tuple[Column, ...] = (
    Column("csdr", "csdr", "median", "cSDR"),
    Column("usdr", "usdr", "mean", "uSDR"),
    Column("snr", "snr", "mean", "SNR"),
    Column("si_sdr", "si_sdr", "median", "SI-SDR"),
    Column("si_sdr_mean", "si_sdr", "mean", "SI-SDR (mean)"),
    Column("spec_snr", "spec_snr", "mean", "SpecSNR"),
    Column("mdx_sdr", "mdx_sdr", "mean", "MDX SDR"),
)
COST_COLUMNS: tuple[Column, ...] = (
    Column("params", "params", "mean", "params (M)"),
    Column("flops", "flops", "mean", "GMAC/s"),
    Column("rtf", "rtf", "mean", "RTF", digits=4),
)
TITLES = {
    "main_mss": "Table A: MUSDB18-HQ test (cSDR / uSDR, dB)",
    "main_cass": "Table B: DnR v2 test (SNR / SI-SDR, dB)",
    "cost": "Table C: model cost",
    "num_bands": "Table D: number of bands K",
    "separator": "Table E: GRU dual-path separator",
    "baselines": (
        "Baselines: LightSAFT-Net (faithful) and MSTFA (reconstructed) beside SFC, our test split "
        "(paper values on other test sets are shown without a difference)"
    ),
}
# tables whose rows also show the cost (GMAC/s) beside the parameter count
COST_WITH_SCORES = ("baselines",)
# paper column order of the stems; anything else follows alphabetically, "avg" last
TARGET_ORDER = ("vocals", "bass", "drums", "other", "speech", "music", "sfx")


def base_id(experiment: str) -> str:
    """The experiment id without its seed suffix (repeats of one model share it)."""
    return replace(parse_experiment(experiment), seed=DEFAULT_SEED).id


def band_split_counterpart(base: str) -> str | None:
    """The band-split model a cell is tested against: same task, size, K and separator, no variant.

    None for band-split models themselves.
    """
    exp = parse_experiment(base)
    if exp.encoder == "band_split":
        return None
    return Experiment(exp.task, "band_split", exp.size, exp.num_bands, exp.separator).id


def significance(scores: pd.DataFrame, base: str, baseline: str, metric: str, target: str) -> float:
    """Two-sided paired t-test p-value of ``base`` against ``baseline`` over the tracks both scored.

    Args:
        scores: tidy scores with a ``base`` column (seed repeats share it) and no "avg" rows.
        base, baseline: base experiment ids.
        metric: the score metric (e.g. ``csdr``).
        target: a stem or ``avg`` (per-track mean over the stems).

    Returns:
        p, or NaN where fewer than two tracks have finite scores from both.
    """
    by_base = {b: scores[scores["base"] == b] for b in (base, baseline)}
    try:
        return paired_ttest(by_base[baseline], by_base[base], metric, target)["p"]
    except ValueError:  # fewer than two paired tracks
        return math.nan


def load_scores(paths: list[str | Path]) -> pd.DataFrame:
    """Read and concatenate tidy score CSVs, checking their columns."""
    frames = []
    for path in paths:
        frame = pd.read_csv(path)
        missing = [c for c in SCORE_COLUMNS if c not in frame.columns]
        if missing:
            raise UserError(
                f"{path}: score file lacks column(s) {missing}; expected {list(SCORE_COLUMNS)}"
            )
        frames.append(frame[list(SCORE_COLUMNS)])
    if not frames:
        return pd.DataFrame(columns=list(SCORE_COLUMNS))
    scores = pd.concat(frames, ignore_index=True)
    scores["value"] = pd.to_numeric(scores["value"], errors="coerce")
    return scores


def load_describe(paths: list[str | Path]) -> dict[str, dict]:
    """Read ``sfc describe`` JSON files, keyed by experiment id (the file's stem where the JSON has none)."""
    out: dict[str, dict] = {}
    for path in paths:
        try:
            data = json.loads(Path(path).read_text())
        except (OSError, json.JSONDecodeError) as err:
            raise UserError(f"cannot read describe output {path}: {err}") from err
        out[str(data.get("experiment") or Path(path).stem)] = data
    return out


def _aggregate(values: pd.Series, how: str) -> float:
    arr = values.to_numpy(dtype=float)
    arr = arr[np.isfinite(arr)]
    if arr.size == 0:
        return math.nan
    return float(np.median(arr) if how == "median" else np.mean(arr))


def model_values(scores: pd.DataFrame) -> pd.DataFrame:
    """One value per (experiment, column, target): aggregate over tracks, then the stem average.

    Returns:
        Columns experiment, column, target, value, n_tracks (the tracks that entered the value: NaN
        values, e.g. silent reference stems, are left out; for "avg" the smallest count of its stems).
        Rows with target "avg" in the input are ignored: the average is always recomputed from the stems.
    """
    rows = []
    scores = scores[scores["target"] != "avg"]
    known = {c.metric for c in COLUMNS}
    columns = list(COLUMNS) + [
        Column(m, m, "mean", m) for m in sorted(set(scores["metric"]) - known)
    ]
    for column in columns:
        sub = scores[scores["metric"] == column.metric]
        for (exp, target), group in sub.groupby(["experiment", "target"], sort=False):
            n = int(np.isfinite(group["value"].to_numpy(dtype=float)).sum())
            rows.append((exp, column.key, target, _aggregate(group["value"], column.aggregate), n))
    values = pd.DataFrame(rows, columns=["experiment", "column", "target", "value", "n_tracks"])
    grouped = values.groupby(["experiment", "column"], sort=False)
    avg = grouped["value"].mean().reset_index()
    avg["n_tracks"] = grouped["n_tracks"].min().to_numpy()
    avg["target"] = "avg"
    return pd.concat([values, avg[values.columns]], ignore_index=True)


def describe_values(describe: dict[str, dict]) -> pd.DataFrame:
    """Parameters (M), GMACs per second of audio (the paper's "FLOPs") and RTF (where measured) per experiment."""
    rows = []
    for exp, data in describe.items():
        params = data.get("params", {})
        total = params.get("total") if isinstance(params, dict) else params
        if total is not None:
            rows.append((exp, "params", "total", float(total) / 1e6))
        # The paper's "FLOPs (G/s)" are multiply-accumulates (README, cost table): compare MACs.
        if data.get("gmacs_per_second") is not None:
            rows.append((exp, "flops", "total", float(data["gmacs_per_second"])))
        if data.get("rtf") is not None:
            rows.append((exp, "rtf", "total", float(data["rtf"])))
    return pd.DataFrame(rows, columns=["experiment", "column", "target", "value"])


def _labels() -> dict[str, str]:
    return {c.key: c.label for c in (*COLUMNS, *COST_COLUMNS)}


def build_table(
    table: str,
    experiments: list[str],
    scores: pd.DataFrame,
    describe: dict[str, dict],
    compare_with: dict[str, str] | None = None,
) -> pd.DataFrame:
    """The tidy table: one row per (model, column, target) with ours, spread, paper and difference.

    Args:
        table: table name (a key of ``sfc.experiments.PAPER_TABLES`` for the paper's tables).
        experiments: the table's experiment ids, in row order (seed repeats included).
        scores: tidy scores (``load_scores``); unused for the cost table.
        describe: ``load_describe`` output.
        compare_with: base id -> the paper experiment whose reported value it is compared to
            (default: itself), e.g. a tiny demo model against the small model of the paper.

    Returns:
        A DataFrame with columns TABLE_COLUMNS.
    """
    compare_with = compare_with or {}
    values = describe_values({e: d for e, d in describe.items() if e in experiments})
    if scores.columns.empty:  # the cost table is built without score files
        scores = pd.DataFrame(columns=list(SCORE_COLUMNS))
    scores = scores[scores["experiment"].isin(experiments)]
    if table != "cost":  # score tables show the parameter count beside the metrics
        keep = ("params", "flops") if table in COST_WITH_SCORES else ("params",)
        values = values[values["column"].isin(keep)]
        values = pd.concat([values, model_values(scores[scores["experiment"].isin(experiments)])])
    missing = sorted(set(experiments) - set(values["experiment"]))
    if missing:
        raise UserError(f"table {table}: no scores or description for {missing}")
    values["base"] = [base_id(e) for e in values["experiment"]]
    labels, rows = _labels(), []
    bases = list(dict.fromkeys(base_id(e) for e in experiments))
    for base in bases:
        ref = compare_with.get(base, base)
        prow = paper_row(table, ref)
        sub = values[values["base"] == base]
        for (column, target), group in sub.groupby(["column", "target"], sort=False):
            vals = group["value"].to_numpy(dtype=float)
            mean = float(np.nanmean(vals)) if np.isfinite(vals).any() else math.nan
            spread = float(np.nanstd(vals, ddof=1)) if np.isfinite(vals).sum() > 1 else math.nan
            paper = paper_value(table, ref, column, target)
            comparable = prow is None or prow.same_test_set
            diff = (
                mean - paper
                if paper is not None and math.isfinite(mean) and comparable
                else math.nan
            )
            rows.append(
                (
                    table,
                    prow.row if prow else "",
                    base,
                    column,
                    labels.get(column, column),
                    target,
                    mean,
                    spread,
                    len(vals),
                    math.nan if paper is None else paper,
                    diff,
                    group["n_tracks"].min() if "n_tracks" in group else math.nan,
                )
            )
    out = pd.DataFrame(rows, columns=list(CELL_COLUMNS))
    out["n_tracks"] = out["n_tracks"].astype("Int64")  # empty for the cost columns
    out = _with_significance(out, scores, bases)
    return _sorted(out, bases)


def _with_significance(frame: pd.DataFrame, scores: pd.DataFrame, bases: list[str]) -> pd.DataFrame:
    """The cells with SIGNIFICANCE_COLUMNS: each score cell against its band-split counterpart."""
    metric_of = {c.key: c.metric for c in COLUMNS}
    scores = scores[scores["target"] != "avg"]  # "avg" rows of the input are ignored (recomputed)
    scores = scores.assign(base=[base_id(e) for e in scores["experiment"]])
    baselines, p_values = [], []
    for cell in frame.itertuples():
        baseline = band_split_counterpart(cell.experiment)
        tested = baseline in bases and cell.target != "total"  # not the cost cells
        metric = metric_of.get(cell.column, cell.column)
        baselines.append(baseline if tested else "")
        p_values.append(
            significance(scores, cell.experiment, baseline, metric, cell.target)
            if tested
            else math.nan
        )
    significant = [bool(p < ALPHA) if math.isfinite(p) else None for p in p_values]
    return frame.assign(baseline=baselines, p_value=p_values, significant=significant)


def _sorted(frame: pd.DataFrame, bases: list[str]) -> pd.DataFrame:
    col_order = [c.key for c in (*COST_COLUMNS, *COLUMNS)]
    key_col = {c: i for i, c in enumerate(col_order)}
    key_target = {t: i for i, t in enumerate(TARGET_ORDER)}
    frame = frame.assign(
        _b=frame["experiment"].map({b: i for i, b in enumerate(bases)}),
        _c=frame["column"].map(lambda c: key_col.get(c, len(key_col))),
        _t=frame["target"].map(
            lambda t: (2, t) if t == "avg" else (0, key_target[t]) if t in key_target else (1, t)
        ),
    )
    frame = frame.sort_values(["_b", "_c", "_t", "column"], kind="stable")
    return frame.drop(columns=["_b", "_c", "_t"]).reset_index(drop=True)


# ------------------------------------------------------------------------------------------- render


def _num(value: float, digits: int, signed: bool = False) -> str:
    if value is None or not math.isfinite(value):
        return ""
    return f"{value:+.{digits}f}" if signed else f"{value:.{digits}f}"


def format_cell(row: pd.Series, tex: bool = False, full_tracks: int | None = None) -> str:
    """``ours [± spread][†] [(n=K)] / paper / diff``; an unknown paper value leaves its two parts empty.

    † marks a significant difference from the band-split counterpart (module docstring). ``(n=K)``
    appears when only K of the row's ``full_tracks`` tracks entered the mean/median (the others had no
    defined value, e.g. a silent reference stem).
    """
    digits = 4 if row["column"] == "rtf" else 2
    ours = _num(row["ours"], digits)
    if ours and math.isfinite(row["spread"]):
        ours += (r" $\pm$ " if tex else " ± ") + _num(row["spread"], digits)
    if ours and row.get("significant") in (True,):  # True or numpy True; not None / NaN
        ours += r"$^\dagger$" if tex else MARK
    n = row.get("n_tracks")
    if full_tracks is not None and n is not None and not pd.isna(n) and int(n) < full_tracks:
        ours = f"{ours} (n={int(n)})".strip()
    if not math.isfinite(row["paper"]):
        return ours
    return f"{ours} / {_num(row['paper'], digits)} / {_num(row['diff'], digits, signed=True)}"


def to_grid(frame: pd.DataFrame, tex: bool = False) -> tuple[list[str], list[list[str]]]:
    """Header and body of the human-readable table (shared by Markdown and LaTeX).

    Score tables: one line per (model, metric) with the targets as columns; the cost table and the
    parameter count: one column each.
    """
    scalar = frame[frame["target"] == "total"]
    metric = frame[frame["target"] != "total"]
    scalar_cols = list(dict.fromkeys(scalar["column"]))
    targets = list(dict.fromkeys(metric["target"]))
    labels = dict(zip(frame["column"], frame["label"]))
    header = ["row", "experiment", "seeds", *[labels[c] for c in scalar_cols]]
    header += ["metric", *targets] if targets else []
    body = []
    for exp in dict.fromkeys(frame["experiment"]):
        sub = frame[frame["experiment"] == exp]
        first = sub.iloc[0]
        lead = [first["row"], exp, str(int(sub["n_seeds"].max()))]
        cells = {
            r["column"]: format_cell(r, tex) for _, r in sub[sub["target"] == "total"].iterrows()
        }
        lead += [cells.get(c, "") for c in scalar_cols]
        msub = sub[sub["target"] != "total"]
        counts = pd.to_numeric(msub.get("n_tracks", pd.Series(dtype=float)), errors="coerce")
        full = int(counts.max()) if counts.notna().any() else None
        if msub.empty:
            body.append(lead)
        for i, column in enumerate(dict.fromkeys(msub["column"])):
            by_target = {
                r["target"]: format_cell(r, tex, full)
                for _, r in msub[msub["column"] == column].iterrows()
            }
            prefix = lead if i == 0 else ["", "", ""] + [""] * len(scalar_cols)
            body.append(prefix + [labels[column]] + [by_target.get(t, "") for t in targets])
    return header, body


def to_markdown(frame: pd.DataFrame, title: str) -> str:
    """A GitHub-flavoured Markdown table with a title and a legend."""
    header, body = to_grid(frame)
    lines = [
        f"# {title}",
        "",
        "Cells: ours [± std over seeds] [(n=K)] / paper / difference (ours − paper); "
        "an empty paper part means the paper's value is unknown; (n=K): only K of the model's "
        "test tracks entered this mean/median (silent reference stems are left out). "
        f"{MARK}: differs from the band-split model of the same size and K in this table "
        f"(two-sided paired t-test over the test tracks, p < {ALPHA}).",
        "",
    ]
    lines.append("| " + " | ".join(header) + " |")
    lines.append("|" + "---|" * len(header))
    lines += ["| " + " | ".join(cell.replace("|", "\\|") for cell in row) + " |" for row in body]
    return "\n".join(lines) + "\n"


def _tex_escape(text: str) -> str:
    # only our own cells contain "$\\pm$", so "$" and "\\" are left alone
    for char in ("&", "%", "#", "_"):
        text = text.replace(char, "\\" + char)
    return text


def to_latex(frame: pd.DataFrame, title: str) -> str:
    """A standalone LaTeX ``table`` environment (booktabs)."""
    header, body = to_grid(frame, tex=True)
    lines = [
        "% cells: ours [\\pm std over seeds] / paper / difference; requires \\usepackage{booktabs}",
        f"% \\dagger: differs from the band-split model of the same size and K (paired t-test, p < {ALPHA})",
        "\\begin{table}[t]",
        "\\centering",
        f"\\caption{{{_tex_escape(title)}}}",
        "\\begin{tabular}{" + "l" * len(header) + "}",
        "\\toprule",
        " & ".join(_tex_escape(h) for h in header) + " \\\\",
        "\\midrule",
    ]
    lines += [" & ".join(_tex_escape(cell) for cell in row) + " \\\\" for row in body]
    lines += ["\\bottomrule", "\\end{tabular}", "\\end{table}"]
    return "\n".join(lines) + "\n"


def title_of(table: str) -> str:
    """Display title of a table name."""
    return TITLES.get(table, table.replace("_", " "))
