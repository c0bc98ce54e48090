"""A grid's result files as pandas frames: the only place reporting reads results/<run>/.

- ``evaluations``: every evaluation JSON of the grid (the base models and every run), read once;
  ``accuracies``, ``level_accuracies`` and ``questions`` turn them into frames;
- ``timing`` (round<r>/timing.json) and ``run_totals``;
- ``selections`` (round<r>/{scores.parquet, selection.jsonl}) and ``steps`` (metrics.jsonl);
- ``estimator_runs`` (the estimator benchmark per domain x model) and ``estimator_table``.

A run whose seed, round or file is missing is an error that names the file: a cell is never
averaged over fewer seeds or rounds than the config asks for.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from pathlib import Path

import pandas as pd

from edco import io, layout
from edco.config import base_labels, base_seed, round_budget
from edco.errors import UserFacingError

RUN_KEYS = ["domain", "model", "paradigm", "strategy", "seed"]
CELL_KEYS = ["domain", "model", "paradigm", "strategy"]
#: The base model (no fine-tuning) in every frame: paradigm "-", strategy "base", no seed.
BASE = ("-", "base")
TIMING_FIELDS = ("scoring_seconds", "selecting_seconds", "training_seconds", "tokens_generated",
                 "optimizer_steps", "sample_visits", "rollout_tokens_generated")
QUESTION_COLUMNS = [*RUN_KEYS, "mode", "question_id", "difficulty", "correct", "pred"]


def grid_runs(config: dict) -> Iterator[tuple]:
    """(domain, model, paradigm, strategy, seed) of every run of the grid, in grid order."""
    grid = config["grid"]
    for domain in grid["domains"]:
        for model in grid["models"]:
            for paradigm in grid["paradigms"]:
                for strategy in grid["strategies"]:
                    for seed in config["seeds"]:
                        yield domain, model, paradigm, strategy, seed


def _read_eval(path: Path) -> dict:
    if not path.exists():
        raise UserFacingError(f"missing evaluation {path}: run the workflow to produce it (no cell is averaged over "
                              f"fewer seeds)")
    return io.read_json(path)


def evaluations(config: dict, base: bool = True) -> list[tuple[tuple, dict]]:
    """(run keys, evaluation) of every base model (unless ``base`` is off), then every run of
    the grid; a base model's keys are (domain, model, "-", "base", seed): seed None for the
    shared base model, s for run seed s's own (pretrain.per_seed)."""
    run, grid = config["run"], config["grid"]
    out = [((d, m, *BASE, base_seed(label)), _read_eval(layout.eval_file(run, d, m, base=label)))
           for d in grid["domains"] for m in grid["models"] if base for label in base_labels(config, m)]
    return out + [(keys, _read_eval(layout.eval_file(run, *keys))) for keys in grid_runs(config)]


def _seed_column(frame: pd.DataFrame) -> pd.DataFrame:
    frame["seed"] = frame["seed"].astype("Int64")  # the base model has none
    return frame


def accuracies(evals: list[tuple[tuple, dict]]) -> pd.DataFrame:
    """One row per evaluation and mode: the run keys, ``mode`` and ``accuracy`` (its summary)."""
    rows = [dict(zip(RUN_KEYS, keys), mode=mode, accuracy=summary["accuracy"])
            for keys, report in evals for mode, summary in report["summary"].items()]
    return _seed_column(pd.DataFrame(rows, columns=[*RUN_KEYS, "mode", "accuracy"]))


def level_accuracies(evals: list[tuple[tuple, dict]]) -> pd.DataFrame:
    """One row per evaluation, mode and difficulty level (the summaries' ``per_level``); empty
    when the test data has no levels."""
    rows = [dict(zip(RUN_KEYS, keys), mode=mode, level=int(level), accuracy=acc)
            for keys, report in evals for mode, summary in report["summary"].items()
            for level, acc in (summary.get("per_level") or {}).items()]
    return _seed_column(pd.DataFrame(rows, columns=[*RUN_KEYS, "mode", "level", "accuracy"]))


def questions(evals: list[tuple[tuple, dict]]) -> pd.DataFrame:
    """One row per evaluation, mode and test question: the run keys, ``mode``, ``question_id``,
    ``difficulty`` (NA without levels), ``correct`` and ``pred``: everything the statistics
    need, and what tables/questions.parquet holds."""
    rows = [(*keys, mode, q["id"], q.get("difficulty"), bool(q[mode]["correct"]), str(q[mode]["pred"]))
            for keys, report in evals for mode in report["summary"] for q in report["questions"] if mode in q]
    frame = pd.DataFrame(rows, columns=QUESTION_COLUMNS)
    frame["difficulty"] = frame["difficulty"].astype("Int64")
    return _seed_column(frame)


def read_questions(path: str | Path) -> pd.DataFrame:
    """tables/questions.parquet, checked to hold the columns the statistics read."""
    path = Path(path)
    if not path.exists():
        raise UserFacingError(f"missing {path}: `python -m edco table --config C` writes it")
    frame = pd.read_parquet(path)
    missing = [c for c in QUESTION_COLUMNS if c not in frame.columns]
    if missing:
        raise UserFacingError(f"{path}: no column {', '.join(missing)} (expected {', '.join(QUESTION_COLUMNS)})")
    return frame


def write_questions(frame: pd.DataFrame, path: Path) -> Path:
    with io.atomic_path(path) as tmp:
        frame.to_parquet(tmp, index=False)
    return path


def _round_files(config: dict, keys: tuple, name: str) -> Iterator[tuple[int, Path]]:
    """(round, round<r>/<name>) of one run, every round of its budget; a missing file is an error."""
    run_path = layout.run_dir(config["run"], *keys)
    for r in range(1, round_budget(config, keys[2], keys[1])[0] + 1):
        path = layout.round_dir(run_path, r) / name
        if not path.exists():
            raise UserFacingError(f"missing {'round timing ' if name == 'timing.json' else ''}{path}: run the "
                                  f"workflow to finish this run (never averaged over fewer rounds or seeds)")
        yield r, path


def timing(config: dict) -> pd.DataFrame:
    """One row per run and round, from round<r>/timing.json: the run keys, ``round`` and every
    timing field (a field an older run did not write is 0)."""
    rows = [{**dict(zip(RUN_KEYS, keys)), "round": r, **{f: record.get(f, 0) for f in TIMING_FIELDS}}
            for keys in grid_runs(config) for r, path in _round_files(config, keys, "timing.json")
            for record in [io.read_json(path)]]
    return pd.DataFrame(rows, columns=[*RUN_KEYS, "round", *TIMING_FIELDS])


def run_totals(timing_frame: pd.DataFrame) -> pd.DataFrame:
    """Per run: every timing field summed over rounds, plus ``total_seconds`` (scoring +
    selecting + training: the wall-clock a strategy costs, scoring included)."""
    totals = timing_frame.groupby(RUN_KEYS, sort=False)[list(TIMING_FIELDS)].sum().reset_index()
    totals["total_seconds"] = totals[["scoring_seconds", "selecting_seconds", "training_seconds"]].sum(axis=1)
    return totals


def selections(config: dict) -> pd.DataFrame:
    """One row per run and round, from round<r>/{scores.parquet, selection.jsonl}: the mean
    score of the pool and of the selection (NaN when the round's score file is empty: the
    strategy did not score that round), the samples selected for the first time (``new``),
    the distinct samples selected so far (``covered``) and the selection size."""
    rows = []
    for keys in grid_runs(config):
        seen: set[str] = set()
        pools = dict(_round_files(config, keys, "scores.parquet"))
        for r, path in _round_files(config, keys, "selection.jsonl"):
            selection = io.read_jsonl(path)
            ids = [row["id"] for row in selection]
            pool = pd.read_parquet(pools[r])["score"]
            picked = [row["score"] for row in selection if row.get("score") is not None]
            new = len(set(ids) - seen)
            seen |= set(ids)
            rows.append({**dict(zip(RUN_KEYS, keys)), "round": r, "n_selected": len(ids), "new": new,
                         "covered": len(seen), "pool_mean": pool.mean() if len(pool) else math.nan,
                         "selection_mean": sum(picked) / len(picked) if picked else math.nan})
    return pd.DataFrame(rows, columns=[*RUN_KEYS, "round", "n_selected", "new", "covered", "pool_mean",
                                       "selection_mean"])


def steps(config: dict, paradigm: str) -> pd.DataFrame:
    """One row per optimiser step of every run of ``paradigm``, from round<r>/metrics.jsonl:
    the run keys, ``round``, ``step`` (counted across rounds, from 1) and the logged metrics."""
    rows = []
    for keys in grid_runs(config):
        if keys[2] != paradigm:
            continue
        step = 0
        for r, path in _round_files(config, keys, "metrics.jsonl"):
            for logged in io.read_jsonl(path):
                step += 1
                rows.append({**dict(zip(RUN_KEYS, keys)), "round": r, **logged, "step": step})
    return pd.DataFrame(rows)


def estimator_runs(config: dict) -> pd.DataFrame:
    """Every domain x model estimator benchmark (estimator/<domain>/<model>/estimator.csv),
    one frame with a ``domain`` column."""
    frames = []
    for domain in config["grid"]["domains"]:
        for model in config["grid"]["models"]:
            path = layout.estimator_dir(config["run"], domain, model) / "estimator.csv"
            if not path.exists():
                raise UserFacingError(f"missing estimator benchmark {path}: run the estimator_bench rule")
            frames.append(pd.read_csv(path).assign(domain=domain))
    return pd.concat(frames, ignore_index=True)


def estimator_table(config: dict) -> pd.DataFrame:
    """tables/estimator.csv (the merged benchmark the estimator table wrote)."""
    path = layout.table_file(config["run"], "estimator", "csv")
    if not path.exists():
        raise UserFacingError(f"missing {path}: run `python -m edco table --config C --estimator` first")
    return pd.read_csv(path)


def verdict_table(config: dict) -> pd.DataFrame:
    """tables/verdict.csv (the verdict table's numbers, stats.verdict_frame)."""
    path = layout.table_file(config["run"], "verdict", "csv")
    if not path.exists():
        raise UserFacingError(f"missing {path}: run `python -m edco table --config C --verdict` first")
    return pd.read_csv(path)
