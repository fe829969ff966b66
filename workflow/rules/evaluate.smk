# Separate the test split with a trained model and score it (one tidy CSV per table cell).


rule evaluate:
    input:
        unpack(evaluate_inputs),
    output:
        scores=f"{RESULTS}/scores/{{exp}}.csv",
        aggregate=f"{RESULTS}/scores/{{exp}}.json",
    log:
        f"{RESULTS}/logs/evaluate/{{exp}}.log",
    benchmark:
        f"{RESULTS}/benchmarks/evaluate/{{exp}}.tsv"
    conda:
        "../../envs/gpu.yaml"
    threads: 4
    resources:
        gpu=1,
    params:
        # Not an output: per-track score files, kept so an interrupted evaluation resumes.
        tracks_dir=f"{RESULTS}/eval/{{exp}}",
        task=task_of,
        split=config["evaluate"]["split"],
    shell:
        "python -m sfc evaluate {input.model} --data-root {input.data} --task {params.task}"
        " --split {params.split} --out-dir {params.tracks_dir} --scores {output.scores}"
        " --aggregate {output.aggregate} --experiment {wildcards.exp} > {log} 2>&1"
