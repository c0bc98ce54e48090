# Base models: a tiny model is built and base-pretrained once per architecture and shared
# by every run; a hub model only gets a manifest naming its id.


def base_model_inputs(wildcards):
    if CFG["models"][wildcards.model]["source"] != "tiny":
        return []
    # The tokenizer is trained on training text only (never a test split).
    general = [f"{ROOT}/data/general/train.jsonl"] if SYNTHETIC else []
    return general + [str(layout.data_file(RUN, d, "train")) for d in GRID["domains"]]


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
