"""``edco_full_low``: the dose-response control of ``edco_full``: each round the current model
re-scores the whole pool with full-sequence entropy, as ``edco_full`` does, and the round trains
on the N samples of *lowest* entropy, most certain first. Top (``edco_full``), ``random`` and
bottom at equal budget say whether entropy order matters at all, and in which direction (the
CPU study, third edition: results/reference/cpu_study_v3/PLAN.md)."""

from edco.curriculum import EntropyTopN, bottom_n, register


@register("edco_full_low")
class EdcoFullLow(EntropyTopN):
    description = "the N lowest full-answer entropies, re-scored each round (edco_full's dose-response control)"
    estimator_kind = "full"

    def pick(self, scores: dict[str, float], n: int) -> list[str]:
        return bottom_n(scores, n)
