"""The trainer's round loop (edco/trainer/rounds.py) on a tiny model: artefacts written,
the budget kept, a killed run resumes to the same result, a changed config starts over, no
test id is ever selected; the `train` command runs several strategies and seeds."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest
import torch
import yaml

from edco import cli, curriculum, io, layout, trainer
from edco.config import validate_config
from edco.data import make_domain_data
from edco.errors import UserFacingError
from edco.models import build_model, build_tokenizer, corpus_texts, save_model
from edco.trainer import rounds as round_loop
from edco.trainer import sft

REPO = Path(__file__).resolve().parents[1]
DOMAIN, MODEL = "law", "qwen3"


def tiny_config(run: str) -> dict:
    raw = yaml.safe_load((REPO / "config" / "smoke.yaml").read_text())
    raw["run"] = run
    raw["seeds"] = [0]
    raw["grid"].update(domains=[DOMAIN], models=[MODEL])
    raw["data"]["synthetic"].update(entities=8, levels=[1, 2], train_per_level=24, test_per_level=6, general_size=40)
    raw["models"][MODEL]["size"] = {"hidden_size": 32, "num_hidden_layers": 1, "num_attention_heads": 2,
                                    "num_key_value_heads": 1, "intermediate_size": 64}
    raw["curriculum"] = {"rounds": 2, "n": 16}
    raw["sft"].update(per_device_train_batch_size=8, num_train_epochs=1)
    return validate_config(raw, "tiny")


def build_world(config: dict, model: str) -> tuple[list[dict], list[dict]]:
    """Data of DOMAIN and an untrained tiny base model ``model`` for run "t", under the cwd."""
    torch.set_num_threads(1)
    train, test = make_domain_data(config, DOMAIN)
    io.write_jsonl(layout.data_file("t", DOMAIN, "train"), train)
    io.write_jsonl(layout.data_file("t", DOMAIN, "test"), test)
    model_cfg = config["models"][model]
    tokenizer = build_tokenizer(model_cfg, corpus_texts(train))
    save_model(build_model(model_cfg, tokenizer), tokenizer, layout.model_dir("t", model), {"source": "tiny"})
    return train, test


@pytest.fixture
def world(tmp_path, monkeypatch):
    """A run directory (cwd = tmp_path) with data and an untrained tiny base model."""
    monkeypatch.chdir(tmp_path)
    config = tiny_config("t")
    return config, *build_world(config, MODEL)


def run(config, strategy="random", seed=0):
    return trainer.run_rounds(config, DOMAIN, MODEL, "sft", strategy, seed)


def test_rounds_write_artefacts_and_respect_the_budget(world):
    config, train, test = world
    path = run(config)
    summary = io.read_json(path / "run.json")
    steps = trainer.sft_steps(config["curriculum"]["n"], config["sft"])
    assert summary["totals"]["optimizer_steps"] == 2 * steps
    assert summary["totals"]["sample_visits"] == 2 * config["curriculum"]["n"]
    test_ids = {r["id"] for r in test}
    for r in (1, 2):
        rd = layout.round_dir(path, r)
        for name in ("scores.parquet", "selection.jsonl", "metrics.jsonl", "timing.json", "done.json"):
            assert (rd / name).is_file(), name
        selected = [row["id"] for row in io.read_jsonl(rd / "selection.jsonl")]
        assert len(selected) == config["curriculum"]["n"]
        assert not test_ids & set(selected)
        assert not (rd / trainer.CHECKPOINT).exists()  # moved to final/
    assert (path / "final" / "config.json").is_file()


def test_random_matched_trains_random_s_draws_for_compute_ratio_times_the_steps(world):
    """The compute-matched reference (issue 18): random's selections, 2x the optimiser steps and
    sample visits when compute_ratio is 2; every other strategy keeps the paradigm's budget."""
    config, _, _ = world
    config["strategy_options"] = {"random_matched": {"compute_ratio_sft": 2.0}}
    plain, matched = run(config), run(config, "random_matched")
    totals = [io.read_json(p / "run.json")["totals"] for p in (plain, matched)]
    assert totals[1]["optimizer_steps"] == 2 * totals[0]["optimizer_steps"]
    assert totals[1]["sample_visits"] == 2 * totals[0]["sample_visits"]
    for r in (1, 2):
        assert io.read_jsonl(layout.round_dir(plain, r) / "selection.jsonl") == \
            io.read_jsonl(layout.round_dir(matched, r) / "selection.jsonl")


@pytest.mark.parametrize("dtype", ["float32", "bfloat16"])
def test_killed_run_resumes_to_the_same_result(world, monkeypatch, tmp_path, dtype):
    """Also with bf16 checkpoints of fp32 master weights: the resumed run continues from the
    fp32 weights round 1 trained (saved beside its checkpoint), not from their bf16 rounding."""
    config, _, _ = world
    config["models"][MODEL]["dtype"] = dtype  # master_dtype stays float32
    reference = run(config, seed=1)
    ref_metrics = io.read_jsonl(layout.round_dir(reference, 2) / "metrics.jsonl")

    real_train = sft.train_sft
    calls = {"n": 0}

    def dies_in_round_two(*args, **kwargs):
        calls["n"] += 1
        if calls["n"] == 2:
            raise KeyboardInterrupt("killed")
        return real_train(*args, **kwargs)

    # Move the uninterrupted run aside, then run the same cell again and kill it in round 2.
    monkeypatch.setattr(sft, "train_sft", dies_in_round_two)
    resumed_path = layout.run_dir("t", DOMAIN, MODEL, "sft", "random", 1)
    shutil.move(str(reference), str(tmp_path / "reference"))
    with pytest.raises(KeyboardInterrupt):
        run(config, seed=1)
    assert (layout.round_dir(resumed_path, 1) / "done.json").exists()
    assert not (layout.round_dir(resumed_path, 2) / "done.json").exists()
    assert not (resumed_path / "run.json").exists()

    assert (layout.round_dir(resumed_path, 1) / round_loop.MASTER).exists() == (dtype != "float32")
    monkeypatch.setattr(sft, "train_sft", real_train)
    run(config, seed=1)
    resumed_metrics = io.read_jsonl(layout.round_dir(resumed_path, 2) / "metrics.jsonl")
    assert [m["loss"] for m in resumed_metrics] == [m["loss"] for m in ref_metrics]
    ref_sel = io.read_jsonl(tmp_path / "reference" / "round2" / "selection.jsonl")
    assert io.read_jsonl(layout.round_dir(resumed_path, 2) / "selection.jsonl") == ref_sel
    assert_same_weights(resumed_path / "final", tmp_path / "reference" / "final")
    assert not list(resumed_path.glob(f"round*/{round_loop.MASTER}"))  # a finished run keeps only final/


def assert_same_weights(path, other):
    from safetensors.torch import load_file

    mine, theirs = load_file(path / "model.safetensors"), load_file(other / "model.safetensors")
    assert mine.keys() == theirs.keys()
    assert all(torch.equal(mine[k], theirs[k]) for k in mine)


def _round_outputs(path, rounds=2):
    """What a run decided and measured per round: selection, scores, per-step losses."""
    return [(io.read_jsonl(layout.round_dir(path, r) / "selection.jsonl"),
             round_loop._read_scores(layout.round_dir(path, r) / "scores.parquet"),
             [m["loss"] for m in io.read_jsonl(layout.round_dir(path, r) / "metrics.jsonl")])
            for r in range(1, rounds + 1)]


def test_edco_scores_only_the_pool_and_repeats_exactly(world, tmp_path):
    config, train, test = world
    first = _round_outputs(run(config, strategy="edco"))
    train_ids, test_ids = {r["id"] for r in train}, {r["id"] for r in test}
    for selection, scores, _ in first:
        assert set(scores) == train_ids  # the whole pool, re-scored each round, nothing else
        assert not test_ids & ({row["id"] for row in selection} | set(scores))
    shutil.move(str(layout.run_dir("t", DOMAIN, MODEL, "sft", "edco", 0)), str(tmp_path / "first"))
    assert _round_outputs(run(config, strategy="edco")) == first  # same config + seed -> same run


def test_a_changed_config_starts_the_run_over_instead_of_resuming(world, caplog):
    config, _, _ = world
    path = run(config)
    before = io.read_jsonl(layout.round_dir(path, 1) / "metrics.jsonl")
    assert [m["loss"] for m in io.read_jsonl(layout.round_dir(run(config), 1) / "metrics.jsonl")] == \
        [m["loss"] for m in before]  # unchanged config: a finished run is kept as it is
    changed = {**config, "sft": {**config["sft"], "learning_rate": config["sft"]["learning_rate"] / 10}}
    after = io.read_jsonl(layout.round_dir(run(changed), 1) / "metrics.jsonl")
    assert [m["loss"] for m in after][1:] != [m["loss"] for m in before][1:]
    assert "trained with another config" in caplog.text
    evaluation_only = {**changed, "evaluate": {**changed["evaluate"], "max_gen_toks": 7}}
    assert trainer.config_fingerprint(evaluation_only, "random") == trainer.config_fingerprint(changed, "random")
    # another strategy's options do not restart a random run; its own options would
    other_options = {**changed, "strategy_options": {"ucb_bandit": {"ucb_c": 2.0}}}
    assert trainer.config_fingerprint(other_options, "random") == trainer.config_fingerprint(changed, "random")
    assert trainer.config_fingerprint(other_options, "ucb_bandit") != trainer.config_fingerprint(changed, "ucb_bandit")
    # where jobs run does not restart a run; portable math (another float path) does
    elsewhere = {**changed, "compute": {**changed["compute"], "threads": 7}}
    assert trainer.config_fingerprint(elsewhere, "random") == trainer.config_fingerprint(changed, "random")
    portable = {**changed, "compute": {**changed["compute"], "portable_math": not changed["compute"]["portable_math"]}}
    assert trainer.config_fingerprint(portable, "random") != trainer.config_fingerprint(changed, "random")


def test_an_arms_own_learning_rate_trains_that_arm_alone(world):
    """learning_rates.<strategy>.<paradigm> (every arm tuned on its own): that strategy's runs
    train exactly as with the paradigm's rate set to it; other strategies' runs, and their
    fingerprints, stay as they were."""
    config, _, _ = world
    rate = config["sft"]["learning_rate"] / 10
    own = {**config, "learning_rates": {"random": {"sft": rate, "rl": None}}}
    assert trainer.config_fingerprint(own, "edco") == trainer.config_fingerprint(config, "edco")
    assert trainer.config_fingerprint(own, "random") != trainer.config_fingerprint(config, "random")
    losses = [m["loss"] for m in io.read_jsonl(layout.round_dir(run(own), 1) / "metrics.jsonl")]
    shutil.rmtree(layout.run_dir("t", DOMAIN, MODEL, "sft", "random", 0))
    lowered = {**config, "sft": {**config["sft"], "learning_rate": rate}}
    assert losses == [m["loss"] for m in io.read_jsonl(layout.round_dir(run(lowered), 1) / "metrics.jsonl")]
    with pytest.raises(UserFacingError, match="learning_rates.randmo: no such strategy"):
        curriculum.check_strategies({**config, "learning_rates": {"randmo": {"sft": rate, "rl": None}}})


def test_the_cli_runs_every_strategy_with_every_seed_in_one_process(world, capsys):
    config, _, _ = world
    config_path = layout.run_root("t") / "config.yaml"
    io.write_text(config_path, yaml.safe_dump(config))
    argv = ["train", "--config", str(config_path), "--domain", DOMAIN, "--model", MODEL, "--paradigm", "sft",
            "--strategy", "random", "--strategy", "static_difficulty", "--seed", "0", "--seed", "1"]
    assert cli.main(argv) == 0
    for strategy in ("random", "static_difficulty"):
        for seed in (0, 1):
            assert (layout.run_dir("t", DOMAIN, MODEL, "sft", strategy, seed) / "run.json").is_file()
    capsys.readouterr()
    assert cli.main([*argv, "--seed", "2", "--strategy", "nope"]) == 1
    assert "unknown strategy 'nope'" in capsys.readouterr().err
    assert not layout.run_dir("t", DOMAIN, MODEL, "sft", "random", 2).exists()  # stopped before any run
    bad = {**config, "strategy_options": {"static_difficulty": {"order": "sideways"}}}
    io.write_text(config_path, yaml.safe_dump(bad))
    assert cli.main([*argv, "--seed", "2"]) == 1
    assert "strategy_options.static_difficulty.order: 'sideways' is not one of" in capsys.readouterr().err
    assert not layout.run_dir("t", DOMAIN, MODEL, "sft", "random", 2).exists()


def test_keep_final_false_removes_evaluated_models_but_the_benchmarks(world, capsys):
    """compute.keep_final: false deletes a run's final model once it is evaluated, except the run
    the estimator benchmark measures; the finished run is not trained again, and evaluating it
    again says why its model is gone."""
    config, _, _ = world
    config = {**config, "compute": {**config["compute"], "keep_final": False}}
    assert layout.bench_run(config) == ("sft", "random", 0)
    assert layout.keeps_final(config, "sft", "random", 0) and not layout.keeps_final(config, "sft", "random", 1)
    assert layout.bench_run({**config, "estimator_bench": {**config["estimator_bench"], "checkpoint": False}}) is None
    config_path = layout.run_root("t") / "config.yaml"
    io.write_text(config_path, yaml.safe_dump(config))
    argv = ["train", "--config", str(config_path), "--domain", DOMAIN, "--model", MODEL, "--paradigm", "sft",
            "--strategy", "random", "--seed", "0", "--seed", "1", "--evaluate"]
    assert cli.main(argv) == 0
    kept, removed = (layout.run_dir("t", DOMAIN, MODEL, "sft", "random", seed) for seed in (0, 1))
    assert (kept / "final" / "model.safetensors").is_file() and not (removed / "final").exists()
    assert layout.eval_file("t", DOMAIN, MODEL, "sft", "random", 1).is_file()
    before = (removed / "run.json").stat().st_mtime_ns
    assert trainer.run_rounds(config, DOMAIN, MODEL, "sft", "random", 1) == removed  # complete: no model loaded
    assert io.read_json(removed / "run.json")["totals"] and (removed / "run.json").stat().st_mtime_ns >= before
    capsys.readouterr()
    assert cli.main([*argv[:-5], "--seed", "1", "--evaluate"]) == 1
    assert "the final model was removed after its evaluation (compute.keep_final: false)" in capsys.readouterr().err


def test_unknown_paradigm_stops_before_training(world):
    config, _, _ = world
    with pytest.raises(Exception, match="grid.paradigms: unknown paradigm 'dpo'; use one of sft, rl"):
        trainer.run_rounds(config, DOMAIN, MODEL, "dpo", "random", 0)


@pytest.mark.slow
def test_two_processes_train_one_run_under_accelerate_launch(world, tmp_path):
    """models.<name>.gpus > 1 launches the run through `accelerate launch --multi_gpu` (data
    parallel), which starts one process per GPU with torch.distributed.run. Here that launcher
    starts two CPU processes over gloo in place of two GPUs: the main process scores and selects
    (round 1 picks what a one-process run picks), both train on its selection (the global batch
    doubles, so the round takes half the optimiser steps), and every file is written once."""
    import subprocess
    import sys

    config, _, _ = world
    config["sft"]["fused_lm_head"] = True  # the backbone-direct path is refused under DDP (checked elsewhere)
    config_path = layout.run_root("t") / "config.yaml"
    io.write_text(config_path, yaml.safe_dump(config))
    one = run(config, strategy="edco")
    one_round1 = io.read_jsonl(layout.round_dir(one, 1) / "selection.jsonl")
    shutil.move(str(one), str(tmp_path / "one_process"))

    launch = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2"]
    env = {**os.environ, "PYTHONPATH": str(REPO)}  # this checkout's edco, whatever is installed
    result = subprocess.run([*launch, "-m", "edco", "train", "--config", str(config_path), "--domain", DOMAIN,
                             "--model", MODEL, "--paradigm", "sft", "--strategy", "edco", "--seed", "0"],
                            capture_output=True, text=True, timeout=600, env=env)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    two = layout.run_dir("t", DOMAIN, MODEL, "sft", "edco", 0)
    two_round1 = io.read_jsonl(layout.round_dir(two, 1) / "selection.jsonl")
    # The same samples in the same order; the scores to float32 rounding (torchrun gives each
    # process one thread, pytest's process has more: another reduction order, other last digits).
    assert [(s["position"], s["id"]) for s in two_round1] == [(s["position"], s["id"]) for s in one_round1]
    assert [s["score"] for s in two_round1] == pytest.approx([s["score"] for s in one_round1], rel=1e-5)
    steps_one_process = trainer.sft_steps(config["curriculum"]["n"], config["sft"])
    for r in (1, 2):
        assert io.read_json(layout.round_dir(two, r) / "timing.json")["optimizer_steps"] == steps_one_process // 2
    assert (two / "run.json").is_file() and (two / "final" / "model.safetensors").is_file()


REJOIN = """
import sys
from pathlib import Path

import torch.distributed as dist
from edco.trainer.rounds import Processes

procs = Processes("cpu")
seen = [procs.from_main("round 1" if procs.is_main else None)]
for r in (2, 3):  # a round's end: the rollout engine shut down, then the next round's broadcast
    dist.destroy_process_group()  # what a colocated vLLM engine's shutdown does to the group it shares
    procs.rejoin()
    seen.append(procs.from_main(f"round {r}" if procs.is_main else None))
    procs.wait()
# One file per rank: two processes printing to one pipe interleave their lines.
Path(sys.argv[1], f"rank{dist.get_rank()}.txt").write_text(f"rank {dist.get_rank()} {seen}")
"""


def test_processes_rejoin_the_group_a_rollout_engines_shutdown_ended(tmp_path):
    """Under accelerate launch each process's colocated vLLM engine shares torch's default
    process group, and its shutdown destroys it (vllm cleanup_dist_env_and_memory): the next
    broadcast of a selection, or wait, needs ``Processes.rejoin`` to have formed it again."""
    import subprocess
    import sys

    script = tmp_path / "rejoin.py"
    script.write_text(REJOIN)
    launch = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2"]
    result = subprocess.run([*launch, str(script), str(tmp_path)], capture_output=True, text=True, timeout=300,
                            env={**os.environ, "PYTHONPATH": str(REPO)})
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    assert [(tmp_path / f"rank{rank}.txt").read_text() for rank in (0, 1)] == [
        f"rank {rank} ['round 1', 'round 2', 'round 3']" for rank in (0, 1)]
