"""The main table: accuracy per domain x model x paradigm x strategy (+ the base model), mean
over seeds, 95 % t-interval, and the test against ``random`` on the same questions and seeds.
The per-question answers it is computed from are tables/questions.parquet
(edco.report.tables.write_questions); the per-level table is edco.report.levels.
"""

from __future__ import annotations

import math
import statistics
from pathlib import Path

import pandas as pd

import edco.report.load as load
from edco.prompts import INVALID
from edco.report.render import Section, fmt, is_missing, mean_sd, prose, write_table
from edco.report.stats import ALPHA, cell_matrices, mean_ci, versus

LEGEND = prose("""
Cells: mean ± sd over seeds [95 % t-interval]; Δ = accuracy minus `random` on the same
questions and seeds, p = two-sided test that treats the seeds and the questions as samples
(edco.report.stats.seeds_questions_test: a seed-and-question bootstrap's variance in closed
form, t tails); in LaTeX a star marks p < 0.05. "(seeds identical)": every seed gave the same
accuracy — a strategy with nothing random in it (e.g. a static order) trains the same model
whatever the seed, so no interval over seeds is shown.
""")
UNPARSED_LEGEND = prose("""
Share of test answers from which no option could be read (edco.prompts.parse_answer found no
choice: the answer is "[invalid]" and counts as wrong), mean over seeds, per cell of the table
above. A high share means the accuracy measures the answer format as much as the knowledge.
Log-likelihood scoring always picks an option, so it has no such share. In brackets: the most
frequent option and its share of all answers (mean over seeds); near 100 % the model gives one
answer to every question, and its accuracy is that option's share among the right ones.
""")
#: What an evaluation records when no option could be read from a generated answer.
UNPARSED_PREDS = {INVALID, "None"}  # load.questions stores pred as text: None becomes "None"


def unparsed_shares(questions: pd.DataFrame) -> dict[tuple, float]:
    """(domain, model, paradigm, strategy, mode) -> share of unparseable answers, the mean over
    the cell's seeds of each evaluation's share."""
    if questions.empty:
        return {}
    frame = questions.assign(unparsed=questions["pred"].isin(UNPARSED_PREDS))
    per_eval = frame.groupby([*load.CELL_KEYS, "mode", "seed"], sort=False, dropna=False)["unparsed"].mean()
    return per_eval.groupby(level=[*load.CELL_KEYS, "mode"], sort=False).mean().to_dict()


def top_answers(questions: pd.DataFrame) -> dict[tuple, tuple[str, float]]:
    """(domain, model, paradigm, strategy, mode) -> (the option chosen most often over the cell's
    seeds, the mean over seeds of its share of all answers, unparseable ones included): a model
    that answers one letter to everything shows it here, not in its accuracy."""
    if questions.empty:
        return {}
    keys = [*load.CELL_KEYS, "mode"]
    tops = {}
    for key, cell in questions.groupby(keys, sort=False, dropna=False):
        chosen = cell["pred"][~cell["pred"].isin(UNPARSED_PREDS)]
        if chosen.empty:
            continue
        top = chosen.value_counts().index[0]
        share = (cell["pred"] == top).groupby(cell["seed"], dropna=False).mean().mean()
        tops[key] = (str(top), float(share))
    return tops


def main_rows(accuracies: pd.DataFrame, questions: pd.DataFrame, reference: str = "random") -> list[dict]:
    """One row per (domain, model, paradigm, strategy, mode): mean, sd, 95 % t-interval over
    seeds, the share of unparseable answers (``unparsed``), and for every strategy but
    ``reference`` the test against it (``diff_vs_random``, ``diff_low``, ``diff_high``,
    ``p_vs_random``). The base model is strategy ``base``."""
    matrices = cell_matrices(questions)
    unparsed = unparsed_shares(questions)
    tops = top_answers(questions)
    rows = []
    for (domain, model, paradigm, strategy, mode), group in accuracies.groupby([*load.CELL_KEYS, "mode"], sort=False):
        values = group["accuracy"].tolist()
        mean, low, high = mean_ci(values)
        row = {"domain": domain, "model": model, "paradigm": paradigm, "strategy": strategy, "mode": mode,
               "mean": mean, "sd": statistics.stdev(values) if len(values) > 1 else 0.0, "ci_low": low,
               "ci_high": high, "n_seeds": len(values),
               "unparsed": unparsed.get((domain, model, paradigm, strategy, mode), float("nan"))}
        row["top_answer"], row["top_answer_share"] = tops.get((domain, model, paradigm, strategy, mode), ("", float("nan")))
        # NaN unless tested, so a grid of the reference alone still has the columns
        row.update(diff_vs_random=math.nan, diff_low=math.nan, diff_high=math.nan, p_vs_random=math.nan)
        other = (domain, model, paradigm, reference, mode)
        if strategy not in (reference, "base") and other in matrices:
            test = versus(matrices[(domain, model, paradigm, strategy, mode)], matrices[other])
            row.update(diff_vs_random=test["diff"], diff_low=test["low"], diff_high=test["high"], p_vs_random=test["p"])
        rows.append(row)
    return rows


def cell_text(row: dict, sep: str = " ") -> str:
    """'mean ± sd [low, high] Δ+0.1 p=0.01', parts joined by ``sep``."""
    text = mean_sd(row["mean"], row["sd"])
    if row["n_seeds"] > 1 and row["sd"] == 0:
        # A strategy with nothing random in it (static orders, no sampling) trains the same
        # model whatever the seed on CPU: a zero-width interval would claim a certainty that
        # the seeds never tested. Only the test against random speaks for such a cell.
        text += f"{sep}(seeds identical)"
    elif row["n_seeds"] > 1:
        text += f"{sep}[{fmt(row['ci_low'], '.2f')}, {fmt(row['ci_high'], '.2f')}]"
    if not is_missing(row.get("p_vs_random")):
        text += f"{sep}Δ{fmt(row['diff_vs_random'], '+.3f')} p={fmt(row['p_vs_random'], '.3g')}"
    return text


def latex_cell(row: dict) -> str:
    """'mean ± sd', starred when p < 0.05 against random (the renderer makes * a superscript)."""
    p = row.get("p_vs_random")
    return mean_sd(row["mean"], row["sd"]) + ("*" if not is_missing(p) and p < ALPHA else "")


def unparsed_text(row: dict) -> str:
    """'6% (A 94%)': unparseable share, then the most frequent answer and its share."""
    text = fmt(row["unparsed"], ".0%")
    if row.get("top_answer"):  # main_rows sets its share with it
        text += f" ({row['top_answer']} {fmt(row['top_answer_share'], '.0%')})"
    return text


def main_frame(rows: list[dict], mode: str, cell=cell_text, base=lambda row: fmt(row["mean"], ".3f")) -> pd.DataFrame:
    """The table of one mode as text cells: rows domain x model x paradigm, columns base +
    strategies; ``cell`` turns a row into its text, ``base`` the base model's."""
    strategies = list(dict.fromkeys(r["strategy"] for r in rows if r["strategy"] != "base"))
    cells = {(r["domain"], r["model"], r["paradigm"], r["strategy"]): r for r in rows if r["mode"] == mode}
    keys = dict.fromkeys(k[:3] for k in cells if k[3] != "base")
    out = []
    for domain, model, paradigm in keys:
        row = {"domain": domain, "model": model, "paradigm": paradigm,
               "base": base(cells[(domain, model, *load.BASE)])}
        for strategy in strategies:
            c = cells.get((domain, model, paradigm, strategy))
            row[strategy] = "—" if c is None else cell(c)
        out.append(row)
    return pd.DataFrame(out)


def write_main_table(config: dict) -> list[Path]:
    """tables/main.*."""
    evals = load.evaluations(config)
    questions = load.questions(evals)
    accuracies = load.accuracies(evals)
    rows = main_rows(accuracies, questions)
    modes = list(dict.fromkeys(r["mode"] for r in rows))
    sections = []
    for mode in modes:
        sections.append(Section(f"Accuracy on the test split, {mode}", main_frame(rows, mode), LEGEND,
                                latex=main_frame(rows, mode, latex_cell),
                                html=main_frame(rows, mode, lambda r: cell_text(r, "\n"))))
        if mode == "generate":  # the only mode that reads an answer out of free text
            shares = main_frame(rows, mode, unparsed_text, unparsed_text)
            sections.append(Section(f"Unparseable answers and the most frequent answer, {mode}", shares, UNPARSED_LEGEND))
    return write_table(config["run"], "main", f"Main table — run `{config['run']}`", pd.DataFrame(rows), sections)
