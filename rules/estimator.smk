# The estimator benchmark (DESIGN §1.1 claims): per domain x model, on the base model and on
# the first seed of the grid's first run (a fine-tuned model), then one merged table.


def bench_checkpoint_run(wildcards):
    """run.json of the fine-tuned model the benchmark also measures."""
    strategy = "random" if "random" in GRID["strategies"] else GRID["strategies"][0]
    return run_json(wildcards.domain, wildcards.model, GRID["paradigms"][0], strategy, CFG["seeds"][0])


def bench_checkpoint(wildcards):
    return os.path.join(os.path.dirname(bench_checkpoint_run(wildcards)), "final")


def bench_out_dir(wildcards):
    return f"{ROOT}/estimator/{wildcards.domain}/{wildcards.model}"


def bench_limit_args(wildcards):
    bench = CFG["estimator_bench"]
    limit = f"--limit {bench['limit']}" if bench["limit"] else ""
    return f"{limit} --repeats {bench['repeats']}"


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
