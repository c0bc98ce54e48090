# Tables and plots from every evaluation and run of the grid, and what `snakemake --report`
# shows: each table once, as HTML (its CSV, Markdown and LaTeX stay beside it in tables/), and
# each plot as PNG, with a caption each (report/*.rst). Which tables and plots there are, what
# each reads and where the report shows it: edco.report.registry (helpers in report_common.smk).
#
#   snakemake --cores 1 --configfile config/smoke.yaml --report results/smoke/report.html


report: "../report/workflow.rst"


localrules:
    questions,
    table,
    plots,
    config_page,


wildcard_constraints:
    table="|".join(registry.TABLES),


rule questions:
    input:
        all_eval_outputs(),
        config=RESOLVED_CONFIG,
    output:
        str(layout.questions_file(RUN)),
    log:
        str(layout.log_file(RUN, "report", "questions")),
    conda:
        LIGHT_ENV
    shell:
        "python -m edco table --config {input.config} --questions > {log} 2>&1"


# Every table of the registry: tables/<name>.* from `python -m edco table --<name>`.
rule table:
    input:
        table_inputs,
        config=RESOLVED_CONFIG,
    output:
        reported_table_files(),
    log:
        str(layout.log_file(RUN, "report", "table_{table}")),
    conda:
        LIGHT_ENV
    params:
        caption=table_caption,
    shell:
        "python -m edco table --config {input.config} --{wildcards.table} > {log} 2>&1"


rule plots:
    input:
        plot_inputs(),
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
            category=registry.CONFIGURATION,
            labels={"item": "validated config", "format": "YAML (HTML)"},
        ),
    log:
        str(layout.log_file(RUN, "report", "config_page")),
    conda:
        LIGHT_ENV
    shell:
        "python -m edco table --config {input.config} --config-page > {log} 2>&1"
