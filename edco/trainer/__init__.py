"""LLM trainer (paper component 3): the round loop and the two ways to train a round.

    rounds.py  run_rounds: select -> train -> checkpoint per round, resume, the config
               fingerprint, the processes of a multi-GPU run
    sft.py     SFT on a round's selection (TRL SFTTrainer; the completion-positions loss
               shared with base pretraining, pretrain.completion_loss)
    grpo.py    GRPO on a round's selection (TRL GRPOTrainer, CurriculumSampler, the reward)
    pretrain.py  base pretraining of a tiny model (its training loop, ``python -m edco base-model``)

Both paradigms consume the selection in its order and do a fixed number of optimiser steps
per round whatever the strategy, so every strategy of a paradigm gets the same budget
(docs/design.md#strategies-and-the-budget). ``python -m edco train`` (edco/cli.py) calls ``run_rounds`` per run:

    python -m edco train --config config/smoke.yaml --domain law --model qwen3 \\
        --paradigm sft --strategy random --seed 0
"""

from edco.trainer.grpo import (CurriculumSampler, check_grpo, correct_letter_reward, grpo_config, make_grpo_trainer,
                               train_grpo)
from edco.trainer.rounds import CHECKPOINT, PARADIGMS, Processes, config_fingerprint, run_rounds
from edco.trainer.sft import make_sft_trainer, sft_config, sft_steps, sft_trainer_class, train_sft

__all__ = [
    "CHECKPOINT", "PARADIGMS", "CurriculumSampler", "Processes", "check_grpo", "config_fingerprint",
    "correct_letter_reward", "grpo_config", "make_grpo_trainer", "make_sft_trainer", "run_rounds", "sft_config",
    "sft_steps", "sft_trainer_class", "train_grpo", "train_sft",
]
