# Helpers of rules/report.smk and rules/estimator.smk (Snakemake lint keeps functions out of
# files with rules). Which tables, plots and benchmarks a run has, and what the HTML report shows.
# Which tables and plots a run has comes from edco.layout (plot_names, has_verdict): the
# controller's environment has no pandas, so nothing here imports edco.report.


# What `snakemake --report` shows, in which section (sections sort by name, hence the
# numbers). Captions are report/*.rst, relative to rules/ where the report rules are defined.
ACCURACY, COST, DYNAMICS, ESTIMATOR = "1 Accuracy", "2 Cost", "3 Curriculum dynamics", "4 Estimator"
CONFIGURATION = "5 Configuration"
# plot name -> (caption file, category, subcategory); training_<paradigm> -> TRAINING_SECTION
PLOT_SECTIONS = {
    "accuracy": ("accuracy", ACCURACY, "1 per strategy"),
    "accuracy_per_level": ("accuracy_per_level", ACCURACY, "2 per difficulty level"),
    "cost": ("cost_plot", COST, "1 wall-clock"),
    "accuracy_vs_time": ("accuracy_vs_time", COST, "2 accuracy vs wall-clock"),
    "entropy": ("entropy", DYNAMICS, "1 scores per round"),
    "new_samples": ("new_samples", DYNAMICS, "2 new samples per round"),
    "estimator_k": ("estimator_k", ESTIMATOR, "prefix length K"),
}
TRAINING_SECTION = ("training", DYNAMICS, "3 training curves")
VERDICT_SECTION = dict(category=ACCURACY, subcategory="0 does a strategy beat random")

# Snakemake's `report(...)` flag; a line may not start with the word `report` (a keyword).
in_report = report


def table_files(name):
    """tables/<name>.{csv,md,tex,html}."""
    return [str(layout.table_file(RUN, name, fmt)) for fmt in layout.TABLE_FORMATS]


def reported_table(name, category, subcategory):
    """tables/<name>.*, its HTML in the report (the report shows each table once)."""
    return [
        (
            in_report(
                path,
                caption=f"../report/{name}.rst",
                category=category,
                subcategory=subcategory,
                labels={"item": f"{name} table", "format": "table (HTML)"},
            )
            if path.endswith(".html")
            else path
        )
        for path in table_files(name)
    ]


def reported_plot(name, caption, category, subcategory):
    """plots/<name>.png in the report."""
    return in_report(
        str(layout.plot_file(RUN, name)),
        caption=f"../report/{caption}.rst",
        category=category,
        subcategory=subcategory,
        labels={"item": name, "format": "figure (PNG)"},
    )


def reported_plots():
    return [reported_plot(name, *PLOT_SECTIONS.get(name, TRAINING_SECTION)) for name in layout.plot_names(CFG)]


def reported_verdict():
    """The verdict table and its forest plot in the report's first section (empty when it does not apply)."""
    if not layout.has_verdict(CFG):
        return []
    return reported_table("verdict", **VERDICT_SECTION) + [reported_plot("verdict", "verdict_plot", **VERDICT_SECTION)]


def main_table_outputs():
    """The table rule writes the main table, the per-level table and every per-question answer."""
    return table_files("main") + table_files("levels") + [str(layout.questions_file(RUN))]


def verdict_outputs():
    return table_files("verdict") + [str(layout.plot_file(RUN, "verdict"))] if layout.has_verdict(CFG) else []


def estimator_table_outputs():
    return table_files("estimator") if CFG["estimator_bench"]["enabled"] else []


def report_outputs():
    """What the `all` target adds for the report: the cost, compute and verdict tables, every plot, the config page."""
    plots = [str(layout.plot_file(RUN, name)) for name in layout.plot_names(CFG)]
    return table_files("cost") + table_files("compute") + verdict_outputs() + plots + [str(layout.config_page(RUN))]


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
