"""The estimator benchmark's tables: per domain x model its own Markdown (written by
``python -m edco estimator-bench``, edco.estimator_bench) and the grid's merged table
tables/estimator.* (prefix length K vs speed-up and rank agreement with full entropy)."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

import edco.report.load as load
from edco.report.render import Section, formatted, markdown, write_table

#: The paper: 2.24 s -> 0.37 s per sample, prefix (K = 128) vs full.
PAPER_SPEEDUP = 2.24 / 0.37
AGREEMENT = {"spearman_vs_full": "Spearman vs full", "kendall_vs_full": "Kendall vs full",
             "topn_overlap": "top-N overlap"}
K_COLUMNS = {"domain": ("domain", ""), "model": ("model", ""), "k": ("K", "g"),
             "seconds_per_sample": ("s / sample", ".3g"), "speedup_vs_full": ("speed-up (×)", ".3g"),
             "ended_before_k": ("ended before K", ".3g"), **{c: (h, ".3g") for c, h in AGREEMENT.items()},
             "spearman_vs_difficulty": ("Spearman vs difficulty", ".3g")}


def prefix_rows(frame: pd.DataFrame, aggregate: str) -> pd.DataFrame:
    """The prefix-at-K rows of a benchmark frame at one aggregation."""
    return frame[(frame["table"] == "estimators") & (frame["estimator"] == "prefix") & (frame["aggregate"] == aggregate)]


def write_estimator_table(config: dict) -> list[Path]:
    """tables/estimator.*: every domain x model benchmark merged; the sections show the prefix
    rows at the config's aggregation."""
    frame = load.estimator_runs(config)
    aggregate = config["estimator"]["aggregate"]
    note = (f"Prefix entropy at K tokens vs full-sequence entropy ({aggregate} aggregation), on each base model and "
            "one fine-tuned run: seconds per sample, speed-up over full, share of quick answers that ended before K, "
            "rank agreement with full (Spearman, Kendall, top-N overlap) and Spearman with known difficulty. "
            f"The paper: 83.5 % less time (speed-up {PAPER_SPEEDUP:.1f}×) at a ranking close to full.")
    section = Section("Prefix length K vs full entropy", formatted(prefix_rows(frame, aggregate), K_COLUMNS))
    return write_table(config["run"], "estimator", f"Estimator benchmark — run `{config['run']}`", frame, [section],
                       note)


# --------------------------------------------------------------------------- one benchmark's Markdown
def cap_notes(frame: pd.DataFrame) -> list[str]:
    """Where K is capped by the answers the model actually generates."""
    notes = []
    for model, rows in prefix_rows(frame, "top_frac").groupby("model", sort=False):
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


def bench_markdown(frame: pd.DataFrame, meta: dict) -> str:
    """estimator.md of one domain's benchmark: the K sweep, every estimator against known
    difficulty, batched vs one-at-a-time throughput. ``meta``: how it was measured."""
    est = frame[frame["table"] == "estimators"]
    sweep = {"model": ("model", ""), "k": ("K", "g"), "aggregate": ("aggregate", ""),
             "seconds_per_sample": ("s / sample", ".3g"), "speedup_vs_full": ("speed-up vs full (×)", ".3g"),
             "mean_tokens": ("tokens scored", ".3g"), "ended_before_k": ("ended before K", ".3g"),
             "spearman_vs_full": ("Spearman vs full", ".3g"), "kendall_vs_full": ("Kendall vs full", ".3g"),
             "topn_overlap": (f"top-{meta['top_n']} overlap", ".3g"),
             "spearman_vs_difficulty": ("Spearman vs difficulty", ".3g")}
    difficulty = {"model": sweep["model"], "estimator": ("estimator", ""),
                  **{c: sweep[c] for c in ("k", "aggregate", "seconds_per_sample", "speedup_vs_full", "mean_tokens",
                                           "spearman_vs_difficulty")}}
    throughput = {"model": ("model", ""), "k": ("K", "g"), "batch_size": ("batch size", "g"),
                  "n_samples": ("samples", "g"), "seconds_per_sample": ("s / sample (median)", ".3g"),
                  "batched_vs_one_at_a_time": ("batched ÷ one-at-a-time speed", ".3g")}
    at_config_k = est[(est["estimator"] != "prefix") | (est["k"] == meta["config_k"])]
    return "\n".join([
        f"# Estimator benchmark: {meta['domain']} ({meta['config']})", "",
        f"Pool: {meta['pool']} training samples of `{meta['domain']}`; top-N: N = {meta['top_n']}; seed {meta['seed']}; "
        f"sampling temperature {meta['temperature']}, top-p {meta['top_p']}, entropy `{meta['entropy']}`, "
        f"full answers capped at {meta['full_max_tokens']} tokens; batch size {meta['batch_size']}.",
        f"Machine: {meta['machine']}; torch {meta['torch']}, {meta['threads']} thread(s), device {meta['device']}; "
        f"load average {meta['load_before']} before, {meta['load_after']} after (other jobs share the CPU, "
        f"so absolute times are indicative; ratios measured side by side are more robust).",
        *([meta["timing_note"]] if "timing_note" in meta else []), "",
        "## Prefix length K vs full-sequence entropy", "",
        "Speed-up = full time ÷ prefix time per sample. Prefix and full use different prompts (raw quick-answer "
        "vs chat template), so even a prefix covering the whole answer need not rank like full. "
        f"Top-{meta['top_n']} overlap by chance: {meta['top_n'] / meta['pool']:.3f}.", "",
        markdown(formatted(est[est["estimator"] == "prefix"], sweep)), "",
        *cap_notes(frame), "",
        f"## Every estimator vs known difficulty (prefix at the config's K = {meta['config_k']})", "",
        markdown(formatted(at_config_k, difficulty)), "",
        "## Batched vs one-at-a-time scoring (prefix estimator, same samples)", "",
        meta["throughput_note"] if "throughput_note" in meta else
        markdown(formatted(frame[frame["table"] == "throughput"], throughput)), "",
    ])
