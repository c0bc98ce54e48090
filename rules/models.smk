# Base models: a tiny model is built and base-pretrained once per architecture and shared
# by every run; a hub model only gets a manifest naming its id.


rule base_model:
    input:
        base_model_inputs,
        config=RESOLVED_CONFIG,
    output:
        f"{ROOT}/models/{{model}}/manifest.json",
    log:
        f"{ROOT}/logs/models/{{model}}.log",
    benchmark:
        f"{ROOT}/benchmarks/models/{{model}}.tsv"
    conda:
        MODEL_ENV
    threads: 1
    shell:
        "python -m edco base-model --config {input.config} --model {wildcards.model} > {log} 2>&1"
