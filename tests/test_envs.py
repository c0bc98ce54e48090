"""conda cannot run here: check that environment.yml and envs/*.yaml parse and carry the
same pins as the Python package (pyproject.toml)."""

from __future__ import annotations

import tomllib
from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parents[1]
ENV_FILES = [REPO / "environment.yml", *sorted((REPO / "envs").glob("*.yaml"))]


def requirement_name(req: str) -> str:
    for sep in ("==", ">=", "<=", "~=", "[", ";", " "):
        req = req.split(sep)[0]
    return req.strip().lower().replace("_", "-")


def package_pins() -> dict[str, str]:
    deps = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["dependencies"]
    return {requirement_name(d): d.replace(" ", "") for d in deps}


def env_pip_requirements(path: Path) -> list[str]:
    env = yaml.safe_load(path.read_text())
    pip = [d["pip"] for d in env["dependencies"] if isinstance(d, dict) and "pip" in d]
    assert pip, f"{path.name}: no pip section"
    return [r for r in pip[0] if not r.startswith("-")]


@pytest.mark.parametrize("path", ENV_FILES, ids=lambda p: p.name)
def test_env_pins_match_the_package(path):
    pins = package_pins()
    for req in env_pip_requirements(path):
        name = requirement_name(req)
        if name in pins:
            assert req.replace(" ", "") == pins[name], f"{path.name}: {req} != pyproject {pins[name]}"
    missing = set(pins) - {requirement_name(r) for r in env_pip_requirements(path)}
    assert not missing, f"{path.name} lacks {sorted(missing)}"


def test_torch_is_pinned():
    assert package_pins()["torch"] == "torch==2.13.0"
