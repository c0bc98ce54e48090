"""The preflight's CPU form, executed for real (issue 29, item 4): ``python -m edco preflight`` over
config/config.yaml + config/preflight.yaml + config/rehearsal.yaml (SmolLM2-135M-Instruct in the
paper models' places, CPU sizes) + vLLM's paths on (estimator.backend: vllm, rl.use_vllm), in the
vLLM environment: every phase runs (none skipped), scoring and the estimator benchmark through a
vLLM engine, the GRPO round's rollouts through TRL's colocated engine, and each phase's
measured memory stands beside the plan's figure. Runs with ``pytest -m vllm`` only."""

from __future__ import annotations

import csv
import itertools

import pytest

from edco import cli, estimator, preflight
from edco.trainer import grpo as grpo_module
from test_preflight import write_cpu_layer

pytestmark = pytest.mark.vllm


def test_the_preflight_runs_every_phase_through_vllm_on_cpu(vllm_cpu, shared_root, tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    engines, rollouts = [], []
    real_engine, real_release = estimator.vllm_engine, grpo_module.release_rollout_engine

    def scoring_engine(model, *args, **kwargs):
        engines.append(type(model).__name__)
        return real_engine(model, *args, **kwargs)

    def rollout_engine_released(trainer_, device):
        rollouts.append(trainer_.vllm_generation is not None)
        return real_release(trainer_, device)

    monkeypatch.setattr(estimator, "vllm_engine", scoring_engine)
    monkeypatch.setattr(grpo_module, "release_rollout_engine", rollout_engine_released)
    layers = write_cpu_layer(tmp_path / "cpu.yaml", shared_root)
    argv = ["preflight", *itertools.chain.from_iterable(("--config", p) for p in layers), "--model", "qwen3_4b"]
    assert cli.main(argv) == 0
    print(capsys.readouterr().out)  # the table, in the test log

    with open(tmp_path / "results" / "preflight" / "preflight" / "preflight.csv", newline="") as f:
        rows = {row["phase"]: row for row in csv.DictReader(f)}
    assert list(rows) == list(preflight.PHASES)
    for phase, row in rows.items():
        assert not row["ran"].startswith("skipped"), row
        assert float(row["measured_gb"]) > 0.2 and float(row["planned_gb"]) > 0 and row["planned_phase"], row
        assert row["verdict"].startswith("not compared (CPU"), row
    assert rows["scoring"]["ran"] == "4 samples x full, perplexity, prefix (vllm)"
    assert rows["scoring"]["planned_phase"].startswith("scoring (")
    assert rows["rl"]["planned_phase"] in {"rollouts (vLLM awake)", "training micro-step", "optimizer step"}
    # The scorer got the policy as a trainer holds it (a torch module, saved for the engine), then the
    # benchmark its model; TRL's colocated engine ran the round's rollouts and was shut down.
    assert engines[0] != "str" and len(engines) >= 2, engines
    assert rollouts == [True]
