"""Statistics every table uses: a t-interval over seeds, and a paired bootstrap of a
strategy against ``random`` over the same questions and seeds.

Both are small and explicit on purpose; tests/test_stats.py checks them on hand-made inputs.
"""

from __future__ import annotations

import math

import numpy as np
from scipy import stats as scipy_stats


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
    low, high = np.quantile(boot, [(1 - level) / 2, (1 + level) / 2])
    if observed == 0 and not boot.any():
        p = 1.0
    else:
        other_side = np.mean(boot <= 0) if observed > 0 else np.mean(boot >= 0)
        p = min(1.0, max(2 * other_side, 1 / iterations))
    return {"diff": observed, "low": float(low), "high": float(high), "p": float(p)}
