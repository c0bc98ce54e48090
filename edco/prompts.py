"""Every prompt the suite shows a model, in one place.

Training, evaluation and full-entropy scoring use the model's chat template with
``chat_messages``; the paper's prefix estimator uses ``quick_answer_prompt`` as raw text
(no chat template). Completions end with ``Answer: X`` so one parser serves SFT targets,
GRPO rewards and generative evaluation.
"""

from __future__ import annotations

import re

# DESIGN §1.1: the paper's quick-answer instruction for the prefix estimator, verbatim.
QUICK_ANSWER_INSTRUCTION = (
    "Answer the question below in at most three sentences; if reasoning is needed keep it "
    "as short as possible.\nQuestion:\n"
)
ANSWER_INSTRUCTION = 'End your reply with "Answer: X", where X is the letter of the correct option.'

_ANSWER_RE = re.compile(r"Answer:\s*\(?([A-Z])\b")


def options_of(record: dict) -> dict[str, str]:
    """The record's options; ``None`` entries (HF ``datasets`` pads option structs to the
    union of keys across rows, e.g. 4- and 5-option questions in one file) are dropped."""
    return {letter: text for letter, text in record["options"].items() if text is not None}


def format_question(record: dict) -> str:
    """Question text followed by one ``A. option`` line per option, in key order."""
    lines = [record["question"].strip()]
    lines += [f"{letter}. {text}" for letter, text in options_of(record).items()]
    return "\n".join(lines)


def user_message(record: dict) -> str:
    return f"{format_question(record)}\n{ANSWER_INSTRUCTION}"


def chat_messages(record: dict) -> list[dict]:
    """Conversational prompt (TRL prompt/completion format, lm-eval chat template)."""
    return [{"role": "user", "content": user_message(record)}]


def completion_text(record: dict) -> str:
    """SFT target: the explanation (or the option text) then ``Answer: X``."""
    letter = record["answer"]
    reason = (record.get("explanation") or record["options"][letter]).strip()
    return f"{reason}\nAnswer: {letter}"


def quick_answer_prompt(record: dict) -> str:
    """Raw-text prompt of the paper's prefix estimator (no chat template)."""
    return QUICK_ANSWER_INSTRUCTION + format_question(record) + "\n"


def parse_answer(text: str) -> str | None:
    """The letter of the *last* ``Answer: X`` in ``text``, or None."""
    found = _ANSWER_RE.findall(text)
    return found[-1] if found else None
