"""Base pretraining of a tiny model: the training loop, and ``python -m edco base-model``.

    python -m edco base-model --config config/smoke.yaml --model qwen3
    python -m edco base-model --config config/smoke.yaml --model llama

A tiny model (``edco.models``: tokenizer, architecture, save/load) is base-pretrained on the
general split so that round 1 starts from a model that answers in the right format (docs/design.md#the-synthetic-world).
A ``source: hub`` model gets a manifest naming the hub id and nothing else; a ``source: gguf``
model is converted (``edco.models.write_gguf_model``). The completion-positions loss here is
also the SFT trainer's (``edco.trainer.sft``, ``fused_lm_head: false``).
"""

from __future__ import annotations

import logging
import math
import random
import time
from typing import NamedTuple

import torch
from tqdm.auto import tqdm

from edco import io, layout
from edco.config import base_seed, per_seed_base
from edco.models import (MANIFEST, ModelError, build_model, build_tokenizer, corpus_texts, encode_chat, encode_quick,
                         n_params, save_model, write_gguf_model)
from edco.portable import platform_record

log = logging.getLogger("edco.trainer")


def _collate(batch: list[tuple[list[int], int]], pad_id: int) -> dict[str, torch.Tensor]:
    """Right-padded ids, attention mask, and labels masked (-100) on prompt and padding."""
    width = max(len(ids) for ids, _ in batch)
    input_ids = torch.full((len(batch), width), pad_id, dtype=torch.long)
    labels = torch.full((len(batch), width), -100, dtype=torch.long)
    mask = torch.zeros((len(batch), width), dtype=torch.long)
    for i, (ids, n_prompt) in enumerate(batch):
        input_ids[i, : len(ids)] = torch.tensor(ids)
        labels[i, n_prompt: len(ids)] = torch.tensor(ids[n_prompt:])
        mask[i, : len(ids)] = 1
    return {"input_ids": input_ids, "attention_mask": mask, "labels": labels}


# --------------------------------------------------------------------------- training
class CompletionLoss(NamedTuple):
    loss: torch.Tensor
    logits: torch.Tensor  # [completion tokens, vocab], float32
    targets: torch.Tensor  # [completion tokens]


def completion_loss(model, batch: dict[str, torch.Tensor], normaliser=None) -> CompletionLoss:
    """Next-token cross-entropy summed over completion tokens (labels != -100) and divided by
    ``normaliser``: by default this batch's completion tokens (the mean, ``model(**batch).loss``);
    TRL passes ``num_items_in_batch``, the completion tokens of every micro-batch of one
    gradient-accumulation step, so that the accumulated gradient is that of the whole step.
    A batch without completion tokens gives 0, as TRL's does.

    The LM head and softmax run only where a label exists (prompts are ~70 % of the tokens and
    the softmax over the vocabulary was a third of a tiny model's step). Base pretraining and
    the SFT trainer's ``fused_lm_head: false`` path both train on this one function."""
    # TRL's padding-free batches carry position_ids instead of an attention mask.
    hidden = model.base_model(input_ids=batch["input_ids"], attention_mask=batch.get("attention_mask"),
                              position_ids=batch.get("position_ids")).last_hidden_state
    targets = batch["labels"][:, 1:]
    keep = targets != -100
    logits = model.get_output_embeddings()(hidden[:, :-1][keep]).float()
    total = torch.nn.functional.cross_entropy(logits, targets[keep], reduction="sum")
    count = keep.sum() if normaliser is None else normaliser
    return CompletionLoss(total / torch.as_tensor(count).clamp(min=1), logits, targets[keep])


def _lr_at(step: int, total: int, peak: float, schedule: str) -> float:
    """constant; cosine (warm-up, cosine to 10 %); wsd (warm-up, stable, linear decay to 10 %
    over the last 20 %). Base pretraining uses wsd: the copy circuits a tiny model needs form
    late and only at full LR; a cosine decay delayed them past the step budget."""
    if schedule == "constant":
        return peak
    warmup = max(1, min(50, total // 10))
    if step < warmup:
        return peak * (step + 1) / warmup
    if schedule == "wsd":
        decay_start = int(0.8 * total)
        if step < decay_start:
            return peak
        return peak * (1 - 0.9 * (step - decay_start) / max(1, total - decay_start))
    progress = (step - warmup) / max(1, total - warmup)
    return peak * (0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * progress)))  # cosine to 10 %


def train_steps(model, examples: list[tuple[list[int], int]], batches: list[list[int]], *,
                learning_rate: float, schedule: str = "cosine", weight_decay: float = 0.0,
                pad_id: int, progress: bool = True, log_every: int = 50, desc: str = "train") -> list[float]:
    """One optimiser step per index list in ``batches``; returns the loss of every step.

    AdamW with TRL's defaults (betas 0.9/0.999, grad-norm clip 1.0) and a fresh optimiser per
    call, as every curriculum round restarts its optimiser. Fused: the unfused update's square
    root is MKL's, other bits on another CPU maker's CPU (edco/portable.py).
    """
    model.train()
    optimizer = torch.optim.AdamW(model.parameters(), lr=learning_rate, weight_decay=weight_decay, fused=True)
    losses = []
    bar = tqdm(batches, desc=desc, disable=not progress, mininterval=2.0)
    for step, idx in enumerate(bar):
        lr = _lr_at(step, len(batches), learning_rate, schedule)
        for group in optimizer.param_groups:
            group["lr"] = lr
        loss = completion_loss(model, _collate([examples[i] for i in idx], pad_id)).loss
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()
        losses.append(loss.item())
        if log_every and (step + 1) % log_every == 0:
            recent = sum(losses[-log_every:]) / len(losses[-log_every:])
            bar.set_postfix(loss=f"{recent:.3f}")
            log.info("%s step %d/%d loss %.4f lr %.2e", desc, step + 1, len(batches), recent, lr)
    model.eval()
    return losses


def base_pretrain(model, tokenizer, records: list[dict], pretrain_cfg: dict, progress: bool = True) -> dict:
    """Teach the format on the general split: chat prompt -> explanation + "Answer: X", and
    quick-answer prompt -> short answer (so the prefix estimator has an early answer token
    to be unsure about). Random batches (seeded); loss on completion tokens only."""
    steps, batch = pretrain_cfg["steps"], pretrain_cfg["batch_size"]
    if not records:  # real-data configs have no general split: nothing to pretrain on
        steps = 0
    quick_fraction = pretrain_cfg["quick_fraction"]
    rng = random.Random(pretrain_cfg["seed"])
    examples = [encode_chat(tokenizer, r) for r in records] + [encode_quick(tokenizer, r) for r in records]
    # Each batch item: a random record, in the quick format with probability quick_fraction.
    n = len(records)
    batches = [[rng.randrange(n) + (n if rng.random() < quick_fraction else 0) for _ in range(batch)]
               for _ in range(steps)]
    t0, c0 = time.perf_counter(), time.process_time()
    losses = train_steps(model, examples, batches, learning_rate=pretrain_cfg["learning_rate"],
                         schedule=pretrain_cfg["schedule"], weight_decay=0.0,
                         pad_id=tokenizer.pad_token_id, progress=progress, desc="base-pretrain")
    tail = losses[-min(len(losses), 20):]
    return {"steps": steps, "seconds": time.perf_counter() - t0, "cpu_seconds": time.process_time() - c0,
            "final_loss": sum(tail) / len(tail) if tail else None}


# --------------------------------------------------------------------------- base-model
def _training_records(config: dict) -> tuple[list[dict], list[dict]]:
    """(general split, every grid domain's train split): the only text a tokenizer may see."""
    run = config["run"]
    # Only the synthetic world has a general split; real-data configs build on the domains alone.
    general_path = layout.general_file(run) if config["data"]["source"] == "synthetic" else None
    paths = [layout.data_file(run, d, "train") for d in config["grid"]["domains"]]
    missing = [p for p in [general_path, *paths] if p is not None and not p.is_file()]
    if missing:
        raise ModelError(f"missing data: {', '.join(map(str, missing))}; run "
                         f"`python -m edco make-data --config <config> --domain <domain|general>` first")
    domain_train = [r for p in paths for r in io.read_jsonl(p)]
    return (io.read_jsonl(general_path) if general_path else []), domain_train


def pretrain_seed(model_cfg: dict, run_seed: int | None = None) -> int:
    """The pretraining seed (initialisation and batch order) of the base model a run of seed
    ``run_seed`` starts from. ``pretrain.per_seed`` false (default): ``pretrain.seed``, one
    base model serves every seed. True: ``pretrain.seed + run_seed``, so the study's seeds
    sample base models too (and seed 0 keeps the shared model of ``pretrain.seed: 0``);
    ``run_seed`` None means the shared model. The tokenizer never depends on it."""
    pretrain = model_cfg["pretrain"]
    if not pretrain["per_seed"] or run_seed is None:
        return pretrain["seed"]
    return pretrain["seed"] + run_seed


def build_base_model(config: dict, name: str, general: list[dict] | None = None,
                     domain_train: list[dict] | None = None, progress: bool = True, seed: int | None = None):
    """Tokenizer + model + base pretraining of tiny model ``name``; returns (model, tok, manifest).

    The tokenizer learns from the general split and the domains' *training* splits (never a
    test split); pretraining sees the general split only. Records default to the run's files.
    ``seed``: the run seed whose base model this is (``pretrain_seed``); None = the shared one.
    The manifest's ``config`` records the pretraining seed actually used.
    """
    model_cfg = config["models"][name]
    model_cfg = {**model_cfg, "pretrain": {**model_cfg["pretrain"], "seed": pretrain_seed(model_cfg, seed)}}
    if general is None or domain_train is None:
        general, domain_train = _training_records(config)
    t0 = time.perf_counter()
    tokenizer = build_tokenizer(model_cfg, corpus_texts(general + domain_train))
    model = build_model(model_cfg, tokenizer)
    log.info("%s: %s, %d parameters, vocab %d", name, model_cfg["arch"], n_params(model), len(tokenizer))
    stats = base_pretrain(model, tokenizer, general, model_cfg["pretrain"], progress=progress)
    manifest = {
        "name": name, "source": "tiny", "arch": model_cfg["arch"], "config": model_cfg,
        "params": n_params(model), "vocab": len(tokenizer), "pretrain_steps": stats["steps"],
        "pretrain_seconds": round(stats["seconds"], 2), "pretrain_cpu_seconds": round(stats["cpu_seconds"], 2),
        "final_loss": stats["final_loss"],
        "total_seconds": round(time.perf_counter() - t0, 2), "torch_threads": torch.get_num_threads(),
    }
    return model, tokenizer, manifest


def write_base_model(config: dict, name: str, progress: bool = True, base: str = layout.SHARED_BASE) -> dict:
    """``python -m edco base-model``: build and base-pretrain tiny model ``name`` into
    ``results/<run>/models/<name>/<base>/`` (``base`` "seed<s>": the base model of run seed s,
    pretrained with its own seed, ``pretrain.per_seed``); for a hub model, write a manifest naming its id (the
    first job that loads it fetches it: only that step needs the network); for a gguf model,
    convert its file there once (edco.gguf). Returns the manifest."""
    if name not in config["models"]:
        raise ModelError(f"--model {name!r}: not under models (defined: {', '.join(config['models'])})")
    if base != layout.SHARED_BASE and not per_seed_base(config, name):
        raise ModelError(f"--base {base}: models.{name} has one shared base model (pretrain.per_seed is not on)")
    model_cfg, out = config["models"][name], layout.model_dir(config["run"], name, base)
    if model_cfg["source"] == "hub":
        manifest = {"name": name, "source": "hub", "arch": model_cfg["arch"], "path": model_cfg["hub_id"],
                    "config": model_cfg}
        with io.atomic_dir(out) as tmp:
            io.write_json(tmp / MANIFEST, manifest)
        return manifest
    if model_cfg["source"] == "gguf":
        return write_gguf_model(model_cfg, name, out)
    log.info("building %s (%s) -> %s", name, model_cfg["arch"], out)
    model, tokenizer, manifest = build_base_model(config, name, progress=progress, seed=base_seed(base))
    manifest["platform"] = platform_record(config)  # compute.portable_math and the CPU it ran on
    save_model(model, tokenizer, out, manifest)
    return manifest
