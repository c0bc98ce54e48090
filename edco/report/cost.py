"""The cost table: scoring / selecting / training wall-clock per cell (summed over rounds, mean
over seeds), tokens generated, and the budget check (every strategy of a domain x model x
paradigm must do the same optimiser steps on the same sample visits)."""

from __future__ import annotations

import logging
from pathlib import Path

import pandas as pd

import edco.report.load as load
from edco.report.load import CELL_KEYS
from edco.report.render import Section, fmt, mean_sd, prose, write_table

log = logging.getLogger("edco.report")

#: Strategies that do more optimiser steps than random by design (random at another strategy's
#: compute, issue 18): reported beside the others, never counted as a budget mismatch.
COMPUTE_MATCHED = ("random_matched",)

LEGEND = prose("""
Wall-clock seconds per run, summed over rounds, mean over seeds (total ± sd): scoring = the
strategy scoring the pool with the model, selecting = writing the selection, training = the
optimiser steps. scoring ÷ training = the overhead the curriculum adds to training. Scoring
tokens = tokens the estimator generated; rollout tokens = GRPO completions (RL only). Steps /
visits = optimiser steps and sample visits per run; every strategy of a paradigm must match them
(budget).
""")


def cost_frame(timing: pd.DataFrame) -> pd.DataFrame:
    """One row per cell: wall-clock seconds (mean over seeds), tokens generated, the training
    budget and whether it matches the rest of its paradigm (``budget_check``).
    ``scoring_overhead`` = mean scoring seconds / mean training seconds of the cell."""
    totals = load.run_totals(timing)
    means = totals.groupby(CELL_KEYS, sort=False).agg(
        n_seeds=("seed", "nunique"),
        scoring_seconds=("scoring_seconds", "mean"), selecting_seconds=("selecting_seconds", "mean"),
        training_seconds=("training_seconds", "mean"), total_seconds=("total_seconds", "mean"),
        total_seconds_sd=("total_seconds", "std"),
        scoring_tokens=("tokens_generated", "mean"), rollout_tokens=("rollout_tokens_generated", "mean"),
    ).reset_index()
    means["scoring_overhead"] = means["scoring_seconds"] / means["training_seconds"]
    return means.merge(budget_check(totals), on=CELL_KEYS, how="left")


def _budget_text(pairs) -> str:
    return " / ".join(f"{int(s)} steps, {int(v)} visits" for s, v in pairs)


def budget_check(totals: pd.DataFrame) -> pd.DataFrame:
    """Per cell: its optimiser steps and sample visits, and ``budget_matched``: every seed of
    the cell did the same steps and visits as the reference of its (domain, model, paradigm)
    — the ``random`` runs' budget when they agree, else the most common one. ``budget_note``
    says what differs. COMPUTE_MATCHED strategies are matched by definition (noted)."""
    rows = []
    for (domain, model, paradigm), group in totals.groupby(["domain", "model", "paradigm"], sort=False):
        budgeted = group[~group["strategy"].isin(COMPUTE_MATCHED)]
        pairs = list(zip(budgeted["optimizer_steps"], budgeted["sample_visits"]))
        random_pairs = set(zip(*(group.loc[group["strategy"] == "random", c] for c in ("optimizer_steps",
                                                                                     "sample_visits"))))
        reference = next(iter(random_pairs)) if len(random_pairs) == 1 else max(set(pairs), key=pairs.count)
        for strategy, cell in group.groupby("strategy", sort=False):
            budget = sorted(set(zip(cell["optimizer_steps"], cell["sample_visits"])))
            matched = budget == [reference] or strategy in COMPUTE_MATCHED
            note = ("" if budget == [reference] else f"{_budget_text(budget)} vs {_budget_text([reference])}"
                    + (" (compute-matched by design)" if strategy in COMPUTE_MATCHED else ""))
            rows.append({"domain": domain, "model": model, "paradigm": paradigm, "strategy": strategy,
                         "optimizer_steps": cell["optimizer_steps"].mean(), "sample_visits": cell["sample_visits"].mean(),
                         "budget_matched": matched, "budget_note": note})
    return pd.DataFrame(rows, columns=[*CELL_KEYS, "optimizer_steps", "sample_visits", "budget_matched", "budget_note"])


def cost_text(frame: pd.DataFrame) -> pd.DataFrame:
    """The cost table as text cells."""
    out = frame[CELL_KEYS].copy()
    for column, header in (("scoring_seconds", "scoring (s)"), ("selecting_seconds", "selecting (s)"),
                           ("training_seconds", "training (s)")):
        out[header] = frame[column].map(lambda v: fmt(v, ".2f"))
    out["total (s)"] = [mean_sd(m, sd, ".2f") for m, sd in zip(frame["total_seconds"], frame["total_seconds_sd"])]
    out["scoring ÷ training"] = frame["scoring_overhead"].map(lambda v: fmt(v, ".3f"))
    out["scoring tokens"] = frame["scoring_tokens"].map(lambda v: fmt(v, ",.0f"))
    if (frame["paradigm"] == "rl").any():
        out["rollout tokens"] = frame["rollout_tokens"].map(lambda v: fmt(v, ",.0f"))
    out["steps / visits"] = [f"{fmt(s, 'g')} / {fmt(v, 'g')}" for s, v in zip(frame["optimizer_steps"],
                                                                             frame["sample_visits"])]
    out["budget"] = ["matched" if ok and not note else note if ok else f"MISMATCH: {note}"
                     for ok, note in zip(frame["budget_matched"], frame["budget_note"])]
    return out


def budget_summary(frame: pd.DataFrame) -> str:
    bad = frame[~frame["budget_matched"]]
    if bad.empty:
        return ("Budget check: every strategy of each domain x model x paradigm did the same optimiser steps on the "
                "same sample visits, in every seed.")
    cells = "; ".join(f"{r.domain}/{r.model}/{r.paradigm}/{r.strategy}: {r.budget_note}" for r in bad.itertuples())
    return f"BUDGET MISMATCH in {len(bad)} cell(s) — the comparison is not budget-matched: {cells}."


def write_cost_table(config: dict) -> list[Path]:
    """tables/cost.*; a budget mismatch is flagged in every format and logged."""
    frame = cost_frame(load.timing(config))
    summary, ok = budget_summary(frame), bool(frame["budget_matched"].all())
    if not ok:
        log.warning(summary)
    section = Section(f"Wall-clock and budget per cell, mean over {len(config['seeds'])} seeds", cost_text(frame),
                      alert=(summary, ok))
    return write_table(config["run"], "cost", f"Cost table — run `{config['run']}`", frame, [section], LEGEND)
