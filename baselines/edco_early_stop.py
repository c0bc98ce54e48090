"""``edco_early_stop``: EDCO (prefix entropy, top-N) that stops re-scoring once the curriculum
has settled: when the selections of the last two rounds overlap (Jaccard) at least
``stop_overlap`` (its option), the round reuses the last round's scores (and so its
selection) and generates nothing; that keeps the overlap at 1, so it stays stopped. Decided
from ``ctx.previous`` alone, so a resumed run decides the same way. With the default ``null``
it never stops: it is ``edco`` exactly."""

from __future__ import annotations

import logging

from baselines.edco import Edco
from edco.curriculum import register

log = logging.getLogger("edco.curriculum")


@register("edco_early_stop")
class EdcoEarlyStop(Edco):
    description = "EDCO that stops re-scoring once two consecutive selections overlap enough"
    options = {
        "stop_overlap": {
            "type": ["number", "null"], "minimum": 0, "maximum": 1, "default": None,
            "description": "once the last two selections overlap (Jaccard) at least this much, stop re-scoring and "
                           "reuse the last scores and selection. null = never (the paper; it is then edco)",
        },
    }

    def __init__(self, pool, config, seed):
        super().__init__(pool, config, seed)
        if self.stop_overlap() is None:
            log.warning("edco_early_stop with strategy_options.edco_early_stop.stop_overlap = null never stops "
                        "re-scoring: it is edco; set it (e.g. 0.8)")

    def stop_overlap(self) -> float | None:
        return self.opts["stop_overlap"]
