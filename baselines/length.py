"""``length``: the paper's length baseline, a static curriculum by how long a sample is: the
number of tokens (the run's tokenizer, no special tokens) of the question with its lettered
options (``prompts.format_question``) plus the SFT target (``prompts.completion_text``: the
explanation or option text, then "Answer: X"). Scored once, from the text alone (no model
call), then walked short -> long like ``static_difficulty`` (its windows and its ``order``
option). Tokens rather than words, so a language without spaces is measured too.

``StaticMeasure`` is the shared machinery of the text-measured static baselines
(``length``, ``answer_complexity``): a ``measure(records, tokenizer)`` hook replaces
static_difficulty's perplexity scoring; the walk is inherited, not copied.
"""

from __future__ import annotations

from baselines.static_difficulty import StaticDifficulty
from edco.curriculum import Cost, RoundContext, Selection, register
from edco.prompts import completion_text, format_question


def token_counts(tokenizer, texts: list[str]) -> list[int]:
    """Tokens of each text, without the special tokens a tokenizer may add."""
    return [len(tokenizer.encode(t, add_special_tokens=False)) for t in texts]


class StaticMeasure(StaticDifficulty):
    """A static_difficulty walk over a ranking measured from the text (higher = harder)."""

    @classmethod
    def cost(cls, opts: dict) -> Cost:
        return Cost()  # measured from the text: no model call

    def measure(self, records: list[dict], tokenizer) -> list[float]:
        raise NotImplementedError

    def select(self, ctx: RoundContext) -> Selection:
        if self.scores is None:
            # A pure function of the pool and the tokenizer: recomputed on resume, nothing to read back.
            values = self.measure(self.pool, ctx.tokenizer)
            self.scores = {r["id"]: float(v) for r, v in zip(self.pool, values, strict=True)}
        selection = super().select(ctx)
        if ctx.round == 1:  # as static_difficulty: the ranking is written once, with round 1
            selection.scores = dict(self.scores)
        return selection


@register("length")
class Length(StaticMeasure):
    description = "tokens of question + options + SFT target, measured once; rounds walk short to long"

    def measure(self, records: list[dict], tokenizer) -> list[float]:
        questions = token_counts(tokenizer, [format_question(r) for r in records])
        answers = token_counts(tokenizer, [completion_text(r) for r in records])
        return [q + a for q, a in zip(questions, answers)]
