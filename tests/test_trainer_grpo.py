"""RL (GRPO through TRL's GRPOTrainer) on a tiny model: the reward, the curriculum order of
the prompts, every parameter changes, a whole 2-round run writes its artefacts with the
budget, and bad settings stop before any training with a message that says what to change."""

from __future__ import annotations

import importlib.util
import tempfile

import pytest
import torch
from test_trainer_rounds import build_world, tiny_config  # the same tiny world as the SFT tests

from edco import devices, io, layout, trainer
from edco.config import validate_config
from edco.errors import UserFacingError
from edco.models import load_model
from edco.prompts import chat_messages
from edco.trainer import grpo as grpo_module

DOMAIN = "law"
# Tiny rollouts: 2 prompts x 2 generations per step, 16 tokens each, 2 steps per round.
RL = {"learning_rate": 1.0e-3, "per_device_train_batch_size": 4, "gradient_accumulation_steps": 1,
      "num_generations": 2, "max_steps": 2, "beta": 0.01, "epsilon": 0.2, "temperature": 1.0,
      "max_completion_length": 16, "use_vllm": False}


def rl_config(run: str, model: str) -> dict:
    raw = tiny_config(run)
    raw["grid"].update(models=[model], paradigms=["sft", "rl"])
    raw["models"][model]["size"] = raw["models"]["qwen3"]["size"]
    raw["rl"] = dict(RL)
    return validate_config(raw, "tiny-rl")


@pytest.fixture(params=["qwen3", "llama"])
def world(request, tmp_path, monkeypatch):
    """A run directory (cwd = tmp_path) with data and an untrained tiny base model."""
    monkeypatch.chdir(tmp_path)
    model_name = request.param
    config = rl_config("t", model_name)
    train, _ = build_world(config, model_name)
    return config, train, model_name


qwen3_only = pytest.mark.parametrize("world", ["qwen3"], indirect=True)


# --------------------------------------------------------------------------- reward
def test_reward_reads_the_last_answer_in_both_completion_shapes():
    def chat(text):
        return [{"role": "assistant", "content": text}]

    texts = ["Because 2 + 2 = 4.\nAnswer: B", "Answer: A ... no, wait. Answer: C", "no letter here", "Answer: (D)"]
    answers = ["B", "A", "A", "D"]
    expected = [1.0, 0.0, 0.0, 1.0]  # the last "Answer:" counts; no answer scores 0
    assert trainer.correct_letter_reward(texts, answers) == expected
    assert trainer.correct_letter_reward([chat(t) for t in texts], answers, trainer_state=None) == expected
    assert trainer.correct_letter_reward(["Answer: C"], ["B"]) == [0.0]


# --------------------------------------------------------------------------- order
def test_sampler_walks_the_selection_in_order_and_cycles_without_dropping():
    # 5 prompts, 2 prompts x 2 generations per step, 4 steps: 8 prompt visits > 5, so the
    # selection cycles; TRL's RepeatSampler would shuffle, drop prompt 4 and restart at 0.
    sampler = trainer.CurriculumSampler(n_prompts=5, num_generations=2, per_generation=2, repeat_count=1,
                                        generations=4)
    assert list(sampler) == [0, 0, 1, 1, 2, 2, 3, 3, 4, 4, 0, 0, 1, 1, 2, 2]
    assert len(sampler) == 16
    # With gradient accumulation TRL reads each generation batch repeat_count times.
    sampler = trainer.CurriculumSampler(n_prompts=3, num_generations=3, per_generation=2, repeat_count=2,
                                        generations=2)
    assert list(sampler) == [0, 0, 0, 1, 1, 1] * 2 + [2, 2, 2, 0, 0, 0] * 2


@qwen3_only
def test_trainer_uses_the_curriculum_sampler(world, tmp_path):
    config, train, model_name = world
    model, tokenizer = load_model(config, model_name, "cpu")
    cfg = dict(config["rl"], max_steps=4)
    grpo = trainer.make_grpo_trainer(model, tokenizer, train[:3], cfg, 0, "cpu", str(tmp_path / "o"),
                                     config["models"][model_name])
    assert list(grpo._get_train_sampler()) == [0, 0, 1, 1, 2, 2, 0, 0, 1, 1, 2, 2, 0, 0, 1, 1]
    seen = [row["prompt"][0]["content"] for batch in grpo.get_train_dataloader() for row in batch]
    assert seen == [chat_messages(train[k])[0]["content"] for k in [0, 0, 1, 1, 2, 2, 0, 0, 1, 1, 2, 2, 0, 0, 1, 1]]


@qwen3_only
@pytest.mark.parametrize("batch, accumulation", [(4, 1), (2, 2)])
def test_a_round_generates_for_the_prompts_in_curriculum_order(world, tmp_path, batch, accumulation):
    config, train, model_name = world
    model, tokenizer = load_model(config, model_name, "cpu")
    records = list(reversed(train[:5]))  # not the pool's order: the given order must win
    cfg = dict(config["rl"], max_steps=3, per_device_train_batch_size=batch,
               gradient_accumulation_steps=accumulation)
    grpo = trainer.make_grpo_trainer(model, tokenizer, records, cfg, 0, "cpu", str(tmp_path / "o"),
                                     config["models"][model_name])
    generated = []
    real = grpo._generate_and_score_completions

    def spy(inputs):
        generated.append([row["prompt"][0]["content"] for row in inputs])
        return real(inputs)

    grpo._generate_and_score_completions = spy
    grpo.train()
    # One generation per optimiser step (also with accumulation), 2 prompts x 2 rollouts
    # each, the selection cycled: prompt 4 is not dropped, then prompt 0 comes round again.
    order = ([0, 0, 1, 1], [2, 2, 3, 3], [4, 4, 0, 0])
    expected = [[chat_messages(records[k])[0]["content"] for k in step] for step in order]
    assert generated == expected
    assert grpo.state.global_step == 3


# --------------------------------------------------------------------------- learning
def distinct_text_reward(completions, **kwargs) -> list[float]:
    """Stand-in reward: differs between any two different completions.

    An untrained tiny model never writes "Answer: X", so the real reward is 0 for every
    rollout; GRPO's group advantages are then all 0, the policy term has no gradient and the
    KL term's gradient is 0 too at step 1 (policy == reference). Nothing would move, and the
    test could not tell a broken update from a correct one. With this reward the advantages
    are non-zero, so a parameter that stays put means the update really did not reach it."""
    return [float(sum(map(ord, grpo_module.completion_content(c))) % 97) for c in completions]


def test_every_parameter_changes_and_grpo_metrics_are_logged(world):
    config, train, model_name = world
    model, tokenizer = load_model(config, model_name, "cpu")
    before = {n: p.detach().clone() for n, p in model.named_parameters()}
    with tempfile.TemporaryDirectory() as tmp:
        grpo = trainer.make_grpo_trainer(model, tokenizer, train[:4], config["rl"], 0, "cpu", tmp,
                                         config["models"][model_name], reward_funcs=[distinct_text_reward])
        grpo.train()
    logs = [row for row in grpo.state.log_history if "loss" in row]
    assert len(logs) == config["rl"]["max_steps"]
    for key in ("loss", "grad_norm", "reward", "entropy", "kl", "completions/mean_length"):
        assert all(key in row for row in logs), key
    assert any(row["reward_std"] > 0 for row in logs)
    unchanged = [n for n, p in model.named_parameters() if p.requires_grad and torch.equal(p, before[n])]
    assert not unchanged


@qwen3_only
def test_the_kl_reference_is_the_model_at_the_start_of_the_round(world, tmp_path):
    config, train, model_name = world
    model, tokenizer = load_model(config, model_name, "cpu")
    with torch.no_grad():
        model.model.norm.weight.mul_(1.5)  # as if an earlier round had trained it
    grpo = trainer.make_grpo_trainer(model, tokenizer, train[:2], config["rl"], 0, "cpu", str(tmp_path / "o"),
                                     config["models"][model_name])
    assert torch.equal(grpo.ref_model.model.norm.weight, model.model.norm.weight)
    assert model.config._name_or_path != str(tmp_path / "o" / "reference")  # restored


# --------------------------------------------------------------------------- run
@qwen3_only
def test_rl_rounds_write_artefacts_and_respect_the_budget(world):
    config, train, model_name = world
    path = trainer.run_rounds(config, DOMAIN, model_name, "rl", "random", 0)
    rl, n = config["rl"], config["curriculum"]["n"]
    steps, prompts = rl["max_steps"], rl["per_device_train_batch_size"] // rl["num_generations"]
    for r in (1, 2):
        rd = layout.round_dir(path, r)
        for name in ("scores.parquet", "selection.jsonl", "metrics.jsonl", "timing.json", "done.json"):
            assert (rd / name).is_file(), name
        assert len(io.read_jsonl(rd / "selection.jsonl")) == n
        assert len(io.read_jsonl(rd / "metrics.jsonl")) == steps
        timing = io.read_json(rd / "timing.json")
        assert timing["optimizer_steps"] == steps
        assert timing["sample_visits"] == steps * prompts
        assert 0 < timing["rollout_tokens_generated"] <= steps * prompts * rl["num_generations"] * rl["max_completion_length"]
    totals = io.read_json(path / "run.json")["totals"]
    assert totals["optimizer_steps"] == 2 * steps
    assert totals["sample_visits"] == 2 * steps * prompts
    assert (path / "final" / "config.json").is_file()


# --------------------------------------------------------------------------- bad input
@qwen3_only
def test_batch_not_a_multiple_of_num_generations_stops_before_training(world, monkeypatch):
    config, _, model_name = world
    config["rl"].update(per_device_train_batch_size=6, num_generations=4)
    monkeypatch.setattr(grpo_module, "train_grpo", lambda *a, **k: pytest.fail("trained"))
    with pytest.raises(UserFacingError, match=r"rl.per_device_train_batch_size .* not a multiple of rl.num_generations = 4.*\(e.g. 8\)"):
        trainer.run_rounds(config, DOMAIN, model_name, "rl", "random", 0)
    assert not layout.round_dir(layout.run_dir("t", DOMAIN, model_name, "rl", "random", 0), 1).exists()


@qwen3_only
def test_a_tokenizer_without_eos_cannot_generate(world):
    config, _, model_name = world
    _, tokenizer = load_model(config, model_name, "cpu")
    tokenizer.pad_token = None  # no pad: TRL pads with EOS, which is fine
    trainer.check_grpo(config["rl"], tokenizer, "cpu")
    tokenizer.eos_token = None
    with pytest.raises(UserFacingError, match="cannot generate"):
        trainer.check_grpo(config["rl"], tokenizer, "cpu")


@qwen3_only
def test_use_vllm_needs_vllm_and_cuda(world, monkeypatch):
    config, _, model_name = world
    _, tokenizer = load_model(config, model_name, "cpu")
    cfg = dict(config["rl"], use_vllm=True)
    real_find_spec = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "vllm" else real_find_spec(name, *a))
    with pytest.raises(UserFacingError, match=r"rl.use_vllm: true cannot run here: the vllm package is not "
                                              r"installed.*otherwise set rl.use_vllm: false"):
        trainer.check_grpo(cfg, tokenizer, "cpu")
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: object() if name == "vllm" else real_find_spec(name, *a))
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    monkeypatch.setattr(devices, "vllm_platform", lambda: "cuda")
    with pytest.raises(UserFacingError, match=r"rl.use_vllm: true cannot run here: vLLM is a CUDA build; no CUDA GPU"):
        trainer.check_grpo(cfg, tokenizer, "cuda")
    monkeypatch.setattr(devices, "vllm_platform", lambda: "cpu")  # vLLM's CPU build: the policy must be on the CPU too
    with pytest.raises(UserFacingError, match=r"vLLM runs on cpu here, but compute.device is 'cuda'"):
        trainer.check_grpo(cfg, tokenizer, "cuda")
    trainer.check_grpo(cfg, tokenizer, "cpu")
