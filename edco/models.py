"""Tiny Qwen3 / Llama models for the smoke and local worlds: tokenizer, model, base pretraining.

    python -m edco base-model --config config/smoke.yaml --model qwen3
    python -m edco base-model --config config/smoke.yaml --model llama

A tiny model is a transformers ``Qwen3ForCausalLM`` / ``LlamaForCausalLM`` built from
``models.<name>.size``, with a BPE tokenizer trained offline on the run's *training* text
(or real tokenizer files), then base-pretrained on the general split so that round 1 starts
from a model that answers in the right format (DESIGN §2). Chat prompts go through each
family's chat template; the paper's quick-answer prompt is raw text.

The output directory is written to a temp dir and renamed, and ``manifest.json`` is written
last inside it: a model directory without a manifest is treated as absent.
A ``source: hub`` model gets a manifest naming the hub id and nothing else; loading it
(``load_model``) is the only step that would need the network. A ``source: gguf`` model is a
pretrained instruct model's GGUF converted into the same directory (edco/gguf.py).
"""

from __future__ import annotations

import base64
import json
import logging
import math
import random
import time
from pathlib import Path
from typing import Iterable, Iterator, NamedTuple

import torch
from tqdm.auto import tqdm

from edco import io, layout
from edco.config import base_seed, per_seed_base
from edco.errors import UserFacingError
from edco.gguf import GGUFError, ensure_converted
from edco.portable import platform_record
from edco.prompts import chat_messages, completion_text, quick_answer_prompt, quick_answer_text, user_message

log = logging.getLogger("edco.models")

MANIFEST = "manifest.json"

# --------------------------------------------------------------------------- chat templates
# Both templates render the prompt alone (add_generation_prompt) as an exact prefix of the
# prompt + assistant reply, which TRL's completion-only loss relies on. `{% generation %}`
# marks the assistant span for TRL's assistant_only_loss. Tiny models never "think": the
# Qwen3 template renders no <think> block whatever `enable_thinking` says, so prompts are plain.
CHATML_TEMPLATE = (
    "{%- for message in messages %}"
    "{{- '<|im_start|>' + message['role'] + '\\n' }}"
    "{%- if message['role'] == 'assistant' %}"
    "{% generation %}{{- message['content'] + '<|im_end|>' }}{% endgeneration %}{{- '\\n' }}"
    "{%- else %}{{- message['content'] + '<|im_end|>\\n' }}{%- endif %}"
    "{%- endfor %}"
    "{%- if add_generation_prompt %}{{- '<|im_start|>assistant\\n' }}{%- endif %}"
)
# Llama 3 turn format, without the official template's "Cutting Knowledge Date" system header.
LLAMA3_TEMPLATE = (
    "{{- '<|begin_of_text|>' }}"
    "{%- for message in messages %}"
    "{{- '<|start_header_id|>' + message['role'] + '<|end_header_id|>\\n\\n' }}"
    "{%- if message['role'] == 'assistant' %}"
    "{% generation %}{{- message['content'] + '<|eot_id|>' }}{% endgeneration %}"
    "{%- else %}{{- message['content'] + '<|eot_id|>' }}{%- endif %}"
    "{%- endfor %}"
    "{%- if add_generation_prompt %}{{- '<|start_header_id|>assistant<|end_header_id|>\\n\\n' }}{%- endif %}"
)

# Per family: the real tokenizer's special tokens; pad != eos so padding is never "end".
# Llama 3 prepends <|begin_of_text|> to raw text (as the real tokenizer does); Qwen adds nothing.
FAMILIES = {
    "qwen3": {
        "template": CHATML_TEMPLATE,
        "bos": None,
        "eos": "<|im_end|>",
        "pad": "<|endoftext|>",
        "specials": ["<|endoftext|>", "<|im_start|>", "<|im_end|>"],
    },
    "llama": {
        "template": LLAMA3_TEMPLATE,
        "bos": "<|begin_of_text|>",
        "eos": "<|eot_id|>",
        "pad": "<|finetune_right_pad_id|>",
        "specials": ["<|begin_of_text|>", "<|end_of_text|>", "<|finetune_right_pad_id|>",
                     "<|start_header_id|>", "<|end_header_id|>", "<|eot_id|>"],
    },
}


class ModelError(UserFacingError):
    """A model that cannot be built, found or loaded; the message says what to run."""


# --------------------------------------------------------------------------- tokenizers
def corpus_texts(records: Iterable[dict]) -> Iterator[str]:
    """Every piece of text a model will read or write for these records (tokenizer training)."""
    for r in records:
        yield "user\nassistant\n"  # role names are rendered once per chat: give them tokens too
        yield user_message(r)
        yield completion_text(r)
        yield quick_answer_prompt(r)


def build_tokenizer(model_cfg: dict, corpus: Iterable[str]):
    """A ``PreTrainedTokenizerFast`` with the family's chat template and special tokens.

    kind ``bpe``: byte-level BPE (GPT-2 pre-tokenizer) trained here on ``corpus``; every
    newline is its own pre-token, so that the rendered prompt ("...assistant\n") is a
    token-level prefix of prompt + completion whatever the completion starts with.
    kind ``path``: real files (qwen3: vocab.json/merges.txt; llama: tiktoken tokenizer.model
    + special_tokens.json, see ../shared/tokenizers/README.md); ``corpus`` is ignored.
    """
    family = FAMILIES[model_cfg["arch"]]
    spec = model_cfg["tokenizer"]
    if spec["kind"] == "bpe":
        tok = _train_bpe(corpus, spec["vocab_size"], family)
    elif spec["kind"] == "path":
        tok = _load_real_tokenizer(model_cfg["arch"], Path(spec["path"]))
    else:
        raise ModelError(f"models.*.tokenizer.kind: unknown kind {spec['kind']!r} (bpe, path)")
    tok.chat_template = family["template"]
    tok.padding_side = "right"  # training default; generation callers set "left"
    assert tok.pad_token_id != tok.eos_token_id
    return tok


def _train_bpe(corpus: Iterable[str], vocab_size: int, family: dict):
    from tokenizers import Regex, Tokenizer, decoders, models, pre_tokenizers, processors, trainers
    from transformers import PreTrainedTokenizerFast

    floor = 256 + len(family["specials"])
    if vocab_size <= floor:
        raise ModelError(f"models.*.tokenizer.vocab_size: {vocab_size} leaves no merges; a byte-level "
                         f"BPE needs more than {floor} (256 bytes + special tokens)")
    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.Sequence([
        pre_tokenizers.Split(Regex("\n"), behavior="isolated"),
        pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=True),
    ])
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=vocab_size, special_tokens=family["specials"],
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet(), show_progress=False)
    tok.train_from_iterator(corpus, trainer)
    if family["bos"]:
        bos = family["bos"]
        tok.post_processor = processors.TemplateProcessing(
            single=f"{bos} $A", pair=f"{bos} $A {bos} $B", special_tokens=[(bos, tok.token_to_id(bos))])
    return PreTrainedTokenizerFast(tokenizer_object=tok, bos_token=family["bos"], eos_token=family["eos"],
                                   pad_token=family["pad"])


def _load_real_tokenizer(arch: str, path: Path):
    if not path.is_dir():
        raise ModelError(f"models.*.tokenizer.path: {path} is not a directory (see ../shared/tokenizers/README.md)")
    if arch == "qwen3":
        from transformers import AutoTokenizer

        # Local files only: the directory holds vocab.json, merges.txt, tokenizer_config.json.
        return AutoTokenizer.from_pretrained(str(path), local_files_only=True)
    return _load_llama3_tiktoken(path)


def _load_llama3_tiktoken(path: Path):
    """The README's TikTokenConverter recipe, with the tiktoken file parsed here (base64
    token, rank per line) so the `tiktoken` package is not needed."""
    from tokenizers import processors
    from transformers import PreTrainedTokenizerFast
    from transformers.convert_slow_tokenizer import TikTokenConverter

    class _Converter(TikTokenConverter):
        @staticmethod
        def load_tiktoken_bpe(tiktoken_url: str) -> dict[bytes, int]:
            ranks = {}
            with open(tiktoken_url, "rb") as f:
                for line in f:
                    if line.strip():
                        token, rank = line.split()
                        ranks[base64.b64decode(token)] = int(rank)
            return ranks

    model_file, specials_file = path / "tokenizer.model", path / "special_tokens.json"
    for f in (model_file, specials_file):
        if not f.is_file():
            raise ModelError(f"llama3 tokenizer: {f} is missing (see ../shared/tokenizers/README.md)")
    specials = json.loads(specials_file.read_text())
    names = [name for name, _ in sorted(specials.items(), key=lambda kv: kv[1])]  # ids in order
    obj = _Converter(vocab_file=str(model_file), extra_special_tokens=names).converted()
    if obj.token_to_id("<|begin_of_text|>") != specials["<|begin_of_text|>"]:
        raise ModelError(f"{specials_file}: special token ids do not follow the BPE ranks")
    bos = "<|begin_of_text|>"
    obj.post_processor = processors.TemplateProcessing(
        single=f"{bos} $A", pair=f"{bos} $A {bos} $B", special_tokens=[(bos, specials[bos])])
    family = FAMILIES["llama"]
    return PreTrainedTokenizerFast(tokenizer_object=obj, bos_token=bos, eos_token=family["eos"],
                                   pad_token=family["pad"])


# --------------------------------------------------------------------------- models
def build_model(model_cfg: dict, tokenizer):
    """A randomly initialised (seeded) float32 causal LM sized by ``model_cfg["size"]``."""
    from transformers import AutoModelForCausalLM, LlamaConfig, Qwen3Config

    size = dict(model_cfg["size"])
    # Qwen3Config defaults head_dim to 128 whatever the width; a tiny model wants width/heads.
    size.setdefault("head_dim", size["hidden_size"] // size["num_attention_heads"])
    size.setdefault("max_position_embeddings", 1024)
    # transformers' default init std 0.02 suits widths ~1000-4000 (~1/sqrt(width)). At width
    # 64 it leaves attention logits ~0, so attention stays uniform for hundreds of steps: a
    # tiny Llama (no q/k norm) never left that plateau in 1000 steps. 1/sqrt(width) fixes it.
    init_std = size["hidden_size"] ** -0.5
    config_class = {"qwen3": Qwen3Config, "llama": LlamaConfig}[model_cfg["arch"]]
    config = config_class(
        vocab_size=len(tokenizer),
        tie_word_embeddings=True,
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
        initializer_range=init_std,
        **size,
    )
    torch.manual_seed(model_cfg["pretrain"]["seed"])
    model = AutoModelForCausalLM.from_config(config, dtype=torch.float32)
    _set_generation_defaults(model, tokenizer)
    return model


def _set_generation_defaults(model, tokenizer) -> None:
    gen = model.generation_config
    gen.eos_token_id, gen.pad_token_id, gen.bos_token_id = (
        tokenizer.eos_token_id, tokenizer.pad_token_id, tokenizer.bos_token_id)


def n_params(model) -> int:
    """Unique parameters (tied embeddings counted once)."""
    return sum(p.numel() for p in {id(p): p for p in model.parameters()}.values())


# --------------------------------------------------------------------------- encoding
def encode_chat(tokenizer, record: dict) -> tuple[list[int], int]:
    """(ids of chat prompt + completion, prompt length): what TRL's SFT trainer builds."""
    prompt = chat_messages(record)
    full = prompt + [{"role": "assistant", "content": completion_text(record)}]
    p_ids = tokenizer.apply_chat_template(prompt, add_generation_prompt=True, tokenize=True, return_dict=True)["input_ids"]
    ids = tokenizer.apply_chat_template(full, tokenize=True, return_dict=True)["input_ids"]
    if ids[: len(p_ids)] != p_ids:
        raise ModelError("chat template: the prompt is not a token prefix of prompt + completion")
    return ids, len(p_ids)


def encode_quick(tokenizer, record: dict) -> tuple[list[int], int]:
    """(ids of quick-answer prompt + short answer + eos, prompt length); raw text, no template,
    tokenized as the prefix estimator tokenizes its prompt (``tokenizer(text)``)."""
    p_ids = tokenizer(quick_answer_prompt(record))["input_ids"]
    a_ids = tokenizer(quick_answer_text(record), add_special_tokens=False)["input_ids"]
    return p_ids + a_ids + [tokenizer.eos_token_id], len(p_ids)


def _collate(batch: list[tuple[list[int], int]], pad_id: int) -> dict[str, torch.Tensor]:
    """Right-padded ids, attention mask, and labels masked (-100) on prompt and padding."""
    width = max(len(ids) for ids, _ in batch)
    input_ids = torch.full((len(batch), width), pad_id, dtype=torch.long)
    labels = torch.full((len(batch), width), -100, dtype=torch.long)
    mask = torch.zeros((len(batch), width), dtype=torch.long)
    for i, (ids, n_prompt) in enumerate(batch):
        input_ids[i, : len(ids)] = torch.tensor(ids)
        labels[i, n_prompt: len(ids)] = torch.tensor(ids[n_prompt:])
        mask[i, : len(ids)] = 1
    return {"input_ids": input_ids, "attention_mask": mask, "labels": labels}


# --------------------------------------------------------------------------- training
class CompletionLoss(NamedTuple):
    loss: torch.Tensor
    logits: torch.Tensor  # [completion tokens, vocab], float32
    targets: torch.Tensor  # [completion tokens]


def completion_loss(model, batch: dict[str, torch.Tensor], normaliser=None) -> CompletionLoss:
    """Next-token cross-entropy summed over completion tokens (labels != -100) and divided by
    ``normaliser``: by default this batch's completion tokens (the mean, ``model(**batch).loss``);
    TRL passes ``num_items_in_batch``, the completion tokens of every micro-batch of one
    gradient-accumulation step, so that the accumulated gradient is that of the whole step.
    A batch without completion tokens gives 0, as TRL's does.

    The LM head and softmax run only where a label exists (prompts are ~70 % of the tokens and
    the softmax over the vocabulary was a third of a tiny model's step). Base pretraining and
    the SFT trainer's ``fused_lm_head: false`` path both train on this one function."""
    # TRL's padding-free batches carry position_ids instead of an attention mask.
    hidden = model.base_model(input_ids=batch["input_ids"], attention_mask=batch.get("attention_mask"),
                              position_ids=batch.get("position_ids")).last_hidden_state
    targets = batch["labels"][:, 1:]
    keep = targets != -100
    logits = model.get_output_embeddings()(hidden[:, :-1][keep]).float()
    total = torch.nn.functional.cross_entropy(logits, targets[keep], reduction="sum")
    count = keep.sum() if normaliser is None else normaliser
    return CompletionLoss(total / torch.as_tensor(count).clamp(min=1), logits, targets[keep])


def _lr_at(step: int, total: int, peak: float, schedule: str) -> float:
    """constant; cosine (warm-up, cosine to 10 %); wsd (warm-up, stable, linear decay to 10 %
    over the last 20 %). Base pretraining uses wsd: the copy circuits a tiny model needs form
    late and only at full LR; a cosine decay delayed them past the step budget."""
    if schedule == "constant":
        return peak
    warmup = max(1, min(50, total // 10))
    if step < warmup:
        return peak * (step + 1) / warmup
    if schedule == "wsd":
        decay_start = int(0.8 * total)
        if step < decay_start:
            return peak
        return peak * (1 - 0.9 * (step - decay_start) / max(1, total - decay_start))
    progress = (step - warmup) / max(1, total - warmup)
    return peak * (0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * progress)))  # cosine to 10 %


def train_steps(model, examples: list[tuple[list[int], int]], batches: list[list[int]], *,
                learning_rate: float, schedule: str = "cosine", weight_decay: float = 0.0,
                pad_id: int, progress: bool = True, log_every: int = 50, desc: str = "train") -> list[float]:
    """One optimiser step per index list in ``batches``; returns the loss of every step.

    AdamW with TRL's defaults (betas 0.9/0.999, grad-norm clip 1.0) and a fresh optimiser per
    call, as every curriculum round restarts its optimiser.
    """
    model.train()
    optimizer = torch.optim.AdamW(model.parameters(), lr=learning_rate, weight_decay=weight_decay)
    losses = []
    bar = tqdm(batches, desc=desc, disable=not progress, mininterval=2.0)
    for step, idx in enumerate(bar):
        lr = _lr_at(step, len(batches), learning_rate, schedule)
        for group in optimizer.param_groups:
            group["lr"] = lr
        loss = completion_loss(model, _collate([examples[i] for i in idx], pad_id)).loss
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()
        losses.append(loss.item())
        if log_every and (step + 1) % log_every == 0:
            recent = sum(losses[-log_every:]) / len(losses[-log_every:])
            bar.set_postfix(loss=f"{recent:.3f}")
            log.info("%s step %d/%d loss %.4f lr %.2e", desc, step + 1, len(batches), recent, lr)
    model.eval()
    return losses


def base_pretrain(model, tokenizer, records: list[dict], pretrain_cfg: dict, progress: bool = True) -> dict:
    """Teach the format on the general split: chat prompt -> explanation + "Answer: X", and
    quick-answer prompt -> short answer (so the prefix estimator has an early answer token
    to be unsure about). Random batches (seeded); loss on completion tokens only."""
    steps, batch = pretrain_cfg["steps"], pretrain_cfg["batch_size"]
    if not records:  # real-data configs have no general split: nothing to pretrain on
        steps = 0
    quick_fraction = pretrain_cfg["quick_fraction"]
    rng = random.Random(pretrain_cfg["seed"])
    examples = [encode_chat(tokenizer, r) for r in records] + [encode_quick(tokenizer, r) for r in records]
    # Each batch item: a random record, in the quick format with probability quick_fraction.
    n = len(records)
    batches = [[rng.randrange(n) + (n if rng.random() < quick_fraction else 0) for _ in range(batch)]
               for _ in range(steps)]
    t0, c0 = time.perf_counter(), time.process_time()
    losses = train_steps(model, examples, batches, learning_rate=pretrain_cfg["learning_rate"],
                         schedule=pretrain_cfg["schedule"], weight_decay=0.0,
                         pad_id=tokenizer.pad_token_id, progress=progress, desc="base-pretrain")
    tail = losses[-min(len(losses), 20):]
    return {"steps": steps, "seconds": time.perf_counter() - t0, "cpu_seconds": time.process_time() - c0,
            "final_loss": sum(tail) / len(tail) if tail else None}


# --------------------------------------------------------------------------- save / load
def save_model(model, tokenizer, out_dir: str | Path, manifest: dict) -> Path:
    """safetensors + tokenizer into a temp dir renamed onto ``out_dir``; manifest.json last."""
    out_dir = Path(out_dir)
    with io.atomic_dir(out_dir) as tmp:
        model.save_pretrained(tmp, safe_serialization=True)
        tokenizer.save_pretrained(tmp)
        io.write_json(tmp / MANIFEST, {"path": str(out_dir), **manifest})
    return out_dir


def save_weights(model, tokenizer, out_dir: str | Path, dtype: str) -> None:
    """``model`` and ``tokenizer`` into ``out_dir`` (an existing, usually temporary, directory)
    with the weights in ``dtype``, leaving the in-memory model as it is: fp32 master weights are
    saved as bf16 checkpoints without being rounded themselves. Tied weights are written once,
    and config.json names ``dtype`` so a loader using the checkpoint's own dtype (vLLM's
    ``dtype="auto"``) gets it."""
    out_dir = Path(out_dir)
    if dtype == str(model.dtype).removeprefix("torch."):
        model.save_pretrained(out_dir, safe_serialization=True)
    else:
        target, kept, seen = getattr(torch, dtype), {}, set()
        for key, tensor in model.state_dict().items():
            if tensor.data_ptr() not in seen:  # a tied LM head shares the embedding's storage
                seen.add(tensor.data_ptr())
                kept[key] = tensor.to(target)
        model.save_pretrained(out_dir, safe_serialization=True, state_dict=kept)
        config = io.read_json(out_dir / "config.json")  # save_pretrained writes the model's dtype
        io.write_json(out_dir / "config.json", {**config, "dtype": dtype})
    tokenizer.save_pretrained(out_dir)


def is_complete(path: str | Path) -> bool:
    """A model directory counts only once its manifest exists (written last)."""
    return (Path(path) / MANIFEST).is_file()


def load_model(config: dict, name: str, device: str, dtype: str | None = None, base: str = layout.SHARED_BASE):
    """(model, tokenizer) of the config's base model ``name`` (``base``: "shared" or the
    "seed<s>" of a per-seed base model, edco.config.base_label), weights in ``dtype`` (the
    trainer passes ``models.<name>.master_dtype``; None = ``models.<name>.dtype``, for
    inference); errors if ``base-model`` has not finished."""
    path = layout.model_dir(config["run"], name, base)
    if not is_complete(path):
        raise ModelError(f"base model {name!r} ({base}) not found at {path} (no {MANIFEST}); run "
                         f"`python -m edco base-model --config <config> --model {name} --base {base}` first")
    return load_model_from(path, device, dtype or config["models"][name]["dtype"])


def load_model_from(path: str | Path, device: str, dtype: str):
    """(model, tokenizer) from a model directory, weights in ``dtype`` (``models.<name>.dtype``:
    float32 or bfloat16, on CPU too). With a manifest naming a hub id, load that id (the
    network is needed here and only here). Without a manifest, ``path`` must be a plain
    transformers directory written atomically (e.g. a trainer checkpoint)."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    path = Path(path)
    source = str(path)
    if is_complete(path):
        manifest = io.read_json(path / MANIFEST)
        if manifest["source"] == "hub":
            source = manifest["path"]
    elif not (path / "config.json").is_file():
        raise ModelError(f"{path}: not a model directory (no {MANIFEST}, no config.json)")
    local = source == str(path)
    tokenizer = AutoTokenizer.from_pretrained(source, local_files_only=local)
    model = AutoModelForCausalLM.from_pretrained(source, local_files_only=local, dtype=getattr(torch, dtype),
                                                 use_safetensors=True, trust_remote_code=False)
    model.to(device).eval()
    if local:
        _set_generation_defaults(model, tokenizer)
    return model, tokenizer


# --------------------------------------------------------------------------- CLI
def _training_records(config: dict) -> tuple[list[dict], list[dict]]:
    """(general split, every grid domain's train split): the only text a tokenizer may see."""
    run = config["run"]
    # Only the synthetic world has a general split; real-data configs build on the domains alone.
    general_path = layout.general_file(run) if config["data"]["source"] == "synthetic" else None
    paths = [layout.data_file(run, d, "train") for d in config["grid"]["domains"]]
    missing = [p for p in [general_path, *paths] if p is not None and not p.is_file()]
    if missing:
        raise ModelError(f"missing data: {', '.join(map(str, missing))}; run "
                         f"`python -m edco make-data --config <config> --domain <domain|general>` first")
    domain_train = [r for p in paths for r in io.read_jsonl(p)]
    return (io.read_jsonl(general_path) if general_path else []), domain_train


def pretrain_seed(model_cfg: dict, run_seed: int | None = None) -> int:
    """The pretraining seed (initialisation and batch order) of the base model a run of seed
    ``run_seed`` starts from. ``pretrain.per_seed`` false (default): ``pretrain.seed``, one
    base model serves every seed. True: ``pretrain.seed + run_seed``, so the study's seeds
    sample base models too (and seed 0 keeps the shared model of ``pretrain.seed: 0``);
    ``run_seed`` None means the shared model. The tokenizer never depends on it."""
    pretrain = model_cfg["pretrain"]
    if not pretrain["per_seed"] or run_seed is None:
        return pretrain["seed"]
    return pretrain["seed"] + run_seed


def build_base_model(config: dict, name: str, general: list[dict] | None = None,
                     domain_train: list[dict] | None = None, progress: bool = True, seed: int | None = None):
    """Tokenizer + model + base pretraining of tiny model ``name``; returns (model, tok, manifest).

    The tokenizer learns from the general split and the domains' *training* splits (never a
    test split); pretraining sees the general split only. Records default to the run's files.
    ``seed``: the run seed whose base model this is (``pretrain_seed``); None = the shared one.
    The manifest's ``config`` records the pretraining seed actually used.
    """
    model_cfg = config["models"][name]
    model_cfg = {**model_cfg, "pretrain": {**model_cfg["pretrain"], "seed": pretrain_seed(model_cfg, seed)}}
    if general is None or domain_train is None:
        general, domain_train = _training_records(config)
    t0 = time.perf_counter()
    tokenizer = build_tokenizer(model_cfg, corpus_texts(general + domain_train))
    model = build_model(model_cfg, tokenizer)
    log.info("%s: %s, %d parameters, vocab %d", name, model_cfg["arch"], n_params(model), len(tokenizer))
    stats = base_pretrain(model, tokenizer, general, model_cfg["pretrain"], progress=progress)
    manifest = {
        "name": name, "source": "tiny", "arch": model_cfg["arch"], "config": model_cfg,
        "params": n_params(model), "vocab": len(tokenizer), "pretrain_steps": stats["steps"],
        "pretrain_seconds": round(stats["seconds"], 2), "pretrain_cpu_seconds": round(stats["cpu_seconds"], 2),
        "final_loss": stats["final_loss"],
        "total_seconds": round(time.perf_counter() - t0, 2), "torch_threads": torch.get_num_threads(),
    }
    return model, tokenizer, manifest


def write_gguf_model(model_cfg: dict, name: str, out: Path) -> dict:
    """A gguf model's file converted into ``out`` (edco.gguf; not again when ``out``'s manifest
    names the same file), checked to be the architecture the config says it is."""
    manifest = ensure_converted(model_cfg["gguf"], out, hub_id=model_cfg["hub_id"], where=f"models.{name}.gguf",
                                extra={"name": name, "config": model_cfg})
    if manifest["arch"] != model_cfg["arch"]:
        raise GGUFError(f"models.{name}.arch: {model_cfg['arch']!r}, but its GGUF holds a {manifest['arch']!r} "
                        f"model ({manifest['gguf']['file']}); set arch: {manifest['arch']}")
    return manifest


def write_base_model(config: dict, name: str, progress: bool = True, base: str = layout.SHARED_BASE) -> dict:
    """``python -m edco base-model``: build and base-pretrain tiny model ``name`` into
    ``results/<run>/models/<name>/<base>/`` (``base`` "seed<s>": the base model of run seed s,
    pretrained with its own seed, ``pretrain.per_seed``); for a hub model, write a manifest naming its id (the
    first job that loads it fetches it: only that step needs the network); for a gguf model,
    convert its file there once (edco.gguf). Returns the manifest."""
    if name not in config["models"]:
        raise ModelError(f"--model {name!r}: not under models (defined: {', '.join(config['models'])})")
    if base != layout.SHARED_BASE and not per_seed_base(config, name):
        raise ModelError(f"--base {base}: models.{name} has one shared base model (pretrain.per_seed is not on)")
    model_cfg, out = config["models"][name], layout.model_dir(config["run"], name, base)
    if model_cfg["source"] == "hub":
        manifest = {"name": name, "source": "hub", "arch": model_cfg["arch"], "path": model_cfg["hub_id"],
                    "config": model_cfg}
        with io.atomic_dir(out) as tmp:
            io.write_json(tmp / MANIFEST, manifest)
        return manifest
    if model_cfg["source"] == "gguf":
        return write_gguf_model(model_cfg, name, out)
    log.info("building %s (%s) -> %s", name, model_cfg["arch"], out)
    model, tokenizer, manifest = build_base_model(config, name, progress=progress, seed=base_seed(base))
    manifest["platform"] = platform_record(config)
    save_model(model, tokenizer, out, manifest)
    return manifest
