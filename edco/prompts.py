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
# The synthetic world's reasoning chain: recalled facts ("kornet is 2.") and running sums ("2 + 3 = 1.").
_FACT_RE = re.compile(r"\S+ is (\d)\.")
_SUM_RE = re.compile(r"= (\d)\.")


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


def quick_answer_text(record: dict) -> str:
    """Short answer to ``quick_answer_prompt`` (taught in base pretraining): for a synthetic
    record, level 1 the recalled fact, level k the recalled values and their sum
    ('2 + 3 + 1 = 2.', the chain's last running sum), then ``Answer: X``. The recalled values
    come first, so the prefix estimator's first K tokens are where a model that lacks the facts
    is unsure. Records without a fact chain (real data) get ``completion_text``."""
    values = _FACT_RE.findall(record.get("explanation") or "")
    if not values:
        return completion_text(record)
    if len(values) == 1:
        short = record["explanation"]
    else:
        short = " + ".join(values) + f" = {_SUM_RE.findall(record['explanation'])[-1]}."
    return completion_text({**record, "explanation": short})


def parse_answer(text: str) -> str | None:
    """The letter of the *last* ``Answer: X`` in ``text``, or None."""
    found = _ANSWER_RE.findall(text)
    return found[-1] if found else None
