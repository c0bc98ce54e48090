"""Entropy estimator (edco/estimator.py): the maths on hand-made tensors, then the three
estimators on tiny Qwen3 models built here (no hub, no edco.models), then the vLLM path
against a stand-in with vLLM's output shape.

    .venv/bin/python -m pytest tests/test_estimator.py -q
"""

from __future__ import annotations

import copy
import functools
import importlib.util
import json
import math
import os
import sys
from dataclasses import dataclass, field
from pathlib import Path
from types import SimpleNamespace

import pytest
import torch

from edco import cli, devices, prompts
from edco import estimator as E
from edco.config import section_defaults
from edco.errors import UserFacingError

REPO = Path(__file__).resolve().parent.parent
CHATML = (
    "{% for m in messages %}<|im_start|>{{ m['role'] }}\n{{ m['content'] }}<|im_end|>\n{% endfor %}"
    "{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
)
# The chat-template arguments every caller passes (a model's defaults: thinking off, date pinned).
TK = prompts.chat_template_kwargs(section_defaults("models", "*"))
CFG = section_defaults("estimator") | dict(backend="hf", prefix_tokens=8, full_max_tokens=24, temperature=0.7,
                                          top_p=0.7, entropy="exact", aggregate="top_frac", top_frac=0.2, batch_size=5)


@pytest.fixture(autouse=True)
def one_thread():
    torch.set_num_threads(1)


# ----------------------------------------------------------------------------------------------
# Fixtures: records, a BPE tokenizer with a ChatML template, tiny Qwen3 models


def make_records(n: int = 12) -> list[dict]:
    # Question lengths vary, so a batch really is padded.
    return [{"id": f"q{i}", "question": f"Which class has entity {'ab' * (i % 5)}{i}?",
             "options": {"A": "zero", "B": "one", "C": "two"}, "answer": "ABC"[i % 3],
             "source": "test", "difficulty": i % 3 + 1} for i in range(n)]


@pytest.fixture(scope="module")
def tokenizer():
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    bpe = Tokenizer(models.BPE())
    bpe.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    bpe.decoder = decoders.ByteLevel()
    corpus = [prompts.quick_answer_prompt(r) + prompts.user_message(r) + prompts.completion_text(r)
              for r in make_records()]
    trainer = trainers.BpeTrainer(vocab_size=320, special_tokens=["<|endoftext|>", "<|im_start|>", "<|im_end|>"],
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet(), show_progress=False)
    bpe.train_from_iterator(corpus, trainer)
    tok = PreTrainedTokenizerFast(tokenizer_object=bpe, eos_token="<|im_end|>", pad_token="<|endoftext|>")
    tok.chat_template = CHATML
    return tok


def make_model(tokenizer, bigram: bool = False, seed: int = 0):
    """A 2-layer Qwen3 with hand-scaled weights: peaked, varied next-token distributions and an
    EOS that is likely enough for answers to end at different lengths.

    ``bigram``: attention and MLP outputs zeroed, so the residual stream is the current token's
    embedding and the next-token distribution is a known function of the last token alone.
    """
    from transformers import Qwen3Config, Qwen3ForCausalLM

    torch.manual_seed(seed)
    config = Qwen3Config(vocab_size=len(tokenizer), hidden_size=32, num_hidden_layers=2, num_attention_heads=4,
                         num_key_value_heads=2, head_dim=8, intermediate_size=64, max_position_embeddings=512,
                         eos_token_id=tokenizer.eos_token_id, pad_token_id=tokenizer.pad_token_id,
                         tie_word_embeddings=False)
    model = Qwen3ForCausalLM(config).eval()
    eos = tokenizer.eos_token_id
    with torch.no_grad():
        embed, head = model.model.embed_tokens.weight, model.lm_head.weight
        embed.normal_(0, 1)
        embed[:, 0] = 1.5  # a shared direction that gives EOS a roughly constant logit
        head.normal_(0, 0.6)
        head[eos] = 0
        head[eos, 0] = 5.0
        for layer in model.model.layers:
            if bigram:
                layer.self_attn.o_proj.weight.zero_()
                layer.mlp.down_proj.weight.zero_()
            else:
                layer.self_attn.o_proj.weight.mul_(20)  # make attention (and so padding) matter
    return model


@pytest.fixture(scope="module")
def model(tokenizer):
    return make_model(tokenizer)


@pytest.fixture(scope="module")
def bigram(tokenizer):
    return make_model(tokenizer, bigram=True)


def bigram_logits(model) -> torch.Tensor:
    """[V, V]: row v = raw next-token logits after token v (position-free in the bigram model)."""
    vocab = model.config.vocab_size
    with torch.no_grad():
        return model(input_ids=torch.arange(vocab).unsqueeze(1)).logits[:, -1].float()


# ----------------------------------------------------------------------------------------------
# Token entropy and aggregation on hand-made tensors


def test_uniform_logits_have_log2_vocab_bits():
    logits = torch.zeros(3, 50)
    assert torch.allclose(E.token_entropy(logits), torch.full((3,), math.log2(50)))
    assert torch.allclose(E.token_entropy(logits, "top20"), torch.full((3,), math.log2(20)))


def test_one_hot_has_zero_entropy():
    one_hot = torch.full((7,), -math.inf)
    one_hot[3] = 0.0
    assert E.token_entropy(one_hot).item() == 0.0
    assert E.token_entropy(torch.tensor([200.0, 0.0, 0.0, 0.0])).item() == pytest.approx(0.0, abs=1e-6)


def test_minus_inf_logits_give_no_nan():
    logits = torch.tensor([[0.0, 0.0, -math.inf, -math.inf], [1.0, -math.inf, 1.0, -math.inf]])
    for mode in ("exact", "top20"):
        h = E.token_entropy(logits, mode)
        assert not torch.isnan(h).any()
        assert torch.allclose(h, torch.tensor([1.0, 1.0]))


def test_top20_variant_on_a_hand_computed_case():
    # 10 logits of log 2, 10 of 0, 5 of -1: the top 20 renormalise to p = 1/15 (x10), 1/30 (x10).
    logits = torch.tensor([math.log(2.0)] * 10 + [0.0] * 10 + [-1.0] * 5)
    expected = (2 / 3) * math.log2(15) + (1 / 3) * math.log2(30)
    assert E.token_entropy(logits, "top20").item() == pytest.approx(expected, abs=1e-5)
    assert E.token_entropy(logits, "exact").item() > expected + 0.1  # the tail adds entropy
    # vLLM's shape: log-probs (any normalisation) of the top 20 plus the sampled token (21st).
    logprobs = torch.log_softmax(logits, dim=0).tolist()[:21]
    assert E.top_logprob_entropy(logprobs) == pytest.approx(expected, abs=1e-9)


def test_top_frac_and_mean_aggregation():
    h = torch.arange(1.0, 11.0)  # 1..10
    assert E.aggregate(h, "top_frac", 0.2) == 9.5  # k = int(0.2 * 10) = 2 -> mean(10, 9)
    assert E.aggregate(h, "mean", 0.2) == 5.5
    assert E.aggregate(torch.tensor([3.0, 1.0, 2.0, 0.5]), "top_frac", 0.2) == 3.0  # k = max(1, 0) = 1
    assert E.aggregate(h[:5].flip(0), "top_frac", 0.5) == 4.5  # k = 2, order-free
    assert math.isnan(E.aggregate(torch.tensor([]), "mean", 0.2))


def test_generated_mask_keeps_tokens_up_to_the_first_eos():
    eos, pad = 2, 0
    tokens = torch.tensor([[5, eos, pad, pad], [5, 6, 7, eos], [eos, eos, eos, eos], [5, 6, 7, 8]])
    expected = torch.tensor([[1, 1, 0, 0], [1, 1, 1, 1], [1, 0, 0, 0], [1, 1, 1, 1]], dtype=torch.bool)
    assert torch.equal(E.generated_mask(tokens, [eos, 9]), expected)


def test_sample_nucleus_stays_in_the_nucleus_and_follows_the_uniform():
    logits = torch.log(torch.tensor([[0.5, 0.3, 0.15, 0.05]])).repeat(4, 1)
    uniforms = torch.tensor([0.0, 0.6, 0.99, 0.7])
    # top_p 0.7: nucleus {0, 1} renormalised to 0.625 / 0.375 (temperature 1).
    assert E.sample_nucleus(logits, 1.0, 0.7, uniforms).tolist() == [0, 0, 1, 1]


# ----------------------------------------------------------------------------------------------
# The estimators on tiny models


def test_entropy_of_step_t_is_that_of_the_distribution_token_t_was_drawn_from(tokenizer, bigram):
    table = bigram_logits(bigram)
    table_h = E.token_entropy(table)
    # The model's own generation defaults must not reach the sampler: these would change the
    # scores it sees (and the tokens it picks) if they did.
    saved = copy.deepcopy(bigram.generation_config)
    bigram.generation_config.repetition_penalty = 3.0
    bigram.generation_config.no_repeat_ngram_size = 1
    try:
        samples = E.hf_token_entropies(bigram, tokenizer, make_records(), CFG, "full", seed=0, progress=False,
                                       template_kwargs=TK)
    finally:
        bigram.generation_config = saved
    shifted_differs = False
    for record, sample in zip(make_records(), samples):
        prompt = E.prompt_ids(tokenizer, record, "full", TK)
        previous = torch.tensor([prompt[-1]] + sample["tokens"][:-1].tolist())
        assert torch.allclose(sample["entropies"], table_h[previous], atol=1e-5)
        shifted_differs |= not torch.allclose(sample["entropies"], table_h[sample["tokens"]], atol=1e-3)
        # and each token lies in the top-p nucleus of the tempered distribution it came from
        for prev, token in zip(previous.tolist(), sample["tokens"].tolist()):
            probs = torch.softmax(table[prev] / CFG["temperature"], dim=0)
            assert probs[probs > probs[token]].sum().item() < CFG["top_p"]
    assert shifted_differs, "the test cannot tell an off-by-one apart"


def test_teacher_forced_scores_the_reference_answer_tokens(tokenizer, bigram):
    table_h = E.token_entropy(bigram_logits(bigram))
    samples = E.hf_token_entropies(bigram, tokenizer, make_records(), CFG, "teacher_forced", seed=0, progress=False,
                                   template_kwargs=TK)
    for record, sample in zip(make_records(), samples):
        prompt, answer = E.prompt_ids(tokenizer, record, "teacher_forced", TK), E.completion_ids(tokenizer, record)
        assert sample["tokens"].tolist() == answer
        previous = torch.tensor([prompt[-1]] + answer[:-1])
        assert torch.allclose(sample["entropies"], table_h[previous], atol=1e-5)


def test_perplexity_is_the_models_own_loss_on_the_reference_answer(tokenizer, model):
    records = make_records(4)
    scores = E.score_pool(model, tokenizer, records, CFG, "perplexity", seed=0, progress=False, template_kwargs=TK)
    for record, row in zip(records, scores):
        prompt, answer = E.prompt_ids(tokenizer, record, "perplexity", TK), E.completion_ids(tokenizer, record)
        ids = torch.tensor([prompt + answer])
        labels = torch.tensor([[-100] * len(prompt) + answer])
        with torch.no_grad():
            loss = model(input_ids=ids, labels=labels).loss  # mean nats over the answer tokens
        assert row["n_tokens"] == len(answer)
        assert row["score"] == pytest.approx(math.exp(loss.item()), rel=1e-4)


@pytest.mark.parametrize("kind", E.KINDS)
def test_a_padded_batch_scores_like_each_sample_alone(tokenizer, model, kind):
    records = make_records()
    batched = E.token_entropies(model, tokenizer, records, dict(CFG, batch_size=12), kind, seed=0, progress=False,
                                template_kwargs=TK)
    alone = E.token_entropies(model, tokenizer, records, dict(CFG, batch_size=1), kind, seed=0, progress=False,
                              template_kwargs=TK)
    lengths = {len(s["tokens"]) for s in batched}
    assert kind in E.REFERENCE_KINDS or len(lengths) > 1, "answers should end at different lengths"
    for b, a in zip(batched, alone):
        assert b["id"] == a["id"]
        assert torch.equal(b["tokens"], a["tokens"])
        assert torch.allclose(b["entropies"], a["entropies"], atol=1e-4)


def test_score_pool_is_seeded_and_order_free(tokenizer, model):
    records = make_records()
    first = E.score_pool(model, tokenizer, records, CFG, "prefix", seed=0, progress=False, template_kwargs=TK)
    again = E.score_pool(model, tokenizer, records, CFG, "prefix", seed=0, progress=False, template_kwargs=TK)
    other = E.score_pool(model, tokenizer, records, CFG, "prefix", seed=1, progress=False, template_kwargs=TK)
    strip = lambda rows: [(r["id"], r["score"], r["n_tokens"]) for r in rows]  # noqa: E731
    assert strip(first) == strip(again)
    assert strip(first) != strip(other)
    assert [r["id"] for r in first] == [r["id"] for r in records]  # input order
    assert set(first[0]) == {"id", "score", "n_tokens", "seconds"}
    assert all(r["seconds"] > 0 and 1 <= r["n_tokens"] <= CFG["prefix_tokens"] for r in first)
    # A sample's answer depends on (seed, id), not on its position in the pool.
    shuffled = E.score_pool(model, tokenizer, records[::-1], CFG, "prefix", seed=0, progress=False, template_kwargs=TK)
    by_id = {r["id"]: r for r in first}
    for r in shuffled:
        assert r["n_tokens"] == by_id[r["id"]]["n_tokens"]
        assert r["score"] == pytest.approx(by_id[r["id"]]["score"], abs=1e-4)


def test_mean_and_top_frac_come_from_the_same_answers(tokenizer, model):
    records = make_records(6)
    top = E.score_pool(model, tokenizer, records, CFG, "full", seed=0, progress=False, template_kwargs=TK)
    mean = E.score_pool(model, tokenizer, records, dict(CFG, aggregate="mean"), "full", seed=0, progress=False,
                        template_kwargs=TK)
    for t, m in zip(top, mean):
        assert t["n_tokens"] == m["n_tokens"]
        assert t["score"] >= m["score"] - 1e-6  # the top 20 % average is at least the mean


# ----------------------------------------------------------------------------------------------
# vLLM backend against a stand-in with vLLM's output shape


@dataclass
class FakeSamplingParams:
    n: int = 1
    temperature: float = 1.0
    top_p: float = 1.0
    max_tokens: int = 16
    logprobs: int | None = None
    prompt_logprobs: int | None = None
    seed: int | None = None


class FakeEnvs:
    """Stands in for ``vllm.envs``: counts the times its cached environment was dropped."""

    def __init__(self):
        self.refreshed = 0

    def disable_envs_cache(self):
        self.refreshed += 1


@dataclass
class FakeLLM:
    """Mimics ``vllm.LLM.generate`` on a bigram table: raw log-probs, the top k plus the
    chosen token per position, EOS included in the output, prompt log-probs on request."""

    table: torch.Tensor
    eos: int
    calls: list = field(default_factory=list)
    events: list = field(default_factory=list)  # "reset" (prefix cache emptied) and "generate", in order

    def reset_prefix_cache(self) -> bool:
        self.events.append("reset")
        return True

    def _top(self, prev: int, k: int, chosen: int) -> dict:
        logp = torch.log_softmax(self.table[prev], dim=0)
        ids = set(logp.topk(k).indices.tolist()) | {chosen}
        return {i: SimpleNamespace(logprob=logp[i].item()) for i in ids}

    def generate(self, requests, params, use_tqdm=True):
        self.calls.append(params)
        self.events.append("generate")
        outputs = []
        for request, p in zip(requests, params):
            ids = request["prompt_token_ids"]
            gen = torch.Generator().manual_seed(p.seed)
            tokens, logprobs, prev = [], [], ids[-1]
            while len(tokens) < p.max_tokens:
                token = torch.multinomial(torch.softmax(self.table[prev] / p.temperature, 0), 1, generator=gen).item()
                tokens.append(token)
                logprobs.append(self._top(prev, p.logprobs or 0, token))
                prev = token
                if token == self.eos:
                    break
            prompt_lp = None
            if p.prompt_logprobs is not None:
                prompt_lp = [None] + [self._top(a, p.prompt_logprobs, b) for a, b in zip(ids, ids[1:])]
            outputs.append(SimpleNamespace(prompt_token_ids=ids, prompt_logprobs=prompt_lp,
                                           outputs=[SimpleNamespace(token_ids=tokens, logprobs=logprobs)]))
        return outputs


def vllm_installed(monkeypatch, installed: bool) -> None:
    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec",
                        lambda name, *a: (object() if installed else None) if name == "vllm" else real(name, *a))


def fake_vllm(monkeypatch, engine, platform: str, envs: FakeEnvs | None = None) -> None:
    """``engine`` as ``vllm.LLM``, installed, on ``platform`` (cuda: a GPU visible); ``envs`` as
    ``vllm.envs``."""
    monkeypatch.setitem(sys.modules, "vllm", SimpleNamespace(LLM=engine, SamplingParams=FakeSamplingParams,
                                                             envs=envs or FakeEnvs()))
    vllm_installed(monkeypatch, True)
    monkeypatch.setattr(devices, "vllm_platform", lambda: platform)
    monkeypatch.setattr(E.torch.cuda, "is_available", lambda: platform == "cuda")
    monkeypatch.setattr(E.torch.cuda, "empty_cache", lambda: None)


def test_vllm_backend_against_a_stand_in(tokenizer, bigram):
    table = bigram_logits(bigram)
    llm = FakeLLM(table, tokenizer.eos_token_id)
    cfg = dict(CFG, backend="vllm", entropy="top20")
    records = make_records()
    samples = E.vllm_token_entropies(llm, tokenizer, records, cfg, "prefix", seed=0, progress=False,
                                     sampling_params=FakeSamplingParams, template_kwargs=TK)
    params = llm.calls[0]
    assert {(p.n, p.temperature, p.top_p, p.max_tokens, p.logprobs) for p in params} == {(1, 0.7, 0.7, 8, 20)}
    assert len({p.seed for p in params}) == len(records)  # one seed per sample
    top20_h = E.token_entropy(table, "top20")
    for record, sample in zip(records, samples):
        prompt = E.prompt_ids(tokenizer, record, "prefix", TK)
        previous = torch.tensor([prompt[-1]] + sample["tokens"][:-1].tolist())
        assert torch.allclose(sample["entropies"], top20_h[previous], atol=1e-5)
    scored = E.scores_from_entropies(samples, cfg)
    assert [s["id"] for s in scored] == [r["id"] for r in records]

    # teacher forcing through prompt_logprobs agrees with the hf backend's forward pass
    tf_vllm = E.vllm_token_entropies(llm, tokenizer, records, cfg, "teacher_forced", seed=0, progress=False,
                                     sampling_params=FakeSamplingParams, template_kwargs=TK)
    assert {(p.max_tokens, p.prompt_logprobs) for p in llm.calls[1]} == {(1, 20)}
    tf_hf = E.hf_token_entropies(bigram, tokenizer, records, dict(CFG, entropy="top20"), "teacher_forced", 0, False,
                                 template_kwargs=TK)
    for v, h in zip(tf_vllm, tf_hf):
        assert torch.allclose(v["entropies"].float(), h["entropies"], atol=1e-4)


def test_vllm_request_without_vllm_is_a_clear_error(tokenizer, model, monkeypatch):
    records, cfg = make_records(2), dict(CFG, backend="vllm", entropy="top20")
    vllm_installed(monkeypatch, False)
    with pytest.raises(UserFacingError, match="estimator.backend: vllm cannot run here: the vllm package is not "
                                              "installed.*otherwise set estimator.backend: hf"):
        E.score_pool(model, tokenizer, records, cfg, "prefix", seed=0, template_kwargs=TK)

    vllm_installed(monkeypatch, True)  # a CUDA build, but no GPU
    monkeypatch.setattr(devices, "vllm_platform", lambda: "cuda")
    monkeypatch.setattr(E.torch.cuda, "is_available", lambda: False)
    with pytest.raises(UserFacingError, match="estimator.backend: vllm cannot run here: vLLM is a CUDA build; no CUDA"):
        E.score_pool(model, tokenizer, records, cfg, "prefix", seed=0, template_kwargs=TK)

    monkeypatch.setattr(devices, "vllm_platform", lambda: "cpu")  # vLLM's CPU build: accepted as it is
    E.check_backend(cfg)
    with pytest.raises(UserFacingError, match="estimator.entropy: exact"):
        E.score_pool(model, tokenizer, records, dict(cfg, entropy="exact"), "prefix", seed=0, template_kwargs=TK)


# ----------------------------------------------------------------------------------------------
# CLI


def test_cli_score_writes_the_train_pool_scores(tokenizer, model, tmp_path, monkeypatch):
    import pandas as pd

    from edco import io, layout

    monkeypatch.chdir(tmp_path)  # results/<run>/ is relative to the working directory
    records = make_records(7)
    io.write_jsonl(layout.data_file("smoke", "law", "train"), records)
    io.write_jsonl(layout.data_file("smoke", "law", "test"), [dict(r, id="test-" + r["id"]) for r in records])
    loaded = []
    monkeypatch.setattr(E, "load_scorer", lambda config, name, ckpt: loaded.append((name, ckpt)) or (model, tokenizer))
    out = tmp_path / "scores" / "prefix.parquet"
    argv = ["score", "--config", str(REPO / "config" / "smoke.yaml"), "--domain", "law", "--model", "qwen3",
            "--estimator", "prefix", "--out", str(out), "--seed", "3"]
    assert cli.main(argv) == 0
    frame = pd.read_parquet(out)
    assert list(frame.columns) == ["id", "score", "n_tokens", "seconds"]
    assert frame["id"].tolist() == [r["id"] for r in records]  # the train split, never test
    assert loaded == [("qwen3", None)]
    assert not list(out.parent.glob("*.tmp"))


def test_vllm_scores_an_in_memory_model_through_a_temporary_checkpoint(tokenizer, model, bigram, monkeypatch):
    """Between rounds the trainer hands the estimator its torch model: the vllm backend saves it
    (weights and tokenizer) for vLLM to load, with the configured GPU share, and cleans up."""
    seen = {}

    class EngineFromCheckpoint(FakeLLM):
        def __init__(self, model, seed, trust_remote_code, gpu_memory_utilization, dtype, **cpu_only):
            seen.update(path=Path(model), files=sorted(p.name for p in Path(model).iterdir()),
                        memory=gpu_memory_utilization, remote_code=trust_remote_code, dtype=dtype, cpu_only=cpu_only)
            super().__init__(bigram_logits(bigram), tokenizer.eos_token_id)

    fake_vllm(monkeypatch, EngineFromCheckpoint, "cuda")
    cfg = dict(CFG, backend="vllm", entropy="top20", vllm_gpu_memory_utilization=0.3)
    scores = E.score_pool(model, tokenizer, make_records(3), cfg, "prefix", seed=0, progress=False, template_kwargs=TK)
    assert [s["id"] for s in scores] == [r["id"] for r in make_records(3)]
    assert {"config.json", "model.safetensors", "tokenizer.json"} <= set(seen["files"])
    assert seen["memory"] == 0.3 and seen["remote_code"] is False
    assert seen["dtype"] == "float32" and seen["cpu_only"] == {}  # the model's own dtype, never vLLM's "auto"
    fake_vllm(monkeypatch, EngineFromCheckpoint, "cpu")  # vLLM's CPU build: eager, whole prompts per step
    E.score_pool(model, tokenizer, make_records(3), cfg, "prefix", seed=0, progress=False, template_kwargs=TK)
    assert seen["cpu_only"] == {"enforce_eager": True, "enable_chunked_prefill": False}
    assert not seen["path"].exists()  # the temporary checkpoint is gone after scoring


def test_vllm_scoring_save_is_bf16_under_scratch_and_the_engine_runs_in_its_own_process(tokenizer, model, bigram,
                                                                                        monkeypatch, tmp_path):
    """The trainer's scorer saves its fp32 master weights as models.<m>.dtype (bf16: half the
    bytes) under compute.scratch_dir, removed after scoring; the engine is built with vLLM's
    multiprocessing on, even after TRL's rollout engine switched it off for the process."""
    seen = {}

    class EngineFromCheckpoint(FakeLLM):
        def __init__(self, model, seed, trust_remote_code, gpu_memory_utilization, dtype):
            path = Path(model)
            seen.update(path=path, dtype=json.loads((path / "config.json").read_text())["dtype"], engine_dtype=dtype,
                        multiprocessing=os.environ.get("VLLM_ENABLE_V1_MULTIPROCESSING"), refreshed=envs.refreshed)
            super().__init__(bigram_logits(bigram), tokenizer.eos_token_id)

    envs = FakeEnvs()  # TRL's engine also made vLLM cache the 0 (vllm.envs.enable_envs_cache): read it afresh
    fake_vllm(monkeypatch, EngineFromCheckpoint, "cuda", envs)
    monkeypatch.setenv("VLLM_ENABLE_V1_MULTIPROCESSING", "0")  # as TRL's colocated engine leaves it
    cfg = dict(CFG, backend="vllm", entropy="top20", vllm_gpu_memory_utilization=0.3)
    E.score_pool(model, tokenizer, make_records(2), cfg, "prefix", seed=0, progress=False,
                 weights_dtype="bfloat16", scratch_dir=str(tmp_path), template_kwargs=TK)
    assert seen["dtype"] == seen["engine_dtype"] == "bfloat16"
    assert seen["path"].parent == tmp_path and seen["multiprocessing"] == "1" and seen["refreshed"] == 1
    assert list(tmp_path.iterdir()) == [] and os.environ["VLLM_ENABLE_V1_MULTIPROCESSING"] == "0"


def test_a_shut_down_scoring_engine_leaves_no_tokenizer_in_vllms_caches(monkeypatch):
    """vLLM caches tokenizers by path (and a tokenizer pool's method by function); every scoring
    engine loads a temporary path of its own, so each would stay cached for the process's life
    (+62 MB per engine measured with SmolLM2). The shutdown empties those caches; a cache this
    vLLM version lacks is skipped."""
    loaded = []

    @functools.lru_cache
    def get_tokenizer(path):
        loaded.append(path)
        return object()

    monkeypatch.setitem(sys.modules, "vllm.tokenizers.registry", SimpleNamespace(cached_get_tokenizer=get_tokenizer))
    monkeypatch.setitem(sys.modules, "vllm.transformers_utils.processor", SimpleNamespace())  # renamed elsewhere
    get_tokenizer("/tmp/edco-vllm-1")
    shut = []
    E._shutdown_vllm([SimpleNamespace(llm_engine=SimpleNamespace(shutdown=lambda: shut.append(True)))])
    assert shut == [True] and get_tokenizer.cache_info().currsize == 0
    assert {module for module, _ in E.VLLM_TOKENIZER_CACHES} >= {"vllm.tokenizers.registry"}
