# One trained model per experiment id, and its parameter / FLOP description.


rule train:
    input:
        unpack(train_inputs),
    output:
        f"{RESULTS}/models/{{exp}}.pt",
    log:
        f"{RESULTS}/logs/train/{{exp}}.log",
    benchmark:
        f"{RESULTS}/benchmarks/train/{{exp}}.tsv"
    conda:
        "../../envs/gpu.yaml"
    threads: 8
    resources:
        gpu=1,
    params:
        # Not an output: Snakemake never deletes it, so the checkpoints of an interrupted or failed
        # job survive and the rerun resumes from them instead of starting over.
        work_dir=work_dir,
        recipe=train_recipe,
        overrides=train_overrides,
        launcher=launcher,
        batch=batch_plan,
    message:
        "train {wildcards.exp} ({resources.gpu} GPU resource(s), one process each): {params.batch}"
    shell:
        "{params.launcher} -m sfc train {wildcards.exp} --data-root {input.data} --cache-dir {input.cache}"
        " --work-dir {params.work_dir} --output {output} --recipe {params.recipe} {params.overrides}"
        " > {log} 2>&1"


rule describe:
    output:
        f"{RESULTS}/describe/{{exp}}.json",
    log:
        f"{RESULTS}/logs/describe/{{exp}}.log",
    # light (CPU, local) unless the config measures the RTF on a GPU
    localrule: not rtf_option().startswith("--rtf cuda")
    conda:
        "../../envs/cpu.yaml"
    resources:
        gpu=1 if rtf_option().startswith("--rtf cuda") else 0,
    params:
        rtf=rtf_option(),
    shell:
        "python -m sfc describe {wildcards.exp} {params.rtf} > {output}.tmp 2> {log} && mv {output}.tmp {output}"
