# Helpers of rules/report.smk and rules/estimator.smk (Snakemake lint keeps functions out of
# files with rules); included once, by the Snakefile. Which tables and plots a run has, what each
# reads and where the HTML report shows it is edco.report.registry (no pandas: the controller's
# environment has none), read here for the one `table` rule and the `plots` rule.
from pathlib import Path

from edco.report import registry

# Snakemake's `report(...)` flag; a line may not start with the word `report` (a keyword).
in_report = report
REPORT_DIR = Path(workflow.basedir) / "report"  # captions: report/<name>.rst


def table_files(name):
    """tables/<name>.{csv,md,tex,html}."""
    return [str(layout.table_file(RUN, name, fmt)) for fmt in layout.TABLE_FORMATS]


def reported_table_files():
    """The `table` rule's outputs, tables/{table}.*: its HTML in the report, in the table's section
    of the registry, captioned by report/{table}.rst (through report/table.rst and params.caption:
    a caption file cannot carry a wildcard)."""
    return [
        (
            in_report(
                path,
                caption="../report/table.rst",
                category=lambda wildcards: registry.TABLES[wildcards.table].section[0],
                subcategory=lambda wildcards: registry.TABLES[wildcards.table].section[1],
                labels=lambda wildcards: {"item": f"{wildcards.table} table", "format": "table (HTML)"},
            )
            if path.endswith(".html")
            else path
        )
        for path in table_files("{table}")
    ]


def table_caption(wildcards):
    """report/<table>.rst, the caption the report shows above the table."""
    return (REPORT_DIR / f"{wildcards.table}.rst").read_text(encoding="utf-8")


def report_inputs(reads):
    """The files behind a registry entry's ``reads``: evaluations, runs, benchmarks, questions.parquet,
    another table."""
    files = []
    for source in reads:
        if source == registry.EVALUATIONS:
            files += all_eval_outputs()
        elif source == registry.RUNS:
            files += all_run_outputs()
        elif source == registry.BENCH:
            files += estimator_bench_outputs()
        elif source == registry.QUESTIONS:
            files.append(str(layout.questions_file(RUN)))
        else:
            files += table_files(source.removeprefix("table:"))
    return list(dict.fromkeys(files))


def table_inputs(wildcards):
    return report_inputs(registry.TABLES[wildcards.table].reads)


def plot_inputs():
    return report_inputs([source for plot in registry.plots_of(CFG).values() for source in plot.reads])


def reported_plots():
    """plots/<name>.png of every plot the run has, each in its section with its caption."""
    return [
        in_report(
            str(layout.plot_file(RUN, name)),
            caption=f"../report/{plot.caption}.rst",
            category=plot.section[0],
            subcategory=plot.section[1],
            labels={"item": name, "format": "figure (PNG)"},
        )
        for name, plot in registry.plots_of(CFG).items()
    ]


def report_outputs():
    """What the `all` target adds for the report: every table and plot the run has,
    questions.parquet, the config page."""
    tables = [path for name in registry.table_names(CFG) for path in table_files(name)]
    plots = [str(layout.plot_file(RUN, name)) for name in registry.plot_names(CFG)]
    return tables + [str(layout.questions_file(RUN))] + plots + [str(layout.config_page(RUN))]


# --------------------------------------------------------------------------- estimator benchmark
# It measures the base model and the first seed of the grid's first run (a fine-tuned model).
BENCH_RUN = layout.bench_run(CFG)  # (paradigm, strategy, seed) of the fine-tuned run it measures, or None


def bench_base_model(wildcards):
    """The base model it measures: the first seed's (as its fine-tuned run is the first seed's)."""
    return base_manifest(wildcards.model, SEEDS[0])


def bench_checkpoint_run(wildcards):
    """run.json of that run (written last: the run is complete); none without estimator_bench.checkpoint."""
    return run_json(wildcards.domain, wildcards.model, *BENCH_RUN) if BENCH_RUN else []


def bench_checkpoint(wildcards):
    """--checkpoint <that run's final model>, or nothing."""
    if not BENCH_RUN:
        return ""
    return f"--checkpoint {layout.run_dir(RUN, wildcards.domain, wildcards.model, *BENCH_RUN) / 'final'}"


def bench_options(wildcards):
    bench = CFG["estimator_bench"]
    limit = f"--limit {bench['limit']}" if bench["limit"] else ""
    return f"{limit} --repeats {bench['repeats']}"


def estimator_bench_outputs():
    return [bench_csv(d, m) for d in GRID["domains"] for m in GRID["models"]]


def bench_csv(domain, model):
    return str(layout.estimator_dir(RUN, domain, model) / "estimator.csv")
