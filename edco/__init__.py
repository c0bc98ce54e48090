"""EDCO-bench: curriculum learning for domain LLM fine-tuning (EDCO, arXiv 2601.03725).

The paper's three components are three modules: ``estimator`` (inference entropy),
``curriculum`` (top-N selection per round) and ``trainer`` (SFT / GRPO rounds).
"""

__version__ = "0.1.0"
