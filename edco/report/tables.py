"""Which tables ``python -m edco table`` writes (edco/cli.py parses its arguments): each table of
the registry (edco.report.registry.TABLES) by its name, and tables/questions.parquet."""

from __future__ import annotations

from pathlib import Path

from edco import layout
from edco.errors import UserFacingError
from edco.report import load, registry

#: tables/questions.parquet: not a table of the registry but the answers tables are computed from.
QUESTIONS = registry.QUESTIONS
#: ``python -m edco table`` without a name: the tables every run has.
DEFAULT = (QUESTIONS, "main", "levels")


def write_questions(config: dict) -> list[Path]:
    """tables/questions.parquet: every evaluation's per-question answers (load.questions)."""
    return [load.write_questions(load.questions(load.evaluations(config)), layout.questions_file(config["run"]))]


def write_tables(config: dict, which: str = "main") -> list[Path]:
    """The files of one table of the registry (layout.TABLE_FORMATS order), or of ``questions``."""
    if which == QUESTIONS:
        return write_questions(config)
    table = registry.table(which)
    if not table.applies(config):
        raise UserFacingError(f"run {config['run']!r} has no {which} table ({table.help})")
    return registry.writer(table)(config)
