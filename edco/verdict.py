"""Does a strategy beat random across the grid, with confidence? (the CPU study's question)

    python -m edco table --config config/cpu_study.yaml --verdict   # tables/verdict.* + plots/verdict.*

Per paradigm x evaluation mode x strategy: accuracy minus ``random``'s, per domain x model
cell and pooled over every cell (the mean of the cells' differences), with a 95 % interval
and p from ``edco.stats.grid_bootstrap``, which resamples the test questions *and* the seeds.
The main table's paired bootstrap resamples questions only: right for "on these seeds", but
with a handful of seeds the seed-to-seed spread is usually the larger noise, so a question-only
p-value can call a difference that other seeds would not reproduce.

The family of pooled comparisons (paradigms x modes x strategies) is Holm-corrected: a
strategy "beats random" when its pooled difference is positive at Holm-adjusted p < 0.05.
The pool is the grid's own cells (fixed effects): it says "on these domains and models",
not "on domains in general".
"""

from __future__ import annotations

from edco import io, layout
from edco.report import _correct_matrix, _latex_escape, cell_evaluations, html_page, latex_table, markdown, table_paths
from edco.stats import grid_bootstrap, holm

ALPHA = 0.05
ALL_CELLS = "all cells"


def applies(config: dict) -> bool:
    """The verdict needs random in the grid, another strategy, and at least two seeds."""
    strategies = config["grid"]["strategies"]
    return "random" in strategies and len(strategies) > 1 and len(config["seeds"]) >= 2


def _cell_arrays(config: dict, domain: str, model: str, paradigm: str, strategy: str):
    """{mode: (seeds x questions) 0/1 array} of one cell, questions sorted by id."""
    evals = cell_evaluations(config, domain, model, paradigm, strategy)
    arrays = {}
    for mode in evals[0]["summary"]:
        ids = sorted(q["id"] for q in evals[0]["questions"] if mode in q)
        arrays[mode] = _correct_matrix(evals, mode, ids)
    return arrays


def verdict_frame(config: dict, iterations: int = 10_000):
    """One row per (paradigm, mode, strategy, cell) with the cell's diff/low/high/p against
    random, plus one ``all cells`` row per (paradigm, mode, strategy) with the pooled test,
    ``p_holm`` and the per-cell tally; pooled rows first."""
    import pandas as pd

    grid = config["grid"]
    rows, pooled = [], []
    for paradigm in grid["paradigms"]:
        arrays = {(d, m, s): _cell_arrays(config, d, m, paradigm, s)
                  for d in grid["domains"] for m in grid["models"] for s in grid["strategies"]}
        modes = list(arrays[(grid["domains"][0], grid["models"][0], "random")])
        for mode in modes:
            for strategy in (s for s in grid["strategies"] if s != "random"):
                pairs, cell_rows = [], []
                for domain in grid["domains"]:
                    for model in grid["models"]:
                        a, b = arrays[(domain, model, strategy)][mode], arrays[(domain, model, "random")][mode]
                        pairs.append((a, b))
                        cell_rows.append({"paradigm": paradigm, "mode": mode, "strategy": strategy, "domain": domain,
                                          "model": model, "accuracy": a.mean(), "random": b.mean(),
                                          **grid_bootstrap([(a, b)], iterations)})
                better = sum(r["diff"] > 0 and r["p"] < ALPHA for r in cell_rows)
                worse = sum(r["diff"] < 0 and r["p"] < ALPHA for r in cell_rows)
                pooled.append({"paradigm": paradigm, "mode": mode, "strategy": strategy, "domain": ALL_CELLS,
                               "model": ALL_CELLS,
                               "accuracy": sum(r["accuracy"] for r in cell_rows) / len(cell_rows),
                               "random": sum(r["random"] for r in cell_rows) / len(cell_rows),
                               **grid_bootstrap(pairs, iterations), "cells_better": better, "cells_worse": worse,
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
        return (f"a lead, not a result: {side} random at p = {row['p']:.2g} uncorrected, "
                f"p = {row['p_holm']:.2g} after Holm")
    return f"no difference shown (the 95 % interval bounds it to [{row['low']:+.3f}, {row['high']:+.3f}])"


LEGEND = ("Accuracy minus random's, on the same test questions. Δ [95 % interval] and p come from a bootstrap that "
          "resamples the test questions and each strategy's seeds (edco.stats.grid_bootstrap); 'all cells' pools every "
          "domain × model cell of the grid (mean of the cells' Δ). p (Holm) corrects the pooled comparisons of this "
          "table for their number; a strategy beats random when that is < 0.05 and Δ > 0. Cells better / worse count "
          "the cells whose own Δ is positive / negative at uncorrected p < 0.05. The pool is this grid's cells: it "
          "speaks for these domains and models, not for domains in general.")


def _text(frame):
    out = frame[["paradigm", "mode", "strategy"]].copy()
    out["accuracy"] = frame["accuracy"].map(lambda v: f"{v:.3f}")
    out["random"] = frame["random"].map(lambda v: f"{v:.3f}")
    out["Δ vs random"] = [f"{d:+.3f} [{lo:+.3f}, {hi:+.3f}]" for d, lo, hi in
                          zip(frame["diff"], frame["low"], frame["high"])]
    out["p"] = frame["p"].map(lambda v: f"{v:.2g}")
    if "p_holm" in frame:
        out["p (Holm)"] = frame["p_holm"].map(lambda v: f"{v:.2g}")
        out["cells better / worse"] = [f"{b:.0f} / {w:.0f} of {n:.0f}" for b, w, n in
                                       zip(frame["cells_better"], frame["cells_worse"], frame["cells"])]
        out["verdict"] = frame["verdict"]
    else:
        out.insert(3, "cell", frame["domain"] + " · " + frame["model"])
    return out


def write_verdict(config: dict, iterations: int = 10_000) -> list:
    """tables/verdict.{csv,md,tex,html} and plots/verdict.{png,pdf}."""
    from edco.plots import plot_verdict

    frame = verdict_frame(config, iterations)
    pooled, cells = frame[frame["domain"] == ALL_CELLS], frame[frame["domain"] != ALL_CELLS]
    paths = table_paths(config["run"], "verdict")
    io.write_text(paths["csv"], frame.to_csv(index=False, float_format="%.6g"))
    title = f"Does a strategy beat random? — run `{config['run']}`, {len(config['seeds'])} seeds"
    sections = [("Pooled over all cells", _text(pooled)), ("Per cell", _text(cells.drop(columns=["p_holm", "verdict"],
                                                                                       errors="ignore")))]
    io.write_text(paths["md"], f"# {title}\n\n{LEGEND}\n\n" + "\n".join(
        f"## {heading}\n\n{markdown(table)}\n" for heading, table in sections))
    io.write_text(paths["tex"], "\n".join(latex_table(table, _latex_escape(f"{heading}. {LEGEND}"), f"tab:verdict-{i}")
                                          for i, (heading, table) in enumerate(sections)))
    io.write_text(paths["html"], html_page(title.replace("`", ""), [
        (heading, LEGEND if i == 0 else "", table) for i, (heading, table) in enumerate(sections)]))
    figures = plot_verdict(frame, layout.plots_dir(config["run"]) / "verdict", run=config["run"])
    return [paths[f] for f in ("csv", "md", "tex", "html")] + figures
