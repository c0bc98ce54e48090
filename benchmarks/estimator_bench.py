"""Estimator benchmark: what the prefix estimator saves and what ranking it keeps (DESIGN §1.1,
the paper's 2.24 s -> 0.37 s per sample "with a ranking close to full-sequence entropy").

    .venv/bin/python benchmarks/estimator_bench.py --config config/smoke.yaml --domain law --model qwen3 \\
        --out-dir results/smoke/benchmarks/estimator/law/qwen3
    # fine-tuned checkpoints side by side with the base model (repeat --checkpoint):
    .venv/bin/python benchmarks/estimator_bench.py --config config/smoke.yaml --domain law --model qwen3 \\
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
  samples, median of --repeats interleaved runs.
A prefix of K tokens is capped by what the model generates: ``ended_before_k`` is the share of
answers that stopped (EOS) before K, and the Markdown says when K exceeds every answer.

Writes estimator.csv, estimator.md, estimator_k.png and estimator_k.pdf into --out-dir
(atomically) and prints the tables.
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import sys
import time
import warnings
from pathlib import Path

import numpy as np
import torch

from edco import curriculum, estimator, io, layout
from edco.config import load_config, round_budget

PREFIX_KS = (4, 8, 16, 32, 64, 128)
AGGREGATES = ("top_frac", "mean")
COLUMNS = ["model", "table", "estimator", "k", "aggregate", "batch_size", "n_samples", "seconds_per_sample",
           "speedup_vs_full", "mean_tokens", "max_tokens", "ended_before_k", "spearman_vs_full", "kendall_vs_full",
           "topn_overlap", "top_n", "spearman_vs_difficulty", "batched_vs_one_at_a_time"]


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--config", required=True, help="run configuration (YAML)")
    parser.add_argument("--domain", required=True, help="domain whose training pool is scored")
    parser.add_argument("--model", required=True, help="model name (a key of `models`); its base model is measured")
    parser.add_argument("--checkpoint", action="append", default=[], help="also measure this checkpoint (repeatable)")
    parser.add_argument("--out-dir", required=True, help="where estimator.{csv,md} and estimator_k.{png,pdf} go")
    parser.add_argument("--seed", type=int, default=0, help="sampling seed")
    parser.add_argument("--limit", type=int, default=None, help="a seeded random N of the pool samples (quick look)")
    parser.add_argument("--repeats", type=int, default=3, help="repeats of the batched vs one-at-a-time timing")
    parser.add_argument("--throughput-samples", type=int, default=None,
                        help="samples in the batched vs one-at-a-time timing (default: 4 x batch size, capped by the pool)")
    parser.add_argument("--no-progress", action="store_true", help="no tqdm bars")
    return parser.parse_args(argv)


# ----------------------------------------------------------------------------------------------
# Rank statistics


def rank_agreement(scores: dict[str, float], reference: dict[str, float], top_n: int) -> dict:
    """Spearman, Kendall tau-b and top-N overlap (fraction) of ``scores`` against ``reference``."""
    from scipy import stats

    ids = list(reference)
    a, b = [scores[i] for i in ids], [reference[i] for i in ids]
    with warnings.catch_warnings():  # a constant vector has no rank correlation: NaN, said so in the table
        warnings.simplefilter("ignore")
        rho = stats.spearmanr(a, b).statistic
        tau = stats.kendalltau(a, b).statistic
    overlap = len(set(curriculum.top_n(scores, top_n)) & set(curriculum.top_n(reference, top_n))) / top_n
    return {"spearman_vs_full": float(rho), "kendall_vs_full": float(tau), "topn_overlap": overlap, "top_n": top_n}


def spearman_with_difficulty(scores: dict[str, float], difficulty: dict[str, float]) -> float:
    from scipy import stats

    if not difficulty:
        return float("nan")
    ids = list(difficulty)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return float(stats.spearmanr([scores[i] for i in ids], [difficulty[i] for i in ids]).statistic)


# ----------------------------------------------------------------------------------------------
# Measurements


def run_estimator(model, tokenizer, records, cfg, kind, seed, progress) -> dict:
    """Token entropies of one estimator over the pool, and its wall time per sample."""
    t0 = time.perf_counter()
    samples = estimator.token_entropies(model, tokenizer, records, cfg, kind, seed, progress)
    return {"samples": samples, "seconds_per_sample": (time.perf_counter() - t0) / len(records)}


def scores_of(run: dict, aggregate: str, top_frac: float) -> dict[str, float]:
    return {s["id"]: estimator.aggregate(s["entropies"], aggregate, top_frac) for s in run["samples"]}


def mean_tokens(run: dict) -> float:
    return statistics.fmean(len(s["entropies"]) for s in run["samples"])


def measure_model(label: str, model, tokenizer, records: list[dict], cfg: dict, ks: list[int], top_n: int,
                  seed: int, progress: bool) -> list[dict]:
    """Rows of the estimator table for one model."""
    difficulty = {r["id"]: r["difficulty"] for r in records if r.get("difficulty") is not None}
    runs = {("full", None): run_estimator(model, tokenizer, records, cfg, "full", seed, progress),
            ("teacher_forced", None): run_estimator(model, tokenizer, records, cfg, "teacher_forced", seed, progress)}
    for k in ks:
        runs[("prefix", k)] = run_estimator(model, tokenizer, records, dict(cfg, prefix_tokens=k), "prefix", seed,
                                            progress)
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
                       repeats: int) -> list[dict]:
    """Prefix estimator at the config's K, batched vs one at a time, on the same samples; the two
    alternate within each repeat so that load from other processes hits both alike."""
    timings = {cfg["batch_size"]: [], 1: []}
    for _ in range(repeats):
        for batch_size in timings:
            t0 = time.perf_counter()
            estimator.score_pool(model, tokenizer, records, dict(cfg, batch_size=batch_size), "prefix", seed, False)
            timings[batch_size].append((time.perf_counter() - t0) / len(records))
    medians = {b: statistics.median(t) for b, t in timings.items()}
    ratio = medians[1] / medians[cfg["batch_size"]]
    return [{"model": label, "table": "throughput", "estimator": "prefix", "k": cfg["prefix_tokens"],
             "aggregate": cfg["aggregate"], "batch_size": b, "n_samples": len(records),
             "seconds_per_sample": medians[b], "batched_vs_one_at_a_time": ratio} for b in timings]


# ----------------------------------------------------------------------------------------------
# Output


def fmt(value, digits: int = 3) -> str:
    if value is None or (isinstance(value, float) and value != value):
        return "–"
    if isinstance(value, (float, np.floating)):
        return f"{value:.{digits}f}" if abs(value) >= 10 ** -digits or value == 0 else f"{value:.2e}"
    return str(value)


def markdown_table(frame, columns: dict[str, str]) -> str:
    import pandas as pd

    lines = ["| " + " | ".join(columns.values()) + " |", "|" + "---|" * len(columns)]
    for _, row in frame.iterrows():
        lines.append("| " + " | ".join(fmt(None if pd.isna(row[c]) else row[c]) for c in columns) + " |")
    return "\n".join(lines)


def cap_notes(frame) -> list[str]:
    """Say where K is capped by the answers the model actually generates."""
    notes = []
    prefix = frame[(frame["table"] == "estimators") & (frame["estimator"] == "prefix") & (frame["aggregate"] == "top_frac")]
    for model, rows in prefix.groupby("model", sort=False):
        capped = rows[rows["ended_before_k"] >= 1.0]["k"].tolist()
        partly = rows[(rows["ended_before_k"] > 0) & (rows["ended_before_k"] < 1.0)]
        if capped:
            notes.append(f"- {model}: every quick answer ended before K for K ∈ {{{', '.join(map(str, map(int, capped)))}}}: "
                         f"those rows score the whole quick answer (the longest has {int(rows['max_tokens'].max())} "
                         f"tokens, the mean {rows['mean_tokens'].max():.1f}), not K tokens.")
        for _, r in partly.iterrows():
            notes.append(f"- {model}: K = {int(r['k'])}: {r['ended_before_k']:.0%} of quick answers ended before K "
                         f"(mean {r['mean_tokens']:.1f} tokens scored).")
    return notes


def write_markdown(frame, meta: dict, path: Path) -> str:
    est = frame[frame["table"] == "estimators"]
    prefix = est[est["estimator"] == "prefix"]
    sweep_cols = {"model": "model", "k": "K", "aggregate": "aggregate", "seconds_per_sample": "s / sample",
                  "speedup_vs_full": "speed-up vs full (×)", "mean_tokens": "tokens scored",
                  "ended_before_k": "ended before K", "spearman_vs_full": "Spearman vs full",
                  "kendall_vs_full": "Kendall vs full", "topn_overlap": f"top-{meta['top_n']} overlap",
                  "spearman_vs_difficulty": "Spearman vs difficulty"}
    config_k = est[(est["estimator"] != "prefix") | (est["k"] == meta["config_k"])]
    diff_cols = {"model": "model", "estimator": "estimator", "k": "K", "aggregate": "aggregate",
                 "seconds_per_sample": "s / sample", "speedup_vs_full": "speed-up vs full (×)",
                 "mean_tokens": "tokens scored", "spearman_vs_difficulty": "Spearman vs difficulty"}
    thr = frame[frame["table"] == "throughput"]
    thr_cols = {"model": "model", "k": "K", "batch_size": "batch size", "n_samples": "samples",
                "seconds_per_sample": "s / sample (median)", "batched_vs_one_at_a_time": "batched ÷ one-at-a-time speed"}
    text = "\n".join([
        f"# Estimator benchmark: {meta['domain']} ({meta['config']})", "",
        f"Pool: {meta['pool']} training samples of `{meta['domain']}`; top-N: N = {meta['top_n']}; seed {meta['seed']}; "
        f"sampling temperature {meta['temperature']}, top-p {meta['top_p']}, entropy `{meta['entropy']}`, "
        f"full answers capped at {meta['full_max_tokens']} tokens; batch size {meta['batch_size']}.",
        f"Machine: {meta['machine']}; torch {meta['torch']}, {meta['threads']} thread(s), device {meta['device']}; "
        f"load average {meta['load_before']} before, {meta['load_after']} after (other jobs share the CPU, "
        f"so absolute times are indicative; ratios measured side by side are more robust).", "",
        "## Prefix length K vs full-sequence entropy", "",
        "Speed-up = full time ÷ prefix time per sample. Prefix and full use different prompts (raw quick-answer "
        "vs chat template), so even a prefix covering the whole answer need not rank like full. "
        f"Top-{meta['top_n']} overlap by chance: {meta['top_n'] / meta['pool']:.3f}.", "",
        markdown_table(prefix, sweep_cols), "",
        *cap_notes(frame), "",
        f"## Every estimator vs known difficulty (prefix at the config's K = {meta['config_k']})", "",
        markdown_table(config_k, diff_cols), "",
        "## Batched vs one-at-a-time scoring (prefix estimator, same samples)", "",
        markdown_table(thr, thr_cols), "",
    ])
    io.write_text(path, text)
    return text


def write_plot(frame, meta: dict, out_dir: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import seaborn as sns

    prefix = frame[(frame["table"] == "estimators") & (frame["estimator"] == "prefix") & (frame["aggregate"] == meta["aggregate"])]
    agreement = prefix.melt(id_vars=["model", "k"], value_vars=["spearman_vs_full", "kendall_vs_full", "topn_overlap"],
                            var_name="statistic", value_name="agreement")
    agreement["statistic"] = agreement["statistic"].map(
        {"spearman_vs_full": "Spearman ρ", "kendall_vs_full": "Kendall τ", "topn_overlap": f"top-{meta['top_n']} overlap"})
    sns.set_theme(style="whitegrid", context="paper")
    fig, (left, right) = plt.subplots(1, 2, figsize=(9, 4.2))
    sns.lineplot(data=prefix, x="k", y="speedup_vs_full", hue="model", marker="o", ax=left, legend=False)
    left.axhline(1.0, color="grey", lw=0.8, ls="--")
    left.set(xscale="log", xlabel="prefix length K (tokens)", ylabel="speed-up vs full entropy (×, time per sample)",
             title="cost")
    sns.lineplot(data=agreement, x="k", y="agreement", hue="model", style="statistic", marker="o", ax=right)
    right.set(xscale="log", xlabel="prefix length K (tokens)", ylabel="agreement with full entropy (ρ, τ, fraction)",
              title=f"ranking ({meta['aggregate']} aggregation)")
    for ax in (left, right):
        ax.set_xticks(meta["ks"], [str(k) for k in meta["ks"]])
        ax.minorticks_off()
    # One legend per axis of variation, under the plots where they hide no data.
    handles, labels = right.get_legend_handles_labels()
    right.get_legend().remove()
    split = labels.index("statistic")
    models = list(zip(handles[1:split], labels[1:split]))
    statistics_ = list(zip(handles[split + 1:], labels[split + 1:]))
    fig.legend(*zip(*models), title="model", loc="lower left", bbox_to_anchor=(0.08, 0), fontsize=7, frameon=False)
    fig.legend(*zip(*statistics_), title="statistic", loc="lower left", bbox_to_anchor=(0.58, 0), fontsize=7,
               frameon=False)
    fig.suptitle(f"Prefix vs full entropy: {meta['domain']}, {Path(meta['config']).name}", fontsize=10)
    fig.tight_layout(rect=(0, 0.045 * max(len(models), len(statistics_)) + 0.05, 1, 1))
    for ext in ("png", "pdf"):
        with io.atomic_path(out_dir / f"estimator_k.{ext}") as tmp:
            fig.savefig(tmp, format=ext, dpi=150)
    plt.close(fig)


# ----------------------------------------------------------------------------------------------


def load_models(config: dict, name: str, checkpoints: list[str], device: str):
    """(label, model, tokenizer) for the base model, then each checkpoint."""
    from edco.models import load_model, load_model_from

    yield name, *load_model(config, name, device)
    for path in checkpoints:
        # runs/<domain>/<model>/<paradigm>/<strategy>/seed<s>/<final|round..>: the tail says which
        yield f"{name} {'/'.join(Path(path).parts[-3:])}", *load_model_from(path, device, config["models"][name]["dtype"])


def main(argv: list[str] | None = None) -> int:
    import pandas as pd

    args = parse_args(argv)
    config = load_config(args.config)
    cfg = config["estimator"]
    estimator.check_backend(cfg)
    compute = config.get("compute", {})
    torch.set_num_threads(compute.get("threads", 1))
    records = io.read_jsonl(layout.data_file(config["run"], args.domain, "train"))
    pool_size = len(records)
    if args.limit and args.limit < len(records):
        # A seeded sample, not the first rows: pools are often grouped by level, and a
        # one-level slice has no difficulty spread to correlate with.
        import random

        records = random.Random(args.seed).sample(records, args.limit)
    # Top-N at the curriculum's selection *fraction*: on a --limit sample, N of the whole pool
    # would be most of the sample, and its overlap near 1 whatever the ranking.
    n = round_budget(config, config["grid"]["paradigms"][0], args.model)[1]
    top_n = max(1, min(len(records), round(n * len(records) / pool_size)))
    ks = sorted(set(PREFIX_KS) | {cfg["prefix_tokens"]})
    n_throughput = min(len(records), args.throughput_samples or 4 * cfg["batch_size"])
    meta = {"domain": args.domain, "config": args.config, "pool": len(records), "top_n": top_n, "seed": args.seed,
            "temperature": cfg["temperature"], "top_p": cfg["top_p"], "entropy": cfg["entropy"],
            "aggregate": cfg["aggregate"], "full_max_tokens": cfg["full_max_tokens"], "batch_size": cfg["batch_size"],
            "config_k": cfg["prefix_tokens"], "ks": ks, "torch": torch.__version__, "threads": torch.get_num_threads(),
            "device": compute.get("device", "cpu"), "machine": f"{platform.machine()}, {os.cpu_count()} CPUs",
            "load_before": " ".join(f"{x:.1f}" for x in os.getloadavg())}
    rows = []
    for label, model, tokenizer in load_models(config, args.model, args.checkpoint, meta["device"]):
        print(f"[estimator_bench] {label}: {len(records)} samples, K in {ks}", file=sys.stderr)
        rows += measure_model(label, model, tokenizer, records, cfg, ks, top_n, args.seed, not args.no_progress)
        rows += measure_throughput(label, model, tokenizer, records[:n_throughput], cfg, args.seed, args.repeats)
    meta["load_after"] = " ".join(f"{x:.1f}" for x in os.getloadavg())

    frame = pd.DataFrame(rows).reindex(columns=COLUMNS)
    for column in ("k", "batch_size", "n_samples", "top_n", "max_tokens"):
        frame[column] = frame[column].astype("Int64")
    out_dir = Path(args.out_dir)
    with io.atomic_path(out_dir / "estimator.csv") as tmp:
        frame.to_csv(tmp, index=False)
    text = write_markdown(frame, meta, out_dir / "estimator.md")
    write_plot(frame, meta, out_dir)
    print(text)
    print(f"[estimator_bench] wrote {out_dir}/estimator.{{csv,md}}, estimator_k.{{png,pdf}}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
