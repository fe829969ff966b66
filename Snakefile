"""sfc: replication of "Input-Adaptive Spectral Feature Compression" (Saijo & Bando, 2026).

    snakemake --cores all                                     # embedded demo (workflow/config/demo.yaml)
    snakemake --configfile workflow/config/paper.yaml --profile workflow/profiles/slurm   # full paper

download/generate -> cache -> train -> evaluate -> make_table -> plot; see results/README.md.
"""

from snakemake.utils import min_version

min_version("9.0")


report: "workflow/report/workflow.rst"


include: "workflow/rules/common.smk"
include: "workflow/rules/data.smk"
include: "workflow/rules/train.smk"
include: "workflow/rules/evaluate.smk"
include: "workflow/rules/report.smk"
include: "workflow/rules/released.smk"


ruleorder: import_released > train


localrules:
    all,
    download,
    download_released,
    make_table,
    summarize_cost,
    plot_summary,


rule all:
    default_target: True
    input:
        all_outputs(),
