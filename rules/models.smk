# Base models: a tiny model is built and base-pretrained once per architecture and shared
# by every run; a hub model only gets a manifest naming its id.


rule base_model:
    input:
        base_model_inputs,
        config=RESOLVED_CONFIG,
    output:
        str(layout.model_manifest(RUN, "{model}")),
    log:
        str(layout.log_file(RUN, "models", "{model}")),
    benchmark:
        str(layout.benchmark_file(RUN, "models", "{model}"))
    conda:
        MODEL_ENV
    threads: THREADS
    shell:
        "python -m edco base-model --config {input.config} --model {wildcards.model} > {log} 2>&1"
