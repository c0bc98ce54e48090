"""Tables, plots and statistics of a finished grid. Reads result files only (never imports
torch, transformers, TRL or lm-eval, nor the curriculum): ``load`` turns results/<run>/ into
frames, ``render`` writes every table as CSV, Markdown, LaTeX and HTML, one module per table
(main + levels, cost, compute, verdict, estimator, config page), ``plots`` on ``figures``,
``stats`` the tests every table uses.

    python -m edco table --config config/smoke.yaml                 # main + levels + questions.parquet
    python -m edco table --config config/smoke.yaml --cost          # cost
    python -m edco table --config config/smoke.yaml --compute       # compute-matched
    python -m edco table --config config/smoke.yaml --verdict       # beats random? (+ plots/verdict.png)
    python -m edco table --config config/smoke.yaml --estimator     # estimator benchmark, merged
    python -m edco table --config config/smoke.yaml --config-page   # results/<run>/config.html
    python -m edco plots --config config/smoke.yaml [--only NAME] [--pdf]

The arguments are parsed in edco/cli.py. Which tables and plots a run has is decided in
``edco.layout`` (``plot_names``, ``has_verdict``), so that the workflow lists them without
importing pandas.
"""

from __future__ import annotations

from edco.report.compute import write_compute_table
from edco.report.config_page import write_config_page
from edco.report.cost import write_cost_table
from edco.report.estimator import bench_markdown, write_estimator_table
from edco.report.figures import save as save_figure
from edco.report.main import write_main_table
from edco.report.plots import plot_estimator_k, write_plots
from edco.report.tables import TABLES, write_tables
from edco.report.verdict import write_verdict

__all__ = ["TABLES", "bench_markdown", "plot_estimator_k", "save_figure", "write_compute_table", "write_config_page",
           "write_cost_table", "write_estimator_table", "write_main_table", "write_plots", "write_tables",
           "write_verdict"]
