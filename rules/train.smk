# One job = one run: every curriculum round of (domain, model, paradigm, strategy, seed).


rule train:
    output:
        f"{ROOT}/runs/{{domain}}/{{model}}/{{paradigm}}/{{strategy}}/seed{{seed}}/run.json",
    input:
        train=f"{ROOT}/data/{{domain}}/train.jsonl",
        model=f"{ROOT}/models/{{model}}/manifest.json",
        config=RESOLVED_CONFIG,
    log:
        f"{ROOT}/logs/train/{{domain}}/{{model}}/{{paradigm}}/{{strategy}}/seed{{seed}}.log",
    benchmark:
        f"{ROOT}/benchmarks/train/{{domain}}/{{model}}/{{paradigm}}/{{strategy}}/seed{{seed}}.tsv"
    threads: 1
    conda:
        "../envs/edco.yaml"
    shell:
        "python -m edco train --config {input.config} --domain {wildcards.domain}"
        " --model {wildcards.model} --paradigm {wildcards.paradigm}"
        " --strategy {wildcards.strategy} --seed {wildcards.seed} > {log} 2>&1"
