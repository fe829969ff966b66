# Tables (Markdown + CSV + LaTeX + provenance) and figures of the paper.


rule make_table:
    input:
        unpack(table_inputs),
    output:
        md=f"{RESULTS}/tables/{{table}}.md",
        csv=report(
            f"{RESULTS}/tables/{{table}}.csv",
            caption="../report/table.rst",
            category="Tables",
            labels={"table": "{table}"},
        ),
        tex=f"{RESULTS}/tables/{{table}}.tex",
        provenance=report(
            f"{RESULTS}/tables/{{table}}.provenance.json",
            caption="../report/provenance.rst",
            category="Provenance",
            labels={"of": "table {table}"},
        ),
    log:
        f"{RESULTS}/logs/make_table/{{table}}.log",
    conda:
        "../../envs/cpu.yaml"
    params:
        experiments=table_experiments,
        compare=compare_args,
        config=config_json,
    shell:
        "python -m sfc report table --table {wildcards.table} --experiments {params.experiments}"
        " --scores {input.scores} --describe {input.describe} {params.compare}"
        " --md {output.md} --csv {output.csv} --tex {output.tex}"
        " --provenance {output.provenance} --config-json {params.config:q} > {log} 2>&1"


rule plot_position_bias:
    input:
        f"{RESULTS}/models/{{exp}}.pt",
    output:
        png=report(
            f"{RESULTS}/figures/position_bias-{{exp}}.png",
            caption="../report/position_bias.rst",
            category="Figures",
            labels={"figure": "position bias", "model": "{exp}"},
        ),
        provenance=f"{RESULTS}/figures/position_bias-{{exp}}.provenance.json",
    log:
        f"{RESULTS}/logs/plot/position_bias-{{exp}}.log",
    conda:
        "../../envs/cpu.yaml"
    params:
        config=config_json,
    shell:
        "python -m sfc report position-bias --model {input} --out {output.png}"
        " --provenance {output.provenance} --config-json {params.config:q} > {log} 2>&1"


rule plot_attention:
    input:
        unpack(evaluate_inputs),
    output:
        png=report(
            f"{RESULTS}/figures/attention-{{exp}}.png",
            caption="../report/attention.rst",
            category="Figures",
            labels={"figure": "attention", "model": "{exp}"},
        ),
        provenance=f"{RESULTS}/figures/attention-{{exp}}.provenance.json",
    log:
        f"{RESULTS}/logs/plot/attention-{{exp}}.log",
    conda:
        "../../envs/cpu.yaml"
    params:
        split=config["evaluate"]["split"],
        track=(
            f"--track {config['figures']['attention_track']}"
            if config["figures"]["attention_track"]
            else ""
        ),
        seconds=config["figures"]["attention_seconds"],
        config=config_json,
    shell:
        "python -m sfc report attention --model {input.model} --data-root {input.data} --split {params.split}"
        " {params.track} --seconds {params.seconds} --out {output.png}"
        " --provenance {output.provenance} --config-json {params.config:q} > {log} 2>&1"


rule plot_summary:
    input:
        figure_tables,
    output:
        png=report(
            f"{RESULTS}/figures/{{kind}}.png",
            caption="../report/summary.rst",
            category="Figures",
            labels={"figure": "{kind}", "model": "all"},
        ),
        provenance=f"{RESULTS}/figures/{{kind}}.provenance.json",
    log:
        f"{RESULTS}/logs/plot/{{kind}}.log",
    wildcard_constraints:
        kind="num_bands|params",
    conda:
        "../../envs/cpu.yaml"
    params:
        config=config_json,
    shell:
        "python -m sfc report {wildcards.kind} --tables {input} --out {output.png}"
        " --provenance {output.provenance} --config-json {params.config:q} > {log} 2>&1"


rule summarize_cost:
    input:
        [f for t in TABLES for f in table_outputs(t)],
    output:
        report(
            f"{RESULTS}/cost_summary.csv",
            caption="../report/cost_summary.rst",
            category="Cost",
            labels={"of": "every table cell"},
        ),
    log:
        f"{RESULTS}/logs/summarize_cost.log",
    conda:
        "../../envs/cpu.yaml"
    params:
        results=results_dir_of,
        config=config_json,
    shell:
        "python -m sfc status {params.results} --config-json {params.config:q} --csv {output} > {log} 2>&1"
