"""Tiny Qwen3 / Llama models for the smoke and local worlds: tokenizer, model, encoding, save/load.

A tiny model is a transformers ``Qwen3ForCausalLM`` / ``LlamaForCausalLM`` built from
``models.<name>.size``, with a BPE tokenizer trained offline on the run's *training* text
(or real tokenizer files); ``python -m edco base-model`` (edco/trainer/pretrain.py) then
base-pretrains it on the general split so that round 1 starts from a model that answers in
the right format (docs/design.md#the-synthetic-world). Chat prompts go through each family's chat template; the paper's
quick-answer prompt is raw text.

The output directory is written to a temp dir and renamed, and ``manifest.json`` is written
last inside it: a model directory without a manifest is treated as absent.
A ``source: hub`` model gets a manifest naming the hub id and nothing else; loading it
(``load_model``) is the only step that would need the network. A ``source: gguf`` model is a
pretrained instruct model's GGUF converted into the same directory (edco/gguf.py).
"""

from __future__ import annotations

import base64
import json
from pathlib import Path
from typing import Iterable, Iterator

import torch

from edco import io, layout
from edco.config import model_size
from edco.errors import UserFacingError
from edco.gguf import GGUFError, ensure_converted
from edco.prompts import chat_messages, completion_text, quick_answer_prompt, quick_answer_text, user_message

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

    size = model_size(model_cfg)  # head_dim = width / heads unless given; positions: the schema's default
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
    saved as bf16 checkpoints without being rounded themselves. The copies are made on the CPU
    (torch converts a blocking device-to-host copy there), so a GPU model's save allocates no GPU
    memory (8 GB for a 4B model in bf16, taken from the vLLM engine that loads the save). Tied
    weights are written once, and config.json names ``dtype`` so a loader using the checkpoint's
    own dtype (vLLM's ``dtype="auto"``) gets it."""
    out_dir = Path(out_dir)
    if dtype == str(model.dtype).removeprefix("torch."):
        model.save_pretrained(out_dir, safe_serialization=True)
    else:
        target, kept, seen = getattr(torch, dtype), {}, set()
        for key, tensor in model.state_dict().items():
            if tensor.data_ptr() not in seen:  # a tied LM head shares the embedding's storage
                seen.add(tensor.data_ptr())
                kept[key] = tensor.detach().to(device="cpu", dtype=target)
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


# --------------------------------------------------------------------------- gguf
def write_gguf_model(model_cfg: dict, name: str, out: Path) -> dict:
    """A gguf model's file converted into ``out`` (edco.gguf; not again when ``out``'s manifest
    names the same file), checked to be the architecture the config says it is."""
    manifest = ensure_converted(model_cfg["gguf"], out, hub_id=model_cfg["hub_id"], where=f"models.{name}.gguf",
                                extra={"name": name, "config": model_cfg})
    if manifest["arch"] != model_cfg["arch"]:
        raise GGUFError(f"models.{name}.arch: {model_cfg['arch']!r}, but its GGUF holds a {manifest['arch']!r} "
                        f"model ({manifest['gguf']['file']}); set arch: {manifest['arch']}")
    return manifest
