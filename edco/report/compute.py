"""The compute-matched comparison: at equal total compute (scoring + training), which strategy wins?

    python -m edco table --config config/smoke.yaml --compute     # tables/compute.{csv,md,tex,html}

Per domain x model x paradigm x evaluation mode, every strategy with its accuracy (mean ± sd
over seeds, 95 % t-interval; Δ and p against ``random`` from ``main.main_rows``) and its
compute: scoring + selecting + training wall-clock summed over rounds, mean over seeds
(``cost.cost_frame``), also relative to ``random``. Rows are sorted
by accuracy. A strategy is on the **Pareto front** when no other strategy of the cell is at
least as accurate and at most as expensive (and strictly better in one). The **verdict**
is the most accurate strategy whose compute is at most random's x (1 + tolerance), and
whether it beats random with p < 0.05 — otherwise the cell is a tie at equal compute.

Wall-clock on a shared CPU is noisy. The optimiser budget (steps, sample visits) is matched
across strategies, so what differs is scoring (and the cost per step of the selected
samples). The verdict is computed twice: once on the wall-clock ratio, once on a load-robust
ratio that uses only the within-run ratio scoring ÷ training, (1 + s/t) / (1 + s/t of
random); when the two disagree the verdict says so. Scoring tokens (tokens the estimator
generated or read, deterministic for a seed) are shown as the deterministic scoring proxy.

A grid with a ``random_matched`` arm (random trained to another strategy's total compute)
gets each strategy's test against it too, and the verdict says whether the winner also beats
random at equal compute. EDCO's cheaper variants are compared with ``edco`` itself.
"""

from __future__ import annotations

import math
from pathlib import Path

import pandas as pd

import edco.report.load as load
from edco.report.cost import COMPUTE_MATCHED, cost_frame
from edco.report.load import CELL_KEYS
from edco.report.main import main_rows
from edco.report.render import Section, estimate, fmt, mean_sd, prose, write_table
from edco.report.stats import ALPHA, cell_matrices, pareto_front, versus

#: Compute within random's x (1 + TOLERANCE) counts as "equal compute" for the verdict.
TOLERANCE = 0.10
GROUP_KEYS = ["domain", "model", "paradigm", "mode"]
#: EDCO's cheaper variants (issue 7), compared with ``edco`` on savings and accuracy.
VARIANTS = ("edco_partial", "edco_early_stop")
SAVED_COLUMNS = ["scoring_saved_vs_edco", "tokens_saved_vs_edco", "compute_saved_vs_edco"]
VS_EDCO = ["diff_vs_edco", "diff_vs_edco_low", "diff_vs_edco_high", "p_vs_edco"]
#: Random at another strategy's total compute (issue 18); a cell has it when the grid runs it.
MATCHED = COMPUTE_MATCHED[0]
VS_MATCHED = ["diff_vs_matched", "diff_vs_matched_low", "diff_vs_matched_high", "p_vs_matched"]


def compute_frame(config: dict, tolerance: float = TOLERANCE) -> pd.DataFrame:
    """One row per (domain, model, paradigm, mode, strategy): accuracy statistics, compute,
    ratios to random, ``pareto``, ``within_budget``, the cell's ``winner`` / ``verdict``; the
    variants' savings and accuracy against edco; every strategy's test against random_matched."""
    evals = load.evaluations(config)
    questions = load.questions(evals)
    matrices = cell_matrices(questions)
    rows = [r for r in main_rows(load.accuracies(evals), questions) if r["strategy"] != "base"]
    frame = pd.DataFrame(rows).merge(cost_frame(load.timing(config)).drop(columns=["n_seeds"]), on=CELL_KEYS,
                                     how="left")
    frame = against(frame, matrices, "edco", VS_EDCO, only=VARIANTS)
    frame = against(frame, matrices, MATCHED, VS_MATCHED)
    frame = add_variant_savings(frame)
    parts = [_rank_cell(group, tolerance) for _, group in frame.groupby(GROUP_KEYS, sort=False)]
    return pd.concat(parts, ignore_index=True)


def against(frame: pd.DataFrame, matrices: dict, reference: str, columns: list[str],
            only: tuple[str, ...] | None = None) -> pd.DataFrame:
    """``columns`` (diff, low, high, p): each row's test against ``reference`` on the same
    questions and seeds, for the rows of ``only`` (default: every strategy but the reference)
    whose cell ran the reference too; NaN elsewhere."""
    frame = frame.copy()
    frame[columns] = math.nan
    for index, row in frame.iterrows():
        ref = (row["domain"], row["model"], row["paradigm"], reference, row["mode"])
        if row["strategy"] == reference or (only and row["strategy"] not in only) or ref not in matrices:
            continue
        test = versus(matrices[(*ref[:3], row["strategy"], ref[4])], matrices[ref])
        frame.loc[index, columns] = [test["diff"], test["low"], test["high"], test["p"]]
    return frame


def _saved(value: float, reference: float) -> float:
    return 1 - value / reference if reference else math.nan


def add_variant_savings(frame: pd.DataFrame) -> pd.DataFrame:
    """On the variant rows whose cell also ran ``edco``: the share of edco's scoring seconds,
    scoring tokens and total compute the variant saved (negative = cost more); NaN elsewhere."""
    frame = frame.copy()
    frame[SAVED_COLUMNS] = math.nan
    for _, group in frame.groupby(GROUP_KEYS, sort=False):
        edco = group[group["strategy"] == "edco"]
        if edco.empty:
            continue
        ref = edco.iloc[0]
        for index, row in group[group["strategy"].isin(VARIANTS)].iterrows():
            frame.loc[index, SAVED_COLUMNS] = [_saved(row[c], ref[c]) for c in
                                               ("scoring_seconds", "scoring_tokens", "total_seconds")]
    return frame


def _rank_cell(group: pd.DataFrame, tolerance: float) -> pd.DataFrame:
    """One cell: ratios to random, Pareto front, budget flag and verdict; sorted by accuracy."""
    group = group.sort_values(["mean", "total_seconds"], ascending=[False, True]).copy()
    random_row = group[group["strategy"] == "random"]
    if random_row.empty:
        group["compute_vs_random"] = group["robust_vs_random"] = math.nan
    else:
        ref = random_row.iloc[0]
        group["compute_vs_random"] = group["total_seconds"] / ref["total_seconds"]
        group["robust_vs_random"] = (1 + group["scoring_overhead"]) / (1 + ref["scoring_overhead"])
    group["pareto"] = pareto_front(group["mean"].tolist(), group["total_seconds"].tolist())
    group["within_budget"] = group["compute_vs_random"] <= 1 + tolerance
    winner = best_within(group, "compute_vs_random", tolerance)
    robust = best_within(group, "robust_vs_random", tolerance)
    group["winner"] = winner
    group["verdict"] = verdict(group, winner, robust, tolerance)
    return group


def best_within(group: pd.DataFrame, ratio: str, tolerance: float) -> str | None:
    """The most accurate strategy with ``ratio`` <= 1 + tolerance (ties: the cheaper); None
    when the cell has no random to compare with. random_matched is a reference, never a winner."""
    eligible = group[(group[ratio] <= 1 + tolerance) & (group["strategy"] != MATCHED)]
    if eligible.empty:
        return None
    return eligible.sort_values(["mean", "total_seconds"], ascending=[False, True]).iloc[0]["strategy"]


def verdict(group: pd.DataFrame, winner: str | None, robust: str | None, tolerance: float) -> str:
    """One sentence per cell: who wins at equal compute, and whether that is more than a tie."""
    if winner is None:
        return "no random in this cell: no compute reference"
    budget = f"at ≤ random's compute (+{fmt(tolerance, '.0%')} wall-clock)"
    by_strategy = group.set_index("strategy")
    row = by_strategy.loc[winner]
    if winner == "random":
        text = f"{budget}: random is the most accurate ({fmt(row['mean'], '.3f')})"
    else:
        p, diff = row["p_vs_random"], row["diff_vs_random"]
        significant = p < ALPHA and diff > 0
        text = (f"{budget}: {winner} wins ({fmt(row['mean'], '.3f')}, Δ{fmt(diff, '+.3f')} vs random, "
                f"p={fmt(p, '.2g')}, {fmt(row['compute_vs_random'], '.2f')}× random's compute)"
                + ("" if significant else f" — not significant at p < {ALPHA}: a tie with random"))
    if robust != winner:
        text += f"; by the load-robust ratio (scoring ÷ training) it would be {robust}"
    noise = (group["total_seconds_sd"] / group["total_seconds"]).median()
    if noise == noise and noise > tolerance:
        text += (f"; caution: wall-clock varies {fmt(noise, '.0%')} between seeds of a strategy (median sd ÷ mean), "
                 f"more than the {fmt(tolerance, '.0%')} tolerance, so which strategies count as equal-compute is "
                 f"itself noisy")
    if not group["budget_matched"].all():
        text += "; BUDGET MISMATCH in this cell (see the cost table): the comparison is not budget-matched"
    text += _matched_text(by_strategy, winner)
    best = group.iloc[0]
    if best["strategy"] != winner:
        text += (f". Most accurate at any compute: {best['strategy']} ({fmt(best['mean'], '.3f')}, "
                 f"{fmt(best['compute_vs_random'], '.2f')}× random's compute)")
    return text + "."


def _matched_text(by_strategy: pd.DataFrame, winner: str) -> str:
    """What random_matched (random at the winner's compute) says, when the cell has it."""
    if MATCHED not in by_strategy.index or winner in ("random", MATCHED):
        return ""
    row = by_strategy.loc[winner]
    beats = row["p_vs_matched"] < ALPHA and row["diff_vs_matched"] > 0
    return (f"; against {MATCHED} (random at equal total compute) {winner} is "
            f"{estimate(row['diff_vs_matched'], row['diff_vs_matched_low'], row['diff_vs_matched_high'], row['p_vs_matched'])}"
            f": {'it beats random at equal compute' if beats else 'no win at equal compute'}")


# --------------------------------------------------------------------------- output
LEGEND = prose("""
Per cell, strategies sorted by accuracy (mean ± sd over seeds [95 % t-interval]); Δ = accuracy
minus random on the same questions and seeds [95 % interval], p = the main table's test. Compute
= scoring + selecting + training wall-clock per run, all rounds, mean ± sd over seeds; × random
= relative to random's. The training budget (optimiser steps, sample visits) is matched, so
compute differs by scoring and by the cost per step of the selected samples. Load-robust ×
random = (1 + scoring ÷ training) relative to random's: unaffected by how busy the machine was,
blind to per-step cost. Scoring tokens = tokens the estimator generated or read (the
deterministic scoring proxy). Pareto ● = no other strategy is at least as accurate and cheaper.
The verdict uses the wall-clock ratio: the most accurate strategy within random's compute +
{tol}, and whether it beats random at p < 0.05.
""")
VARIANT_LEGEND = prose("""
EDCO's cheaper variants against edco itself (same cell, questions and seeds): the share of
edco's scoring seconds, scoring tokens and total compute each saved (negative = cost more), and
its accuracy minus edco's [95 % interval], p = the main table's test. edco_partial re-scores
curriculum.rescore_fraction of the pool per round; edco_early_stop stops re-scoring once two
consecutive selections overlap >= curriculum.stop_overlap (it can first stop in round 3).
""")


def compute_text(frame: pd.DataFrame) -> pd.DataFrame:
    """Text cells of one cell's rows."""
    out = frame[CELL_KEYS].copy()
    out["accuracy"] = [mean_sd(m, sd) + ("" if lo != lo else f" [{fmt(lo, '.2f')}, {fmt(hi, '.2f')}]")
                       for m, sd, lo, hi in zip(frame["mean"], frame["sd"], frame["ci_low"], frame["ci_high"])]
    out["Δ vs random"] = [estimate(d, lo, hi, p) for d, lo, hi, p in
                          zip(frame["diff_vs_random"], frame["diff_low"], frame["diff_high"], frame["p_vs_random"])]
    if frame["diff_vs_matched"].notna().any():
        out[f"Δ vs {MATCHED}"] = [estimate(*values) for values in zip(*(frame[c] for c in VS_MATCHED))]
    out["compute (s)"] = [mean_sd(m, sd, ".1f") for m, sd in zip(frame["total_seconds"], frame["total_seconds_sd"])]
    out["scoring (s)"] = frame["scoring_seconds"].map(lambda v: fmt(v, ".1f"))
    out["× random"] = frame["compute_vs_random"].map(lambda v: fmt(v, ".2f"))
    out["load-robust × random"] = frame["robust_vs_random"].map(lambda v: fmt(v, ".2f"))
    out["scoring tokens"] = frame["scoring_tokens"].map(lambda v: fmt(v, ",.0f"))
    out["Pareto"] = frame["pareto"].map(lambda v: "●" if v else "")
    out["≤ random + tol"] = frame["within_budget"].map(lambda v: "yes" if v else "no")
    return out


def variant_text(frame: pd.DataFrame) -> pd.DataFrame:
    """The variant rows as text cells; empty when the grid has no variant beside edco."""
    rows = frame[frame["strategy"].isin(VARIANTS) & frame["diff_vs_edco"].notna()]
    out = rows[[*GROUP_KEYS, "strategy"]].copy()
    for column, header in zip(SAVED_COLUMNS, ("scoring s saved", "scoring tokens saved", "compute saved")):
        out[header] = rows[column].map(lambda v: fmt(v, ".0%"))
    out["Δ accuracy vs edco"] = [estimate(*values) for values in zip(*(rows[c] for c in VS_EDCO))]
    return out


def write_compute_table(config: dict, tolerance: float = TOLERANCE) -> list[Path]:
    """tables/compute.*: a section per domain x model x paradigm x mode with its verdict, then
    the cheaper-EDCO section when the grid runs the variants beside edco."""
    frame = compute_frame(config, tolerance)
    sections = [Section(" · ".join(map(str, keys)), compute_text(group), f"**Verdict** {group['verdict'].iloc[0]}")
                for keys, group in frame.groupby(GROUP_KEYS, sort=False)]
    variants = variant_text(frame)
    if not variants.empty:
        sections.append(Section("Cheaper EDCO: what the variants save and cost", variants, VARIANT_LEGEND))
    return write_table(config["run"], "compute", f"Compute-matched comparison — run `{config['run']}`", frame,
                       sections, LEGEND.format(tol=fmt(tolerance, ".0%")))
