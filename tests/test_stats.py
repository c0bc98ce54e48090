"""Statistics on hand-made inputs: a known t-interval, known paired differences."""

from __future__ import annotations

import math

import numpy as np
import pytest

from edco.stats import mean_ci, paired_bootstrap


def test_t_interval_of_one_two_three():
    mean, low, high = mean_ci([1.0, 2.0, 3.0])
    half = 4.302652729911275 / math.sqrt(3)  # t(0.975, df=2) * sd(=1) / sqrt(n)
    assert mean == 2.0
    assert low == pytest.approx(2 - half) and high == pytest.approx(2 + half)


def test_single_seed_has_no_interval():
    mean, low, high = mean_ci([0.4])
    assert mean == 0.4 and math.isnan(low) and math.isnan(high)


def test_identical_strategies_differ_by_zero_with_p_one():
    a = np.array([[1, 0, 1, 1], [0, 0, 1, 1]])
    result = paired_bootstrap(a, a.copy())
    assert result == {"diff": 0.0, "low": 0.0, "high": 0.0, "p": 1.0}


def test_a_strategy_right_everywhere_beats_one_wrong_everywhere():
    a, b = np.ones((3, 50)), np.zeros((3, 50))
    result = paired_bootstrap(a, b, iterations=2000)
    assert result["diff"] == 1.0 and result["low"] == 1.0
    assert result["p"] == pytest.approx(1 / 2000)


def test_known_paired_difference_and_its_sign():
    # a wins on 30 of 100 questions, loses on 10: mean difference 0.2
    a = np.zeros((1, 100))
    b = np.zeros((1, 100))
    a[0, :30] = 1
    b[0, 30:40] = 1
    up = paired_bootstrap(a, b, iterations=5000, seed=1)
    down = paired_bootstrap(b, a, iterations=5000, seed=1)
    assert up["diff"] == pytest.approx(0.2) and down["diff"] == pytest.approx(-0.2)
    assert up["low"] > 0 and up["p"] < 0.01
    assert up["p"] == pytest.approx(down["p"])
    # a wide interval when the evidence is thin: one win in 100
    thin = paired_bootstrap(np.eye(1, 100), np.zeros((1, 100)), iterations=5000)
    assert thin["low"] == 0.0 and thin["p"] > 0.3


def test_mismatched_shapes_are_refused():
    with pytest.raises(ValueError, match="share a"):
        paired_bootstrap(np.zeros((2, 3)), np.zeros((3, 3)))
