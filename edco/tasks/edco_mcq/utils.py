"""Prompt functions of the edco_mcq tasks: thin wrappers over ``edco.prompts`` so that
training, scoring and evaluation show a model exactly the same question text."""

from edco.prompts import format_question, options_of, user_message


def doc_to_user_message(doc: dict) -> str:
    return user_message(doc)


def doc_to_question_answer_cue(doc: dict) -> str:
    return format_question(doc) + "\nAnswer:"


def doc_to_letters(doc: dict) -> list[str]:
    return list(options_of(doc))


def doc_to_answer_index(doc: dict) -> int:
    return doc_to_letters(doc).index(doc["answer"])
