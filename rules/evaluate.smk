# Evaluation with lm-eval on the test split: the base model (round 0) and every run.


rule evaluate_base:
    output:
        f"{ROOT}/eval/{{domain}}/{{model}}/base.json",
    input:
        test=f"{ROOT}/data/{{domain}}/test.jsonl",
        model=f"{ROOT}/models/{{model}}/manifest.json",
        config=RESOLVED_CONFIG,
    log:
        f"{ROOT}/logs/eval/{{domain}}/{{model}}/base.log",
    threads: 1
    conda:
        "../envs/edco.yaml"
    shell:
        "python -m edco evaluate --config {input.config} --domain {wildcards.domain}"
        " --model {wildcards.model} --checkpoint base --out {output} > {log} 2>&1"


rule evaluate_run:
    output:
        f"{ROOT}/eval/{{domain}}/{{model}}/{{paradigm}}/{{strategy}}/seed{{seed}}.json",
    input:
        test=f"{ROOT}/data/{{domain}}/test.jsonl",
        run=f"{ROOT}/runs/{{domain}}/{{model}}/{{paradigm}}/{{strategy}}/seed{{seed}}/run.json",
        config=RESOLVED_CONFIG,
    params:
        checkpoint=final_checkpoint,
    log:
        f"{ROOT}/logs/eval/{{domain}}/{{model}}/{{paradigm}}/{{strategy}}/seed{{seed}}.log",
    threads: 1
    conda:
        "../envs/edco.yaml"
    shell:
        "python -m edco evaluate --config {input.config} --domain {wildcards.domain}"
        " --model {wildcards.model} --checkpoint {params.checkpoint} --out {output} > {log} 2>&1"
