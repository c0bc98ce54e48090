# The base model's evaluation (round 0, no fine-tuning): every domain in one job per base model.
# Fine-tuned runs are evaluated by the train job that trains them (rules/train.smk).


rule evaluate_base:
    input:
        tests=expand(str(layout.data_file(RUN, "{domain}", "test")), domain=GRID["domains"]),
        model=str(layout.model_manifest(RUN, "{model}", "{base}")),
        config=RESOLVED_CONFIG,
    output:
        expand(eval_json("{domain}", "{model}", base="{base}"), domain=GRID["domains"], allow_missing=True),
    log:
        str(layout.log_file(RUN, "eval", "base", "{model}", "{base}")),
    conda:
        MODEL_ENV
    threads: THREADS
    resources:
        gpu=JOB_GPUS,
    params:
        domains=" ".join(f"--domain {d}" for d in GRID["domains"]),
        lock=gpu_lock(JOB_GPUS),
    shell:
        "{params.lock}python -m edco evaluate --config {input.config} {params.domains}"
        " --model {wildcards.model} --checkpoint base --base {wildcards.base} > {log} 2>&1"
