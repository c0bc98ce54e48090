"""benchmarks/sample_answers.py: the GRPO diagnosis counts answers that name the question's entity."""

from __future__ import annotations

import json

import pytest

from edco import io, models, synthetic
from conftest import benchmark_script
from test_models import SYN, model_cfg


@pytest.fixture(scope="module")
def sample_answers():
    return benchmark_script("sample_answers")


LEVEL2 = {"id": "x", "question": "?", "answer": "C", "explanation": "Facts: lamton is 1, tuston is 1. 1 + 1 = 2."}


@pytest.mark.parametrize("text, named", [
    ("Facts: lamton is 1.\nAnswer: B", True),
    ("Facts: goik is 3, tuston is 0.\nAnswer: D", True),   # one of the two is the question's
    ("Facts: goik is 1.\nAnswer: B", False),               # right letter, another entity
    ("lamton\nAnswer: B", False),                          # names it but states no fact
    ("Answer: C", False),
])
def test_names_reference_entity(sample_answers, text, named):
    assert sample_answers.names_reference_entity(text, LEVEL2) is named


def test_records_without_explanation_name_nothing(sample_answers):
    assert sample_answers.reference_entities({"question": "?"}) == set()


def test_main_samples_every_question_and_writes_json(sample_answers, tmp_path):
    train, _ = synthetic.generate_domain(SYN, "law")
    data = tmp_path / "train.jsonl"
    io.write_jsonl(data, train)
    cfg = model_cfg("qwen3")
    tok = models.build_tokenizer(cfg, models.corpus_texts(train))
    model_dir = models.save_model(models.build_model(cfg, tok), tok, tmp_path / "m", {"name": "m", "source": "tiny"})
    out = tmp_path / "out.json"
    result = sample_answers.main(["--model", str(model_dir), "--data", str(data), "--questions", "2",
                                  "--samples", "3", "--max-new-tokens", "8", "--out", str(out)])
    assert result["samples"] == 6 and [len(q["samples"]) for q in result["questions"]] == [3, 3]
    assert [q["id"] for q in result["questions"]] == [r["id"] for r in train[:2]]
    assert result["right_letter"] == sum(s["letter"] == q["answer"] for q in result["questions"] for s in q["samples"])
    assert json.loads(out.read_text()) == result
