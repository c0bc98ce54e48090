"""Fixtures shared by every test module. Tests never touch the network."""

from __future__ import annotations

import importlib.util
import os
from pathlib import Path

import pytest
from vllm_support import gate_vllm_tests, smollm2_fp32, vllm_cpu, vllm_env  # noqa: F401  (fixtures of the vllm tests)

# Any accidental hub call fails fast instead of downloading.
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
os.environ.setdefault("HF_HUB_OFFLINE", "1")

FIXTURES = Path(__file__).resolve().parent / "fixtures"
BENCHMARKS = Path(__file__).resolve().parents[1] / "benchmarks"


def benchmark_script(name: str):
    """A script of benchmarks/ (not a package) imported as a module, to test its functions."""
    spec = importlib.util.spec_from_file_location(name, BENCHMARKS / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.hookimpl(trylast=True)  # after -m has deselected: the plain pytest's "not vllm" asks for none
def pytest_collection_modifyitems(config, items):
    gate_vllm_tests(items)  # tests/vllm_support.py: skipped without vllm, with the command that builds it


@pytest.fixture(autouse=True)
def _no_dispatch_knob_leaks():
    """A test that sets a CPU dispatch variable (edco/portable.py KNOBS: OMP_NUM_THREADS,
    ATEN_CPU_CAPABILITY, ...) in this process must undo it: every later test and every process
    they start would compute on other code paths."""
    from edco.portable import KNOBS

    before = {knob: os.environ.get(knob) for knob in KNOBS}
    yield
    after = {knob: os.environ.get(knob) for knob in KNOBS}
    leaked = {knob: value for knob, value in after.items() if value != before[knob]}
    for knob in leaked:  # restore, so one leak fails one test, not the rest of the session
        if before[knob] is None:
            del os.environ[knob]
        else:
            os.environ[knob] = before[knob]
    assert not leaked, f"the test left CPU dispatch variables changed: {leaked}"


@pytest.fixture(scope="session")
def controller_venv(tmp_path_factory) -> Path:
    """The SLURM controller's environment (envs/snakemake.yaml's pip pins: Snakemake and the real
    executor plugin) as a venv, built once per session by profiles/slurm/controller-venv.sh
    (PyPI, ~20 s) for tests/test_envs.py and tests/test_slurm.py alike."""
    import subprocess

    venv = tmp_path_factory.mktemp("controller") / "venv"
    script = Path(__file__).resolve().parents[1] / "profiles" / "slurm" / "controller-venv.sh"
    result = subprocess.run(["bash", str(script), str(venv)], capture_output=True, text=True, timeout=900)
    assert result.returncode == 0, result.stdout + result.stderr[-3000:]
    return venv


@pytest.fixture
def fixtures_dir() -> Path:
    """tests/fixtures/: small hand-made JSONL files and hub-shaped rows."""
    return FIXTURES


@pytest.fixture
def shared_root() -> Path:
    """../shared (real staged data), or $EDCO_SHARED (a git worktree elsewhere); skipped outside
    the development workspace, fatal in CI."""
    return shared_path()


def shared_path() -> Path:
    """``shared_root`` for a fixture of a wider scope."""
    root = Path(os.environ.get("EDCO_SHARED") or Path(__file__).resolve().parents[1].parent / "shared")
    if not root.is_dir():
        if os.environ.get("CI") == "true":
            pytest.fail(f"{root} is required in CI")
        pytest.skip("../shared not present (only in the development workspace / CI)")
    return root


FAKE_CONDA = """#!/bin/sh
# conda is not installable here. profiles/slurm deploys the jobs' environments with conda, so
# Snakemake asks conda three things while planning (a dry run creates no environment); this
# stand-in answers those and refuses anything else, so a test notices when more is asked.
case "$*" in
  "info --json") echo '{"conda_prefix": "%(prefix)s", "platform": "linux-64", "envs_dirs": ["%(prefix)s/envs"]}' ;;
  "--version") echo "conda 24.11.3" ;;
  "config --get channel_priority --json") echo '{"get": {"channel_priority": "strict"}}' ;;
  *) echo "stand-in conda: unexpected call: $*" >&2; exit 1 ;;
esac
"""


@pytest.fixture
def fake_conda_env(tmp_path) -> dict:
    """os.environ with a stand-in `conda` first on PATH (see FAKE_CONDA)."""
    bin_dir = tmp_path / "fake-conda" / "bin"
    bin_dir.mkdir(parents=True)
    conda = bin_dir / "conda"
    conda.write_text(FAKE_CONDA % {"prefix": tmp_path / "fake-conda"})
    conda.chmod(0o755)
    return {**os.environ, "PATH": f"{bin_dir}{os.pathsep}{os.environ['PATH']}"}
