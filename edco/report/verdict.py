"""Does a strategy beat random across the grid, with confidence? (the CPU study's question)

    python -m edco table --config config/cpu_study.yaml --verdict   # tables/verdict.* + plots/verdict.png

Per paradigm x evaluation mode x strategy: accuracy minus ``random``'s, per domain x model
cell and pooled over every cell (the mean of the cells' differences), with a 95 % interval
and p from ``edco.report.stats.grid_bootstrap``, which resamples the test questions *and* the
seeds. The family of pooled comparisons (paradigms x modes x strategies) is Holm-corrected: a
strategy "beats random" when its pooled difference is positive at Holm-adjusted p < 0.05.
The pool is the grid's own cells (fixed effects): it says "on these domains and models",
not "on domains in general".
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

import edco.report.load as load
from edco import layout
from edco.report.figures import save
from edco.report.plots import plot_verdict
from edco.report.render import Section, estimate, fmt, prose, write_table
from edco.report.stats import ALL_CELLS, ALPHA, cell_matrices, grid_bootstrap, holm


def verdict_frame(questions: pd.DataFrame, iterations: int = 10_000) -> pd.DataFrame:
    """One row per (paradigm, mode, strategy, cell) with the cell's diff/low/high/p against
    random, plus one ``all cells`` row per (paradigm, mode, strategy) with the pooled test,
    ``p_holm`` and the per-cell tally; pooled rows first. ``questions``: load.questions."""
    matrices = cell_matrices(questions)
    rows, pooled = [], []
    families = dict.fromkeys((p, mode, s) for _, _, p, s, mode in matrices if s != "random")
    for paradigm, mode, strategy in families:
        pairs, cell_rows = [], []
        for domain, model, p, s, m in matrices:
            if (p, s, m) != (paradigm, strategy, mode) or (domain, model, p, "random", m) not in matrices:
                continue
            a, b = matrices[(domain, model, p, s, m)], matrices[(domain, model, p, "random", m)]
            pairs.append((a, b))
            cell_rows.append({"paradigm": paradigm, "mode": mode, "strategy": strategy, "domain": domain,
                              "model": model, "accuracy": a.mean(), "random": b.mean(),
                              **grid_bootstrap([(a, b)], iterations)})
        if not cell_rows:
            continue
        pooled.append({"paradigm": paradigm, "mode": mode, "strategy": strategy, "domain": ALL_CELLS,
                       "model": ALL_CELLS, "accuracy": sum(r["accuracy"] for r in cell_rows) / len(cell_rows),
                       "random": sum(r["random"] for r in cell_rows) / len(cell_rows),
                       **grid_bootstrap(pairs, iterations),
                       "cells_better": sum(r["diff"] > 0 and r["p"] < ALPHA for r in cell_rows),
                       "cells_worse": sum(r["diff"] < 0 and r["p"] < ALPHA for r in cell_rows),
                       "cells": len(cell_rows)})
        rows += cell_rows
    for row, adjusted in zip(pooled, holm([r["p"] for r in pooled])):
        row["p_holm"] = adjusted
        row["verdict"] = verdict_text(row)
    return pd.DataFrame(pooled + rows)


def verdict_text(row: dict) -> str:
    """One phrase: beats / worse than random (Holm-adjusted); a lead when only the uncorrected
    p is below 0.05; otherwise no difference shown, with the interval that bounds it."""
    if row["p_holm"] < ALPHA:
        return "beats random" if row["diff"] > 0 else "worse than random"
    if row["p"] < ALPHA:
        side = "above" if row["diff"] > 0 else "below"
        return (f"a lead, not a result: {side} random at p = {fmt(row['p'], '.2g')} uncorrected, "
                f"p = {fmt(row['p_holm'], '.2g')} after Holm")
    return (f"no difference shown (the 95 % interval bounds it to [{fmt(row['low'], '+.3f')}, "
            f"{fmt(row['high'], '+.3f')}])")


LEGEND = prose("""
Accuracy minus random's, on the same test questions. Δ [95 % interval] and p come from a
bootstrap that resamples the test questions and each strategy's seeds
(edco.report.stats.grid_bootstrap); 'all cells' pools every domain × model cell of the grid
(mean of the cells' Δ). p (Holm) corrects the pooled comparisons of this table for their number;
a strategy beats random when that is < 0.05 and Δ > 0. Cells better / worse count the cells
whose own Δ is positive / negative at uncorrected p < 0.05. The pool is this grid's cells: it
speaks for these domains and models, not for domains in general.
""")


def verdict_text_frame(frame: pd.DataFrame) -> pd.DataFrame:
    """Text cells: the pooled rows with Holm, tally and verdict; the cell rows with their cell."""
    out = frame[["paradigm", "mode", "strategy"]].copy()
    if "p_holm" not in frame:
        out.insert(3, "cell", frame["domain"] + " · " + frame["model"])
    out["accuracy"] = frame["accuracy"].map(lambda v: fmt(v, ".3f"))
    out["random"] = frame["random"].map(lambda v: fmt(v, ".3f"))
    out["Δ vs random"] = [estimate(d, lo, hi, bounds="+.3f") for d, lo, hi in
                          zip(frame["diff"], frame["low"], frame["high"])]
    out["p"] = frame["p"].map(lambda v: fmt(v, ".2g"))
    if "p_holm" in frame:
        out["p (Holm)"] = frame["p_holm"].map(lambda v: fmt(v, ".2g"))
        out["cells better / worse"] = [f"{b:.0f} / {w:.0f} of {n:.0f}" for b, w, n in
                                       zip(frame["cells_better"], frame["cells_worse"], frame["cells"])]
        out["verdict"] = frame["verdict"]
    return out


def write_verdict(config: dict, iterations: int = 10_000) -> list[Path]:
    """tables/verdict.* and plots/verdict.png."""
    frame = verdict_frame(load.questions(load.evaluations(config, base=False)), iterations)
    pooled, cells = frame[frame["domain"] == ALL_CELLS], frame[frame["domain"] != ALL_CELLS]
    sections = [Section("Pooled over all cells", verdict_text_frame(pooled)),
                Section("Per cell", verdict_text_frame(cells.drop(columns=["p_holm", "verdict", "cells_better",
                                                                             "cells_worse", "cells"])))]
    title = f"Does a strategy beat random? — run `{config['run']}`, {len(config['seeds'])} seeds"
    paths = write_table(config["run"], "verdict", title, frame, sections, LEGEND)
    return paths + save(plot_verdict(frame, config["run"]), layout.plots_dir(config["run"]) / "verdict")
