"""conda cannot run here: check that environment.yml and envs/*.yaml parse and carry the
same pins as the Python package (pyproject.toml), that the GPU environment carries vLLM and a
CUDA torch, and that the small environment's rules import nothing it lacks."""

from __future__ import annotations

import re
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parents[1]
# The suite's environments; envs/snakemake.yaml (the controller's) is checked on its own below.
ENV_FILES = [REPO / "environment.yml", *sorted(p for p in (REPO / "envs").glob("*.yaml") if p.name != "snakemake.yaml")]
# The model rules' environments (CPU and GPU) and the whole suite carry every pin; the small
# environment of the data/report rules carries a subset, each pin still the package's.
LIGHT_ENV = REPO / "envs" / "light.yaml"
GPU_ENV = REPO / "envs" / "gpu.yaml"


def requirement_name(req: str) -> str:
    for sep in ("==", ">=", "<=", "~=", "[", ";", " "):
        req = req.split(sep)[0]
    return req.strip().lower().replace("_", "-")


def pyproject() -> dict:
    return tomllib.loads((REPO / "pyproject.toml").read_text())["project"]


def package_pins() -> dict[str, str]:
    project = pyproject()
    deps = project["dependencies"] + project["optional-dependencies"]["vllm"]
    return {requirement_name(d): d.replace(" ", "") for d in deps}


def env_pip_requirements(path: Path) -> list[str]:
    env = yaml.safe_load(path.read_text())
    pip = [d["pip"] for d in env["dependencies"] if isinstance(d, dict) and "pip" in d]
    assert pip, f"{path.name}: no pip section"
    return [r.split("#")[0].strip() for r in pip[0]]


def requirements(path: Path) -> list[str]:
    return [r for r in env_pip_requirements(path) if not r.startswith("-")]


@pytest.mark.parametrize("path", ENV_FILES, ids=lambda p: p.name)
def test_env_pins_match_the_package(path):
    pins = package_pins()
    for req in requirements(path):
        name = requirement_name(req)
        if name in pins:
            assert req.replace(" ", "") == pins[name], f"{path.name}: {req} != pyproject {pins[name]}"
    if path == LIGHT_ENV:
        return
    gpu_only = {requirement_name(d) for d in pyproject()["optional-dependencies"]["vllm"]}  # vLLM, bitsandbytes
    expected = set(pins) - (gpu_only if path != GPU_ENV else set())
    missing = expected - {requirement_name(r) for r in requirements(path)}
    assert not missing, f"{path.name} lacks {sorted(missing)}"


def test_only_the_gpu_env_has_vllm_and_a_cuda_torch():
    cpu_index = "--extra-index-url https://download.pytorch.org/whl/cpu"
    for path in ENV_FILES:
        names = {requirement_name(r) for r in requirements(path)}
        if path == GPU_ENV:
            assert "vllm" in names and cpu_index not in env_pip_requirements(path), path.name
        elif "torch" in names:  # a CPU torch: the CPU index, never a multi-GB CUDA build
            assert "vllm" not in names and cpu_index in env_pip_requirements(path), path.name


def test_light_env_has_no_model_stack():
    names = {requirement_name(r) for r in requirements(LIGHT_ENV)}
    assert not names & {"torch", "transformers", "trl", "lm-eval", "accelerate", "peft", "vllm"}


def test_light_rules_import_no_model_stack():
    """What make-data, table, plots and the config page import (and the strategy registry)
    stays inside envs/light.yaml: no torch, no transformers."""
    code = (
        "import sys, edco.cli, edco.data, edco.synthetic, edco.report, edco.config\n"
        "from edco.curriculum import available_strategies; available_strategies()\n"
        "print(sorted(m for m in ('torch', 'transformers', 'trl', 'lm_eval', 'accelerate', 'peft') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


def test_rules_name_their_environment():
    """Every rule has a `conda:` directive, and the environments it names exist."""
    sources = [REPO / "Snakefile", *sorted((REPO / "rules").glob("*.smk")), *sorted((REPO / "baselines").glob("*.smk"))]
    for path in sources:
        text = path.read_text()
        for block in re.split(r"^\s*rule \w+:\n", text, flags=re.M)[1:]:
            block = re.split(r"^\s*rule \w+:\n", block, flags=re.M)[0]
            if "shell:" in block or "script:" in block:
                assert re.search(r"^\s+conda:", block, re.M), f"{path.name}: a rule without conda:"
    common = (REPO / "rules" / "common.smk").read_text()
    for env in re.findall(r'"\.\./(envs/[\w.-]+\.yaml)"', common):
        assert (REPO / env).is_file(), env


def test_torch_is_pinned():
    assert package_pins()["torch"] == "torch==2.13.0"
    assert package_pins()["vllm"] == "vllm==0.31.0"
    assert package_pins()["bitsandbytes"] == "bitsandbytes==0.50.2"  # the paper config's 8-bit AdamW


CONTROLLER_ENV = REPO / "envs" / "snakemake.yaml"


def test_controller_env_has_snakemake_and_the_slurm_plugin_only():
    names = {requirement_name(r) for r in requirements(CONTROLLER_ENV)}
    assert {"snakemake", "snakemake-executor-plugin-slurm"} <= names
    assert not names & {"torch", "transformers", "trl", "lm-eval", "scipy", "pandas", "seaborn", "numpy"}
    snakemake = next(r for r in requirements(CONTROLLER_ENV) if requirement_name(r) == "snakemake")
    assert snakemake == package_pins()["snakemake"]  # the jobs' Snakemake and the controller's agree
    profile = yaml.safe_load((REPO / "profiles" / "slurm" / "config.yaml").read_text())
    assert profile["executor"] == "slurm" and profile["software-deployment-method"] == "conda"


def test_slurm_profile_dry_runs_with_the_real_plugin_in_the_controller_env(controller_venv, fake_conda_env):
    """The submit host's view: Snakemake parses the Snakefile with the controller env's packages
    only (no torch, scipy, pandas) and plans the paper config through the real SLURM executor."""
    result = subprocess.run([str(controller_venv / "bin" / "snakemake"), "-n", "--profile", "profiles/slurm"],
                            cwd=REPO, env=fake_conda_env, capture_output=True, text=True, timeout=600)
    out = result.stdout + result.stderr
    assert result.returncode == 0, out[-3000:]
    assert re.search(r"^train\s+144$", out, re.M), out[-3000:]
