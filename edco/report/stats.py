"""Statistics every table uses, on 0/1 correctness arrays of shape (seeds, questions):

- ``mean_ci``: a Student-t interval over seeds;
- ``seeds_questions_test``: THE test of a strategy against another (random, edco,
  random_matched) wherever a table shows a p-value or says "wins": one cell, or the fixed-effects
  pool of several cells. It treats both the seeds and the test questions as samples;
- ``hartung_knapp``: the random-effects pool over cells (cells as a sample of cells);
- ``holm``: a family of comparisons;
- ``verdict_frame`` / ``verdict_from_questions``: the whole verdict (per cell, pooled with
  fixed and random effects, Holm), from the per-question frame alone (tables/questions.parquet).

Why not a bootstrap over questions only: with a handful of seeds the seed-to-seed spread
(another base model, another curriculum draw) is usually the larger noise; a test that holds
the seeds fixed calls differences that other seeds would not reproduce (it rejected 28 % of
simulated null cells at 0.05 in tests/test_stats.py). Why not a plain bootstrap over seeds
either: resampling S seeds with replacement understates their variance by (S-1)/S and its
percentile interval has normal, not t, tails (9-10 % false positives with 5 seeds).
"""

from __future__ import annotations

import math
from collections.abc import Hashable, Sequence
from pathlib import Path

import numpy as np
import pandas as pd
from scipy import stats as scipy_stats

import edco.report.load as load
from edco.report.render import estimate, fmt

#: A difference is significant at p < ALPHA (two-sided) wherever a table says so.
ALPHA = 0.05
#: The ``domain`` / ``model`` of a verdict row pooled over every cell.
ALL_CELLS = "all cells"
#: The verdict compares every strategy with these: random, and (when the grid runs it) random
#: trained to at least the costliest strategy's compute (baselines/random_matched.py, issue 18).
REFERENCE = "random"
MATCHED = "random_matched"


def mean_ci(values: list[float], level: float = 0.95) -> tuple[float, float, float]:
    """(mean, low, high): Student-t interval over seeds; a single seed has no interval (nan)."""
    x = np.asarray(values, dtype=float)
    mean = float(x.mean())
    if len(x) < 2:
        return mean, math.nan, math.nan
    half = scipy_stats.t.ppf((1 + level) / 2, len(x) - 1) * x.std(ddof=1) / math.sqrt(len(x))
    return mean, mean - half, mean + half


# --------------------------------------------------------------------------- the test
def _t_summary(diff: float, parts: list[tuple[float, float]], level: float) -> dict:
    """Estimate, interval and two-sided p from variance components ``(variance, df)``: the
    variance is their sum, its degrees of freedom Welch-Satterthwaite's."""
    variance = sum(v for v, _ in parts)
    if variance == 0:  # no spread anywhere: the difference is exact (0 only when a equals b)
        return {"diff": diff, "low": diff, "high": diff, "p": 1.0 if diff == 0 else 0.0, "se": 0.0,
                "df": math.nan}
    df = variance ** 2 / sum(v ** 2 / d for v, d in parts if v > 0)
    se = math.sqrt(variance)
    half = scipy_stats.t.ppf((1 + level) / 2, df) * se
    return {"diff": diff, "low": diff - half, "high": diff + half,
            "p": float(2 * scipy_stats.t.sf(abs(diff) / se, df)), "se": se, "df": df}


def seeds_questions_test(cells: Sequence[tuple[np.ndarray, np.ndarray, Hashable]], level: float = 0.95) -> dict:
    """Strategy ``a`` against ``b`` over one or more cells ``(a, b, questions)``: ``a`` and ``b``
    are (seeds, questions) 0/1 arrays of one cell, seed s of ``a`` paired with seed s of ``b``
    (the same seed: the same base model, the same data order where the strategies share one),
    on the same questions; ``questions`` names the cell's test questions (cells of one domain
    share them). The effect is the mean over cells of accuracy(a) - accuracy(b).

    Its variance is what a bootstrap over seeds and over questions converges to, in closed
    form (no Monte Carlo error), each part corrected for the bootstrap's 1/n bias:
    - seeds: D_s = seed s's difference, averaged over the cells (so a seed shared by cells
      counts once); variance var(D)/S, which is the seed bootstrap's (S-1)/S var(D)/S
      inflated by S/(S-1); S - 1 degrees of freedom;
    - questions, per group of cells that share them: E_q = question q's difference averaged
      over seeds, summed over the group's cells / cells; variance var(E)/Q, Q - 1 df.
    The two parts count the seed x question noise twice, so the test errs on the safe side.
    The t tails take the Welch-Satterthwaite degrees of freedom of the sum: S - 1 when seeds
    dominate (the usual case with a handful of seeds), many when questions do. With one seed
    only the questions vary. Returns ``diff``, ``low``, ``high`` (95 %), ``p``, ``se``, ``df``.
    """
    seeds = {a.shape[0] for a, _, _ in cells}
    for a, b, _ in cells:
        if a.ndim != 2 or a.shape != b.shape:
            raise ValueError(f"paired arrays must share a (seeds, questions) shape, got {a.shape} and {b.shape}")
    if len(seeds) != 1:
        raise ValueError(f"every cell needs the same seeds, got {sorted(seeds)} seeds")
    n_seeds, n_cells = seeds.pop(), len(cells)
    differences = [np.asarray(a, dtype=float) - np.asarray(b, dtype=float) for a, b, _ in cells]
    parts = []
    if n_seeds > 1:
        per_seed = np.mean([d.mean(axis=1) for d in differences], axis=0)
        parts.append((per_seed.var(ddof=1) / n_seeds, n_seeds - 1))
    groups: dict[Hashable, list[np.ndarray]] = {}
    for d, (_, _, questions) in zip(differences, cells):
        groups.setdefault(questions, []).append(d.mean(axis=0))
    for key, per_question in groups.items():
        if len({len(e) for e in per_question}) != 1:
            raise ValueError(f"cells of question group {key!r} must be on the same questions")
        summed = np.sum(per_question, axis=0) / n_cells
        if len(summed) > 1:
            parts.append((summed.var(ddof=1) / len(summed), len(summed) - 1))
    diff = float(np.mean([d.mean() for d in differences]))
    return _t_summary(diff, parts, level)


def versus(a: np.ndarray, b: np.ndarray) -> dict:
    """One cell's ``a`` against ``b`` on the same questions and seeds (seeds_questions_test)."""
    return seeds_questions_test([(a, b, None)])


def hartung_knapp(estimates: Sequence[float], variances: Sequence[float], level: float = 0.95) -> dict:
    """Random-effects pool of per-cell estimates with their variances (cells as a sample of
    cells): DerSimonian-Laird between-cell variance ``tau2``, inverse-variance weights
    w = 1 / (v + tau2), mu = sum w y / sum w, and the Hartung-Knapp variance
    q / sum w with q = sum w (y - mu)^2 / (k - 1), t tails on k - 1 degrees of freedom.
    q is taken as max(1, q) (Knapp & Hartung 2003's ad hoc correction; Roever et al. 2015):
    plain HK is narrower than the fixed-effects interval whenever the cells agree better than
    their own variances say, which here (noisy per-cell variances, few cells) rejected 7.1 % of
    simulated null grids at 0.05; with the correction <= 6 % (tests/test_stats.py). A cell with
    no variance at all (two strategies that gave identical answers) would take all the weight:
    then every cell counts equally (HK is then the one-sample t-test of the cells' estimates).
    Returns ``diff``, ``low``, ``high``, ``p``, ``se``, ``df``, ``tau2``; NaN with one cell."""
    y, v = np.asarray(estimates, dtype=float), np.asarray(variances, dtype=float)
    k = len(y)
    if k < 2:
        return {"diff": float(y.mean()) if k else math.nan, "low": math.nan, "high": math.nan, "p": math.nan,
                "se": math.nan, "df": math.nan, "tau2": math.nan}
    tau2 = 0.0
    if (v > 0).all():
        w = 1 / v
        fixed = (w * y).sum() / w.sum()
        q = (w * (y - fixed) ** 2).sum()
        tau2 = max(0.0, (q - (k - 1)) / (w.sum() - (w ** 2).sum() / w.sum()))
    weighted = bool((v + tau2 > 0).all())
    w = 1 / (v + tau2) if weighted else np.ones(k)
    mu = float((w * y).sum() / w.sum())
    q = float((w * (y - mu) ** 2).sum() / (k - 1))
    variance = (max(1.0, q) if weighted else q) / float(w.sum())
    return {**_t_summary(mu, [(variance, k - 1)], level), "df": k - 1, "tau2": tau2}


def holm(p_values: list[float]) -> list[float]:
    """Holm–Bonferroni adjusted p-values (same order as given): controls the chance of any
    false 'beats random' across a family of comparisons, without Bonferroni's full price."""
    order = sorted(range(len(p_values)), key=lambda i: p_values[i])
    adjusted, running = [0.0] * len(p_values), 0.0
    for rank, i in enumerate(order):
        running = max(running, min(1.0, (len(p_values) - rank) * p_values[i]))
        adjusted[i] = running
    return adjusted


def pareto_front(accuracy: list[float], compute: list[float]) -> list[bool]:
    """True where no other point is at least as accurate and at most as costly, and better in one."""
    points = list(zip(accuracy, compute))
    return [not any(a >= acc and c <= cost and (a > acc or c < cost) for a, c in points) for acc, cost in points]


# --------------------------------------------------------------------------- per-question frames
def correct_matrix(rows: pd.DataFrame) -> np.ndarray:
    """(seeds x questions) 0/1 array of one cell's per-question rows (load.questions), seeds
    ascending, questions sorted by id: the same order for every cell of the same questions."""
    wide = rows.pivot_table(index="seed", columns="question_id", values="correct", aggfunc="first", sort=True)
    if wide.isna().any().any():
        raise ValueError("every seed of a cell must answer the same questions")
    return wide.to_numpy(dtype=float)


def cell_matrices(questions: pd.DataFrame) -> dict[tuple, np.ndarray]:
    """{(domain, model, paradigm, strategy, mode): (seeds x questions) 0/1 array} of every
    fine-tuned cell of a per-question frame (load.questions / tables/questions.parquet)."""
    tuned = questions[questions["strategy"] != "base"]
    return {keys: correct_matrix(group)
            for keys, group in tuned.groupby(["domain", "model", "paradigm", "strategy", "mode"], sort=False)}


# --------------------------------------------------------------------------- the verdict
def verdict_frame(questions: pd.DataFrame) -> pd.DataFrame:
    """Does a strategy beat random? One row per (paradigm, mode, strategy, reference) pooled
    over every domain x model cell (domain = model = ALL_CELLS; first), then one row per cell.
    ``reference`` is ``random`` (equal optimiser steps) or, where the grid ran it,
    ``random_matched`` (random at least at the strategy's total compute: the compute-matched row).

    Cell rows: ``accuracy``, ``reference_accuracy``, ``diff``, ``low``, ``high``, ``p``, ``se``,
    ``df`` (seeds_questions_test). Pooled rows: the same for the fixed-effects pool (the mean of
    the cells' differences; seeds paired across cells, questions shared by the cells of a
    domain), ``re_*`` for the random-effects pool (hartung_knapp over the cells, ``tau2``),
    ``p_holm`` and ``re_p_holm`` (Holm over every pooled row of the table), ``cells_better`` /
    ``cells_worse`` (cells whose own difference is positive / negative at p < ALPHA), and the
    ``verdict`` phrase."""
    matrices = cell_matrices(questions)
    pooled, cells = [], []
    for reference in (REFERENCE, MATCHED):
        families = dict.fromkeys((p, mode, s) for _, _, p, s, mode in matrices if s not in (reference, MATCHED))
        for paradigm, mode, strategy in families:
            family = {"paradigm": paradigm, "mode": mode, "strategy": strategy, "reference": reference}
            pairs = [(d, m, matrices[(d, m, p, s, md)], matrices[(d, m, paradigm, reference, mode)])
                     for d, m, p, s, md in matrices
                     if (p, s, md) == (paradigm, strategy, mode) and (d, m, paradigm, reference, mode) in matrices]
            if pairs:
                rows = _verdict_cells(family, pairs)
                pooled.append(_verdict_pool(family, pairs, rows))
                cells += rows
    for key in ("p", "re_p"):
        for row, adjusted in zip(pooled, holm([r[key] if r[key] == r[key] else 1.0 for r in pooled])):
            row[f"{key}_holm"] = adjusted
    for row in pooled:
        row["verdict"] = verdict_text(row)
        row["word"] = word_text(row)
    return pd.DataFrame(pooled + cells)


def _verdict_cells(family: dict, pairs: list) -> list[dict]:
    """One row per domain x model cell: (domain, model, strategy's array, reference's array)."""
    return [{**family, "domain": d, "model": m, "accuracy": a.mean(), "reference_accuracy": b.mean(), **versus(a, b)}
            for d, m, a, b in pairs]


def _verdict_pool(family: dict, pairs: list, rows: list[dict]) -> dict:
    """The pooled row of one family: fixed effects over the cells and Hartung-Knapp."""
    fixed = seeds_questions_test([(a, b, d) for d, _, a, b in pairs])
    random_effects = hartung_knapp([r["diff"] for r in rows], [r["se"] ** 2 for r in rows])
    return {**family, "domain": ALL_CELLS, "model": ALL_CELLS,
            "accuracy": float(np.mean([r["accuracy"] for r in rows])),
            "reference_accuracy": float(np.mean([r["reference_accuracy"] for r in rows])), **fixed,
            **{f"re_{key}": value for key, value in random_effects.items()},
            "cells_better": sum(r["diff"] > 0 and r["p"] < ALPHA for r in rows),
            "cells_worse": sum(r["diff"] < 0 and r["p"] < ALPHA for r in rows), "cells": len(rows)}


#: Accuracy within which a pooled difference counts as none (pre-registered by the CPU study's
#: third edition, results/reference/cpu_study_v3/PLAN.md): five points of test accuracy.
EQUIVALENCE_MARGIN = 0.05


def verdict_word(row: dict, margin: float = EQUIVALENCE_MARGIN) -> str:
    """A pooled comparison in one of three words: ``difference`` (fixed-effects p(Holm) < ALPHA),
    ``equivalent`` (not a difference, and the 95 % interval inside ±margin) or ``undecided``."""
    if row["p_holm"] < ALPHA:
        return "difference"
    return "equivalent" if -margin < row["low"] and row["high"] < margin else "undecided"


def word_text(row: dict, margin: float = EQUIVALENCE_MARGIN) -> str:
    """``verdict_word`` as the sentence the READMEs use."""
    word, interval = verdict_word(row, margin), f"{fmt(row['low'], '+.3f')}…{fmt(row['high'], '+.3f')}"
    if word == "difference":
        return f"difference: {fmt(row['diff'], '+.3f')} [{interval}]"
    if word == "equivalent":
        return f"equivalent within ±{margin:g}: [{interval}]"
    return f"undecided: the interval spans {interval}"


def verdict_text(row: dict) -> str:
    """One phrase: beats / worse than random when the fixed-effects pool passes Holm, saying
    whether the random-effects pool (the claim for cells in general) does too; a lead when
    only the uncorrected p passes; otherwise no difference shown, with the bounding interval."""
    reference = row["reference"] + (" (random at ≥ its compute)" if row["reference"] == MATCHED else "")
    if row["p_holm"] < ALPHA:
        side = f"beats {reference}" if row["diff"] > 0 else f"worse than {reference}"
        if row["cells"] < 2:
            return f"{side} (one cell: no pool across cells)"
        if row["re_p_holm"] < ALPHA and (row["re_diff"] > 0) == (row["diff"] > 0):
            return f"{side}, on these cells and across cells (random effects p(Holm) = {fmt(row['re_p_holm'], '.2g')})"
        return (f"{side} on these cells; not shown across cells (random effects p(Holm) = "
                f"{fmt(row['re_p_holm'], '.2g')}, {estimate(row['re_diff'], row['re_low'], row['re_high'])})")
    if row["p"] < ALPHA:
        side = "above" if row["diff"] > 0 else "below"
        return (f"a lead, not a result: {side} {reference} at p = {fmt(row['p'], '.2g')} uncorrected, "
                f"p = {fmt(row['p_holm'], '.2g')} after Holm")
    return (f"no difference shown (the 95 % interval bounds it to [{fmt(row['low'], '+.3f')}, "
            f"{fmt(row['high'], '+.3f')}])")


def verdict_from_questions(path: str | Path) -> pd.DataFrame:
    """The verdict recomputed from tables/questions.parquet alone (what the verdict table shows)."""
    return verdict_frame(load.read_questions(path))
