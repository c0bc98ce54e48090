"""The GPU path on CPU (issue #17), with stand-ins where a GPU library would run: the memory
settings reach TRL's arguments, the KL reference and checkpoints are bf16 while the policy keeps
fp32 master weights, round saves go to compute.scratch_dir and are removed, and an RL run with
TRL's vLLM rollouts resumes over three rounds (its engine loads from a directory that exists,
and every round's engine is released)."""

from __future__ import annotations

import json
import shutil
import struct
from pathlib import Path

import pytest
import torch

from edco import io, layout, trainer
from edco.models import load_model, save_weights
from edco.trainer import grpo as grpo_module
from edco.trainer import rounds as round_loop
from test_trainer_grpo import DOMAIN, rl_config
from test_trainer_rounds import build_world

MODEL = "qwen3"


def safetensors_dtypes(path: Path) -> set[str]:
    """The dtypes a safetensors file's header declares (read without loading it)."""
    with open(path, "rb") as f:
        header = json.loads(f.read(struct.unpack("<Q", f.read(8))[0]))
    return {v["dtype"] for k, v in header.items() if k != "__metadata__"}


@pytest.fixture
def world(tmp_path, monkeypatch):
    """cwd = tmp_path: data and an untrained tiny Qwen3 of run "t"; the model's weights dtype
    (checkpoints, reference) is bf16 and its master weights fp32, as in the paper config."""
    monkeypatch.chdir(tmp_path)
    config = rl_config("t", MODEL)
    config["models"][MODEL].update(dtype="bfloat16", master_dtype="float32")
    config["compute"]["scratch_dir"] = str(tmp_path / "scratch")
    (tmp_path / "scratch").mkdir()
    train, _ = build_world(config, MODEL)
    return config, train


# --------------------------------------------------------------------------- item 1: TRL arguments
def paper_like(config: dict) -> dict:
    return dict(config["rl"], optim="adamw_bnb_8bit", per_device_train_batch_size=8, gradient_accumulation_steps=8,
                num_generations=8, use_vllm=True, vllm_gpu_memory_utilization=0.3, vllm_enable_sleep_mode=True,
                vllm_max_model_length=2048, loss_type="dapo")


def test_memory_settings_reach_trls_arguments(world, tmp_path):
    config, _ = world
    args = trainer.grpo_config(paper_like(config), 0, str(tmp_path / "o"), "cpu", config["models"][MODEL])
    assert args.optim == "adamw_bnb_8bit" and args.model_init_kwargs == {"dtype": "bfloat16"}
    assert (args.vllm_enable_sleep_mode, args.vllm_gpu_memory_utilization, args.vllm_max_model_length) == (True, 0.3, 2048)
    assert args.loss_type == "dapo"  # explicit, not TRL's implicit default
    # 64 completions per optimiser step, in 8 micro-batches of 8, from one generation batch
    assert (args.per_device_train_batch_size, args.gradient_accumulation_steps) == (8, 8)
    assert (args.generation_batch_size, args.steps_per_generation) == (64, 8)
    sft_args = trainer.sft_config(dict(config["sft"], optim="adamw_bnb_8bit"), 0, str(tmp_path / "s"), "cpu")
    assert sft_args.optim == "adamw_bnb_8bit"


def test_reference_is_built_in_the_weights_dtype_and_the_policy_keeps_fp32(world, tmp_path):
    """TRL would build the reference in the policy's dtype (fp32 master weights: 16 GB for
    4B); models.<m>.dtype bf16 halves it. The saved reference holds the tokenizer too (vLLM
    loads both from there)."""
    config, train = world
    model, tokenizer = load_model(config, MODEL, "cpu", "float32")
    out = tmp_path / "o"
    grpo = trainer.make_grpo_trainer(model, tokenizer, train[:2], config["rl"], 0, "cpu", str(out),
                                     config["models"][MODEL])
    assert grpo.ref_model.dtype == torch.bfloat16 and grpo.model.dtype == torch.float32
    assert torch.equal(grpo.ref_model.model.norm.weight, model.model.norm.weight.to(torch.bfloat16))
    reference = out / "reference"
    assert safetensors_dtypes(reference / "model.safetensors") == {"BF16"}
    assert io.read_json(reference / "config.json")["dtype"] == "bfloat16"
    assert (reference / "tokenizer_config.json").is_file()
    assert model.name_or_path != str(reference) and model.config._name_or_path != str(reference)  # restored


def test_save_weights_casts_the_files_not_the_model(world, tmp_path):
    config, _ = world
    model, tokenizer = load_model(config, MODEL, "cpu", "float32")
    before = {k: v.clone() for k, v in model.state_dict().items()}
    save_weights(model, tokenizer, tmp_path, "bfloat16")
    assert all(torch.equal(v, before[k]) and v.dtype == torch.float32 for k, v in model.state_dict().items())
    assert safetensors_dtypes(tmp_path / "model.safetensors") == {"BF16"}
    with open(tmp_path / "model.safetensors", "rb") as f:
        keys = set(json.loads(f.read(struct.unpack("<Q", f.read(8))[0]))) - {"__metadata__"}
    assert "lm_head.weight" not in keys  # tied to the embedding: stored once
    from transformers import AutoModelForCausalLM

    again = AutoModelForCausalLM.from_pretrained(tmp_path, dtype="auto")  # what vLLM's dtype="auto" reads
    assert again.dtype == torch.bfloat16
    assert torch.equal(again.lm_head.weight, model.lm_head.weight.to(torch.bfloat16))


def test_checkpoints_are_bf16_the_policy_trains_in_fp32_and_scratch_is_cleaned(world, tmp_path, monkeypatch):
    config, _ = world
    loaded = []
    real_load = round_loop.load_model
    monkeypatch.setattr(round_loop, "load_model", lambda *a, **k: loaded.append(a[3]) or real_load(*a, **k))
    trained = []
    real_train = grpo_module.train_grpo

    def spy(model, *args, **kwargs):
        trained.append(model.dtype)
        return real_train(model, *args, **kwargs)

    monkeypatch.setattr(grpo_module, "train_grpo", spy)
    path = trainer.run_rounds(config, DOMAIN, MODEL, "rl", "random", 0)
    assert loaded == ["float32"] and trained == [torch.float32, torch.float32]
    assert safetensors_dtypes(path / "final" / "model.safetensors") == {"BF16"}
    assert io.read_json(path / "final" / "config.json")["dtype"] == "bfloat16"
    assert list((tmp_path / "scratch").iterdir()) == []  # each round's reference save removed


# --------------------------------------------------------------------------- items 6 and 11: vLLM rollouts
class StandInEngine:
    """What TRL and edco touch of a ``vllm.LLM``: shutdown through its engine core, sleep."""

    def __init__(self, path: str):
        self.path, self.shut_down, self.slept = Path(path), False, []
        self.llm_engine = type("Engine", (), {"engine_core": type("Core", (), {"shutdown": self._shutdown})()})()

    def _shutdown(self):
        self.shut_down = True

    def sleep(self, level: int = 1):
        self.slept.append(level)


class StandInVLLMGeneration:
    """Stands in for TRL's VLLMGeneration (colocate mode): built from ``model.name_or_path`` as
    TRL builds vllm.LLM, which must be a directory holding the weights and the tokenizer, and
    still exist whenever it generates; samples with the policy itself (the weights TRL would
    have synced) and returns per-token log-probs for TRL's importance-sampling correction."""

    built: list["StandInVLLMGeneration"] = []

    def __init__(self, model, accelerator, processing_class, **kwargs):
        self.model, self.kwargs, self.eos = model, kwargs, processing_class.eos_token_id
        self.loaded_from = Path(model.name_or_path)
        self._assert_loadable()
        self.llm = StandInEngine(model.name_or_path)
        self.built.append(self)

    def _assert_loadable(self):
        path = Path(self.model.name_or_path)
        assert (path / "config.json").is_file() and (path / "tokenizer_config.json").is_file(), path

    def sync_weights(self):
        pass

    @torch.no_grad()
    def generate(self, prompts, images, num_generations, profiler=None):
        assert self.llm is not None, "generate after release"
        assert self.llm.path.is_dir(), f"the engine's directory {self.llm.path} is gone"
        completions, logprobs = [], []
        for ids in prompts:
            out = self.model.generate(torch.tensor([ids]), do_sample=True, max_new_tokens=self.kwargs["max_completion_length"],
                                      temperature=self.kwargs["temperature"], top_p=1.0, top_k=0,
                                      output_scores=True, return_dict_in_generate=True, pad_token_id=self.eos)
            tokens = out.sequences[0, len(ids):].tolist()
            if self.eos in tokens:
                tokens = tokens[: tokens.index(self.eos) + 1]
            steps = [torch.log_softmax(s[0].float(), -1)[t].item() for s, t in zip(out.scores, tokens)]
            completions.append(tokens)
            logprobs.append([[lp] for lp in steps])
        return prompts, completions, logprobs, None


def test_a_resumed_rl_run_with_vllm_rollouts_runs_three_rounds(world, tmp_path, monkeypatch):
    """Round 1, killed in round 2, resumed: rounds 2 and 3 build their rollout engines from the
    round's own reference save (before the fix: from the checkpoint the model was loaded from,
    round 1's, which the loop deletes after round 2, so round 3's engine had no directory), and
    each round's engine is shut down when the round ends."""
    config, _ = world
    config["rl"].update(rounds=3, use_vllm=True, vllm_enable_sleep_mode=True)
    real_check = grpo_module.check_grpo
    # vLLM and CUDA are not here: check everything else; the engine is the stand-in.
    monkeypatch.setattr(grpo_module, "check_grpo", lambda cfg, tok, dev: real_check(dict(cfg, use_vllm=False), tok, dev))
    import trl.trainer.grpo_trainer as trl_grpo

    StandInVLLMGeneration.built = []
    monkeypatch.setattr(trl_grpo, "VLLMGeneration", StandInVLLMGeneration)
    real_train, calls = grpo_module.train_grpo, {"n": 0}

    def dies_in_round_two(*args, **kwargs):
        calls["n"] += 1
        if calls["n"] == 2:
            raise KeyboardInterrupt("killed")
        return real_train(*args, **kwargs)

    monkeypatch.setattr(grpo_module, "train_grpo", dies_in_round_two)
    with pytest.raises(KeyboardInterrupt):
        trainer.run_rounds(config, DOMAIN, MODEL, "rl", "random", 0)
    path = layout.run_dir("t", DOMAIN, MODEL, "rl", "random", 0)
    assert (layout.round_dir(path, 1) / "done.json").exists() and not (layout.round_dir(path, 2) / "done.json").exists()

    monkeypatch.setattr(grpo_module, "train_grpo", real_train)
    trainer.run_rounds(config, DOMAIN, MODEL, "rl", "random", 0)
    assert (path / "run.json").is_file()
    engines = StandInVLLMGeneration.built
    assert len(engines) == 3  # round 1, then rounds 2 and 3 of the resumed run
    scratch = tmp_path / "scratch"
    for generation in engines:
        assert generation.llm is None  # released when its round ended
        assert generation.kwargs["enable_sleep_mode"] is True
    # Each engine loaded its own round's reference save under compute.scratch_dir, since removed.
    paths = [e.loaded_from for e in engines]
    assert len(set(paths)) == 3 and all(p.name == "reference" and p.parent.parent == scratch for p in paths)
    assert list(scratch.iterdir()) == []
    for r in (1, 2, 3):
        metrics = io.read_jsonl(layout.round_dir(path, r) / "metrics.jsonl")
        assert len(metrics) == config["rl"]["max_steps"] and all("loss" in m for m in metrics)


@pytest.mark.parametrize("processes", ["1", "2"])
def test_every_rounds_engine_is_shut_down(world, monkeypatch, processes):
    """One process or several: the engine core is shut down (vLLM froze the garbage collector's
    heap at start-up, so a dropped or sleeping engine would never be freed, nor the round's
    trainer and reference); under accelerate its shutdown ends the shared process group, which
    Processes.rejoin forms again (test_trainer_rounds)."""
    monkeypatch.setenv("WORLD_SIZE", processes)
    engine = StandInEngine("/nowhere")
    generation = type("Generation", (), {"llm": engine})()
    fake_trainer = type("Trainer", (), {"vllm_generation": generation})()
    grpo_module.release_rollout_engine(fake_trainer, "cpu")
    assert engine.shut_down and engine.slept == [] and fake_trainer.vllm_generation is None and generation.llm is None
    grpo_module.release_rollout_engine(type("Trainer", (), {})(), "cpu")  # no vLLM: nothing to release
