"""``python -m edco <command> ...``: the one entry point every Snakemake rule calls.

Subcommands are imported lazily so that ``validate-data`` does not pay for importing
torch, and each module owns its own argument parsing (``cli_<name>(argv)``).

    python -m edco validate-data results/smoke/data/law/train.jsonl
    python -m edco make-data --config config/smoke.yaml --domain law
    python -m edco base-model --config config/smoke.yaml --model qwen3
    python -m edco score --config config/smoke.yaml --domain law --model qwen3 --estimator prefix --out s.parquet
    python -m edco train --config config/smoke.yaml --domain law --model qwen3 --paradigm sft --strategy random --seed 0
    python -m edco evaluate --config config/smoke.yaml --domain law --model qwen3 --checkpoint DIR --out eval.json
    python -m edco table --config config/smoke.yaml
"""

from __future__ import annotations

import importlib
import sys

from edco.errors import UserFacingError

COMMANDS = {
    "validate-data": ("edco.data", "cli_validate", "check JSONL files against the data contract"),
    "make-data": ("edco.data", "cli_make_data", "write a domain's train/test JSONL for a config"),
    "base-model": ("edco.models", "cli_base_model", "build (and base-pretrain) a model"),
    "score": ("edco.estimator", "cli_score", "score a pool with an entropy estimator"),
    "train": ("edco.trainer", "cli_train", "run all curriculum rounds of one run"),
    "evaluate": ("edco.evaluate", "cli_evaluate", "evaluate a checkpoint with lm-eval"),
    "table": ("edco.report", "cli_table", "tables: main, per-level, cost (--cost), compute-matched (--compute), estimator (--estimator)"),
    "plots": ("edco.report", "cli_plots", "plot accuracy, cost, entropy, selections and training curves"),
    "estimator-bench": ("edco.estimator_bench", "cli_estimator_bench", "time and rank agreement of prefix vs full entropy"),
}


# Commands that train, score or evaluate: a GPU-only setting the machine cannot honour stops
# them before any import of a model or data, not inside the first round.
GPU_COMMANDS = {"train", "score", "evaluate", "estimator-bench"}


def _check_gpu_settings(argv: list[str]) -> None:
    import argparse

    from edco.config import check_gpu_settings, load_config

    parser = argparse.ArgumentParser(add_help=False)
    parser.add_argument("--config")
    path = parser.parse_known_args(argv)[0].config
    if path:  # a missing --config is the command's own usage error
        check_gpu_settings(load_config(path), path)


def usage() -> str:
    width = max(map(len, COMMANDS))
    lines = ["usage: python -m edco <command> [options]", "", "commands:"]
    lines += [f"  {name:<{width}}  {help_}" for name, (_, _, help_) in COMMANDS.items()]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if not argv or argv[0] in {"-h", "--help"}:
        print(usage())
        return 0
    name, rest = argv[0], argv[1:]
    if name not in COMMANDS:
        print(f"edco: unknown command {name!r}\n\n{usage()}", file=sys.stderr)
        return 2
    module, func, _ = COMMANDS[name]
    try:
        if name in GPU_COMMANDS:
            _check_gpu_settings(rest)
        return getattr(importlib.import_module(module), func)(rest) or 0
    except UserFacingError as exc:
        print(f"edco {name}: error: {exc}", file=sys.stderr)
        return 1

