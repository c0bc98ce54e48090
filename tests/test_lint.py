"""Workflow lint and format, as CI runs them (CI runs pytest): `snakemake --lint` has no
findings on the shipped configs and `snakefmt --check .` passes (config in pyproject.toml)."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


@pytest.mark.parametrize("configs", ["config/smoke.yaml", "config/cpu_study.yaml", "config/config.yaml",
                                     "config/config.yaml config/rehearsal.yaml"])
def test_snakemake_lint_has_no_findings(configs):
    result = subprocess.run([sys.executable, "-m", "snakemake", "--lint", "--configfile", *configs.split()], cwd=REPO,
                            capture_output=True, text=True, timeout=300)
    out = result.stdout + result.stderr
    assert result.returncode == 0 and "Lints for" not in out, out
    assert "Congratulations, your workflow is in a good condition!" in out


def test_snakefmt_check_passes():
    snakefmt = shutil.which("snakefmt", path=str(Path(sys.executable).parent)) or shutil.which("snakefmt")
    assert snakefmt, "snakefmt is missing: pip install -e '.[dev]'"
    result = subprocess.run([snakefmt, "--check", "."], cwd=REPO, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, f"run `snakefmt .`:\n{result.stderr}{result.stdout}"
