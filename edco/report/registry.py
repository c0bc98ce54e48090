"""Every table and plot of a run, once: what writes it, what it reads, when a run has it, and
where ``snakemake --report`` shows it. ``python -m edco table`` / ``plots`` (edco/cli.py), the
report package and the workflow's one ``table`` rule and one ``plots`` rule (rules/report.smk)
all read these two lists, so a new table is

    1. a module of edco/report/ with a function ``write(config) -> list[Path]`` that writes
       tables/<name>.{csv,md,tex,html} (``render.write_table`` does the formats);
    2. one ``Table(...)`` line in ``TABLES`` below;
    3. its caption, report/<name>.rst (what the HTML report shows above it).

A plot is a ``plot_*`` function of edco/report/plots.py plus one ``Plot(...)`` line and its
caption. This module imports neither pandas nor the writers (it names them as text, imported
when one runs): the workflow's controller, which has no pandas, reads it to list the outputs.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from dataclasses import dataclass

from edco import layout
from edco.errors import UserFacingError

# --------------------------------------------------------------------------- what a table or plot reads
# Each becomes the files its Snakemake job waits for (rules/report_common.smk, report_inputs).
EVALUATIONS = "evaluations"  # eval/**.json: every run's and base model's evaluation
RUNS = "runs"  # runs/**/run.json: every run's rounds (timing, selections, training logs)
BENCH = "bench"  # estimator/<domain>/<model>/estimator.csv: the estimator benchmark's raw results
QUESTIONS = "questions"  # tables/questions.parquet: every evaluation's per-question answers


def table_input(name: str) -> str:
    """Another table's files as an input (a plot drawn from a table's CSV)."""
    return f"table:{name}"


# --------------------------------------------------------------------------- sections of the HTML report
# Sections sort by name, hence the numbers. (category, subcategory) of each table and plot.
ACCURACY, COST, DYNAMICS, ESTIMATOR = "1 Accuracy", "2 Cost", "3 Curriculum dynamics", "4 Estimator"
CONFIGURATION = "5 Configuration"
VERDICT = (ACCURACY, "0 does a strategy beat random")


def always(config: dict) -> bool:
    return True


def trains_grpo(config: dict) -> bool:
    """The grid trains GRPO (the rl paradigm)."""
    return "rl" in config["grid"]["paradigms"]


def bench_enabled(config: dict) -> bool:
    """The estimator benchmark is part of the run (estimator_bench.enabled)."""
    return bool(config["estimator_bench"]["enabled"])


@dataclass(frozen=True)
class Table:
    """tables/<name>.{csv,md,tex,html}, written by ``edco.report.<writer>`` (``module:function``,
    the function taking the config); the HTML in the report with caption report/<name>.rst."""

    name: str
    writer: str
    help: str
    reads: tuple[str, ...]
    section: tuple[str, str]
    applies: Callable[[dict], bool] = always


@dataclass(frozen=True)
class Plot:
    """plots/<name>.png (``{paradigm}`` in the name: one per paradigm of the grid), drawn by
    ``edco.report.plots.<function>(*inputs, run)``; ``inputs`` name the frames it takes
    (edco.report.plots.write_plots loads each once). The PNG in the report, caption report/<caption>.rst."""

    name: str
    function: str
    inputs: tuple[str, ...]
    reads: tuple[str, ...]
    caption: str
    section: tuple[str, str]
    applies: Callable[[dict], bool] = always

    def paradigm_of(self, name: str) -> str | None:
        """The paradigm of plot ``name`` of a ``{paradigm}`` entry (training_sft -> sft), else None."""
        head, marker, tail = self.name.partition("{paradigm}")
        return name[len(head): len(name) - len(tail)] if marker else None


# --------------------------------------------------------------------------- the registry
TABLES: dict[str, Table] = {t.name: t for t in (
    Table("main", "main:write_main_table", "accuracy per cell: mean ± sd, 95 % interval, a test vs random",
          (EVALUATIONS,), (ACCURACY, "1 per strategy")),
    Table("levels", "levels:write_levels", "accuracy per difficulty level, and each run's gain over its base model",
          (EVALUATIONS,), (ACCURACY, "2 per difficulty level")),
    Table("cost", "cost:write_cost_table", "wall-clock (scoring, selecting, training), tokens, budget check",
          (RUNS,), (COST, "1 wall-clock")),
    Table("compute", "compute:write_compute_table", "accuracy vs scoring + training compute, a verdict per cell",
          (EVALUATIONS, RUNS), (COST, "3 at equal compute")),
    Table("verdict", "verdict:write_verdict", "does a strategy beat random, pooled over the grid (needs random, "
          "another strategy and 2 seeds)", (EVALUATIONS,), VERDICT, layout.has_verdict),
    Table("rollouts", "rollouts:write_rollouts", "GRPO: share of zero-variance rollout groups and mean reward, vs random",
          (RUNS,), (DYNAMICS, "4 GRPO rollout groups"), trains_grpo),
    Table("estimator", "estimator:write_estimator_table", "the estimator benchmarks of the grid, merged",
          (BENCH,), (ESTIMATOR, "prefix length K"), bench_enabled),
)}

PLOTS: dict[str, Plot] = {p.name: p for p in (
    Plot("accuracy", "plot_accuracy", ("accuracies",), (EVALUATIONS,), "accuracy", (ACCURACY, "1 per strategy")),
    Plot("accuracy_vs_time", "plot_accuracy_vs_time", ("accuracies", "totals"), (EVALUATIONS, RUNS),
         "accuracy_vs_time", (COST, "2 accuracy vs wall-clock")),
    Plot("cost", "plot_cost", ("totals",), (RUNS,), "cost_plot", (COST, "1 wall-clock")),
    Plot("new_samples", "plot_new_samples", ("selections",), (RUNS,), "new_samples",
         (DYNAMICS, "2 new samples per round")),
    Plot("entropy", "plot_entropy", ("selections",), (RUNS,), "entropy", (DYNAMICS, "1 scores per round")),
    Plot("estimator_k", "plot_estimator_k", ("estimator", "aggregate"), (table_input("estimator"),), "estimator_k",
         (ESTIMATOR, "prefix length K"), bench_enabled),
    Plot("training_{paradigm}", "plot_training", ("steps", "paradigm"), (RUNS,), "training",
         (DYNAMICS, "3 training curves")),
    Plot("accuracy_per_level", "plot_levels", ("levels",), (EVALUATIONS,), "accuracy_per_level",
         (ACCURACY, "2 per difficulty level")),
    Plot("verdict", "plot_verdict", ("verdict",), (table_input("verdict"),), "verdict_plot", VERDICT,
         layout.has_verdict),
)}


# --------------------------------------------------------------------------- what a run has
def table_names(config: dict) -> list[str]:
    """The tables a run has, in registry order."""
    return [name for name, table in TABLES.items() if table.applies(config)]


def plots_of(config: dict) -> dict[str, Plot]:
    """plot name -> its registry entry, for the plots a run has (a ``{paradigm}`` plot once per
    paradigm). ``entropy`` is always there: which strategies score the pool is known from the
    runs' score files, not before (the figure says so when none did)."""
    out = {}
    for plot in PLOTS.values():
        if plot.applies(config):
            names = ([plot.name.format(paradigm=p) for p in config["grid"]["paradigms"]]
                     if "{paradigm}" in plot.name else [plot.name])
            out.update(dict.fromkeys(names, plot))
    return out


def plot_names(config: dict) -> list[str]:
    """The plots a run has (plots/<name>.png)."""
    return list(plots_of(config))


def table(name: str) -> Table:
    if name not in TABLES:
        raise UserFacingError(f"no table {name!r}; the tables: {', '.join(TABLES)}")
    return TABLES[name]


def writer(table_: Table) -> Callable[[dict], list]:
    """The table's write function, imported now (the report modules need pandas)."""
    module, function = table_.writer.split(":")
    return getattr(importlib.import_module(f"edco.report.{module}"), function)
