# Tables and plots from every evaluation and run of the grid, and what `snakemake --report`
# shows: each table once, as HTML (its CSV, Markdown and LaTeX stay beside it in tables/), and
# each plot as PNG, with a caption each (report/*.rst).
#
#   snakemake --cores 1 --configfile config/smoke.yaml --report results/smoke/report.html


include: "report_common.smk"


report: "../report/workflow.rst"


localrules:
    table,
    cost_table,
    compute_table,
    verdict,
    estimator_table,
    plots,
    config_page,


rule table:
    input:
        all_eval_outputs(),
        config=RESOLVED_CONFIG,
    output:
        reported_table("main", ACCURACY, "1 per strategy"),
        reported_table("levels", ACCURACY, "2 per difficulty level"),
        str(layout.questions_file(RUN)),
    log:
        str(layout.log_file(RUN, "report", "table")),
    conda:
        LIGHT_ENV
    shell:
        "python -m edco table --config {input.config} > {log} 2>&1"


rule cost_table:
    input:
        all_run_outputs(),
        config=RESOLVED_CONFIG,
    output:
        reported_table("cost", COST, "1 wall-clock"),
    log:
        str(layout.log_file(RUN, "report", "cost_table")),
    conda:
        LIGHT_ENV
    shell:
        "python -m edco table --config {input.config} --cost > {log} 2>&1"


rule compute_table:
    input:
        all_eval_outputs(),
        all_run_outputs(),
        config=RESOLVED_CONFIG,
    output:
        reported_table("compute", COST, "3 at equal compute"),
    log:
        str(layout.log_file(RUN, "report", "compute_table")),
    conda:
        LIGHT_ENV
    shell:
        "python -m edco table --config {input.config} --compute > {log} 2>&1"


rule verdict:
    input:
        all_eval_outputs(),
        config=RESOLVED_CONFIG,
    output:
        reported_verdict(),
    log:
        str(layout.log_file(RUN, "report", "verdict")),
    conda:
        LIGHT_ENV
    shell:
        "python -m edco table --config {input.config} --verdict > {log} 2>&1"


rule estimator_table:
    input:
        estimator_bench_outputs(),
        config=RESOLVED_CONFIG,
    output:
        reported_table("estimator", ESTIMATOR, "prefix length K") if estimator_table_outputs() else [],
    log:
        str(layout.log_file(RUN, "report", "estimator_table")),
    conda:
        LIGHT_ENV
    shell:
        "python -m edco table --config {input.config} --estimator > {log} 2>&1"


rule plots:
    input:
        all_eval_outputs(),
        all_run_outputs(),
        estimator_table_outputs(),
        config=RESOLVED_CONFIG,
    output:
        reported_plots(),
    log:
        str(layout.log_file(RUN, "report", "plots")),
    conda:
        LIGHT_ENV
    shell:
        "python -m edco plots --config {input.config} > {log} 2>&1"


rule config_page:
    input:
        config=RESOLVED_CONFIG,
    output:
        in_report(
            str(layout.config_page(RUN)),
            caption="../report/config.rst",
            category=CONFIGURATION,
            labels={"item": "validated config", "format": "YAML (HTML)"},
        ),
    log:
        str(layout.log_file(RUN, "report", "config_page")),
    conda:
        LIGHT_ENV
    shell:
        "python -m edco table --config {input.config} --config-page > {log} 2>&1"
