"""The report's commands, ``python -m edco table`` and ``python -m edco plots``: parse the
arguments, load the config, write the files, say what was written."""

from __future__ import annotations

import argparse
import logging
from pathlib import Path

from edco import layout
from edco.config import load_config
from edco.errors import UserFacingError
from edco.report.compute import write_compute_table
from edco.report.config_page import write_config_page
from edco.report.cost import write_cost_table
from edco.report.estimator import write_estimator_table
from edco.report.figures import FORMATS
from edco.report.main import write_main_table
from edco.report.plots import write_plots
from edco.report.verdict import write_verdict

log = logging.getLogger("edco.report")

#: ``python -m edco table --<name>``: what it writes (the default, no flag, is the main table).
TABLES = {
    "main": (write_main_table, "the main table, the per-level table and tables/questions.parquet (default)"),
    "cost": (write_cost_table, "the cost table (wall-clock, tokens, budget check)"),
    "compute": (write_compute_table, "the compute-matched table (accuracy vs scoring + training compute, verdict "
                                     "per cell)"),
    "verdict": (write_verdict, "does a strategy beat random, pooled over the grid: tables/verdict.* and "
                               "plots/verdict.png"),
    "estimator": (write_estimator_table, "the estimator benchmarks of the grid, merged"),
}


def write_tables(config: dict, which: str = "main") -> list[Path]:
    """The files of one table (``TABLES``), in layout.TABLE_FORMATS order first."""
    if which not in TABLES:
        raise UserFacingError(f"no table {which!r}; the tables: {', '.join(TABLES)}")
    if which == "verdict" and not layout.has_verdict(config):
        raise UserFacingError("the verdict needs random in grid.strategies, another strategy and at least 2 seeds")
    return TABLES[which][0](config)


def cli_table(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="python -m edco table", description="Tables of a finished grid.")
    parser.add_argument("--config", required=True)
    which = parser.add_mutually_exclusive_group()
    for name, (_, help_) in TABLES.items():
        if name != "main":
            which.add_argument(f"--{name}", action="store_true", help=help_)
    which.add_argument("--config-page", action="store_true",
                       help="results/<run>/config.html: the config as the HTML report shows it")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    config = load_config(args.config)
    if args.config_page:
        log.info("wrote %s", write_config_page(config, args.config))
        return 0
    paths = write_tables(config, next((name for name in TABLES if getattr(args, name, False)), "main"))
    for path in paths:
        log.info("wrote %s", path)
    print(paths[1].read_text(encoding="utf-8"))
    return 0


def cli_plots(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="python -m edco plots", description="Plots of a finished grid.")
    parser.add_argument("--config", required=True)
    parser.add_argument("--only", action="append", help="only this plot (repeatable); default: every plot")
    parser.add_argument("--pdf", action="store_true", help="a PDF (vector, for papers) beside each PNG")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    config = load_config(args.config)
    for path in write_plots(config, args.only, FORMATS if args.pdf else ("png",)):
        print(path)
    return 0
