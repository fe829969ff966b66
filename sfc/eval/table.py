"""Score tables: per-track result files, the tidy table, aggregates and the paired t-test.

Per-track results are one JSON file each, written atomically, so scoring resumes per track; the tidy table
(columns ``experiment, track, target, metric, value``) is merged from them.

PAPER: spec §9 (aggregation: uSDR/SNR mean over tracks, cSDR median over tracks, SI-SDR median in the
released script) and §14 item 5 (report SI-SDR mean and median).
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from scipy import stats

COLUMNS = ["experiment", "track", "target", "metric", "value"]
# metric -> aggregates over tracks, in reporting order. NaN track values are skipped (pandas default).
AGGREGATIONS: dict[str, tuple[str, ...]] = {
    "usdr": ("mean",),
    "csdr": ("median",),
    "snr": ("mean",),
    "si_sdr": ("mean", "median"),
    "spec_snr": ("mean",),
    "mdx_sdr": ("mean",),  # PAPER: lightsaft.md §5 (mean over songs of the mean over stems)
}
AVG = "avg"  # the pseudo-target "mean of the per-target aggregates" (paper's "avg" column)


def track_result_path(out_dir: str | Path, track: str) -> Path:
    """The per-track result file: a readable slug of the name plus a hash against collisions."""
    slug = re.sub(r"[^A-Za-z0-9._-]+", "_", track).strip("._") or "track"
    digest = hashlib.sha1(track.encode()).hexdigest()[:8]
    return Path(out_dir) / f"{slug[:80]}-{digest}.json"


def read_track_result(path: Path, settings: dict[str, Any]) -> dict[str, Any] | None:
    """A stored per-track result if it exists, parses and was made with the same ``settings``."""
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    if not isinstance(data, dict) or data.get("settings") != settings or "scores" not in data:
        return None
    return data


def tidy_rows(
    experiment: str, track: str, scores: dict[str, dict[str, float]]
) -> list[dict[str, Any]]:
    """Rows of the tidy table for one track's ``{metric: {target: value}}``."""
    return [
        {
            "experiment": experiment,
            "track": track,
            "target": target,
            "metric": metric,
            "value": value,
        }
        for metric, per_target in scores.items()
        for target, value in per_target.items()
    ]


def tidy_table(results: Iterable[dict[str, Any]]) -> pd.DataFrame:
    """The tidy table from per-track results (dicts with experiment, track, scores)."""
    rows = [row for r in results for row in tidy_rows(r["experiment"], r["track"], r["scores"])]
    table = pd.DataFrame(rows, columns=COLUMNS)
    table["value"] = pd.to_numeric(table["value"], errors="coerce").astype(float)  # null -> NaN
    return table


def aggregate(table: pd.DataFrame) -> pd.DataFrame:
    """Aggregates over tracks per experiment, metric and target, plus the ``avg`` target.

    Returns:
        columns ``experiment, metric, aggregate, target, value, num_tracks``; ``avg`` is the mean of
        the per-target aggregates (the paper's "avg" column).
    """
    rows = []
    for (exp, metric), group in table.groupby(["experiment", "metric"], sort=False):
        for how in AGGREGATIONS.get(metric, ("mean",)):
            per_target = group.groupby("target", sort=False)["value"]
            values = getattr(per_target, how)()
            counts = per_target.count()
            for target, value in values.items():
                rows.append([exp, metric, how, target, float(value), int(counts[target])])
            rows.append([exp, metric, how, AVG, float(values.mean()), int(counts.min())])
    return pd.DataFrame(
        rows, columns=["experiment", "metric", "aggregate", "target", "value", "num_tracks"]
    )


def aggregate_dict(
    table: pd.DataFrame, counts: bool = False
) -> dict[str, dict[str, dict[str, Any]]]:
    """``{metric: {aggregate: {target: value}}}`` for one experiment's table (for the JSON file);
    with ``counts``, the number of tracks that entered each value instead (NaN = silent reference or
    failed metric, left out)."""
    out: dict[str, dict[str, dict[str, Any]]] = {}
    for row in aggregate(table).itertuples():
        value = int(row.num_tracks) if counts else row.value
        out.setdefault(row.metric, {}).setdefault(row.aggregate, {})[row.target] = value
    return out


def _per_track(table: pd.DataFrame, metric: str, target: str) -> pd.Series:
    rows = table[table["metric"] == metric]
    if target != AVG:
        rows = rows[rows["target"] == target]
    return rows.groupby("track")["value"].mean()  # AVG: mean over targets per track


def paired_ttest(
    table_a: pd.DataFrame, table_b: pd.DataFrame, metric: str, target: str = AVG
) -> dict:
    """Paired t-test of system B against system A on the tracks both scored.

    PAPER: spec §9 ("paired t-test ... with non-trivial effect size"). Effect size: Cohen's d_z = mean of
    the per-track differences (B − A) / their standard deviation (ddof 1).

    Args:
        table_a, table_b: tidy tables of the two systems.
        metric: e.g. ``csdr`` or ``usdr``.
        target: a source name, or ``avg`` for the per-track mean over sources.

    Returns:
        num_tracks, mean_a, mean_b, mean_diff, t, p (two-sided), cohens_dz.
    """
    a, b = _per_track(table_a, metric, target), _per_track(table_b, metric, target)
    pairs = pd.concat([a.rename("a"), b.rename("b")], axis=1, join="inner").dropna()
    pairs = pairs[np.isfinite(pairs).all(axis=1)]
    if len(pairs) < 2:
        raise ValueError(
            f"paired t-test needs >= 2 tracks scored by both systems, got {len(pairs)}"
        )
    diff = pairs["b"] - pairs["a"]
    res = stats.ttest_rel(pairs["b"], pairs["a"])
    sd = float(diff.std(ddof=1))
    return {
        "metric": metric,
        "target": target,
        "num_tracks": len(pairs),
        "mean_a": float(pairs["a"].mean()),
        "mean_b": float(pairs["b"].mean()),
        "mean_diff": float(diff.mean()),
        "t": float(res.statistic),
        "p": float(res.pvalue),
        "cohens_dz": float(diff.mean() / sd) if sd > 0 else float("nan"),
    }
