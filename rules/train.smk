# Training: every curriculum round of (domain, model, paradigm, strategy, seed).
# compute.job = run: one job per run (and one evaluate_run job per run, rules/evaluate.smk);
# compute.job = cell: one job trains and evaluates all seeds of a cell in one process;
# compute.job = block: one job trains and evaluates every strategy and seed of a
# (domain, model, paradigm) in one process. Rerunning a job whose runs are finished only
# re-evaluates them: the trainer resumes each run after its last round (edco/trainer.py).

RUN_DIR = f"{ROOT}/runs/{{domain}}/{{model}}/{{paradigm}}/{{strategy}}/seed{{seed}}"
EVAL_RUN = f"{ROOT}/eval/{{domain}}/{{model}}/{{paradigm}}/{{strategy}}/seed{{seed}}.json"
CELL_LOG = "{domain}/{model}/{paradigm}/{strategy}"


if CFG["compute"]["job"] == "run":

    rule train:
        input:
            train=f"{ROOT}/data/{{domain}}/train.jsonl",
            model=f"{ROOT}/models/{{model}}/manifest.json",
            config=RESOLVED_CONFIG,
        output:
            f"{RUN_DIR}/run.json",
        log:
            f"{ROOT}/logs/train/{CELL_LOG}/seed{{seed}}.log",
        benchmark:
            f"{ROOT}/benchmarks/train/{CELL_LOG}/seed{{seed}}.tsv"
        conda:
            MODEL_ENV
        threads: 1
        resources:
            gpu=train_gpus,
        params:
            launcher=edco_launcher,
        shell:
            "{params.launcher} train --config {input.config} --domain {wildcards.domain}"
            " --model {wildcards.model} --paradigm {wildcards.paradigm}"
            " --strategy {wildcards.strategy} --seed {wildcards.seed} > {log} 2>&1"

elif CFG["compute"]["job"] == "cell":

    rule train_cell:
        input:
            train=f"{ROOT}/data/{{domain}}/train.jsonl",
            test=f"{ROOT}/data/{{domain}}/test.jsonl",
            model=f"{ROOT}/models/{{model}}/manifest.json",
            config=RESOLVED_CONFIG,
        output:
            runs=expand(f"{RUN_DIR}/run.json", seed=CFG["seeds"], allow_missing=True),
            evals=expand(EVAL_RUN, seed=CFG["seeds"], allow_missing=True),
        log:
            f"{ROOT}/logs/train/{CELL_LOG}/cell.log",
        benchmark:
            f"{ROOT}/benchmarks/train/{CELL_LOG}/cell.tsv"
        conda:
            MODEL_ENV
        threads: 1
        resources:
            gpu=train_gpus,
        params:
            launcher=edco_launcher,
            seeds=" ".join(f"--seed {s}" for s in CFG["seeds"]),
        shell:
            "{params.launcher} train --config {input.config} --domain {wildcards.domain}"
            " --model {wildcards.model} --paradigm {wildcards.paradigm}"
            " --strategy {wildcards.strategy} {params.seeds} --evaluate > {log} 2>&1"

else:

    rule train_block:
        input:
            train=f"{ROOT}/data/{{domain}}/train.jsonl",
            test=f"{ROOT}/data/{{domain}}/test.jsonl",
            model=f"{ROOT}/models/{{model}}/manifest.json",
            config=RESOLVED_CONFIG,
        output:
            runs=expand(f"{RUN_DIR}/run.json", strategy=GRID["strategies"], seed=CFG["seeds"], allow_missing=True),
            evals=expand(EVAL_RUN, strategy=GRID["strategies"], seed=CFG["seeds"], allow_missing=True),
        log:
            f"{ROOT}/logs/train/{{domain}}/{{model}}/{{paradigm}}/block.log",
        benchmark:
            f"{ROOT}/benchmarks/train/{{domain}}/{{model}}/{{paradigm}}/block.tsv"
        conda:
            MODEL_ENV
        threads: 1
        resources:
            gpu=train_gpus,
        params:
            launcher=edco_launcher,
            strategies=" ".join(f"--strategy {s}" for s in GRID["strategies"]),
            seeds=" ".join(f"--seed {s}" for s in CFG["seeds"]),
        shell:
            "{params.launcher} train --config {input.config} --domain {wildcards.domain}"
            " --model {wildcards.model} --paradigm {wildcards.paradigm}"
            " {params.strategies} {params.seeds} --evaluate > {log} 2>&1"
