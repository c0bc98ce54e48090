"""Plots from a hand-made results tree (no training): every plot writes a non-empty PNG (and
a PDF on request), selection statistics are exact, and a missing input is an error that names it."""

from __future__ import annotations

import json
import math

import pandas as pd
import pytest

from edco import io, layout
from edco.config import section_defaults
from edco.errors import UserFacingError
from edco.report import load, save_figure, write_plots
from edco.report.plots import plot_accuracy, plot_entropy, plot_levels
from edco.report.registry import plot_names
from edco.report.verdict import write_verdict

PARADIGM_SECTIONS = {"sft": section_defaults("sft"), "rl": section_defaults("rl")}  # as a loaded config has them

POOL = [f"p{i}" for i in range(8)]
QUESTIONS = [f"q{i}" for i in range(6)]
SEEDS = (0, 1)
ROUNDS = 2
# Each round's selection (N = 3), per strategy: the new-sample counts are 3, 2 (random) and 3, 1 (edco).
SELECTIONS = {"random": [["p0", "p1", "p2"], ["p2", "p3", "p4"]], "edco": [["p5", "p6", "p7"], ["p7", "p6", "p0"]]}


def config(strategies=("random", "edco"), estimator_bench=True) -> dict:
    return {"run": "r", "seeds": list(SEEDS), "curriculum": {"rounds": ROUNDS, "n": 3}, **PARADIGM_SECTIONS,
            "models": {"m": {"source": "hub"}},  # hub: one shared base model
            "grid": {"domains": ["law"], "models": ["m"], "paradigms": ["sft", "rl"], "strategies": list(strategies)},
            "estimator": {"aggregate": "top_frac"}, "estimator_bench": {"enabled": estimator_bench}}


def write_eval(path, n_correct: int, levels: bool = True):
    questions = [{"id": q, "difficulty": 1 + i % 2, "generate": {"pred": "A", "correct": i < n_correct}}
                 for i, q in enumerate(QUESTIONS)]
    per_level = {"1": sum(q["generate"]["correct"] for q in questions[::2]) / 3,
                 "2": sum(q["generate"]["correct"] for q in questions[1::2]) / 3} if levels else {}
    io.write_json(path, {"summary": {"generate": {"accuracy": n_correct / len(QUESTIONS), "n": len(QUESTIONS),
                                                  "per_level": per_level}}, "questions": questions})


def write_run(cfg: dict, paradigm: str, strategy: str, seed: int):
    run_path = layout.run_dir("r", "law", "m", paradigm, strategy, seed)
    for r in range(1, ROUNDS + 1):
        rd = layout.round_dir(run_path, r)
        rd.mkdir(parents=True)
        ids = SELECTIONS[strategy][r - 1]
        scores = {p: float(i) / (r + seed) for i, p in enumerate(POOL)} if strategy == "edco" else {}
        pd.DataFrame({"id": list(scores), "score": list(scores.values())}).to_parquet(rd / "scores.parquet")
        io.write_jsonl(rd / "selection.jsonl", [{"position": i, "id": x, "score": scores.get(x)} for i, x in enumerate(ids)])
        metric = "reward" if paradigm == "rl" else "entropy"
        # GRPO's zero-variance share: edco 0.5 throughout, random 0.25 (seed 0) and 0.30 (seed 1)
        zero = {"frac_reward_zero_std": 0.5 if strategy == "edco" else 0.25 + 0.05 * seed} if paradigm == "rl" else {}
        io.write_jsonl(rd / "metrics.jsonl", [{"loss": 2.0 / (s + r), "grad_norm": 1.0 + seed, metric: 0.1 * s,
                                               **zero, "step": s} for s in range(1, 4)])
        io.write_json(rd / "timing.json", {"scoring_seconds": 2.0 if strategy == "edco" else 0.0,
                                           "selecting_seconds": 0.1, "training_seconds": 5.0 + seed,
                                           "tokens_generated": 80 if strategy == "edco" else 0,
                                           "optimizer_steps": 3, "sample_visits": 9, "rollout_tokens_generated": 0})


@pytest.fixture
def results(tmp_path, monkeypatch):
    """results/r/ of a finished grid: evals (with levels), rounds, estimator table."""
    monkeypatch.chdir(tmp_path)
    cfg = config()
    write_eval(layout.eval_file("r", "law", "m"), 2)
    for paradigm in cfg["grid"]["paradigms"]:
        for strategy in cfg["grid"]["strategies"]:
            for seed in SEEDS:
                write_eval(layout.eval_file("r", "law", "m", paradigm, strategy, seed), 3 + seed + (strategy == "edco"))
                write_run(cfg, paradigm, strategy, seed)
    rows = [{"domain": "law", "model": label, "table": "estimators", "estimator": "prefix", "k": k,
             "aggregate": "top_frac", "speedup_vs_full": 8 / k, "spearman_vs_full": 0.5 + k / 20,
             "kendall_vs_full": 0.4 + k / 20, "topn_overlap": 0.6} for label in ("m", "m sft/random/seed0/final")
            for k in (2, 4, 8)]
    io.write_text(layout.tables_dir("r") / "estimator.csv", pd.DataFrame(rows).to_csv(index=False))
    write_verdict(cfg)  # tables/verdict.csv, which the verdict plot draws
    return cfg


def assert_png(path, min_bytes: int = 5000):
    assert path.suffix == ".png" and path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and path.stat().st_size > min_bytes


def test_plot_names_follow_the_config():
    assert plot_names(config()) == ["accuracy", "accuracy_vs_time", "cost", "new_samples", "entropy", "estimator_k",
                                    "training_sft", "training_rl", "accuracy_per_level", "verdict"]
    alone = plot_names(config(strategies=("random",), estimator_bench=False))
    assert "estimator_k" not in alone and "verdict" not in alone  # no benchmark; nothing to beat random


@pytest.mark.parametrize("name", plot_names(config()))
def test_every_plot_writes_a_png(results, name):
    paths = write_plots(results, only=[name])
    assert paths == [layout.plots_dir("r") / f"{name}.png"]
    assert_png(paths[0])


def test_a_pdf_on_request(results):
    png, pdf = write_plots(results, only=["accuracy"], formats=("png", "pdf"))
    assert_png(png)
    assert pdf.suffix == ".pdf" and pdf.read_bytes()[:5] == b"%PDF-" and pdf.stat().st_size > 1000


def test_pngs_are_palette_images(results):
    """The reference results stay small: 256 colours, no dithering (flat colours stay flat)."""
    from PIL import Image

    image = Image.open(write_plots(results, only=["accuracy"])[0])
    assert image.mode == "P" and len(image.getcolors()) <= 256


def test_the_scores_plot_shows_the_strategies_that_wrote_scores(results):
    """Which strategies score the pool comes from the data: edco's score files hold scores,
    random's are empty; with random alone the figure says that nothing scored."""
    stats = load.selections(results)
    fig = plot_entropy(stats)
    labels = [t.get_text() for t in fig.legends[0].get_texts()]
    assert "edco" in labels and "random" not in labels
    alone = plot_entropy(stats[stats["strategy"] == "random"])
    assert "No strategy of this grid scored the pool" in alone.axes[0].texts[0].get_text()


def test_selection_stats_count_new_samples_and_average_scores(results):
    stats = load.selections(results)
    sft0 = stats[(stats["paradigm"] == "sft") & (stats["seed"] == 0)].set_index(["strategy", "round"])
    assert sft0.loc[("random", 1), "new"] == 3 and sft0.loc[("random", 2), "new"] == 2
    assert sft0.loc[("edco", 1), "new"] == 3 and sft0.loc[("edco", 2), "new"] == 1
    assert sft0.loc[("edco", 2), "covered"] == 4
    # edco seed 0, round 2: scores i / 2 for p0..p7 -> pool mean 1.75; selection p7, p6, p0 -> (3.5 + 3 + 0) / 3
    assert sft0.loc[("edco", 2), "pool_mean"] == pytest.approx(1.75)
    assert sft0.loc[("edco", 2), "selection_mean"] == pytest.approx(6.5 / 3)
    assert pd.isna(sft0.loc[("random", 1), "pool_mean"])  # random writes empty score files


def test_steps_are_counted_across_rounds(results):
    steps = load.steps(results, "rl")
    run = steps[(steps["strategy"] == "edco") & (steps["seed"] == 1)]
    assert run["step"].tolist() == [1, 2, 3, 4, 5, 6] and run["round"].tolist() == [1, 1, 1, 2, 2, 2]
    assert set(steps["paradigm"]) == {"rl"} and "reward" in steps


def test_rollouts_table_pools_the_zero_variance_share_against_random(results):
    """Issue 30's mechanism: per run the mean share over its steps; pooled, per seed edco - random."""
    from edco.report.rollouts import rollout_frame, write_rollouts

    frame = rollout_frame(load.steps(results, "rl"))
    pooled = frame[(frame["domain"] == "all cells") & (frame["metric"] == "frac_reward_zero_std")].set_index("strategy")
    assert pooled.loc["edco", "value"] == pytest.approx(0.5) and pooled.loc["random", "value"] == pytest.approx(0.275)
    assert pooled.loc["edco", "diff"] == pytest.approx((0.25 + 0.20) / 2) and pooled.loc["edco", "seeds"] == 2
    assert pooled.loc["edco", "low"] < 0.225 < pooled.loc["edco", "high"] and math.isnan(pooled.loc["random", "diff"])
    cell = frame[(frame["domain"] == "law") & (frame["metric"] == "reward")].set_index("strategy")
    assert cell.loc["edco", "mean"] == pytest.approx(0.2) and cell.loc["edco", "seeds"] == 2  # steps 0.1, 0.2, 0.3
    md = write_rollouts(results)[1].read_text()
    assert "## Pooled over all cells, against random" in md and "| edco | zero-variance groups | 0.500 | +0.225 [" in md


def test_missing_inputs_are_named(results):
    (layout.run_dir("r", "law", "m", "rl", "edco", 1) / "round2" / "metrics.jsonl").unlink()
    with pytest.raises(UserFacingError, match="missing .*rl/edco/seed1/round2/metrics.jsonl"):
        write_plots(results, only=["training_rl"])
    (layout.run_dir("r", "law", "m", "sft", "random", 0) / "round1" / "timing.json").unlink()
    with pytest.raises(UserFacingError, match="missing round timing .*sft/random/seed0/round1/timing.json"):
        write_plots(results, only=["cost"])
    (layout.tables_dir("r") / "estimator.csv").unlink()
    with pytest.raises(UserFacingError, match="missing .*estimator.csv"):
        write_plots(results, only=["estimator_k"])
    with pytest.raises(UserFacingError, match="no plot"):
        write_plots(results, only=["no_such_plot"])


def test_an_empty_frame_is_an_error_not_an_empty_figure():
    with pytest.raises(UserFacingError, match="plot accuracy: nothing to plot"):
        plot_accuracy(pd.DataFrame(columns=["domain", "model", "paradigm", "strategy", "seed", "mode", "accuracy"]))


def test_data_without_levels_gets_a_figure_that_says_so(tmp_path):
    empty = pd.DataFrame(columns=["domain", "model", "paradigm", "strategy", "seed", "mode", "level", "accuracy"])
    fig = plot_levels(empty)
    assert "no difficulty levels" in fig.axes[0].texts[0].get_text()
    assert_png(save_figure(fig, tmp_path / "levels")[0], min_bytes=1000)


def test_a_strategy_keeps_its_colour_in_every_plot_and_subset():
    from edco.config import BEYOND_PAPER_STRATEGIES
    from edco.report.figures import STRATEGY_ORDER, strategy_colours, strategy_markers

    ten = [*STRATEGY_ORDER, *BEYOND_PAPER_STRATEGIES]
    full = strategy_colours(ten)
    assert len(set(full.values())) == 10  # ten distinct colours
    assert strategy_colours(["edco_partial", "random"]) == {"edco_partial": full["edco_partial"], "random": full["random"]}
    extra = strategy_colours(["random", "my_baseline"])
    assert extra["random"] == full["random"] and extra["my_baseline"] not in full.values()
    markers = strategy_markers(ten)
    assert len(set(markers.values())) == 10 and strategy_markers(["edco"]) == {"edco": markers["edco"]}
