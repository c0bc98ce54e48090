# Data: each domain's train/test split in the data contract (docs/design.md#data-contract), validated on write; the
# synthetic world adds the general split its base models pretrain on.


rule data:
    input:
        config=RESOLVED_CONFIG,
    output:
        train=str(layout.data_file(RUN, "{domain}", "train")),
        test=str(layout.data_file(RUN, "{domain}", "test")),
    log:
        str(layout.log_file(RUN, "data", "{domain}")),
    conda:
        LIGHT_ENV
    shell:
        "python -m edco make-data --config {input.config} --domain {wildcards.domain} > {log} 2>&1"


rule general_data:
    input:
        config=RESOLVED_CONFIG,
    output:
        str(layout.general_file(RUN)),
    log:
        str(layout.log_file(RUN, "data", "general")),
    conda:
        LIGHT_ENV
    shell:
        "python -m edco make-data --config {input.config} --domain general > {log} 2>&1"
