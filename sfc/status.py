"""``sfc status RESULTS_DIR``: where a (multi-day, cluster) replication stands, one row per table cell.

The cells are the experiments of the workflow config whose `name` is the folder's name (results/<name>/,
found in workflow/config/*.yaml, or given with --config). Per cell, read-only, from the files the
workflow writes:
    done         scores/<exp>.csv (cells of the cost table only: describe/<exp>.json)
    evaluating   the model file, per-track scores under eval/<exp>/ but no table yet
    trained      the model file, nothing scored yet
    training     work/<exp>/*/log.csv: step, loss, ETA from the logged steps per second
    failed       the job's log ends in an error (its last line is shown)
    not started  none of the above
GPU-hours spent come from Snakemake's benchmark files (one GPU per train/evaluate job, the workflow's
`resources: gpu=1`); what is left is estimated from the running cells' ETA and the measured cells.
"""

from __future__ import annotations

import argparse
import csv
import json
import re
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import yaml

from sfc.errors import UserError

GPU_RULES = ("train", "evaluate")  # rules that hold one GPU (workflow/rules/*.smk: resources gpu=1)
ERROR_LINE = re.compile(r"error|traceback|exception|killed|out of memory|cancelled", re.IGNORECASE)


@dataclass
class Cell:
    experiment: str
    tables: str
    state: str
    detail: str = ""
    gpu_hours: float = 0.0
    left_hours: float | None = None


def find_config(results_dir: Path, config: Path | None) -> dict:
    """The workflow config of ``results_dir`` (results/<name>/ <-> `name: <name>`)."""
    if config is not None:
        if not config.is_file():
            raise UserError(f"--config: no such file {config}")
        return {**yaml.safe_load(config.read_text(encoding="utf-8")), "_path": config}
    name = results_dir.resolve().name
    for folder in (
        Path.cwd() / "workflow/config",
        Path(__file__).resolve().parents[1] / "workflow/config",
    ):
        for path in sorted(folder.glob("*.yaml")):
            data = yaml.safe_load(path.read_text(encoding="utf-8"))
            if isinstance(data, dict) and data.get("name") == name:
                return {**data, "_path": path}
    raise UserError(
        f"no workflow config with name {name!r} in workflow/config/; pass --config CONFIG.yaml"
    )


def config_cells(config: dict, config_path: Path | None = None) -> dict[str, list[str]]:
    """experiment id -> tables it is a cell of, in the experiments file's order.

    A relative experiments path is looked up in the working directory, then in the checkout holding
    the config (workflow/config/<x>.yaml), then in the one holding this package.
    """
    roots = [Path.cwd(), Path(__file__).resolve().parents[1]]
    if config_path is not None:
        roots.insert(1, config_path.resolve().parents[2])
    candidates = [root / config["experiments"] for root in roots]
    path = next((p for p in candidates if p.is_file()), candidates[0])
    if not path.is_file():
        raise UserError(f"experiments file not found: {config['experiments']}")
    wanted = set(config.get("tables") or [])
    cells: dict[str, list[str]] = {}
    with open(path, newline="", encoding="utf-8") as handle:
        for row in csv.DictReader(handle, delimiter="\t"):
            if not wanted or row["table"] in wanted:
                cells.setdefault(row["experiment"], []).append(row["table"])
    return cells


def benchmark(results: Path, rule: str, exp: str) -> dict[str, float] | None:
    """Hours and peak memory (MB) of one finished job from its Snakemake benchmark file."""
    path = results / "benchmarks" / rule / f"{exp}.tsv"
    if not path.is_file():
        return None
    with open(path, newline="", encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle, delimiter="\t"))
    if not rows:
        return None

    def _num(value: str | None) -> float:
        try:
            return float(value)  # type: ignore[arg-type]
        except (TypeError, ValueError):  # "-" where the job did not measure it
            return 0.0

    return {
        "hours": sum(_num(r.get("s")) for r in rows) / 3600,
        "max_rss_mb": max(_num(r.get("max_rss")) for r in rows),
    }


def benchmark_hours(results: Path, rule: str, exp: str) -> float | None:
    """Wall-clock hours of one finished job (None if it has no benchmark file)."""
    bench = benchmark(results, rule, exp)
    return None if bench is None else bench["hours"]


def last_line(path: Path) -> str:
    lines = [ln.strip() for ln in path.read_text(encoding="utf-8", errors="replace").splitlines()]
    lines = [ln for ln in lines if ln]
    return lines[-1] if lines else ""


def training_progress(results: Path, exp: str) -> dict | None:
    """Step, total, loss and ETA (hours) of the most recent work folder of ``exp``, if any."""
    logs = sorted((results / "work" / exp).glob("*/log.csv"), key=lambda p: p.stat().st_mtime)
    if not logs:
        return None
    with open(logs[-1], newline="", encoding="utf-8") as handle:
        rows = [r for r in csv.DictReader(handle) if r.get("step")]
    if not rows:
        return {"step": 0, "total": None, "loss": None, "eta_hours": None, "age_s": 0.0}
    last = rows[-1]
    total = None
    prov = logs[-1].parent / "provenance.json"
    if prov.is_file():
        total = (
            json.loads(prov.read_text(encoding="utf-8")).get("train_config", {}).get("total_steps")
        )
    step = int(float(last["step"]))
    rates = [float(r["steps_per_s"]) for r in rows[-20:] if r.get("steps_per_s")]
    rate = sum(rates) / len(rates) if rates else None
    eta = (total - step) / rate / 3600 if total and rate else None
    loss = float(last["loss"]) if last.get("loss") else None
    return {
        "step": step,
        "total": total,
        "loss": loss,
        "eta_hours": eta,
        "age_s": time.time() - logs[-1].stat().st_mtime,
    }


def _failed(results: Path, exp: str) -> str | None:
    for rule in ("train", "import_released", "download_released", "evaluate"):
        log = results / "logs" / rule / f"{exp}.log"
        if log.is_file() and ERROR_LINE.search(line := last_line(log)):
            return f"{rule}: {line[:120]}"
    return None


def cell_status(results: Path, exp: str, tables: list[str]) -> Cell:
    cell = Cell(exp, ",".join(tables), "not started")
    cell.gpu_hours = sum(benchmark_hours(results, r, exp) or 0.0 for r in GPU_RULES)
    scored = any(t != "cost" for t in tables)
    model = (results / "models" / f"{exp}.pt").is_file()
    if (results / "scores" / f"{exp}.csv").is_file() or (
        not scored and (results / "describe" / f"{exp}.json").is_file()
    ):
        cell.state = "done"
        return cell
    if model and scored:
        tracks = list((results / "eval" / exp).glob("*.json"))
        cell.state = "evaluating" if tracks else "trained"
        cell.detail = f"{len(tracks)} track(s) scored" if tracks else ""
        failure = _failed(results, exp)
        if failure and failure.startswith("evaluate"):
            cell.state, cell.detail = "failed", failure
        return cell
    failure = _failed(results, exp)
    progress = training_progress(results, exp)
    if failure:
        cell.state, cell.detail = "failed", failure
    elif progress:
        cell.state = "training"
        total = f"/{progress['total']}" if progress["total"] else ""
        loss = f", loss {progress['loss']:.3g}" if progress["loss"] is not None else ""
        eta = f", ETA {progress['eta_hours']:.1f} h" if progress["eta_hours"] is not None else ""
        cell.detail = f"step {progress['step']}{total}{loss}{eta}"
        cell.left_hours = progress["eta_hours"]
    if progress and failure:
        cell.detail += f" (at step {progress['step']})"
    return cell


def estimate_left(cells: list[Cell], results: Path) -> None:
    """Fill ``left_hours`` of unfinished cells from the mean measured train/evaluate hours."""
    measured = {
        r: [h for c in cells if (h := benchmark_hours(results, r, c.experiment))] for r in GPU_RULES
    }
    mean = {r: sum(v) / len(v) if v else None for r, v in measured.items()}
    for c in cells:
        if c.tables == "cost":  # described from the id alone: nothing to train or score
            parts = [0.0]
        elif c.state in ("not started", "failed"):
            parts = [mean["train"], mean["evaluate"]]
        elif c.state == "training":
            parts = [c.left_hours, mean["evaluate"]]
        elif c.state in ("trained", "evaluating"):
            parts = [mean["evaluate"]]
        else:
            continue
        c.left_hours = None if any(p is None for p in parts) else sum(parts)


def render(cells: list[Cell]) -> str:
    header = ("experiment", "tables", "state", "detail", "GPU-h", "left (GPU-h)")
    rows = [
        (
            c.experiment,
            c.tables,
            c.state,
            c.detail,
            f"{c.gpu_hours:.2f}",
            "-" if c.state == "done" else ("?" if c.left_hours is None else f"{c.left_hours:.2f}"),
        )
        for c in cells
    ]
    widths = [max(len(str(x)) for x in col) for col in zip(header, *rows)]
    line = lambda r: "  ".join(str(x).ljust(w) for x, w in zip(r, widths)).rstrip()  # noqa: E731
    return "\n".join([line(header), line(["-" * w for w in widths]), *map(line, rows)])


def write_csv(path: Path, cells: list[Cell], results: Path) -> None:
    """The cost summary: one row per cell with its state, GPU-hours, and hours/memory per rule."""
    from sfc.provenance import atomic_file

    rules = ("train", "import_released", "evaluate", "describe")
    fields = list(Cell.__dataclass_fields__)
    fields += [f"{r}_{k}" for r in rules for k in ("hours", "max_rss_mb")]
    with atomic_file(path) as handle:
        writer = csv.DictWriter(handle, fieldnames=fields)
        writer.writeheader()
        for c in cells:
            row = asdict(c)
            for r in rules:
                bench = benchmark(results, r, c.experiment) or {}
                row.update({f"{r}_{k}": bench.get(k, "") for k in ("hours", "max_rss_mb")})
            writer.writerow(row)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("results_dir", type=Path, help="results/<name>/ of a workflow config")
    parser.add_argument(
        "--config", type=Path, default=None, help="the workflow config (default: found by name)"
    )
    parser.add_argument(
        "--config-json", default=None, help="the workflow's resolved config, as JSON"
    )
    parser.add_argument("--json", action="store_true", help="print JSON instead of a table")
    parser.add_argument("--csv", type=Path, default=None, help="also write the table as CSV")


def main(args: argparse.Namespace) -> int:
    if not args.results_dir.is_dir():
        raise UserError(f"results folder not found: {args.results_dir}")
    if args.config_json is not None:
        try:
            config = {**json.loads(args.config_json), "_path": None}
        except json.JSONDecodeError as err:
            raise UserError(f"--config-json is not valid JSON: {err}") from err
    else:
        config = find_config(args.results_dir, args.config)
    cells = [
        cell_status(args.results_dir, e, t)
        for e, t in config_cells(config, config["_path"]).items()
    ]
    estimate_left(cells, args.results_dir)
    if args.csv:
        write_csv(args.csv, cells, args.results_dir)
    if args.json:
        print(json.dumps([asdict(c) for c in cells], indent=2))
        return 0
    print(render(cells))
    counts: dict[str, int] = {}
    for c in cells:
        counts[c.state] = counts.get(c.state, 0) + 1
    spent = sum(c.gpu_hours for c in cells)
    unknown = [c for c in cells if c.state != "done" and c.left_hours is None]
    left = sum(c.left_hours or 0.0 for c in cells if c.state != "done")
    print(
        f"\n{len(cells)} cell(s): "
        + ", ".join(f"{n} {s}" for s, n in counts.items())
        + f" | GPU-hours spent {spent:.2f}, left ~{left:.2f}"
        + (f" (+ {len(unknown)} cell(s) without a measurement yet)" if unknown else "")
    )
    return 0
