"""GPU-only settings against the machine a job runs on.

``python -m edco train|score|evaluate`` call ``check_gpu_settings`` before any model or data
is touched, in the job's own environment (the one that has, or lacks, CUDA and vLLM), so a
GPU setting on a machine without one stops in the first second with every offending key
named. torch is imported only when a setting asks for a GPU: the CPU configs pay nothing.
"""

from __future__ import annotations

from edco.config import ConfigError
from edco.curriculum import strategy_cost
from edco.devices import no_gpu_reason, vllm_problem


def _vllm_settings(config: dict) -> list[str]:
    """The settings that would start a vLLM engine in this grid."""
    grid = config["grid"]
    wanted = []
    scores = any(strategy_cost(config, s).scores_with for s in grid["strategies"])  # as each strategy declares
    if config["estimator"]["backend"] == "vllm" and (config["estimator_bench"]["enabled"] or scores):
        wanted.append("estimator.backend: vllm")
    if "rl" in grid["paradigms"] and config["rl"]["use_vllm"]:
        wanted.append("rl.use_vllm: true")
    return wanted


def gpu_problems(config: dict) -> list[str]:
    """The config's GPU-only settings that cannot run on this machine, each naming its key."""
    wants_vllm = _vllm_settings(config)
    cuda = config["compute"]["device"] == "cuda"
    gpus = {name: config["models"][name]["gpus"] for name in config["grid"]["models"]}
    if not (wants_vllm or cuda or any(g > 1 for g in gpus.values())):
        return []
    import torch

    visible = torch.cuda.device_count() if torch.cuda.is_available() else 0
    problems = []
    if cuda and not visible:
        problems.append(f"compute.device: cuda ({no_gpu_reason()})")
    for setting in wants_vllm:
        # TRL's colocated engine shares the policy's device; the scoring engine is a process of its own.
        problem = vllm_problem(config["compute"]["device"] if setting.startswith("rl.") else None)
        if problem:
            problems.append(f"{setting} ({problem})")
    problems += [f"models.{name}.gpus: {n} ({visible} GPUs visible)" for name, n in gpus.items() if n > max(visible, 1)]
    return problems


def check_gpu_settings(config: dict, source: str) -> None:
    """Stop, in one line naming every offending key, when the config needs GPUs or vLLM this
    machine lacks."""
    problems = gpu_problems(config)
    if problems:
        raise ConfigError(
            f"{source}: GPU-only settings cannot run on this machine: {'; '.join(problems)}. "
            "Run on a GPU node (or --profile profiles/slurm), or use a CPU config (config/smoke.yaml)"
        )
