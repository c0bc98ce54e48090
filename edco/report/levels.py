"""The per-level table: accuracy per difficulty level of the test questions (where the data
has levels), mean ± sd over seeds, beside each run's overall gain over the base model it started
from."""

from __future__ import annotations

import math
from pathlib import Path

import pandas as pd

import edco.report.load as load
from edco.report.load import CELL_KEYS
from edco.report.render import Section, fmt, mean_sd, prose, write_table

LEGEND = prose("""
Accuracy on the test questions of each difficulty level (the data's `difficulty`), mean ± sd
over seeds; base = the model before fine-tuning (with per-seed base models, their mean). all =
accuracy on every test question; Δ vs base = a run's accuracy minus that of the base model it
started from, mean over seeds.
""")
GAIN_LEGEND = prose("""
What fine-tuning adds to the base model, per paradigm and strategy: each cell's Δ vs base (mean
over seeds), averaged over the domain x model cells, with the lowest and highest cell. A
description of the runs, not a test: the verdict table tests strategies against each other.
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


def gain_frame(accuracies: pd.DataFrame) -> pd.DataFrame:
    """One row per cell and mode (load.accuracies): overall accuracy ``mean``, ``sd`` and
    ``gain`` = mean over seeds of the run minus the base model it started from (seed s's own
    base model under pretrain.per_seed, else the shared one); NaN for the base rows."""
    base = accuracies[accuracies["strategy"] == "base"]
    base_acc = {(d, m, mode, None if pd.isna(s) else int(s)): a
                for d, m, mode, s, a in zip(base["domain"], base["model"], base["mode"], base["seed"], base["accuracy"])}

    def started_from(row) -> float:
        if row["strategy"] == "base":
            return math.nan
        key = (row["domain"], row["model"], row["mode"])
        own = base_acc.get((*key, None if pd.isna(row["seed"]) else int(row["seed"])))
        return row["accuracy"] - (own if own is not None else base_acc.get((*key, None), math.nan))

    frame = accuracies.assign(gain=accuracies.apply(started_from, axis=1) if len(accuracies) else [])
    grouped = frame.groupby([*CELL_KEYS, "mode"], sort=False)
    out = grouped.agg(mean=("accuracy", "mean"), sd=("accuracy", "std"), gain=("gain", "mean")).reset_index()
    out["sd"] = out["sd"].fillna(0.0)
    return out


def pooled_gains(gains: pd.DataFrame, mode: str) -> pd.DataFrame:
    """Per paradigm and strategy: the cells' Δ vs base averaged, lowest and highest cell."""
    sub = gains[(gains["mode"] == mode) & (gains["strategy"] != "base")]
    rows = [{"paradigm": paradigm, "strategy": strategy, "cells": len(group),
             "Δ vs base, mean over cells": fmt(group["gain"].mean(), "+.3f"),
             "lowest cell": fmt(group["gain"].min(), "+.3f"), "highest cell": fmt(group["gain"].max(), "+.3f")}
            for (paradigm, strategy), group in sub.groupby(["paradigm", "strategy"], sort=False)]
    return pd.DataFrame(rows)


def _mean_sd_cells(frame: pd.DataFrame) -> list[str]:
    """'mean ± sd' per row; the base rows without sd (one model per seed, not a spread of runs)."""
    return [mean_sd(m, None if strategy == "base" else sd)
            for m, sd, strategy in zip(frame["mean"], frame["sd"], frame["strategy"])]


def level_text(frame: pd.DataFrame, mode: str, gains: pd.DataFrame | None = None) -> pd.DataFrame:
    """Rows cell, columns 'level k' with 'mean ± sd' (base: the mean of its evaluations), then
    with ``gains`` (gain_frame) 'all' and 'Δ vs base'."""
    sub = frame[frame["mode"] == mode].copy()
    sub["cell"] = _mean_sd_cells(sub)
    wide = sub.pivot_table(index=CELL_KEYS, columns="level", values="cell", aggfunc="first", sort=False)
    wide.columns = [f"level {c}" for c in wide.columns]
    wide = wide.reset_index()
    if gains is None:
        return wide
    overall = gains[gains["mode"] == mode].copy()
    overall["all"] = _mean_sd_cells(overall)
    overall["Δ vs base"] = overall["gain"].map(lambda v: fmt(v, "+.3f"))
    return wide.merge(overall[[*CELL_KEYS, "all", "Δ vs base"]], on=CELL_KEYS, how="left")


def write_levels(config: dict) -> list[Path]:
    """tables/levels.* of a run, from its evaluations."""
    evals = load.evaluations(config)
    return write_levels_table(config, load.level_accuracies(evals), load.accuracies(evals))


def write_levels_table(config: dict, level_accuracies: pd.DataFrame, accuracies: pd.DataFrame | None = None) -> list[Path]:
    """tables/levels.*; without levels the files say so (they exist either way, as the workflow
    expects). ``accuracies`` (load.accuracies) adds each run's overall gain over its base model
    and a section pooling those gains over cells."""
    frame = level_frame(level_accuracies)
    gains = None if accuracies is None else gain_frame(accuracies)
    sections = []
    for mode in dict.fromkeys(frame["mode"]):
        sections.append(Section(f"Accuracy per level, {mode}", level_text(frame, mode, gains)))
        if gains is not None and (gains["strategy"] != "base").any():
            sections.append(Section(f"Gain over the base model, pooled over cells, {mode}", pooled_gains(gains, mode),
                                    GAIN_LEGEND))
    return write_table(config["run"], "levels", f"Accuracy per difficulty level — run `{config['run']}`", frame,
                       sections, LEGEND if sections else "", empty=NO_LEVELS)
