# The estimator benchmark (the paper's claims, docs/design.md#entropy-estimator): per domain x model, on the base model and (with
# estimator_bench.checkpoint) on the first seed of the grid's first run (a fine-tuned model);
# rules/report.smk merges them into tables/estimator.* and plots/estimator_k.png.


rule estimator_bench:
    input:
        model=bench_base_model,
        train=str(layout.data_file(RUN, "{domain}", "train")),
        run=bench_checkpoint_run,
        config=RESOLVED_CONFIG,
    output:
        bench_csv("{domain}", "{model}"),
    log:
        str(layout.log_file(RUN, "estimator", "{domain}", "{model}")),
    benchmark:
        str(layout.benchmark_file(RUN, "estimator", "{domain}", "{model}"))
    conda:
        MODEL_ENV
    threads: THREADS
    resources:
        gpu=JOB_GPUS,
    params:
        checkpoint=bench_checkpoint,
        options=bench_options,
        out_dir=str(layout.estimator_dir(RUN, "{domain}", "{model}")),
        lock=gpu_lock(JOB_GPUS),
    shell:
        "{params.lock}python -m edco estimator-bench --config {input.config} --domain {wildcards.domain}"
        " --model {wildcards.model} {params.checkpoint} --out-dir {params.out_dir}"
        " {params.options} --no-progress > {log} 2>&1"
