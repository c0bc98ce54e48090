"""``edco``: the paper's method with its efficient estimator — prefix entropy (first K
answer tokens after the quick-answer prompt), re-scored by the current model each round,
top-N in descending order (docs/design.md#curriculum-generator)."""

from edco.curriculum import EntropyTopN, register


@register("edco")
class Edco(EntropyTopN):
    description = "the paper's EDCO: prefix entropy of the current model each round, top-N, most uncertain first"
    estimator_kind = "prefix"
