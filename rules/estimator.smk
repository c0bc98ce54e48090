# The estimator benchmark (DESIGN §1.1 claims): per domain x model, on the base model and on
# the first seed of the grid's first run (a fine-tuned model), then one merged table.


rule estimator_bench:
    input:
        model=f"{ROOT}/models/{{model}}/manifest.json",
        train=f"{ROOT}/data/{{domain}}/train.jsonl",
        run=bench_checkpoint_run,
        config=RESOLVED_CONFIG,
    output:
        f"{ROOT}/estimator/{{domain}}/{{model}}/estimator.csv",
    log:
        f"{ROOT}/logs/estimator/{{domain}}/{{model}}.log",
    benchmark:
        f"{ROOT}/benchmarks/estimator/{{domain}}/{{model}}.tsv"
    conda:
        MODEL_ENV
    threads: 1
    resources:
        gpu=JOB_GPUS,
    params:
        checkpoint=bench_checkpoint,
        extra=bench_limit_args,
        out_dir=bench_out_dir,
        script=os.path.join(workflow.basedir, "benchmarks", "estimator_bench.py"),
    shell:
        "python {params.script} --config {input.config} --domain {wildcards.domain}"
        " --model {wildcards.model} --checkpoint {params.checkpoint} --out-dir {params.out_dir}"
        " {params.extra} --no-progress > {log} 2>&1"
