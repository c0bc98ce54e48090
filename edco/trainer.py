"""LLM trainer (paper component 3): the round loop, and SFT on a round's curriculum.

One call of ``run_rounds`` is one run (domain x model x paradigm x strategy x seed):

    for round r = 1..R:   select (strategy, scoring with the model of round r-1)
                          -> train on the selection, in its order
                          -> checkpoint, per-round artefacts, done.json (written last)

A killed run resumes after its last round with a ``done.json``. Optimiser and LR schedule
restart each round, as the official code starts a fresh job from the previous checkpoint.

    python -m edco train --config config/smoke.yaml --domain law --model qwen3 \
        --paradigm sft --strategy random --seed 0
"""

from __future__ import annotations

import argparse
import logging
import math
import shutil
import tempfile
import time
from pathlib import Path

import torch

from edco import curriculum, io, layout
from edco.config import load_config
from edco.errors import UserFacingError
from edco.prompts import chat_messages, completion_text

log = logging.getLogger("edco.trainer")

CHECKPOINT = "checkpoint"


# --------------------------------------------------------------------------- SFT
def sft_dataset(records: list[dict]):
    """TRL conversational prompt/completion rows: loss on the completion only."""
    from datasets import Dataset

    return Dataset.from_list(
        [
            {"prompt": chat_messages(r), "completion": [{"role": "assistant", "content": completion_text(r)}]}
            for r in records
        ]
    )


def sft_config(cfg: dict, seed: int, output_dir: str, device: str):
    from trl import SFTConfig

    return SFTConfig(
        output_dir=output_dir,
        learning_rate=cfg["learning_rate"],
        per_device_train_batch_size=cfg["per_device_train_batch_size"],
        gradient_accumulation_steps=cfg["gradient_accumulation_steps"],
        num_train_epochs=cfg["epochs_per_round"],
        weight_decay=cfg["weight_decay"],
        lr_scheduler_type=cfg["lr_scheduler_type"],
        warmup_steps=cfg["warmup_ratio"],  # a float < 1 is a ratio of the round's steps
        max_length=cfg["max_length"],
        completion_only_loss=True,
        # The curriculum's order is the point: no shuffling of the dataset or the sampler.
        shuffle_dataset=False,
        train_sampling_strategy="sequential",
        # TRL defaults both to True; bf16 needs a GPU and checkpointing only costs time here.
        bf16=device == "cuda" and torch.cuda.is_bf16_supported(),
        gradient_checkpointing=False,
        use_cpu=device == "cpu",
        seed=seed,
        data_seed=seed,
        logging_steps=1,
        save_strategy="no",
        report_to=[],
        dataloader_num_workers=0,
        disable_tqdm=False,
    )


def sft_steps(n_samples: int, cfg: dict) -> int:
    """Optimiser steps one SFT round takes: the budget every strategy shares."""
    per_step = cfg["per_device_train_batch_size"] * cfg["gradient_accumulation_steps"]
    return math.ceil(n_samples / per_step) * cfg["epochs_per_round"]


def make_sft_trainer(model, tokenizer, records: list[dict], cfg: dict, seed: int, device: str, output_dir: str):
    from trl import SFTTrainer

    return SFTTrainer(
        model=model,
        args=sft_config(cfg, seed, output_dir, device),
        train_dataset=sft_dataset(records),
        processing_class=tokenizer,
    )


def train_sft(model, tokenizer, records: list[dict], cfg: dict, seed: int, device: str) -> list[dict]:
    """Fine-tune ``model`` in place on ``records`` in the given order; return per-step logs."""
    with tempfile.TemporaryDirectory(prefix="edco-sft-") as tmp:
        trainer = make_sft_trainer(model, tokenizer, records, cfg, seed, device, tmp)
        trainer.train()
        return [row for row in trainer.state.log_history if "loss" in row]


# --------------------------------------------------------------------------- rounds
def _selection_rows(selection: curriculum.Selection) -> list[dict]:
    return [
        {"position": i, "id": sid, "score": selection.scores.get(sid)}
        for i, sid in enumerate(selection.ids)
    ]


def _write_scores(path: Path, scores: dict[str, float]) -> None:
    import pandas as pd

    frame = pd.DataFrame({"id": list(scores), "score": list(scores.values())})
    with io.atomic_path(path) as tmp:
        frame.to_parquet(tmp, index=False)


def _last_done_round(run_path: Path, rounds: int) -> int:
    done = [r for r in range(1, rounds + 1) if (layout.round_dir(run_path, r) / "done.json").exists()]
    return max(done, default=0)


def _save_checkpoint(model, tokenizer, path: Path) -> None:
    with io.atomic_dir(path) as tmp:
        model.save_pretrained(tmp, safe_serialization=True)
        tokenizer.save_pretrained(tmp)


def _previous_selections(run_path: Path, upto: int) -> list[curriculum.Selection]:
    selections = []
    for r in range(1, upto + 1):
        rows = io.read_jsonl(layout.round_dir(run_path, r) / "selection.jsonl")
        selections.append(curriculum.Selection(ids=[row["id"] for row in rows]))
    return selections


def run_rounds(config: dict, domain: str, model_name: str, paradigm: str, strategy_name: str, seed: int) -> Path:
    """Run (or resume) every round of one run; return the run directory."""
    from edco.models import load_model, load_model_from

    run = config["run"]
    run_path = layout.run_dir(run, domain, model_name, paradigm, strategy_name, seed)
    rounds, n = config["curriculum"]["rounds"], config["curriculum"]["n"]
    device = config.get("compute", {}).get("device", "cpu")
    if paradigm != "sft":
        raise UserFacingError(f"grid.paradigms: {paradigm!r} is not implemented yet; use 'sft'")

    pool = io.read_jsonl(layout.data_file(run, domain, "train"))
    curriculum.check_budget(n, len(pool), f"domain {domain!r}")
    strategy = curriculum.get_strategy(strategy_name)(pool, config, seed)
    by_id = {r["id"]: r for r in pool}

    start = _last_done_round(run_path, rounds)
    if start:
        log.info("resuming %s after round %d", run_path, start)
        checkpoint = layout.round_dir(run_path, start) / CHECKPOINT
        if not checkpoint.exists():  # killed between moving the last checkpoint and run.json
            checkpoint = run_path / "final"
        model, tokenizer = load_model_from(checkpoint, device)
    else:
        model, tokenizer = load_model(run, model_name, device)

    for r in range(start + 1, rounds + 1):
        out = layout.round_dir(run_path, r)
        log.info("round %d/%d  %s  -> %s", r, rounds, strategy_name, out)
        ctx = curriculum.RoundContext(round=r, n=n, seed=seed, config=config, model=model,
                                      tokenizer=tokenizer, previous=_previous_selections(run_path, r - 1))
        t0 = time.perf_counter()
        selection = strategy.select(ctx)
        t1 = time.perf_counter()
        _check_selection(selection, by_id, n, strategy_name)
        _write_scores(out / "scores.parquet", selection.scores)
        io.write_jsonl(out / "selection.jsonl", _selection_rows(selection))
        t2 = time.perf_counter()
        steps = train_sft(model, tokenizer, [by_id[i] for i in selection.ids], config["sft"], seed * 1000 + r, device)
        t3 = time.perf_counter()
        strategy.update({"round": r, "steps": steps})
        _save_checkpoint(model, tokenizer, out / CHECKPOINT)
        io.write_jsonl(out / "metrics.jsonl", steps)
        io.write_json(out / "timing.json", {
            "scoring_seconds": t1 - t0, "selecting_seconds": t2 - t1, "training_seconds": t3 - t2,
            "tokens_generated": selection.tokens_generated, "optimizer_steps": len(steps),
            "sample_visits": len(selection.ids) * config["sft"]["epochs_per_round"],
        })
        io.write_json(out / "done.json", {"round": r})
        if r > 1:  # keep one checkpoint: the newest finished round's
            shutil.rmtree(layout.round_dir(run_path, r - 1) / CHECKPOINT, ignore_errors=True)

    _finish(run_path, rounds, config, domain, model_name, paradigm, strategy_name, seed)
    return run_path


def _check_selection(selection, by_id: dict, n: int, name: str) -> None:
    unknown = [i for i in selection.ids if i not in by_id]
    if unknown:
        raise UserFacingError(f"strategy {name!r} selected ids outside the training pool: {unknown[:3]}")
    if len(selection.ids) != n:
        raise UserFacingError(f"strategy {name!r} selected {len(selection.ids)} samples; the budget is {n}")


def _finish(run_path: Path, rounds: int, config: dict, *cell) -> None:
    """Move the last checkpoint to final/ and write run.json last (its existence = complete)."""
    final = run_path / "final"
    last = layout.round_dir(run_path, rounds) / CHECKPOINT
    if last.exists():
        if final.exists():
            shutil.rmtree(final)
        last.rename(final)
    timings = [io.read_json(layout.round_dir(run_path, r) / "timing.json") for r in range(1, rounds + 1)]
    totals = {k: sum(t[k] for t in timings) for k in timings[0]}
    domain, model, paradigm, strategy, seed = cell
    io.write_json(run_path / "run.json", {
        "domain": domain, "model": model, "paradigm": paradigm, "strategy": strategy, "seed": seed,
        "rounds": rounds, "n": config["curriculum"]["n"], "totals": totals,
    })


# --------------------------------------------------------------------------- CLI
def cli_train(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="python -m edco train", description=__doc__.split("\n\n")[0])
    parser.add_argument("--config", required=True)
    parser.add_argument("--domain", required=True)
    parser.add_argument("--model", required=True)
    parser.add_argument("--paradigm", required=True, choices=["sft", "rl"])
    parser.add_argument("--strategy", required=True)
    parser.add_argument("--seed", required=True, type=int)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    config = load_config(args.config)
    torch.set_num_threads(config.get("compute", {}).get("threads", 1))
    path = run_rounds(config, args.domain, args.model, args.paradigm, args.strategy, args.seed)
    log.info("done: %s (final model in %s)", path / "run.json", path / "final")
    return 0
