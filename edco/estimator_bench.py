"""Estimator benchmark: what the prefix estimator saves and what ranking it keeps (docs/design.md#entropy-estimator,
the paper's 2.24 s -> 0.37 s per sample "with a ranking close to full-sequence entropy"), and
whether either ranking means anything.

    python -m edco estimator-bench --config config/smoke.yaml --domain law --model qwen3 \\
        --out-dir results/smoke/estimator/law/qwen3
    # fine-tuned checkpoints side by side with the base model (repeat --checkpoint):
    python -m edco estimator-bench --config config/smoke.yaml --domain law --model qwen3 \\
        --checkpoint results/smoke/runs/law/qwen3/sft/random/seed0/final --out-dir /tmp/estimator_bench
    # a quick look: --limit 200 --repeats 1

Per model, on the domain's training pool (never the test split), every estimator timed in this
one process, side by side:
- time per sample (wall and CPU) of prefix entropy at each K of ``estimator_bench.prefix_ks``, of
  full entropy, of the one-forward estimators (teacher-forced entropy and perplexity of the
  reference answer), and the prefill-only floor of each prompt (one forward over it, no answer);
  the speed-up of each over full;
- Spearman, Kendall (tau-b) and top-N overlap (N = the curriculum's share of the pool, n / pool,
  of the benchmarked samples; ties by id hash as the curriculum breaks them) against full
  entropy, the mean over the sampling seeds of the agreement at the same seed;
- test-retest (``estimator_bench.retest``): the same three statistics between an estimator's
  scores at seed s and at seed s + 1. Two noisy rankings cannot agree better than their
  reliabilities allow: ``agreement_ceiling`` = sqrt(retest of the estimator x retest of full)
  (Spearman; the attenuation bound), 1 for an estimator that samples nothing;
- validity (``estimator_bench.validity``): AUROC of each estimator's score for the measured
  model's wrong answers on the same questions (lm-eval, each mode of ``evaluate.modes``; the
  answers come from ``python -m edco estimator-bench``, which evaluates the model first), and
  Spearman with the pool's known ``difficulty`` (ORAN-Bench's easy / medium / hard, the
  synthetic world's levels);
- batched vs one-at-a-time throughput of the prefix estimator at the config's K on the same
  samples, median of --repeats interleaved runs (hf backend only: vLLM batches continuously and
  ignores estimator.batch_size, so the comparison would measure nothing; the Markdown says so).

With the hf backend one prefix answer per sample is sampled, capped at the largest K; each K
reads the answer's first K tokens and the batch's clock at step K (EntropySampler.clock). Each
sample draws its own sampling noise, one number per token, so a run capped at K would sample
exactly these tokens: the scores are those of a K-capped run, and so is the time up to the
forward pass that produced token K. With ``estimator.backend: vllm`` each K is its own call and
each model gets one engine, built before any timing; a time per sample is ``llm.generate``'s.
A prefix of K tokens is capped by what the model generates: ``ended_before_k`` is the share of
answers that stopped (EOS) before K, and the Markdown says when K exceeds every answer.

Writes estimator.csv, estimator.md, estimator_k.png and estimator_k.pdf into --out-dir
(atomically) and prints the tables. The Markdown and the plot are edco.report's (the grid's
estimator table and plot render the same rows).
"""

from __future__ import annotations

import gc
import math
import os
import platform
import random
import statistics
import sys
import time
import warnings
from collections.abc import Callable
from contextlib import nullcontext
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
from scipy import stats

from edco import curriculum, estimator, io, layout
from edco.config import base_label, round_budget
from edco.models import load_model, load_model_from
from edco.prompts import chat_template_kwargs
from edco.report import bench_markdown, plot_estimator_k, save_figure

AGGREGATES = ("top_frac", "mean")
#: Prefill-only floors: estimator name -> the estimator whose prompt it reads.
PREFILLS = {"prefill_chat": "full", "prefill_quick": "prefix"}
VALIDITY_MODES = ("generate", "loglikelihood")
COLUMNS = ["model", "table", "estimator", "k", "aggregate", "batch_size", "n_samples", "seconds_per_sample",
           "cpu_seconds_per_sample", "speedup_vs_full", "mean_tokens", "max_tokens", "ended_before_k",
           "spearman_vs_full", "kendall_vs_full", "topn_overlap", "top_n", "retest_spearman", "retest_kendall",
           "retest_topn", "agreement_ceiling", *(f"auroc_wrong_{m}" for m in VALIDITY_MODES),
           "spearman_vs_difficulty", "batched_vs_one_at_a_time"]
#: (model, tokenizer, records) -> {mode: {id: correct}}: the measured model's answers (cli.py runs lm-eval).
Answers = Callable[[object, object, list], dict]


# ----------------------------------------------------------------------------------------------
# Statistics


def _quiet(fn, *args) -> float:
    with warnings.catch_warnings():  # a constant vector has no rank correlation: NaN, said so in the table
        warnings.simplefilter("ignore")
        return float(fn(*args).statistic)


def rank_agreement(scores: dict[str, float], reference: dict[str, float], top_n: int) -> dict:
    """Spearman, Kendall tau-b and top-N overlap (fraction) of ``scores`` against ``reference``."""
    ids = list(reference)
    a, b = [scores[i] for i in ids], [reference[i] for i in ids]
    overlap = len(set(curriculum.top_n(scores, top_n)) & set(curriculum.top_n(reference, top_n))) / top_n
    return {"spearman_vs_full": _quiet(stats.spearmanr, a, b), "kendall_vs_full": _quiet(stats.kendalltau, a, b),
            "topn_overlap": overlap, "top_n": top_n}


def retest(first: dict[str, float], second: dict[str, float], top_n: int) -> dict:
    """Test-retest agreement of one estimator's scores under two sampling seeds."""
    agreement = rank_agreement(second, first, top_n)
    return {"retest_spearman": agreement["spearman_vs_full"], "retest_kendall": agreement["kendall_vs_full"],
            "retest_topn": agreement["topn_overlap"]}


def agreement_ceiling(retest_a: float, retest_b: float) -> float:
    """The highest correlation two noisy measures can reach: sqrt of the product of their
    reliabilities (Spearman's attenuation bound); NaN when a reliability is not positive."""
    return math.sqrt(retest_a * retest_b) if retest_a > 0 and retest_b > 0 else math.nan


def auroc(scores: dict[str, float], positive: dict[str, bool]) -> float:
    """Area under the ROC curve of ``scores`` for the ids marked True in ``positive``: the
    probability that a positive outscores a negative (ties count half; Mann-Whitney U). 0.5 is
    no signal; NaN without both classes."""
    ids = list(positive)
    pos = [scores[i] for i in ids if positive[i]]
    neg = [scores[i] for i in ids if not positive[i]]
    if not pos or not neg:
        return math.nan
    ranks = stats.rankdata(pos + neg)
    return float((ranks[: len(pos)].sum() - len(pos) * (len(pos) + 1) / 2) / (len(pos) * len(neg)))


def spearman_with_difficulty(scores: dict[str, float], difficulty: dict[str, float]) -> float:
    if not difficulty:
        return float("nan")
    ids = list(difficulty)
    return _quiet(stats.spearmanr, [scores[i] for i in ids], [difficulty[i] for i in ids])


# ----------------------------------------------------------------------------------------------
# Measurements


@dataclass
class Run:
    """One estimator (at one K) over the benchmarked samples at one seed: each sample's token
    entropies (empty for a prefill floor), and the mean wall and CPU seconds per sample."""

    entropies: dict[str, object]
    seconds: float
    cpu_seconds: float

    def scores(self, aggregate: str, top_frac: float, kind: str) -> dict[str, float]:
        if kind == "perplexity":  # 2 ** mean surprisal, whatever the aggregation
            return {i: float(2 ** e.mean()) for i, e in self.entropies.items()}
        return {i: estimator.aggregate(e, aggregate, top_frac) for i, e in self.entropies.items()}

    def tokens(self) -> list[int]:
        return [len(e) for e in self.entropies.values()]


def run_estimator(model, tokenizer, records, cfg, kind, seed, progress, template_kwargs) -> Run:
    """One estimator over the samples: the wall time of the call (hf), or of vLLM's generate
    alone (each sample's ``seconds`` is its share); the CPU time of the call. A vLLM engine's
    prefix cache is emptied first (``cold_prefix_cache``)."""
    if cfg["backend"] == "vllm":
        cold_prefix_cache(model)
    t0, c0 = time.perf_counter(), time.process_time()
    samples = estimator.token_entropies(model, tokenizer, records, cfg, kind, seed, progress,
                                        template_kwargs=template_kwargs)
    seconds, cpu = (time.perf_counter() - t0) / len(records), (time.process_time() - c0) / len(records)
    if cfg["backend"] == "vllm":
        seconds, cpu = statistics.fmean(s["seconds"] for s in samples), math.nan
    return Run({s["id"]: s["entropies"] for s in samples}, seconds, cpu)


def cold_prefix_cache(llm) -> None:
    """Empty a vLLM engine's prefix cache before a timed call. The benchmark reuses one engine
    for every estimator and seed, and vLLM caches prompt prefixes by default
    (vllm/config/cache.py, ``enable_prefix_caching``): from the second call on, the prompts
    already seen would not be processed again, and every later estimator (the short Ks above
    all) would be timed without its prefill. Emptied, each call pays its own prompts, as a
    scoring engine built between two rounds does; what one call's prompts share stays cached."""
    if not llm.reset_prefix_cache():
        raise RuntimeError("vLLM refused to reset its prefix cache (requests still running); the timing would be "
                           "biased by prompts cached in an earlier call")


def prefix_runs(model, tokenizer, records, cfg, ks, seed, progress, template_kwargs) -> dict[int, Run]:
    """K -> the prefix estimator capped at K. hf: one answer capped at max(ks), each K read from
    its first K tokens and the step clock (module docstring). vLLM: one call per K."""
    if cfg["backend"] == "vllm":
        return {k: run_estimator(model, tokenizer, records, dict(cfg, prefix_tokens=k), "prefix", seed, progress,
                                 template_kwargs) for k in ks}
    samples = estimator.token_entropies(model, tokenizer, records, dict(cfg, prefix_tokens=max(ks)), "prefix", seed,
                                        progress, template_kwargs=template_kwargs)
    return {k: Run({s["id"]: s["entropies"][:k] for s in samples},
                   statistics.fmean(_seconds_at(s, k, "") for s in samples),
                   statistics.fmean(_seconds_at(s, k, "cpu_") for s in samples)) for k in ks}


def _seconds_at(sample: dict, k: int, which: str) -> float:
    """A sample's share of its batch's time had generation stopped after token k: the clock at
    step k (the forward pass that produced token k is done), plus what the batch spent after its
    last step (assembling the output), which a k-capped run spends too. A batch that ended
    before step k costs what it cost."""
    steps = sample[f"step_{which}seconds"]
    after_last = sample[f"{which}seconds"] - steps[-1]
    return steps[min(k, len(steps)) - 1] + after_last


def prefill_run(model, tokenizer, records, cfg, kind, template_kwargs) -> Run:
    samples = estimator.prefill_seconds(model, tokenizer, records, cfg, kind, template_kwargs=template_kwargs)
    return Run({}, statistics.fmean(s["seconds"] for s in samples), statistics.fmean(s["cpu_seconds"] for s in samples))


def _stage(what: str, n: int, fn, *args):
    """Run one estimator pass with a line before and after it: the rule runs without progress
    bars, and a full-entropy pass over a real pool can take most of an hour."""
    print(f"[estimator_bench] {what}: {n} samples ...", file=sys.stderr, flush=True)
    t0 = time.perf_counter()
    out = fn(*args)
    print(f"[estimator_bench] {what}: done in {time.perf_counter() - t0:.0f} s", file=sys.stderr, flush=True)
    return out


def measure_runs(model, tokenizer, records, cfg, ks, seeds, progress, template_kwargs) -> dict[tuple, list[Run]]:
    """(estimator, K) -> its run at each seed (one run for what samples nothing), every estimator
    timed in this process one after the other."""
    runs: dict[tuple, list[Run]] = {}
    n = len(records)
    for seed in seeds:
        runs.setdefault(("full", None), []).append(_stage(
            f"full entropy, seed {seed}", n, run_estimator, model, tokenizer, records, cfg, "full", seed, progress,
            template_kwargs))
        prefixes = _stage(f"prefix entropy K <= {max(ks)}, seed {seed}", n, prefix_runs, model, tokenizer, records,
                          cfg, ks, seed, progress, template_kwargs)
        for k, run in prefixes.items():
            runs.setdefault(("prefix", k), []).append(run)
    for kind in estimator.REFERENCE_KINDS:
        runs[(kind, None)] = [_stage(kind, n, run_estimator, model, tokenizer, records, cfg, kind, seeds[0], progress,
                                     template_kwargs)]
    if cfg["backend"] == "hf":  # vLLM has no forward pass without generation to time
        for name, kind in PREFILLS.items():
            runs[(name, None)] = [_stage(name, n, prefill_run, model, tokenizer, records, cfg, kind, template_kwargs)]
    return runs


def estimator_rows(label: str, runs: dict[tuple, list[Run]], records: list[dict], cfg: dict, top_n: int,
                   wrong: dict[str, dict[str, bool]]) -> list[dict]:
    """Rows of the estimator table for one model: per estimator (and K) and aggregation."""
    difficulty = {r["id"]: r["difficulty"] for r in records if r.get("difficulty") is not None}
    full = runs[("full", None)]
    full_seconds = statistics.fmean(r.seconds for r in full)
    rows = []
    for (kind, k), seeded in runs.items():
        cost = {"model": label, "table": "estimators", "estimator": kind, "k": k, "batch_size": cfg["batch_size"],
                "n_samples": len(records), "seconds_per_sample": statistics.fmean(r.seconds for r in seeded),
                "cpu_seconds_per_sample": statistics.fmean(r.cpu_seconds for r in seeded)}
        cost["speedup_vs_full"] = full_seconds / cost["seconds_per_sample"]
        if kind in PREFILLS:
            rows.append(cost)
            continue
        tokens = seeded[0].tokens()
        cost.update(mean_tokens=statistics.fmean(tokens), max_tokens=max(tokens))
        if kind == "prefix":
            cost["ended_before_k"] = statistics.fmean(t < k for t in tokens)
        for aggregate in AGGREGATES:
            scores = [r.scores(aggregate, cfg["top_frac"], kind) for r in seeded]
            references = [r.scores(aggregate, cfg["top_frac"], "full") for r in full]
            row = {**cost, "aggregate": aggregate,
                   **_mean_of([rank_agreement(scores[min(i, len(scores) - 1)], ref, top_n)
                               for i, ref in enumerate(references)]),
                   "spearman_vs_difficulty": statistics.fmean(spearman_with_difficulty(s, difficulty) for s in scores),
                   **{f"auroc_wrong_{mode}": statistics.fmean(auroc(s, wrong[mode]) for s in scores)
                      for mode in VALIDITY_MODES if mode in wrong}}
            if len(scores) > 1:
                row.update(retest(scores[0], scores[1], top_n))
            rows.append(row)
    return _with_ceilings(rows)


def _mean_of(dicts: list[dict]) -> dict:
    return {key: statistics.fmean(d[key] for d in dicts) for key in dicts[0]}


def _with_ceilings(rows: list[dict]) -> list[dict]:
    """agreement_ceiling per row: its retest (1 for an estimator that samples nothing) with full's."""
    full = {r["aggregate"]: r.get("retest_spearman", math.nan) for r in rows if r["estimator"] == "full"}
    for row in rows:
        if row["estimator"] in PREFILLS or row["estimator"] == "full":
            continue
        own = 1.0 if row["estimator"] in estimator.REFERENCE_KINDS else row.get("retest_spearman", math.nan)
        row["agreement_ceiling"] = agreement_ceiling(own, full[row["aggregate"]])
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


def torch_model(config: dict, name: str, checkpoint: str | None, device: str):
    """(model, tokenizer): the base model (the first seed's, as the fine-tuned run measured is
    the first seed's) or ``checkpoint``, as a torch model on ``device``."""
    if checkpoint:
        return load_model_from(checkpoint, device, config["models"][name]["dtype"])
    return load_model(config, name, device, base=base_label(config, name, config["seeds"][0]))


def load_models(config: dict, name: str, checkpoints: list[str], device: str):
    """(label, checkpoint, model, tokenizer) for the base model (checkpoint None), then each
    checkpoint; with the vLLM backend the model is the directory (or hub id) its engine loads,
    never a torch model."""
    vllm = config["estimator"]["backend"] == "vllm"
    for path in [None, *checkpoints]:
        # runs/<domain>/<model>/<paradigm>/<strategy>/seed<s>/<final|round..>: the tail says which
        label = f"{name} {'/'.join(Path(path).parts[-3:])}" if path else name
        yield label, path, *(estimator.load_scorer(config, name, path) if vllm
                             else torch_model(config, name, path, device))


def sample_pool(records: list[dict], limit: int | None, seed: int) -> list[dict]:
    """A seeded sample of ``limit`` records, not the first rows: pools are often grouped by
    level, and a one-level slice has no difficulty spread to correlate with."""
    if limit and limit < len(records):
        return random.Random(seed).sample(records, limit)
    return records


def bench_records(config: dict, domain: str, limit: int | None, seed: int) -> tuple[list[dict], int]:
    """(the benchmarked samples of ``domain``'s training pool, the pool's size)."""
    pool = io.read_jsonl(layout.data_file(config["run"], domain, "train"))
    return sample_pool(pool, limit, seed), len(pool)


def _load_average() -> str:
    return " ".join(f"{x:.1f}" for x in os.getloadavg())


def _wrong(answers: Answers | None, model, tokenizer, records) -> dict[str, dict[str, bool]]:
    """mode -> {id: answered wrong} of the measured model (nothing without ``answers``)."""
    if answers is None:
        return {}
    correct = answers(model, tokenizer, records)
    return {mode: {i: not ok for i, ok in by_id.items()} for mode, by_id in correct.items()}


def _wrong_for_engine(answers: Answers | None, config: dict, name: str, checkpoint: str | None, device: str,
                      records) -> dict[str, dict[str, bool]]:
    """``_wrong`` for a model the vLLM backend scores from its directory: the evaluation answers
    through a torch model of the same weights, loaded for it and freed before the engine starts."""
    if answers is None:
        return {}
    import torch

    model, tokenizer = torch_model(config, name, checkpoint, device)
    try:
        return _wrong(answers, model, tokenizer, records)
    finally:
        del model
        gc.collect()
        if torch.cuda.is_available():
            torch.cuda.empty_cache()


def run_bench(config: dict, config_path: str, domain: str, model: str, checkpoints: list[str], out_dir: str | Path,
              seed: int = 0, limit: int | None = None, repeats: int = 3, throughput_samples: int | None = None,
              progress: bool = True, answers: Answers | None = None) -> list[Path]:
    """Measure the base model (and each checkpoint) on ``domain``'s training pool; write
    estimator.csv, estimator.md and estimator_k.{png,pdf} into ``out_dir``. ``answers``: how to
    get a model's answers to the benchmarked questions (validity; None: not measured)."""
    import torch

    cfg, device, bench = config["estimator"], config["compute"]["device"], config["estimator_bench"]
    estimator.check_backend(cfg)
    records, pool = bench_records(config, domain, limit, seed)
    # Top-N at the curriculum's selection *fraction*: on a --limit sample, N of the whole pool
    # would be most of the sample, and its overlap near 1 whatever the ranking.
    n = round_budget(config, config["grid"]["paradigms"][0], model)[1]
    top_n = max(1, min(len(records), round(n * len(records) / pool)))
    ks = sorted(set(bench["prefix_ks"]) | {cfg["prefix_tokens"]})
    seeds = [seed, seed + 1] if bench["retest"] else [seed]
    n_throughput = min(len(records), throughput_samples or 4 * cfg["batch_size"])
    vllm = cfg["backend"] == "vllm"
    meta = {"run": config["run"], "domain": domain, "config": config_path, "pool": len(records), "top_n": top_n,
            "seeds": seeds, "temperature": cfg["temperature"], "top_p": cfg["top_p"], "entropy": cfg["entropy"],
            "full_max_tokens": cfg["full_max_tokens"], "batch_size": cfg["batch_size"],
            "config_k": cfg["prefix_tokens"], "aggregate": cfg["aggregate"], "torch": torch.__version__,
            "threads": torch.get_num_threads(), "device": device, "backend": cfg["backend"],
            "machine": f"{platform.machine()}, {os.cpu_count()} CPUs", "load_before": _load_average(),
            "validity": answers is not None}
    if vllm or not bench["throughput"]:
        meta["throughput_note"] = (
            "Not measured with the vLLM backend: vLLM batches continuously whatever estimator.batch_size says, so "
            "batched and one-at-a-time calls are the same call." if vllm else
            "Not measured (estimator_bench.throughput: false).")
    rows, template_kwargs = [], chat_template_kwargs(config["models"][model])
    t0, c0 = time.perf_counter(), time.process_time()
    for label, checkpoint, scorer, tokenizer in load_models(config, model, checkpoints, device):
        print(f"[estimator_bench] {label}: {len(records)} samples, K in {ks}, seeds {seeds}", file=sys.stderr)
        wrong = (_wrong_for_engine(answers, config, model, checkpoint, device, records) if vllm
                 else _wrong(answers, scorer, tokenizer, records))
        meta.setdefault("accuracy", {})[label] = {mode: 1 - statistics.fmean(w.values()) for mode, w in wrong.items()}
        start = time.perf_counter()
        # vLLM computes in models.<m>.dtype, not its "auto" (bf16 for an fp32 checkpoint).
        with (estimator.vllm_engine(scorer, tokenizer, cfg, seed, config["models"][model]["dtype"]) if vllm
              else nullcontext(scorer)) as engine:
            if vllm:
                meta.setdefault("engine_startup_seconds", {})[label] = time.perf_counter() - start
            runs = measure_runs(engine, tokenizer, records, cfg, ks, seeds, progress, template_kwargs)
            rows += estimator_rows(label, runs, records, cfg, top_n, wrong)
            if not vllm and bench["throughput"]:
                rows += measure_throughput(label, engine, tokenizer, records[:n_throughput], cfg, seed, repeats,
                                           template_kwargs)
            del engine  # a vLLM engine's last reference goes at its shutdown
    if vllm:
        startup = "; ".join(f"{label} {s:.1f} s" for label, s in meta["engine_startup_seconds"].items())
        meta["timing_note"] = (f"Backend vLLM: one engine per model, built before any timing (start-up, in no time "
                               f"per sample: {startup}); a time per sample is vLLM's generate call alone, its prefix "
                               "cache emptied before each call.")
    meta.update(load_after=_load_average(), wall_seconds=time.perf_counter() - t0, cpu_seconds=time.process_time() - c0)
    return write_outputs(pd.DataFrame(rows), meta, cfg["aggregate"], Path(out_dir))


def write_outputs(rows: pd.DataFrame, meta: dict, aggregate: str, out_dir: Path) -> list[Path]:
    """estimator.csv (COLUMNS), estimator.md, estimator.json (how it was measured) and
    estimator_k.{png,pdf} of one benchmark."""
    frame = rows.reindex(columns=COLUMNS)
    for column in ("k", "batch_size", "n_samples", "top_n", "max_tokens"):
        frame[column] = frame[column].astype("Int64")
    csv, md, js = out_dir / "estimator.csv", out_dir / "estimator.md", out_dir / "estimator.json"
    with io.atomic_path(csv) as tmp:
        frame.to_csv(tmp, index=False)
    io.write_json(js, meta)
    text = bench_markdown(frame, meta)
    io.write_text(md, text)
    figure = plot_estimator_k(frame.assign(domain=meta["domain"]), aggregate, meta["run"])
    print(text)
    return [csv, md, js, *save_figure(figure, out_dir / "estimator_k", ("png", "pdf"))]
