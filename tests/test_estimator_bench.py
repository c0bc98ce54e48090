"""The estimator benchmark (`python -m edco estimator-bench`, edco/estimator_bench.py): its
rank statistics on hand-made scores, then a whole run on a tiny model (no hub, no base-model
job): the files it writes, and the grid's estimator table and plot built from them."""

from __future__ import annotations

import math
from pathlib import Path

import pandas as pd
import pytest
import yaml
from test_estimator import make_model, make_records, tokenizer  # noqa: F401  (tokenizer: a fixture)

from edco import estimator_bench as B
from edco import cli, io, layout
from edco.config import load_config
from edco.report import write_estimator_table, write_plots

REPO = Path(__file__).resolve().parents[1]


def test_rank_agreement_of_the_same_and_the_reversed_order():
    reference = {f"s{i}": float(i) for i in range(10)}
    same = B.rank_agreement({k: 2 * v + 1 for k, v in reference.items()}, reference, top_n=3)
    assert same == pytest.approx({"spearman_vs_full": 1.0, "kendall_vs_full": 1.0, "topn_overlap": 1.0, "top_n": 3})
    reverse = B.rank_agreement({k: -v for k, v in reference.items()}, reference, top_n=3)
    assert reverse["spearman_vs_full"] == pytest.approx(-1.0) and reverse["kendall_vs_full"] == pytest.approx(-1.0)
    assert reverse["topn_overlap"] == 0.0  # the top 3 of one are the bottom 3 of the other


def test_one_swap_in_the_top_n_and_a_constant_score():
    reference = {"a": 4.0, "b": 3.0, "c": 2.0, "d": 1.0}
    swapped = B.rank_agreement({"a": 4.0, "b": 2.0, "c": 3.0, "d": 1.0}, reference, top_n=2)
    assert swapped["topn_overlap"] == 0.5 and swapped["spearman_vs_full"] == pytest.approx(0.8)
    flat = B.rank_agreement(dict.fromkeys(reference, 1.0), reference, top_n=2)
    assert math.isnan(flat["spearman_vs_full"])  # no ranking: said as NaN, never 0


def test_auroc_on_hand_made_cases():
    wrong = {"a": True, "b": True, "c": False, "d": False}
    assert B.auroc({"a": 4, "b": 3, "c": 2, "d": 1}, wrong) == 1.0  # every wrong answer outscores every right one
    assert B.auroc({"a": 1, "b": 2, "c": 3, "d": 4}, wrong) == 0.0
    assert B.auroc({"a": 4, "b": 1, "c": 3, "d": 2}, wrong) == 0.5  # pairs: a>c a>d b<c b<d
    assert B.auroc(dict.fromkeys(wrong, 1.0), wrong) == 0.5  # ties count half
    assert B.auroc({"a": 3, "b": 2, "c": 2, "d": 1}, wrong) == pytest.approx(7 / 8)  # b ties c: half a pair
    assert math.isnan(B.auroc({"a": 1, "b": 2}, {"a": True, "b": True}))  # one class only


def test_retest_and_the_attenuation_ceiling():
    first = {f"s{i}": float(i) for i in range(8)}
    again = B.retest(first, {k: 10 * v for k, v in first.items()}, top_n=2)
    assert again == {"retest_spearman": 1.0, "retest_kendall": pytest.approx(1.0), "retest_topn": 1.0}
    shuffled = dict(zip(first, [3.0, 0.0, 1.0, 2.0, 7.0, 4.0, 6.0, 5.0]))
    assert B.retest(first, shuffled, top_n=2)["retest_topn"] == 0.5  # top 2: {s7, s6} vs {s4, s6}
    assert B.agreement_ceiling(0.64, 1.0) == pytest.approx(0.8)
    assert B.agreement_ceiling(0.5, 0.5) == pytest.approx(0.5)
    assert math.isnan(B.agreement_ceiling(-0.1, 0.9))  # an estimator noisier than chance has no ceiling


def test_difficulty_correlation_and_a_seeded_sample():
    scores = {"a": 0.1, "b": 0.5, "c": 0.9}
    assert B.spearman_with_difficulty(scores, {"a": 1, "b": 2, "c": 3}) == pytest.approx(1.0)
    assert math.isnan(B.spearman_with_difficulty(scores, {}))
    records = [{"id": str(i)} for i in range(50)]
    assert B.sample_pool(records, 10, 0) == B.sample_pool(records, 10, 0) != records[:10]
    assert B.sample_pool(records, None, 0) is records and B.sample_pool(records, 80, 0) is records


@pytest.fixture
def bench_config(tmp_path, monkeypatch, tokenizer):  # noqa: F811
    """The smoke config with short answers, a train pool of 9 tiny records, and a tiny model
    standing in for the base model and the fine-tuned checkpoint."""
    monkeypatch.chdir(tmp_path)
    raw = yaml.safe_load((REPO / "config" / "smoke.yaml").read_text())
    raw["estimator"].update(full_max_tokens=16, batch_size=4)
    raw["grid"].update(domains=["law"], models=["qwen3"])
    raw["curriculum"]["n"] = 3  # of 9: top-N on a 6-sample --limit is N = 2
    raw["evaluate"]["modes"] = ["generate", "loglikelihood"]  # validity by both kinds of answer
    (tmp_path / "c.yaml").write_text(yaml.safe_dump(raw))
    io.write_jsonl(layout.data_file(raw["run"], "law", "train"), make_records(9))
    model = make_model(tokenizer)
    loaded = []
    monkeypatch.setattr(B, "load_model", lambda config, name, device, base: loaded.append(name) or (model, tokenizer))
    monkeypatch.setattr(B, "load_model_from", lambda path, device, dtype: loaded.append(path) or (model, tokenizer))
    return tmp_path / "c.yaml", loaded


def test_a_run_writes_csv_markdown_and_the_k_plot(bench_config, capsys):
    path, loaded = bench_config
    config = load_config(path)
    out = layout.estimator_dir(config["run"], "law", "qwen3")
    argv = ["--config", str(path), "--domain", "law", "--model", "qwen3", "--checkpoint", "runs/x/sft/random/seed0/final",
            "--out-dir", str(out), "--limit", "6", "--repeats", "1", "--no-progress"]
    assert cli.main(["estimator-bench", *argv]) == 0
    assert loaded == ["qwen3", "runs/x/sft/random/seed0/final"]
    log = capsys.readouterr().err  # without progress bars, a line per pass says where the run is
    assert "[estimator_bench] full entropy, seed 1: 6 samples ..." in log and "prefill_quick: done in" in log
    assert sorted(p.name for p in out.iterdir()) == ["estimator.csv", "estimator.json", "estimator.md",
                                                      "estimator_k.pdf", "estimator_k.png"]
    frame = pd.read_csv(out / "estimator.csv")
    assert list(frame.columns) == B.COLUMNS
    assert set(frame["model"]) == {"qwen3", "qwen3 random/seed0/final"}  # the checkpoint path's tail
    estimators = frame[frame["table"] == "estimators"]
    assert set(estimators["estimator"]) == {"prefix", "full", "teacher_forced", "perplexity", "prefill_chat",
                                            "prefill_quick"}
    prefix = estimators[(estimators["estimator"] == "prefix") & (estimators["aggregate"] == "top_frac")]
    assert sorted(prefix["k"].unique()) == [4, 8, 16, 32, 64, 128] and (prefix["n_samples"] == 6).all()
    assert (prefix["top_n"] == 2).all() and prefix["topn_overlap"].isin([0.0, 0.25, 0.5, 0.75, 1.0]).all()  # 2 seeds
    full = frame[(frame["estimator"] == "full") & (frame["aggregate"] == "top_frac")]
    assert (full["speedup_vs_full"] == 1.0).all()
    sampled = estimators[estimators["estimator"].isin(["prefix", "full"])]
    assert sampled[["retest_spearman", "retest_kendall", "retest_topn"]].notna().all().all()  # two seeds each
    meta = io.read_json(out / "estimator.json")
    assert meta["seeds"] == [0, 1] and meta["accuracy"]["qwen3"]["loglikelihood"] == pytest.approx(1 / 6)
    assert meta["accuracy"]["qwen3"]["generate"] == 0.0  # the tiny model: every answer wrong, so no AUROC
    assert sampled["auroc_wrong_loglikelihood"].notna().all() and sampled["auroc_wrong_generate"].isna().all()
    one_forward = estimators[estimators["estimator"].isin(["teacher_forced", "perplexity"])]
    assert one_forward["retest_spearman"].isna().all() and one_forward["auroc_wrong_loglikelihood"].notna().all()
    floors = estimators[estimators["estimator"].str.startswith("prefill")]
    assert (floors["seconds_per_sample"] > 0).all() and floors["aggregate"].isna().all()
    assert (frame[frame["table"] == "throughput"]["batch_size"].sort_values().tolist() == [1, 1, 4, 4])
    md = (out / "estimator.md").read_text()
    for heading in ("## Every estimator (top_frac aggregation)", "## The same at the mean aggregation",
                    "## Batched vs one-at-a-time scoring", "Accuracy on these questions"):
        assert heading in md
    assert "| qwen3 | prefix | 8 |" in md and "| qwen3 | prefill_chat | – |" in md

    # the grid's table and plot read what the benchmark wrote
    csv, table_md, *_ = write_estimator_table(config)
    merged = pd.read_csv(csv)
    assert set(merged["domain"]) == {"law"} and len(merged) == len(frame)
    assert "| law | qwen3 | prefix | 4 |" in table_md.read_text()
    (png,) = write_plots(config, only=["estimator_k"])
    assert png.stat().st_size > 5000


def test_under_vllm_one_engine_per_model_times_generation_only(bench_config, tokenizer, monkeypatch):  # noqa: F811
    """Issue #17 item 8: with the vLLM backend every estimator and K of a model share one engine
    (before: a checkpoint save and an engine start per call, ~14 per model, inside the timing);
    the batched-vs-serial comparison, meaningless under vLLM, is replaced by a note."""
    import sys
    from types import SimpleNamespace

    from test_estimator import FakeEnvs, FakeLLM, FakeSamplingParams, bigram_logits

    path, _ = bench_config
    bigram = make_model(tokenizer, bigram=True)
    built = []

    class Engine(FakeLLM):
        def __init__(self, model, seed, trust_remote_code, gpu_memory_utilization):
            built.append(model)
            super().__init__(bigram_logits(bigram), tokenizer.eos_token_id)

    fake_vllm = SimpleNamespace(LLM=Engine, SamplingParams=FakeSamplingParams, envs=FakeEnvs())
    monkeypatch.setitem(sys.modules, "vllm", fake_vllm)
    monkeypatch.setattr(B.estimator.importlib.util, "find_spec", lambda name: object())
    monkeypatch.setattr(B.estimator.torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(B.estimator.torch.cuda, "device_count", lambda: 1)  # the job's GPU check
    monkeypatch.setattr(B.estimator.torch.cuda, "empty_cache", lambda: None)
    monkeypatch.setattr(B.estimator, "load_scorer", lambda config, name, checkpoint: (checkpoint or name, tokenizer))
    raw = yaml.safe_load(path.read_text())
    raw["estimator"].update(backend="vllm", entropy="top20")
    path.write_text(yaml.safe_dump(raw))
    out = path.parent / "bench"
    argv = ["--config", str(path), "--domain", "law", "--model", "qwen3", "--checkpoint", "runs/x/final",
            "--out-dir", str(out), "--limit", "6", "--repeats", "2", "--no-progress"]
    assert cli.main(["estimator-bench", *argv]) == 0
    assert built == ["qwen3", "runs/x/final"]  # one engine per model, from its directory or hub id
    frame = pd.read_csv(out / "estimator.csv")
    assert (frame["table"] == "estimators").all()  # no throughput rows
    md = (out / "estimator.md").read_text()
    assert "Not measured with the vLLM backend" in md and "vLLM's generate call alone" in md


def test_a_k_read_from_a_longer_answer_is_the_k_capped_run(tokenizer):  # noqa: F811
    """The hf benchmark samples one prefix answer capped at the largest K and reads every smaller K
    from it: the scores must be those of a run capped at K (each sample's own noise, one draw per
    token), and the time at step K must lie between the prefill and the whole run."""
    from test_estimator import CFG, TK

    model, records = make_model(tokenizer), make_records(10)
    cfg = dict(CFG, batch_size=4)
    read = B.prefix_runs(model, tokenizer, records, cfg, [2, 5, 24], 0, False, TK)
    for k in (2, 5):
        capped = B.run_estimator(model, tokenizer, records, dict(cfg, prefix_tokens=k), "prefix", 0, False, TK)
        assert read[k].scores("top_frac", 0.2, "prefix") == pytest.approx(capped.scores("top_frac", 0.2, "prefix"),
                                                                          abs=1e-5)
    assert 0 < read[2].seconds < read[5].seconds <= read[24].seconds
    floor = B.prefill_run(model, tokenizer, records, cfg, "prefix", TK)
    assert 0 < floor.seconds < read[24].seconds
