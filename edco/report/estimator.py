"""The estimator benchmark's tables: per domain x model its own Markdown (written by
``python -m edco estimator-bench``, edco.estimator_bench) and the grid's merged table
tables/estimator.* (every estimator's cost, agreement with full entropy, test-retest and
validity; prefix length K vs speed-up and rank agreement)."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

import edco.report.load as load
from edco.report.render import Section, formatted, markdown, prose, write_table

#: The paper: 2.24 s -> 0.37 s per sample, prefix (K = 128) vs full.
PAPER_SPEEDUP = 2.24 / 0.37
AGREEMENT = {"spearman_vs_full": "Spearman vs full", "kendall_vs_full": "Kendall vs full",
             "topn_overlap": "top-N overlap"}
#: Column -> (header, format) of every estimator table; a table shows those its frame has values for.
COLUMNS = {"domain": ("domain", ""), "model": ("model", ""), "estimator": ("estimator", ""), "k": ("K", "g"),
           "aggregate": ("aggregate", ""), "seconds_per_sample": ("s / sample", ".3g"),
           "cpu_seconds_per_sample": ("CPU s / sample", ".3g"), "speedup_vs_full": ("speed-up (×)", ".3g"),
           "mean_tokens": ("tokens scored", ".3g"), "ended_before_k": ("ended before K", ".2f"),
           **{c: (h, ".2f") for c, h in AGREEMENT.items()},
           "retest_spearman": ("retest ρ", ".2f"), "retest_kendall": ("retest τ", ".2f"),
           "retest_topn": ("retest top-N", ".2f"), "agreement_ceiling": ("ceiling ρ", ".2f"),
           "auroc_wrong_generate": ("AUROC wrong (gen.)", ".2f"),
           "auroc_wrong_loglikelihood": ("AUROC wrong (ll)", ".2f"),
           "spearman_vs_difficulty": ("Spearman vs difficulty", ".2f")}
LEGEND = prose(f"""
Every estimator on the same benchmarked pool samples, timed one after the other in one process:
prefix entropy at K tokens (the paper's), full-answer entropy, the one-forward estimators
(teacher-forced entropy and perplexity of the reference answer: no sampling) and the prefill-only
floors (one forward over the chat prompt / the quick-answer prompt, no answer: what every
estimator reading that prompt pays at least). Speed-up = full time ÷ the row's time. Agreement
with full (Spearman, Kendall, top-N overlap) is the mean over the sampling seeds at the same
seed; retest = the same statistics between the estimator's own scores at two seeds; ceiling ρ =
√(retest ρ × full's retest ρ), the most any agreement with full can reach (1 for an estimator
without sampling). AUROC wrong: how well the score separates the model's wrong answers on the
same questions (0.5 = not at all; generative and log-likelihood answers). The paper: 83.5 % less
time (speed-up {PAPER_SPEEDUP:.1f}×) at a ranking close to full.
""")


def estimator_rows(frame: pd.DataFrame, aggregate: str) -> pd.DataFrame:
    """The estimator rows of a benchmark frame at one aggregation, the prefill floors included."""
    rows = frame[frame["table"] == "estimators"]
    return rows[(rows["aggregate"] == aggregate) | rows["estimator"].str.startswith("prefill")]


def prefix_rows(frame: pd.DataFrame, aggregate: str) -> pd.DataFrame:
    """The prefix-at-K rows of a benchmark frame at one aggregation."""
    return frame[(frame["table"] == "estimators") & (frame["estimator"] == "prefix") & (frame["aggregate"] == aggregate)]


def shown(frame: pd.DataFrame, columns: list[str]) -> dict[str, tuple[str, str]]:
    """The headers of ``columns`` that hold a value somewhere in ``frame`` (a benchmark without
    retest or validity shows no empty columns)."""
    return {c: COLUMNS[c] for c in columns if c in frame and frame[c].notna().any()}


def write_estimator_table(config: dict) -> list[Path]:
    """tables/estimator.*: every domain x model benchmark merged; the section shows every
    estimator at the config's aggregation."""
    frame = load.estimator_runs(config)
    aggregate = config["estimator"]["aggregate"]
    rows = estimator_rows(frame, aggregate)
    columns = shown(rows, ["domain", "model", "estimator", "k", "seconds_per_sample", "speedup_vs_full",
                           "ended_before_k", *AGREEMENT, "retest_spearman", "agreement_ceiling",
                           "auroc_wrong_generate", "auroc_wrong_loglikelihood", "spearman_vs_difficulty"])
    section = Section(f"Every estimator vs full entropy ({aggregate} aggregation)", formatted(rows, columns))
    return write_table(config["run"], "estimator", f"Estimator benchmark — run `{config['run']}`", frame, [section],
                       LEGEND)


# --------------------------------------------------------------------------- one benchmark's Markdown
def cap_notes(frame: pd.DataFrame, aggregate: str) -> list[str]:
    """Where K is capped by the answers the model actually generates."""
    notes = []
    for model, rows in prefix_rows(frame, aggregate).groupby("model", sort=False):
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


def accuracy_note(meta: dict) -> list[str]:
    """The measured models' accuracy on the benchmarked questions (the validity labels)."""
    lines = [f"- {label}: " + ", ".join(f"{mode} {acc:.3f}" for mode, acc in modes.items())
             for label, modes in meta.get("accuracy", {}).items() if modes]
    return ["Accuracy on these questions (what AUROC wrong separates):", *lines, ""] if lines else []


def bench_markdown(frame: pd.DataFrame, meta: dict) -> str:
    """estimator.md of one domain's benchmark: every estimator at the config's aggregation (cost,
    agreement with full, test-retest, validity), the other aggregation, and batched vs
    one-at-a-time throughput. ``meta``: how it was measured."""
    aggregate = meta["aggregate"]
    other = "mean" if aggregate == "top_frac" else "top_frac"
    rows = estimator_rows(frame, aggregate)
    main = shown(rows, ["model", "estimator", "k", "seconds_per_sample", "cpu_seconds_per_sample", "speedup_vs_full",
                        "mean_tokens", "ended_before_k", *AGREEMENT, "retest_spearman", "retest_kendall",
                        "retest_topn", "agreement_ceiling", "auroc_wrong_generate", "auroc_wrong_loglikelihood",
                        "spearman_vs_difficulty"])
    second = estimator_rows(frame, other)
    second = second[~second["estimator"].str.startswith("prefill")]
    brief = shown(second, ["model", "estimator", "k", "spearman_vs_full", "retest_spearman", "agreement_ceiling",
                           "auroc_wrong_generate", "auroc_wrong_loglikelihood", "spearman_vs_difficulty"])
    throughput = {"model": ("model", ""), "k": ("K", "g"), "batch_size": ("batch size", "g"),
                  "n_samples": ("samples", "g"), "seconds_per_sample": ("s / sample (median)", ".3g"),
                  "batched_vs_one_at_a_time": ("batched ÷ one-at-a-time speed", ".3g")}
    seeds = ", ".join(map(str, meta["seeds"]))
    return "\n".join([
        f"# Estimator benchmark: {meta['domain']} ({meta['config']})", "",
        f"Pool: {meta['pool']} training samples of `{meta['domain']}`; top-N: N = {meta['top_n']} (by chance "
        f"{meta['top_n'] / meta['pool']:.3f} overlap); sampling seeds {seeds}; temperature {meta['temperature']}, "
        f"top-p {meta['top_p']}, entropy `{meta['entropy']}`, full answers capped at {meta['full_max_tokens']} "
        f"tokens; batch size {meta['batch_size']}; backend {meta['backend']}.",
        f"Machine: {meta['machine']}; torch {meta['torch']}, {meta['threads']} thread(s), device {meta['device']}; "
        f"load average {meta['load_before']} before, {meta['load_after']} after (other jobs share the CPU, "
        f"so absolute times are indicative; ratios measured side by side are more robust). "
        f"The whole benchmark: {meta['wall_seconds']:.0f} s wall, {meta['cpu_seconds']:.0f} s CPU.",
        *([meta["timing_note"]] if "timing_note" in meta else []), "",
        *accuracy_note(meta),
        f"## Every estimator ({aggregate} aggregation)", "",
        LEGEND, "",
        markdown(formatted(rows, main)), "",
        *cap_notes(frame, aggregate), "",
        f"## The same at the {other} aggregation", "",
        markdown(formatted(second, brief)), "",
        "## Batched vs one-at-a-time scoring (prefix estimator, same samples)", "",
        meta["throughput_note"] if "throughput_note" in meta else
        markdown(formatted(frame[frame["table"] == "throughput"], throughput)), "",
    ])
