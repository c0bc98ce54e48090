"""GPU-only settings on a machine without a GPU (edco/gpu.py): every offending key named, in
one line, before a train/score/evaluate job loads anything; CPU configs pass untouched."""

from __future__ import annotations

import copy
import importlib.util
from pathlib import Path

import pytest
import torch
import yaml

from edco import cli
from edco.config import ConfigError, load_config, validate_config
from edco.gpu import check_gpu_settings, gpu_problems

REPO = Path(__file__).resolve().parents[1]
SMOKE = load_config(REPO / "config" / "smoke.yaml")


@pytest.fixture
def no_gpu_no_vllm(monkeypatch):
    real_find_spec = importlib.util.find_spec
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "vllm" else real_find_spec(name, *a))


def test_cpu_configs_need_nothing(no_gpu_no_vllm):
    assert gpu_problems(SMOKE) == []
    assert gpu_problems(load_config(REPO / "config" / "cpu_study.yaml")) == []


def test_every_gpu_setting_is_named(no_gpu_no_vllm):
    config = copy.deepcopy(SMOKE)
    config["compute"]["device"] = "cuda"
    config["estimator"]["backend"] = "vllm"
    config["rl"]["use_vllm"] = True
    config["models"]["qwen3"]["gpus"] = 2
    assert gpu_problems(validate_config(config)) == [
        f"compute.device: cuda (no CUDA GPU is visible: torch {torch.__version__} is a CPU build; run in envs/gpu.yaml)",
        "estimator.backend: vllm (the vllm package is not installed: pip install 'edco-bench[vllm]')",
        "rl.use_vllm: true (the vllm package is not installed: pip install 'edco-bench[vllm]')",
        "models.qwen3.gpus: 2 (0 GPUs visible)",
    ]
    with pytest.raises(ConfigError) as err:
        check_gpu_settings(validate_config(config), "my.yaml")
    assert "\n" not in str(err.value) and str(err.value).startswith("my.yaml: GPU-only settings cannot run")


def test_vllm_settings_count_only_where_they_start_an_engine(no_gpu_no_vllm):
    config = copy.deepcopy(SMOKE)
    config["rl"]["use_vllm"] = True
    config["grid"]["paradigms"] = ["sft"]  # no GRPO rollouts: rl.use_vllm starts nothing
    config["estimator"]["backend"] = "vllm"
    config["estimator_bench"]["enabled"] = False
    config["grid"]["strategies"] = ["random", "length"]  # nothing scores with a model
    assert gpu_problems(validate_config(config)) == []
    config["grid"]["strategies"] = ["random", "edco"]
    assert gpu_problems(validate_config(config)) == [
        "estimator.backend: vllm (the vllm package is not installed: pip install 'edco-bench[vllm]')"]


def test_a_job_stops_before_loading_anything(no_gpu_no_vllm, tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)  # no data, no model: a job that got past the check would fail differently
    raw = yaml.safe_load((REPO / "config" / "smoke.yaml").read_text())
    raw["compute"]["device"] = "cuda"
    path = tmp_path / "cuda.yaml"
    path.write_text(yaml.safe_dump(raw))
    argv = ["--config", str(path), "--domain", "law", "--model", "qwen3"]
    for command in (["train", *argv, "--paradigm", "sft", "--strategy", "random", "--seed", "0"],
                    ["score", *argv, "--estimator", "prefix", "--out", "s.parquet"],
                    ["evaluate", *argv, "--checkpoint", "base"]):
        assert cli.main(command) == 1
        err = capsys.readouterr().err
        assert err.startswith(f"edco {command[0]}: error: {path}: GPU-only settings cannot run on this machine: "
                              f"compute.device: cuda (no CUDA GPU is visible"), err
    assert not (tmp_path / "results").exists()


def test_a_cuda_build_without_a_gpu_names_the_driver_it_needs(no_gpu_no_vllm, monkeypatch):
    """PyPI's torch 2.13.0 is a CUDA 13 build: on a driver older than 580 it sees no GPU, and
    the message says so (the CPU build here stands in, its version.cuda set as the CUDA wheel's)."""
    config = copy.deepcopy(SMOKE)
    config["compute"]["device"] = "cuda"
    monkeypatch.setattr(torch.version, "cuda", "13.0")
    problem = gpu_problems(validate_config(config))[0]
    assert problem == (f"compute.device: cuda (no CUDA GPU is visible: torch {torch.__version__} is built for "
                       "CUDA 13.0, which needs an NVIDIA driver >= 580 (nvidia-smi shows the node's))")
