"""LLM trainer (paper component 3): the round loop, and SFT on a round's curriculum.

One call of ``run_rounds`` is one run (domain x model x paradigm x strategy x seed):

    for round r = 1..R:   select (strategy, scoring with the model of round r-1)
                          -> train on the selection, in its order
                          -> checkpoint, per-round artefacts, done.json (written last)

A killed run resumes after its last round with a ``done.json``. Optimiser and LR schedule
restart each round, as the official code starts a fresh job from the previous checkpoint.

    python -m edco train --config config/smoke.yaml --domain law --model qwen3 \
        --paradigm sft --strategy random --seed 0
    python -m edco train --config config/smoke.yaml --domain law --model qwen3 \
        --paradigm rl --strategy random --seed 0

Two paradigms train a round: SFT (TRL ``SFTTrainer``) and RL (GRPO, TRL ``GRPOTrainer``,
reward 1 when the completion's last "Answer: X" names the right option). Both consume the
selection in its order and do a fixed number of optimiser steps per round whatever the
strategy, so every strategy of a paradigm gets the same budget (DESIGN §1.4).
"""

from __future__ import annotations

import argparse
import hashlib
import importlib.util
import json
import logging
import math
import os
import shutil
import tempfile
import time
from pathlib import Path

import torch

from edco import curriculum, io, layout
from edco.config import load_config, round_budget
from edco.errors import UserFacingError
from edco.prompts import chat_messages, completion_text, parse_answer

log = logging.getLogger("edco.trainer")

CHECKPOINT = "checkpoint"
PARADIGMS = ("sft", "rl")


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


def shared_trainer_args(seed: int, device: str, cfg: dict) -> dict:
    """TrainingArguments both paradigms set the same way (``cfg`` is the paradigm's section)."""
    return dict(
        # TRL defaults both to True: bf16 needs a GPU, and checkpointing only costs time on the
        # tiny CPU models, so it is the config's choice (on for the paper's 4B models).
        bf16=str(device).startswith("cuda") and torch.cuda.is_bf16_supported(),
        gradient_checkpointing=cfg.get("gradient_checkpointing", False),
        use_cpu=device == "cpu",
        seed=seed,
        data_seed=seed,
        logging_steps=1,  # per-step loss / reward / grad-norm for metrics.jsonl
        save_strategy="no",  # the round loop saves checkpoints itself, atomically
        report_to=[],
        dataloader_num_workers=0,
        disable_tqdm=False,
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
        **shared_trainer_args(seed, device, cfg),
    )


def sft_steps(n_samples: int, cfg: dict) -> int:
    """Optimiser steps one SFT round takes: the budget every strategy shares."""
    per_step = cfg["per_device_train_batch_size"] * cfg["gradient_accumulation_steps"]
    return math.ceil(n_samples / per_step) * cfg["epochs_per_round"]


def _completion_loss_sft_trainer_class():
    from trl import SFTTrainer

    class CompletionLossSFTTrainer(SFTTrainer):
        """SFTTrainer with TRL's loss (mean cross-entropy over completion tokens) computed by the
        plain LM head at completion positions only (``sft.fused_lm_head: false``). TRL's chunked
        kernel saves memory at a 150k vocabulary; on the tiny CPU models its tiling and
        recomputation made 336 steps 2.2x slower than this (66.8 s vs 30.7 s side by side,
        benchmarks/smoke_world.py --trainer trl; results/reference/cpu_study/benchmarks)."""

        def compute_loss(self, model, inputs, return_outputs=False, num_items_in_batch=None):
            hidden = model.base_model(input_ids=inputs["input_ids"],
                                      attention_mask=inputs.get("attention_mask")).last_hidden_state
            targets = inputs["labels"][:, 1:]
            keep = targets != -100
            logits = model.get_output_embeddings()(hidden[:, :-1][keep]).float()
            n_tokens = keep.sum() if num_items_in_batch is None else num_items_in_batch
            loss = torch.nn.functional.cross_entropy(logits, targets[keep], reduction="sum")
            loss = loss / torch.as_tensor(n_tokens).clamp(min=1)  # as TRL: a batch of prompts only gives 0
            mode = "train" if model.training else "eval"
            if keep.any():
                correct = (logits.detach().argmax(-1) == targets[keep]).float().mean().item()
                self._metrics[mode]["mean_token_accuracy"].append(correct)
            return (loss, None) if return_outputs else loss

    return CompletionLossSFTTrainer


def sft_trainer_class(cfg: dict):
    """TRL's SFTTrainer, or the completion-positions loss when ``sft.fused_lm_head`` is false."""
    if cfg.get("fused_lm_head", True):
        from trl import SFTTrainer

        return SFTTrainer
    if int(os.environ.get("WORLD_SIZE", "1")) > 1:
        raise UserFacingError("sft.fused_lm_head: false calls the model's backbone directly, which a multi-process "
                              "(DDP) wrapper does not synchronise: set sft.fused_lm_head: true to train on several GPUs")
    return _completion_loss_sft_trainer_class()


def make_sft_trainer(model, tokenizer, records: list[dict], cfg: dict, seed: int, device: str, output_dir: str):
    return sft_trainer_class(cfg)(
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


# --------------------------------------------------------------------------- RL (GRPO)
def completion_content(completion) -> str:
    """The text of one completion: a plain string (standard format) or TRL's conversational
    list of message dicts, of which the assistant turns are joined."""
    if isinstance(completion, str):
        return completion
    return "".join(m.get("content") or "" for m in completion if m.get("role", "assistant") == "assistant")


def correct_letter_reward(completions, answer, **kwargs) -> list[float]:
    """GRPO reward (DESIGN §1.3): 1.0 when the option ``edco.prompts.parse_answer`` reads from the
    completion is the reference letter, else 0.0. ``answer`` and ``options`` are dataset columns."""
    return [1.0 if parse_answer(completion_content(c), o) == a else 0.0
            for c, a, o in zip(completions, answer, kwargs.get("options") or [None] * len(answer), strict=True)]


def grpo_dataset(records: list[dict]):
    """TRL conversational prompt rows; ``answer`` reaches the reward function as a column."""
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
        learning_rate=cfg["learning_rate"],
        lr_scheduler_type="constant",  # paper: 1e-6 constant
        per_device_train_batch_size=cfg["per_device_train_batch_size"],
        gradient_accumulation_steps=cfg["gradient_accumulation_steps"],
        # One generation batch per optimiser step (TRL's default, stated): the step's prompt
        # set is the curriculum unit; TRL only shuffles rows *within* a generation batch.
        steps_per_generation=cfg["gradient_accumulation_steps"],
        num_generations=cfg["num_generations"],
        max_steps=cfg["steps_per_round"],
        beta=cfg["beta"],
        epsilon=cfg["epsilon"],
        temperature=cfg["temperature"],
        max_completion_length=cfg["max_completion_length"],
        use_vllm=cfg["use_vllm"],
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
    """GRPO on ``records`` in the given order for ``cfg["steps_per_round"]`` optimiser steps;
    ``model`` is updated in place. Returns per-step logs (loss, grad_norm, reward, entropy, kl,
    completion lengths, ...), one row per optimiser step."""
    visits = cfg["steps_per_round"] * grpo_prompts_per_step(cfg)
    log.info("GRPO round: %d steps x %d prompts = %d prompt visits over the %d selected samples (%.2f passes)%s",
             cfg["steps_per_round"], grpo_prompts_per_step(cfg), visits, len(records), visits / len(records),
             "; the tail of the selection is not reached" if visits < len(records) else "")
    with tempfile.TemporaryDirectory(prefix="edco-grpo-") as tmp:
        trainer = make_grpo_trainer(model, tokenizer, records, cfg, seed, device, tmp)
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


# Config sections that do not change what a run trains: which cells exist, where jobs run,
# how the final model is evaluated, the estimator benchmark. Everything else does.
NOT_TRAINING_INPUTS = ("grid", "seeds", "compute", "evaluate", "estimator_bench")
FINGERPRINT = "fingerprint.json"


def config_fingerprint(config: dict) -> str:
    """A hash of every config value a run's rounds depend on (data, models, curriculum,
    sft/rl, estimator), so a resume never continues rounds trained under other settings."""
    relevant = {k: v for k, v in config.items() if k not in NOT_TRAINING_INPUTS}
    return hashlib.sha256(json.dumps(relevant, sort_keys=True, default=str).encode()).hexdigest()[:16]


def _start_or_resume(run_path: Path, fingerprint: str) -> None:
    """Keep a run directory's finished rounds only if they were trained with this config;
    otherwise start the run over (a changed learning rate must not be hidden by a resume)."""
    marker = run_path / FINGERPRINT
    if marker.exists() and io.read_json(marker).get("fingerprint") == fingerprint:
        return
    if run_path.exists() and any(run_path.iterdir()):  # Snakemake pre-creates it empty
        log.warning("%s was trained with another config (or an older suite): starting it over", run_path)
        shutil.rmtree(run_path)
    io.write_json(marker, {"fingerprint": fingerprint, "excludes": list(NOT_TRAINING_INPUTS)})


def _last_done_round(run_path: Path, rounds: int) -> int:
    done = [r for r in range(1, rounds + 1) if (layout.round_dir(run_path, r) / "done.json").exists()]
    return max(done, default=0)


def _save_checkpoint(model, tokenizer, path: Path) -> None:
    with io.atomic_dir(path) as tmp:
        model.save_pretrained(tmp, safe_serialization=True)
        tokenizer.save_pretrained(tmp)


def _read_scores(path: Path) -> dict[str, float]:
    import pandas as pd

    frame = pd.read_parquet(path)
    return dict(zip(frame["id"], frame["score"]))


def _previous_selections(run_path: Path, upto: int) -> list[curriculum.Selection]:
    """Rounds 1..upto as the strategy saw them (ids in order, the scores it wrote), read back
    from disk so that a resumed run hands strategies the same history."""
    selections = []
    for r in range(1, upto + 1):
        rd = layout.round_dir(run_path, r)
        rows = io.read_jsonl(rd / "selection.jsonl")
        selections.append(curriculum.Selection(ids=[row["id"] for row in rows], scores=_read_scores(rd / "scores.parquet")))
    return selections


def _previous_feedback(run_path: Path, upto: int) -> list[dict]:
    """What ``strategy.update`` received after rounds 1..upto, read back from metrics.jsonl."""
    return [{"round": r, "steps": io.read_jsonl(layout.round_dir(run_path, r) / "metrics.jsonl")}
            for r in range(1, upto + 1)]


class Processes:
    """The processes one run trains with: one, or several under ``accelerate launch`` (data
    parallel; ``models.<name>.gpus`` > 1). The main process scores the pool, selects and writes
    every file; the selection reaches the others by broadcast; all of them train (TRL shards
    each batch over them); the others wait while the main process writes."""

    def __init__(self, config: dict):
        configured = config.get("compute", {}).get("device", "cpu")
        self.state = None
        self.device = configured
        if int(os.environ.get("WORLD_SIZE", "1")) > 1:
            from datetime import timedelta

            from accelerate import PartialState

            # Joins the process group accelerate launch set up. The others wait at a collective
            # while the main process scores the whole pool (the paper's 7000 samples: ~45 min
            # with prefix entropy, hours with full entropy), far past the default timeout.
            # cpu=True: gloo processes (how the tests stand two CPU processes in for two GPUs).
            self.state = PartialState(cpu=configured == "cpu", timeout=timedelta(hours=12))
            log.info("process %d of %d (%s)", self.state.process_index, self.state.num_processes,
                     self.state.distributed_type)
            if configured == "cuda":  # each process's own GPU, not every process's cuda:0
                self.device = str(self.state.device)

    @property
    def is_main(self) -> bool:
        return self.state is None or self.state.is_main_process

    def from_main(self, value):
        """``value`` as the main process has it (the others pass anything, e.g. None)."""
        if self.state is None:
            return value
        from accelerate.utils import broadcast_object_list

        box = [value]
        broadcast_object_list(box, from_process=0)
        return box[0]

    def wait(self) -> None:
        if self.state is not None:
            self.state.wait_for_everyone()


def run_rounds(config: dict, domain: str, model_name: str, paradigm: str, strategy_name: str, seed: int) -> Path:
    """Run (or resume) every round of one run; return the run directory."""
    from edco.models import load_model, load_model_from

    run = config["run"]
    run_path = layout.run_dir(run, domain, model_name, paradigm, strategy_name, seed)
    rounds, n = round_budget(config, paradigm, model_name)
    procs = Processes(config)
    device = procs.device
    if paradigm not in PARADIGMS:
        raise UserFacingError(f"grid.paradigms: unknown paradigm {paradigm!r}; use one of {', '.join(PARADIGMS)}")
    if paradigm not in config:
        raise UserFacingError(f"{paradigm}: the config has no {paradigm!r} section; add one (config/schema.yaml "
                              f"lists its keys) or add {paradigm!r} to grid.paradigms to get the defaults")

    pool = io.read_jsonl(layout.data_file(run, domain, "train"))
    curriculum.check_budget(n, len(pool), f"domain {domain!r}")
    strategy = curriculum.get_strategy(strategy_name)(pool, config, seed)
    by_id = {r["id"]: r for r in pool}

    if procs.is_main:
        _start_or_resume(run_path, config_fingerprint(config))
    procs.wait()
    start = _last_done_round(run_path, rounds)
    if start:
        log.info("resuming %s after round %d", run_path, start)
        checkpoint = layout.round_dir(run_path, start) / CHECKPOINT
        if not checkpoint.exists():  # killed between moving the last checkpoint and run.json
            checkpoint = run_path / "final"
        model, tokenizer = load_model_from(checkpoint, device)
    else:
        model, tokenizer = load_model(run, model_name, device)
    if paradigm == "rl":
        check_grpo(config["rl"], tokenizer, device)  # before any scoring or training

    for r in range(start + 1, rounds + 1):
        out = layout.round_dir(run_path, r)
        log.info("round %d/%d  %s  -> %s", r, rounds, strategy_name, out)
        ctx = curriculum.RoundContext(round=r, n=n, rounds=rounds, seed=seed, config=config, model=model,
                                      tokenizer=tokenizer, previous=_previous_selections(run_path, r - 1),
                                      feedback=_previous_feedback(run_path, r - 1))
        t0 = time.perf_counter()
        selection = procs.from_main(strategy.select(ctx) if procs.is_main else None)
        t1 = time.perf_counter()
        _check_selection(selection, by_id, n, strategy_name)
        if procs.is_main:
            _write_scores(out / "scores.parquet", selection.scores)
            io.write_jsonl(out / "selection.jsonl", _selection_rows(selection))
        t2 = time.perf_counter()
        train_round = train_sft if paradigm == "sft" else train_grpo
        steps = train_round(model, tokenizer, [by_id[i] for i in selection.ids], config[paradigm], seed * 1000 + r, device)
        t3 = time.perf_counter()
        if str(device).startswith("cuda"):  # the round's optimiser states are gone: give the next
            torch.cuda.empty_cache()          # round's scorer (a vLLM engine) their memory
        strategy.update({"round": r, "steps": steps})
        if not procs.is_main:
            procs.wait()  # for the main process to write the round
            continue
        _save_checkpoint(model, tokenizer, out / CHECKPOINT)
        io.write_jsonl(out / "metrics.jsonl", steps)
        io.write_json(out / "timing.json", {
            "scoring_seconds": t1 - t0, "selecting_seconds": t2 - t1, "training_seconds": t3 - t2,
            "tokens_generated": selection.tokens_generated, **_budget(paradigm, config, len(selection.ids), steps),
        })
        io.write_json(out / "done.json", {"round": r})
        if r > 1:  # keep one checkpoint: the newest finished round's
            shutil.rmtree(layout.round_dir(run_path, r - 1) / CHECKPOINT, ignore_errors=True)
        procs.wait()

    if procs.is_main:
        _finish(run_path, rounds, config, domain, model_name, paradigm, strategy_name, seed)
    procs.wait()
    return run_path


def _budget(paradigm: str, config: dict, n_selected: int, steps: list[dict]) -> dict:
    """A round's training budget, the same fields for both paradigms: optimiser steps taken,
    sample visits (SFT: samples x epochs; RL: prompts, each with num_generations rollouts)
    and completion tokens generated by rollouts (SFT generates none)."""
    if paradigm == "sft":
        return {"optimizer_steps": len(steps), "sample_visits": n_selected * config["sft"]["epochs_per_round"],
                "rollout_tokens_generated": 0}
    rl = config["rl"]
    return {"optimizer_steps": len(steps), "sample_visits": len(steps) * grpo_prompts_per_step(rl),
            "rollout_tokens_generated": rollout_tokens(steps, rl)}


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
        "rounds": rounds, "n": round_budget(config, paradigm, model)[1], "totals": totals,
    })


# --------------------------------------------------------------------------- CLI
def cli_train(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="python -m edco train", description=__doc__.split("\n\n")[0])
    parser.add_argument("--config", required=True)
    parser.add_argument("--domain", required=True)
    parser.add_argument("--model", required=True)
    parser.add_argument("--paradigm", required=True, choices=["sft", "rl"])
    parser.add_argument("--strategy", required=True, action="append",
                        help="repeatable: several strategies run one after the other in this process")
    parser.add_argument("--seed", required=True, type=int, action="append",
                        help="repeatable: every strategy runs with every seed, in this process")
    parser.add_argument("--evaluate", action="store_true",
                        help="also evaluate each run's final model (saves a process start per run)")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    config = load_config(args.config)
    torch.set_num_threads(config.get("compute", {}).get("threads", 1))
    for strategy in args.strategy:
        curriculum.get_strategy(strategy)  # an unknown name stops before any run starts
    runs = [(strategy, seed) for strategy in args.strategy for seed in args.seed]
    evaluate_here = args.evaluate and Processes(config).is_main  # one evaluation, not one per GPU
    for i, (strategy, seed) in enumerate(runs, 1):
        log.info("run %d/%d: %s %s %s %s seed %d", i, len(runs), args.domain, args.model, args.paradigm, strategy, seed)
        path = run_rounds(config, args.domain, args.model, args.paradigm, strategy, seed)
        log.info("done: %s (final model in %s)", path / "run.json", path / "final")
        if evaluate_here:
            from edco.evaluate import evaluate_to_file

            out = layout.eval_file(config["run"], args.domain, args.model, args.paradigm, strategy, seed)
            evaluate_to_file(config, args.domain, args.model, str(path / "final"), out)
    return 0
