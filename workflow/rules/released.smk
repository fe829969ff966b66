# The authors' released models: download one Hub folder, import it as the model file of its experiment
# id. `ruleorder` in the Snakefile prefers `import_released` over `train` for the ids of config.released.


rule download_released:
    output:
        f"{RESULTS}/released/{{exp}}.download.json",
    log:
        f"{RESULTS}/logs/download_released/{{exp}}.log",
    wildcard_constraints:
        exp=RELEASED_PATTERN,
    conda:
        "../../envs/cpu.yaml"
    params:
        folder=released_folder,
        repo=config.get("released", {}).get("repo"),
        revision=config.get("released", {}).get("revision"),
    shell:
        "python -m sfc weights download {params.folder:q} --repo {params.repo:q}"
        " --revision {params.revision:q} --manifest {output} > {log} 2>&1"


rule import_released:
    input:
        f"{RESULTS}/released/{{exp}}.download.json",
    output:
        model=f"{RESULTS}/models/{{exp}}.pt",
        summary=f"{RESULTS}/released/{{exp}}.import.json",
    log:
        f"{RESULTS}/logs/import_released/{{exp}}.log",
    benchmark:
        f"{RESULTS}/benchmarks/import_released/{{exp}}.tsv"
    wildcard_constraints:
        exp=RELEASED_PATTERN,
    conda:
        "../../envs/cpu.yaml"
    shell:
        "python -m sfc weights import {input} --experiment {wildcards.exp} --out {output.model}"
        " --summary {output.summary} > {log} 2>&1"
