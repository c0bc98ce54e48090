"""The round loop (docs/design.md#curriculum-generator): one call of ``run_rounds`` is one run (domain x model x
paradigm x strategy x seed):

    for round r = 1..R:   select (strategy, scoring with the model of round r-1)
                          -> train on the selection, in its order (sft.py / grpo.py)
                          -> checkpoint, per-round artefacts, done.json (written last)

A killed run resumes after its last round with a ``done.json``; a run directory trained under
other settings (``config_fingerprint``) starts over. Optimiser and LR schedule restart each
round, as the official code starts a fresh job from the previous checkpoint.
"""

from __future__ import annotations

import functools
import hashlib
import json
import logging
import os
import shutil
import time
from datetime import timedelta
from pathlib import Path

from edco import curriculum, io, layout
from edco.config import arm_learning_rate, base_label, round_budget
from edco.errors import UserFacingError
from edco.estimator import score_pool
from edco.devices import release_memory
from edco.models import load_model, load_model_from, save_weights
from edco.portable import platform_record
from edco.prompts import chat_template_kwargs
from edco.trainer import grpo, sft

log = logging.getLogger("edco.trainer")

CHECKPOINT = "checkpoint"
# The policy's master weights (models.<m>.master_dtype) beside a checkpoint written in another
# dtype: what a resumed run continues training from. Removed once a later round or the run is done.
MASTER = "master"
PARADIGMS = ("sft", "rl")

def _selection_rows(selection: curriculum.Selection) -> list[dict]:
    return [
        {"position": i, "id": sid, "score": selection.scores.get(sid)}
        for i, sid in enumerate(selection.ids)
    ]


# Config sections that do not change what a run trains: which cells exist, where jobs run,
# how the final model is evaluated, the estimator benchmark, other strategies' options and rates.
# Everything else does.
NOT_TRAINING_INPUTS = ("grid", "seeds", "compute", "evaluate", "estimator_bench", "strategy_options", "learning_rates")
FINGERPRINT = "fingerprint.json"


def config_fingerprint(config: dict, strategy: str) -> str:
    """A hash of every config value a run of ``strategy`` depends on (data, models,
    curriculum, sft/rl, estimator, the strategy's own filled options), so a resume never
    continues rounds trained under other settings."""
    relevant = {k: v for k, v in config.items() if k not in NOT_TRAINING_INPUTS}
    relevant["strategy_options"] = curriculum.strategy_options(config, strategy)
    if strategy in config["learning_rates"]:  # this arm's own rates (absent: the paradigm's, already in)
        relevant["learning_rates"] = config["learning_rates"][strategy]
    if config["compute"]["portable_math"]:  # another float path: rounds of the other one must not be mixed in
        relevant["portable_math"] = True
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


def _save_checkpoint(model, tokenizer, round_path: Path, dtype: str, master: str) -> None:
    """A round's checkpoint in ``models.<m>.dtype`` (bf16 on GPUs: 8 GB for 4B, not 16) and,
    when the master weights are kept in another dtype, those too (``MASTER``): a resumed run
    must continue from the fp32 weights it trained, not from their bf16 rounding."""
    with io.atomic_dir(round_path / CHECKPOINT) as tmp:
        save_weights(model, tokenizer, tmp, dtype)
    if master != dtype:
        with io.atomic_dir(round_path / MASTER) as tmp:
            save_weights(model, tokenizer, tmp, master)


def _resume_from(run_path: Path, start: int, device: str, dtype: str, master: str):
    """(model, tokenizer) as round ``start`` left them: its master weights where they were saved
    apart, else its checkpoint (written in the master dtype, or by an older suite)."""
    round_path = layout.round_dir(run_path, start)
    if (round_path / MASTER).exists():
        return load_model_from(round_path / MASTER, device, master)
    if dtype != master:
        log.warning("%s: round %d kept no %s master weights (an older suite): resuming from its %s checkpoint",
                    run_path, start, master, dtype)
    checkpoint = round_path / CHECKPOINT
    if not checkpoint.exists():  # killed between moving the last checkpoint and run.json
        checkpoint = run_path / "final"
    return load_model_from(checkpoint, device, master)


def _read_scores(path: Path) -> dict[str, float]:
    import pandas as pd  # only a run that resumes or reads history pays for pandas

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


# The others wait at a collective while the main process scores the whole pool (the paper's
# 7000 samples: ~45 min with prefix entropy, hours with full entropy), far past the default.
GROUP_TIMEOUT = timedelta(hours=12)


class Processes:
    """The processes one run trains with: one, or several under ``accelerate launch`` (data
    parallel; ``models.<name>.gpus`` > 1). The main process scores the pool, selects and writes
    every file; the selection reaches the others by broadcast; all of them train (TRL shards
    each batch over them); the others wait while the main process writes."""

    def __init__(self, configured: str):
        """``configured``: compute.device."""
        self.state = None
        self.device = configured
        self.rejoined = 0
        if int(os.environ.get("WORLD_SIZE", "1")) > 1:
            from accelerate import PartialState

            # Joins the process group accelerate launch set up (GROUP_TIMEOUT: see there).
            # cpu=True: gloo processes (how the tests stand two CPU processes in for two GPUs).
            self.state = PartialState(cpu=configured == "cpu", timeout=GROUP_TIMEOUT)
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

    def rejoin(self) -> None:
        """Form the processes' group again where a round's colocated vLLM engine ended it: its
        shutdown destroys torch's default process group, which vLLM shares with accelerate when
        one exists (vllm/distributed/parallel_state.py: ``cleanup_dist_env_and_memory``). Joined
        through the store accelerate launch's rendezvous serves (env://), under a key prefix of
        its own (the store still holds the ended group's addresses under the default one), with
        the same backend and timeout; torch.distributed's calls, accelerate's included, use
        whichever default group exists."""
        import torch.distributed as dist

        if self.state is None or dist.is_initialized():
            return
        self.rejoined += 1
        log.info("process %d: rejoining the process group a rollout engine's shutdown ended (%d)",
                 self.state.process_index, self.rejoined)
        store, rank, world_size = next(dist.rendezvous("env://", timeout=GROUP_TIMEOUT))
        prefixed = dist.PrefixStore(f"edco-rejoin-{self.rejoined}", store)
        dist.init_process_group(backend=self.state.backend, store=prefixed, rank=rank, world_size=world_size,
                                timeout=GROUP_TIMEOUT)


def run_rounds(config: dict, domain: str, model_name: str, paradigm: str, strategy_name: str, seed: int) -> Path:
    """Run (or resume) every round of one run; return the run directory."""
    if paradigm not in PARADIGMS:
        raise UserFacingError(f"grid.paradigms: unknown paradigm {paradigm!r}; use one of {', '.join(PARADIGMS)}")
    run = config["run"]
    run_path = layout.run_dir(run, domain, model_name, paradigm, strategy_name, seed)
    rounds, n = round_budget(config, paradigm, model_name)
    procs = Processes(config["compute"]["device"])
    device = procs.device
    model_cfg, scratch = config["models"][model_name], config["compute"]["scratch_dir"]
    # The policy trains in master_dtype (fp32: at lr 1e-6 most bf16 AdamW updates round to
    # zero); checkpoints, the GRPO reference and scoring engines get models.<m>.dtype.
    master = model_cfg["master_dtype"]

    pool = io.read_jsonl(layout.data_file(run, domain, "train"))
    curriculum.check_budget(n, len(pool), f"domain {domain!r}")
    strategy = curriculum.get_strategy(strategy_name)(pool, config, seed)
    train_cfg = {**strategy.training_config(paradigm, config[paradigm]),
                 "learning_rate": arm_learning_rate(config, strategy_name, paradigm)}
    by_id = {r["id"]: r for r in pool}

    if procs.is_main:
        _start_or_resume(run_path, config_fingerprint(config, strategy_name))
    procs.wait()
    start = _last_done_round(run_path, rounds)
    if start == rounds:  # complete: nothing to load or train (compute.keep_final may have removed its model)
        log.info("%s: every round is done", run_path)
        if procs.is_main:
            _finish(run_path, rounds, n, platform_record(config), domain, model_name, paradigm, strategy_name, seed)
        procs.wait()
        return run_path
    if start:
        log.info("resuming %s after round %d", run_path, start)
        model, tokenizer = _resume_from(run_path, start, device, model_cfg["dtype"], master)
    else:
        model, tokenizer = load_model(config, model_name, device, master, base_label(config, model_name, seed))
    scorer = functools.partial(score_pool, weights_dtype=model_cfg["dtype"], scratch_dir=scratch,
                               template_kwargs=chat_template_kwargs(model_cfg))
    if paradigm == "rl":
        grpo.check_grpo(config["rl"], tokenizer, device)  # before any scoring or training

    for r in range(start + 1, rounds + 1):
        out = layout.round_dir(run_path, r)
        log.info("round %d/%d  %s  -> %s", r, rounds, strategy_name, out)
        ctx = curriculum.RoundContext(round=r, n=n, rounds=rounds, seed=seed, config=config, model=model,
                                      tokenizer=tokenizer, previous=_previous_selections(run_path, r - 1),
                                      feedback=_previous_feedback(run_path, r - 1), scorer=scorer)
        t0 = time.perf_counter()
        selection = procs.from_main(strategy.select(ctx) if procs.is_main else None)
        t1 = time.perf_counter()
        _check_selection(selection, by_id, n, strategy_name)
        if procs.is_main:
            io.write_parquet(out / "scores.parquet",
                             {"id": list(selection.scores), "score": list(selection.scores.values())})
            io.write_jsonl(out / "selection.jsonl", _selection_rows(selection))
        t2 = time.perf_counter()
        records, round_seed = [by_id[i] for i in selection.ids], seed * 1000 + r
        if paradigm == "sft":
            steps = sft.train_sft(model, tokenizer, records, train_cfg, round_seed, device, model_cfg)
        else:
            steps = grpo.train_grpo(model, tokenizer, records, train_cfg, round_seed, device, model_cfg, scratch)
        t3 = time.perf_counter()
        procs.rejoin()  # a rollout engine's shutdown may have ended the processes' group
        release_memory(device)  # the round's trainer, reference and optimiser state: for the next scorer
        strategy.update({"round": r, "steps": steps})
        if not procs.is_main:
            procs.wait()  # for the main process to write the round
            continue
        _save_checkpoint(model, tokenizer, out, model_cfg["dtype"], master)
        io.write_jsonl(out / "metrics.jsonl", steps)
        io.write_json(out / "timing.json", {
            "scoring_seconds": t1 - t0, "selecting_seconds": t2 - t1, "training_seconds": t3 - t2,
            "tokens_generated": selection.tokens_generated, **_budget(paradigm, train_cfg, len(selection.ids), steps),
        })
        io.write_json(out / "done.json", {"round": r})
        if r > 1:  # keep one checkpoint: the newest finished round's
            for name in (CHECKPOINT, MASTER):
                shutil.rmtree(layout.round_dir(run_path, r - 1) / name, ignore_errors=True)
        procs.wait()

    if procs.is_main:
        _finish(run_path, rounds, n, platform_record(config), domain, model_name, paradigm, strategy_name, seed)
    procs.wait()
    return run_path


def _budget(paradigm: str, train_cfg: dict, n_selected: int, steps: list[dict]) -> dict:
    """A round's training budget, the same fields for both paradigms: optimiser steps taken,
    sample visits (SFT: samples x epochs; RL: prompts, each with num_generations rollouts)
    and completion tokens generated by rollouts (SFT generates none). ``train_cfg`` is the
    paradigm section the round trained with (``Strategy.training_config``)."""
    if paradigm == "sft":
        return {"optimizer_steps": len(steps), "sample_visits": n_selected * train_cfg["num_train_epochs"],
                "rollout_tokens_generated": 0}
    return {"optimizer_steps": len(steps), "sample_visits": len(steps) * grpo.grpo_prompts_per_step(train_cfg),
            "rollout_tokens_generated": grpo.rollout_tokens(steps, train_cfg)}


def _check_selection(selection, by_id: dict, n: int, name: str) -> None:
    unknown = [i for i in selection.ids if i not in by_id]
    if unknown:
        raise UserFacingError(f"strategy {name!r} selected ids outside the training pool: {unknown[:3]}")
    if len(selection.ids) != n:
        raise UserFacingError(f"strategy {name!r} selected {len(selection.ids)} samples; the budget is {n}")


def _finish(run_path: Path, rounds: int, n: int, platform: dict, *cell) -> None:
    """Move the last checkpoint to final/ and write run.json last (its existence = complete);
    ``platform``: the CPU and compute.portable_math it ran under (edco.portable)."""
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
        "rounds": rounds, "n": n, "totals": totals,
        "platform": platform,
    })
    shutil.rmtree(layout.round_dir(run_path, rounds) / MASTER, ignore_errors=True)  # nothing resumes now
