"""Does a strategy beat random across the grid, with confidence? (the CPU study's question)

    python -m edco table --config config/cpu_study.yaml --verdict   # tables/verdict.*
    python -m edco plots --config config/cpu_study.yaml --only verdict   # its forest plot, from tables/verdict.csv

Per paradigm x evaluation mode x strategy: accuracy minus ``random``'s, per domain x model
cell and pooled over every cell, two ways: the fixed-effects pool (the mean of the cells'
differences: "on these domains and models") and the random-effects pool (Hartung-Knapp over
the cells: "on cells like these"). Intervals and p treat both the seeds and the test
questions as samples (edco.report.stats.seeds_questions_test); each pool's family of
comparisons is Holm-corrected. The numbers come from edco.report.stats.verdict_frame, which
``verdict_from_questions`` recomputes from tables/questions.parquet alone.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

import edco.report.load as load
from edco.report.render import Section, estimate, fmt, prose, write_table
from edco.report.stats import ALL_CELLS, verdict_frame

LEGEND = prose("""
Accuracy minus random's, on the same test questions and seeds. Δ [95 % interval] and p treat
the seeds and the test questions as samples: the variance is what a bootstrap over seeds
(inflated by S/(S-1)) and over questions converges to, with t tails (Welch-Satterthwaite degrees
of freedom: S - 1 when seeds dominate). 'all cells' pools every domain × model cell of the
grid. Fixed effects = the mean of the cells' Δ (seeds paired across cells, questions shared by
the cells of a domain): it speaks for these domains and models. Random effects = Hartung-Knapp
over the cells (DerSimonian-Laird τ², t tails on cells - 1 degrees of freedom): it treats the
cells as a sample of cells and speaks for cells like these; with few cells its interval is
wide. p (Holm) corrects each pool's comparisons of this table for their number; a strategy
beats random when the fixed-effects p (Holm) is < 0.05 and Δ > 0, and the verdict says whether
the random-effects pool agrees. Cells better / worse count the cells whose own Δ is positive /
negative at uncorrected p < 0.05. Reference random_matched (where the grid runs it) is random
trained with compute_ratio x the optimiser steps, at least the costliest strategy's total compute
(scoring included): beating it is beating random at equal compute. Holm runs over every pooled row.
In one word: difference (fixed-effects p (Holm) < 0.05), equivalent (not a difference, and the
95 % interval inside ±0.05 accuracy, the margin the third CPU study pre-registered) or undecided
(neither; the interval it spans is given).
""")


def pooled_text(frame: pd.DataFrame) -> pd.DataFrame:
    """Text cells of the pooled rows: both pools with Holm, the tally and the verdict."""
    out = frame[["paradigm", "mode", "strategy", "reference"]].copy()
    out["accuracy"] = frame["accuracy"].map(lambda v: fmt(v, ".3f"))
    out["reference accuracy"] = frame["reference_accuracy"].map(lambda v: fmt(v, ".3f"))
    out["Δ fixed effects"] = [estimate(*v, bounds="+.3f") for v in zip(frame["diff"], frame["low"], frame["high"])]
    out["p fixed (Holm)"] = [f"{fmt(p, '.2g')} ({fmt(h, '.2g')})" for p, h in zip(frame["p"], frame["p_holm"])]
    out["Δ random effects"] = [estimate(*v, bounds="+.3f") for v in
                               zip(frame["re_diff"], frame["re_low"], frame["re_high"])]
    out["p random (Holm)"] = [f"{fmt(p, '.2g')} ({fmt(h, '.2g')})" for p, h in zip(frame["re_p"], frame["re_p_holm"])]
    out["τ"] = frame["re_tau2"].map(lambda v: fmt(v ** 0.5, ".3f"))
    out["cells better / worse"] = [f"{b:.0f} / {w:.0f} of {n:.0f}" for b, w, n in
                                   zip(frame["cells_better"], frame["cells_worse"], frame["cells"])]
    out["verdict"] = frame["verdict"]
    out["in one word"] = frame["word"]
    return out


def cell_text(frame: pd.DataFrame) -> pd.DataFrame:
    """Text cells of the per-cell rows."""
    out = frame[["paradigm", "mode", "strategy", "reference"]].copy()
    out["cell"] = frame["domain"] + " · " + frame["model"]
    out["accuracy"] = frame["accuracy"].map(lambda v: fmt(v, ".3f"))
    out["reference accuracy"] = frame["reference_accuracy"].map(lambda v: fmt(v, ".3f"))
    out["Δ vs reference"] = [estimate(*v, bounds="+.3f") for v in zip(frame["diff"], frame["low"], frame["high"])]
    out["p"] = frame["p"].map(lambda v: fmt(v, ".2g"))
    return out


def write_verdict(config: dict) -> list[Path]:
    """tables/verdict.* (its CSV is what plots/verdict.png draws)."""
    frame = verdict_frame(load.questions(load.evaluations(config, base=False)))
    pooled, cells = frame[frame["domain"] == ALL_CELLS], frame[frame["domain"] != ALL_CELLS]
    sections = [Section("Pooled over all cells: fixed and random effects", pooled_text(pooled)),
                Section("Per cell", cell_text(cells))]
    title = f"Does a strategy beat random? — run `{config['run']}`, {len(config['seeds'])} seeds"
    return write_table(config["run"], "verdict", title, frame, sections, LEGEND)
