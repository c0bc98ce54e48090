"""The verdict on a hand-made results tree: pooled and per-cell differences against random,
Holm over the pooled family, a forest plot, and no verdict where none applies."""

from __future__ import annotations

import pytest

from edco import io, layout
from edco.report import load
from edco.report.stats import ALL_CELLS
from edco.report.verdict import verdict_frame, write_verdict

applies = layout.has_verdict

QUESTIONS = [f"q{i}" for i in range(60)]
SEEDS = (0, 1, 2, 3)
CELLS = [("law", "m1"), ("law", "m2")]


def config(strategies=("random", "good", "same")) -> dict:
    return {"run": "r", "seeds": list(SEEDS),
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
    frame = verdict_frame(load.questions(load.evaluations(tree, base=False)), iterations=2000)
    pooled = frame[frame["domain"] == ALL_CELLS].set_index("strategy")
    assert list(pooled.index) == ["good", "same"]
    assert pooled.loc["good", "diff"] == pytest.approx(0.25)
    assert pooled.loc["good", "verdict"] == "beats random"
    assert pooled.loc["good", "cells_better"] == 2 and pooled.loc["good", "cells_worse"] == 0
    assert pooled.loc["same", "diff"] == pytest.approx(2 / 60 / 4)
    assert pooled.loc["same", "verdict"].startswith("no difference shown")
    assert pooled.loc["same", "p_holm"] >= pooled.loc["same", "p"]
    cells = frame[frame["domain"] != ALL_CELLS]
    assert len(cells) == 4 and set(cells["model"]) == {"m1", "m2"}


def test_write_verdict_writes_tables_and_the_forest_plot(tree):
    paths = write_verdict(tree, iterations=500)
    assert {p.name for p in paths} == {f"verdict.{ext}" for ext in ("csv", "md", "tex", "html", "png")}
    text = layout.tables_dir("r").joinpath("verdict.md").read_text()
    assert "beats random" in text and "law · m2" in text


def test_a_lead_is_called_a_lead_when_only_the_uncorrected_p_passes():
    from edco.report.verdict import verdict_text

    row = {"diff": 0.05, "low": 0.01, "high": 0.09, "p": 0.02, "p_holm": 0.2}
    assert verdict_text(row).startswith("a lead, not a result: above random")
    assert verdict_text({**row, "p": 0.3, "p_holm": 1.0}).startswith("no difference shown")
    assert verdict_text({**row, "diff": -0.05, "p_holm": 0.01}) == "worse than random"


def test_no_verdict_without_random_or_with_one_seed():
    assert applies(config())
    assert not applies(config(("edco", "good")))
    assert not applies({**config(), "seeds": [0]})
