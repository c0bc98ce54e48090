"""Plots of a finished grid (seaborn), one function per plot, each returning a figure that
``figures.save`` writes (PNG for the report; PDF too with ``python -m edco plots --pdf``):

    accuracy               accuracy per strategy, mean and 95 % t-interval over seeds, base model as a line
    accuracy_vs_time       accuracy against total wall-clock per run (scoring + selecting + training), Pareto front
    cost                   where a run's wall-clock goes: scoring, selecting, training
    entropy                mean score of the pool and of the selection per round (strategies that scored)
    new_samples            samples selected for the first time, per round
    estimator_k            prefix length K against speed-up and rank agreement with full entropy
    training_<paradigm>    loss / reward / grad-norm / entropy per optimiser step, across rounds
    accuracy_per_level     accuracy per difficulty level of the test questions
    verdict                forest plot of accuracy minus random's (drawn from tables/verdict.csv)

    python -m edco plots --config config/smoke.yaml                 # every plot of the config
    python -m edco plots --config config/smoke.yaml --only accuracy # one

Each ``plot_*`` function takes frames (edco.report.load builds them from results/<run>/);
missing inputs are errors that name the file.
"""

from __future__ import annotations

import functools
import logging
import math
from pathlib import Path

import pandas as pd

import edco.report.load as load
from edco import layout
from edco.errors import UserFacingError
from edco.report import registry
from edco.report.estimator import AGREEMENT, PAPER_SPEEDUP, prefix_rows
from edco.report.figures import (PARADIGM_MARKERS, acc_panels, clip_to_fraction, column_count, legend, marker_handles,
                                 message_plot, order, outer_labels, panel_title, panels, pyplot, require,
                                 run_suffix, save, strategy_colours, strategy_handles,
                                 strategy_markers)
from edco.report.load import RUN_KEYS
from edco.report.render import fmt
from edco.report.stats import ALL_CELLS, mean_ci, pareto_front

log = logging.getLogger("edco.report")

#: metrics.jsonl columns the training plot shows (when logged), with their axis labels.
TRAINING_METRICS = {
    "loss": "training loss",
    "reward": "mean reward\n(1 = right letter)",
    "frac_reward_zero_std": "zero-variance groups\n(share, no gradient)",
    "grad_norm": "gradient norm (L2)",
    "entropy": "mean token entropy\n(nats)",
}


# --------------------------------------------------------------------------- (a) accuracy
def plot_accuracy(acc, run: str = ""):
    """Accuracy per strategy: each seed a dot, the mean with its 95 % t-interval over seeds
    (as the main table), one colour per strategy, one marker per paradigm; the base model
    (no fine-tuning) a dashed line. ``acc``: report.load_accuracies."""
    from matplotlib.lines import Line2D

    require(acc, ["domain", "model", "paradigm", "strategy", "seed", "mode", "accuracy"], "accuracy")
    tuned = acc[acc["strategy"] != "base"]
    require(tuned, ["strategy"], "accuracy (fine-tuned runs)")
    strategies, paradigms = order(tuned["strategy"]), order(tuned["paradigm"])
    palette = strategy_colours(strategies)
    keys, ncols = acc_panels(acc)
    fig, axes = panels(keys, ncols, width=max(3.9, 0.6 * len(strategies) + 1.2))
    width = 0.5 / max(len(paradigms), 1)
    for (model, mode, domain), ax in axes.items():
        here = acc[(acc["domain"] == domain) & (acc["model"] == model) & (acc["mode"] == mode)]
        base = here[here["strategy"] == "base"]["accuracy"]
        if len(base):
            ax.axhline(base.mean(), color="0.25", ls="--", lw=1.2, zorder=1)
        for x, strategy in enumerate(strategies):
            for j, paradigm in enumerate(paradigms):
                values = here[(here["strategy"] == strategy) & (here["paradigm"] == paradigm)]["accuracy"].tolist()
                if not values:
                    continue
                pos = x + (j - (len(paradigms) - 1) / 2) * width
                mean, low, high = mean_ci(values)
                ax.scatter([pos] * len(values), values, color=palette[strategy], alpha=0.35, s=14, zorder=2)
                err = None if math.isnan(low) else [[mean - low], [high - mean]]
                ax.errorbar([pos], [mean], yerr=err, color=palette[strategy], marker=PARADIGM_MARKERS.get(paradigm, "D"),
                            ms=7, capsize=4, lw=1.6, mec="black", mew=0.6, zorder=3)
        ax.set_xticks(range(len(strategies)), strategies, rotation=25, ha="right")
        ax.set_xlim(-0.6, len(strategies) - 0.4)
        ax.set_title(panel_title((domain, model, mode)))
    outer_labels(axes, ncols, "curriculum strategy", "accuracy on the test split\n(fraction correct)")
    clip_to_fraction(axes)
    handles = [Line2D([], [], color="0.25", ls="--", label="base model\n(no fine-tuning)"),
               Line2D([], [], color="0.4", marker="o", ls="", alpha=0.35, ms=4, label="one seed"),
               Line2D([], [], color="0.4", marker="|", ls="-", ms=10, label="mean, 95 % CI\nover seeds"),
               *marker_handles(paradigms)]
    legend(fig, handles, [h.get_label() for h in handles])
    fig.suptitle(f"Accuracy per curriculum strategy{run_suffix(run)}")
    return fig


# --------------------------------------------------------------------------- (b) accuracy vs time
def plot_accuracy_vs_time(acc, totals, run: str = ""):
    """Accuracy against total wall-clock per run (scoring + selecting + training, summed over
    rounds): small = runs, large = the cell's mean over seeds; colour *and* marker = strategy
    (ten strategies stay apart), filled = the first paradigm, hollow = the second; a dotted
    line joins the means on the accuracy-compute Pareto front (edco.compute); the base model
    a dashed line. ``totals``: report.run_totals."""
    from matplotlib.lines import Line2D

    require(acc, ["domain", "model", "paradigm", "strategy", "seed", "mode", "accuracy"], "accuracy_vs_time")
    require(totals, ["domain", "model", "paradigm", "strategy", "seed", "total_seconds"], "accuracy_vs_time")
    keys = ["domain", "model", "paradigm", "strategy", "seed"]
    tuned = acc[acc["strategy"] != "base"].astype({"seed": int})
    merged = tuned.merge(totals[[*keys, "total_seconds"]].astype({"seed": int}), on=keys, how="inner")
    require(merged, ["total_seconds"], "accuracy_vs_time (runs with both an evaluation and a timing)")
    strategies, paradigms = order(merged["strategy"]), order(merged["paradigm"])
    palette, markers = strategy_colours(strategies), strategy_markers(strategies)
    hollow = set(paradigms[1:])
    panel_keys, ncols = acc_panels(acc)
    fig, axes = panels(panel_keys, ncols, sharex=False)
    for (model, mode, domain), ax in axes.items():
        here = merged[(merged["domain"] == domain) & (merged["model"] == model) & (merged["mode"] == mode)]
        base = acc[(acc["strategy"] == "base") & (acc["domain"] == domain) & (acc["model"] == model) & (acc["mode"] == mode)]
        if len(base):
            ax.axhline(base["accuracy"].mean(), color="0.25", ls="--", lw=1.2, zorder=1)
        means = here.groupby(["paradigm", "strategy"], sort=False)[["total_seconds", "accuracy"]].mean().reset_index()
        for paradigm, cells in means.groupby("paradigm", sort=False):
            _pareto_line(ax, cells)
        for (strategy, paradigm), cell in here.groupby(["strategy", "paradigm"], sort=False):
            colour, face = palette[strategy], "white" if paradigm in hollow else palette[strategy]
            ax.scatter(cell["total_seconds"], cell["accuracy"], color=colour, marker=markers[strategy], s=16,
                       alpha=0.4, facecolors=face)
            ax.scatter([cell["total_seconds"].mean()], [cell["accuracy"].mean()], marker=markers[strategy], s=80,
                       facecolors=face, edgecolors=colour if paradigm in hollow else "black", linewidth=1.2, zorder=3)
        ax.set_title(panel_title((domain, model, mode)))
        if len(here):  # from 0 (the base model's cost), with room right of the slowest run
            ax.set_xlim(0, here["total_seconds"].max() * 1.12)
    outer_labels(axes, ncols, "wall-clock per run (s)\nscoring + selecting + training, all rounds",
                  "accuracy on the test split\n(fraction correct)")
    handles = [Line2D([], [], color=palette[s], marker=markers[s], ls="", ms=8, mec="black", label=s) for s in strategies]
    if hollow:
        handles += [Line2D([], [], color="0.4", marker="o", ls="", ms=8, mfc="white" if p in hollow else "0.4", label=p)
                    for p in paradigms]
    handles += [Line2D([], [], color="0.4", marker="o", ls="", alpha=0.4, ms=4, label="one run"),
                Line2D([], [], color="0.4", marker="o", ls="", mec="black", ms=8, label="mean over seeds"),
                Line2D([], [], color="0.3", ls=":", label="Pareto front\n(no mean is more\naccurate and cheaper)"),
                Line2D([], [], color="0.25", ls="--", label="base model")]
    legend(fig, handles, [h.get_label() for h in handles])
    fig.suptitle(f"Accuracy against wall-clock, scoring included{run_suffix(run)}")
    return fig


def _pareto_line(ax, means) -> None:
    """A dotted line through the cell means on the Pareto front, cheapest first."""
    front = means[pareto_front(means["accuracy"].tolist(), means["total_seconds"].tolist())]
    front = front.sort_values("total_seconds")
    ax.plot(front["total_seconds"], front["accuracy"], color="0.3", ls=":", lw=1.2, zorder=2)


# --------------------------------------------------------------------------- cost breakdown
def plot_cost(totals, run: str = ""):
    """Mean wall-clock per run split into scoring, selecting and training (stacked bars),
    one bar per strategy, a panel per domain x model x paradigm."""
    require(totals, ["domain", "model", "paradigm", "strategy", "scoring_seconds", "selecting_seconds",
                      "training_seconds"], "cost")
    phases = {"scoring_seconds": "scoring the pool", "selecting_seconds": "selecting", "training_seconds": "training"}
    colours = dict(zip(phases, ["#c44e52", "#8c8c8c", "#4c72b0"]))
    keys = order(zip(totals["domain"], totals["model"], totals["paradigm"]))
    strategies = order(totals["strategy"])
    fig, axes = panels(keys, width=4.2, height=0.45 * len(strategies) + 1.6, sharey=False)
    for key, ax in axes.items():
        here = totals[(totals["domain"] == key[0]) & (totals["model"] == key[1]) & (totals["paradigm"] == key[2])]
        means = here.groupby("strategy", sort=False)[list(phases)].mean().reindex(strategies).fillna(0.0)
        left = [0.0] * len(means)
        for phase, label in phases.items():
            ax.barh(range(len(means)), means[phase], left=left, color=colours[phase], label=label, height=0.6)
            left = [a + b for a, b in zip(left, means[phase])]
        ax.set_yticks(range(len(means)), means.index)
        ax.invert_yaxis()
        ax.set_title(panel_title(key))
    outer_labels(axes, column_count(keys), "wall-clock per run (s),\nmean over seeds, all rounds", "")
    from matplotlib.patches import Patch

    handles = [Patch(color=colours[p], label=label) for p, label in phases.items()]
    legend(fig, handles, list(phases.values()))
    fig.suptitle(f"Where the wall-clock goes{run_suffix(run)}")
    return fig


# --------------------------------------------------------------------------- (c) scores per round
def plot_entropy(stats, run: str = ""):
    """The mean score of the whole pool (solid) and of the round's selection (dashed) per round,
    mean over seeds, for every strategy that wrote scores (its round<r>/scores.parquet is not
    empty: edco and edco_full score by entropy each round, static orders once, in round 1).
    Scores of different strategies have different units (bits, perplexity, tokens), so each
    run's scores are divided by its round-1 pool mean: 1 = the pool before training; a falling
    pool line = the model grew surer; a selection above the pool = the strategy picks the
    high-scoring samples. Strategies are nudged sideways so that identical curves stay
    visible. ``stats``: load.selections."""
    from matplotlib.lines import Line2D

    require(stats, ["domain", "model", "paradigm", "strategy", "seed", "round", "pool_mean", "selection_mean"],
            "entropy")
    scored = stats[stats["pool_mean"].notna()].copy()
    if scored.empty:
        return message_plot(f"Scores of the pool per round{run_suffix(run)}",
                            "No strategy of this grid scored the pool: every score file is empty.")
    first = scored[scored["round"] == 1].set_index(RUN_KEYS)["pool_mean"]
    reference = scored.set_index(RUN_KEYS).index.map(first).to_numpy(dtype=float)
    scored["pool"] = scored["pool_mean"].to_numpy() / reference
    scored["selection"] = scored["selection_mean"].to_numpy() / reference
    strategies = order(scored["strategy"])
    colours = strategy_colours(strategies)  # a strategy's colour is fixed across plots (STRATEGY_ORDER)
    nudge = {st: (i - (len(strategies) - 1) / 2) * 0.05 for i, st in enumerate(strategies)}
    keys = order(zip(scored["domain"], scored["model"], scored["paradigm"]))
    fig, axes = panels(keys, sharey=False)
    means = scored.groupby(["domain", "model", "paradigm", "strategy", "round"], sort=False)[
        ["pool", "selection"]].mean().reset_index()
    for key, ax in axes.items():
        here = means[(means["domain"] == key[0]) & (means["model"] == key[1]) & (means["paradigm"] == key[2])]
        for strategy, rows in here.groupby("strategy", sort=False):
            x = rows["round"] + nudge[strategy]  # identical curves (edco_early_stop that never stopped) stay visible
            ax.plot(x, rows["pool"], color=colours[strategy], marker="o", ls="-")
            ax.plot(x, rows["selection"], color=colours[strategy], marker="^", ls="--")
        ax.axhline(1.0, color="0.6", lw=0.8, ls=":")
        ax.set_xticks(sorted(here["round"].unique()))
        ax.set_title(panel_title(key))
    outer_labels(axes, column_count(keys), "round (scored by the model at its start)",
                 "mean score ÷ the run's\nround-1 pool mean")
    handles = [*strategy_handles({s: colours[s] for s in strategies}),
               Line2D([], [], color="0.3", marker="o", ls="-", label="whole pool"),
               Line2D([], [], color="0.3", marker="^", ls="--", label="selected top-N")]
    legend(fig, handles, [h.get_label() for h in handles])
    fig.suptitle(f"Scores of the pool and of the selection per round (entropy for edco){run_suffix(run)}")
    return fig


# --------------------------------------------------------------------------- (d) new samples
def plot_new_samples(stats, run: str = ""):
    """Samples selected for the first time in each round (mean over seeds), per strategy;
    the dotted line is N, the selection size (round 1 is all new by definition)."""
    import seaborn as sns

    require(stats, ["domain", "model", "paradigm", "strategy", "round", "new", "n_selected"], "new_samples")
    strategies = order(stats["strategy"])
    palette = strategy_colours(strategies)
    keys = order(zip(stats["domain"], stats["model"], stats["paradigm"]))
    fig, axes = panels(keys)
    for key, ax in axes.items():
        here = stats[(stats["domain"] == key[0]) & (stats["model"] == key[1]) & (stats["paradigm"] == key[2])]
        sns.barplot(data=here, x="round", y="new", hue="strategy", hue_order=strategies, palette=palette,
                    errorbar=None, saturation=1, ax=ax, legend=False)
        ax.axhline(here["n_selected"].max(), color="0.3", ls=":", lw=1.2)
        ax.set_title(panel_title(key))
    outer_labels(axes, column_count(keys), "round", "samples selected\nfor the first time (count)")
    from matplotlib.lines import Line2D

    handles = [*strategy_handles(palette), Line2D([], [], color="0.3", ls=":", label="N (selected per round)")]
    legend(fig, handles, [h.get_label() for h in handles])
    fig.suptitle(f"New samples per round{run_suffix(run)}")
    return fig


# --------------------------------------------------------------------------- (e) estimator K
def plot_estimator_k(est, aggregate: str = "top_frac", run: str = ""):
    """Prefix entropy at K tokens against full-sequence entropy, per domain: speed-up (left;
    the paper's 6.1× as a dotted line) and rank agreement (right: Spearman, Kendall, top-N
    overlap), one colour per scored model. ``est``: tables/estimator.csv, or one benchmark's
    rows with a ``domain`` column."""
    import seaborn as sns
    from matplotlib.lines import Line2D

    require(est, ["domain", "model", "table", "estimator", "k", "aggregate", "speedup_vs_full", "spearman_vs_full",
                   "kendall_vs_full", "topn_overlap"], "estimator_k")
    prefix = prefix_rows(est, aggregate)
    require(prefix, ["k"], f"estimator_k (prefix rows with {aggregate} aggregation)")
    prefix = prefix.assign(k=prefix["k"].astype(int))
    statistic = dict(zip(AGREEMENT, ("Spearman ρ", "Kendall τ", "top-N overlap")))
    agreement = prefix.melt(id_vars=["domain", "model", "k"], value_vars=list(statistic), var_name="statistic",
                            value_name="agreement")
    agreement["statistic"] = agreement["statistic"].map(statistic)
    domains, models = order(prefix["domain"]), order(prefix["model"])
    palette = dict(zip(models, sns.color_palette("colorblind", max(len(models), 3))))
    keys = [(d, what) for d in domains for what in ("cost", "ranking")]
    fig, axes = panels(keys, ncols=2, width=4.6, sharey=False)
    ks = sorted(prefix["k"].unique())
    for (domain, what), ax in axes.items():
        if what == "cost":
            sns.lineplot(data=prefix[prefix["domain"] == domain], x="k", y="speedup_vs_full", hue="model",
                         hue_order=models, palette=palette, marker="o", ax=ax, legend=False)
            ax.axhline(1.0, color="0.5", lw=0.8, ls="--")
            ax.axhline(PAPER_SPEEDUP, color="0.3", lw=1, ls=":")
            ax.set_ylabel("speed-up vs full entropy (×)")
        else:
            sns.lineplot(data=agreement[agreement["domain"] == domain], x="k", y="agreement", hue="model",
                         hue_order=models, palette=palette, style="statistic", markers=True, ax=ax, legend=False)
            ax.set_ylabel("agreement with full entropy")
            lowest = agreement["agreement"].min()  # NaN when every correlation is undefined
            ax.set_ylim(-0.05 if lowest != lowest else min(-0.05, lowest - 0.05), 1.05)
        ax.set_xscale("log", base=2)
        ax.set_xticks(ks, [str(k) for k in ks])
        ax.minorticks_off()
        ax.set_xlabel("prefix length K (tokens)")
        ax.set_title(f"{domain}: {'cost' if what == 'cost' else 'ranking'}")
    markers = ["o", "X", "s"]
    handles = [Line2D([], [], color=palette[m], lw=2, label=m) for m in models]
    handles += [Line2D([], [], color="0.3", marker=mk, dashes=d, label=s)
                for (s, mk, d) in zip(statistic.values(), markers, [(1, 0), (4, 1.5), (1, 1)])]
    handles += [Line2D([], [], color="0.3", ls=":", label=f"paper: {PAPER_SPEEDUP:.1f}× (K = 128)")]
    legend(fig, handles, [h.get_label() for h in handles])
    fig.suptitle(f"Prefix vs full entropy ({aggregate} aggregation){run_suffix(run)}")
    return fig


# --------------------------------------------------------------------------- (f) training curves
def plot_training(steps, paradigm: str, run: str = ""):
    """Per optimiser step, counted across rounds (dotted lines = round boundaries): every
    metric of TRAINING_METRICS that the runs logged, mean over seeds (band: ±1 sd), one
    colour per strategy; columns domain x model, rows metrics. ``steps``: load_steps."""
    import seaborn as sns

    require(steps, ["domain", "model", "strategy", "seed", "round", "step"], f"training_{paradigm}")
    metrics = [m for m in TRAINING_METRICS if m in steps.columns and steps[m].notna().any()]
    if not metrics:
        raise UserFacingError(f"plot training_{paradigm}: the metrics.jsonl rows log none of {list(TRAINING_METRICS)}")
    strategies = order(steps["strategy"])
    palette = strategy_colours(strategies)
    columns = order(zip(steps["domain"], steps["model"]))
    keys = [(metric, *column) for metric in metrics for column in columns]
    fig, axes = panels(keys, ncols=len(columns), width=4.2, height=2.4, sharey=False, sharex=True)
    for (metric, domain, model), ax in axes.items():
        here = steps[(steps["domain"] == domain) & (steps["model"] == model)]
        sns.lineplot(data=here, x="step", y=metric, hue="strategy", hue_order=strategies, palette=palette,
                     errorbar="sd", ax=ax, legend=False, lw=1.2)
        starts = here.groupby("round")["step"].min().sort_index()
        for r, start in starts.items():
            if r > 1:
                ax.axvline(start - 0.5, color="0.5", ls=":", lw=0.9)
        ax.set_title(f"{domain} · {model}" if metric == metrics[0] else "")
    for (metric, *_), ax in axes.items():
        ax.set_ylabel(TRAINING_METRICS[metric])
        ax.set_xlabel("optimiser step, across rounds\n(dotted: a new round starts)" if metric == metrics[-1] else "")
    legend(fig, strategy_handles(palette), strategies, title="strategy")
    fig.suptitle(f"{paradigm.upper()} training per step, mean over seeds (band ±1 sd){run_suffix(run)}")
    return fig


# --------------------------------------------------------------------------- (g) per level
def plot_levels(levels, run: str = ""):
    """Accuracy per difficulty level: one line per strategy (mean over seeds, bars ±1 sd),
    nudged sideways so that equal lines stay visible; line style = paradigm; black dashed =
    the base model. ``levels``: report.load_level_accuracies; without levels the figure says so."""
    from matplotlib.lines import Line2D

    if levels is not None and "level" in levels.columns and levels.empty:
        return message_plot(f"Accuracy per difficulty level{run_suffix(run)}",
                            "The test data of this run has no difficulty levels.")
    require(levels, ["domain", "model", "paradigm", "strategy", "mode", "level", "accuracy"], "accuracy_per_level")
    tuned = levels[levels["strategy"] != "base"]
    strategies, paradigms = order(tuned["strategy"]), order(tuned["paradigm"])
    palette = strategy_colours(strategies)
    lines = [(s, p) for p in paradigms for s in strategies]
    nudge = {line: (i - (len(lines) - 1) / 2) * min(0.06, 0.5 / len(lines)) for i, line in enumerate(lines)}
    dashes = dict(zip(paradigms, ["-", "--", ":", "-."]))
    keys, ncols = acc_panels(levels)
    fig, axes = panels(keys, ncols)
    for (model, mode, domain), ax in axes.items():
        here = levels[(levels["domain"] == domain) & (levels["model"] == model) & (levels["mode"] == mode)]
        base = here[here["strategy"] == "base"].groupby("level")["accuracy"].mean()
        if len(base):
            ax.plot(base.index, base.values, color="black", ls="--", marker="x", lw=1.2, zorder=3)
        for (strategy, paradigm), cell in here[here["strategy"] != "base"].groupby(["strategy", "paradigm"], sort=False):
            stats = cell.groupby("level")["accuracy"].agg(["mean", "std"]).fillna(0.0)
            ax.errorbar(stats.index + nudge[(strategy, paradigm)], stats["mean"], yerr=stats["std"],
                        color=palette[strategy], ls=dashes[paradigm], marker=PARADIGM_MARKERS.get(paradigm, "D"),
                        ms=5, lw=1.4, capsize=2.5)
        ax.set_xticks(sorted(here["level"].unique()))
        ax.set_title(panel_title((domain, model, mode)))
    outer_labels(axes, ncols, "difficulty level of the test question", "accuracy (fraction correct)")
    clip_to_fraction(axes)
    handles = [*strategy_handles(palette), Line2D([], [], color="black", ls="--", marker="x", label="base model")]
    handles += [Line2D([], [], color="0.3", ls=dashes[p], marker=PARADIGM_MARKERS.get(p, "D"), label=p) for p in paradigms]
    legend(fig, handles, [h.get_label() for h in handles])
    fig.suptitle(f"Accuracy per difficulty level{run_suffix(run)}")
    return fig


# --------------------------------------------------------------------------- (h) verdict
def _interval(ax, row: pd.Series, prefix: str, y: float, **style) -> None:
    """One estimate ``<prefix>diff`` with its interval [<prefix>low, <prefix>high] at height y."""
    diff, low, high = row[f"{prefix}diff"], row[f"{prefix}low"], row[f"{prefix}high"]
    if diff == diff:
        bars = None if low != low else [[diff - low], [high - diff]]
        ax.errorbar([diff], [y], xerr=bars, **style)


def plot_verdict(frame, run: str = ""):
    """Forest plot of accuracy minus random's: one panel per paradigm x mode, one row per
    strategy; each domain x model cell a small dot with its 95 % interval; the pool of every
    cell a large marker, filled for fixed effects (these cells), hollow for random effects
    (cells in general, Hartung-Knapp); zero dashed. ``frame``: stats.verdict_frame."""
    from matplotlib.lines import Line2D

    require(frame, ["paradigm", "mode", "strategy", "reference", "domain", "diff", "low", "high", "re_diff", "re_low",
                    "re_high"], "verdict")
    # A row against random_matched (the compute-matched reference) is its own line, coloured as its strategy.
    label = [s if r == "random" else f"{s} vs {r}" for s, r in zip(frame["strategy"], frame["reference"])]
    colour_of = dict(zip(label, frame["strategy"]))
    frame = frame.assign(strategy=label)
    strategies = order(frame["strategy"])
    colours = strategy_colours(order(colour_of.values()))
    palette = {name: colours[colour_of[name]] for name in strategies}
    keys = order(zip(frame["paradigm"], frame["mode"]))
    fig, axes = panels(keys, min(len(keys), 2), width=4.6, height=0.7 * len(strategies) + 1.6, sharex=True)
    for key, ax in axes.items():
        here = frame[(frame["paradigm"] == key[0]) & (frame["mode"] == key[1])]
        for y, strategy in enumerate(strategies):
            rows = here[here["strategy"] == strategy]
            cells, pooled = rows[rows["domain"] != ALL_CELLS], rows[rows["domain"] == ALL_CELLS]
            offsets = [0.12 + 0.3 * i / max(len(cells) - 1, 1) for i in range(len(cells))]
            for dy, (_, c) in zip(offsets, cells.iterrows()):
                _interval(ax, c, "", y + dy, color=palette[strategy], alpha=0.45, marker="o", ms=3.5, lw=0.9, capsize=0)
            for _, r in pooled.iterrows():
                _interval(ax, r, "", y - 0.12, color=palette[strategy], marker="D", ms=8, mec="black", mew=0.7,
                          lw=2.2, capsize=4)
                _interval(ax, r, "re_", y - 0.32, color=palette[strategy], marker="D", ms=7, mfc="white",
                          mec=palette[strategy], mew=1.4, lw=1.4, capsize=3)
                ax.text(0.99, y - 0.5, f"Δ{fmt(r['diff'], '+.3f')}, p(Holm) fixed {fmt(r['p_holm'], '.2g')}, "
                        f"random {fmt(r['re_p_holm'], '.2g')}", ha="right", va="center", fontsize=7.5, color="0.2",
                        transform=ax.get_yaxis_transform())
        ax.axvline(0, color="0.25", ls="--", lw=1.1)
        ax.set_yticks(range(len(strategies)), strategies)
        ax.set_ylim(len(strategies) - 0.45, -0.65)
        ax.set_title(panel_title(key))
    outer_labels(axes, min(len(keys), 2), "accuracy − random's (fraction correct)", "")
    handles = [Line2D([], [], color="0.4", marker="D", ms=7, mec="black", lw=2,
                      label="all cells, fixed effects\n(these cells), 95 %"),
               Line2D([], [], color="0.4", marker="D", ms=7, mfc="white", lw=1.4,
                      label="all cells, random effects\n(cells in general), 95 %"),
               Line2D([], [], color="0.4", marker="o", ms=4, alpha=0.5, lw=1, label="one domain × model cell"),
               Line2D([], [], color="0.25", ls="--", label="random")]
    legend(fig, handles, [h.get_label() for h in handles])
    fig.suptitle(f"Does a strategy beat random? Seeds and questions as samples{run_suffix(run)}")
    return fig


# --------------------------------------------------------------------------- all of them
def write_plots(config: dict, only: list[str] | None = None, formats: tuple[str, ...] = ("png",)) -> list[Path]:
    """Every plot the run has (edco.report.registry.PLOTS), or the ``only`` ones, under results/<run>/plots/."""
    plots = registry.plots_of(config)
    unknown = sorted(set(only or []) - set(plots))
    if unknown:
        raise UserFacingError(f"--only: no plot {unknown} for this config; its plots: {', '.join(plots)}")
    run = config["run"]

    @functools.cache
    def data(what: str, paradigm: str | None):
        """Each input of a plot (registry ``inputs``), read once however many plots use it."""
        frames = {
            "evaluations": lambda: load.evaluations(config),
            "accuracies": lambda: load.accuracies(data("evaluations", None)),
            "levels": lambda: load.level_accuracies(data("evaluations", None)),
            "totals": lambda: load.run_totals(load.timing(config)),
            "selections": lambda: load.selections(config),
            "estimator": lambda: load.estimator_table(config),
            "aggregate": lambda: config["estimator"]["aggregate"],
            "verdict": lambda: load.verdict_table(config),
            "steps": lambda: load.steps(config, paradigm),
            "paradigm": lambda: paradigm,
        }
        return frames[what]()

    paths: list[Path] = []
    for name, plot in plots.items():
        if only and name not in only:
            continue
        paradigm = plot.paradigm_of(name)
        figure = globals()[plot.function](*(data(what, paradigm) for what in plot.inputs), run)
        paths += save(figure, layout.plots_dir(run) / name, formats)
        log.info("wrote %s.{%s}", layout.plots_dir(run) / name, ",".join(formats))
    return paths
