"""SFT on one round's curriculum (TRL ``SFTTrainer``): conversational prompt/completion rows,
loss on the completion only, the selection consumed in its order (no shuffling)."""

from __future__ import annotations

import math
import os
import tempfile

from edco.errors import UserFacingError
from edco.prompts import chat_messages, chat_template_kwargs, completion_text
from edco.trainer.args import freeze_gc_once, passthrough, shared_trainer_args
from edco.trainer.pretrain import completion_loss

# sft.<key> -> SFTConfig(<key>=...): the same name on both sides.
SFT_KEYS = ("learning_rate", "per_device_train_batch_size", "gradient_accumulation_steps", "num_train_epochs",
            "weight_decay", "lr_scheduler_type", "warmup_steps", "max_length", "optim")


def sft_dataset(records: list[dict], model_cfg: dict):
    """TRL conversational prompt/completion rows: loss on the completion only. Each row carries
    the model's chat-template arguments (TRL 1.16's SFT reads them from a ``chat_template_kwargs``
    column; it has no config field), so that the prompt a target is trained after is the one
    generation, rollouts, scoring and evaluation render (edco.prompts.sft_texts: with Qwen3's
    template and thinking off, the empty think block lies in the unscored prompt)."""
    from datasets import Dataset

    kwargs = chat_template_kwargs(model_cfg)
    return Dataset.from_list(
        [
            {"prompt": chat_messages(r), "completion": [{"role": "assistant", "content": completion_text(r)}],
             "chat_template_kwargs": kwargs}
            for r in records
        ]
    )


def sft_config(cfg: dict, seed: int, output_dir: str, device: str):
    """TRL's SFTConfig from the ``sft`` section (keys named as TRL names them)."""
    from trl import SFTConfig

    return SFTConfig(
        output_dir=output_dir,
        **passthrough(cfg, SFT_KEYS),
        completion_only_loss=True,
        # The curriculum's order is the point: no shuffling of the dataset or the sampler.
        shuffle_dataset=False,
        train_sampling_strategy="sequential",
        **shared_trainer_args(seed, device, cfg),
    )


def sft_steps(n_samples: int, cfg: dict) -> int:
    """Optimiser steps one SFT round takes: the budget every strategy shares."""
    per_step = cfg["per_device_train_batch_size"] * cfg["gradient_accumulation_steps"]
    return math.ceil(n_samples / per_step) * cfg["num_train_epochs"]


def _completion_loss_sft_trainer_class():
    from trl import SFTTrainer

    class CompletionLossSFTTrainer(SFTTrainer):
        """SFTTrainer with TRL's loss (cross-entropy over completion tokens, normalised by TRL's
        ``num_items_in_batch``) computed by ``edco.trainer.pretrain.completion_loss``: the plain LM head
        at completion positions only (``sft.fused_lm_head: false``), the loss base pretraining
        trains on. TRL's chunked kernel saves memory at a 150k vocabulary; on the tiny CPU
        models its tiling and recomputation made 336 steps 2.2x slower than this (66.8 s vs
        30.7 s side by side, benchmarks/smoke_world.py with the suite's trainer;
        results/reference/cpu_study/benchmarks)."""

        def compute_loss(self, model, inputs, return_outputs=False, num_items_in_batch=None):
            out = completion_loss(model, inputs, normaliser=num_items_in_batch)
            mode = "train" if model.training else "eval"
            if len(out.targets):
                correct = (out.logits.detach().argmax(-1) == out.targets).float().mean().item()
                self._metrics[mode]["mean_token_accuracy"].append(correct)
            return (out.loss, None) if return_outputs else out.loss

    return CompletionLossSFTTrainer


def sft_trainer_class(cfg: dict):
    """TRL's SFTTrainer, or the completion-positions loss when ``sft.fused_lm_head`` is false."""
    if cfg["fused_lm_head"]:
        from trl import SFTTrainer

        return SFTTrainer
    if int(os.environ.get("WORLD_SIZE", "1")) > 1:
        raise UserFacingError("sft.fused_lm_head: false calls the model's backbone directly, which a multi-process "
                              "(DDP) wrapper does not synchronise: set sft.fused_lm_head: true to train on several GPUs")
    return _completion_loss_sft_trainer_class()


def make_sft_trainer(model, tokenizer, records: list[dict], cfg: dict, seed: int, device: str, output_dir: str,
                     model_cfg: dict):
    return sft_trainer_class(cfg)(
        model=model,
        args=sft_config(cfg, seed, output_dir, device),
        train_dataset=sft_dataset(records, model_cfg),
        processing_class=tokenizer,
    )


def train_sft(model, tokenizer, records: list[dict], cfg: dict, seed: int, device: str, model_cfg: dict) -> list[dict]:
    """Fine-tune ``model`` in place on ``records`` in the given order; return per-step logs.
    ``model_cfg`` is the model's ``models.<m>`` entry (its chat-template arguments)."""
    freeze_gc_once()
    with tempfile.TemporaryDirectory(prefix="edco-sft-") as tmp:
        trainer = make_sft_trainer(model, tokenizer, records, cfg, seed, device, tmp, model_cfg)
        trainer.train()
        return [row for row in trainer.state.log_history if "loss" in row]
