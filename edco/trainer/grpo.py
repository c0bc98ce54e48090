"""GRPO on one round's curriculum (TRL ``GRPOTrainer``): reward 1 when the completion's last
"Answer: X" names the right option (docs/design.md#trainer), prompts walked in the selection's order by
``CurriculumSampler``, a fixed number of optimiser steps per round whatever the strategy."""

from __future__ import annotations

import logging
import math
import os
import tempfile
from pathlib import Path

import torch

from edco.errors import UserFacingError
from edco.devices import make_room_for_vllm, release_memory, vllm_problem
from edco.models import save_weights
from edco.prompts import chat_messages, chat_template_kwargs, parse_answer
from edco.trainer.args import freeze_gc_once, passthrough, shared_trainer_args

# rl.<key> -> GRPOConfig(<key>=...): the same name on both sides.
GRPO_KEYS = ("learning_rate", "per_device_train_batch_size", "gradient_accumulation_steps", "num_generations",
             "max_steps", "beta", "epsilon", "temperature", "max_completion_length", "use_vllm", "optim", "loss_type",
             "vllm_gpu_memory_utilization", "vllm_enable_sleep_mode", "vllm_max_model_length")

log = logging.getLogger("edco.trainer")

def completion_content(completion) -> str:
    """The text of one completion: a plain string (standard format) or TRL's conversational
    list of message dicts, of which the assistant turns are joined."""
    if isinstance(completion, str):
        return completion
    return "".join(m.get("content") or "" for m in completion if m.get("role", "assistant") == "assistant")


def correct_letter_reward(completions, answer, **kwargs) -> list[float]:
    """GRPO reward (docs/design.md#trainer): 1.0 when the option ``edco.prompts.parse_answer`` reads from the
    completion is the reference letter, else 0.0. ``answer`` and ``options`` are dataset columns,
    one entry per completion (the same parser reads evaluation answers)."""
    options = kwargs.get("options") or [None] * len(answer)
    return [1.0 if parse_answer(completion_content(c), o) == a else 0.0
            for c, a, o in zip(completions, answer, options, strict=True)]


def grpo_dataset(records: list[dict]):
    """TRL conversational prompt rows; ``answer`` and ``options`` reach the reward function as columns."""
    from datasets import Dataset

    return Dataset.from_list([{"prompt": chat_messages(r), "answer": r["answer"], "options": r["options"]}
                              for r in records])


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
        problem = vllm_problem(device)  # a CUDA GPU or vLLM's CPU build, on the policy's own device
        if problem:
            raise UserFacingError(f"rl.use_vllm: true cannot run here: {problem}; otherwise set rl.use_vllm: false")


def grpo_config(cfg: dict, seed: int, output_dir: str, device: str, model_cfg: dict):
    """TRL's GRPOConfig from the ``rl`` section and the model's ``models.<m>`` entry."""
    from trl import GRPOConfig

    return GRPOConfig(
        output_dir=output_dir,
        **passthrough(cfg, GRPO_KEYS),
        # The KL reference in models.<m>.dtype (bf16 in the paper config: 8 GB for 4B, not 16).
        # TRL builds it from model_init_kwargs even for a policy passed as a model, defaulting
        # to the policy's dtype, our fp32 master weights (trl grpo_trainer.py: setdefault
        # "dtype"); its log line that these kwargs "will be ignored" is about the policy only.
        model_init_kwargs={"dtype": model_cfg["dtype"]},
        # Every rollout prompt, HF generate's and the vLLM engine's alike, is rendered by TRL with
        # these (trl grpo_trainer.py, _tokenize_prompts): thinking off unless configured, the
        # Llama date pinned, as in SFT targets, scoring and evaluation.
        chat_template_kwargs=chat_template_kwargs(model_cfg),
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
                      model_cfg: dict, reward_funcs=None):
    """A GRPO trainer over ``records`` in order. The KL reference is the policy as it is now
    (the start of the round), as the official code starts each round's job from the previous
    checkpoint. TRL loads two things by name: the reference from ``model.config._name_or_path``
    and its vLLM rollout engine from ``model.name_or_path`` (trl vllm_generation.py:
    ``LLM(model=model.name_or_path)``), an attribute transformers copies once, when the model is
    loaded: the base model, or on a resumed run the round checkpoint this loop deletes a round
    later. So the current weights and the tokenizer (vLLM loads it from the same directory) are
    saved under ``output_dir``, in ``models.<m>.dtype``, and both names point there while the
    trainer is built."""
    check_grpo(cfg, tokenizer, device)
    reference = Path(output_dir) / "reference"
    reference.mkdir(parents=True)
    save_weights(model, tokenizer, reference, model_cfg["dtype"])
    names = model.name_or_path, model.config._name_or_path
    model.name_or_path = model.config._name_or_path = str(reference)
    try:
        return _curriculum_grpo_trainer_class()(
            model=model,
            reward_funcs=reward_funcs or [correct_letter_reward],
            args=grpo_config(cfg, seed, output_dir, device, model_cfg),
            train_dataset=grpo_dataset(records),
            processing_class=tokenizer,
        )
    finally:
        model.name_or_path, model.config._name_or_path = names


def rollout_tokens(logs: list[dict], cfg: dict) -> int:
    """Completion tokens generated in a round, from TRL's per-step mean completion length."""
    return round(sum(row.get("completions/mean_length", 0.0) for row in logs) * grpo_generation_batch(cfg))


def release_rollout_engine(trainer, device: str) -> None:
    """Shut a finished round's colocated vLLM engine down now. Each round builds a new
    GRPOTrainer and with it a new engine; vLLM freezes the garbage collector's heap when an
    in-process engine starts (vllm/v1/engine/core.py: ``freeze_gc_heap``), so a dropped or
    sleeping engine is never collected, nor is what was alive when it started (the round's
    trainer and KL reference model): every round would leave its share of the GPU taken. The
    shutdown unfreezes the heap, and also destroys torch's default process group
    (``cleanup_dist_env_and_memory``), which under accelerate is the one the processes share:
    ``Processes.rejoin`` (rounds.py) forms it again before the next collective. What the engine
    held goes back through ``release_memory`` (the heap glibc keeps, torch's cached GPU blocks)."""
    generation = getattr(trainer, "vllm_generation", None)
    llm = getattr(generation, "llm", None)
    if llm is None:
        return
    llm.llm_engine.engine_core.shutdown()
    generation.llm = trainer.vllm_generation = None
    del llm
    release_memory(device)


def reference_before_engine(model, cfg: dict, model_cfg: dict) -> dict:
    """{name: bytes} TRL puts on the GPU before it starts its colocated engine: the KL reference
    (beta > 0), loaded in models.<m>.dtype with device_map "auto" in one process (trl
    trainer/utils.py ``create_model_from_path``); several processes place it after the engine."""
    if not cfg["beta"] or int(os.environ.get("WORLD_SIZE", "1")) > 1:
        return {}
    size = torch.empty(0, dtype=getattr(torch, model_cfg["dtype"])).element_size()
    return {"TRL's KL reference": sum(p.numel() for p in model.parameters()) * size}


def train_grpo(model, tokenizer, records: list[dict], cfg: dict, seed: int, device: str, model_cfg: dict,
               scratch_dir: str | None = None) -> list[dict]:
    """GRPO on ``records`` in the given order for ``cfg["max_steps"]`` optimiser steps;
    ``model`` is updated in place. Returns per-step logs (loss, grad_norm, reward, entropy, kl,
    completion lengths, ...), one row per optimiser step. The round's reference save goes to
    ``scratch_dir`` (compute.scratch_dir; None = the system temp directory) and is removed."""
    visits = cfg["max_steps"] * grpo_prompts_per_step(cfg)
    log.info("GRPO round: %d steps x %d prompts = %d prompt visits over the %d selected samples (%.2f passes)%s",
             cfg["max_steps"], grpo_prompts_per_step(cfg), visits, len(records), visits / len(records),
             "; the tail of the selection is not reached" if visits < len(records) else "")
    freeze_gc_once()
    if cfg["use_vllm"]:
        make_room_for_vllm(device, cfg["vllm_gpu_memory_utilization"], "rl.vllm_gpu_memory_utilization",
                           {"the policy": model}, reference_before_engine(model, cfg, model_cfg))
    with tempfile.TemporaryDirectory(prefix="edco-grpo-", dir=scratch_dir) as tmp:
        trainer = make_grpo_trainer(model, tokenizer, records, cfg, seed, device, tmp, model_cfg)
        try:
            trainer.train()
            return [row for row in trainer.state.log_history if "loss" in row]
        finally:
            release_rollout_engine(trainer, device)
