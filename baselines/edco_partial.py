"""``edco_partial``: EDCO (prefix entropy, top-N) that re-scores only a seeded random fraction
of the pool each round (``curriculum.rescore_fraction``) and carries every other sample's
latest score over from the previous round. Round 1 scores the whole pool. The fraction drawn
in round r depends on (seed, r) only, so a resumed run re-scores the same ids. With the
default fraction 1.0 it is ``edco`` exactly; set the key below 1 to make it cheaper."""

from __future__ import annotations

import logging

from baselines.edco import Edco
from edco.curriculum import register

log = logging.getLogger("edco.curriculum")


@register("edco_partial")
class EdcoPartial(Edco):
    def __init__(self, pool, config, seed):
        super().__init__(pool, config, seed)
        if self.rescore_fraction() >= 1.0:
            log.warning("edco_partial with curriculum.rescore_fraction = 1.0 re-scores the whole pool: it is edco; "
                        "set curriculum.rescore_fraction below 1 (e.g. 0.25)")

    def rescore_fraction(self) -> float:
        return self.config["curriculum"].get("rescore_fraction", 1.0)
