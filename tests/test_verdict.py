"""The verdict on a hand-made results tree: pooled (fixed and random effects) and per-cell
differences against random, Holm over each pooled family, a forest plot, no verdict where none
applies, and the same verdict recomputed from tables/questions.parquet alone."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from edco import io, layout
from edco.errors import UserFacingError
from edco.report import load, write_main_table
from edco.report.tables import write_tables
from edco.report.stats import ALL_CELLS, verdict_frame, verdict_from_questions, verdict_text, word_text
from edco.report.verdict import write_verdict

applies = layout.has_verdict

QUESTIONS = [f"q{i}" for i in range(60)]
SEEDS = (0, 1, 2, 3)
CELLS = [("law", "m1"), ("law", "m2")]


def config(strategies=("random", "good", "same")) -> dict:
    return {"run": "r", "seeds": list(SEEDS),
            "models": {"m1": {"source": "hub"}, "m2": {"source": "hub"}},  # hub: one shared base model
            "grid": {"domains": ["law"], "models": ["m1", "m2"], "paradigms": ["sft"], "strategies": list(strategies)}}


def write_eval(path, correct: set[int]):
    questions = [{"id": q, "generate": {"pred": "A", "correct": i in correct}} for i, q in enumerate(QUESTIONS)]
    io.write_json(path, {"summary": {"generate": {"accuracy": len(correct) / len(QUESTIONS), "n": len(QUESTIONS)}},
                         "questions": questions})


@pytest.fixture
def tree(tmp_path, monkeypatch):
    """random right on questions 0-29 (0.5) in every seed; good on 0-44 (0.75); same = random
    except one seed that gets two more questions right."""
    monkeypatch.chdir(tmp_path)
    for domain, model in CELLS:
        for seed in SEEDS:
            write_eval(layout.eval_file("r", domain, model, "sft", "random", seed), set(range(30)))
            write_eval(layout.eval_file("r", domain, model, "sft", "good", seed), set(range(45)))
            write_eval(layout.eval_file("r", domain, model, "sft", "same", seed), set(range(32 if seed == 0 else 30)))
    return config()


def test_pooled_and_per_cell_rows_with_holm(tree):
    frame = verdict_frame(load.questions(load.evaluations(tree, base=False)))
    pooled = frame[frame["domain"] == ALL_CELLS].set_index("strategy")
    assert list(pooled.index) == ["good", "same"]
    assert pooled.loc["good", "diff"] == pytest.approx(0.25) and pooled.loc["good", "re_diff"] == pytest.approx(0.25)
    # two cells give the random-effects pool one degree of freedom (t 12.7): on these two
    # cells good beats random, for cells in general two cells cannot tell
    assert pooled.loc["good", "verdict"].startswith("beats random on these cells; not shown across cells")
    assert pooled.loc["good", "re_low"] < 0 < pooled.loc["good", "low"]
    assert pooled.loc["good", "cells_better"] == 2 and pooled.loc["good", "cells_worse"] == 0
    assert pooled.loc["same", "diff"] == pytest.approx(2 / 60 / 4)
    assert pooled.loc["same", "verdict"].startswith("no difference shown")
    assert pooled.loc["same", "p_holm"] >= pooled.loc["same", "p"]
    assert pooled.loc["same", "re_p_holm"] >= pooled.loc["same", "re_p"]
    cells = frame[frame["domain"] != ALL_CELLS]
    assert len(cells) == 4 and set(cells["model"]) == {"m1", "m2"}


def test_write_verdict_writes_the_table_its_forest_plot_draws(tree):
    from edco.report import write_plots

    paths = write_verdict(tree)
    assert [p.name for p in paths] == [f"verdict.{ext}" for ext in layout.TABLE_FORMATS]
    text = layout.tables_dir("r").joinpath("verdict.md").read_text()
    assert "beats random" in text and "law · m2" in text
    assert write_plots({**tree, "estimator_bench": {"enabled": False}}, only=["verdict"]) == [layout.plot_file("r", "verdict")]


def test_a_lead_is_called_a_lead_when_only_the_uncorrected_p_passes():
    row = {"diff": 0.05, "low": 0.01, "high": 0.09, "p": 0.02, "p_holm": 0.2, "cells": 6, "re_diff": 0.04,
           "re_low": -0.01, "re_high": 0.09, "re_p_holm": 0.3, "reference": "random"}
    assert verdict_text(row).startswith("a lead, not a result: above random")
    assert verdict_text({**row, "p": 0.3, "p_holm": 1.0}).startswith("no difference shown")
    assert verdict_text({**row, "p_holm": 0.01}) == ("beats random on these cells; not shown across cells (random "
                                                     "effects p(Holm) = 0.3, +0.040 [-0.01, +0.09])")
    assert verdict_text({**row, "diff": -0.05, "re_diff": -0.04, "p_holm": 0.01, "re_p_holm": 0.02}).startswith(
        "worse than random, on these cells and across cells")


def test_a_random_matched_arm_adds_the_compute_matched_rows(tree):
    """With random_matched in the grid every strategy (random included: does more compute help
    random?) is also tested against it, pooled and per cell; the rows against random stay as
    they were (random_matched is a reference there, not a row); Holm over all pooled rows."""
    for model in ("m1", "m2"):
        for seed in SEEDS:
            write_eval(layout.eval_file("r", "law", model, "sft", "random_matched", seed), set(range(40)))
    tree = config(("random", "good", "same", "random_matched"))
    frame = verdict_frame(load.questions(load.evaluations(tree, base=False)))
    pooled = frame[frame["domain"] == ALL_CELLS].set_index(["strategy", "reference"])
    assert set(pooled.index) == {("good", "random"), ("same", "random"),
                                 ("good", "random_matched"), ("same", "random_matched"), ("random", "random_matched")}
    assert pooled.loc[("good", "random_matched"), "diff"] == pytest.approx(5 / 60)
    assert pooled.loc[("good", "random_matched"), "verdict"].startswith("beats random_matched (random at ≥ its compute)")
    assert pooled.loc[("random", "random_matched"), "diff"] == pytest.approx(-10 / 60)
    assert len(frame[(frame["domain"] != ALL_CELLS) & (frame["reference"] == "random_matched")]) == 6
    assert "random_matched" in write_verdict(tree)[1].read_text()


def test_no_verdict_without_random_or_with_one_seed():
    assert applies(config())
    assert not applies(config(("edco", "good")))
    assert not applies({**config(), "seeds": [0]})


def test_the_verdict_is_recomputed_from_the_per_question_file_alone(tree):
    """tables/questions.parquet holds everything the verdict needs: recomputed from it, the
    verdict equals the verdict table's numbers."""
    for domain, model in CELLS:  # questions.parquet also holds the base model's answers
        write_eval(layout.eval_file("r", domain, model), set(range(10)))
    write_main_table(tree)
    [parquet] = write_tables(tree, "questions")
    assert parquet == layout.questions_file("r")
    questions = pd.read_parquet(parquet)
    assert list(questions.columns) == ["domain", "model", "paradigm", "strategy", "seed", "mode", "question_id",
                                       "difficulty", "correct", "pred"]
    assert len(questions) == 2 * (1 + 3 * len(SEEDS)) * len(QUESTIONS)  # 2 cells x (base + 3 strategies x 4 seeds)
    table = pd.read_csv(write_verdict(tree)[0])
    recomputed = verdict_from_questions(parquet)
    numbers = ["diff", "low", "high", "p", "re_diff", "re_low", "re_high", "re_p", "p_holm", "re_p_holm"]
    pd.testing.assert_frame_equal(recomputed[numbers].reset_index(drop=True), table[numbers], rtol=1e-5)
    assert recomputed["verdict"].tolist() == table["verdict"].fillna("").replace("", None).tolist()


#: Committed reference runs with a verdict (a one-seed run such as real/ has none to recompute).
REFERENCE_RUNS = sorted(p.parents[1] for p in (Path(__file__).parents[1] / "results" / "reference").glob("*/tables/verdict.csv")
                        if (p.parent / "questions.parquet").exists())


@pytest.mark.parametrize("run", REFERENCE_RUNS, ids=lambda p: p.name)
def test_committed_reference_verdicts_are_recomputed_from_their_per_question_files(run):
    """Issue 18: anyone can recompute every interval from the committed per-question files."""
    table = pd.read_csv(run / "tables" / "verdict.csv")
    recomputed = verdict_from_questions(run / "tables" / "questions.parquet")
    numbers = ["diff", "low", "high", "p", "re_diff", "re_low", "re_high", "re_p", "p_holm", "re_p_holm"]
    pd.testing.assert_frame_equal(recomputed[numbers].reset_index(drop=True), table[numbers], rtol=1e-5)


def test_a_per_question_file_without_a_column_is_named(tmp_path):
    pd.DataFrame({"domain": ["law"]}).to_parquet(tmp_path / "q.parquet")
    with pytest.raises(UserFacingError, match="q.parquet: no column model"):
        verdict_from_questions(tmp_path / "q.parquet")


@pytest.mark.parametrize("p_holm, low, high, word", [
    (0.01, 0.01, 0.09, "difference: +0.050 [+0.010…+0.090]"),
    (0.01, -0.04, -0.001, "difference: +0.050 [-0.040…-0.001]"),
    (0.5, -0.04, 0.049, "equivalent within ±0.05: [-0.040…+0.049]"),
    (0.5, -0.001, 0.068, "undecided: the interval spans -0.001…+0.068"),
    (0.5, -0.05, 0.01, "undecided: the interval spans -0.050…+0.010"),
])
def test_every_pooled_comparison_is_one_of_three_words(p_holm, low, high, word):
    """Issue 30: difference (Holm), equivalent (interval inside ±0.05), or undecided with its interval."""
    assert word_text({"p_holm": p_holm, "diff": 0.05, "low": low, "high": high}) == word
