"""The Snakemake DAG: dry runs of every shipped config (no network), and config errors
that stop the workflow before any job with the key named."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parents[1]
SNAKEMAKE = [sys.executable, "-m", "snakemake"]


def dry_run(*args: str, cwd: Path = REPO) -> subprocess.CompletedProcess:
    return subprocess.run([*SNAKEMAKE, "-n", "--quiet", "rules", *args], cwd=cwd,
                          capture_output=True, text=True, timeout=300)


def job_counts(output: str) -> dict[str, int]:
    return {m[1]: int(m[2]) for m in re.finditer(r"^(\w+)\s+(\d+)$", output, re.M)}


def grid_size(config: dict) -> int:
    g = config["grid"]
    return len(g["domains"]) * len(g["models"]) * len(g["paradigms"]) * len(g["strategies"]) * len(config["seeds"])


@pytest.mark.parametrize("name", ["smoke", "local", "config"])
def test_dry_run_lists_the_whole_grid(name):
    config = yaml.safe_load((REPO / "config" / f"{name}.yaml").read_text())
    result = dry_run("--configfile", f"config/{name}.yaml")
    assert result.returncode == 0, result.stderr + result.stdout
    counts = job_counts(result.stdout)
    runs = grid_size(config)
    if config.get("compute", {}).get("job", "run") == "cell":
        assert counts["train_cell"] == runs // len(config["seeds"])
        assert "train" not in counts and "evaluate_run" not in counts
    else:
        assert counts["train"] == runs
        assert counts["evaluate_run"] == runs
    assert counts["evaluate_base"] == len(config["grid"]["models"])
    assert counts["table"] == 1
    assert counts["cost_table"] == 1 and counts["compute_table"] == 1 and counts["plots"] == 1


def test_default_config_is_the_paper():
    result = dry_run()
    assert result.returncode == 0, result.stderr
    assert "qwen3_4b" in (REPO / "results" / "paper" / "config.yaml").read_text()


def test_bad_config_stops_the_workflow_with_the_key(tmp_path):
    raw = yaml.safe_load((REPO / "config" / "smoke.yaml").read_text())
    raw["sft"]["learing_rate"] = 1e-3
    bad = tmp_path / "bad.yaml"
    bad.write_text(yaml.safe_dump(raw))
    result = dry_run("--configfile", str(bad))
    assert result.returncode != 0
    assert "sft: unknown key 'learing_rate'" in result.stdout + result.stderr


def test_unknown_strategy_stops_the_workflow(tmp_path):
    raw = yaml.safe_load((REPO / "config" / "smoke.yaml").read_text())
    raw["grid"]["strategies"] = ["random", "no_such_strategy"]
    bad = tmp_path / "bad.yaml"
    bad.write_text(yaml.safe_dump(raw))
    result = dry_run("--configfile", str(bad))
    assert result.returncode != 0
    assert "unknown strategy 'no_such_strategy'" in result.stdout + result.stderr


def test_one_flag_adds_the_beyond_paper_strategies():
    """`--config grid='{beyond_paper: true}'` (a nested override, which snakemake hands over as
    strings) turns the smoke grid's 4 strategies into 10: 6 more train_cell jobs per
    domain x model x paradigm."""
    from edco.config import BEYOND_PAPER_STRATEGIES

    config = yaml.safe_load((REPO / "config" / "smoke.yaml").read_text())
    assert config["grid"].get("beyond_paper", False) is False
    cells = len(config["grid"]["domains"]) * len(config["grid"]["models"]) * len(config["grid"]["paradigms"])
    result = dry_run("--configfile", "config/smoke.yaml", "--config", "run=smoke_beyond_dry",
                     "grid={beyond_paper: true}")
    assert result.returncode == 0, result.stderr + result.stdout
    assert job_counts(result.stdout)["train_cell"] == cells * (len(config["grid"]["strategies"]) + len(BEYOND_PAPER_STRATEGIES))
    resolved = yaml.safe_load((REPO / "results" / "smoke_beyond_dry" / "config.yaml").read_text())
    assert resolved["grid"]["strategies"][-6:] == list(BEYOND_PAPER_STRATEGIES)
