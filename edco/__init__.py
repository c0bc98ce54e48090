"""EDCO-bench: curriculum learning for domain LLM fine-tuning (EDCO, arXiv 2601.03725).

The paper's three components: ``estimator`` (inference entropy), ``curriculum`` with the
strategies in ``baselines/`` (top-N selection per round) and the ``trainer`` package (SFT /
GRPO rounds). ``cli`` parses every command; config, data, models and prompts are the ground
they stand on (tests/test_layers.py keeps the imports pointing down).
"""

__version__ = "0.1.0"
