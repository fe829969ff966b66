# Datasets: download the real ones (paper) or generate the embedded one (demo), then cache them.


rule download:
    output:
        directory("data/{dataset}"),
    log:
        f"{RESULTS}/logs/download/{{dataset}}.log",
    conda:
        "../../envs/cpu.yaml"
    params:
        existing=existing_arg,
    shell:
        "python -m sfc data download --dataset {wildcards.dataset} --out {output} {params.existing} > {log} 2>&1"


rule generate:
    output:
        directory(f"{RESULTS}/data/{{task}}"),
    log:
        f"{RESULTS}/logs/generate/{{task}}.log",
    benchmark:
        f"{RESULTS}/benchmarks/generate/{{task}}.tsv"
    conda:
        "../../envs/cpu.yaml"
    params:
        seed=config["data"]["seed"],
        size=generate_args,
    shell:
        "python -m sfc data generate --task {wildcards.task} --out {output} --seed {params.seed} {params.size} > {log} 2>&1"


rule cache:
    input:
        cache_inputs,
    output:
        directory(f"{RESULTS}/cache/{{task}}"),
    log:
        f"{RESULTS}/logs/cache/{{task}}.log",
    benchmark:
        f"{RESULTS}/benchmarks/cache/{{task}}.tsv"
    conda:
        "../../envs/cpu.yaml"
    threads: 4
    shell:
        "python -m sfc data cache --root {input} --task {wildcards.task} --out {output} > {log} 2>&1"
