# Tables (and, later, plots and the HTML report) from every evaluation of the grid.


localrules:
    table,


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
