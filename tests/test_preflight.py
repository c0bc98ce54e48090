"""The preflight (edco/preflight.py, config/preflight.yaml): its layering keeps every setting that
sets memory, its plan figures are the planner's, its verdict fails where measured > planned +
10 %, its memory probe sees an allocation, and, executed on CPU where vLLM is absent, it runs
the phases that need none and names what it skipped. The vLLM form runs in the vLLM
environment (tests/test_vllm_preflight.py)."""

from __future__ import annotations

import csv
import itertools

import pytest
import yaml
from snakemake.utils import update_config

from edco import cli, plan, preflight
from edco.config import layer, load_layers
from test_trainer_rounds import REPO

CONFIG = REPO / "config"
PAPER, LAYER, REHEARSAL = CONFIG / "config.yaml", CONFIG / "preflight.yaml", CONFIG / "rehearsal.yaml"
# What config/preflight.yaml may change in the paper config: sizes, never what sets memory.
SIZES = {("seeds",), ("grid", "domains"), ("data", "max_train"), ("data", "max_test"), ("curriculum", "rounds"),
         ("curriculum", "n"), ("rl", "rounds"), ("rl", "n"), ("rl", "n_by_model", "llama3_2_3b"), ("rl", "max_steps"),
         ("estimator_bench", "limit"), ("estimator_bench", "repeats"), ("estimator_bench", "throughput"),
         ("estimator_bench", "retest"), ("estimator_bench", "checkpoint"), ("evaluate", "limit")}


def leaves(node, path=()):
    if isinstance(node, dict):
        for key, value in node.items():
            yield from leaves(value, (*path, key))
    else:
        yield path, node


@pytest.mark.parametrize("base, over", [
    ({"a": {"b": 1, "c": [1, 2]}, "d": 1}, {"a": {"c": [3]}, "e": {"f": 2}}),
    ({"a": 1}, {"a": {"b": 2}}),
    ({"a": {"b": 2}}, {"a": None}),
])
def test_layers_merge_as_snakemake_merges_configfiles(base, over):
    expected = yaml.safe_load(yaml.safe_dump(base))
    update_config(expected, over)
    assert layer(base, over) == expected


def test_the_preflight_layer_changes_only_sizes_of_the_paper_config():
    paper, layered = load_layers([PAPER]), load_layers([PAPER, LAYER])
    before, after = dict(leaves(paper)), dict(leaves(layered))
    changed = {key for key in before.keys() | after.keys() if before.get(key) != after.get(key)}
    assert changed and changed <= SIZES, changed - SIZES
    assert layered["compute"]["device"] == "cuda" and layered["rl"]["use_vllm"] and layered["models"] == paper["models"]


def test_each_phase_is_compared_with_the_planners_figure():
    config = load_layers([PAPER, LAYER])
    for model in config["grid"]["models"]:
        arch = plan.arch_of(config, model)
        jobs = {paradigm: plan.train_job(config, "j", [("law", model, paradigm, "edco", 0)])
                for paradigm in ("sft", "rl")}
        for paradigm, job in jobs.items():
            training = [p.total for p in job.phases if not p.name.startswith(("scoring", "evaluation"))]
            assert preflight.planned(config, "law", model, paradigm)[0] == max(training)
        scoring = [p.total for p in jobs["sft"].phases if p.name.startswith("scoring")]
        assert preflight.planned(config, "law", model, "scoring")[0] == max(scoring)
        assert preflight.planned(config, "law", model, "evaluate")[0] == plan.eval_phase(config, model, arch).total
        assert preflight.planned(config, "law", model, "bench")[0] == \
            plan.estimator_bench_job(config, "law", model).peak.total
    assert preflight.scoring_kinds(config) == ["full", "perplexity", "prefix"]  # the paper's four strategies


def test_a_phase_over_plan_plus_ten_percent_fails_the_preflight():
    rows = [preflight.Row("m", "sft", "ran", 1.0, measured, 10.0, "training micro-step") for measured in (9.0, 11.0, 11.2)]
    for row in rows:
        row.verdict = preflight.judge(row, "cuda")
    assert [row.over for row in rows] == [False, False, True]
    assert rows[2].verdict == "OVER plan by 12% (> 10%)"
    message = preflight.failures(rows)
    assert "1 phase(s)" in message and "m sft: 11.2 GB measured, 10.0 GB planned (training micro-step)" in message
    assert preflight.failures(rows[:2]) is None
    assert preflight.judge(rows[2], "cpu").startswith("not compared")


def test_phases_name_the_libraries_they_lack():
    config = load_layers([PAPER, LAYER])
    absent = {phase: preflight.missing_libraries(config, phase, have=lambda module: False)
              for phase in preflight.PHASES}
    assert absent == {
        "sft": ["bitsandbytes (for sft.optim: adamw_bnb_8bit)"],
        "scoring": ["vllm (for estimator.backend: vllm)"],
        "rl": ["vllm (for rl.use_vllm: true)", "bitsandbytes (for rl.optim: adamw_bnb_8bit)"],
        "evaluate": [],
        "bench": ["vllm (for estimator.backend: vllm)"],
    }
    assert all(not preflight.missing_libraries(config, phase, have=lambda module: True) for phase in preflight.PHASES)


def test_the_memory_probe_sees_an_allocation():
    held = []
    with preflight.PeakMemory("cpu") as idle:
        pass
    with preflight.PeakMemory("cpu") as busy:
        held.append(bytearray(300 * 2**20))  # touched: resident
    assert busy.peak - idle.peak > 250 * 2**20


def write_cpu_layer(path, shared_root, eight_bit: bool = False):
    """The CPU form's last layer: the staged data where this test finds it, vLLM's paths on (and,
    with ``eight_bit``, the paper's 8-bit AdamW for SFT)."""
    over = {"data": {"local": {"root": str(shared_root / "data")}}, "estimator": {"backend": "vllm"},
            "rl": {"use_vllm": True, "vllm_enable_sleep_mode": False, "vllm_max_model_length": 1024}}
    if eight_bit:
        over["sft"] = {"optim": "adamw_bnb_8bit"}
    path.write_text(yaml.safe_dump(over))
    return [str(PAPER), str(LAYER), str(REHEARSAL), str(path)]


@pytest.mark.shared
def test_without_vllm_the_preflight_runs_the_rest_and_says_what_it_skipped(tmp_path, shared_root, monkeypatch, capsys):
    """vLLM and bitsandbytes absent (the main environment): SFT with 8-bit AdamW, the scoring, the
    GRPO round and the benchmark are skipped and named; the evaluation runs (on the base model)."""
    if preflight._installed("vllm") or preflight._installed("bitsandbytes"):
        pytest.skip("vLLM or bitsandbytes is installed here: tests/test_vllm_preflight.py runs every phase")
    monkeypatch.chdir(tmp_path)
    layers = write_cpu_layer(tmp_path / "cpu.yaml", shared_root, eight_bit=True)
    argv = ["preflight", *itertools.chain.from_iterable(("--config", p) for p in layers), "--model", "qwen3_4b"]
    assert cli.main(argv) == 0
    out = capsys.readouterr().out
    with open(tmp_path / "results" / "preflight" / "preflight" / "preflight.csv", newline="") as f:
        rows = {row["phase"]: row for row in csv.DictReader(f)}
    assert set(rows) == set(preflight.PHASES)
    assert rows["sft"]["ran"] == "skipped: needs bitsandbytes (for sft.optim: adamw_bnb_8bit)"
    for phase in ("scoring", "rl", "bench"):
        assert rows[phase]["ran"].startswith("skipped: needs vllm (for "), rows[phase]
        assert rows[phase]["measured_gb"] == ""
    evaluate = rows["evaluate"]
    assert evaluate["ran"] == "2 questions (base model)"
    assert float(evaluate["measured_gb"]) > 0.2 and float(evaluate["planned_gb"]) > 0, evaluate
    assert evaluate["verdict"].startswith("not compared (CPU")
    assert "skipped: needs vllm (for rl.use_vllm: true)" in out
