# Tables (and, later, plots and the HTML report) from every evaluation of the grid.


localrules:
    table,
    estimator_table,


rule table:
    output:
        main_table_outputs(),
    input:
        all_eval_outputs(),
        config=RESOLVED_CONFIG,
    log:
        f"{ROOT}/logs/report/table.log",
    conda:
        "../envs/edco.yaml"
    shell:
        "python -m edco table --config {input.config} > {log} 2>&1"


rule estimator_table:
    output:
        estimator_table_outputs(),
    input:
        estimator_bench_outputs(),
        config=RESOLVED_CONFIG,
    log:
        f"{ROOT}/logs/report/estimator_table.log",
    conda:
        "../envs/edco.yaml"
    shell:
        "python -m edco table --config {input.config} --estimator > {log} 2>&1"
