"""``ppl_dynamic``: the cheap dynamic twin of EDCO. Each round the *current* model re-scores
the whole pool by its perplexity of the reference answer (one teacher-forced forward pass,
no sampling: 2 ** mean surprisal in bits); the round trains on the top-N, highest perplexity
first. The same model signal as ``static_difficulty``, re-measured every round."""

from edco.curriculum import EntropyTopN, register


@register("ppl_dynamic")
class PplDynamic(EntropyTopN):
    description = "perplexity of the reference answer by the current model each round, top-N (no sampling)"
    estimator_kind = "perplexity"
