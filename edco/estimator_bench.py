"""Estimator benchmark: what the prefix estimator saves and what ranking it keeps (DESIGN §1.1,
the paper's 2.24 s -> 0.37 s per sample "with a ranking close to full-sequence entropy").

    python -m edco estimator-bench --config config/smoke.yaml --domain law --model qwen3 \\
        --out-dir results/smoke/estimator/law/qwen3
    # fine-tuned checkpoints side by side with the base model (repeat --checkpoint):
    python -m edco estimator-bench --config config/smoke.yaml --domain law --model qwen3 \\
        --checkpoint results/smoke/runs/law/qwen3/sft/random/seed0/final --out-dir /tmp/estimator_bench
    # a quick look: --limit 200 --repeats 1

Per model, on the domain's training pool (never the test split):
- time per sample of prefix entropy at K in {4, 8, 16, 32, 64, 128}, of full entropy and of
  teacher-forced entropy, and the speed-up of each prefix K over full;
- Spearman, Kendall (tau-b) and top-N overlap (N = the curriculum's share of the pool, n / pool,
  of the benchmarked samples; ties by id hash as the curriculum breaks them) of prefix-at-K
  scores against full scores;
- Spearman of every estimator (both aggregations) with the pool's known ``difficulty``;
- batched vs one-at-a-time throughput of the prefix estimator at the config's K on the same
  samples, median of --repeats interleaved runs (hf backend only: vLLM batches continuously and
  ignores estimator.batch_size, so the comparison would measure nothing; the Markdown says so).
With ``estimator.backend: vllm`` each model gets one engine, built before any timing, and a time
per sample is ``llm.generate``'s alone (building an engine per estimator and K timed start-ups).
A prefix of K tokens is capped by what the model generates: ``ended_before_k`` is the share of
answers that stopped (EOS) before K, and the Markdown says when K exceeds every answer.

Writes estimator.csv, estimator.md, estimator_k.png and estimator_k.pdf into --out-dir
(atomically) and prints the tables. The Markdown and the plot are edco.report's (the grid's
estimator table and plot render the same rows).
"""

from __future__ import annotations

import os
import platform
from contextlib import nullcontext
import random
import statistics
import sys
import time
import warnings
from pathlib import Path

import pandas as pd
from scipy import stats

from edco import curriculum, estimator, io, layout
from edco.prompts import chat_template_kwargs
from edco.config import round_budget
from edco.models import load_model, load_model_from
from edco.report import bench_markdown, plot_estimator_k, save_figure

PREFIX_KS = (4, 8, 16, 32, 64, 128)
AGGREGATES = ("top_frac", "mean")
COLUMNS = ["model", "table", "estimator", "k", "aggregate", "batch_size", "n_samples", "seconds_per_sample",
           "speedup_vs_full", "mean_tokens", "max_tokens", "ended_before_k", "spearman_vs_full", "kendall_vs_full",
           "topn_overlap", "top_n", "spearman_vs_difficulty", "batched_vs_one_at_a_time"]


# ----------------------------------------------------------------------------------------------
# Rank statistics


def rank_agreement(scores: dict[str, float], reference: dict[str, float], top_n: int) -> dict:
    """Spearman, Kendall tau-b and top-N overlap (fraction) of ``scores`` against ``reference``."""
    ids = list(reference)
    a, b = [scores[i] for i in ids], [reference[i] for i in ids]
    with warnings.catch_warnings():  # a constant vector has no rank correlation: NaN, said so in the table
        warnings.simplefilter("ignore")
        rho = stats.spearmanr(a, b).statistic
        tau = stats.kendalltau(a, b).statistic
    overlap = len(set(curriculum.top_n(scores, top_n)) & set(curriculum.top_n(reference, top_n))) / top_n
    return {"spearman_vs_full": float(rho), "kendall_vs_full": float(tau), "topn_overlap": overlap, "top_n": top_n}


def spearman_with_difficulty(scores: dict[str, float], difficulty: dict[str, float]) -> float:
    if not difficulty:
        return float("nan")
    ids = list(difficulty)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return float(stats.spearmanr([scores[i] for i in ids], [difficulty[i] for i in ids]).statistic)


# ----------------------------------------------------------------------------------------------
# Measurements


def run_estimator(model, tokenizer, records, cfg, kind, seed, progress, template_kwargs) -> dict:
    """Token entropies of one estimator over the pool, and its time per sample: the wall time
    of the call (hf), or of vLLM's generate alone (each sample's ``seconds`` is its share)."""
    t0 = time.perf_counter()
    samples = estimator.token_entropies(model, tokenizer, records, cfg, kind, seed, progress,
                                        template_kwargs=template_kwargs)
    seconds = (time.perf_counter() - t0) / len(records)
    if cfg["backend"] == "vllm":
        seconds = statistics.fmean(s["seconds"] for s in samples)
    return {"samples": samples, "seconds_per_sample": seconds}


def scores_of(run: dict, aggregate: str, top_frac: float) -> dict[str, float]:
    return {s["id"]: estimator.aggregate(s["entropies"], aggregate, top_frac) for s in run["samples"]}


def mean_tokens(run: dict) -> float:
    return statistics.fmean(len(s["entropies"]) for s in run["samples"])


def measure_model(label: str, model, tokenizer, records: list[dict], cfg: dict, ks: list[int], top_n: int,
                  seed: int, progress: bool, template_kwargs: dict) -> list[dict]:
    """Rows of the estimator table for one model."""
    difficulty = {r["id"]: r["difficulty"] for r in records if r.get("difficulty") is not None}
    runs = {(kind, None): run_estimator(model, tokenizer, records, cfg, kind, seed, progress, template_kwargs)
            for kind in ("full", "teacher_forced")}
    for k in ks:
        runs[("prefix", k)] = run_estimator(model, tokenizer, records, dict(cfg, prefix_tokens=k), "prefix", seed,
                                            progress, template_kwargs)
    full_seconds = runs[("full", None)]["seconds_per_sample"]
    rows = []
    for (kind, k), run in runs.items():
        for aggregate in AGGREGATES:
            scores = scores_of(run, aggregate, cfg["top_frac"])
            row = {"model": label, "table": "estimators", "estimator": kind, "k": k, "aggregate": aggregate,
                   "batch_size": cfg["batch_size"], "n_samples": len(records),
                   "seconds_per_sample": run["seconds_per_sample"],
                   "speedup_vs_full": full_seconds / run["seconds_per_sample"],
                   "mean_tokens": mean_tokens(run),
                   "max_tokens": max(len(s["entropies"]) for s in run["samples"]),
                   "spearman_vs_difficulty": spearman_with_difficulty(scores, difficulty)}
            if kind == "prefix":
                row["ended_before_k"] = statistics.fmean(len(s["entropies"]) < k for s in run["samples"])
                row.update(rank_agreement(scores, scores_of(runs[("full", None)], aggregate, cfg["top_frac"]), top_n))
            rows.append(row)
    return rows


def measure_throughput(label: str, model, tokenizer, records: list[dict], cfg: dict, seed: int,
                       repeats: int, template_kwargs: dict) -> list[dict]:
    """Prefix estimator at the config's K, batched vs one at a time, on the same samples; the two
    alternate within each repeat so that load from other processes hits both alike."""
    timings = {cfg["batch_size"]: [], 1: []}
    for _ in range(repeats):
        for batch_size in timings:
            t0 = time.perf_counter()
            estimator.score_pool(model, tokenizer, records, dict(cfg, batch_size=batch_size), "prefix", seed, False,
                                 template_kwargs=template_kwargs)
            timings[batch_size].append((time.perf_counter() - t0) / len(records))
    medians = {b: statistics.median(t) for b, t in timings.items()}
    ratio = medians[1] / medians[cfg["batch_size"]]
    return [{"model": label, "table": "throughput", "estimator": "prefix", "k": cfg["prefix_tokens"],
             "aggregate": cfg["aggregate"], "batch_size": b, "n_samples": len(records),
             "seconds_per_sample": medians[b], "batched_vs_one_at_a_time": ratio} for b in timings]


# ----------------------------------------------------------------------------------------------


def load_models(config: dict, name: str, checkpoints: list[str], device: str):
    """(label, model, tokenizer) for the base model, then each checkpoint; with the vLLM
    backend the model is the directory (or hub id) its engine loads, never a torch model."""
    vllm = config["estimator"]["backend"] == "vllm"
    yield name, *(estimator.load_scorer(config, name, None) if vllm else load_model(config, name, device))
    for path in checkpoints:
        # runs/<domain>/<model>/<paradigm>/<strategy>/seed<s>/<final|round..>: the tail says which
        label = f"{name} {'/'.join(Path(path).parts[-3:])}"
        yield label, *(estimator.load_scorer(config, name, path) if vllm
                       else load_model_from(path, device, config["models"][name]["dtype"]))


def sample_pool(records: list[dict], limit: int | None, seed: int) -> list[dict]:
    """A seeded sample of ``limit`` records, not the first rows: pools are often grouped by
    level, and a one-level slice has no difficulty spread to correlate with."""
    if limit and limit < len(records):
        return random.Random(seed).sample(records, limit)
    return records


def _load_average() -> str:
    return " ".join(f"{x:.1f}" for x in os.getloadavg())


def run_bench(config: dict, config_path: str, domain: str, model: str, checkpoints: list[str], out_dir: str | Path,
              seed: int = 0, limit: int | None = None, repeats: int = 3, throughput_samples: int | None = None,
              progress: bool = True) -> list[Path]:
    """Measure the base model (and each checkpoint) on ``domain``'s training pool; write
    estimator.csv, estimator.md and estimator_k.{png,pdf} into ``out_dir``."""
    import torch

    cfg, device = config["estimator"], config["compute"]["device"]
    estimator.check_backend(cfg)
    pool = io.read_jsonl(layout.data_file(config["run"], domain, "train"))
    records = sample_pool(pool, limit, seed)
    # Top-N at the curriculum's selection *fraction*: on a --limit sample, N of the whole pool
    # would be most of the sample, and its overlap near 1 whatever the ranking.
    n = round_budget(config, config["grid"]["paradigms"][0], model)[1]
    top_n = max(1, min(len(records), round(n * len(records) / len(pool))))
    ks = sorted(set(PREFIX_KS) | {cfg["prefix_tokens"]})
    n_throughput = min(len(records), throughput_samples or 4 * cfg["batch_size"])
    meta = {"run": config["run"], "domain": domain, "config": config_path, "pool": len(records), "top_n": top_n, "seed": seed,
            "temperature": cfg["temperature"], "top_p": cfg["top_p"], "entropy": cfg["entropy"],
            "full_max_tokens": cfg["full_max_tokens"], "batch_size": cfg["batch_size"], "config_k": cfg["prefix_tokens"],
            "torch": torch.__version__, "threads": torch.get_num_threads(), "device": device,
            "machine": f"{platform.machine()}, {os.cpu_count()} CPUs", "load_before": _load_average()}
    vllm = cfg["backend"] == "vllm"
    if vllm:
        meta["timing_note"] = ("Backend vLLM: one engine per model, built before any timing; a time per sample is "
                               "vLLM's generate call alone.")
        meta["throughput_note"] = ("Not measured with the vLLM backend: vLLM batches continuously whatever "
                                   "estimator.batch_size says, so batched and one-at-a-time calls are the same call.")
    rows, template_kwargs = [], chat_template_kwargs(config["models"][model])
    for label, scorer, tokenizer in load_models(config, model, checkpoints, device):
        print(f"[estimator_bench] {label}: {len(records)} samples, K in {ks}", file=sys.stderr)
        with estimator.vllm_engine(scorer, tokenizer, cfg, seed) if vllm else nullcontext(scorer) as engine:
            rows += measure_model(label, engine, tokenizer, records, cfg, ks, top_n, seed, progress, template_kwargs)
            if not vllm:
                rows += measure_throughput(label, engine, tokenizer, records[:n_throughput], cfg, seed, repeats,
                                           template_kwargs)
    meta["load_after"] = _load_average()
    return write_outputs(pd.DataFrame(rows), meta, cfg["aggregate"], Path(out_dir))


def write_outputs(rows: pd.DataFrame, meta: dict, aggregate: str, out_dir: Path) -> list[Path]:
    """estimator.csv (COLUMNS), estimator.md and estimator_k.{png,pdf} of one benchmark."""
    frame = rows.reindex(columns=COLUMNS)
    for column in ("k", "batch_size", "n_samples", "top_n", "max_tokens"):
        frame[column] = frame[column].astype("Int64")
    csv, md = out_dir / "estimator.csv", out_dir / "estimator.md"
    with io.atomic_path(csv) as tmp:
        frame.to_csv(tmp, index=False)
    text = bench_markdown(frame, meta)
    io.write_text(md, text)
    figure = plot_estimator_k(frame.assign(domain=meta["domain"]), aggregate, meta["run"])
    print(text)
    return [csv, md, *save_figure(figure, out_dir / "estimator_k", ("png", "pdf"))]
