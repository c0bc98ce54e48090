"""``answer_complexity``: the paper's answer-complexity baseline, a static curriculum by how
much reasoning the reference answer spells out. The reasoning is the record's
``explanation`` (the option text of the answer where there is none). Its complexity is its
number of steps, i.e. sentences (split after . ! ? followed by a space or the end, after
。！？, and at line breaks; a heuristic: "e.g." counts as an end), with ties between equal step
counts broken by its length in tokens: score = sentences + tokens / (1 + the pool's longest
reasoning in tokens), so the integer part is the step count. Scored once from the text, then
walked simple -> complex like ``static_difficulty``.

On a pool without explanations the measure degenerates to the length of the answer option;
the smoke world's explanations have 2k - 1 sentences for a level-k question.
"""

from __future__ import annotations

import re

from baselines.length import StaticMeasure, token_counts
from edco.curriculum import register

_SENTENCE_END = re.compile(r"[.!?]+(?=\s|$)|[。！？]+|\n+")


def reasoning_text(record: dict) -> str:
    return (record.get("explanation") or record["options"][record["answer"]]).strip()


def sentence_count(text: str) -> int:
    return sum(1 for piece in _SENTENCE_END.split(text) if piece.strip())


@register("answer_complexity")
class AnswerComplexity(StaticMeasure):
    description = "reasoning steps (sentences) of the reference answer, then its tokens; rounds walk simple to complex"

    def measure(self, records: list[dict], tokenizer) -> list[float]:
        texts = [reasoning_text(r) for r in records]
        tokens = token_counts(tokenizer, texts)
        scale = 1 + max(tokens, default=0)
        return [sentence_count(t) + n / scale for t, n in zip(texts, tokens)]
