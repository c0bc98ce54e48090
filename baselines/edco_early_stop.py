"""``edco_early_stop``: EDCO (prefix entropy, top-N) that stops re-scoring once the curriculum
has settled: when the selections of the last two rounds overlap (Jaccard) at least
``stop_overlap`` (its option), the round reuses the last round's scores (and so its
selection) and generates nothing; that keeps the overlap at 1, so it stays stopped. Decided
from ``ctx.previous`` alone, so a resumed run decides the same way. With the default ``null``
it never stops: it is ``edco`` exactly."""

from __future__ import annotations

import dataclasses

from baselines.edco import Edco
from edco.curriculum import Cost, register


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

    @classmethod
    def cost(cls, opts: dict) -> Cost:
        if opts["stop_overlap"] is None:
            return super().cost(opts)
        return dataclasses.replace(super().cost(opts), bound=f"edco_early_stop re-scores every round until two "
                                   f"selections overlap >= {opts['stop_overlap']}, then stops")

    def stop_overlap(self) -> float | None:
        return self.opts["stop_overlap"]
