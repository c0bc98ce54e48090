"""An installed wheel works, not only an editable checkout: the schema and the lm-eval task
YAMLs are package data found with importlib.resources. The wheel is built offline from a copy
of the sources (so the checkout gets no build/ or egg-info), installed into a temporary
directory, and run from another directory: the edco imported there must be the installed one."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
PACKAGE_DATA = ["edco/schema.yaml", "edco/tasks/edco_mcq/_edco_mcq.yaml", "edco/tasks/edco_mcq/edco_mcq_gen.yaml",
                "edco/tasks/edco_mcq/edco_mcq_ll.yaml", "edco/tasks/edco_mcq/utils.py"]


def run(args: list[str], cwd: Path, env: dict | None = None) -> str:
    result = subprocess.run(args, cwd=cwd, env=env, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, f"{' '.join(args)}\n{result.stdout[-2000:]}\n{result.stderr[-3000:]}"
    return result.stdout


@pytest.fixture(scope="module")
def installed(tmp_path_factory) -> tuple[Path, Path]:
    """(the wheel, the directory it is installed into)."""
    tmp = tmp_path_factory.mktemp("wheel")
    src = tmp / "src"
    src.mkdir()
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(REPO / name, src / name)
    for package in ("edco", "baselines"):
        shutil.copytree(REPO / package, src / package, ignore=shutil.ignore_patterns("__pycache__"))
    pip = [sys.executable, "-m", "pip", "--disable-pip-version-check", "--no-input"]
    run([*pip, "wheel", "--no-deps", "--no-build-isolation", "-q", ".", "-w", str(tmp / "dist")], cwd=src)
    (wheel,) = (tmp / "dist").glob("edco_bench-*.whl")
    run([*pip, "install", "--no-deps", "--no-compile", "-q", "--target", str(tmp / "site"), str(wheel)], cwd=tmp)
    return wheel, tmp / "site"


def test_the_wheel_holds_the_package_data(installed):
    wheel, _ = installed
    names = set(zipfile.ZipFile(wheel).namelist())
    assert set(PACKAGE_DATA) <= names
    assert {"edco/trainer/__init__.py", "baselines/edco.py"} <= names


def test_the_installed_package_runs_from_another_directory(installed, tmp_path, fixtures_dir):
    _, site = installed
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    env = {**os.environ, "PYTHONPATH": str(site)}
    assert "validate-data" in run([sys.executable, "-m", "edco", "--help"], cwd=elsewhere, env=env)
    shutil.copy(REPO / "config" / "smoke.yaml", elsewhere / "my.yaml")
    code = ("import importlib.resources, edco, baselines; from edco.config import load_config; "
            "config = load_config('my.yaml'); "
            "tasks = importlib.resources.files('edco').joinpath('tasks').joinpath('edco_mcq'); "
            "print(edco.__file__, baselines.__file__, config['run'], tasks.joinpath('edco_mcq_gen.yaml').is_file())")
    edco_file, baselines_file, run_name, tasks_found = run([sys.executable, "-c", code], cwd=elsewhere, env=env).split()
    assert Path(edco_file).is_relative_to(site) and Path(baselines_file).is_relative_to(site)  # not the checkout
    assert (run_name, tasks_found) == ("smoke", "True")
    assert "ucb_bandit" in run([sys.executable, "-m", "edco", "strategies"], cwd=elsewhere, env=env)
    shutil.copy(fixtures_dir / "three_options.jsonl", elsewhere / "q.jsonl")
    assert run([sys.executable, "-m", "edco", "validate-data", "q.jsonl"], cwd=elsewhere, env=env).startswith("ok ")
