"""Helpers shared by the rules: config loading and validation, experiment table, path functions.

Snakemake owns every result path (results/<name>/...); rules pass them to the `sfc` CLI explicitly.
Jobs run `python -m sfc ...`: the package is imported from the working directory (the checkout, by
default) or from its installation (`pip install -e .`, needed with --directory elsewhere).
"""

import csv
import hashlib
import json
import re
import shlex
from functools import lru_cache
from pathlib import Path

import yaml
from snakemake.exceptions import WorkflowError
from snakemake.utils import update_config, validate

from sfc.errors import UserError
from sfc.experiments import TASKS, parse_experiment

REPO = Path(workflow.basedir)  # the checkout holding the Snakefile and the sfc package
DEMO_CONFIG = REPO / "workflow/config/demo.yaml"
EXPERIMENT_COLUMNS = ["table", "experiment", "compare_with"]

# The embedded demo is the default. A `configfile:` directive would be deep-merged with
# --configfile (demo keys leaking into the paper config), so the demo is loaded only without one.
if not workflow.config_settings.configfiles:
    _base = yaml.safe_load(Path(DEMO_CONFIG).read_text())
    update_config(_base, dict(config))
    config.clear()
    config.update(_base)
validate(config, "../schemas/config.schema.yaml")


def _experiment_error(where, exp_id, err):
    return WorkflowError(f"{where}: unknown or invalid experiment id {exp_id!r}: {err}")


@lru_cache(maxsize=None)
def experiment(exp_id):
    """The parsed experiment id (sfc.experiments.Experiment)."""
    try:
        return parse_experiment(exp_id)
    except UserError as err:
        raise _experiment_error("experiment", exp_id, err) from None


def load_experiment_table(path):
    """{table: [(experiment id, compare_with id or "")]} from the experiments TSV, every id validated.

    A relative path is looked up in the working directory, then in the checkout.
    """
    if not Path(path).is_file() and (REPO / path).is_file():
        path = REPO / path
    if not Path(path).is_file():
        raise WorkflowError(f"config key 'experiments': no such file {path}")
    with open(path, newline="") as handle:
        reader = csv.DictReader(handle, delimiter="\t")
        if reader.fieldnames != EXPERIMENT_COLUMNS:
            raise WorkflowError(
                f"{path}: header must be {EXPERIMENT_COLUMNS}, got {reader.fieldnames}"
            )
        tables = {}
        for line, row in enumerate(reader, start=2):
            for key in ("experiment", "compare_with"):
                if row[key]:
                    try:
                        parse_experiment(row[key])
                    except UserError as err:
                        raise _experiment_error(
                            f"{path}:{line}", row[key], err
                        ) from None
            tables.setdefault(row["table"], []).append(
                (row["experiment"], row["compare_with"])
            )
    return tables


def _select_tables(all_tables, wanted):
    unknown = sorted(set(wanted) - set(all_tables))
    if unknown:
        raise WorkflowError(
            f"config key 'tables': unknown table(s) {unknown}; known: {sorted(all_tables)}"
        )
    return {t: rows for t, rows in all_tables.items() if not wanted or t in wanted}


def _check_figures(figures, tables):
    for key in ("position_bias", "attention"):
        for exp_id in figures[key]:
            if experiment(exp_id).encoder != "sfc_ca":
                raise WorkflowError(
                    f"config key 'figures.{key}': {exp_id!r} is not an sfc_ca experiment"
                )
    for key in ("num_bands", "params"):
        for table in figures[key]:
            if table not in tables:
                raise WorkflowError(
                    f"config key 'figures.{key}': table {table!r} is not built"
                )


def _yaml_scalar(value):
    if value is None or isinstance(value, bool):
        return {None: "null", True: "true", False: "false"}[value]
    return str(value)


def recipe_of(exp_id):
    """The training recipe of one experiment: `recipes` maps a model kind (`lightsaft`,
    `mstfa_unet`, the `mstfa` separator) to its own recipe; everything else uses `recipe`.
    """
    exp = experiment(exp_id)
    kind = exp.family if exp.family != "sfc" else exp.separator
    return config.get("recipes", {}).get(kind, config["recipe"])


def _check_train_set(experiments):
    """`train.set` through the code `sfc train --set` uses (keys, types, ranges), per task and seed,
    when the DAG is built: a bad value stops `snakemake -n` instead of every train job.
    """
    from sfc.train.config import resolve_config

    sets = [f"{k}={_yaml_scalar(v)}" for k, v in config["train"]["set"].items()]
    for exp_id in experiments:
        exp = experiment(exp_id)
        try:
            resolve_config(exp.task, recipe_of(exp_id), exp.seed, sets=sets)
        except UserError as err:
            raise WorkflowError(f"config key 'train.set' ({exp_id}): {err}") from None


RESULTS = f"results/{config['name']}"
TABLES = _select_tables(load_experiment_table(config["experiments"]), config["tables"])
_check_figures(config["figures"], TABLES)
EXPERIMENTS = list(dict.fromkeys(e for rows in TABLES.values() for e, _ in rows))
# experiment id -> model folder of the authors' release: imported, not trained (rules/released.smk)
RELEASED = config.get("released", {}).get("models", {})
for _exp_id in RELEASED:
    experiment(_exp_id)  # validates the id
# the ids the import rule may produce; a pattern matching nothing when no model is released
RELEASED_PATTERN = "|".join(re.escape(e) for e in RELEASED) or "(?!x)x"
# every experiment a target may name: the tables' and the figures'
_check_train_set(
    dict.fromkeys(
        EXPERIMENTS
        + config["figures"]["position_bias"]
        + config["figures"]["attention"]
    )
)


wildcard_constraints:
    exp=r"(mss|cass)-[a-z_]+(-[a-z0-9]+)+",
    task="|".join(TASKS),
    table=r"[A-Za-z0-9_]+",


# ------------------------------------------------------------------------------ paths


def data_root(task):
    """The dataset folder of a task: generated under results/<name>/, downloaded under data/."""
    if config["data"]["source"] == "generate":
        return f"{RESULTS}/data/{task}"
    return f"data/{TASKS[task].dataset}"


def cache_dir(task):
    return f"{RESULTS}/cache/{task}"


def model_path(exp_id):
    return f"{RESULTS}/models/{exp_id}.pt"


# ------------------------------------------------------------------------------ input functions


def cache_inputs(wildcards):
    return data_root(wildcards.task)


def train_inputs(wildcards):
    task = experiment(wildcards.exp).task
    return {"data": data_root(task), "cache": cache_dir(task)}


def evaluate_inputs(wildcards):
    return {
        "model": model_path(wildcards.exp),
        "data": data_root(experiment(wildcards.exp).task),
    }


def table_inputs(wildcards):
    ids = table_experiments(wildcards)
    scores = (
        [] if wildcards.table == "cost" else [f"{RESULTS}/scores/{e}.csv" for e in ids]
    )
    return {"scores": scores, "describe": [f"{RESULTS}/describe/{e}.json" for e in ids]}


def figure_tables(wildcards):
    return [f"{RESULTS}/tables/{t}.csv" for t in config["figures"][wildcards.kind]]


# ------------------------------------------------------------------------------ params


def task_of(wildcards):
    return experiment(wildcards.exp).task


def table_experiments(wildcards):
    if wildcards.table not in TABLES:
        raise WorkflowError(
            f"table {wildcards.table!r} is not in {config['experiments']}"
        )
    return [e for e, _ in TABLES[wildcards.table]]


def compare_args(wildcards):
    pairs = [f"{e}={c}" for e, c in TABLES[wildcards.table] if c]
    return ("--compare-with " + " ".join(pairs)) if pairs else ""


def existing_arg(wildcards):
    path = config["data"]["existing"].get(wildcards.dataset)
    return f"--existing {shlex.quote(path)}" if path else ""


def generate_args(wildcards):
    size = config["data"]["generate"]
    return " ".join(f"--{k.replace('_', '-')} {v}" for k, v in size.items())


def train_recipe(wildcards):
    return recipe_of(wildcards.exp)


def train_overrides(wildcards):
    items = config["train"]["set"].items()
    return " ".join(f"--set {shlex.quote(f'{k}={_yaml_scalar(v)}')}" for k, v in items)


def batch_plan(wildcards, resources):
    """The effective global batch of one training job on its GPUs, e.g. 'global batch 32 = 1
    process(es) x micro-batch 4 x 8 accumulation step(s)'; a bad `train.set` stops the DAG here.
    """
    from sfc.train.config import resolve_config

    exp = experiment(wildcards.exp)
    sets = [f"{k}={_yaml_scalar(v)}" for k, v in config["train"]["set"].items()]
    try:
        train_config = resolve_config(
            exp.task, recipe_of(wildcards.exp), exp.seed, sets=sets
        )
        return train_config.batch_plan(max(1, int(resources.get("gpu", 0)))).describe()
    except UserError as err:
        raise WorkflowError(f"train {wildcards.exp}: {err}") from None


def launcher(wildcards, resources):
    """One process per GPU: torchrun inside the one job when it holds several GPUs."""
    gpus = int(resources.get("gpu", 0))
    return f"torchrun --standalone --nproc_per_node={gpus}" if gpus > 1 else "python"


def work_dir(wildcards):
    """Resumable training folder of one experiment under one recipe and set of overrides.

    A rerun with the same settings resumes there; changed settings (which Snakemake reruns because
    the params changed) start a fresh folder instead of resuming an incompatible checkpoint.
    """
    recipe = recipe_of(wildcards.exp)
    settings = json.dumps([recipe, config["train"]["set"]], sort_keys=True)
    digest = hashlib.sha1(settings.encode()).hexdigest()[:8]
    return f"{RESULTS}/work/{wildcards.exp}/{recipe}-{digest}"


def released_folder(wildcards):
    """The repository folder of a released model (config.released.models)."""
    return RELEASED[wildcards.exp]


def results_dir_of(wildcards, output):
    """results/<name>/ of a rule whose output sits directly in it."""
    return str(Path(output[0]).parent)


def config_json(wildcards):
    return json.dumps(config, sort_keys=True)


# ------------------------------------------------------------------------------ targets


def table_outputs(table):
    return [
        f"{RESULTS}/tables/{table}.{ext}"
        for ext in ("md", "csv", "tex", "provenance.json")
    ]


def figure_outputs():
    figs = config["figures"]
    out = [f"{RESULTS}/figures/position_bias-{e}.png" for e in figs["position_bias"]]
    out += [f"{RESULTS}/figures/attention-{e}.png" for e in figs["attention"]]
    out += [
        f"{RESULTS}/figures/{kind}.png"
        for kind in ("num_bands", "params")
        if figs[kind]
    ]
    return out


def all_outputs():
    tables = [f for t in TABLES for f in table_outputs(t)]
    return tables + figure_outputs() + [f"{RESULTS}/cost_summary.csv"]


def rtf_option():
    """`--rtf DEVICE` for `sfc describe` when the config asks for the real-time factor, else ''."""
    device = config.get("describe", {}).get("rtf_device")
    return f"--rtf {device}" if device else ""
