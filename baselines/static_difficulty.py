"""``static_difficulty``: the paper's static curriculum. The *base* model's perplexity of
each reference answer is scored once (round 1, before any training) and fixes a ranking;
the rounds then walk it from easy to hard (option ``order``), each round a window of N
samples, the windows spread evenly from the easiest N to the hardest N."""

from __future__ import annotations

from edco.curriculum import Cost, RoundContext, Selection, Strategy, register, tie_break_key

ORDER = {
    "enum": ["easy_to_hard", "hard_to_easy"],
    "default": "easy_to_hard",
    "description": "direction the rounds walk the ranking (easy_to_hard: the paper's static curriculum)",
}


def window_starts(pool_size: int, n: int, rounds: int) -> list[int]:
    """Start of each round's window over a ranking of ``pool_size``: evenly spaced, the first
    at 0 and the last at ``pool_size - n`` (so every round gets N distinct samples)."""
    if rounds == 1:
        return [0]
    span = pool_size - n
    return [round(r * span / (rounds - 1)) for r in range(rounds)]


@register("static_difficulty")
class StaticDifficulty(Strategy):
    description = "base-model perplexity scored once; the rounds walk windows of N from easy to hard"
    options = {"order": ORDER}

    @classmethod
    def cost(cls, opts: dict) -> Cost:
        return Cost(scores_with="perplexity", when="once")  # the base model, in round 1

    def __init__(self, pool, config, seed):
        super().__init__(pool, config, seed)
        self.scores: dict[str, float] | None = None

    def select(self, ctx: RoundContext) -> Selection:
        tokens = 0
        if self.scores is None:
            self.scores, tokens = self.base_model_perplexity(ctx)
        ranking = sorted(self.scores, key=lambda i: (self.scores[i], tie_break_key(i)))  # easy first
        if self.opts["order"] == "hard_to_easy":
            ranking.reverse()
        start = window_starts(len(ranking), ctx.n, ctx.rounds or self.config["curriculum"]["rounds"])[ctx.round - 1]
        fresh = self.scores if tokens else {}
        return Selection(ids=ranking[start:start + ctx.n], scores=fresh, tokens_generated=tokens)
