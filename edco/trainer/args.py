"""TrainingArguments both paradigms (SFT, GRPO) set the same way."""

from __future__ import annotations

import gc

import torch

_GC_FROZEN = False


def shared_trainer_args(seed: int, device: str, cfg: dict) -> dict:
    """TRL arguments common to both trainers; ``cfg`` is the paradigm's config section."""
    return dict(
        # TRL defaults both to True: bf16 needs a GPU, and checkpointing only costs time on the
        # tiny CPU models, so it is the config's choice (on for the paper's 4B models).
        bf16=str(device).startswith("cuda") and torch.cuda.is_bf16_supported(),
        gradient_checkpointing=cfg["gradient_checkpointing"],
        use_cpu=device == "cpu",
        seed=seed,
        data_seed=seed,
        logging_steps=1,  # per-step loss / reward / grad-norm for metrics.jsonl
        save_strategy="no",  # the round loop saves checkpoints itself, atomically
        report_to=[],
        dataloader_num_workers=0,
        disable_tqdm=False,
    )


def passthrough(cfg: dict, keys: tuple[str, ...]) -> dict:
    """The config values TRL takes under the same names (the schema names them as TRL does)."""
    return {key: cfg[key] for key in keys}


def freeze_gc_once() -> None:
    """transformers' Trainer.train() starts with accelerate's free_memory(), a full gc.collect():
    0.22 s CPU once TRL, transformers and lm-eval are imported (~490k tracked objects), paid
    every round of every run (~65 s of the smoke grid, measured by the world helper's profile).
    Collect once, then freeze what is alive (mostly the libraries): later collections scan only
    newer objects, garbage made later is still collected, and frozen objects are still freed
    when their reference count drops."""
    global _GC_FROZEN
    if not _GC_FROZEN:
        gc.collect()
        gc.freeze()
        _GC_FROZEN = True
