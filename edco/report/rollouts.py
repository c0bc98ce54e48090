"""GRPO's rollout groups per strategy: the share of prompt groups whose rollouts all got the same
reward (TRL's ``frac_reward_zero_std``: zero advantage, so no gradient from that prompt) and the
mean reward, the route by which a curriculum of hard prompts could starve GRPO (issue 30, the
mechanism of the CPU study's third edition).

    python -m edco table --config config/cpu_study.yaml --rollouts   # tables/rollouts.*

Per run: the mean over its GRPO steps (every round). Per cell: mean ± sd over seeds. Pooled
over cells, against ``random``: per seed the mean over cells of (strategy - random), then a
Student-t interval over seeds (seeds paired across cells, as the verdict pools them). The
per-step curves are in the training_rl plot.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

import edco.report.load as load
from edco.errors import UserFacingError
from edco.report.render import Section, estimate, fmt, mean_sd, prose, write_table
from edco.report.stats import REFERENCE, mean_ci

METRICS = {"frac_reward_zero_std": "zero-variance groups", "reward": "mean reward"}
LEGEND = prose("""
GRPO samples several rollouts per prompt and scores each (1 = the right letter); a prompt group
whose rollouts all score alike has zero advantage and adds no gradient. Zero-variance groups =
the share of such groups per step (TRL's frac_reward_zero_std), mean reward = the mean score of
the rollouts; each the mean over a run's steps, then mean ± sd over seeds. Δ vs random: per seed
the mean over the domain × model cells of the strategy's value minus random's, with a 95 %
t-interval over seeds. A curriculum of prompts the model always fails (or always solves)
raises the zero-variance share.
""")


def run_means(steps: pd.DataFrame) -> pd.DataFrame:
    """One row per GRPO run: the mean of each logged METRICS column over its steps."""
    present = [m for m in METRICS if m in steps.columns]
    if not present:
        raise UserFacingError(f"table rollouts: the GRPO runs' metrics.jsonl rows log none of {list(METRICS)} "
                              f"(TRL's GRPOTrainer logs both)")
    return steps.groupby(load.RUN_KEYS, sort=False)[present].mean().reset_index()


def pooled_versus_random(runs: pd.DataFrame, metric: str) -> pd.DataFrame:
    """Per strategy: the metric's mean over cells and seeds, and Δ vs random per seed (mean over
    cells), with its t-interval over seeds."""
    cells = ["domain", "model", "seed"]
    reference = runs[runs["strategy"] == REFERENCE].set_index(cells)[metric]
    rows = []
    for strategy, group in runs.groupby("strategy", sort=False):
        paired = group.set_index(cells)[metric] - reference.reindex(group.set_index(cells).index)
        per_seed = paired.groupby(level="seed").mean().dropna()
        diff, low, high = mean_ci(list(per_seed)) if strategy != REFERENCE and len(per_seed) else (float("nan"),) * 3
        rows.append({"metric": metric, "strategy": strategy, "value": group[metric].mean(),
                     "diff": diff, "low": low, "high": high, "seeds": len(per_seed)})
    return pd.DataFrame(rows)


def rollout_frame(steps: pd.DataFrame) -> pd.DataFrame:
    """The table's numbers: pooled rows (domain = model = "all cells") then per-cell rows."""
    runs = run_means(steps)
    pooled = pd.concat([pooled_versus_random(runs, m) for m in METRICS if m in runs.columns], ignore_index=True)
    per_cell = runs.melt(id_vars=load.RUN_KEYS, value_vars=[m for m in METRICS if m in runs.columns],
                         var_name="metric")
    per_cell = per_cell.groupby(["metric", "domain", "model", "strategy"], sort=False)["value"] \
        .agg(mean="mean", sd="std", seeds="count").reset_index()
    return pd.concat([pooled.assign(domain="all cells", model="all cells"), per_cell], ignore_index=True)


def _pooled_text(frame: pd.DataFrame) -> pd.DataFrame:
    out = pd.DataFrame({"strategy": frame["strategy"], "what": frame["metric"].map(METRICS)})
    out["mean over cells and seeds"] = frame["value"].map(lambda v: fmt(v, ".3f"))
    out["Δ vs random [95 % over seeds]"] = [estimate(d, lo, hi, bounds="+.3f")
                                            for d, lo, hi in zip(frame["diff"], frame["low"], frame["high"])]
    return out


def _cell_text(frame: pd.DataFrame) -> pd.DataFrame:
    out = pd.DataFrame({"cell": frame["domain"] + " · " + frame["model"], "strategy": frame["strategy"],
                        "what": frame["metric"].map(METRICS)})
    out["mean ± sd over seeds"] = [mean_sd(m, s) for m, s in zip(frame["mean"], frame["sd"])]
    return out


def write_rollouts(config: dict) -> list[Path]:
    """tables/rollouts.* of a run that trains GRPO."""
    frame = rollout_frame(load.steps(config, "rl"))
    pooled, cells = frame[frame["domain"] == "all cells"], frame[frame["domain"] != "all cells"]
    sections = [Section("Pooled over all cells, against random", _pooled_text(pooled)),
                Section("Per cell", _cell_text(cells))]
    title = f"GRPO's rollout groups: zero-variance share and mean reward — run `{config['run']}`"
    return write_table(config["run"], "rollouts", title, frame, sections, LEGEND)
