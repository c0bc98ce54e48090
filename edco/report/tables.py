"""Which table ``python -m edco table`` writes (edco/cli.py parses its arguments): one writer
per table, each reading results/<run>/ and writing tables/<name>.{csv,md,tex,html}."""

from __future__ import annotations

from pathlib import Path

from edco import layout
from edco.errors import UserFacingError
from edco.report.compute import write_compute_table
from edco.report.cost import write_cost_table
from edco.report.estimator import write_estimator_table
from edco.report.main import write_main_table
from edco.report.verdict import write_verdict

#: ``python -m edco table --<name>``: what it writes (no flag: the main table).
TABLES = {
    "main": "the main table, the per-level table and tables/questions.parquet (default)",
    "cost": "the cost table (wall-clock, tokens, budget check)",
    "compute": "the compute-matched table (accuracy vs scoring + training compute, verdict per cell)",
    "verdict": "does a strategy beat random, pooled over the grid: tables/verdict.* and plots/verdict.png",
    "estimator": "the estimator benchmarks of the grid, merged",
}
WRITERS = {"main": write_main_table, "cost": write_cost_table, "compute": write_compute_table,
           "verdict": write_verdict, "estimator": write_estimator_table}


def write_tables(config: dict, which: str = "main") -> list[Path]:
    """The files of one table of ``TABLES``, in layout.TABLE_FORMATS order first."""
    if which not in WRITERS:
        raise UserFacingError(f"no table {which!r}; the tables: {', '.join(TABLES)}")
    if which == "verdict" and not layout.has_verdict(config):
        raise UserFacingError("the verdict needs random in grid.strategies, another strategy and at least 2 seeds")
    return WRITERS[which](config)
