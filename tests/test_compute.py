"""The compute-matched table on a hand-made results tree: ratios to random, the Pareto front,
and a verdict that calls a tie a tie."""

from __future__ import annotations

import pandas as pd
import pytest

from edco import io, layout
from edco.config import section_defaults
from edco.report.compute import compute_frame, write_compute_table
from edco.report.stats import pareto_front

PARADIGM_SECTIONS = {"sft": section_defaults("sft"), "rl": section_defaults("rl")}  # as a loaded config has them

QUESTIONS = [f"q{i}" for i in range(40)]
SEEDS = (0, 1, 2)


def config(strategies) -> dict:
    return {"run": "r", "seeds": list(SEEDS), "curriculum": {"rounds": 1, "n": 4}, **PARADIGM_SECTIONS,
            "models": {"m": {"source": "hub"}},  # hub: one shared base model
            "grid": {"domains": ["law"], "models": ["m"], "paradigms": ["sft"], "strategies": list(strategies)}}


def write_eval(path, n_correct: int):
    questions = [{"id": q, "generate": {"pred": "A", "correct": i < n_correct}} for i, q in enumerate(QUESTIONS)]
    io.write_json(path, {"summary": {"generate": {"accuracy": n_correct / 40, "n": 40}}, "questions": questions})


def write_run(strategy: str, n_correct: int, scoring: float, training: float, tokens: int = 0):
    for seed in SEEDS:
        write_eval(layout.eval_file("r", "law", "m", "sft", strategy, seed), n_correct)
        timing = {"scoring_seconds": scoring, "selecting_seconds": 0.0, "training_seconds": training,
                  "tokens_generated": tokens, "optimizer_steps": 4, "sample_visits": 16, "rollout_tokens_generated": 0}
        io.write_json(layout.round_dir(layout.run_dir("r", "law", "m", "sft", strategy, seed), 1) / "timing.json", timing)


@pytest.fixture
def tree(tmp_path, monkeypatch):
    """random 0.50 at 10 s; length 0.55 at 10.5 s (2 more questions: not significant); edco
    0.75 at 15 s (significant, 1.5x the compute); slow_bad 0.375 at 20 s."""
    monkeypatch.chdir(tmp_path)
    write_eval(layout.eval_file("r", "law", "m"), 10)
    write_run("random", 20, scoring=0.0, training=10.0)
    write_run("length", 22, scoring=0.5, training=10.0, tokens=50)
    write_run("edco", 30, scoring=5.0, training=10.0, tokens=900)
    write_run("slow_bad", 15, scoring=10.0, training=10.0, tokens=2000)
    return config(["random", "length", "edco", "slow_bad"])


def test_pareto_front_exact():
    # (accuracy, compute): the cheapest, the most accurate and an undominated middle; a tie in
    # both is on the front twice; strictly worse in one and equal in the other is not
    assert pareto_front([0.5, 0.55, 0.75, 0.375, 0.75, 0.5], [10, 10.5, 15, 20, 15, 11]) == \
        [True, True, True, False, True, False]


def test_cells_are_ranked_with_ratios_and_front(tree):
    frame = compute_frame(tree).set_index("strategy")
    assert list(frame.index) == ["edco", "length", "random", "slow_bad"]  # by accuracy
    assert frame.loc["edco", "total_seconds"] == 15.0
    assert frame.loc["edco", "compute_vs_random"] == pytest.approx(1.5)
    assert frame.loc["length", "compute_vs_random"] == pytest.approx(1.05)
    assert frame.loc["edco", "robust_vs_random"] == pytest.approx(1.5)  # 1 + 5/10
    assert frame["pareto"].to_dict() == {"edco": True, "length": True, "random": True, "slow_bad": False}
    assert frame["within_budget"].to_dict() == {"edco": False, "length": True, "random": True, "slow_bad": False}
    assert frame.loc["edco", "p_vs_random"] < 0.05 < frame.loc["length", "p_vs_random"]  # report.collect's test


def test_verdict_calls_an_insignificant_win_a_tie(tree):
    frame = compute_frame(tree)
    assert set(frame["winner"]) == {"length"}
    text = frame["verdict"].iloc[0]
    assert "length wins (0.550, Δ+0.050 vs random" in text and "a tie with random" in text
    assert "Most accurate at any compute: edco (0.750, 1.50× random's compute)" in text
    assert "load-robust" not in text  # both ratios agree


def test_verdict_names_a_significant_winner(tree):
    write_run("length", 30, scoring=0.5, training=10.0)  # now as good as edco, at 1.05x
    text = compute_frame(tree)["verdict"].iloc[0]
    assert "length wins (0.750" in text and "tie" not in text
    assert "Most accurate at any compute" not in text  # the cheaper of the two equals wins the tie


def test_verdict_says_when_the_load_robust_ratio_disagrees(tree):
    write_run("random", 20, scoring=0.0, training=14.0)  # random ran on a busy machine
    frame = compute_frame(tree).set_index("strategy")
    assert frame.loc["edco", "compute_vs_random"] == pytest.approx(15 / 14)  # within 10 % by wall-clock
    assert frame.loc["edco", "robust_vs_random"] == pytest.approx(1.5)  # not by scoring / training
    text = frame["verdict"].iloc[0]
    assert "edco wins" in text and "by the load-robust ratio (scoring ÷ training) it would be length" in text


def test_compute_table_files(tree):
    csv, md, tex, html = write_compute_table(tree)
    assert {"compute_vs_random", "robust_vs_random", "pareto", "winner", "verdict"} <= set(csv.read_text().splitlines()[0].split(","))
    text = md.read_text()
    assert "## law · m · sft · generate" in text and "**Verdict** at ≤ random's compute (+10% wall-clock)" in text
    # seeds identical: only the questions vary; edco is right on 10 of 40 questions random is
    # not: Δ 0.25, se sqrt((10 * 0.75^2 + 30 * 0.25^2) / 39 / 40) = 0.0693, 39 df
    assert "| law | m | sft | edco | 0.750 ± 0.000 [0.75, 0.75] | +0.250 [+0.11, +0.39] p=0.00087 | 15.0 ± 0.0 | 5.0 | 1.50 | 1.50 | 900 | ● | no |" in text
    assert "| law | m | sft | slow_bad |" in text and text.index("| edco |") < text.index("| random |")
    assert "\\begin{tabular}" in tex.read_text() and "Verdict" in html.read_text()


def test_cheaper_edco_variants_report_savings_and_accuracy_cost(tree):
    write_run("edco_partial", 29, scoring=2.0, training=10.0, tokens=300)  # one question fewer than edco
    write_run("edco_early_stop", 30, scoring=5.0, training=10.0, tokens=900)  # never stopped: edco exactly
    cfg = config(["random", "length", "edco", "slow_bad", "edco_partial", "edco_early_stop"])
    frame = compute_frame(cfg).set_index("strategy")
    partial, stop = frame.loc["edco_partial"], frame.loc["edco_early_stop"]
    assert partial["scoring_saved_vs_edco"] == pytest.approx(0.6)  # 2 s of edco's 5 s
    assert partial["tokens_saved_vs_edco"] == pytest.approx(1 - 300 / 900)
    assert partial["compute_saved_vs_edco"] == pytest.approx(1 - 12 / 15)
    assert partial["diff_vs_edco"] == pytest.approx(-1 / 40) and partial["p_vs_edco"] > 0.05
    assert stop["scoring_saved_vs_edco"] == 0 and stop["diff_vs_edco"] == 0 and stop["p_vs_edco"] == 1.0
    assert frame[["diff_vs_edco"]].drop(["edco_partial", "edco_early_stop"]).isna().all().all()
    md = write_compute_table(cfg)[1].read_text()
    assert "## Cheaper EDCO: what the variants save and cost" in md
    assert "| law | m | sft | generate | edco_partial | 60% | 67% | 20% | -0.025 [" in md


def test_no_variant_section_without_edco_beside_them(tree):
    assert "Cheaper EDCO" not in write_compute_table(tree)[1].read_text()


def test_verdict_warns_when_wall_clock_noise_exceeds_the_tolerance(tree):
    assert "caution" not in compute_frame(tree)["verdict"].iloc[0]  # every seed took the same seconds
    for seed, training in zip(SEEDS, (8.0, 10.0, 12.0)):  # every strategy's seeds now spread +-20 %
        for strategy in ("random", "length", "edco", "slow_bad"):
            path = layout.round_dir(layout.run_dir("r", "law", "m", "sft", strategy, seed), 1) / "timing.json"
            io.write_json(path, {**io.read_json(path), "training_seconds": training})
    text = compute_frame(tree)["verdict"].iloc[0]
    assert "caution: wall-clock varies" in text and "more than the 10% tolerance" in text


def test_a_random_matched_arm_answers_at_equal_compute(tree):
    """random at edco's total compute (more steps by design: not a budget mismatch) is a
    reference, never a winner: every strategy is tested against it, and the verdict says
    whether the winner beats random at equal compute too."""
    write_run("random_matched", 29, scoring=0.0, training=15.0)
    for seed in SEEDS:  # 6 steps where the others do 4
        path = layout.round_dir(layout.run_dir("r", "law", "m", "sft", "random_matched", seed), 1) / "timing.json"
        io.write_json(path, {**io.read_json(path), "optimizer_steps": 6, "sample_visits": 24})
    write_run("length", 30, scoring=0.5, training=10.0)  # as good as edco, at 1.05x random's compute
    frame = compute_frame(config(["random", "length", "edco", "random_matched"])).set_index("strategy")
    assert frame["budget_matched"].all() and "compute-matched by design" in frame.loc["random_matched", "budget_note"]
    assert frame.loc["length", "diff_vs_matched"] == pytest.approx(1 / 40)  # 30 vs 29 questions right
    assert frame.loc["random", "diff_vs_matched"] == pytest.approx(-9 / 40)  # what the extra compute buys random
    assert pd.isna(frame.loc["random_matched", "diff_vs_matched"])
    text = frame["verdict"].iloc[0]
    assert "length wins" in text and "against random_matched (random at equal total compute) length is +0.025" in text
    assert "no win at equal compute" in text
    md = write_compute_table(config(["random", "length", "edco", "random_matched"]))[1].read_text()
    assert "| Δ vs random_matched |" in md


def test_a_grid_of_random_alone_still_gets_its_compute_table(tree):
    """A random-only grid (e.g. a GRPO probe: does the model learn at all?) has nothing to test
    against random; its table says so instead of failing on a missing Δ column."""
    md = write_compute_table(config(["random"]))[1].read_text()
    assert "| law | m | sft | random | 0.500 ± 0.000" in md
