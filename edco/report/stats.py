"""Statistics every table uses: a t-interval over seeds, and a paired bootstrap of a
strategy against ``random`` over the same questions and seeds.

Both are small and explicit on purpose; tests/test_stats.py checks them on hand-made inputs.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
from scipy import stats as scipy_stats

#: A difference is significant at p < ALPHA (two-sided) wherever a table says so.
ALPHA = 0.05
#: The ``domain`` / ``model`` of a verdict row pooled over every cell.
ALL_CELLS = "all cells"


def mean_ci(values: list[float], level: float = 0.95) -> tuple[float, float, float]:
    """(mean, low, high): Student-t interval over seeds; a single seed has no interval (nan)."""
    x = np.asarray(values, dtype=float)
    mean = float(x.mean())
    if len(x) < 2:
        return mean, math.nan, math.nan
    half = scipy_stats.t.ppf((1 + level) / 2, len(x) - 1) * x.std(ddof=1) / math.sqrt(len(x))
    return mean, mean - half, mean + half


def paired_bootstrap(a: np.ndarray, b: np.ndarray, iterations: int = 10_000, seed: int = 0,
                     level: float = 0.95) -> dict:
    """Strategy ``a`` vs ``b`` on the same (seed, question) grid of 0/1 correctness.

    Resamples *questions* (the same resample for every seed, so seed pairing is kept) and
    reports the mean difference, its percentile interval and a two-sided p-value: twice the
    share of resampled differences on the other side of zero (at least 1 / iterations).
    """
    a, b = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    if a.shape != b.shape or a.ndim != 2:
        raise ValueError(f"paired arrays must share a (seeds, questions) shape, got {a.shape} and {b.shape}")
    per_question = (a - b).mean(axis=0)  # averaged over seeds
    observed = float(per_question.mean())
    rng = np.random.default_rng(seed)
    picks = rng.integers(0, len(per_question), size=(iterations, len(per_question)))
    boot = per_question[picks].mean(axis=1)
    return _summary(observed, boot, level)


def _summary(observed: float, boot: np.ndarray, level: float) -> dict:
    """The observed difference, the bootstrap's percentile interval, and a two-sided p: twice
    the share of resampled differences on the other side of zero (at least 1 / iterations)."""
    low, high = np.quantile(boot, [(1 - level) / 2, (1 + level) / 2])
    if observed == 0 and not boot.any():
        p = 1.0
    else:
        other_side = np.mean(boot <= 0) if observed > 0 else np.mean(boot >= 0)
        p = min(1.0, max(2 * other_side, 1 / len(boot)))
    return {"diff": observed, "low": float(low), "high": float(high), "p": float(p)}


def grid_bootstrap(cells: list[tuple[np.ndarray, np.ndarray]], iterations: int = 10_000, seed: int = 0,
                   level: float = 0.95) -> dict:
    """Strategy ``a`` vs ``b`` over one or more cells, each a pair of (seeds, questions) 0/1
    arrays on the same questions; the effect is the mean over cells of accuracy(a) − accuracy(b).

    Unlike ``paired_bootstrap`` this resamples *both* sources of noise, per cell and iteration:
    the questions (one resample shared by a and b, so the pairing by question is kept) and the
    seeds of a and of b independently (seed s of two strategies is no pair: it draws another
    curriculum). With 5 seeds the seed-to-seed spread is usually the larger one, and a test
    over questions alone calls differences that another set of seeds would not reproduce.
    Returns ``diff``, ``low``, ``high`` (percentile interval) and a two-sided ``p``.
    """
    rng = np.random.default_rng(seed)
    observed, boot = 0.0, np.zeros(iterations)
    for a, b in cells:
        a, b = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
        if a.ndim != 2 or b.ndim != 2 or a.shape[1] != b.shape[1]:
            raise ValueError(f"cell arrays must be (seeds, questions) on the same questions, got {a.shape} and {b.shape}")
        questions = rng.multinomial(a.shape[1], np.full(a.shape[1], 1 / a.shape[1]), size=iterations)
        for sign, x in ((1.0, a), (-1.0, b)):
            seeds = rng.multinomial(x.shape[0], np.full(x.shape[0], 1 / x.shape[0]), size=iterations)
            # mean of x over resampled seeds and questions = counts_s · x · counts_q / (S Q)
            boot += sign * np.einsum("is,is->i", seeds, questions @ x.T) / x.size
            observed += sign * float(x.mean())
    return _summary(observed / len(cells), boot / len(cells), level)


def holm(p_values: list[float]) -> list[float]:
    """Holm–Bonferroni adjusted p-values (same order as given): controls the chance of any
    false 'beats random' across a family of comparisons, without Bonferroni's full price."""
    order = sorted(range(len(p_values)), key=lambda i: p_values[i])
    adjusted, running = [0.0] * len(p_values), 0.0
    for rank, i in enumerate(order):
        running = max(running, min(1.0, (len(p_values) - rank) * p_values[i]))
        adjusted[i] = running
    return adjusted


def correct_matrix(rows: pd.DataFrame) -> np.ndarray:
    """(seeds x questions) 0/1 array of one cell's per-question rows (load.questions), seeds
    ascending, questions sorted by id: the same order for every cell of the same questions."""
    wide = rows.pivot_table(index="seed", columns="question_id", values="correct", aggfunc="first", sort=True)
    return wide.to_numpy(dtype=float)


def cell_matrices(questions: pd.DataFrame) -> dict[tuple, np.ndarray]:
    """{(domain, model, paradigm, strategy, mode): (seeds x questions) 0/1 array} of every
    fine-tuned cell of a per-question frame (load.questions / tables/questions.parquet)."""
    tuned = questions[questions["strategy"] != "base"]
    return {keys: correct_matrix(group)
            for keys, group in tuned.groupby(["domain", "model", "paradigm", "strategy", "mode"], sort=False)}


def versus(a: np.ndarray, b: np.ndarray) -> dict:
    """Cell ``a`` against cell ``b`` on the same questions and seeds: ``diff``, ``low``, ``high``, ``p``."""
    return paired_bootstrap(a, b)


def pareto_front(accuracy: list[float], compute: list[float]) -> list[bool]:
    """True where no other point is at least as accurate and at most as costly, and better in one."""
    points = list(zip(accuracy, compute))
    return [not any(a >= acc and c <= cost and (a > acc or c < cost) for a, c in points) for acc, cost in points]
