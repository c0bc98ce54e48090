"""GRPO on one round's curriculum (TRL ``GRPOTrainer``): reward 1 when the completion's last
"Answer: X" names the right option (DESIGN §1.3), prompts walked in the selection's order by
``CurriculumSampler``, a fixed number of optimiser steps per round whatever the strategy."""

from __future__ import annotations

import importlib.util
import logging
import math
import tempfile
from pathlib import Path

import torch

from edco.errors import UserFacingError
from edco.prompts import chat_messages, parse_answer
from edco.trainer.args import passthrough, shared_trainer_args

# rl.<key> -> GRPOConfig(<key>=...): the same name on both sides.
GRPO_KEYS = ("learning_rate", "per_device_train_batch_size", "gradient_accumulation_steps", "num_generations",
             "max_steps", "beta", "epsilon", "temperature", "max_completion_length", "use_vllm")

log = logging.getLogger("edco.trainer")

def completion_content(completion) -> str:
    """The text of one completion: a plain string (standard format) or TRL's conversational
    list of message dicts, of which the assistant turns are joined."""
    if isinstance(completion, str):
        return completion
    return "".join(m.get("content") or "" for m in completion if m.get("role", "assistant") == "assistant")


def correct_letter_reward(completions, answer, **kwargs) -> list[float]:
    """GRPO reward (DESIGN §1.3): 1.0 when the last "Answer: X" of the completion is the
    reference letter, else 0.0. ``answer`` is the dataset column, one entry per completion."""
    return [1.0 if parse_answer(completion_content(c)) == a else 0.0
            for c, a in zip(completions, answer, strict=True)]


def grpo_dataset(records: list[dict]):
    """TRL conversational prompt rows; ``answer`` reaches the reward function as a column."""
    from datasets import Dataset

    return Dataset.from_list([{"prompt": chat_messages(r), "answer": r["answer"]} for r in records])


def grpo_generation_batch(cfg: dict) -> int:
    """Completions per optimiser step (one generation batch per step, one process)."""
    return cfg["per_device_train_batch_size"] * cfg["gradient_accumulation_steps"]


def grpo_prompts_per_step(cfg: dict) -> int:
    """Distinct prompt visits per optimiser step: the generation batch / rollouts per prompt."""
    return grpo_generation_batch(cfg) // cfg["num_generations"]


def check_grpo(cfg: dict, tokenizer, device: str) -> None:
    """Stop before any training on a GRPO setting that cannot work; say what to change."""
    batch, groups = grpo_generation_batch(cfg), cfg["num_generations"]
    if batch % groups:
        fit = max(groups, round(batch / groups) * groups)
        raise UserFacingError(
            f"rl.per_device_train_batch_size x rl.gradient_accumulation_steps = {batch} completions per step is "
            f"not a multiple of rl.num_generations = {groups}: a prompt's {groups} rollouts must share a step to "
            f"get a group advantage; set rl.per_device_train_batch_size to a multiple of {groups} (e.g. {fit})"
        )
    if tokenizer.eos_token_id is None:
        raise UserFacingError(
            "rl: the model's tokenizer has no EOS token, so it is a model that cannot generate (a rollout would "
            "never end); use a model whose tokenizer defines eos_token (models.<name>), or paradigm sft"
        )
    if cfg["use_vllm"]:
        fix = "set rl.use_vllm: false, or install the vllm extra on a GPU machine (pip install 'edco-bench[vllm]')"
        if importlib.util.find_spec("vllm") is None:
            raise UserFacingError(f"rl.use_vllm: true needs the vllm package, which is not installed; {fix}")
        if not str(device).startswith("cuda") or not torch.cuda.is_available():
            raise UserFacingError(f"rl.use_vllm: true needs a CUDA GPU (compute.device is {device!r}, "
                                  f"CUDA available: {torch.cuda.is_available()}); {fix}")


def grpo_config(cfg: dict, seed: int, output_dir: str, device: str):
    from trl import GRPOConfig

    return GRPOConfig(
        output_dir=output_dir,
        **passthrough(cfg, GRPO_KEYS),
        lr_scheduler_type="constant",  # paper: 1e-6 constant
        # One generation batch per optimiser step (TRL's default, stated): the step's prompt
        # set is the curriculum unit; TRL only shuffles rows *within* a generation batch.
        steps_per_generation=cfg["gradient_accumulation_steps"],
        # CurriculumGRPOTrainer replaces the sampler; this switch only documents the intent.
        shuffle_dataset=False,
        **shared_trainer_args(seed, device, cfg),
    )


class CurriculumSampler(torch.utils.data.Sampler):
    """Prompt indices in curriculum order, each repeated ``num_generations`` times in a row.

    TRL's ``RepeatSampler`` permutes the dataset (``shuffle_dataset`` switches that off) and
    drops a last chunk smaller than a generation batch, and a new epoch restarts at index 0,
    so with N not a multiple of the prompts per step the tail of the selection is never seen.
    Here prompt k of the round is ``k mod N``: the selection in order, cycled, nothing dropped.
    Each generation batch of ``per_generation`` prompts is yielded ``repeat_count`` times, as
    TRL's dataloader expects (it reads the repeats but reuses the buffered generations).
    """

    def __init__(self, n_prompts: int, num_generations: int, per_generation: int, repeat_count: int,
                 generations: int):
        self.n_prompts, self.num_generations = n_prompts, num_generations
        self.per_generation, self.repeat_count, self.generations = per_generation, repeat_count, generations

    def __iter__(self):
        for g in range(self.generations):
            chunk = [(g * self.per_generation + i) % self.n_prompts for i in range(self.per_generation)]
            for _ in range(self.repeat_count):
                for index in chunk:
                    yield from [index] * self.num_generations

    def __len__(self) -> int:
        return self.generations * self.repeat_count * self.per_generation * self.num_generations


def _curriculum_grpo_trainer_class():
    from trl import GRPOTrainer

    class CurriculumGRPOTrainer(GRPOTrainer):
        """GRPOTrainer that walks the round's selection in order (see ``CurriculumSampler``)."""

        def _get_train_sampler(self, dataset=None):
            dataset = self.train_dataset if dataset is None else dataset
            args = self.args
            micro_steps_per_generation = args.steps_per_generation * self.num_iterations
            return CurriculumSampler(
                n_prompts=len(dataset),
                num_generations=self.num_generations,
                per_generation=args.generation_batch_size // self.num_generations,
                repeat_count=micro_steps_per_generation,
                generations=math.ceil(args.max_steps * args.gradient_accumulation_steps / micro_steps_per_generation),
            )

    return CurriculumGRPOTrainer


def make_grpo_trainer(model, tokenizer, records: list[dict], cfg: dict, seed: int, device: str, output_dir: str,
                      reward_funcs=None):
    """A GRPO trainer over ``records`` in order. The KL reference is the policy as it is now
    (the start of the round), as the official code starts each round's job from the previous
    checkpoint; TRL would reload ``config._name_or_path`` instead (the base model, or a
    round checkpoint this loop has since deleted), so the weights are saved under
    ``output_dir`` and the reference is loaded from there."""
    check_grpo(cfg, tokenizer, device)
    reference = Path(output_dir) / "reference"
    model.save_pretrained(reference, safe_serialization=True)
    name_or_path = model.config._name_or_path
    model.config._name_or_path = str(reference)
    try:
        return _curriculum_grpo_trainer_class()(
            model=model,
            reward_funcs=reward_funcs or [correct_letter_reward],
            args=grpo_config(cfg, seed, output_dir, device),
            train_dataset=grpo_dataset(records),
            processing_class=tokenizer,
        )
    finally:
        model.config._name_or_path = name_or_path


def rollout_tokens(logs: list[dict], cfg: dict) -> int:
    """Completion tokens generated in a round, from TRL's per-step mean completion length."""
    return round(sum(row.get("completions/mean_length", 0.0) for row in logs) * grpo_generation_batch(cfg))


def train_grpo(model, tokenizer, records: list[dict], cfg: dict, seed: int, device: str) -> list[dict]:
    """GRPO on ``records`` in the given order for ``cfg["max_steps"]`` optimiser steps;
    ``model`` is updated in place. Returns per-step logs (loss, grad_norm, reward, entropy, kl,
    completion lengths, ...), one row per optimiser step."""
    visits = cfg["max_steps"] * grpo_prompts_per_step(cfg)
    log.info("GRPO round: %d steps x %d prompts = %d prompt visits over the %d selected samples (%.2f passes)%s",
             cfg["max_steps"], grpo_prompts_per_step(cfg), visits, len(records), visits / len(records),
             "; the tail of the selection is not reached" if visits < len(records) else "")
    with tempfile.TemporaryDirectory(prefix="edco-grpo-") as tmp:
        trainer = make_grpo_trainer(model, tokenizer, records, cfg, seed, device, tmp)
        trainer.train()
        return [row for row in trainer.state.log_history if "loss" in row]
