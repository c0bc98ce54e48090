"""The generative lm-eval task reads replies with edco.prompts.parse_answer (its ``custom`` filter),
end to end through lm-eval 0.4.13 with a stand-in LM that replies as real models do."""

from __future__ import annotations

import pytest

from edco import io
from edco.evaluate import _per_question, task_config, unparsed_share
from edco.prompts import INVALID

ROWS = [
    {"id": "a", "question": "Which radio?", "options": {"A": "Bluetooth", "B": "Wi-Fi", "C": "Zigbee"},
     "answer": "A", "source": "t"},
    {"id": "b", "question": "Which mesh?", "options": {"A": "Bluetooth", "B": "Wi-Fi", "C": "Zigbee", "D": "LoRa"},
     "answer": "C", "source": "t"},
    {"id": "c", "question": "Which band?", "options": {"A": "2.4 GHz", "B": "5 GHz", "C": "6 GHz", "D": "60 GHz",
                                                        "E": "sub-GHz"}, "answer": "E", "source": "t"},
    {"id": "d", "question": "Which one?", "options": {"A": "x", "B": "y", "C": "z"}, "answer": "B", "source": "t"},
]
# id -> reply: SmolLM2's option line, an option's text, a letter the question lacks, no choice.
REPLIES = {"a": "A. Bluetooth<|im_end|>", "b": "Zigbee<|im_end|>", "c": "Answer: F", "d": "I am not sure."}


@pytest.fixture
def fake_lm():
    from lm_eval.api.model import LM

    class RepliesByDocId(LM):
        def generate_until(self, requests, disable_tqdm=False):
            return [REPLIES[r.doc["id"]] for r in requests]

        def loglikelihood(self, requests, disable_tqdm=False):
            raise AssertionError("the generative task must not ask for log-likelihoods")

        loglikelihood_rolling = loglikelihood

    return RepliesByDocId()


def test_generative_task_parses_like_the_reward_and_marks_unparseable(tmp_path, fake_lm):
    import lm_eval
    from lm_eval.tasks import TaskManager

    test_file = tmp_path / "test.jsonl"
    io.write_jsonl(test_file, ROWS)
    task = task_config("generate", "communication", test_file, max_gen_toks=8)
    result = lm_eval.simple_evaluate(model=fake_lm, tasks=[task], log_samples=True, bootstrap_iters=0,
                                     task_manager=TaskManager(include_defaults=False))
    samples = result["samples"][task["task"]]
    assert {s["doc"]["id"]: s["filtered_resps"][0] for s in samples} == {"a": "A", "b": "C", "c": INVALID,
                                                                         "d": INVALID}
    assert result["results"][task["task"]]["exact_match,answer"] == pytest.approx(0.5)
    per_question = _per_question(samples, "generate")
    assert {q: a["pred"] for q, a in per_question.items()} == {"a": "A", "b": "C", "c": INVALID, "d": INVALID}
    assert [per_question[q]["correct"] for q in "abcd"] == [True, True, False, False]
    assert {q: a["reply"] for q, a in per_question.items()} == REPLIES  # kept, so a reader can see why
    assert unparsed_share(per_question) == 0.5  # c and d: the summary's and the main table's share
