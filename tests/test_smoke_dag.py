"""The whole Snakemake DAG end to end on a cut-down smoke config (one domain, both model
families, one seed, small sizes): data -> base models -> training -> lm-eval -> table.
The full smoke grid is measured by benchmarks/smoke_dag.py, not here."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from edco import io

REPO = Path(__file__).resolve().parents[1]
pytestmark = pytest.mark.slow


def e2e_config() -> dict:
    raw = yaml.safe_load((REPO / "config" / "smoke.yaml").read_text())
    raw["run"] = "e2e"
    raw["seeds"] = [0]
    raw["grid"]["domains"] = ["medicine"]
    raw["data"]["synthetic"].update(entities=12, levels=[1, 2], train_per_level=40, test_per_level=10, general_size=200)
    for model in raw["models"].values():
        model["pretrain"]["steps"] = 20
    raw["curriculum"] = {"rounds": 2, "n": 32}
    raw["sft"].update(num_train_epochs=1)
    raw["rl"].update(max_steps=4)  # of 12: the GRPO blocks were most of the test's time
    raw["evaluate"]["max_gen_toks"] = 32
    return raw


def snakemake(workdir: Path, config: Path, *extra: str, timeout: int = 1200) -> subprocess.CompletedProcess:
    # Jobs call `python -m edco`: put this interpreter's environment first on PATH, and this
    # checkout first on the import path (an installed edco, e.g. another worktree's editable
    # install, would otherwise run in the jobs, whose working directory is tmp_path).
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}",
           "PYTHONPATH": os.pathsep.join([str(REPO), *filter(None, [os.environ.get("PYTHONPATH")])])}
    cmd = [sys.executable, "-m", "snakemake", "--snakefile", str(REPO / "Snakefile"), "--directory", str(workdir),
           "--cores", "2", "--configfile", str(config), *extra]
    return subprocess.run(cmd, cwd=workdir, env=env, capture_output=True, text=True, timeout=timeout)


def test_smoke_dag_end_to_end(tmp_path):
    config = tmp_path / "e2e.yaml"
    config.write_text(yaml.safe_dump(e2e_config()))
    result = snakemake(tmp_path, config)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]

    root = tmp_path / "results" / "e2e"
    table = (root / "tables" / "main.md").read_text()
    assert "| medicine | qwen3 |" in (root / "tables" / "estimator.md").read_text()
    assert "**Verdict** at ≤ random's compute" in (root / "tables" / "compute.md").read_text()
    for model in ("qwen3", "llama"):
        assert f"| medicine | {model} | sft |" in table
        report = io.read_json(root / "eval" / "medicine" / model / "sft" / "random" / "seed0.json")
        test_ids = {r["id"] for r in io.read_jsonl(root / "data" / "medicine" / "test.jsonl")}
        assert {q["id"] for q in report["questions"]} == test_ids
        assert set(report["summary"]) == set(e2e_config()["evaluate"]["modes"])
        assert (root / "runs" / "medicine" / model / "sft" / "random" / "seed0" / "run.json").is_file()
        assert (root / "eval" / "medicine" / model / "base" / "shared.json").is_file()

    again = snakemake(tmp_path, config, "-n")
    assert again.returncode == 0
    assert "Nothing to be done" in again.stdout + again.stderr
