"""Prompt functions and the answer filter of the edco_mcq tasks: thin wrappers over
``edco.prompts`` so that training, scoring and evaluation show a model exactly the same question
text, and evaluation reads replies exactly as the GRPO reward does."""

from edco.prompts import INVALID, format_question, options_of, parse_answer, user_message


def doc_to_user_message(doc: dict) -> str:
    return user_message(doc)


def doc_to_question_answer_cue(doc: dict) -> str:
    return format_question(doc) + "\nAnswer:"


def doc_to_letters(doc: dict) -> list[str]:
    return list(options_of(doc))


def doc_to_answer_index(doc: dict) -> int:
    return doc_to_letters(doc).index(doc["answer"])


def answer_letters(resps: list[list[str]], docs: list[dict]) -> list[list[str]]:
    """lm-eval ``custom`` filter (``filter_fn``): every reply -> the letter it chooses among its
    question's options, or ``[invalid]`` when it chooses none (counted as unparseable)."""
    return [[parse_answer(r, options_of(doc)) or INVALID for r in replies]
            for replies, doc in zip(resps, docs, strict=True)]
