"""Tables from evaluations and runs, each as CSV, Markdown, LaTeX and HTML (for the report):

- main:      accuracy per domain x model x paradigm x strategy (+ the base model), mean over
             seeds, 95 % t-interval, paired bootstrap against ``random``;
- levels:    the same accuracy per difficulty level of the test questions (where the data has levels);
- cost:      scoring / selecting / training wall-clock per cell, tokens generated, optimiser
             steps and sample visits with a budget check (every strategy of a paradigm must match);
- estimator: prefix length K vs speed-up and rank agreement (benchmarks/estimator_bench.py).

    python -m edco table --config config/smoke.yaml              # main + levels
    python -m edco table --config config/smoke.yaml --cost       # cost
    python -m edco table --config config/smoke.yaml --estimator  # estimator
    python -m edco table --config config/smoke.yaml --compute    # compute-matched (edco/compute.py)
    python -m edco table --config config/smoke.yaml --verdict    # beats random? pooled (edco/verdict.py)

Reads results/<run>/eval/**.json and runs/**/round<r>/timing.json; a cell whose seed (or
round) is missing is an error, never a silent average over fewer seeds.
"""

from __future__ import annotations

import argparse
import logging
import statistics
from pathlib import Path

from edco import io, layout
from edco.config import load_config, round_budget
from edco.errors import UserFacingError

log = logging.getLogger("edco.report")


def _read_eval(path: Path) -> dict:
    if not path.exists():
        raise UserFacingError(f"missing evaluation {path}: run the workflow to produce it (no cell is averaged over fewer seeds)")
    return io.read_json(path)


def _correct_matrix(evals: list[dict], mode: str, ids: list[str]):
    """(seeds x questions) 0/1 array, questions in ``ids`` order."""
    import numpy as np

    rows = []
    for report in evals:
        by_id = {q["id"]: q[mode]["correct"] for q in report["questions"] if mode in q}
        rows.append([float(by_id[i]) for i in ids])
    return np.array(rows)


def collect(config: dict) -> list[dict]:
    """One row per (domain, model, paradigm, strategy, mode): mean, sd, 95 % t-interval over
    seeds, and a paired bootstrap against ``random`` (same questions, same seeds).
    Strategy ``base`` is the untuned model (paradigm ``-``, one evaluation)."""
    run, grid = config["run"], config["grid"]
    rows = []
    for domain in grid["domains"]:
        for model in grid["models"]:
            base = _read_eval(layout.eval_file(run, domain, model))
            for mode, summary in base["summary"].items():
                rows.append(_row(domain, model, "-", "base", mode, [summary["accuracy"]]))
            for paradigm in grid["paradigms"]:
                evals = {s: cell_evaluations(config, domain, model, paradigm, s) for s in grid["strategies"]}
                for strategy, runs in evals.items():
                    for mode in runs[0]["summary"]:
                        row = _row(domain, model, paradigm, strategy, mode, [e["summary"][mode]["accuracy"] for e in runs])
                        if strategy != "random" and "random" in evals:
                            row.update(_versus_random(runs, evals["random"], mode))
                        rows.append(row)
    return rows


def _versus_random(runs: list[dict], random_runs: list[dict], mode: str) -> dict:
    test = versus(runs, random_runs, mode)
    return {"diff_vs_random": test["diff"], "diff_low": test["low"], "diff_high": test["high"], "p_vs_random": test["p"]}


def versus(runs: list[dict], reference_runs: list[dict], mode: str) -> dict:
    """Paired bootstrap of one cell's evaluations against another's (same questions, seeds in
    the same order): ``diff``, ``low``, ``high``, ``p`` (edco.stats.paired_bootstrap)."""
    from edco.stats import paired_bootstrap

    ids = sorted(q["id"] for q in runs[0]["questions"] if mode in q)
    return paired_bootstrap(_correct_matrix(runs, mode, ids), _correct_matrix(reference_runs, mode, ids))


def cell_evaluations(config: dict, domain: str, model: str, paradigm: str, strategy: str) -> list[dict]:
    """Every seed's evaluation of one cell, in ``config['seeds']`` order."""
    return [_read_eval(layout.eval_file(config["run"], domain, model, paradigm, strategy, seed))
            for seed in config["seeds"]]


def _row(domain, model, paradigm, strategy, mode, accuracies: list[float]) -> dict:
    from edco.stats import mean_ci

    mean, low, high = mean_ci(accuracies)
    return {
        "domain": domain, "model": model, "paradigm": paradigm, "strategy": strategy, "mode": mode,
        "mean": mean, "sd": statistics.stdev(accuracies) if len(accuracies) > 1 else 0.0,
        "ci_low": low, "ci_high": high, "n_seeds": len(accuracies),
    }


def _cell_text(c: dict, sep: str = " ") -> str:
    text = f"{c['mean']:.3f} ± {c['sd']:.3f}"
    if c["n_seeds"] > 1 and c["sd"] == 0:
        # A strategy with nothing random in it (static orders, no sampling) trains the same
        # model whatever the seed on CPU: a zero-width interval would claim a certainty that
        # the seeds never tested. Only the bootstrap over questions speaks for such a cell.
        text += f"{sep}(seeds identical)"
    elif c["n_seeds"] > 1:
        text += f"{sep}[{c['ci_low']:.2f}, {c['ci_high']:.2f}]"
    if c.get("p_vs_random") is not None and c.get("p_vs_random") == c.get("p_vs_random"):
        text += f"{sep}Δ{c['diff_vs_random']:+.3f} p={c['p_vs_random']:.3g}"
    return text


def markdown_table(rows: list[dict], mode: str) -> str:
    """Rows domain x model x paradigm, columns base + strategies."""
    return markdown(main_frame(rows, mode))


def markdown(frame) -> str:
    """A pipe table of a DataFrame whose cells are already text (NaN as –)."""
    lines = ["| " + " | ".join(map(str, frame.columns)) + " |", "|" + "---|" * len(frame.columns)]
    for values in frame.itertuples(index=False):
        lines.append("| " + " | ".join("–" if v is None or v != v else str(v) for v in values) + " |")
    return "\n".join(lines)


def main_frame(rows: list[dict], mode: str, latex: bool = False, sep: str = " "):
    """The main table of one mode as text cells: rows domain x model x paradigm, columns base
    + strategies. Markdown/HTML cells carry the interval and the test against random (parts
    joined by ``sep``); LaTeX cells are ``mean ± sd`` with a star when p < 0.05 against random."""
    import pandas as pd

    strategies = list(dict.fromkeys(r["strategy"] for r in rows if r["strategy"] != "base"))
    cells = {(r["domain"], r["model"], r["paradigm"], r["strategy"]): r for r in rows if r["mode"] == mode}
    keys = dict.fromkeys((r["domain"], r["model"], r["paradigm"]) for r in rows
                         if r["mode"] == mode and r["strategy"] != "base")
    out = []
    for domain, model, paradigm in keys:
        row = {"domain": domain, "model": model, "paradigm": paradigm,
               "base": f"{cells[(domain, model, '-', 'base')]['mean']:.3f}"}
        for s in strategies:
            c = cells.get((domain, model, paradigm, s))
            row[s] = "—" if c is None else _latex_cell(c) if latex else _cell_text(c, sep)
        out.append(row)
    return pd.DataFrame(out)


def _latex_cell(c: dict) -> str:
    text = f"{c['mean']:.3f} $\\pm$ {c['sd']:.3f}"
    p = c.get("p_vs_random")
    if p is not None and p == p and p < 0.05:
        text += "$^{*}$"
    return text


def write_main_table(config: dict) -> list[Path]:
    import pandas as pd

    rows = collect(config)
    frame = pd.DataFrame(rows)
    paths = table_paths(config["run"], "main")
    io.write_text(paths["csv"], frame.to_csv(index=False, float_format="%.4f"))
    modes = list(dict.fromkeys(frame["mode"]))
    legend = ("Cells: mean ± sd over seeds [95 % t-interval]; Δ = accuracy minus `random` on the same "
              "questions and seeds, p = two-sided paired bootstrap over questions (10,000 resamples). "
              "\"(seeds identical)\": every seed gave the same accuracy — a strategy with nothing random in it "
              "(e.g. a static order) trains the same model whatever the seed, so no interval over seeds is shown.")
    sections = [f"## Accuracy on the test split, {mode}\n\n{legend}\n\n{markdown_table(rows, mode)}\n"
                for mode in modes]
    io.write_text(paths["md"], f"# Main table — run `{config['run']}`\n\n" + "\n".join(sections))
    io.write_text(paths["tex"], "\n".join(
        latex_table(main_frame(rows, mode, latex=True),
                    f"Accuracy on the test split ({mode}), mean $\\pm$ sd over {len(config['seeds'])} seeds; "
                    f"$^{{*}}$: $p < 0.05$ against random (paired bootstrap over questions).",
                    f"tab:main-{mode}", escape_cells=False) for mode in modes))
    io.write_text(paths["html"], html_page(f"Main table — run {config['run']}", [
        (f"Accuracy on the test split, {mode}", legend.replace("`", ""), main_frame(rows, mode, sep="\n"))
        for mode in modes]))
    written = [paths["csv"], paths["md"], paths["tex"], paths["html"]]
    return written + write_levels_table(config)


# --------------------------------------------------------------------------- per-seed frames
RUN_KEYS = ["domain", "model", "paradigm", "strategy", "seed"]


def grid_runs(config: dict):
    """(domain, model, paradigm, strategy, seed) of every run of the grid, in grid order."""
    grid = config["grid"]
    for domain in grid["domains"]:
        for model in grid["models"]:
            for paradigm in grid["paradigms"]:
                for strategy in grid["strategies"]:
                    for seed in config["seeds"]:
                        yield domain, model, paradigm, strategy, seed


def _evaluations(config: dict):
    """(keys, evaluation) for every base model and run of the grid; base keys have paradigm
    '-', strategy 'base' and seed None."""
    run, grid = config["run"], config["grid"]
    for domain in grid["domains"]:
        for model in grid["models"]:
            yield (domain, model, "-", "base", None), _read_eval(layout.eval_file(run, domain, model))
    for keys in grid_runs(config):
        yield keys, _read_eval(layout.eval_file(run, *keys))


def load_accuracies(config: dict):
    """One row per evaluation and mode: domain, model, paradigm, strategy, seed, mode, accuracy."""
    import pandas as pd

    rows = [dict(zip(RUN_KEYS, keys), mode=mode, accuracy=summary["accuracy"])
            for keys, report in _evaluations(config) for mode, summary in report["summary"].items()]
    return pd.DataFrame(rows, columns=[*RUN_KEYS, "mode", "accuracy"])


def load_level_accuracies(config: dict):
    """One row per evaluation, mode and difficulty level (the eval summaries' ``per_level``):
    domain, model, paradigm, strategy, seed, mode, level (int), accuracy. Empty when the test
    data has no levels."""
    import pandas as pd

    rows = [dict(zip(RUN_KEYS, keys), mode=mode, level=int(level), accuracy=acc)
            for keys, report in _evaluations(config) for mode, summary in report["summary"].items()
            for level, acc in (summary.get("per_level") or {}).items()]
    return pd.DataFrame(rows, columns=[*RUN_KEYS, "mode", "level", "accuracy"])


TIMING_FIELDS = ("scoring_seconds", "selecting_seconds", "training_seconds", "tokens_generated",
                 "optimizer_steps", "sample_visits", "rollout_tokens_generated")


def load_timing(config: dict):
    """One row per run and round, from round<r>/timing.json: the run keys, ``round`` and
    every timing field (a field an older run did not write is 0)."""
    import pandas as pd

    rows = []
    for keys in grid_runs(config):
        run_path = layout.run_dir(config["run"], *keys)
        for r in range(1, round_budget(config, keys[2], keys[1])[0] + 1):
            path = layout.round_dir(run_path, r) / "timing.json"
            if not path.exists():
                raise UserFacingError(f"missing round timing {path}: run the workflow to finish this run "
                                      f"(costs are never averaged over fewer rounds or seeds)")
            timing = io.read_json(path)
            rows.append({**dict(zip(RUN_KEYS, keys)), "round": r, **{f: timing.get(f, 0) for f in TIMING_FIELDS}})
    return pd.DataFrame(rows, columns=[*RUN_KEYS, "round", *TIMING_FIELDS])


def run_totals(timing):
    """Per run: every timing field summed over rounds, plus ``total_seconds`` (scoring +
    selecting + training: the wall-clock a strategy costs, scoring included)."""
    totals = timing.groupby(RUN_KEYS, sort=False)[list(TIMING_FIELDS)].sum().reset_index()
    totals["total_seconds"] = totals[["scoring_seconds", "selecting_seconds", "training_seconds"]].sum(axis=1)
    return totals


# --------------------------------------------------------------------------- cost table
CELL_KEYS = ["domain", "model", "paradigm", "strategy"]


def cost_frame(timing):
    """One row per cell: wall-clock seconds (mean over seeds), tokens generated, the training
    budget and whether it matches the rest of its paradigm (see ``budget_check``).

    ``scoring_overhead`` = mean scoring seconds / mean training seconds of the cell."""
    totals = run_totals(timing)
    means = totals.groupby(CELL_KEYS, sort=False).agg(
        n_seeds=("seed", "nunique"),
        scoring_seconds=("scoring_seconds", "mean"), selecting_seconds=("selecting_seconds", "mean"),
        training_seconds=("training_seconds", "mean"), total_seconds=("total_seconds", "mean"),
        total_seconds_sd=("total_seconds", "std"),
        scoring_tokens=("tokens_generated", "mean"), rollout_tokens=("rollout_tokens_generated", "mean"),
    ).reset_index()
    means["scoring_overhead"] = means["scoring_seconds"] / means["training_seconds"]
    return means.merge(budget_check(totals), on=CELL_KEYS, how="left")


def budget_check(totals):
    """Per cell: its optimiser steps and sample visits, and ``budget_matched``: every seed of
    the cell did the same steps and visits as the reference of its (domain, model, paradigm)
    — the ``random`` runs' budget when they agree, else the most common one. ``budget_note``
    says what differs."""
    import pandas as pd

    rows = []
    for (domain, model, paradigm), group in totals.groupby(["domain", "model", "paradigm"], sort=False):
        pairs = list(zip(group["optimizer_steps"], group["sample_visits"]))
        random_pairs = set(zip(*(group.loc[group["strategy"] == "random", c] for c in ("optimizer_steps", "sample_visits"))))
        reference = next(iter(random_pairs)) if len(random_pairs) == 1 else max(set(pairs), key=pairs.count)
        for strategy, cell in group.groupby("strategy", sort=False):
            budget = sorted(set(zip(cell["optimizer_steps"], cell["sample_visits"])))
            matched = budget == [reference]
            note = "" if matched else (
                f"{' / '.join(f'{int(s)} steps, {int(v)} visits' for s, v in budget)} vs "
                f"{int(reference[0])} steps, {int(reference[1])} visits")
            rows.append({"domain": domain, "model": model, "paradigm": paradigm, "strategy": strategy,
                         "optimizer_steps": cell["optimizer_steps"].mean(), "sample_visits": cell["sample_visits"].mean(),
                         "budget_matched": matched, "budget_note": note})
    return pd.DataFrame(rows, columns=[*CELL_KEYS, "optimizer_steps", "sample_visits", "budget_matched", "budget_note"])


def _cost_text(frame):
    """The cost table with readable headers and formatted cells (Markdown, LaTeX, HTML)."""
    out = frame[CELL_KEYS].copy()
    out["scoring (s)"] = frame["scoring_seconds"].map(lambda v: f"{v:.2f}")
    out["selecting (s)"] = frame["selecting_seconds"].map(lambda v: f"{v:.2f}")
    out["training (s)"] = frame["training_seconds"].map(lambda v: f"{v:.2f}")
    out["total (s)"] = [f"{m:.2f}" + (f" ± {sd:.2f}" if sd == sd else "")
                        for m, sd in zip(frame["total_seconds"], frame["total_seconds_sd"])]
    out["scoring ÷ training"] = frame["scoring_overhead"].map(lambda v: f"{v:.3f}")
    out["scoring tokens"] = frame["scoring_tokens"].map(lambda v: f"{v:,.0f}")
    if (frame["paradigm"] == "rl").any():
        out["rollout tokens"] = frame["rollout_tokens"].map(lambda v: f"{v:,.0f}")
    out["steps / visits"] = [f"{s:g} / {v:g}" for s, v in zip(frame["optimizer_steps"], frame["sample_visits"])]
    out["budget"] = ["matched" if ok else f"MISMATCH: {note}" for ok, note in zip(frame["budget_matched"], frame["budget_note"])]
    return out


def budget_summary(frame) -> str:
    bad = frame[~frame["budget_matched"]]
    if bad.empty:
        return ("Budget check: every strategy of each domain x model x paradigm did the same optimiser steps on the "
                "same sample visits, in every seed.")
    cells = "; ".join(f"{r.domain}/{r.model}/{r.paradigm}/{r.strategy}: {r.budget_note}" for r in bad.itertuples())
    return f"BUDGET MISMATCH in {len(bad)} cell(s) — the comparison is not budget-matched: {cells}."


COST_LEGEND = ("Wall-clock seconds per run, summed over rounds, mean over seeds (total ± sd): scoring = the strategy "
               "scoring the pool with the model, selecting = writing the selection, training = the optimiser steps. "
               "scoring ÷ training = the overhead the curriculum adds to training. Scoring tokens = tokens the "
               "estimator generated; rollout tokens = GRPO completions (RL only). Steps / visits = optimiser steps "
               "and sample visits per run; every strategy of a paradigm must match them (budget).")


def write_cost_table(config: dict) -> list[Path]:
    """tables/cost.{csv,md,tex,html}; a budget mismatch is flagged in every format and logged."""
    frame = cost_frame(load_timing(config))
    paths = table_paths(config["run"], "cost")
    io.write_text(paths["csv"], frame.to_csv(index=False, float_format="%.6g"))
    text, summary = _cost_text(frame), budget_summary(frame)
    if not frame["budget_matched"].all():
        log.warning(summary)
    io.write_text(paths["md"], f"# Cost table — run `{config['run']}`\n\n{COST_LEGEND}\n\n{summary}\n\n{markdown(text)}\n")
    io.write_text(paths["tex"], latex_table(text, _latex_escape(f"Cost per run, mean over {len(config['seeds'])} seeds. "
                                                                 f"{summary}"), "tab:cost"))
    io.write_text(paths["html"], html_page(f"Cost table — run {config['run']}", [
        ("Wall-clock and budget per cell", COST_LEGEND, text, (summary, bool(frame["budget_matched"].all())))]))
    return [paths[f] for f in TABLE_FORMATS]


# --------------------------------------------------------------------------- per-level table
def level_frame(levels):
    """Accuracy per difficulty level: one row per cell, mode and level — mean, sd and seeds."""
    if levels.empty:
        import pandas as pd

        return pd.DataFrame(columns=[*CELL_KEYS, "mode", "level", "mean", "sd", "n_seeds"])
    grouped = levels.groupby([*CELL_KEYS, "mode", "level"], sort=False)["accuracy"]
    frame = grouped.agg(mean="mean", sd="std", n_seeds="count").reset_index()
    frame["sd"] = frame["sd"].fillna(0.0)
    return frame


def _level_text(frame, mode: str):
    """Rows cell, columns 'level k' with 'mean ± sd' (base: the one evaluation)."""
    sub = frame[frame["mode"] == mode].copy()
    sub["cell"] = [f"{m:.3f}" if strategy == "base" else f"{m:.3f} ± {sd:.3f}"
                   for m, sd, strategy in zip(sub["mean"], sub["sd"], sub["strategy"])]
    wide = sub.pivot_table(index=CELL_KEYS, columns="level", values="cell", aggfunc="first", sort=False)
    wide.columns = [f"level {c}" for c in wide.columns]
    return wide.reset_index()


def write_levels_table(config: dict) -> list[Path]:
    """tables/levels.{csv,md,tex,html}: accuracy per difficulty level; when no test question
    has a level the files say so (the outputs exist either way, as the workflow expects)."""
    frame = level_frame(load_level_accuracies(config))
    paths = table_paths(config["run"], "levels")
    io.write_text(paths["csv"], frame.to_csv(index=False, float_format="%.4f"))
    title = f"Accuracy per difficulty level — run `{config['run']}`"
    legend = ("Accuracy on the test questions of each difficulty level (the data's `difficulty`), mean ± sd over "
              "seeds; base = the model before fine-tuning.")
    modes = list(dict.fromkeys(frame["mode"]))
    if not modes:
        none = "The test data of this run has no difficulty levels: there is no per-level accuracy to report."
        io.write_text(paths["md"], f"# {title}\n\n{none}\n")
        io.write_text(paths["tex"], f"% {none}\n")
        io.write_text(paths["html"], html_page(title.replace("`", ""), []).replace("</h1>", f"</h1><p>{none}</p>"))
        return [paths[f] for f in TABLE_FORMATS]
    io.write_text(paths["md"], f"# {title}\n\n{legend}\n\n" + "\n".join(
        f"## {mode}\n\n{markdown(_level_text(frame, mode))}\n" for mode in modes))
    io.write_text(paths["tex"], "\n".join(latex_table(
        _level_text(frame, mode), _latex_escape(f"Accuracy per difficulty level ({mode}), mean ± sd over seeds."),
        f"tab:levels-{mode}") for mode in modes))
    io.write_text(paths["html"], html_page(title.replace("`", ""), [
        (f"Accuracy per level, {mode}", legend.replace("`", ""), _level_text(frame, mode)) for mode in modes]))
    return [paths[f] for f in TABLE_FORMATS]


# --------------------------------------------------------------------------- output formats
TABLE_FORMATS = ("csv", "md", "tex", "html")


def table_paths(run: str, name: str) -> dict[str, Path]:
    """tables/<name>.{csv,md,tex,html} of a run."""
    out = layout.tables_dir(run)
    return {fmt: out / f"{name}.{fmt}" for fmt in TABLE_FORMATS}


def _latex_escape(text: str) -> str:
    for char, escaped in (("\\", r"\textbackslash{}"), ("&", r"\&"), ("%", r"\%"), ("$", r"\$"), ("#", r"\#"),
                          ("_", r"\_"), ("{", r"\{"), ("}", r"\}")):
        text = text.replace(char, escaped)
    return text.replace("×", r"$\times$").replace("÷", "/").replace("±", r"$\pm$").replace("—", "--")


def latex_table(frame, caption: str, label: str, escape_cells: bool = True, float_format: str = "%.3g") -> str:
    """A booktabs ``table`` environment (needs \\usepackage{booktabs}). Headers and, unless
    ``escape_cells`` is off, cells are escaped; the caption is LaTeX as given."""
    frame = frame.copy()
    frame.columns = [_latex_escape(str(c)) for c in frame.columns]
    if escape_cells:
        for column in frame.columns:
            if frame[column].dtype == object or str(frame[column].dtype).startswith(("str", "string")):
                frame[column] = frame[column].map(lambda v: _latex_escape(v) if isinstance(v, str) else v)
    align = "".join("r" if frame[c].map(_numeric_text).all() else "l" for c in frame.columns)
    return frame.to_latex(index=False, escape=False, float_format=float_format, na_rep="--", caption=caption,
                          label=label, position="htbp", column_format=align) + "\n"


def _numeric_text(value) -> bool:
    """A cell that reads as a number ("0.512 ± 0.03", "1,024", "--"): right-aligned in LaTeX."""
    import re

    return bool(re.match(r"^\s*([-+]?[\d.,]|--|–)", str(value)))


_HTML_STYLE = """
body { font-family: -apple-system, "Segoe UI", Helvetica, Arial, sans-serif; font-size: 12px; margin: 0.8em; color: #222; }
h1 { font-size: 17px; } h2 { font-size: 14px; margin-top: 1.4em; }
p.note { color: #555; max-width: 60em; }
p.ok { color: #176f2c; font-weight: bold; } p.bad { color: #b00; font-weight: bold; }
table { border-collapse: collapse; margin: 0.5em 0 1em; }
th, td { border-bottom: 1px solid #ddd; padding: 3px 5px; vertical-align: top; }
th { background: #f3f3f3; border-bottom: 2px solid #999; text-align: left; max-width: 6em; }
td { white-space: pre; } td.num { text-align: right; font-variant-numeric: tabular-nums; }
td.flag { color: #b00; font-weight: bold; white-space: normal; }
tr:hover td { background: #fafaf0; }
"""


def html_page(title: str, sections: list[tuple]) -> str:
    """A self-contained HTML page: a heading, then per section a heading, a note, an optional
    alert ``(text, ok)`` shown in green or red, and a table (a DataFrame of text cells;
    numbers right-aligned, cells saying MISMATCH in red)."""
    import html

    esc = html.escape
    parts = [f"<!DOCTYPE html><html><head><meta charset='utf-8'><title>{esc(title)}</title>"
             f"<style>{_HTML_STYLE}</style></head><body><h1>{esc(title)}</h1>"]
    for heading, note, frame, *alert in sections:
        parts.append(f"<h2>{esc(heading)}</h2>")
        if note:
            parts.append(f"<p class='note'>{esc(note)}</p>")
        if alert:
            text, ok = alert[0]
            parts.append(f"<p class='{'ok' if ok else 'bad'}'>{esc(text)}</p>")
        rows = ["<tr>" + "".join(f"<th>{esc(str(c))}</th>" for c in frame.columns) + "</tr>"]
        for values in frame.itertuples(index=False):
            cells = []
            for v in values:
                text = "–" if v is None or v != v else str(v)
                cls = "flag" if "MISMATCH" in text else "num" if _numeric_text(text) else ""
                cells.append(f"<td class='{cls}'>{esc(text)}</td>" if cls else f"<td>{esc(text)}</td>")
            rows.append("<tr>" + "".join(cells) + "</tr>")
        parts.append("<table>\n" + "\n".join(rows) + "\n</table>")
    parts.append("</body></html>")
    return "\n".join(parts) + "\n"


def write_config_page(config: dict, config_path: str | Path) -> Path:
    """results/<run>/config.html: the validated config every job read (defaults filled), for the report."""
    import html

    out = layout.run_root(config["run"]) / "config.html"
    text = Path(config_path).read_text(encoding="utf-8")
    io.write_text(out, f"<!DOCTYPE html><html><head><meta charset='utf-8'><title>config</title><style>{_HTML_STYLE}"
                       f"pre {{ background: #f6f6f6; padding: 0.8em; font-size: 12px; }}</style></head><body>"
                       f"<h1>Configuration — run {html.escape(config['run'])}</h1><p class='note'>The validated "
                       f"configuration every job of this run read: {html.escape(str(config_path))}, with the schema's "
                       f"defaults filled in and command-line overrides applied.</p><pre>{html.escape(text)}</pre>"
                       f"</body></html>\n")
    return out


def write_estimator_table(config: dict) -> list[Path]:
    """Merge every domain x model estimator benchmark into tables/estimator.{csv,md}."""
    import pandas as pd

    run, grid = config["run"], config["grid"]
    frames = []
    for domain in grid["domains"]:
        for model in grid["models"]:
            path = layout.run_root(run) / "estimator" / domain / model / "estimator.csv"
            if not path.exists():
                raise UserFacingError(f"missing estimator benchmark {path}: run the estimator_bench rule")
            frames.append(pd.read_csv(path).assign(domain=domain))
    frame = pd.concat(frames, ignore_index=True)
    paths = table_paths(run, "estimator")
    io.write_text(paths["csv"], frame.to_csv(index=False, float_format="%.5g"))
    io.write_text(paths["md"], estimator_markdown(frame, config))
    text = _estimator_text(frame, config)
    agg = config["estimator"]["aggregate"]
    note = (f"Prefix entropy at K tokens vs full-sequence entropy ({agg} aggregation), on each base model and one "
            "fine-tuned run: seconds per sample, speed-up over full, share of quick answers that ended before K, "
            "rank agreement with full (Spearman, Kendall, top-N overlap) and Spearman with known difficulty. "
            "The paper: 83.5 % less time (speed-up 6.1×) at a ranking close to full.")
    io.write_text(paths["tex"], latex_table(text, _latex_escape(note), "tab:estimator"))
    io.write_text(paths["html"], html_page(f"Estimator benchmark — run {run}", [("Prefix length K vs full entropy", note, text)]))
    return [paths[f] for f in TABLE_FORMATS]


ESTIMATOR_COLUMNS = {"domain": "domain", "model": "model", "k": "K", "seconds_per_sample": "s / sample",
                     "speedup_vs_full": "speed-up (×)", "ended_before_k": "ended before K",
                     "spearman_vs_full": "Spearman vs full", "kendall_vs_full": "Kendall vs full",
                     "topn_overlap": "top-N overlap", "spearman_vs_difficulty": "Spearman vs difficulty"}


def _estimator_text(frame, config: dict):
    agg = config["estimator"]["aggregate"]
    rows = frame[(frame["table"] == "estimators") & (frame["estimator"] == "prefix") & (frame["aggregate"] == agg)]
    out = rows[list(ESTIMATOR_COLUMNS)].copy()
    for column in out.columns:
        out[column] = out[column].map(_fmt_cell)
    return out.rename(columns=ESTIMATOR_COLUMNS)


def _fmt_cell(value) -> str:
    if value is None or (isinstance(value, float) and value != value):
        return "–"
    if isinstance(value, float):
        return f"{value:.3g}"
    return str(value)


def estimator_markdown(frame, config: dict) -> str:
    """Prefix-vs-K rows at the config's aggregation: cost and rank agreement with full entropy."""
    agg = config["estimator"]["aggregate"]
    k_rows = frame[(frame["table"] == "estimators") & (frame["estimator"] == "prefix") & (frame["aggregate"] == agg)]
    cols = ["domain", "model", "k", "seconds_per_sample", "speedup_vs_full", "ended_before_k",
            "spearman_vs_full", "kendall_vs_full", "topn_overlap", "spearman_vs_difficulty"]
    lines = [f"# Estimator benchmark — run `{config['run']}`", "",
             f"Prefix entropy at K tokens vs full-sequence entropy ({agg} aggregation), on each base model "
             "and one fine-tuned run. The paper: 83.5 % less time (speed-up 6.1×) at a ranking close to full.",
             "", "| " + " | ".join(cols) + " |", "|" + "---|" * len(cols)]
    for _, row in k_rows[cols].iterrows():
        lines.append("| " + " | ".join(_fmt(v) for v in row) + " |")
    return "\n".join(lines) + "\n"


def _fmt(value) -> str:
    if isinstance(value, float):
        return f"{value:.3g}"
    return str(value)


def cli_table(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="python -m edco table", description=__doc__.split("\n\n")[0])
    parser.add_argument("--config", required=True)
    which = parser.add_mutually_exclusive_group()
    which.add_argument("--estimator", action="store_true", help="the estimator table instead of the main table")
    which.add_argument("--cost", action="store_true", help="the cost table (wall-clock, tokens, budget check)")
    which.add_argument("--compute", action="store_true",
                       help="the compute-matched table (accuracy vs scoring + training compute, verdict per cell)")
    which.add_argument("--verdict", action="store_true",
                       help="does a strategy beat random, pooled over the grid (seeds and questions resampled): "
                            "tables/verdict.* and plots/verdict.*")
    which.add_argument("--config-page", action="store_true",
                       help="results/<run>/config.html: the config as the HTML report shows it")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    config = load_config(args.config)
    if args.config_page:
        log.info("wrote %s", write_config_page(config, args.config))
        return 0
    if args.estimator:
        paths = write_estimator_table(config)
    elif args.cost:
        paths = write_cost_table(config)
    elif args.compute:
        from edco.compute import write_compute_table

        paths = write_compute_table(config)
    elif args.verdict:
        from edco.verdict import write_verdict

        paths = write_verdict(config)
    else:
        paths = write_main_table(config)
    for path in paths:
        log.info("wrote %s", path)
    print(paths[1].read_text())
    return 0
