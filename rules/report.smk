# Tables and plots from every evaluation and run of the grid, and what `snakemake --report`
# shows: HTML tables and PNG plots with a caption each (report/*.rst), CSVs to download.
#
#   snakemake --cores 1 --configfile config/smoke.yaml --report results/smoke/report.html

report: "../report/workflow.rst"


localrules:
    table,
    cost_table,
    compute_table,
    estimator_table,
    plots,
    config_page,


rule table:
    output:
        reported_table("main", ACCURACY, "1 per strategy"),
        reported_table("levels", ACCURACY, "2 per difficulty level"),
    input:
        all_eval_outputs(),
        config=RESOLVED_CONFIG,
    log:
        f"{ROOT}/logs/report/table.log",
    conda:
        "../envs/edco.yaml"
    shell:
        "python -m edco table --config {input.config} > {log} 2>&1"


rule cost_table:
    output:
        reported_table("cost", COST, "1 wall-clock"),
    input:
        all_run_outputs(),
        config=RESOLVED_CONFIG,
    log:
        f"{ROOT}/logs/report/cost_table.log",
    conda:
        "../envs/edco.yaml"
    shell:
        "python -m edco table --config {input.config} --cost > {log} 2>&1"


rule compute_table:
    output:
        reported_table("compute", COST, "3 at equal compute"),
    input:
        all_eval_outputs(),
        all_run_outputs(),
        config=RESOLVED_CONFIG,
    log:
        f"{ROOT}/logs/report/compute_table.log",
    conda:
        "../envs/edco.yaml"
    shell:
        "python -m edco table --config {input.config} --compute > {log} 2>&1"


rule estimator_table:
    output:
        reported_table("estimator", ESTIMATOR, "prefix length K") if estimator_table_outputs() else [],
    input:
        estimator_bench_outputs(),
        config=RESOLVED_CONFIG,
    log:
        f"{ROOT}/logs/report/estimator_table.log",
    conda:
        "../envs/edco.yaml"
    shell:
        "python -m edco table --config {input.config} --estimator > {log} 2>&1"


rule plots:
    output:
        reported_plots(),
    input:
        all_eval_outputs(),
        all_run_outputs(),
        estimator_table_outputs(),
        config=RESOLVED_CONFIG,
    log:
        f"{ROOT}/logs/report/plots.log",
    conda:
        "../envs/edco.yaml"
    shell:
        "python -m edco plots --config {input.config} > {log} 2>&1"


rule config_page:
    output:
        in_report(f"{ROOT}/config.html", caption="../report/config.rst", category=CONFIGURATION,
                  labels={"item": "validated config", "format": "YAML (HTML)"}),
    input:
        config=RESOLVED_CONFIG,
    log:
        f"{ROOT}/logs/report/config_page.log",
    conda:
        "../envs/edco.yaml"
    shell:
        "python -m edco table --config {input.config} --config-page > {log} 2>&1"
