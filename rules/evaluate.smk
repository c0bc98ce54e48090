# Evaluation with lm-eval on the test split: the base model (round 0, every domain in one
# job per model) and, with compute.job = run, every run (with job = cell or block, train_cell
# or train_block evaluates the runs it trains).


rule evaluate_base:
    input:
        tests=expand(f"{ROOT}/data/{{domain}}/test.jsonl", domain=GRID["domains"]),
        model=f"{ROOT}/models/{{model}}/manifest.json",
        config=RESOLVED_CONFIG,
    output:
        expand(f"{ROOT}/eval/{{domain}}/{{model}}/base.json", domain=GRID["domains"], allow_missing=True),
    log:
        f"{ROOT}/logs/eval/base/{{model}}.log",
    conda:
        MODEL_ENV
    threads: 1
    resources:
        gpu=JOB_GPUS,
    params:
        domains=" ".join(f"--domain {d}" for d in GRID["domains"]),
    shell:
        "python -m edco evaluate --config {input.config} {params.domains}"
        " --model {wildcards.model} --checkpoint base > {log} 2>&1"


if CFG["compute"]["job"] == "run":

    rule evaluate_run:
        input:
            test=f"{ROOT}/data/{{domain}}/test.jsonl",
            run=f"{RUN_DIR}/run.json",
            config=RESOLVED_CONFIG,
        output:
            EVAL_RUN,
        log:
            f"{ROOT}/logs/eval/{CELL_LOG}/seed{{seed}}.log",
        conda:
            MODEL_ENV
        threads: 1
        resources:
            gpu=JOB_GPUS,
        params:
            checkpoint=final_checkpoint,
        shell:
            "python -m edco evaluate --config {input.config} --domain {wildcards.domain}"
            " --model {wildcards.model} --checkpoint {params.checkpoint} --out {output} > {log} 2>&1"
