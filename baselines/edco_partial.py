"""``edco_partial``: EDCO (prefix entropy, top-N) that re-scores only a seeded random fraction
of the pool each round (option ``rescore_fraction``) and carries every other sample's latest
score over from the previous round. Round 1 scores the whole pool. The fraction drawn in
round r depends on (seed, r) only, so a resumed run re-scores the same ids. With the default
fraction 1.0 it is ``edco`` exactly; set the option below 1 to make it cheaper."""

from __future__ import annotations

import dataclasses

from baselines.edco import Edco
from edco.curriculum import Cost, register


@register("edco_partial")
class EdcoPartial(Edco):
    description = "EDCO re-scoring only a seeded random fraction of the pool per round, carrying the other scores"
    options = {
        "rescore_fraction": {
            "type": "number", "exclusiveMinimum": 0, "maximum": 1, "default": 1.0,
            "description": "fraction of the pool re-scored each round, a seeded random subset (round 1 scores all); "
                           "the other samples keep their latest score. 1.0 = the paper (edco_partial is then edco)",
        },
    }

    @classmethod
    def cost(cls, opts: dict) -> Cost:
        return dataclasses.replace(super().cost(opts), fraction=opts["rescore_fraction"])
