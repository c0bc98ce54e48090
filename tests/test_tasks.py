"""Every lm-eval task the configs can name resolves offline: our YAMLs load, build a task on a
data-contract file (3, 4 and 5 options), and their prompts come from edco.prompts."""

from __future__ import annotations

import pytest

from edco import io
from edco.evaluate import TASK_FILES, task_config
from edco.prompts import user_message

ROWS = [
    {"id": "a", "question": "Three?", "options": {"A": "x", "B": "y", "C": "z"}, "answer": "C", "source": "t"},
    {"id": "b", "question": "Four?", "options": {"A": "w", "B": "x", "C": "y", "D": "z"}, "answer": "B", "source": "t"},
    {"id": "c", "question": "Five?", "options": {"A": "v", "B": "w", "C": "x", "D": "y", "E": "z"}, "answer": "E",
     "source": "t"},
]


@pytest.mark.parametrize("mode", sorted(TASK_FILES))
def test_task_resolves_and_builds_on_mixed_option_counts(tmp_path, mode):
    from lm_eval.tasks import TaskManager

    test_file = tmp_path / "test.jsonl"
    io.write_jsonl(test_file, ROWS)
    cfg = task_config(mode, "law", test_file, max_gen_toks=8)
    task = TaskManager(include_defaults=False).load([cfg])["tasks"][cfg["task"]]
    docs = list(task.test_docs())
    assert [d["id"] for d in docs] == ["a", "b", "c"]
    if mode == "generate":
        assert task.doc_to_text(docs[2]) == user_message(ROWS[2])
        assert "E. z" in task.doc_to_text(docs[2]) and "E. " not in task.doc_to_text(docs[0])
    else:
        assert [task.doc_to_choice(d) for d in docs] == [list("ABC"), list("ABCD"), list("ABCDE")]
        assert [task.doc_to_target(d) for d in docs] == [2, 1, 4]
