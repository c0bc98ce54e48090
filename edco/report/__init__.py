"""Tables, plots and statistics of a finished grid. Reads result files only (never imports
torch, transformers, TRL or lm-eval, nor the curriculum): ``registry`` lists every table and
plot (what writes it, what it reads, when a run has it, where the HTML report shows it),
``load`` turns results/<run>/ into frames, ``render`` writes every table as CSV, Markdown,
LaTeX and HTML, one module per table (main, levels, cost, compute, verdict, estimator; the
config page), ``plots`` on ``figures``, ``stats`` the tests every table uses, ``replication``
the pre-registered test of a replication against its study.

    python -m edco table --config config/smoke.yaml                 # main + levels + questions.parquet
    python -m edco table --config config/smoke.yaml --cost          # any table of the registry by name
    python -m edco table --config config/smoke.yaml --all           # every table the run has
    python -m edco table --config config/smoke.yaml --config-page   # results/<run>/config.html
    python -m edco plots --config config/smoke.yaml [--only NAME] [--pdf]
    python -m edco replicate --study results/a --replication results/b

The arguments are parsed in edco/cli.py. Importing this package (or ``edco.report.registry``)
imports no pandas: the workflow's controller reads the registry; the names below are imported
from their modules on first use.
"""

from __future__ import annotations

import importlib

#: name -> the module of edco.report that defines it (imported on first use).
_LAZY = {"TABLES": "registry", "bench_markdown": "estimator", "plot_estimator_k": "plots", "save_figure": "figures",
         "write_compute_table": "compute", "write_config_page": "config_page", "write_cost_table": "cost",
         "write_estimator_table": "estimator", "write_main_table": "main", "write_plots": "plots",
         "write_tables": "tables", "write_verdict": "verdict"}
_RENAMED = {"save_figure": "save"}

__all__ = sorted(_LAZY)


def __getattr__(name: str):
    if name not in _LAZY:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    module = importlib.import_module(f"{__name__}.{_LAZY[name]}")
    return getattr(module, _RENAMED.get(name, name))
