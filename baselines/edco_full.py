"""``edco_full``: EDCO with full-sequence entropy (the chat prompt, one sampled answer to
EOS or ``estimator.full_max_tokens``): the paper's ablation of the prefix estimate."""

from edco.curriculum import EntropyTopN, register


@register("edco_full")
class EdcoFull(EntropyTopN):
    description = "EDCO with full-answer entropy (the paper's ablation of the prefix estimate)"
    estimator_kind = "full"
