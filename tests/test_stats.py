"""Statistics on hand-made inputs: a known t-interval, known paired differences."""

from __future__ import annotations

import math

import numpy as np
import pytest

from edco.report.stats import grid_bootstrap, holm, mean_ci, paired_bootstrap


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


# --------------------------------------------------------------------------- grid_bootstrap
def test_grid_bootstrap_of_identical_strategies_is_zero_with_p_one():
    a = np.tile([1, 0, 1, 1, 0], (3, 4)).astype(float)
    result = grid_bootstrap([(a, a.copy())], iterations=500)
    assert result == {"diff": 0.0, "low": 0.0, "high": 0.0, "p": 1.0}


def test_grid_bootstrap_pools_the_mean_of_the_cells_differences():
    right, wrong, half = np.ones((4, 30)), np.zeros((4, 30)), np.tile([1.0, 0.0], (4, 15))
    result = grid_bootstrap([(right, wrong), (half, half.copy())], iterations=2000)
    assert result["diff"] == pytest.approx(0.5)  # (1.0 + 0.0) / 2
    assert result["low"] <= 0.5 <= result["high"] and result["p"] < 0.01


def test_one_collapsed_seed_is_a_seed_effect_not_a_strategy_effect():
    """Strategy a: four seeds at ~0.75 and one that collapsed to 0; b: five seeds at 0.5. The
    question-only bootstrap (seeds held fixed) calls a's +0.1 certain; resampling seeds too
    says another draw of seeds could reverse it."""
    rng = np.random.default_rng(3)
    a = np.vstack([np.zeros((1, 200)), rng.random((4, 200)) < 0.75]).astype(float)
    b = (rng.random((5, 200)) < 0.5).astype(float)
    assert paired_bootstrap(a, b)["p"] < 0.01
    result = grid_bootstrap([(a, b)], iterations=4000)
    assert result["p"] > 0.2 and result["low"] < 0 < result["high"]


def test_grid_bootstrap_refuses_cells_on_different_questions():
    with pytest.raises(ValueError, match="same questions"):
        grid_bootstrap([(np.ones((2, 5)), np.ones((2, 6)))])


def test_holm_adjusts_in_rank_order_and_stays_monotone():
    # sorted 0.01, 0.03, 0.04, 0.5 -> x4, x3, x2, x1 = 0.04, 0.09, 0.08 -> 0.09 (monotone), 0.5
    assert holm([0.01, 0.04, 0.03, 0.5]) == pytest.approx([0.04, 0.09, 0.09, 0.5])
    assert holm([0.5, 0.9]) == pytest.approx([1.0, 1.0])
