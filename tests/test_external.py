"""What a run needs from outside the checkout (edco/external.py), checked before the DAG starts:
a config naming missing staged files, gated Hub ids without a token, an uncached id offline and a
missing tokenizer directory gets every one named in one message; a cached id, a token or a file
that is there is no problem; a job that needs none of them is not stopped; an old or absent
NVIDIA driver is named (a fake nvidia-smi); and a real Snakemake run stops before any job."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from edco import external
from edco.config import validate_config

REPO = Path(__file__).resolve().parents[1]
HF_VARIABLES = ("HF_HOME", "HF_HUB_CACHE", "HUGGINGFACE_HUB_CACHE", "HF_TOKEN", "HUGGING_FACE_HUB_TOKEN",
                "HF_TOKEN_PATH", "HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE", "HF_DATASETS_OFFLINE", "XDG_CACHE_HOME")


def missing_things_raw(tmp_path: Path) -> dict:
    """config/local.yaml, but: law from staged files that are not there, medicine from a gated hub
    dataset, qwen3 on a tokenizer directory that is not there, a gated hub model and a plain one."""
    raw = yaml.safe_load((REPO / "config" / "local.yaml").read_text())
    raw["run"] = "external_refused"
    raw["grid"].update(domains=["medicine", "law"], models=["qwen3", "gated", "open"])
    raw["data"]["domain_sources"] = {"medicine": "hub"}
    raw["data"]["local"] = {"root": str(tmp_path / "staged"),
                            "domains": {"law": {"train": ["law/train.jsonl"], "test": ["law/test.jsonl"]}}}
    raw["data"]["hub"] = {"domains": {"medicine": [{"id": "org/gated-qa", "format": "medqa_4options", "gated": True}]}}
    raw["models"]["qwen3"]["tokenizer"] = {"kind": "path", "path": str(tmp_path / "tokenizers" / "qwen3")}
    size = {"hidden_size": 64, "num_hidden_layers": 2, "num_attention_heads": 4}
    raw["models"]["gated"] = {"source": "hub", "arch": "llama", "hub_id": "org/gated-model", "gated": True, "size": size}
    raw["models"]["open"] = {"source": "hub", "arch": "qwen3", "hub_id": "org/open-model", "size": size}
    return raw


def hf_environ(tmp_path: Path, **extra) -> dict:
    """A Hugging Face environment of its own: empty cache, no token, online."""
    return {"HOME": str(tmp_path / "home"), "HF_HOME": str(tmp_path / "hf"), **extra}


def cache_snapshot(environ: dict, kind: str, hub_id: str) -> None:
    (external.hub_cache(environ) / f"{kind}s--{hub_id.replace('/', '--')}" / "snapshots" / "abc123").mkdir(parents=True)


@pytest.fixture
def config(tmp_path):
    return validate_config(missing_things_raw(tmp_path), "missing.yaml")


def test_every_missing_thing_is_named_with_what_to_do(config, tmp_path):
    found = external.needs(config, hf_environ(tmp_path))
    problems = [need.problem for need in found]
    assert len(problems) == 4, problems
    hub_data, staged, tokenizer, model = problems
    assert staged.startswith("data.local.domains.law: ") and str(tmp_path / "staged" / "law" / "train.jsonl") in staged
    assert str(tmp_path / "staged" / "law" / "test.jsonl") in staged and "../shared/data/README.md" in staged
    assert hub_data.startswith("data.hub.domains.medicine[0]: dataset org/gated-qa is gated and no Hub token is set")
    assert "https://huggingface.co/datasets/org/gated-qa" in hub_data and "hf auth login" in hub_data
    assert tokenizer.startswith(f"models.qwen3.tokenizer.path: {tmp_path / 'tokenizers' / 'qwen3'} is not a directory")
    assert model.startswith("models.gated: model org/gated-model is gated and no Hub token is set")
    assert "https://huggingface.co/meta" not in model and "https://huggingface.co/org/gated-model" in model
    text = external.message(problems, "missing.yaml")
    assert text.startswith("missing.yaml: this run needs 4 thing(s)") and all(f"  - {p}" in text for p in problems)


def test_staged_files_a_token_or_the_cache_satisfy_them(config, tmp_path):
    for name in ("train", "test"):
        (tmp_path / "staged" / "law").mkdir(parents=True, exist_ok=True)
        (tmp_path / "staged" / "law" / f"{name}.jsonl").write_text("{}\n")
    (tmp_path / "tokenizers" / "qwen3").mkdir(parents=True)
    environ = hf_environ(tmp_path)
    cache_snapshot(environ, "dataset", "org/gated-qa")
    assert [n.problem.split(":")[0] for n in external.needs(config, environ)] == ["models.gated"]
    assert external.needs(config, {**environ, "HF_TOKEN": "hf_x"}) == []
    token_file = tmp_path / "hf" / "token"  # what `hf auth login` writes
    token_file.write_text("hf_x\n")
    assert external.needs(config, environ) == []
    token_file.write_text("\n")
    moved = {**environ, "HF_TOKEN_PATH": str(tmp_path / "elsewhere")}
    (tmp_path / "elsewhere").write_text("hf_y")
    assert external.needs(config, environ) != [] and external.needs(config, moved) == []


def test_offline_an_uncached_id_is_missing_gated_or_not(config, tmp_path):
    environ = hf_environ(tmp_path, HF_HUB_OFFLINE="1", HF_TOKEN="hf_x")
    problems = [n.problem for n in external.needs(config, environ)
                if n.problem.startswith(("models.gated", "models.open", "data.hub"))]
    assert [p.split(":")[0] for p in problems] == ["data.hub.domains.medicine[0]", "models.gated", "models.open"]
    assert "is not in the Hugging Face cache" in problems[2] and "hf download org/open-model" in problems[2]
    assert "hf download --repo-type dataset org/gated-qa" in problems[0]
    cache_snapshot(environ, "model", "org/open-model")
    assert "models.open" not in " ".join(n.problem for n in external.needs(config, environ))
    datasets_online = {**environ, "HF_DATASETS_OFFLINE": "0"}  # datasets' own switch wins for datasets
    assert "data.hub" not in " ".join(n.problem for n in external.needs(config, datasets_online))
    prepared = tmp_path / "hf" / "datasets" / "org___gated-qa" / "default" / "0.0.0" / "f00d"  # read offline
    prepared.mkdir(parents=True)
    assert "data.hub" not in " ".join(n.problem for n in external.needs(config, environ))


@pytest.mark.parametrize("hub_id", ["netop/TeleQnA", "GBaker/MedQA-USMLE-4-options", "hails/agieval-jec-qa-kd",
                                    "HTTPServer/ABCDataset", "squad"])
def test_the_datasets_cache_name_is_datasets_own(hub_id, tmp_path):
    """The directory ``datasets`` prepares a hub dataset in, named as ``datasets`` names it."""
    naming = pytest.importorskip("datasets.naming")
    *namespace, name = hub_id.split("/")
    expected = tmp_path / "___".join([*namespace, naming.camelcase_to_snakecase(name)])
    assert external.datasets_cache_dir(hub_id, {"HF_DATASETS_CACHE": str(tmp_path)}) == expected


def test_only_jobs_that_need_a_missing_thing_are_stopped(config, tmp_path):
    found = external.needs(config, hf_environ(tmp_path))
    first_words = lambda jobs: [p.split(":")[0] for p in external.blocking(found, jobs)]  # noqa: E731
    assert first_words([("data", {"domain": "communication"}), ("resolved_config", {})]) == []
    assert first_words([("data", {"domain": "law"})]) == ["data.local.domains.law"]
    assert first_words([("base_model", {"model": "gated", "base": "shared"})]) == []  # a hub manifest needs nothing
    assert first_words([("base_model", {"model": "qwen3", "base": "shared"})]) == ["models.qwen3.tokenizer.path"]
    train = {"domain": "law", "model": "gated", "paradigm": "sft", "strategy": "random", "seed": "0"}
    assert first_words([("train", train), ("evaluate_base", {**train, "model": "open"})]) == ["models.gated"]


def fake_nvidia_smi(tmp_path: Path, output: str, status: int = 0) -> str:
    """A PATH whose nvidia-smi prints ``output``."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir(exist_ok=True)
    script = bin_dir / "nvidia-smi"
    script.write_text(f"#!/bin/sh\nprintf '{output}'\nexit {status}\n")
    script.chmod(0o755)
    return str(bin_dir)


@pytest.mark.parametrize("output, status, expected", [
    ("580.65.06\\n580.65.06\\n", 0, None),
    ("580.65.06\\n535.104.05\\n", 0, "NVIDIA driver 535.104.05 is older than 580"),  # the oldest one
    ("535.104.05\\n", 0, "NVIDIA driver 535.104.05 is older than 580, which the CUDA 13 build of torch"),
    ("", 9, "nvidia-smi cannot read the driver"),
    ("No devices were found\\n", 0, "nvidia-smi names no GPU (No devices were found)"),
])
def test_the_driver_is_read_from_nvidia_smi(tmp_path, monkeypatch, output, status, expected):
    monkeypatch.setenv("PATH", fake_nvidia_smi(tmp_path, output, status))
    problem = external.driver_problem()
    assert problem is None if expected is None else expected in problem


def test_no_driver_is_named_for_a_local_gpu_run_only(tmp_path, monkeypatch):
    monkeypatch.setenv("PATH", str(tmp_path))  # no nvidia-smi
    assert "no nvidia-smi on this machine" in external.driver_problem()
    raw = yaml.safe_load((REPO / "config" / "smoke.yaml").read_text())
    raw["compute"]["device"] = "cuda"
    gpu = validate_config(raw, "gpu.yaml")
    environ = hf_environ(tmp_path)
    [driver] = external.needs(gpu, environ)
    assert driver.problem.startswith("compute.device: cuda: no nvidia-smi") and driver.rules == external.MODEL_RULES
    assert external.needs(gpu, environ, local_exec=False) == external.needs(gpu, environ, driver=False) == []


def test_the_envs_gpu_torch_is_the_build_the_driver_figure_is_for():
    """GPU_ENV_MIN_DRIVER is the CUDA 13 figure of edco.devices for PyPI's torch 2.13.0: a new pin
    in envs/gpu.yaml must revisit it."""
    from edco.devices import MIN_DRIVER

    assert "torch==2.13.0" in (REPO / "envs" / "gpu.yaml").read_text()
    assert MIN_DRIVER[external.GPU_ENV_CUDA] == external.GPU_ENV_MIN_DRIVER


@pytest.mark.parametrize("environ", [
    {},
    {"XDG_CACHE_HOME": "/x/cache"},
    {"HF_HOME": "~/hf", "XDG_CACHE_HOME": "/x/cache"},
    {"HF_HOME": "/h", "HUGGINGFACE_HUB_CACHE": "/legacy"},
    {"HF_HOME": "/h", "HUGGINGFACE_HUB_CACHE": "/legacy", "HF_HUB_CACHE": "/new", "HF_TOKEN_PATH": "/t/token"},
])
def test_cache_and_token_paths_are_huggingface_hubs(environ, tmp_path, monkeypatch):
    """Our standard-library copy of the paths equals huggingface_hub's own, for the same variables."""
    pytest.importorskip("huggingface_hub")
    monkeypatch.setenv("HOME", str(tmp_path))  # "~" for both
    env = {k: v for k, v in os.environ.items() if k not in HF_VARIABLES} | environ
    code = "from huggingface_hub import constants as c; print(c.HF_HUB_CACHE); print(c.HF_TOKEN_PATH)"
    cache, token = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True,
                                  check=True).stdout.splitlines()
    assert (str(external.hub_cache(env)), str(external.token_path(env))) == (cache, token)


# --------------------------------------------------------------------------- the workflow
def test_a_real_run_stops_before_any_job_naming_every_missing_thing_and_a_dry_run_warns(tmp_path):
    path = tmp_path / "missing.yaml"
    path.write_text(yaml.safe_dump(missing_things_raw(tmp_path)))
    env = {k: v for k, v in os.environ.items() if k not in HF_VARIABLES} | hf_environ(tmp_path)
    try:
        real = subprocess.run([sys.executable, "-m", "snakemake", "--cores", "1", "--configfile", str(path)],
                              cwd=REPO, env=env, capture_output=True, text=True, timeout=300)
        out = real.stdout + real.stderr
        assert real.returncode != 0 and "Finished job" not in out
        assert f"{path}: this run needs 4 thing(s) it cannot find on this machine" in out, out
        for key in ("data.local.domains.law:", "data.hub.domains.medicine[0]:", "models.qwen3.tokenizer.path:",
                    "models.gated:"):
            assert f"  - {key}" in out
        assert not (REPO / "results" / "external_refused").exists()
        dry = subprocess.run([sys.executable, "-m", "snakemake", "-n", "--quiet", "rules", "--configfile", str(path)],
                             cwd=REPO, env=env, capture_output=True, text=True, timeout=300)
        assert dry.returncode == 0, dry.stderr
        assert "Warning: " in dry.stderr and "A real run stops before the first job that needs one of them." in dry.stderr
    finally:
        shutil.rmtree(REPO / "results" / "external_refused", ignore_errors=True)
