# Data: each domain's train/test split in the DESIGN §3 contract, validated on write.


rule data:
    input:
        config=RESOLVED_CONFIG,
    output:
        train=f"{ROOT}/data/{{domain}}/train.jsonl",
        test=f"{ROOT}/data/{{domain}}/test.jsonl",
    log:
        f"{ROOT}/logs/data/{{domain}}.log",
    conda:
        LIGHT_ENV
    shell:
        "python -m edco make-data --config {input.config} --domain {wildcards.domain} > {log} 2>&1"


rule general_data:
    input:
        config=RESOLVED_CONFIG,
    output:
        f"{ROOT}/data/general/train.jsonl",
    log:
        f"{ROOT}/logs/data/general.log",
    conda:
        LIGHT_ENV
    shell:
        "python -m edco make-data --config {input.config} --domain general > {log} 2>&1"
