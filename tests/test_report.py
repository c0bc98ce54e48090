"""Main table from hand-made evaluations: statistics per cell, paired test vs random, and a
missing seed is an error (never a silent average over fewer seeds)."""

from __future__ import annotations

import pytest

from edco import io, layout
from edco.errors import UserFacingError
from edco.report import collect, write_main_table

QUESTIONS = [f"q{i}" for i in range(40)]


def config(strategies=("random", "edco"), seeds=(0, 1, 2)) -> dict:
    return {"run": "r", "seeds": list(seeds),
            "grid": {"domains": ["law"], "models": ["m"], "paradigms": ["sft"], "strategies": list(strategies)}}


def write_eval(path, correct: set[str]):
    questions = [{"id": q, "difficulty": 1, "generate": {"pred": "A", "correct": q in correct}} for q in QUESTIONS]
    acc = len(correct) / len(QUESTIONS)
    io.write_json(path, {"summary": {"generate": {"accuracy": acc, "n": len(QUESTIONS)}}, "questions": questions})


@pytest.fixture
def evals(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    write_eval(layout.eval_file("r", "law", "m"), set(QUESTIONS[:10]))
    for seed in (0, 1, 2):
        write_eval(layout.eval_file("r", "law", "m", "sft", "random", seed), set(QUESTIONS[:20]))
        write_eval(layout.eval_file("r", "law", "m", "sft", "edco", seed), set(QUESTIONS[: 28 + seed]))


def test_cells_carry_mean_interval_and_paired_test(evals):
    rows = {(r["strategy"]): r for r in collect(config())}
    assert rows["base"]["mean"] == 0.25 and rows["base"]["n_seeds"] == 1
    assert rows["random"]["mean"] == 0.5 and rows["random"]["sd"] == 0.0
    edco = rows["edco"]
    assert edco["mean"] == pytest.approx((28 + 29 + 30) / 3 / 40)
    assert edco["ci_low"] < edco["mean"] < edco["ci_high"]
    assert edco["diff_vs_random"] == pytest.approx(edco["mean"] - 0.5)
    assert edco["p_vs_random"] < 0.01
    assert "p_vs_random" not in rows["random"]


def test_tables_are_written(evals):
    csv, md = write_main_table(config())
    assert "p_vs_random" in csv.read_text()
    text = md.read_text()
    assert "| law | m | sft | 0.250 | 0.500 ± 0.000" in text
    assert "p=" in text


def test_a_missing_seed_is_an_error(evals):
    with pytest.raises(UserFacingError, match="missing evaluation .*/seed3.json"):
        collect(config(seeds=(0, 1, 2, 3)))
