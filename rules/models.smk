# Base models: a tiny model is built and base-pretrained once per architecture and shared by
# every run (base "shared"), or once per run seed with pretrain.per_seed (base "seed<s>": the
# seeds then sample base models too); a GGUF is converted once; a hub model only gets a
# manifest naming its id.


rule base_model:
    input:
        base_model_inputs,
        config=RESOLVED_CONFIG,
    output:
        str(layout.model_manifest(RUN, "{model}", "{base}")),
    log:
        str(layout.log_file(RUN, "models", "{model}", "{base}")),
    benchmark:
        str(layout.benchmark_file(RUN, "models", "{model}", "{base}"))
    conda:
        MODEL_ENV
    threads: THREADS
    shell:
        "python -m edco base-model --config {input.config} --model {wildcards.model} --base {wildcards.base} > {log} 2>&1"
