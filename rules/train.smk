# Training and evaluation of the grid's runs: one rule, whose job size is compute.job
# (rules/common.smk, JOB_WILDCARDS): `run` = one job per run (a cluster runs them in
# parallel), `cell` = every seed of a strategy, `block` = every strategy and seed of a
# (domain, model, paradigm) in one process, which pays the ~10 s of torch/TRL/lm-eval imports
# once. A job trains its runs, then evaluates each on the test split. Rerunning a job whose
# runs are finished only re-evaluates them: the trainer resumes each run after its last
# finished round (edco/trainer), and starts over one trained under other settings.


rule train:
    input:
        train=str(layout.data_file(RUN, "{domain}", "train")),
        test=str(layout.data_file(RUN, "{domain}", "test")),
        models=train_job_models,
        config=RESOLVED_CONFIG,
    output:
        runs=per_train_job(run_json),
        evals=per_train_job(eval_json),
    log:
        str(layout.log_file(RUN, "train", *train_job_name())),
    benchmark:
        str(layout.benchmark_file(RUN, "train", *train_job_name()))
    conda:
        MODEL_ENV
    threads: THREADS
    resources:
        gpu=train_gpus,
    params:
        launcher=edco_launcher,
        runs=train_job_runs,
    shell:
        "{params.launcher} train --config {input.config} --domain {wildcards.domain}"
        " --model {wildcards.model} --paradigm {wildcards.paradigm} {params.runs} --evaluate > {log} 2>&1"
