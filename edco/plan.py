"""Resource planner: peak GPU memory, GPU-hours and disk of every GPU job, from the config alone.

    python -m edco plan --config config/config.yaml            # the table and the verdict
    python -m edco plan --config config/config.yaml --check    # exit 1 when a job does not fit

A job is what Snakemake runs: one ``train`` job per ``compute.job`` unit (run | cell | block:
it trains its runs, then evaluates each), one ``evaluate_base`` per model, one
``estimator_bench`` per domain x model. For each, the planner walks the phases a GPU sees and
takes the largest: scoring between rounds (the policy + a vLLM scoring engine), RL rollouts
(policy + optimiser state + reference + TRL's rollout engine awake), a training micro-step
(weights + grads + optimiser state + reference + the rollout engine asleep or not + autocast
copies + activations + the LM head's workspace), the optimiser step, a save of fp32 master
weights in models.<m>.dtype (``save_weights``' copies), evaluation.

Exact, and equal to measured tensor storage of small models on CPU (tests/test_plan.py): the
parameter count of a Qwen3 / Llama architecture; the bytes of weights, gradients and AdamW
state; the tensors a forward pass saves for the backward pass and autocast's bf16 weight copies
(bf16 autocast, SDPA attention; CPU autocast standing in for CUDA's). Estimates (said so in the
output): what checkpointing's recomputation adds, the fused LM head's workspace, vLLM's share
(``gpu_memory_utilization`` x the GPU) and what a sleeping engine keeps, 8-bit optimiser state
(bitsandbytes' layout, the embedding's state in fp32 as the Trainer registers it; not measurable
without CUDA here).

Every number comes from the config: architectures from ``models.<m>.size`` (for hub models the
hub's config.json numbers, since the planner never downloads anything; omitted sizes as
``edco.config.model_size`` fills them for the builder), batch and sequence lengths from
``sft``/``rl``/``evaluate``/``estimator_bench``, per-unit GPU times from ``plan``, the GPU's memory
as torch reports it from ``compute.gpu_memory_gb`` (vLLM's shares are of it), and what each
strategy scores and how long it trains from the strategy's own declaration (``Strategy.cost``).
Pure Python: the Snakefile runs it in the controller's environment (Snakemake, jsonschema,
pyyaml; no torch).
"""

from __future__ import annotations

import copy
import csv
import itertools
import math
from dataclasses import dataclass, field
from io import StringIO
from pathlib import Path

from edco import io
from edco.config import model_size, round_budget
from edco.curriculum import Cost, strategy_cost, trained_section
from edco.errors import UserFacingError

GB = 1e9  # compute.gpu_memory_gb: the GPU's total memory as torch reports it, in 1e9 bytes
BYTES = {"float32": 4, "bfloat16": 2}
COMPUTE_BYTES = 2  # GPU jobs compute in bf16 (mixed precision, vLLM, evaluation)

# TRL's fused LM head (trl/kernels/chunked_logprob.py, TRL 1.16): [4096 tokens x 32768 vocab]
# tiles in the compute dtype, and fp32 accumulators for the head's weight gradient.
LM_HEAD_TOKEN_TILE, LM_HEAD_VOCAB_TILE = 4096, 32768
# bitsandbytes' 8-bit optimisers keep 8-bit state only for tensors of >= 4096 elements
# (min_8bit_size), in blocks of 256 with one fp32 absmax per block and state; smaller tensors
# keep fp32 state.
BNB_MIN_8BIT, BNB_BLOCK = 4096, 256
EIGHT_BIT_OPTIMS = {"adamw_bnb_8bit", "adamw_8bit", "paged_adamw_8bit", "adamw_torch_8bit"}
# The bitsandbytes ones (adamw_torch_8bit is torchao's): under them transformers' Trainer
# registers every nn.Embedding weight for 32-bit state (transformers 5.17 trainer.py,
# create_optimizer: register_module_override(module, "weight", {"optim_bits": 32})), and TRL's
# trainers inherit it. The embedding is the tied LM head: the largest tensor of the model.
BNB_8BIT_OPTIMS = {"adamw_bnb_8bit", "adamw_8bit", "paged_adamw_8bit"}
FUSED_OPTIMS = {"adamw_torch_fused"} | EIGHT_BIT_OPTIMS  # no foreach temporaries at the step
# What a vLLM engine keeps on the GPU asleep (level 2: weights and KV cache released): CUDA
# graphs, the sampler's buffers, the CUDA context. An estimate; measure it on a GPU.
VLLM_ASLEEP_GB = 2.0
# Every process on a GPU: the CUDA context and the caching allocator's slack. An estimate.
CUDA_CONTEXT_GB = 1.0
# Per engine: the activation peak of a 4096-token prefill batch (TRL sets
# max_num_batched_tokens=4096) and CUDA graphs, inside its share. An estimate.
VLLM_OVERHEAD_GB = 2.0
# The real tokenizers' sizes (../shared/tokenizers: Qwen3 151,643 + 26 specials; Llama 3
# 128,000 + 256 specials), for tiny models built on them.
REAL_TOKENIZER_VOCAB = {"qwen3": 151669, "llama": 128256}

# plan.seconds_per_sample.<kind>: GPU seconds per pool sample of each estimator kind.
SAMPLE_TIME_KEYS = ("prefix", "full", "perplexity", "teacher_forced")


class PlanError(UserFacingError):
    """A config the planner cannot size; the message names the key to add."""


# --------------------------------------------------------------------------- architecture
@dataclass(frozen=True)
class Arch:
    """A decoder of the Qwen3 / Llama family, tied embeddings (Qwen3-4B, Llama-3.2-3B and
    every tiny model of the suite tie them)."""

    family: str
    hidden: int
    intermediate: int
    layers: int
    heads: int
    kv_heads: int
    head_dim: int
    vocab: int
    max_positions: int

    def tensor_sizes(self) -> list[int]:
        """Elements of every parameter tensor, as transformers builds the model."""
        h, q, kv = self.hidden, self.heads * self.head_dim, self.kv_heads * self.head_dim
        layer = [h * q, h * kv, h * kv, q * h, h * self.intermediate, h * self.intermediate,
                 self.intermediate * h, h, h]  # q k v o, gate up down, two RMSNorms
        if self.family == "qwen3":
            layer += [self.head_dim, self.head_dim]  # q_norm, k_norm
        return [self.vocab * h] + layer * self.layers + [h]  # embedding (= LM head), final norm

    @property
    def params(self) -> int:
        return sum(self.tensor_sizes())

    @property
    def linear_params(self) -> int:
        """Parameters of the layers' projections: what autocast casts to bf16 (norms and the
        embedding stay fp32)."""
        h, q, kv = self.hidden, self.heads * self.head_dim, self.kv_heads * self.head_dim
        return self.layers * (2 * h * q + 2 * h * kv + 3 * h * self.intermediate)

    @property
    def kv_bytes_per_token(self) -> int:
        """A bf16 KV cache: keys and values of every layer."""
        return 2 * self.layers * self.kv_heads * self.head_dim * COMPUTE_BYTES

    def activation_bytes_per_token(self, residual_bytes: int) -> int:
        """Bytes one decoder layer saves for the backward pass per token, under bf16 autocast
        with SDPA attention (tensors as transformers 5.17's Qwen3/Llama layers save them; equal
        to the measured saved tensors of tiny models, tests/test_plan.py). ``residual_bytes``:
        the residual stream's dtype, the master weights' (fp32 master -> fp32 stream)."""
        h, q, kv = self.hidden, self.heads * self.head_dim, self.kv_heads * self.head_dim

        def rms_norm(consumers: int) -> int:
            # fp32 input + rsqrt + the normalised tensor in the stream's dtype; then each
            # projection reading it casts its own bf16 copy (fp32 stream), or all share the
            # bf16 product (bf16 stream).
            own = 4 * h + 4 + residual_bytes * h
            return own + (consumers * 2 * h if residual_bytes == 4 else 2 * h)

        attention = 2 * (q + 2 * kv) + 4 * self.heads + 2 * q  # SDPA's q, k, v, logsumexp; o_proj input
        if self.family == "qwen3":  # q_norm / k_norm over each head: fp32 input, rsqrt, bf16 output
            attention += 6 * (q + kv) + 4 * (self.heads + self.kv_heads)
        mlp = 4 * 2 * self.intermediate  # gate, up, SiLU(gate), their product (down_proj's input)
        return rms_norm(3) + attention + rms_norm(2) + mlp


ARCH_KEYS = ("hidden_size", "intermediate_size", "num_hidden_layers", "num_attention_heads", "num_key_value_heads")


def arch_of(config: dict, name: str) -> Arch:
    """The architecture of ``models.<name>`` from its ``size`` block."""
    model = config["models"][name]
    size = model.get("size") or {}  # optional for hub models in the schema; needed here
    missing = [k for k in ARCH_KEYS if k not in size]
    if model["source"] in ("hub", "gguf") and "vocab_size" not in size:
        missing.append("vocab_size")
    if missing:
        raise PlanError(
            f"models.{name}.size: the planner needs {', '.join(missing)} (a hub model: copy them from the "
            f"model's config.json, as config/config.yaml does for {model.get('hub_id', 'the paper models')})"
        )
    size = model_size(model)
    tokenizer = model.get("tokenizer") or {}
    if "vocab_size" in size:
        vocab = size["vocab_size"]
    elif tokenizer.get("kind") == "path":
        vocab = REAL_TOKENIZER_VOCAB[model["arch"]]
    else:
        vocab = tokenizer["vocab_size"]
    return Arch(
        family=model["arch"], hidden=size["hidden_size"], intermediate=size["intermediate_size"],
        layers=size["num_hidden_layers"], heads=size["num_attention_heads"], kv_heads=size["num_key_value_heads"],
        head_dim=size["head_dim"], vocab=vocab, max_positions=size["max_position_embeddings"],
    )


# --------------------------------------------------------------------------- model state
def optimizer_state_bytes(arch: Arch, optim: str, master: str) -> int:
    """Optimiser state of the whole model. AdamW (torch): exp_avg and exp_avg_sq in the
    parameter's dtype plus one fp32 ``step`` scalar per tensor. 8-bit AdamW (bitsandbytes):
    one byte per element and state with an fp32 absmax per block of 256, fp32 state for tensors
    under 4096 elements and, under the Trainer, for the embedding (``BNB_8BIT_OPTIMS``), and the
    two shared 256-entry fp32 quantisation maps."""
    if optim in EIGHT_BIT_OPTIMS:
        total = 2 * 256 * 4
        sizes = arch.tensor_sizes()
        fp32 = {0} if optim in BNB_8BIT_OPTIMS else set()  # tensor_sizes()[0] is the embedding
        for i, n in enumerate(sizes):
            total += 2 * (n + 4 * math.ceil(n / BNB_BLOCK)) if n >= BNB_MIN_8BIT and i not in fp32 else 2 * 4 * n
        return total
    if optim.startswith("adamw_torch"):
        return 2 * arch.params * BYTES[master] + 4 * len(arch.tensor_sizes())
    raise PlanError(f"optim {optim!r}: the planner knows adamw_torch, adamw_torch_fused and the 8-bit AdamWs "
                    f"({', '.join(sorted(EIGHT_BIT_OPTIMS))})")


def model_state_bytes(arch: Arch, master: str, optim: str) -> dict[str, int]:
    """Weights, gradients and optimiser state of one unsharded copy (exact byte counts)."""
    weights = arch.params * BYTES[master]
    return {"weights": weights, "grads": weights, "optimizer": optimizer_state_bytes(arch, optim, master)}


# --------------------------------------------------------------------------- activations
def activation_bytes(arch: Arch, tokens: int, checkpointing: bool, residual_bytes: int) -> int:
    """Saved activations of one micro-batch of ``tokens`` tokens: every layer's, and the final
    norm's. With checkpointing each layer keeps only its input (the residual stream) and one
    layer at a time is recomputed, its saved tensors and their gradients alive together."""
    per_layer = tokens * arch.activation_bytes_per_token(residual_bytes)
    final_norm = tokens * (4 * arch.hidden + 4 + residual_bytes * arch.hidden)
    if not checkpointing:
        return arch.layers * per_layer + final_norm
    return arch.layers * tokens * arch.hidden * residual_bytes + 2 * per_layer + final_norm


def lm_head_bytes(arch: Arch, scored_tokens: int) -> int:
    """TRL's fused LM head (SFT and GRPO, TRL 1.16): one logits tile, the hidden states it
    reads, and fp32 gradient accumulators for the head and the hidden states. No
    [tokens x vocab] logits are ever materialised."""
    tile = min(scored_tokens, LM_HEAD_TOKEN_TILE) * LM_HEAD_VOCAB_TILE * COMPUTE_BYTES
    return tile + arch.vocab * arch.hidden * 4 + scored_tokens * arch.hidden * (4 + COMPUTE_BYTES)


# --------------------------------------------------------------------------- jobs
@dataclass
class Phase:
    """One moment of a job on one GPU: the bytes held, by component."""

    name: str
    parts: dict[str, float]

    def __post_init__(self):
        self.parts = {**self.parts, "CUDA context (est.)": CUDA_CONTEXT_GB * GB}

    @property
    def total(self) -> float:
        return sum(self.parts.values())


@dataclass
class Job:
    rule: str
    name: str
    model: str
    gpus: int
    runs: list[tuple] = field(default_factory=list)  # (domain, model, paradigm, strategy, seed)
    phases: list[Phase] = field(default_factory=list)
    gpu_hours: float = 0.0
    disk_gb: float = 0.0
    transient_disk_gb: float = 0.0
    scratch_gb: float = 0.0  # temporary model saves in compute.scratch_dir at one time
    notes: list[str] = field(default_factory=list)

    @property
    def peak(self) -> Phase:
        return max(self.phases, key=lambda p: p.total)


def _gpus(config: dict, model: str) -> int:
    return max(1, config["models"][model]["gpus"])


def _budget_bytes(config: dict) -> float:
    return config["compute"]["gpu_memory_gb"] * GB


def scoring_phase(config: dict, model: str, arch: Arch, kind: str, resident: dict[str, float]) -> Phase:
    """Scoring the pool between rounds: what the training process keeps (``resident``) plus the
    scorer: a vLLM engine taking its share of the GPU, or HF generate's KV cache of a batch."""
    est = config["estimator"]
    parts = dict(resident)
    if est["backend"] == "vllm":
        parts["vLLM scoring engine"] = est["vllm_gpu_memory_utilization"] * _budget_bytes(config)
    else:
        new = est["prefix_tokens"] if kind == "prefix" else est["full_max_tokens"]
        seq = config["plan"]["max_prompt_tokens"] + (new if kind in ("prefix", "full") else 0)
        parts["scoring KV cache + logits"] = est["batch_size"] * seq * arch.kv_bytes_per_token + \
            est["batch_size"] * arch.vocab * 4 * 2  # one step's logits, fp32 entropy
    return Phase(f"scoring ({kind})", parts)


def eval_phase(config: dict, model: str, arch: Arch) -> Phase:
    """lm-eval of one checkpoint, loaded in models.<m>.dtype: generation's KV cache of a batch,
    and the log-likelihood mode's full logits plus their log-softmax (HFLM, bf16)."""
    ev, prompt = config["evaluate"], config["plan"]["max_prompt_tokens"]
    batch = ev["batch_size"]
    parts = {"weights (eval)": arch.params * BYTES[config["models"][model]["dtype"]]}
    workspace = []
    if "generate" in ev["modes"]:
        workspace.append(batch * (prompt + ev["max_gen_toks"]) * arch.kv_bytes_per_token)
    if "loglikelihood" in ev["modes"]:
        workspace.append(batch * prompt * arch.vocab * COMPUTE_BYTES * 2)
    parts["eval batch (KV cache / logits)"] = max(workspace)
    return Phase("evaluation", parts)


def _rollout_engine_bytes(config: dict) -> float:
    return config["rl"]["vllm_gpu_memory_utilization"] * _budget_bytes(config)


def training_phases(config: dict, model: str, paradigm: str, arch: Arch) -> list[Phase]:
    """Rollouts (RL), a training micro-step and the optimiser step, per GPU."""
    m, section = config["models"][model], config[paradigm]
    # Data parallel (gpus > 1): every GPU holds all of it.
    state = model_state_bytes(arch, m["master_dtype"], section["optim"])
    resident = {"weights (master)": state["weights"], "optimizer state": state["optimizer"]}
    rl_vllm = paradigm == "rl" and section["use_vllm"]
    if paradigm == "rl" and section["beta"] > 0:
        # TRL builds the KL reference in model_init_kwargs' dtype (edco: models.<m>.dtype).
        resident["reference model"] = arch.params * BYTES[m["dtype"]]
    phases = []
    if rl_vllm:
        phases.append(Phase("rollouts (vLLM awake)", {**resident, "vLLM rollout engine": _rollout_engine_bytes(config)}))
    if paradigm == "sft":
        seq = section["max_length"]
        scored = section["per_device_train_batch_size"] * seq
    else:
        seq = config["plan"]["max_prompt_tokens"] + section["max_completion_length"]
        scored = section["per_device_train_batch_size"] * section["max_completion_length"]
    tokens = section["per_device_train_batch_size"] * seq
    step = {**resident, "gradients": state["grads"]}
    if rl_vllm:
        step["vLLM rollout engine"] = VLLM_ASLEEP_GB * GB if section["vllm_enable_sleep_mode"] else _rollout_engine_bytes(config)
    micro = dict(step)
    mixed = m["master_dtype"] == "float32"
    if mixed:
        # autocast caches a bf16 copy of every projection weight it casts for the whole forward.
        micro["autocast bf16 weight copies"] = arch.linear_params * COMPUTE_BYTES
    micro["activations"] = activation_bytes(arch, tokens, section["gradient_checkpointing"], BYTES[m["master_dtype"]])
    micro["LM head workspace"] = lm_head_bytes(arch, scored)
    phases.append(Phase("training micro-step", micro))
    if section["optim"] not in FUSED_OPTIMS:
        # torch's foreach AdamW (the CUDA default) allocates one temporary the size of all
        # parameters (sqrt of exp_avg_sq) during the step.
        step["optimizer step temporaries"] = state["weights"]
    phases.append(Phase("optimizer step", step))
    return phases


def seconds_per_sample(config: dict, kind: str) -> float:
    """GPU seconds to score one pool sample with estimator ``kind`` (``plan.seconds_per_sample``;
    prefix entropy's is for K = 128 tokens, scaled to ``estimator.prefix_tokens``)."""
    if kind not in SAMPLE_TIME_KEYS:
        raise PlanError(f"estimator kind {kind!r}: plan.seconds_per_sample has {', '.join(SAMPLE_TIME_KEYS)}")
    per = config["plan"]["seconds_per_sample"][kind]
    return per * config["estimator"]["prefix_tokens"] / 128 if kind == "prefix" else per


def _run_hours(config: dict, model: str, paradigm: str, cost: Cost, pool: int) -> tuple[float, float]:
    """(scoring, training) GPU-hours of one run of a strategy of ``cost``, on one GPU: the
    samples it declares it scores, and the paradigm's steps times its training ratio."""
    plan = config["plan"]
    rounds, n = round_budget(config, paradigm, model)
    seconds = 0.0
    if cost.scores_with:
        seconds = cost.scored_samples(pool, rounds) * seconds_per_sample(config, cost.scores_with)
    section = trained_section(cost, paradigm, config[paradigm])
    if paradigm == "sft":
        per_step = section["per_device_train_batch_size"] * section["gradient_accumulation_steps"]
        steps = math.ceil(n / per_step) * section["num_train_epochs"]
        train = rounds * steps * plan["sft_seconds_per_step"]
    else:
        train = rounds * section["max_steps"] * plan["grpo_seconds_per_step"]
    return seconds / 3600, train / 3600


def _pool_size(config: dict, paradigm: str, model: str) -> tuple[int, str | None]:
    """Pool the strategies score: data.max_train, else N (a lower bound, said in the notes)."""
    if config["data"]["max_train"]:
        return config["data"]["max_train"], None
    n = round_budget(config, paradigm, model)[1]
    return n, f"data.max_train is unset: scoring time assumes a pool of N = {n} (a lower bound)"


def _checkpoint_bytes(config: dict, model: str, arch: Arch) -> float:
    return arch.params * BYTES[config["models"][model]["dtype"]]


def train_job(config: dict, name: str, runs: list[tuple]) -> Job:
    domain, model, paradigm = runs[0][:3]
    arch = arch_of(config, model)
    job = Job("train", name, model, _gpus(config, model), runs)
    job.phases = training_phases(config, model, paradigm, arch)
    resident = {"weights (master)": arch.params * BYTES[config["models"][model]["master_dtype"]]}
    costs = {s: strategy_cost(config, s) for s in sorted({r[3] for r in runs})}  # as each strategy declares
    kinds = {c.scores_with for c in costs.values() if c.scores_with}
    job.phases += [scoring_phase(config, model, arch, kind, resident) for kind in sorted(kinds)]
    job.phases += [p for p in (save_phase(config, model, arch), eval_phase(config, model, arch)) if p]
    pool, note = _pool_size(config, paradigm, model)
    if note and kinds:
        job.notes.append(note)
    job.notes += [f"{c.bound}: its scoring time is an upper bound" for c in costs.values() if c.bound]
    hours = 0.0
    for run in runs:
        scoring, training = _run_hours(config, model, paradigm, costs[run[3]], pool)
        hours += scoring + training + config["plan"]["eval_hours_per_run"]
    job.gpu_hours = hours * job.gpus
    ckpt = _checkpoint_bytes(config, model, arch)
    job.disk_gb = len(runs) * ckpt / GB  # each finished run keeps final/
    job.transient_disk_gb = 2 * ckpt / GB  # while a round ends: the new checkpoint beside the previous one
    # compute.scratch_dir (the system temp directory when null): the GRPO round's reference
    # (TRL loads it, and its rollout engine, by name) or the weights a vLLM scoring engine
    # loads, one model at a time (scoring comes before a round's training).
    saves = paradigm == "rl" or (config["estimator"]["backend"] == "vllm" and bool(kinds))
    job.scratch_gb = ckpt / GB if saves else 0.0
    return job


def save_phase(config: dict, model: str, arch: Arch) -> Phase | None:
    """``edco.models.save_weights`` of fp32 master weights (a round's checkpoint, the GRPO
    reference, a vLLM scoring engine's weights): a models.<m>.dtype copy of every tensor, made on
    the model's device, alive until the save is written. None when nothing is cast."""
    m = config["models"][model]
    if m["dtype"] == m["master_dtype"]:
        return None
    return Phase("saving weights", {"weights (master)": arch.params * BYTES[m["master_dtype"]],
                                    "save_weights copies": arch.params * BYTES[m["dtype"]]})


def train_scratch_warning(config: dict, runs: list[tuple]) -> str | None:
    """``scratch_warning`` of the train job of ``runs`` (python -m edco train logs it at its start)."""
    if config["compute"]["scratch_dir"] is not None or config["compute"]["device"] != "cuda":
        return None
    return scratch_warning(config, train_job(config, "", runs).scratch_gb)


def scratch_warning(config: dict, scratch_gb: float) -> str | None:
    """What a GPU job's temporary model saves of ``scratch_gb`` put in the system temp directory
    when compute.scratch_dir is null (None: set, nothing saved, or a CPU config)."""
    if config["compute"]["scratch_dir"] is not None or config["compute"]["device"] != "cuda" or not scratch_gb:
        return None
    return (f"compute.scratch_dir is null: each train job writes temporary model saves of up to {scratch_gb:.1f} GB "
            f"(the GRPO reference, the weights a vLLM scoring engine loads) to the system temp directory ($TMPDIR, "
            f"else /tmp; RAM on many nodes), {8 * scratch_gb:.0f} GB for 8 jobs on one node; set compute.scratch_dir "
            f"to a large local disk")


def evaluate_base_job(config: dict, model: str) -> Job:
    arch = arch_of(config, model)
    job = Job("evaluate_base", model, model, 1, phases=[eval_phase(config, model, arch)])
    job.gpu_hours = len(config["grid"]["domains"]) * config["plan"]["eval_hours_per_run"]
    return job


def estimator_bench_job(config: dict, domain: str, model: str) -> Job:
    """The estimator benchmark as ``estimator_bench`` sets it: the base model (and with
    ``checkpoint`` one fine-tuned model), each scored with full and prefix entropy at every K of
    ``prefix_ks`` plus ``estimator.prefix_tokens`` (at two seeds with ``retest``; the hf backend
    samples once up to the largest K, vLLM makes one call per K), and once with teacher-forced
    entropy and perplexity; one scoring engine at a time. With vLLM the process holds no torch
    model (the engine loads the weights); with hf, ``validity`` evaluates each model first."""
    arch = arch_of(config, model)
    bench, est = config["estimator_bench"], config["estimator"]
    vllm = est["backend"] == "vllm"
    weights = {} if vllm else {"weights (bench)": arch.params * BYTES[config["models"][model]["dtype"]]}
    job = Job("estimator_bench", f"{domain}/{model}", model, 1)
    job.phases = [scoring_phase(config, model, arch, "full", weights)]
    if bench["validity"] and not vllm:
        job.phases.append(eval_phase(config, model, arch))
    paradigm = config["grid"]["paradigms"][0]
    pool = _pool_size(config, paradigm, model)[0]
    samples = min(pool, bench["limit"] or pool)
    ks = sorted(set(bench["prefix_ks"]) | {est["prefix_tokens"]})
    # plan.seconds_per_sample.prefix is for K = 128 tokens
    prefix = config["plan"]["seconds_per_sample"]["prefix"] * (sum(ks) if vllm else max(ks)) / 128
    seeds = 2 if bench["retest"] else 1
    per_sample = seeds * (seconds_per_sample(config, "full") + prefix) + \
        seconds_per_sample(config, "teacher_forced") + seconds_per_sample(config, "perplexity")
    models = 2 if bench["checkpoint"] else 1
    job.gpu_hours = models * samples * per_sample / 3600
    return job


def _job_units(config: dict) -> list[tuple[str, list[tuple]]]:
    """(job name, its runs) for every train job, grouped as compute.job says (rules/common.smk)."""
    g = config["grid"]
    keys = {"run": 5, "cell": 4, "block": 3}[config["compute"]["job"]]
    runs = list(itertools.product(g["domains"], g["models"], g["paradigms"], g["strategies"], config["seeds"]))
    units: dict[tuple, list[tuple]] = {}
    for run in runs:
        units.setdefault(run[:keys], []).append(run)
    return [("/".join(map(str, key[:4])) + (f"/seed{key[4]}" if keys == 5 else ""), members)
            for key, members in units.items()]


def gpu_jobs(config: dict) -> list[Job]:
    """Every job of the DAG that holds a GPU (on a CPU config: what it would hold on one)."""
    jobs = [train_job(config, name, runs) for name, runs in _job_units(config)]
    jobs += [evaluate_base_job(config, m) for m in config["grid"]["models"]]
    if config["estimator_bench"]["enabled"]:
        jobs += [estimator_bench_job(config, d, m) for d in config["grid"]["domains"] for m in config["grid"]["models"]]
    return jobs


# --------------------------------------------------------------------------- checks
def vllm_kv_problems(config: dict) -> list[str]:
    """A vLLM engine refuses to start when its KV cache cannot hold one sequence of its context
    window (max_model_len, by default the model's whole context): check every engine."""
    problems = []
    budget = _budget_bytes(config)
    for model in config["grid"]["models"]:
        arch = arch_of(config, model)
        weights = arch.params * BYTES[config["models"][model]["dtype"]]
        engines = []
        if "rl" in config["grid"]["paradigms"] and config["rl"]["use_vllm"]:
            window = config["rl"]["vllm_max_model_length"] or arch.max_positions  # vLLM's default: all of it
            engines.append(("rl.vllm_gpu_memory_utilization", config["rl"]["vllm_gpu_memory_utilization"], window))
        if config["estimator"]["backend"] == "vllm":
            window = arch.max_positions  # the scoring engine keeps vLLM's default context
            engines.append(("estimator.vllm_gpu_memory_utilization", config["estimator"]["vllm_gpu_memory_utilization"], window))
        for key, share, window in engines:
            kv = share * budget - weights - VLLM_OVERHEAD_GB * GB
            if kv < window * arch.kv_bytes_per_token:
                problems.append(f"{model}: {key} = {share} leaves {max(kv, 0) / GB:.1f} GB for the KV cache, less than one "
                                f"{window}-token sequence ({window * arch.kv_bytes_per_token / GB:.1f} GB)")
    return problems


@dataclass
class Plan:
    config: dict
    jobs: list[Job]
    kv_problems: list[str]

    @property
    def budget_gb(self) -> float:
        return self.config["compute"]["gpu_memory_gb"]

    def over(self) -> list[Job]:
        return [j for j in self.jobs if j.peak.total > self.budget_gb * GB]

    @property
    def fits(self) -> bool:
        return not self.over() and not self.kv_problems


def make_plan(config: dict) -> Plan:
    """The plan of a validated (defaults-filled) config."""
    return Plan(config, gpu_jobs(config), vllm_kv_problems(config))


# Settings that lower a job's peak, cheapest first; each (key path, value) is applied on top of
# the previous ones until the job fits. Paths with <m> / <p> are the job's model / paradigm.
REMEDIES = [
    (("models", "<m>", "dtype"), "bfloat16"),
    (("<p>", "gradient_checkpointing"), True),
    (("rl", "vllm_enable_sleep_mode"), True),
    (("<p>", "optim"), "adamw_bnb_8bit"),
    ("halve_micro_batch", None),
    ("halve_micro_batch", None),
    ("halve_micro_batch", None),
]


def _apply(config: dict, path: tuple, value, model: str, paradigm: str) -> str | None:
    """Set one key (None when it already has that value); return 'key: value'."""
    keys = [model if k == "<m>" else paradigm if k == "<p>" else k for k in path]
    if keys[0] == "rl" and paradigm != "rl":
        return None
    node = config
    for k in keys[:-1]:
        node = node[k]
    if node[keys[-1]] == value:
        return None
    node[keys[-1]] = value
    return f"{'.'.join(keys)}: {str(value).lower() if isinstance(value, bool) else value}"


def _halve_micro_batch(config: dict, paradigm: str) -> str | None:
    """Half the micro-batch, twice the accumulation: the same samples per optimiser step."""
    section = config[paradigm]
    b = section["per_device_train_batch_size"]
    if b == 1 or b % 2:
        return None
    section["per_device_train_batch_size"] //= 2
    section["gradient_accumulation_steps"] *= 2
    return (f"{paradigm}.per_device_train_batch_size: {b // 2}, "
            f"{paradigm}.gradient_accumulation_steps: {section['gradient_accumulation_steps']}")


def settings_that_fit(config: dict, job: Job) -> list[str] | None:
    """The smallest prefix of ``REMEDIES`` after which ``job`` fits, as 'key: value' lines
    (None: nothing on the list makes it fit)."""
    trial = copy.deepcopy(config)
    domain, model, paradigm = (job.runs[0][:3] if job.runs else (None, job.model, "sft"))
    changes: list[str] = []
    for remedy in REMEDIES:
        if remedy[0] == "halve_micro_batch":
            done = [_halve_micro_batch(trial, paradigm)] if job.rule == "train" else []
        else:
            done = [_apply(trial, remedy[0], remedy[1], model, paradigm)]
        changes += [c for c in done if c]
        if not any(done):
            continue
        again = _rebuild(trial, job)
        if again.peak.total <= trial["compute"]["gpu_memory_gb"] * GB:
            return changes
    return None


def _rebuild(config: dict, job: Job) -> Job:
    if job.rule == "train":
        return train_job(config, job.name, job.runs)
    if job.rule == "evaluate_base":
        return evaluate_base_job(config, job.model)
    return estimator_bench_job(config, *job.name.split("/"))


def refusal(plan: Plan, source: str) -> str | None:
    """The one message that stops a real run, or None when every job fits: each job that does
    not fit (the worst of identical ones), its peak and phase, and the settings that would fit."""
    lines = []
    seen = set()
    for job in sorted(plan.over(), key=lambda j: -j.peak.total):
        kind = (job.rule, job.model, job.runs[0][2] if job.runs else "")
        if kind in seen:
            continue
        seen.add(kind)
        others = sum(1 for j in plan.over() if (j.rule, j.model, j.runs[0][2] if j.runs else "") == kind) - 1
        fix = settings_that_fit(plan.config, job)
        lines.append(
            f"job {job.rule} {job.name}{f' (and {others} like it)' if others else ''}: peak {job.peak.total / GB:.1f} GB "
            f"in its {job.peak.name} > compute.gpu_memory_gb {plan.budget_gb:g}; "
            + (f"fits with: {'; '.join(fix)}" if fix else "nothing on the planner's list of settings makes it fit")
        )
    lines += [f"vLLM: {p}" for p in plan.kv_problems]
    if not lines:
        return None
    return f"{source}: the resource plan does not fit (python -m edco plan --config {source}):\n  " + "\n  ".join(lines)


def check_plan(config: dict, source: str) -> None:
    """Raise PlanError naming every job that does not fit, and what would."""
    message = refusal(make_plan(config), source)
    if message:
        raise PlanError(message)


# --------------------------------------------------------------------------- output
CSV_COLUMNS = ["rule", "job", "model", "gpus", "runs", "peak_gb", "peak_phase", "fits", "gpu_hours", "disk_gb",
               "transient_disk_gb", "scratch_gb"]


def job_rows(plan: Plan) -> list[dict]:
    return [{"rule": j.rule, "job": j.name, "model": j.model, "gpus": j.gpus, "runs": len(j.runs),
             "peak_gb": round(j.peak.total / GB, 2), "peak_phase": j.peak.name,
             "fits": j.peak.total <= plan.budget_gb * GB, "gpu_hours": round(j.gpu_hours, 2),
             "disk_gb": round(j.disk_gb, 2), "transient_disk_gb": round(j.transient_disk_gb, 2),
             "scratch_gb": round(j.scratch_gb, 2)} for j in plan.jobs]


def totals(plan: Plan) -> dict:
    hub = [m for m in plan.config["grid"]["models"] if plan.config["models"][m]["source"] == "hub"]
    hub_cache = sum(arch_of(plan.config, m).params * 2 for m in hub) / GB  # hub weights are bf16
    return {"jobs": len(plan.jobs), "gpu_hours": sum(j.gpu_hours for j in plan.jobs),
            "disk_gb": sum(j.disk_gb for j in plan.jobs) + hub_cache, "hub_cache_gb": hub_cache,
            "transient_disk_gb": max((j.transient_disk_gb for j in plan.jobs), default=0.0),
            "scratch_gb": max((j.scratch_gb for j in plan.jobs), default=0.0)}


def _csv_text(rows: list[dict]) -> str:
    out = StringIO()
    writer = csv.DictWriter(out, CSV_COLUMNS, lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    return out.getvalue()


def markdown(plan: Plan, source: str) -> str:
    """The plan as Markdown: the verdict, one row per kind of job, the peak phase of the worst
    job of each (model, paradigm) broken down by component, and the totals."""
    c = plan.config
    lines = [f"# Resource plan: {source} (run `{c['run']}`)", "",
             verdict_line(plan), "",
             "| rule | model | paradigm | strategy | jobs | GPUs | peak GB | peak phase | GPU-h per job | GPU-h total |",
             "|---|---|---|---|---|---|---|---|---|---|"]
    groups: dict[tuple, list[Job]] = {}
    for job in plan.jobs:
        paradigm = job.runs[0][2] if job.runs else "–"
        strategies = ",".join(sorted({r[3] for r in job.runs})) if job.runs else "–"
        groups.setdefault((job.rule, job.model, paradigm, strategies), []).append(job)
    for (rule, model, paradigm, strategy), jobs in groups.items():
        worst = max(jobs, key=lambda j: j.peak.total)
        flag = "" if worst.peak.total <= plan.budget_gb * GB else " **over**"
        lines.append(f"| {rule} | {model} | {paradigm} | {strategy} | {len(jobs)} | {worst.gpus} | "
                     f"{worst.peak.total / GB:.1f}{flag} | {worst.peak.name} | {jobs[0].gpu_hours:.1f} | "
                     f"{sum(j.gpu_hours for j in jobs):,.0f} |")
    lines += ["", "Peak phase of the largest job per model and paradigm (GB per GPU):", ""]
    worst_by: dict[tuple, Job] = {}
    for job in plan.jobs:
        key = (job.rule, job.model, job.runs[0][2] if job.runs else "")
        # the largest peak; among equal ones the job with the most phases (one that scores, say)
        rank = (job.peak.total, len(job.phases))
        if key not in worst_by or rank > (worst_by[key].peak.total, len(worst_by[key].phases)):
            worst_by[key] = job
    for (rule, model, paradigm), job in worst_by.items():
        parts = ", ".join(f"{k} {v / GB:.1f}" for k, v in job.peak.parts.items())
        lines.append(f"- {rule} {model} {paradigm}".rstrip() + f" ({job.peak.name}): {parts} = **{job.peak.total / GB:.1f}**")
    lines += ["", "Every phase of the same jobs (GB per GPU):", ""]
    for (rule, model, paradigm), job in worst_by.items():
        if len(job.phases) > 1:
            lines.append(f"- {rule} {model} {paradigm}".rstrip() + ": "
                         + ", ".join(f"{p.name} {p.total / GB:.1f}" for p in job.phases))
    t = totals(plan)
    lines += ["", f"Totals: {t['jobs']} GPU jobs, **{t['gpu_hours']:,.0f} GPU-hours**; disk **{t['disk_gb']:,.0f} GB** "
              f"(every run's final checkpoint in models.<m>.dtype, plus {t['hub_cache_gb']:.0f} GB of hub weights), "
              f"and up to {t['transient_disk_gb']:.0f} GB more per running train job while a round ends; "
              f"temporary model saves of up to {t['scratch_gb']:.0f} GB per running train job in "
              f"{c['compute']['scratch_dir'] or 'the system temp directory (compute.scratch_dir: null)'}."]
    notes = sorted({n for j in plan.jobs for n in j.notes} | {scratch_warning(c, t["scratch_gb"])} - {None})
    lines += [f"- {n}" for n in notes]
    lines += [f"- vLLM: {p}" for p in plan.kv_problems]
    lines += ["", "Exact: model state (weights, grads, AdamW state), saved activations and autocast copies of one "
              "forward. Estimates: checkpointing's recomputation, the LM head's workspace, vLLM shares, 8-bit state. "
              "GPU-hours: the `plan` section's per-unit times times the config's counts."]
    return "\n".join(lines) + "\n"


def verdict_line(plan: Plan) -> str:
    peak = max(plan.jobs, key=lambda j: j.peak.total)
    if plan.fits:
        return (f"**Verdict: fits.** Every job's peak is within compute.gpu_memory_gb = {plan.budget_gb:g} GB "
                f"(largest: {peak.rule} {peak.name}, {peak.peak.total / GB:.1f} GB in its {peak.peak.name}).")
    return (f"**Verdict: does not fit.** {len(plan.over())} of {len(plan.jobs)} jobs exceed "
            f"compute.gpu_memory_gb = {plan.budget_gb:g} GB (largest: {peak.rule} {peak.name}, "
            f"{peak.peak.total / GB:.1f} GB){'; vLLM engines cannot start' if plan.kv_problems else ''}.")


def write_plan(plan: Plan, source: str, out_dir) -> list:
    """plan.md and plan.csv into ``out_dir`` (atomically)."""
    out = Path(out_dir)
    paths = [out / "plan.md", out / "plan.csv"]
    io.write_text(paths[0], markdown(plan, source))
    io.write_text(paths[1], _csv_text(job_rows(plan)))
    return paths


# The README's cost section is this block, rewritten by `python -m edco plan --readme README.md`
# (tests/test_plan.py checks it is current).
README_BEGIN = ("<!-- plan:begin (generated: python -m edco plan --config config/config.yaml --readme README.md;"
                " do not edit by hand) -->")
README_END = "<!-- plan:end -->"


def readme_block(plan: Plan, source: str) -> str:
    """The plan for the README: ``markdown`` without its title, between the markers."""
    body = markdown(plan, source).split("\n", 2)[2]  # drop the title and the blank line after it
    return f"{README_BEGIN}\n{body}{README_END}"


def update_readme(plan: Plan, path, source: str = "config/config.yaml") -> None:
    """Replace the marked block of ``path`` with the current plan."""
    path = Path(path)
    text = path.read_text(encoding="utf-8")
    start, end = text.find(README_BEGIN), text.find(README_END)
    if start < 0 or end < start:
        raise PlanError(f"{path}: no plan block to rewrite; add the two lines {README_BEGIN!r} and {README_END!r}")
    io.write_text(path, text[:start] + readme_block(plan, source) + text[end + len(README_END):])
