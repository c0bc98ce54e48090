"""``ucb_bandit``: a learning-progress bandit over difficulty buckets (as SEC and DUMP do for
RL curricula), the dynamic baseline the paper's reviewers asked for.

Arms. The pool's ``difficulty`` levels, one arm per level, easiest first, when every sample
has one and there are at least two levels; otherwise ``ucb_buckets`` (an option) quantiles of
the *base* model's perplexity of the reference answer (scored once, in round 1, as
``static_difficulty`` does; ranked low -> high with id-hash ties and cut into contiguous,
near-equal chunks, the larger ones first). Arm 0 is the easiest.

Reward of a round (``round_gain``): the learning progress it produced, from the trainer's
per-step logs. GRPO logs a ``reward`` per step: mean reward over the second half of the
round's steps minus over the first half. SFT logs only ``loss``: mean loss over the first
half minus over the second (the loss drop). Fewer than two steps: 0. The middle step of an
odd count is left out.

Pull. UCB1: arm a, pulled n_a times with reward sum s_a, after t = sum n_a rounds, has index
s_a / n_a + c * sqrt(2 ln t / n_a), c = option ``ucb_c``; an arm never pulled has +inf.
The round takes its N samples from the arm with the highest index (ties: the easier arm), a
seeded random draw without replacement (generator of (seed, round)), in drawn order. If that
arm has fewer than N samples, it gives all of them and the rest comes from the next arms in
index order, each drawn the same way: a deterministic fill. (A mixture weighted by UCB
indices was not used: they are +inf for unplayed arms and negative after a loss increase.)
Credit goes by share: an arm that supplied k of the N samples counts k/N of a pull and
k/N of the round's reward, so a single-arm round is one plain UCB1 pull.

Resume. The bandit's state is recomputed every round from the history the trainer reads
back from disk: which arm each earlier selection came from (``ctx.previous``) and each
round's step logs (``ctx.feedback``); the arms themselves are fixed by the pool or by round
1's saved perplexities. A resumed run therefore pulls exactly as an unbroken one.
"""

from __future__ import annotations

import logging
import math
import random
from collections import Counter

from edco.curriculum import Cost, RoundContext, Selection, Strategy, register, tie_break_key
from edco.errors import UserFacingError

log = logging.getLogger("edco.curriculum")


def round_gain(steps: list[dict]) -> float:
    """Learning progress of one round from its per-step logs (see the module docstring)."""
    key, sign = ("reward", 1.0) if any("reward" in s for s in steps) else ("loss", -1.0)
    values = [float(s[key]) for s in steps if key in s]
    half = len(values) // 2
    if half == 0:
        return 0.0
    first, second = values[:half], values[len(values) - half:]
    return sign * (sum(second) / half - sum(first) / half)


def ucb_indices(pulls: list[float], sums: list[float], c: float) -> list[float]:
    """UCB1 index per arm: mean reward + c * sqrt(2 ln t / n), +inf for an arm never pulled."""
    t = sum(pulls)
    return [math.inf if n == 0 else s / n + c * math.sqrt(2 * math.log(t) / n) for n, s in zip(pulls, sums)]


def quantile_arms(scores: dict[str, float], k: int) -> list[list[str]]:
    """``scores`` ranked low -> high (id-hash ties) and cut into ``k`` contiguous chunks whose
    sizes differ by at most one (the larger first); empty chunks are dropped."""
    ranked = sorted(scores, key=lambda i: (scores[i], tie_break_key(i)))
    size, extra = divmod(len(ranked), k)
    arms, start = [], 0
    for a in range(k):
        end = start + size + (a < extra)
        arms.append(ranked[start:end])
        start = end
    return [arm for arm in arms if arm]


@register("ucb_bandit")
class UcbBandit(Strategy):
    description = "UCB1 bandit over difficulty buckets, rewarded by each round's learning progress"
    options = {
        "ucb_buckets": {
            "type": "integer", "minimum": 2, "default": 4,
            "description": "arms = this many quantiles of the base model's perplexity when the pool has no "
                           "difficulty levels (otherwise one arm per level)",
        },
        "ucb_c": {"type": "number", "minimum": 0, "default": 1.0,
                  "description": "UCB1 exploration coefficient c in mean + c * sqrt(2 ln t / n)"},
    }

    @classmethod
    def cost(cls, opts: dict) -> Cost:
        return Cost(scores_with="perplexity", when="once",
                    bound="ucb_bandit scores the base model's perplexity once only when the pool has no difficulty "
                          "levels (otherwise one arm per level, no model call)")

    def __init__(self, pool, config, seed):
        super().__init__(pool, config, seed)
        levels = [r.get("difficulty") for r in pool]
        self.by_difficulty = all(isinstance(v, int) for v in levels) and len(set(levels)) >= 2
        self.arms: list[list[str]] | None = None
        if self.by_difficulty:
            self.arms = [[r["id"] for r in pool if r["difficulty"] == v] for v in sorted(set(levels))]
        self.updates: dict[int, list[dict]] = {}

    def update(self, round_metrics: dict) -> None:
        # Kept for loops that do not fill ctx.feedback; the trainer's feedback takes precedence.
        self.updates[round_metrics["round"]] = round_metrics["steps"]

    def select(self, ctx: RoundContext) -> Selection:
        scored, tokens = {}, 0
        if self.arms is None:
            scores, tokens = self.base_model_perplexity(ctx)
            scored = scores if tokens else {}  # written once, with round 1
            self.arms = quantile_arms(scores, self.opts["ucb_buckets"])
        pulls, sums = self.statistics(ctx)
        index = ucb_indices(pulls, sums, self.opts["ucb_c"])
        order = sorted(range(len(self.arms)), key=lambda a: (-index[a], a))
        rng = random.Random(f"ucb-{ctx.seed}-{ctx.round}")
        ids: list[str] = []
        for a in order:
            ids += rng.sample(self.arms[a], min(len(self.arms[a]), ctx.n - len(ids)))
            if len(ids) == ctx.n:
                break
        log.info("ucb_bandit round %d: arm sizes %s, pulls %s, reward sums %s, indices %s -> arm %d",
                 ctx.round, [len(a) for a in self.arms], [round(p, 3) for p in pulls], [round(s, 4) for s in sums],
                 [round(i, 4) for i in index], order[0])
        return Selection(ids=ids, scores=scored, tokens_generated=tokens)

    def statistics(self, ctx: RoundContext) -> tuple[list[float], list[float]]:
        """(pulls, reward sums) per arm after rounds 1..round-1, credited by share."""
        arm_of = {i: a for a, ids in enumerate(self.arms) for i in ids}
        steps = {**self.updates, **{f["round"]: f["steps"] for f in ctx.feedback}}
        pulls, sums = [0.0] * len(self.arms), [0.0] * len(self.arms)
        for r, previous in enumerate(ctx.previous, start=1):
            if r not in steps:
                raise UserFacingError(f"ucb_bandit: no training logs of round {r} (ctx.feedback / update); "
                                      f"the bandit cannot credit that round's arm")
            gain = round_gain(steps[r])
            for a, count in Counter(arm_of[i] for i in previous.ids).items():
                share = count / len(previous.ids)
                pulls[a] += share
                sums[a] += share * gain
        return pulls, sums
