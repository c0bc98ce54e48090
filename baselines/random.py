"""``random``: N samples drawn uniformly without replacement, afresh each round (seeded).

The control every strategy is compared against: same budget, no scoring cost.
"""

from __future__ import annotations

import random

from edco.curriculum import RoundContext, Selection, Strategy, register


@register("random")
class RandomStrategy(Strategy):
    description = "N samples drawn uniformly at random each round (seeded): the control"

    def select(self, ctx: RoundContext) -> Selection:
        # Seeded by (seed, round) alone, so a resumed run draws the same rounds again.
        rng = random.Random(f"random-{ctx.seed}-{ctx.round}")
        ids = rng.sample(sorted(self.by_id), ctx.n)
        return Selection(ids=ids)
