"""Main table from hand-made evaluations: statistics per cell, paired test vs random, and a
missing seed is an error (never a silent average over fewer seeds)."""

from __future__ import annotations

import math
import subprocess
import sys
from pathlib import Path

import pytest

from edco import io, layout
from edco.config import section_defaults
from edco.errors import UserFacingError
from edco.report import load, write_main_table
from edco.report import plots, registry
from edco.report.main import main_rows

REPO = Path(__file__).resolve().parents[1]


def collect(cfg: dict) -> list[dict]:
    evals = load.evaluations(cfg)
    return main_rows(load.accuracies(evals), load.questions(evals))

PARADIGM_SECTIONS = {"sft": section_defaults("sft"), "rl": section_defaults("rl")}  # as a loaded config has them

QUESTIONS = [f"q{i}" for i in range(40)]


def config(strategies=("random", "edco"), seeds=(0, 1, 2)) -> dict:
    return {"run": "r", "seeds": list(seeds),
            "models": {"m": {"source": "hub"}},  # hub: one shared base model
            "grid": {"domains": ["law"], "models": ["m"], "paradigms": ["sft"], "strategies": list(strategies)}}


def write_eval(path, correct: set[str], unparsed: int = 0):
    """``unparsed``: how many of the wrong answers chose no option ("[invalid]")."""
    wrong = [q for q in QUESTIONS if q not in correct]
    invalid = set(wrong[:unparsed])
    questions = [{"id": q, "difficulty": 1, "generate": {"pred": "[invalid]" if q in invalid else "A",
                                                         "correct": q in correct}} for q in QUESTIONS]
    acc = len(correct) / len(QUESTIONS)
    io.write_json(path, {"summary": {"generate": {"accuracy": acc, "n": len(QUESTIONS)}}, "questions": questions})


@pytest.fixture
def evals(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    write_eval(layout.eval_file("r", "law", "m"), set(QUESTIONS[:10]))
    for seed in (0, 1, 2):
        write_eval(layout.eval_file("r", "law", "m", "sft", "random", seed), set(QUESTIONS[:20]))
        write_eval(layout.eval_file("r", "law", "m", "sft", "edco", seed), set(QUESTIONS[: 28 + seed]))


def test_cells_carry_mean_interval_and_paired_test(evals):
    rows = {(r["strategy"]): r for r in collect(config())}
    assert rows["base"]["mean"] == 0.25 and rows["base"]["n_seeds"] == 1
    assert rows["random"]["mean"] == 0.5 and rows["random"]["sd"] == 0.0
    edco = rows["edco"]
    assert edco["mean"] == pytest.approx((28 + 29 + 30) / 3 / 40)
    assert edco["ci_low"] < edco["mean"] < edco["ci_high"]
    assert edco["diff_vs_random"] == pytest.approx(edco["mean"] - 0.5)
    assert edco["p_vs_random"] < 0.01
    assert math.isnan(rows["random"]["p_vs_random"])  # nothing to test random against


def test_tables_are_written(evals):
    csv, md, *_ = write_main_table(config())
    assert "p_vs_random" in csv.read_text()
    text = md.read_text()
    assert "| law | m | sft | 0.250 | 0.500 ± 0.000 (seeds identical) | " in text  # random's seeds agree here
    assert "0.725 ± 0.025 [0." in text  # edco's seeds differ: an interval
    assert "p=" in text


def test_each_cell_reports_its_share_of_unparseable_answers(evals):
    write_eval(layout.eval_file("r", "law", "m"), set(QUESTIONS[:10]), unparsed=30)  # every wrong answer
    for seed, n in enumerate((4, 8, 0)):
        write_eval(layout.eval_file("r", "law", "m", "sft", "edco", seed), set(QUESTIONS[:28 + seed]), unparsed=n)
    rows = {r["strategy"]: r for r in collect(config())}
    assert rows["base"]["unparsed"] == 0.75 and rows["random"]["unparsed"] == 0.0
    assert rows["edco"]["unparsed"] == pytest.approx((4 + 8 + 0) / 3 / 40)  # the mean over seeds
    csv, md, *_ = write_main_table(config())
    assert "unparsed" in csv.read_text().splitlines()[0]
    text = md.read_text()
    section = text[text.index("## Unparseable answers and the most frequent answer, generate"):]
    assert "| law | m | sft | 75% (A 25%) | 0% (A 100%) | 10% (A 90%) |" in section  # every chosen answer is A


def test_the_most_frequent_answer_is_counted_per_seed_over_all_answers(evals):
    for seed, letters in enumerate(("BBBA", "BBAA", "BBBB")):
        path = layout.eval_file("r", "law", "m", "sft", "edco", seed)
        report = io.read_json(path)
        for q, letter in zip(report["questions"], letters * 10):
            q["generate"]["pred"] = letter
        report["questions"][0]["generate"]["pred"] = "[invalid]"
        io.write_json(path, report)
    rows = {r["strategy"]: r for r in collect(config())}
    assert rows["edco"]["top_answer"] == "B"
    assert rows["edco"]["top_answer_share"] == pytest.approx((29 / 40 + 19 / 40 + 39 / 40) / 3)


def test_a_missing_seed_is_an_error(evals):
    with pytest.raises(UserFacingError, match="missing evaluation .*/seed3.json"):
        collect(config(seeds=(0, 1, 2, 3)))


# --------------------------------------------------------------------------- cost table
def timing_config(strategies=("random", "edco"), seeds=(0, 1), rounds=2) -> dict:
    return {**config(strategies, seeds), "curriculum": {"rounds": rounds, "n": 4}, **PARADIGM_SECTIONS}


def write_timing(strategy: str, seed: int, round_: int, steps: int = 4, visits: int = 16, **extra):
    timing = {"scoring_seconds": 3.0 if strategy == "edco" else 0.0, "selecting_seconds": 0.5,
              "training_seconds": 10.0 + seed, "tokens_generated": 100 if strategy == "edco" else 0,
              "optimizer_steps": steps, "sample_visits": visits, "rollout_tokens_generated": 0, **extra}
    io.write_json(layout.round_dir(layout.run_dir("r", "law", "m", "sft", strategy, seed), round_) / "timing.json", timing)


@pytest.fixture
def timings(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    for strategy in ("random", "edco"):
        for seed in (0, 1):
            for r in (1, 2):
                write_timing(strategy, seed, r)


def test_cost_table_sums_rounds_and_averages_seeds(timings):
    from edco.report.cost import cost_frame

    cost = cost_frame(load.timing(timing_config())).set_index("strategy")
    edco, random_ = cost.loc["edco"], cost.loc["random"]
    assert edco["scoring_seconds"] == 6.0 and random_["scoring_seconds"] == 0.0  # 2 rounds x 3 s
    assert edco["training_seconds"] == 21.0  # seeds: 2 x 10 s and 2 x 11 s
    assert edco["total_seconds"] == 6.0 + 1.0 + 21.0
    assert edco["scoring_overhead"] == pytest.approx(6.0 / 21.0)
    assert edco["scoring_tokens"] == 200 and edco["n_seeds"] == 2
    assert edco["optimizer_steps"] == 8 and edco["sample_visits"] == 32
    assert cost["budget_matched"].all()


def test_cost_table_flags_a_budget_mismatch(timings):
    from edco.report.cost import write_cost_table

    write_timing("edco", 1, 2, steps=3, visits=12)  # one round of one seed did less
    csv, md, tex, html = write_cost_table(timing_config())
    text = md.read_text()
    assert "BUDGET MISMATCH in 1 cell(s)" in text and "law/m/sft/edco: 7 steps, 28 visits / 8 steps, 32 visits" in text
    assert "| law | m | sft | random |" in text and "| matched |" in text
    assert "MISMATCH" in html.read_text() and "MISMATCH" in tex.read_text()
    assert "False" in csv.read_text()  # budget_matched column


def test_matched_budgets_are_stated(timings):
    from edco.report.cost import write_cost_table

    md = write_cost_table(timing_config())[1].read_text()
    assert "Budget check: every strategy" in md and "MISMATCH" not in md
    assert "| law | m | sft | edco | 6.00 | 1.00 | 21.00 | 28.00 ± 1.41 | 0.286 | 200 | 8 / 32 | matched |" in md


def test_missing_round_timing_is_named(timings):
    with pytest.raises(UserFacingError, match="missing round timing .*sft/random/seed0/round3/timing.json"):
        load.timing(timing_config(rounds=3))


# --------------------------------------------------------------------------- per-level table
def test_levels_table_averages_seeds_per_level(evals, tmp_path):
    for seed in (0, 1, 2):  # add per_level summaries to the edco runs: level 1 = 1.0, level 2 = 0.1 * seed
        path = layout.eval_file("r", "law", "m", "sft", "edco", seed)
        report = io.read_json(path)
        report["summary"]["generate"]["per_level"] = {"1": 1.0, "2": 0.1 * seed}
        io.write_json(path, report)
    from edco.report.levels import level_frame, write_levels_table

    levels = load.level_accuracies(load.evaluations(config()))
    frame = level_frame(levels).set_index(["strategy", "level"])
    assert frame.loc[("edco", 1), "mean"] == 1.0 and frame.loc[("edco", 1), "n_seeds"] == 3
    assert frame.loc[("edco", 2), "mean"] == pytest.approx(0.1) and frame.loc[("edco", 2), "sd"] == pytest.approx(0.1)
    assert ("random", 1) not in frame.index  # its evaluations carry no levels
    md = write_levels_table(config(), levels)[1].read_text()
    assert "| law | m | sft | edco | 1.000 ± 0.000 | 0.100 ± 0.100 |" in md


def test_levels_table_says_when_the_data_has_none(evals):
    from edco.report.levels import write_levels_table

    evals_ = load.evaluations(config())
    paths = write_levels_table(config(), load.level_accuracies(evals_), load.accuracies(evals_))
    assert "no difficulty levels" in paths[1].read_text()  # with the gains known, too (real data has no levels)
    assert all(p.exists() for p in paths)


def test_main_table_in_latex_and_html(evals):
    paths = write_main_table(config())
    tex = next(p for p in paths if p.name == "main.tex").read_text()
    assert "\\begin{tabular}" in tex and "0.500 $\\pm$ 0.000" in tex and "$^{*}$" in tex  # edco: p < 0.05
    html = next(p for p in paths if p.name == "main.html").read_text()
    assert "<table" in html and "0.500 ± 0.000" in html


def test_config_page_shows_the_validated_config(tmp_path, monkeypatch):
    from edco.report.config_page import write_config_page

    monkeypatch.chdir(tmp_path)
    (tmp_path / "c.yaml").write_text("run: r\nnote: <b>&\n")
    page = write_config_page({"run": "r"}, tmp_path / "c.yaml").read_text()
    assert page.count("<pre>") == 1 and "note: &lt;b&gt;&amp;" in page


def test_reporting_imports_no_model_library_nor_the_curriculum():
    """edco.report reads result files only: importing it (and running its commands) never
    pays for torch, transformers, TRL or lm-eval, and never reaches the strategy registry."""
    code = ("import sys, edco.report, edco.report.tables, edco.report.plots; "
            "print(sorted(m for m in sys.modules if m.split('.')[0] in "
            "{'torch', 'transformers', 'trl', 'lm_eval', 'baselines'} or m == 'edco.curriculum'))")
    result = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "[]"


def test_the_registry_imports_no_pandas():
    """The workflow's controller (no pandas) reads the registry to list every table and plot."""
    code = ("import sys, edco.report.registry as r; r.table_names; "
            "print(sorted(m for m in sys.modules if m.split('.')[0] in {'pandas', 'matplotlib', 'numpy'}))")
    result = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "[]"


def test_levels_table_gives_each_run_its_gain_over_the_base_it_started_from(evals):
    """Per-seed base models (pretrain.per_seed): a run's gain is over its own seed's base model;
    the pooled section averages the cells' gains."""
    from edco.report.levels import gain_frame, write_levels_table

    cfg = {**config(), "models": {"m": {"source": "tiny", "pretrain": {"per_seed": True, "seed": 0}}}}
    for seed, n_base in zip((0, 1, 2), (10, 12, 14)):  # base models 0.25 / 0.30 / 0.35
        write_eval(layout.eval_file("r", "law", "m", base=f"seed{seed}"), set(QUESTIONS[:n_base]))
    for path in Path("results").rglob("*.json"):  # every question is level 1 (fixture): level 1 = all
        report = io.read_json(path)
        report["summary"]["generate"]["per_level"] = {"1": report["summary"]["generate"]["accuracy"]}
        io.write_json(path, report)
    evals_ = load.evaluations(cfg)
    gains = gain_frame(load.accuracies(evals_)).set_index("strategy")
    assert gains.loc["base", "mean"] == pytest.approx(0.30) and math.isnan(gains.loc["base", "gain"])
    assert gains.loc["random", "gain"] == pytest.approx(0.5 - 0.30)  # every random run 0.50
    assert gains.loc["edco", "gain"] == pytest.approx(((28 - 10) + (29 - 12) + (30 - 14)) / 3 / 40)
    md = write_levels_table(cfg, load.level_accuracies(evals_), load.accuracies(evals_))[1].read_text()
    assert "| law | m | sft | random | 0.500 ± 0.000 | 0.500 ± 0.000 | +0.200 |" in md
    assert "## Gain over the base model, pooled over cells, generate" in md
    assert "| sft | random | 1 | +0.200 | +0.200 | +0.200 |" in md


def test_every_table_and_plot_of_the_registry_has_its_writer_and_caption():
    """A registry line names a function that exists and a caption the HTML report can show."""
    for name, table in registry.TABLES.items():
        assert callable(registry.writer(table)), name
        assert (REPO / "report" / f"{name}.rst").is_file(), f"report/{name}.rst: the {name} table's caption"
    for name, plot in registry.PLOTS.items():
        assert callable(getattr(plots, plot.function, None)), f"{name}: no edco.report.plots.{plot.function}"
        assert (REPO / "report" / f"{plot.caption}.rst").is_file(), f"report/{plot.caption}.rst: the {name} plot's caption"
    assert registry.PLOTS["training_{paradigm}"].paradigm_of("training_rl") == "rl"
    with pytest.raises(UserFacingError, match="no table 'nope'; the tables: main, levels"):
        registry.table("nope")
