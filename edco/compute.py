"""The compute-matched comparison: at equal total compute (scoring + training), which strategy wins?

    python -m edco table --config config/smoke.yaml --compute     # tables/compute.{csv,md,tex,html}

Per domain x model x paradigm x evaluation mode, every strategy with its accuracy (mean ± sd
over seeds, 95 % t-interval; Δ and paired-bootstrap p against ``random`` from
``report.collect``) and its compute: scoring + selecting + training wall-clock summed over
rounds, mean over seeds (``report.cost_frame``), also relative to ``random``. Rows are sorted
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
"""

from __future__ import annotations

import math

from edco import io
from edco.report import (CELL_KEYS, _latex_escape, collect, cost_frame, html_page, latex_table, load_timing, markdown,
                         table_paths)

#: Compute within random's x (1 + TOLERANCE) counts as "equal compute" for the verdict.
TOLERANCE = 0.10
ALPHA = 0.05
GROUP_KEYS = ["domain", "model", "paradigm", "mode"]


def compute_frame(config: dict, tolerance: float = TOLERANCE):
    """One row per (domain, model, paradigm, mode, strategy): accuracy statistics, compute,
    ratios to random, ``pareto``, ``within_budget`` and the cell's ``winner`` / ``verdict``."""
    import pandas as pd

    accuracy = pd.DataFrame([r for r in collect(config) if r["strategy"] != "base"])
    cost = cost_frame(load_timing(config)).drop(columns=["n_seeds"])
    frame = accuracy.merge(cost, on=CELL_KEYS, how="left")
    parts = [_rank_cell(group, tolerance) for _, group in frame.groupby(GROUP_KEYS, sort=False)]
    return add_variant_costs(config, pd.concat(parts, ignore_index=True))


def _rank_cell(group, tolerance: float):
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


def pareto_front(accuracy: list[float], compute: list[float]) -> list[bool]:
    """True where no other point is at least as accurate and at most as costly, and better in one."""
    points = list(zip(accuracy, compute))
    return [not any(a >= acc and c <= cost and (a > acc or c < cost) for a, c in points) for acc, cost in points]


def best_within(group, ratio: str, tolerance: float) -> str | None:
    """The most accurate strategy with ``ratio`` <= 1 + tolerance (ties: the cheaper); None
    when the cell has no random to compare with."""
    eligible = group[group[ratio] <= 1 + tolerance]
    if eligible.empty:
        return None
    return eligible.sort_values(["mean", "total_seconds"], ascending=[False, True]).iloc[0]["strategy"]


def verdict(group, winner: str | None, robust: str | None, tolerance: float) -> str:
    """One sentence per cell: who wins at equal compute, and whether that is more than a tie."""
    if winner is None:
        return "no random in this cell: no compute reference"
    budget = f"at ≤ random's compute (+{tolerance:.0%} wall-clock)"
    row = group.set_index("strategy").loc[winner]
    if winner == "random":
        text = f"{budget}: random is the most accurate ({row['mean']:.3f})"
    else:
        p, diff = row["p_vs_random"], row["diff_vs_random"]
        significant = p < ALPHA and diff > 0
        text = (f"{budget}: {winner} wins ({row['mean']:.3f}, Δ{diff:+.3f} vs random, p={p:.2g}, "
                f"{row['compute_vs_random']:.2f}× random's compute)"
                + ("" if significant else f" — not significant at p < {ALPHA}: a tie with random"))
    if robust != winner:
        text += f"; by the load-robust ratio (scoring ÷ training) it would be {robust}"
    noise = (group["total_seconds_sd"] / group["total_seconds"]).median()
    if noise == noise and noise > tolerance:
        text += (f"; caution: wall-clock varies {noise:.0%} between seeds of a strategy (median sd ÷ mean), more than "
                 f"the {tolerance:.0%} tolerance, so which strategies count as equal-compute is itself noisy")
    if not group["budget_matched"].all():
        text += "; BUDGET MISMATCH in this cell (see the cost table): the comparison is not budget-matched"
    best = group.iloc[0]
    if best["strategy"] != winner:
        text += (f". Most accurate at any compute: {best['strategy']} ({best['mean']:.3f}, "
                 f"{best['compute_vs_random']:.2f}× random's compute)")
    return text + "."


# --------------------------------------------------------------------------- cheaper EDCO
#: EDCO's cheaper variants (issue 7): what each saves against ``edco`` and what it costs.
VARIANTS = ("edco_partial", "edco_early_stop")
VARIANT_COLUMNS = ["scoring_saved_vs_edco", "tokens_saved_vs_edco", "compute_saved_vs_edco", "diff_vs_edco",
                   "diff_vs_edco_low", "diff_vs_edco_high", "p_vs_edco"]


def add_variant_costs(config: dict, frame):
    """On the rows of ``VARIANTS`` whose cell also ran ``edco``: the share of edco's scoring
    seconds, scoring tokens and total compute the variant saved, and its accuracy minus
    edco's on the same questions and seeds (paired bootstrap: Δ, interval, p). NaN elsewhere."""
    from edco.report import cell_evaluations, versus

    frame = frame.copy()
    for column in VARIANT_COLUMNS:
        frame[column] = math.nan
    for keys, group in frame.groupby(GROUP_KEYS, sort=False):
        edco = group[group["strategy"] == "edco"]
        if edco.empty:
            continue
        ref = edco.iloc[0]
        for index, row in group[group["strategy"].isin(VARIANTS)].iterrows():
            cell = keys[:3]
            test = versus(cell_evaluations(config, *cell, row["strategy"]), cell_evaluations(config, *cell, "edco"),
                          keys[3])
            frame.loc[index, VARIANT_COLUMNS] = [
                _saved(row["scoring_seconds"], ref["scoring_seconds"]), _saved(row["scoring_tokens"], ref["scoring_tokens"]),
                _saved(row["total_seconds"], ref["total_seconds"]), test["diff"], test["low"], test["high"], test["p"]]
    return frame


def _saved(value: float, reference: float) -> float:
    return 1 - value / reference if reference else math.nan


def _variant_text(frame):
    """The variant rows as readable cells; empty when the grid has no variant beside edco."""
    rows = frame[frame["strategy"].isin(VARIANTS) & frame["diff_vs_edco"].notna()]
    out = rows[[*GROUP_KEYS, "strategy"]].copy()
    out["scoring s saved"] = rows["scoring_saved_vs_edco"].map(lambda v: f"{v:.0%}")
    out["scoring tokens saved"] = rows["tokens_saved_vs_edco"].map(lambda v: f"{v:.0%}")
    out["compute saved"] = rows["compute_saved_vs_edco"].map(lambda v: f"{v:.0%}")
    out["Δ accuracy vs edco"] = [f"{d:+.3f} [{lo:+.2f}, {hi:+.2f}] p={p:.2g}" for d, lo, hi, p in
                                 zip(rows["diff_vs_edco"], rows["diff_vs_edco_low"], rows["diff_vs_edco_high"],
                                     rows["p_vs_edco"])]
    return out


VARIANT_LEGEND = ("EDCO's cheaper variants against edco itself (same cell, questions and seeds): the share of edco's "
                  "scoring seconds, scoring tokens and total compute each saved (negative = cost more), and its "
                  "accuracy minus edco's [95 % bootstrap interval], p = paired bootstrap. edco_partial re-scores "
                  "curriculum.rescore_fraction of the pool per round; edco_early_stop stops re-scoring once two "
                  "consecutive selections overlap >= curriculum.stop_overlap (it can first stop in round 3).")


# --------------------------------------------------------------------------- output
COMPUTE_LEGEND = (
    "Per cell, strategies sorted by accuracy (mean ± sd over seeds [95 % t-interval]); Δ = accuracy minus random on "
    "the same questions and seeds [95 % bootstrap interval], p = paired bootstrap. Compute = scoring + selecting + "
    "training wall-clock per run, all rounds, mean ± sd over seeds; × random = relative to random's. The training "
    "budget (optimiser steps, sample visits) is matched, so compute differs by scoring and by the cost per step of "
    "the selected samples. Load-robust × random = (1 + scoring ÷ training) relative to random's: unaffected by how "
    "busy the machine was, blind to per-step cost. Scoring tokens = tokens the estimator generated or read (the "
    "deterministic scoring proxy). Pareto ● = no other strategy is at least as accurate and cheaper. The verdict "
    "uses the wall-clock ratio: the most accurate strategy within random's compute + {tol:.0%}, and whether it "
    "beats random at p < 0.05.")


def _text(frame):
    """Readable cells (Markdown, LaTeX, HTML) of one mode's rows."""
    out = frame[["domain", "model", "paradigm", "strategy"]].copy()
    out["accuracy"] = [f"{m:.3f} ± {sd:.3f}" + (f" [{lo:.2f}, {hi:.2f}]" if lo == lo else "")
                       for m, sd, lo, hi in zip(frame["mean"], frame["sd"], frame["ci_low"], frame["ci_high"])]
    out["Δ vs random"] = [("–" if d != d else f"{d:+.3f} [{lo:+.2f}, {hi:+.2f}] p={p:.2g}")
                          for d, lo, hi, p in zip(*(frame.get(c, _nan(frame)) for c in
                                                    ("diff_vs_random", "diff_low", "diff_high", "p_vs_random")))]
    out["compute (s)"] = [f"{m:.1f}" + (f" ± {sd:.1f}" if sd == sd else "")
                          for m, sd in zip(frame["total_seconds"], frame["total_seconds_sd"])]
    out["scoring (s)"] = frame["scoring_seconds"].map(lambda v: f"{v:.1f}")
    out["× random"] = frame["compute_vs_random"].map(lambda v: f"{v:.2f}")
    out["load-robust × random"] = frame["robust_vs_random"].map(lambda v: f"{v:.2f}")
    out["scoring tokens"] = frame["scoring_tokens"].map(lambda v: f"{v:,.0f}")
    out["Pareto"] = frame["pareto"].map(lambda v: "●" if v else "")
    out["≤ random + tol"] = frame["within_budget"].map(lambda v: "yes" if v else "no")
    return out


def _nan(frame):
    import pandas as pd

    return pd.Series([math.nan] * len(frame), index=frame.index)


def _sections(frame):
    """(heading, verdict, text frame) per domain x model x paradigm x mode."""
    for keys, group in frame.groupby(GROUP_KEYS, sort=False):
        yield " · ".join(map(str, keys)), group["verdict"].iloc[0], _text(group)


def write_compute_table(config: dict, tolerance: float = TOLERANCE):
    """tables/compute.{csv,md,tex,html}."""
    frame = compute_frame(config, tolerance)
    paths = table_paths(config["run"], "compute")
    legend = COMPUTE_LEGEND.format(tol=tolerance)
    io.write_text(paths["csv"], frame.to_csv(index=False, float_format="%.6g"))
    title = f"Compute-matched comparison — run `{config['run']}`"
    md = [f"# {title}\n\n{legend}\n"]
    md += [f"## {heading}\n\n**Verdict** {text}\n\n{markdown(table)}\n" for heading, text, table in _sections(frame)]
    variants = _variant_text(frame)
    if not variants.empty:
        md.append(f"## Cheaper EDCO: what the variants save and cost\n\n{VARIANT_LEGEND}\n\n{markdown(variants)}\n")
    io.write_text(paths["md"], "\n".join(md))
    io.write_text(paths["tex"], "\n".join(
        latex_table(table, _latex_escape(f"{heading}. Verdict: {text}"), f"tab:compute-{i}")
        for i, (heading, text, table) in enumerate(_sections(frame)))
        + ("" if variants.empty else latex_table(variants, _latex_escape(VARIANT_LEGEND), "tab:compute-variants")))
    sections = [(heading, (legend + "\n\n" if i == 0 else "") + f"Verdict: {text}", table)
                for i, (heading, text, table) in enumerate(_sections(frame))]
    if not variants.empty:
        sections.append(("Cheaper EDCO: what the variants save and cost", VARIANT_LEGEND, variants))
    io.write_text(paths["html"], html_page(title.replace("`", ""), sections))
    return [paths[f] for f in ("csv", "md", "tex", "html")]
