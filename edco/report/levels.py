"""The per-level table: accuracy per difficulty level of the test questions (where the data
has levels), mean ± sd over seeds; written with the main table from the same evaluations."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from edco.report.load import CELL_KEYS
from edco.report.render import Section, mean_sd, prose, write_table

LEGEND = prose("""
Accuracy on the test questions of each difficulty level (the data's `difficulty`), mean ± sd
over seeds; base = the model before fine-tuning.
""")
NO_LEVELS = "The test data of this run has no difficulty levels: there is no per-level accuracy to report."


def level_frame(level_accuracies: pd.DataFrame) -> pd.DataFrame:
    """One row per cell, mode and level: mean, sd and seeds (load.level_accuracies)."""
    if level_accuracies.empty:
        return pd.DataFrame(columns=[*CELL_KEYS, "mode", "level", "mean", "sd", "n_seeds"])
    grouped = level_accuracies.groupby([*CELL_KEYS, "mode", "level"], sort=False)["accuracy"]
    frame = grouped.agg(mean="mean", sd="std", n_seeds="count").reset_index()
    frame["sd"] = frame["sd"].fillna(0.0)
    return frame


def level_text(frame: pd.DataFrame, mode: str) -> pd.DataFrame:
    """Rows cell, columns 'level k' with 'mean ± sd' (base: its one evaluation)."""
    sub = frame[frame["mode"] == mode].copy()
    sub["cell"] = [mean_sd(m, None if strategy == "base" else sd)
                   for m, sd, strategy in zip(sub["mean"], sub["sd"], sub["strategy"])]
    wide = sub.pivot_table(index=CELL_KEYS, columns="level", values="cell", aggfunc="first", sort=False)
    wide.columns = [f"level {c}" for c in wide.columns]
    return wide.reset_index()


def write_levels_table(config: dict, level_accuracies: pd.DataFrame) -> list[Path]:
    """tables/levels.*; without levels the files say so (they exist either way, as the workflow expects)."""
    frame = level_frame(level_accuracies)
    sections = [Section(f"Accuracy per level, {mode}", level_text(frame, mode))
                for mode in dict.fromkeys(frame["mode"])]
    return write_table(config["run"], "levels", f"Accuracy per difficulty level — run `{config['run']}`", frame,
                       sections, LEGEND if sections else "", empty=NO_LEVELS)
