"""Tiny models: both families build, chat templates are prefix-safe, save/load round-trips;
base pretraining (edco.trainer.pretrain) trains every parameter and per-seed base models differ."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from edco import cli, layout, models, synthetic
from edco.trainer import pretrain
from edco.config import section_defaults
from edco.prompts import chat_messages, completion_text, quick_answer_prompt, quick_answer_text

REPO = Path(__file__).resolve().parents[1]

SYN = {"seed": 3, "entities": 8, "levels": [1, 2], "train_per_level": 16, "test_per_level": 4, "general_size": 64}
SIZE = {"hidden_size": 32, "num_hidden_layers": 1, "num_attention_heads": 2, "num_key_value_heads": 1,
        "intermediate_size": 64}
ARCHS = ["qwen3", "llama"]


def model_cfg(arch: str, **tokenizer) -> dict:
    return {"source": "tiny", "arch": arch, "tokenizer": tokenizer or {"kind": "bpe", "vocab_size": 300},
            "size": SIZE, "dtype": "float32",
            "pretrain": section_defaults("models", "*", "pretrain") | {"steps": 4, "batch_size": 4, "learning_rate": 1e-3}}


@pytest.fixture(scope="module")
def records():
    train, _ = synthetic.generate_domain(SYN, "law")
    return synthetic.generate_general(SYN) + train


@pytest.fixture(scope="module", params=ARCHS)
def tiny(request, records):
    cfg = model_cfg(request.param)
    tok = models.build_tokenizer(cfg, models.corpus_texts(records))
    return cfg, tok, models.build_model(cfg, tok)


def assert_prefix_safe(tok, record):
    prompt = chat_messages(record)
    full = prompt + [{"role": "assistant", "content": completion_text(record)}]
    p_text = tok.apply_chat_template(prompt, add_generation_prompt=True, tokenize=False)
    f_text = tok.apply_chat_template(full, tokenize=False)
    assert f_text.startswith(p_text)
    ids, n_prompt = models.encode_chat(tok, record)  # raises unless a token-level prefix
    assert tok.decode(ids[n_prompt:]).startswith(completion_text(record))


def test_both_archs_build(tiny):
    cfg, tok, model = tiny
    assert model.config.model_type == cfg["arch"]
    assert model.config.vocab_size == len(tok) and model.config.tie_word_embeddings
    assert model.lm_head.weight.data_ptr() == model.model.embed_tokens.weight.data_ptr()
    assert model.dtype == torch.float32
    assert model.config.initializer_range == SIZE["hidden_size"] ** -0.5  # not HF's 0.02: see build_model
    assert model.config.head_dim == SIZE["hidden_size"] // SIZE["num_attention_heads"]
    assert models.n_params(model) < 50_000


def test_build_is_seeded(tiny):
    cfg, tok, model = tiny
    again = models.build_model(cfg, tok)
    assert all(torch.equal(a, b) for a, b in zip(model.state_dict().values(), again.state_dict().values()))


def test_chat_template_prefix_and_special_tokens(tiny, records):
    cfg, tok, _ = tiny
    assert tok.pad_token_id != tok.eos_token_id
    assert tok.eos_token == models.FAMILIES[cfg["arch"]]["eos"]
    for record in records[:20]:
        assert_prefix_safe(tok, record)
    text = tok.apply_chat_template(chat_messages(records[0]), add_generation_prompt=True, tokenize=False)
    head = {"qwen3": "<|im_start|>user\n", "llama": "<|begin_of_text|><|start_header_id|>user<|end_header_id|>\n\n"}
    tail = {"qwen3": "<|im_start|>assistant\n", "llama": "<|start_header_id|>assistant<|end_header_id|>\n\n"}
    assert text.startswith(head[cfg["arch"]]) and text.endswith(tail[cfg["arch"]])
    assert "<think>" not in tok.apply_chat_template(chat_messages(records[0]), add_generation_prompt=True,
                                                   tokenize=False, enable_thinking=False)


def test_bpe_round_trips_text(tiny, records):
    _, tok, _ = tiny
    for text in [quick_answer_prompt(records[0]), completion_text(records[-1]), "unseen wörds 12345 ✓\n\n x"]:
        assert tok.decode(tok(text, add_special_tokens=False)["input_ids"]) == text


def test_lr_schedules():
    peak, total = 1.0, 100
    wsd = [pretrain._lr_at(s, total, peak, "wsd") for s in range(total)]
    assert wsd[0] == pytest.approx(0.1) and wsd[9] == 1.0 and wsd[79] == 1.0
    assert wsd[-1] == pytest.approx(0.1 + 0.9 / 20) and wsd == sorted(wsd[:80]) + sorted(wsd[80:], reverse=True)
    assert {pretrain._lr_at(s, total, peak, "constant") for s in range(total)} == {1.0}
    cosine = [pretrain._lr_at(s, total, peak, "cosine") for s in range(total)]
    assert max(cosine) == 1.0 and cosine[-1] == pytest.approx(0.1, abs=1e-3)


def test_quick_answer_encoding_ends_with_eos(tiny, records):
    _, tok, _ = tiny
    ids, n_prompt = models.encode_quick(tok, records[-1])
    assert ids[-1] == tok.eos_token_id
    assert tok.decode(ids[n_prompt:-1]) == quick_answer_text(records[-1])


def test_completion_loss_matches_hf_loss(tiny, records):
    _, tok, model = tiny
    batch = pretrain._collate([models.encode_chat(tok, r) for r in records[:3]], tok.pad_token_id)
    with torch.no_grad():
        ours = pretrain.completion_loss(model, batch)
        theirs = model(**batch).loss
    assert torch.allclose(ours.loss, theirs, atol=1e-5)
    assert len(ours.targets) == (batch["labels"][:, 1:] != -100).sum() == len(ours.logits)
    with torch.no_grad():  # TRL's normaliser: the completion tokens of the whole accumulated step
        doubled = pretrain.completion_loss(model, batch, normaliser=2 * len(ours.targets))
        prompts_only = pretrain.completion_loss(model, {**batch, "labels": torch.full_like(batch["labels"], -100)})
    assert torch.allclose(doubled.loss, ours.loss / 2)
    assert prompts_only.loss.item() == 0.0


def test_base_pretrain_changes_every_parameter(tiny, records):
    cfg, tok, _ = tiny
    model = models.build_model(cfg, tok)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    stats = pretrain.base_pretrain(model, tok, records, cfg["pretrain"], progress=False)
    assert stats["steps"] == 4 and stats["final_loss"] > 0
    changed = {k for k, v in model.state_dict().items() if not torch.equal(v, before[k])}
    assert changed == set(before) - {k for k in before if "rotary" in k}


def test_base_pretrain_without_records_is_a_no_op(tiny):
    cfg, tok, model = tiny
    stats = pretrain.base_pretrain(model, tok, [], cfg["pretrain"], progress=False)
    assert stats["steps"] == 0 and stats["final_loss"] is None


def test_save_load_round_trip_same_logits(tiny, records, tmp_path):
    cfg, tok, model = tiny
    out = models.save_model(model, tok, tmp_path / "m", {"name": "x", "source": "tiny"})
    manifest = json.loads((out / models.MANIFEST).read_text())
    assert manifest["path"] == str(out) and manifest["name"] == "x"
    assert list(out.glob("*.safetensors"))
    loaded, tok2 = models.load_model_from(out, "cpu", "float32")
    ids, _ = models.encode_chat(tok2, records[0])
    assert ids == models.encode_chat(tok, records[0])[0]
    x = torch.tensor([ids])
    with torch.no_grad():
        assert torch.equal(model(x).logits, loaded(x).logits)
    assert tok2.apply_chat_template(chat_messages(records[0]), add_generation_prompt=True, tokenize=False) == \
        tok.apply_chat_template(chat_messages(records[0]), add_generation_prompt=True, tokenize=False)
    assert (tok2.pad_token, tok2.eos_token) == (tok.pad_token, tok.eos_token)
    assert loaded.generation_config.eos_token_id == tok.eos_token_id


def test_manifest_written_last_and_dir_without_it_is_absent(tiny, tmp_path, monkeypatch):
    cfg, tok, model = tiny
    written = []
    real_write_json = models.io.write_json
    monkeypatch.setattr(models.io, "write_json", lambda p, o: (written.append(sorted(x.name for x in p.parent.iterdir())),
                                                              real_write_json(p, o)))
    out = models.save_model(model, tok, tmp_path / "m", {"source": "tiny"})
    assert "config.json" in written[0] and models.MANIFEST not in written[0]
    (out / models.MANIFEST).unlink()
    assert not models.is_complete(out)
    monkeypatch.chdir(tmp_path)
    (tmp_path / "results" / "r" / "models").mkdir(parents=True)
    (out).rename(tmp_path / "results" / "r" / "models" / "m")
    with pytest.raises(models.ModelError, match="no manifest.json"):
        models.load_model({"run": "r", "models": {"m": {"dtype": "float32"}}}, "m", "cpu")


def test_hub_model_gets_a_manifest_only(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    config = tmp_path / "c.yaml"
    text = (REPO / "config" / "smoke.yaml").read_text().replace("run: smoke", "run: hubtest")
    text += "\n" if not text.endswith("\n") else ""
    import yaml

    raw = yaml.safe_load(text)
    raw["models"]["big"] = {"source": "hub", "arch": "qwen3", "hub_id": "Qwen/Qwen3-4B"}
    config.write_text(yaml.safe_dump(raw))
    assert cli.main(["base-model", "--config", str(config), "--model", "big"]) == 0
    out = tmp_path / "results" / "hubtest" / "models" / "big" / "shared"
    assert sorted(p.name for p in out.iterdir()) == [models.MANIFEST]
    assert json.loads((out / models.MANIFEST).read_text())["path"] == "Qwen/Qwen3-4B"


@pytest.mark.parametrize("per_seed, run_seed, expected", [
    (False, None, 5), (False, 3, 5),   # shared: one base model for every seed
    (True, None, 5), (True, 0, 5), (True, 3, 8),   # per seed: seed + s; seed 0 is the shared model
])
def test_pretrain_seed(per_seed, run_seed, expected):
    cfg = {**model_cfg("qwen3"), "pretrain": {"seed": 5, "per_seed": per_seed}}
    assert pretrain.pretrain_seed(cfg, run_seed) == expected


def test_base_models_per_seed_share_the_tokenizer_not_the_weights(records):
    cfg = model_cfg("llama")
    config = {"models": {"m": {**cfg, "pretrain": {**cfg["pretrain"], "per_seed": True}}}}
    general = [r for r in records if r["source"] == "synthetic-general"]
    domain = [r for r in records if r["source"] != "synthetic-general"]
    built = {s: pretrain.build_base_model(config, "m", general, domain, progress=False, seed=s) for s in (0, 1)}
    again = pretrain.build_base_model(config, "m", general, domain, progress=False, seed=1)
    (m0, tok0, man0), (m1, tok1, man1) = built[0], built[1]
    assert tok0.get_vocab() == tok1.get_vocab()
    assert [man0["config"]["pretrain"]["seed"], man1["config"]["pretrain"]["seed"]] == [0, 1]
    w0, w1, w1_again = (m.get_input_embeddings().weight for m in (m0, m1, again[0]))
    assert not torch.equal(w0, w1) and torch.equal(w1, w1_again)


def test_missing_data_is_a_clear_error(tmp_path, monkeypatch):
    from edco.config import load_config

    monkeypatch.chdir(tmp_path)
    config = load_config(REPO / "config" / "smoke.yaml")
    with pytest.raises(models.ModelError, match="make-data"):
        pretrain.build_base_model(config, "qwen3", progress=False)


_REAL: dict = {}  # loading the real tokenizers takes seconds: once per session


@pytest.fixture
def real_tokenizer(shared_root, request):
    arch = request.param
    if arch not in _REAL:
        path = shared_root / "tokenizers" / {"qwen3": "qwen3", "llama": "llama3"}[arch]
        _REAL[arch] = models.build_tokenizer(model_cfg(arch, kind="path", path=str(path)), [])
    return arch, _REAL[arch]


@pytest.mark.shared
@pytest.mark.parametrize("real_tokenizer", ARCHS, indirect=True)
def test_real_tokenizers_load_and_tiny_models_run(real_tokenizer, records):
    arch, tok = real_tokenizer
    expected = {"qwen3": (151669, "<|im_end|>", "<|endoftext|>", 151645),
                "llama": (128256, "<|eot_id|>", "<|finetune_right_pad_id|>", 128009)}[arch]
    assert (len(tok), tok.eos_token, tok.pad_token, tok.eos_token_id) == expected
    if arch == "llama":
        assert tok("hi")["input_ids"][0] == tok.convert_tokens_to_ids("<|begin_of_text|>")
    for record in records[:5]:
        assert_prefix_safe(tok, record)
    model = models.build_model(model_cfg(arch), tok)
    ids, _ = models.encode_chat(tok, records[0])
    with torch.no_grad():
        logits = model(torch.tensor([ids])).logits
    assert logits.shape == (1, len(ids), len(tok)) and torch.isfinite(logits).all()


def test_models_load_in_the_configured_dtype_and_bf16_runs_on_cpu(tiny, records, tmp_path, monkeypatch):
    """models.<name>.dtype is honoured: the base model (load_model) and checkpoints
    (load_model_from) come in that dtype, and a bfloat16 model scores and generates on CPU."""
    _, tok, model = tiny
    monkeypatch.chdir(tmp_path)
    models.save_model(model, tok, layout.model_dir("r", "m"), {"source": "tiny"})
    config = {"run": "r", "models": {"m": {"dtype": "bfloat16"}}}
    bf16, tok2 = models.load_model(config, "m", "cpu")
    assert {p.dtype for p in bf16.parameters()} == {torch.bfloat16}
    config["models"]["m"]["dtype"] = "float32"
    assert {p.dtype for p in models.load_model(config, "m", "cpu")[0].parameters()} == {torch.float32}
    ids, _ = models.encode_chat(tok2, records[0])
    with torch.no_grad():
        full, half = model(torch.tensor([ids])).logits, bf16(torch.tensor([ids])).logits
    assert half.dtype == torch.bfloat16 and torch.allclose(full, half.float(), atol=0.1)
    out = bf16.generate(torch.tensor([ids]), max_new_tokens=3, do_sample=False, pad_token_id=tok2.pad_token_id)
    assert out.shape[1] > len(ids)
