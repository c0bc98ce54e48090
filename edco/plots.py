"""Plots of a finished grid (seaborn; PNG for the report, PDF for papers), one function per plot:

    accuracy               accuracy per strategy, mean and 95 % t-interval over seeds, base model as a line
    accuracy_vs_time       accuracy against total wall-clock per run (scoring + selecting + training), Pareto front
    cost                   where a run's wall-clock goes: scoring, selecting, training
    entropy                mean entropy of the pool and of the selection per round (strategies scoring by entropy)
    new_samples            samples selected for the first time, per round
    estimator_k            prefix length K against speed-up and rank agreement with full entropy
    training_<paradigm>    loss / reward / grad-norm / entropy per optimiser step, across rounds
    accuracy_per_level     accuracy per difficulty level of the test questions

    python -m edco plots --config config/smoke.yaml                 # every plot of the config
    python -m edco plots --config config/smoke.yaml --only accuracy # one

Each ``plot_*`` function takes a DataFrame (the ``load_*`` functions here and in
``edco.report`` build them from results/<run>/) and an output stem; it writes <stem>.png and
<stem>.pdf atomically and returns both paths. Missing inputs are errors that name the file.
"""

from __future__ import annotations

import argparse
import functools
import logging
import math
from pathlib import Path

from edco import io, layout
from edco.config import load_config, round_budget
from edco.errors import UserFacingError

log = logging.getLogger("edco.plots")

ENTROPY_KINDS = ("prefix", "full", "teacher_forced")
#: metrics.jsonl columns the training plot shows (when logged), with their axis labels.
TRAINING_METRICS = {
    "loss": "training loss",
    "reward": "mean reward\n(1 = right letter)",
    "grad_norm": "gradient norm (L2)",
    "entropy": "mean token entropy\n(nats)",
}
PAPER_SPEEDUP = 2.24 / 0.37  # the paper's prefix (K = 128) vs full time per sample
PARADIGM_MARKERS = {"sft": "o", "rl": "s"}


# --------------------------------------------------------------------------- which plots
def entropy_strategies(strategies: list[str]) -> list[str]:
    """The strategies whose round scores are entropies (they have an ``estimator_kind``)."""
    from edco.curriculum import get_strategy

    return [s for s in strategies if getattr(get_strategy(s), "estimator_kind", None) in ENTROPY_KINDS]


def plot_names(config: dict) -> list[str]:
    """The plot stems a config produces (the workflow's outputs are <stem>.png and <stem>.pdf)."""
    names = ["accuracy", "accuracy_vs_time", "cost", "new_samples"]
    if entropy_strategies(config["grid"]["strategies"]):
        names.append("entropy")
    if config.get("estimator_bench", {}).get("enabled", True):
        names.append("estimator_k")
    names += [f"training_{p}" for p in config["grid"]["paradigms"]]
    names.append("accuracy_per_level")
    return names


# --------------------------------------------------------------------------- loading
def load_selection_stats(config: dict):
    """One row per run and round, from round<r>/{scores.parquet, selection.jsonl}: the mean
    score of the pool and of the selection (NaN when the round scored nothing), the samples
    selected for the first time (``new``), the distinct samples selected so far
    (``covered``), the selection size, and the strategy's estimator kind (None if it has none)."""
    import pandas as pd

    from edco.curriculum import get_strategy
    from edco.report import RUN_KEYS, grid_runs

    rows = []
    for keys in grid_runs(config):
        kind = getattr(get_strategy(keys[3]), "estimator_kind", None)
        run_path = layout.run_dir(config["run"], *keys)
        seen: set[str] = set()
        for r in range(1, round_budget(config, keys[2], keys[1])[0] + 1):
            rd = layout.round_dir(run_path, r)
            for name in ("scores.parquet", "selection.jsonl"):
                if not (rd / name).exists():
                    raise UserFacingError(f"missing {rd / name}: run the workflow to finish this run")
            selection = io.read_jsonl(rd / "selection.jsonl")
            ids = [row["id"] for row in selection]
            pool = pd.read_parquet(rd / "scores.parquet")["score"]
            picked = [row["score"] for row in selection if row.get("score") is not None]
            new = len(set(ids) - seen)
            seen |= set(ids)
            rows.append({**dict(zip(RUN_KEYS, keys)), "round": r, "kind": kind, "n_selected": len(ids), "new": new,
                         "covered": len(seen), "pool_mean": pool.mean() if len(pool) else math.nan,
                         "selection_mean": sum(picked) / len(picked) if picked else math.nan})
    return pd.DataFrame(rows)


def load_steps(config: dict, paradigm: str):
    """One row per optimiser step of every run of ``paradigm``, from round<r>/metrics.jsonl:
    the run keys, ``round``, ``step`` (counted across rounds, from 1) and the logged metrics."""
    import pandas as pd

    from edco.report import RUN_KEYS, grid_runs

    rows = []
    for keys in grid_runs(config):
        if keys[2] != paradigm:
            continue
        run_path = layout.run_dir(config["run"], *keys)
        step = 0
        for r in range(1, round_budget(config, keys[2], keys[1])[0] + 1):
            path = layout.round_dir(run_path, r) / "metrics.jsonl"
            if not path.exists():
                raise UserFacingError(f"missing {path}: run the workflow to finish this run")
            for logged in io.read_jsonl(path):
                step += 1
                rows.append({**dict(zip(RUN_KEYS, keys)), "round": r, **logged, "step": step})
    return pd.DataFrame(rows)


def load_estimator(config: dict):
    path = layout.tables_dir(config["run"]) / "estimator.csv"
    if not path.exists():
        raise UserFacingError(f"missing {path}: run `python -m edco table --config C --estimator` first")
    import pandas as pd

    return pd.read_csv(path)


# --------------------------------------------------------------------------- helpers
def _plt():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import seaborn as sns

    sns.set_theme(style="whitegrid", context="paper", font_scale=1.15)
    return plt


def _require(frame, columns: list[str], what: str) -> None:
    missing = [c for c in columns if c not in getattr(frame, "columns", [])]
    if frame is None or missing or frame.empty:
        detail = f"missing columns {missing}" if missing else "no rows"
        raise UserFacingError(f"plot {what}: nothing to plot ({detail}); are the runs and evaluations finished?")


def _order(values) -> list:
    return list(dict.fromkeys(values))


#: Every strategy keeps its colour in every plot and every run, whichever subset a plot
#: shows: the paper's four, then the six beyond-paper ones, take the ten colours of the
#: colour-blind palette in this order; other names get the remaining colours after them.
STRATEGY_ORDER = ("random", "static_difficulty", "edco", "edco_full")


#: Marker per strategy where markers carry the strategy (accuracy_vs_time), same slots as colours.
STRATEGY_MARKERS = ("o", "s", "D", "^", "v", "P", "X", "p", "h", "<")


def _slots(strategies: list[str]) -> dict[str, int]:
    """A fixed slot per strategy: the paper's four, the six beyond-paper ones, then the rest."""
    from edco.config import BEYOND_PAPER_STRATEGIES

    known = [*STRATEGY_ORDER, *BEYOND_PAPER_STRATEGIES]
    return {s: i for i, s in enumerate([*known, *(s for s in strategies if s not in known)])}


def _palette(strategies: list[str]) -> dict:
    import seaborn as sns

    slot = _slots(strategies)
    colours = sns.color_palette("colorblind", 10) + sns.color_palette("dark", max(len(slot) - 10, 1))
    return {s: colours[slot[s] % len(colours)] for s in strategies}


def _strategy_markers(strategies: list[str]) -> dict:
    slot = _slots(strategies)
    return {s: STRATEGY_MARKERS[slot[s] % len(STRATEGY_MARKERS)] for s in strategies}


def _ncols(keys: list[tuple]) -> int:
    """Columns of a panel grid: the distinct values of the keys' last component (e.g. the
    paradigms), or of the last two when the last has one value; at most 4."""
    for depth in range(1, len(keys[0]) + 1):
        n = len({k[-depth:] for k in keys})
        if n > 1:
            return min(n, 4)
    return 1


def _panels(keys: list[tuple], ncols: int | None = None, width: float = 3.9, height: float = 3.1,
            sharey: bool = True, sharex: bool = False):
    """A grid of axes, one per key, in order; unused cells hidden. Returns (fig, {key: ax})."""
    plt = _plt()
    ncols = ncols or _ncols(keys)
    nrows = math.ceil(len(keys) / ncols)
    fig, axes = plt.subplots(nrows, ncols, figsize=(width * ncols + 1.8, height * nrows + 0.8), squeeze=False,
                             sharey=sharey, sharex=sharex, layout="constrained")
    flat = axes.ravel()
    for ax in flat[len(keys):]:
        ax.set_visible(False)
    for ax in flat[:len(keys)]:
        ax.tick_params(labelleft=True)  # shared axes still get their tick labels on every panel
    return fig, dict(zip(keys, flat))


def _outer_labels(axes: dict, ncols: int, xlabel: str, ylabel: str) -> None:
    """The x label under the bottom panel of each column, the y label left of each row."""
    flat = list(axes.values())
    for i, ax in enumerate(flat):
        ax.set_ylabel(ylabel if i % ncols == 0 else "")
        ax.set_xlabel(xlabel if i + ncols >= len(flat) else "")


def _clip_to_fraction(axes: dict) -> None:
    """Accuracy is a fraction: a t-interval of 2 seeds reaching past 0 or 1 is cut at the frame."""
    for ax in axes.values():
        low, high = ax.get_ylim()
        ax.set_ylim(max(low, -0.02), min(high, 1.02))


def _title(key: tuple) -> str:
    return " · ".join(str(k) for k in key)


def _legend(fig, handles, labels, title: str | None = None) -> None:
    """One legend for the figure, outside the panels on the right, so it hides no data. A long
    list (ten strategies and the markers' key) gets a taller figure rather than running into
    the title (~0.3 inch per entry)."""
    fig.set_figheight(max(fig.get_figheight(), 0.3 * (len(labels) + 2)))
    fig.legend(handles, labels, title=title, loc="outside right center", frameon=False)


def _save(fig, stem: Path) -> list[Path]:
    plt = _plt()
    stem = Path(stem)
    paths = []
    for ext in ("png", "pdf"):
        path = stem.with_name(f"{stem.name}.{ext}")
        with io.atomic_path(path) as tmp:
            fig.savefig(tmp, format=ext, dpi=150, bbox_inches="tight")
        paths.append(path)
    plt.close(fig)
    return paths


def message_plot(stem: Path, title: str, message: str) -> list[Path]:
    """A figure that says why there is nothing to draw (an output the workflow expects)."""
    plt = _plt()
    fig, ax = plt.subplots(figsize=(6, 2.2))
    ax.axis("off")
    ax.text(0.5, 0.5, message, ha="center", va="center", wrap=True, fontsize=11)
    fig.suptitle(title)
    return _save(fig, stem)


def _acc_panels(frame):
    """Panels (model, mode, domain) for the accuracy plots: columns domains (or modes, with
    one domain), rows model x mode."""
    domains = _order(frame["domain"])
    rows = _order(zip(frame["model"], frame["mode"]))
    keys = [(model, mode, domain) for model, mode in rows for domain in domains]
    return keys, _ncols(keys)


def _marker_handles(paradigms: list[str]):
    from matplotlib.lines import Line2D

    return [Line2D([], [], color="0.3", marker=PARADIGM_MARKERS.get(p, "D"), ls="", label=p) for p in paradigms]


def _strategy_handles(palette: dict):
    from matplotlib.patches import Patch

    return [Patch(color=c, label=s) for s, c in palette.items()]


# --------------------------------------------------------------------------- (a) accuracy
def plot_accuracy(acc, stem: Path, run: str = "") -> list[Path]:
    """Accuracy per strategy: each seed a dot, the mean with its 95 % t-interval over seeds
    (as the main table), one colour per strategy, one marker per paradigm; the base model
    (no fine-tuning) a dashed line. ``acc``: report.load_accuracies."""
    from matplotlib.lines import Line2D

    from edco.stats import mean_ci

    _require(acc, ["domain", "model", "paradigm", "strategy", "seed", "mode", "accuracy"], "accuracy")
    tuned = acc[acc["strategy"] != "base"]
    _require(tuned, ["strategy"], "accuracy (fine-tuned runs)")
    strategies, paradigms = _order(tuned["strategy"]), _order(tuned["paradigm"])
    palette = _palette(strategies)
    keys, ncols = _acc_panels(acc)
    fig, axes = _panels(keys, ncols, width=max(3.9, 0.6 * len(strategies) + 1.2))
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
        ax.set_title(_title((domain, model, mode)))
    _outer_labels(axes, ncols, "curriculum strategy", "accuracy on the test split\n(fraction correct)")
    _clip_to_fraction(axes)
    handles = [Line2D([], [], color="0.25", ls="--", label="base model\n(no fine-tuning)"),
               Line2D([], [], color="0.4", marker="o", ls="", alpha=0.35, ms=4, label="one seed"),
               Line2D([], [], color="0.4", marker="|", ls="-", ms=10, label="mean, 95 % CI\nover seeds"),
               *_marker_handles(paradigms)]
    _legend(fig, handles, [h.get_label() for h in handles])
    fig.suptitle(f"Accuracy per curriculum strategy{_run(run)}")
    return _save(fig, stem)


def _run(run: str) -> str:
    return f" — run {run}" if run else ""


# --------------------------------------------------------------------------- (b) accuracy vs time
def plot_accuracy_vs_time(acc, totals, stem: Path, run: str = "") -> list[Path]:
    """Accuracy against total wall-clock per run (scoring + selecting + training, summed over
    rounds): small = runs, large = the cell's mean over seeds; colour *and* marker = strategy
    (ten strategies stay apart), filled = the first paradigm, hollow = the second; a dotted
    line joins the means on the accuracy-compute Pareto front (edco.compute); the base model
    a dashed line. ``totals``: report.run_totals."""
    from matplotlib.lines import Line2D

    _require(acc, ["domain", "model", "paradigm", "strategy", "seed", "mode", "accuracy"], "accuracy_vs_time")
    _require(totals, ["domain", "model", "paradigm", "strategy", "seed", "total_seconds"], "accuracy_vs_time")
    keys = ["domain", "model", "paradigm", "strategy", "seed"]
    tuned = acc[acc["strategy"] != "base"].astype({"seed": int})
    merged = tuned.merge(totals[[*keys, "total_seconds"]].astype({"seed": int}), on=keys, how="inner")
    _require(merged, ["total_seconds"], "accuracy_vs_time (runs with both an evaluation and a timing)")
    strategies, paradigms = _order(merged["strategy"]), _order(merged["paradigm"])
    palette, markers = _palette(strategies), _strategy_markers(strategies)
    hollow = set(paradigms[1:])
    panel_keys, ncols = _acc_panels(acc)
    fig, axes = _panels(panel_keys, ncols, sharex=False)
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
        ax.set_title(_title((domain, model, mode)))
        if len(here):  # from 0 (the base model's cost), with room right of the slowest run
            ax.set_xlim(0, here["total_seconds"].max() * 1.12)
    _outer_labels(axes, ncols, "wall-clock per run (s)\nscoring + selecting + training, all rounds",
                  "accuracy on the test split\n(fraction correct)")
    handles = [Line2D([], [], color=palette[s], marker=markers[s], ls="", ms=8, mec="black", label=s) for s in strategies]
    if hollow:
        handles += [Line2D([], [], color="0.4", marker="o", ls="", ms=8, mfc="white" if p in hollow else "0.4", label=p)
                    for p in paradigms]
    handles += [Line2D([], [], color="0.4", marker="o", ls="", alpha=0.4, ms=4, label="one run"),
                Line2D([], [], color="0.4", marker="o", ls="", mec="black", ms=8, label="mean over seeds"),
                Line2D([], [], color="0.3", ls=":", label="Pareto front\n(no mean is more\naccurate and cheaper)"),
                Line2D([], [], color="0.25", ls="--", label="base model")]
    _legend(fig, handles, [h.get_label() for h in handles])
    fig.suptitle(f"Accuracy against wall-clock, scoring included{_run(run)}")
    return _save(fig, stem)


def _pareto_line(ax, means) -> None:
    """A dotted line through the cell means on the Pareto front, cheapest first."""
    from edco.compute import pareto_front

    front = means[pareto_front(means["accuracy"].tolist(), means["total_seconds"].tolist())]
    front = front.sort_values("total_seconds")
    ax.plot(front["total_seconds"], front["accuracy"], color="0.3", ls=":", lw=1.2, zorder=2)


# --------------------------------------------------------------------------- cost breakdown
def plot_cost(totals, stem: Path, run: str = "") -> list[Path]:
    """Mean wall-clock per run split into scoring, selecting and training (stacked bars),
    one bar per strategy, a panel per domain x model x paradigm."""
    _require(totals, ["domain", "model", "paradigm", "strategy", "scoring_seconds", "selecting_seconds",
                      "training_seconds"], "cost")
    phases = {"scoring_seconds": "scoring the pool", "selecting_seconds": "selecting", "training_seconds": "training"}
    colours = dict(zip(phases, ["#c44e52", "#8c8c8c", "#4c72b0"]))
    keys = _order(zip(totals["domain"], totals["model"], totals["paradigm"]))
    strategies = _order(totals["strategy"])
    fig, axes = _panels(keys, width=4.2, height=0.45 * len(strategies) + 1.6, sharey=False)
    for key, ax in axes.items():
        here = totals[(totals["domain"] == key[0]) & (totals["model"] == key[1]) & (totals["paradigm"] == key[2])]
        means = here.groupby("strategy", sort=False)[list(phases)].mean().reindex(strategies).fillna(0.0)
        left = [0.0] * len(means)
        for phase, label in phases.items():
            ax.barh(range(len(means)), means[phase], left=left, color=colours[phase], label=label, height=0.6)
            left = [a + b for a, b in zip(left, means[phase])]
        ax.set_yticks(range(len(means)), means.index)
        ax.invert_yaxis()
        ax.set_title(_title(key))
    _outer_labels(axes, _ncols(keys), "wall-clock per run (s),\nmean over seeds, all rounds", "")
    from matplotlib.patches import Patch

    handles = [Patch(color=colours[p], label=label) for p, label in phases.items()]
    _legend(fig, handles, list(phases.values()))
    fig.suptitle(f"Where the wall-clock goes{_run(run)}")
    return _save(fig, stem)


# --------------------------------------------------------------------------- (c) entropy per round
def plot_entropy(stats, stem: Path, run: str = "") -> list[Path]:
    """Mean entropy (bits) of the whole pool (solid) and of the round's selection (dashed)
    per round, mean over seeds, for the strategies that score by entropy, each nudged sideways
    so that identical curves stay visible. ``stats``: load_selection_stats."""
    from matplotlib.lines import Line2D

    _require(stats, ["domain", "model", "paradigm", "strategy", "round", "kind", "pool_mean", "selection_mean"],
             "entropy")
    scored = stats[stats["kind"].isin(ENTROPY_KINDS) & stats["pool_mean"].notna()]
    _require(scored, ["pool_mean"], "entropy (rounds of a strategy that scores by entropy)")
    strategies = _order(scored["strategy"])
    palette = _palette(strategies)  # a strategy's colour is fixed across plots (STRATEGY_ORDER)
    nudge = {st: (i - (len(strategies) - 1) / 2) * 0.05 for i, st in enumerate(strategies)}
    keys = _order(zip(scored["domain"], scored["model"], scored["paradigm"]))
    fig, axes = _panels(keys, sharey=False)
    means = scored.groupby(["domain", "model", "paradigm", "strategy", "round"], sort=False)[
        ["pool_mean", "selection_mean"]].mean().reset_index()
    for key, ax in axes.items():
        here = means[(means["domain"] == key[0]) & (means["model"] == key[1]) & (means["paradigm"] == key[2])]
        for strategy, rows in here.groupby("strategy", sort=False):
            x = rows["round"] + nudge[strategy]  # identical curves (edco_early_stop that never stopped) stay visible
            ax.plot(x, rows["pool_mean"], color=palette[strategy], marker="o", ls="-")
            ax.plot(x, rows["selection_mean"], color=palette[strategy], marker="^", ls="--")
        ax.set_xticks(sorted(here["round"].unique()))
        ax.set_title(_title(key))
    _outer_labels(axes, _ncols(keys), "round (scored by the model at its start)", "mean sample entropy (bits)")
    kinds = scored.drop_duplicates("strategy").set_index("strategy")["kind"]
    handles = [Line2D([], [], color=palette[s], lw=2.5, label=f"{s} ({kinds[s]})") for s in strategies]
    handles += [Line2D([], [], color="0.3", marker="o", ls="-", label="whole pool"),
                Line2D([], [], color="0.3", marker="^", ls="--", label="selected top-N")]
    _legend(fig, handles, [h.get_label() for h in handles])
    fig.suptitle(f"Entropy of the pool and of the selection per round{_run(run)}")
    return _save(fig, stem)


# --------------------------------------------------------------------------- (d) new samples
def plot_new_samples(stats, stem: Path, run: str = "") -> list[Path]:
    """Samples selected for the first time in each round (mean over seeds), per strategy;
    the dotted line is N, the selection size (round 1 is all new by definition)."""
    import seaborn as sns

    _require(stats, ["domain", "model", "paradigm", "strategy", "round", "new", "n_selected"], "new_samples")
    strategies = _order(stats["strategy"])
    palette = _palette(strategies)
    keys = _order(zip(stats["domain"], stats["model"], stats["paradigm"]))
    fig, axes = _panels(keys)
    for key, ax in axes.items():
        here = stats[(stats["domain"] == key[0]) & (stats["model"] == key[1]) & (stats["paradigm"] == key[2])]
        sns.barplot(data=here, x="round", y="new", hue="strategy", hue_order=strategies, palette=palette,
                    errorbar=None, saturation=1, ax=ax, legend=False)
        ax.axhline(here["n_selected"].max(), color="0.3", ls=":", lw=1.2)
        ax.set_title(_title(key))
    _outer_labels(axes, _ncols(keys), "round", "samples selected\nfor the first time (count)")
    from matplotlib.lines import Line2D

    handles = [*_strategy_handles(palette), Line2D([], [], color="0.3", ls=":", label="N (selected per round)")]
    _legend(fig, handles, [h.get_label() for h in handles])
    fig.suptitle(f"New samples per round{_run(run)}")
    return _save(fig, stem)


# --------------------------------------------------------------------------- (e) estimator K
def plot_estimator_k(est, stem: Path, aggregate: str = "top_frac", run: str = "") -> list[Path]:
    """Prefix entropy at K tokens against full-sequence entropy, per domain: speed-up (left;
    the paper's 6.1× as a dotted line) and rank agreement (right: Spearman, Kendall, top-N
    overlap), one colour per scored model. ``est``: tables/estimator.csv."""
    import seaborn as sns

    _require(est, ["domain", "model", "table", "estimator", "k", "aggregate", "speedup_vs_full", "spearman_vs_full",
                   "kendall_vs_full", "topn_overlap"], "estimator_k")
    prefix = est[(est["table"] == "estimators") & (est["estimator"] == "prefix") & (est["aggregate"] == aggregate)]
    _require(prefix, ["k"], f"estimator_k (prefix rows with {aggregate} aggregation)")
    prefix = prefix.assign(k=prefix["k"].astype(int))
    statistic = {"spearman_vs_full": "Spearman ρ", "kendall_vs_full": "Kendall τ", "topn_overlap": "top-N overlap"}
    agreement = prefix.melt(id_vars=["domain", "model", "k"], value_vars=list(statistic), var_name="statistic",
                            value_name="agreement")
    agreement["statistic"] = agreement["statistic"].map(statistic)
    domains, models = _order(prefix["domain"]), _order(prefix["model"])
    palette = dict(zip(models, sns.color_palette("colorblind", max(len(models), 3))))
    keys = [(d, what) for d in domains for what in ("cost", "ranking")]
    fig, axes = _panels(keys, ncols=2, width=4.6, sharey=False)
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
    from matplotlib.lines import Line2D

    markers = ["o", "X", "s"]
    handles = [Line2D([], [], color=palette[m], lw=2, label=m) for m in models]
    handles += [Line2D([], [], color="0.3", marker=mk, dashes=d, label=s)
                for (s, mk, d) in zip(statistic.values(), markers, [(1, 0), (4, 1.5), (1, 1)])]
    handles += [Line2D([], [], color="0.3", ls=":", label=f"paper: {PAPER_SPEEDUP:.1f}× (K = 128)")]
    _legend(fig, handles, [h.get_label() for h in handles])
    fig.suptitle(f"Prefix vs full entropy ({aggregate} aggregation){_run(run)}")
    return _save(fig, stem)


# --------------------------------------------------------------------------- (f) training curves
def plot_training(steps, stem: Path, paradigm: str, run: str = "") -> list[Path]:
    """Per optimiser step, counted across rounds (dotted lines = round boundaries): every
    metric of TRAINING_METRICS that the runs logged, mean over seeds (band: ±1 sd), one
    colour per strategy; columns domain x model, rows metrics. ``steps``: load_steps."""
    import seaborn as sns

    _require(steps, ["domain", "model", "strategy", "seed", "round", "step"], f"training_{paradigm}")
    metrics = [m for m in TRAINING_METRICS if m in steps.columns and steps[m].notna().any()]
    if not metrics:
        raise UserFacingError(f"plot training_{paradigm}: the metrics.jsonl rows log none of {list(TRAINING_METRICS)}")
    strategies = _order(steps["strategy"])
    palette = _palette(strategies)
    columns = _order(zip(steps["domain"], steps["model"]))
    keys = [(metric, *column) for metric in metrics for column in columns]
    fig, axes = _panels(keys, ncols=len(columns), width=4.2, height=2.4, sharey=False, sharex=True)
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
    _legend(fig, _strategy_handles(palette), strategies, title="strategy")
    fig.suptitle(f"{paradigm.upper()} training per step, mean over seeds (band ±1 sd){_run(run)}")
    return _save(fig, stem)


# --------------------------------------------------------------------------- (g) per level
def plot_levels(levels, stem: Path, run: str = "") -> list[Path]:
    """Accuracy per difficulty level: one line per strategy (mean over seeds, bars ±1 sd),
    nudged sideways so that equal lines stay visible; line style = paradigm; black dashed =
    the base model. ``levels``: report.load_level_accuracies; without levels the figure says so."""
    from matplotlib.lines import Line2D

    if levels is not None and "level" in levels.columns and levels.empty:
        return message_plot(stem, f"Accuracy per difficulty level{_run(run)}",
                            "The test data of this run has no difficulty levels.")
    _require(levels, ["domain", "model", "paradigm", "strategy", "mode", "level", "accuracy"], "accuracy_per_level")
    tuned = levels[levels["strategy"] != "base"]
    strategies, paradigms = _order(tuned["strategy"]), _order(tuned["paradigm"])
    palette = _palette(strategies)
    lines = [(s, p) for p in paradigms for s in strategies]
    nudge = {line: (i - (len(lines) - 1) / 2) * min(0.06, 0.5 / len(lines)) for i, line in enumerate(lines)}
    dashes = dict(zip(paradigms, ["-", "--", ":", "-."]))
    keys, ncols = _acc_panels(levels)
    fig, axes = _panels(keys, ncols)
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
        ax.set_title(_title((domain, model, mode)))
    _outer_labels(axes, ncols, "difficulty level of the test question", "accuracy (fraction correct)")
    _clip_to_fraction(axes)
    handles = [*_strategy_handles(palette), Line2D([], [], color="black", ls="--", marker="x", label="base model")]
    handles += [Line2D([], [], color="0.3", ls=dashes[p], marker=PARADIGM_MARKERS.get(p, "D"), label=p) for p in paradigms]
    _legend(fig, handles, [h.get_label() for h in handles])
    fig.suptitle(f"Accuracy per difficulty level{_run(run)}")
    return _save(fig, stem)


# --------------------------------------------------------------------------- all of them
def plot_verdict(frame, stem: Path, run: str = "") -> list[Path]:
    """Forest plot of accuracy minus random's: one panel per paradigm x mode, one row per
    strategy; each domain x model cell a small dot with its 95 % interval, the pooled
    difference a large marker with its interval (edco.verdict.verdict_frame), zero dashed."""
    from matplotlib.lines import Line2D

    from edco.verdict import ALL_CELLS

    _require(frame, ["paradigm", "mode", "strategy", "domain", "diff", "low", "high"], "verdict")
    strategies = _order(frame["strategy"])
    palette = _palette(strategies)
    keys = _order(zip(frame["paradigm"], frame["mode"]))
    fig, axes = _panels(keys, min(len(keys), 2), width=4.6, height=0.55 * len(strategies) + 1.6, sharex=True)
    for key, ax in axes.items():
        here = frame[(frame["paradigm"] == key[0]) & (frame["mode"] == key[1])]
        for y, strategy in enumerate(strategies):
            rows = here[here["strategy"] == strategy]
            cells, pooled = rows[rows["domain"] != ALL_CELLS], rows[rows["domain"] == ALL_CELLS]
            offsets = [0.12 + 0.3 * i / max(len(cells) - 1, 1) for i in range(len(cells))]
            for dy, (_, c) in zip(offsets, cells.iterrows()):
                ax.errorbar([c["diff"]], [y + dy], xerr=[[c["diff"] - c["low"]], [c["high"] - c["diff"]]],
                            color=palette[strategy], alpha=0.45, marker="o", ms=3.5, lw=0.9, capsize=0)
            for _, r in pooled.iterrows():
                ax.errorbar([r["diff"]], [y - 0.1], xerr=[[r["diff"] - r["low"]], [r["high"] - r["diff"]]],
                            color=palette[strategy], marker="D", ms=8, mec="black", mew=0.7, lw=2.2, capsize=4)
                if "p_holm" in r and r["p_holm"] == r["p_holm"]:
                    ax.text(0.99, y - 0.32, f"Δ{r['diff']:+.3f}, p(Holm)={r['p_holm']:.2g}", ha="right", va="center",
                            fontsize=8, color="0.2", transform=ax.get_yaxis_transform())
        ax.axvline(0, color="0.25", ls="--", lw=1.1)
        ax.set_yticks(range(len(strategies)), strategies)
        ax.set_ylim(len(strategies) - 0.45, -0.55)
        ax.set_title(_title(key))
    _outer_labels(axes, min(len(keys), 2), "accuracy − random's (fraction correct)", "")
    handles = [Line2D([], [], color="0.4", marker="D", ms=7, mec="black", lw=2, label="all cells pooled,\n95 % interval"),
               Line2D([], [], color="0.4", marker="o", ms=4, alpha=0.5, lw=1, label="one domain × model cell"),
               Line2D([], [], color="0.25", ls="--", label="random")]
    _legend(fig, handles, [h.get_label() for h in handles])
    fig.suptitle(f"Does a strategy beat random? Seeds and questions resampled{_run(run)}")
    return _save(fig, stem)


def write_plots(config: dict, only: list[str] | None = None) -> list[Path]:
    """Every plot of ``plot_names(config)`` (or the ``only`` ones) under results/<run>/plots/."""
    from edco import report

    names = plot_names(config)
    unknown = sorted(set(only or []) - set(names))
    if unknown:
        raise UserFacingError(f"--only: no plot {unknown} for this config; its plots: {', '.join(names)}")
    names = [n for n in names if not only or n in only]
    run, out = config["run"], layout.plots_dir(config["run"])

    @functools.cache
    def data(what: str):
        """Each input is read once, however many plots use it."""
        if what == "accuracies":
            return report.load_accuracies(config)
        if what == "totals":
            return report.run_totals(report.load_timing(config))
        return load_selection_stats(config)

    paths: list[Path] = []
    for name in names:
        stem = out / name
        if name == "accuracy":
            paths += plot_accuracy(data("accuracies"), stem, run)
        elif name == "accuracy_vs_time":
            paths += plot_accuracy_vs_time(data("accuracies"), data("totals"), stem, run)
        elif name == "cost":
            paths += plot_cost(data("totals"), stem, run)
        elif name == "entropy":
            paths += plot_entropy(data("selections"), stem, run)
        elif name == "new_samples":
            paths += plot_new_samples(data("selections"), stem, run)
        elif name == "estimator_k":
            paths += plot_estimator_k(load_estimator(config), stem, config["estimator"]["aggregate"], run)
        elif name.startswith("training_"):
            paradigm = name.removeprefix("training_")
            paths += plot_training(load_steps(config, paradigm), stem, paradigm, run)
        elif name == "accuracy_per_level":
            paths += plot_levels(report.load_level_accuracies(config), stem, run)
        log.info("wrote %s.{png,pdf}", stem)
    return paths


def cli_plots(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="python -m edco plots", description=__doc__.split("\n\n")[0])
    parser.add_argument("--config", required=True)
    parser.add_argument("--only", action="append", help="only this plot (repeatable); default: every plot")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    config = load_config(args.config)
    for path in write_plots(config, args.only):
        print(path)
    return 0
