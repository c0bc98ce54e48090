"""The third CPU study's driver (benchmarks/cpu_study_v3.py) keeps to its pre-registration
(results/reference/cpu_study_v3/PLAN.md): tuning seeds and arms, the rate grids, the rule that
picks a rate (highest mean accuracy, an exact tie to the smaller rate, random_matched takes
random's) and random_matched's ratio (1.1 x the costliest arm's median compute, rounded up to 0.1)."""

from __future__ import annotations

import importlib.util

import pandas as pd
import pytest

from test_trainer_rounds import REPO

spec = importlib.util.spec_from_file_location("cpu_study_v3", REPO / "benchmarks" / "cpu_study_v3.py")
V3 = importlib.util.module_from_spec(spec)
spec.loader.exec_module(V3)


def test_tuning_runs_every_arm_but_random_matched_on_the_tuning_seeds_at_the_planned_rates():
    plan = (REPO / "results" / "reference" / "cpu_study_v3" / "PLAN.md").read_text()
    assert "seeds **100, 101**" in plan and "seeds **10, 11, 12, 13, 14**" in plan
    assert "{3e-4, 5e-4, 1e-3}" in plan and "{1e-3, 2e-3, 4e-3}" in plan
    assert sorted(V3.RATES) == V3.RATES and [r[1] for r in V3.RATES] == [3e-4, 5e-4, 1e-3]
    assert [r[0] for r in V3.RATES] == [1e-3, 2e-3, 4e-3]
    layers = [V3.tuning_layer(i) for i in range(3)]
    assert all(layer["seeds"] == [100, 101] for layer in layers)
    assert layers[1]["grid"]["strategies"] == ["random", "static_difficulty", "edco", "edco_full", "edco_full_low"]
    assert len({layer["run"] for layer in layers}) == 3
    study = V3.load_layers(V3.CONFIGS)
    assert study["seeds"] == [10, 11, 12, 13, 14] and study["compute"]["portable_math"]
    assert not set(study["seeds"]) & set(V3.TUNING_SEEDS)


def test_the_rule_takes_the_best_mean_and_a_tie_goes_to_the_smaller_rate():
    frame = pd.DataFrame([
        {"arm": "random", "paradigm": "rl", "rate": 3e-4, "mean_accuracy": 0.40},
        {"arm": "random", "paradigm": "rl", "rate": 5e-4, "mean_accuracy": 0.45},
        {"arm": "random", "paradigm": "rl", "rate": 1e-3, "mean_accuracy": 0.45},
        {"arm": "edco", "paradigm": "rl", "rate": 3e-4, "mean_accuracy": 0.50},
        {"arm": "edco", "paradigm": "rl", "rate": 1e-3, "mean_accuracy": 0.30},
        {"arm": "random", "paradigm": "sft", "rate": 4e-3, "mean_accuracy": 0.9},
        {"arm": "random", "paradigm": "sft", "rate": 1e-3, "mean_accuracy": 0.8},
    ])
    chosen = V3.choose(frame)
    assert chosen == {"random": {"rl": 5e-4, "sft": 4e-3}, "edco": {"rl": 3e-4}, "random_matched": {"rl": 5e-4, "sft": 4e-3}}


@pytest.mark.parametrize("costliest, ratio", [(1.0, 1.1), (1.5, 1.7), (1.27, 1.4), (2.0, 2.2)])
def test_random_matched_gets_a_tenth_above_the_costliest_arm_in_the_runs_that_ran_alone(monkeypatch, costliest, ratio):
    """PLAN.md's addendum: per timed tuning run, each arm's median over random's in that run; the
    largest over arms and runs x 1.1, rounded up. tune0's seconds (load beside it) never count."""
    def timing(index):
        if index == 0:  # slowed random runs: would make every arm look cheap
            return pd.DataFrame([{"paradigm": p, "strategy": s, "total_seconds": secs} for p in ("sft", "rl")
                                 for s, secs in (("random", 100.0), ("edco_full", 10.0))])
        scale = costliest if index == 2 else 1.0  # the costlier run decides
        return pd.DataFrame([{"paradigm": p, "strategy": s, "seed": seed, "total_seconds": secs}
                             for p in ("sft", "rl") for seed in (100, 101)
                             for s, secs in (("random", 10.0), ("edco_full", 10.0 * scale), ("edco", 9.0))])

    monkeypatch.setattr(V3, "tuning_config", lambda index: index)
    monkeypatch.setattr(V3.load, "timing", lambda config: config)
    monkeypatch.setattr(V3.load, "run_totals", timing)
    assert V3.TIMED_RUNS == [1, 2]
    assert V3.compute_ratios() == {"sft": ratio, "rl": ratio}


def test_study_only_without_a_tuning_choice_says_what_to_run(monkeypatch, tmp_path):
    monkeypatch.setattr(V3, "REFERENCE", tmp_path)
    monkeypatch.setattr(V3, "snakemake", lambda *a: pytest.fail("the study must not start without chosen rates"))
    with pytest.raises(SystemExit, match="--tuning-only"):
        V3.study("1")


def test_study_only_runs_the_study_over_the_committed_choice(monkeypatch, tmp_path):
    (tmp_path / "tuning").mkdir()
    V3.write_layer(tmp_path / "tuning" / "chosen.yaml", {"learning_rates": {"random": {"rl": 3e-4}}})
    calls = []
    monkeypatch.setattr(V3, "REFERENCE", tmp_path)
    monkeypatch.setattr(V3, "snakemake", lambda layers, cores: calls.append((layers, cores)))
    monkeypatch.setattr(V3, "copy_results", lambda config: calls.append(config["learning_rates"]))
    assert V3.study("2") == 0
    assert calls[0] == ([*V3.CONFIGS, tmp_path / "tuning" / "chosen.yaml"], "2")
    assert calls[1]["random"]["rl"] == 3e-4  # the study's config is the committed choice layered on
