"""``python -m edco <command> ...``: the one entry point every Snakemake rule calls, and the one
place arguments are parsed. A command function parses its arguments, loads the config and
calls the components; it imports what it needs when it runs (through the COMMANDS table), so
``validate-data`` does not pay for importing torch.

    python -m edco validate-data results/smoke/data/law/train.jsonl
    python -m edco make-data --config config/smoke.yaml --domain law
    python -m edco base-model --config config/smoke.yaml --model qwen3
    python -m edco score --config config/smoke.yaml --domain law --model qwen3 --estimator prefix --out s.parquet
    python -m edco train --config config/smoke.yaml --domain law --model qwen3 --paradigm sft --strategy random --seed 0
    python -m edco evaluate --config config/smoke.yaml --domain law --model qwen3 --checkpoint DIR --out eval.json
    python -m edco strategies
    python -m edco estimator-bench --config config/smoke.yaml --domain law --model qwen3 --out-dir /tmp/bench
    python -m edco plan --config config/config.yaml
    python -m edco table --config config/smoke.yaml [--main --levels --cost ... | --all | --config-page]
    python -m edco plots --config config/smoke.yaml [--only NAME] [--pdf]
    python -m edco replicate --study results/cpu_study --replication results/cpu_study_replication
    python -m edco preflight --config config/config.yaml --config config/preflight.yaml
"""

from __future__ import annotations

import argparse
import importlib
import json
import logging
import os
import shutil
import sys
from pathlib import Path

from edco import layout, portable
from edco.config import load_config, load_layers
from edco.errors import UserFacingError

# name -> (component module, command function in this file, one-line help). ``main`` imports
# the module only when the command runs and calls ``function(module, argv)``.
COMMANDS = {
    "validate-data": ("edco.data", "validate_data", "check JSONL files against the data contract"),
    "make-data": ("edco.data", "make_data", "write a domain's train/test JSONL for a config"),
    "base-model": ("edco.trainer.pretrain", "base_model", "build (and base-pretrain) a model, or convert its GGUF"),
    "score": ("edco.estimator", "score", "score a pool with an entropy estimator"),
    "train": ("edco.trainer", "train", "run all curriculum rounds of one run (or several)"),
    "evaluate": ("edco.evaluate", "evaluate", "evaluate a checkpoint with lm-eval"),
    "strategies": ("edco.curriculum", "strategies", "list the curriculum strategies and their options"),
    "plan": ("edco.plan", "plan", "peak GPU memory, GPU-hours and disk of every job, from the config"),
    "table": ("edco.report.tables", "table", "the tables of a run by name (--main, --cost, ..., --all; edco.report.registry)"),
    "plots": ("edco.report.plots", "plots", "plot accuracy, cost, entropy, selections, training curves, the verdict"),
    "replicate": ("edco.report.replication", "replicate", "does a replication repeat a study's claims (pre-registered test)"),
    "estimator-bench": ("edco.estimator_bench", "estimator_bench", "time and rank agreement of prefix vs full entropy"),
    "preflight": ("edco.preflight", "preflight", "every GPU path once at minimum size: measured peak memory vs the plan"),
}


def _parser(command: str, description: str) -> argparse.ArgumentParser:
    return argparse.ArgumentParser(prog=f"python -m edco {command}", description=description)


def _log_info() -> None:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")


def _job_config(path: str, gpu_check: bool = False) -> dict:
    """The validated config of a job; torch threads as ``compute.threads`` says. With
    ``gpu_check``, a GPU-only setting this machine cannot honour stops the job here, before
    any model or data is loaded (edco.gpu)."""
    import torch

    config = load_config(path)
    if gpu_check:
        from edco.gpu import check_gpu_settings

        check_gpu_settings(config, path)
    torch.set_num_threads(config["compute"]["threads"])
    portable.apply_torch(config)
    return config


# --------------------------------------------------------------------------- data
def validate_data(data, argv: list[str]) -> int:
    parser = _parser("validate-data", "Check JSONL files against the data contract (docs/design.md#data-contract).")
    parser.add_argument("paths", nargs="+", type=Path)
    args = parser.parse_args(argv)
    summaries, failures = data.validate_files(args.paths)
    for path, summary in summaries.items():
        print(f"ok    {path}  ({summary})" if summary is not None else f"FAIL  {path}")
    data.raise_if_any(failures)
    return 0


def make_data(data, argv: list[str]) -> int:
    parser = _parser("make-data", "Write a domain's train/test JSONL (or the general split) for a config.")
    parser.add_argument("--config", required=True)
    parser.add_argument("--domain", required=True, help="a domain of the config, or 'general' (synthetic only)")
    args = parser.parse_args(argv)
    config = load_config(args.config)
    written = data.make_data(config, args.domain)
    files = " and ".join(f"{path} ({counts})" for path, counts in written)
    print(f"make-data: {args.domain} ({config['data']['source']}): wrote {files}")
    return 0


# --------------------------------------------------------------------------- models
def base_model(pretrain, argv: list[str]) -> int:
    parser = _parser("base-model", "Build and base-pretrain a tiny model, convert a GGUF, or record a hub id.")
    parser.add_argument("--config", required=True)
    parser.add_argument("--model", required=True, help="a key of the config's `models` section")
    parser.add_argument("--base", default=layout.SHARED_BASE,
                        help="'shared' (default), or 'seed<s>': run seed s's own base model (pretrain.per_seed)")
    parser.add_argument("--no-progress", action="store_true", help="no tqdm bar (logs only)")
    args = parser.parse_args(argv)
    _log_info()
    config = _job_config(args.config)
    manifest = pretrain.write_base_model(config, args.model, progress=not args.no_progress, base=args.base)
    out = layout.model_dir(config["run"], args.model, args.base)
    if manifest["source"] == "hub":
        print(f"base-model: {args.model} is hub model {manifest['path']}; wrote {out / pretrain.MANIFEST}")
        return 0
    if manifest["source"] == "gguf":
        print(f"base-model: {args.model}: {manifest['params']:,} parameters ({manifest['arch']}) from "
              f"{manifest['gguf']['file']}, standing in for {manifest['hub_id']} -> {out}")
        return 0
    loss = manifest["final_loss"] if manifest["final_loss"] is None else round(manifest["final_loss"], 4)
    print(f"base-model: {args.model}: {manifest['params']:,} parameters, pretrain "
          f"{manifest['pretrain_seconds']:.1f} s, final loss {loss} -> {out}")
    return 0


# --------------------------------------------------------------------------- estimator
def score(estimator, argv: list[str]) -> int:
    parser = _parser("score", "Score a domain's training pool with an entropy estimator.")
    parser.add_argument("--config", required=True, help="run configuration (YAML)")
    parser.add_argument("--domain", required=True, help="domain whose train split is scored")
    parser.add_argument("--model", required=True, help="model name (a key of `models` in the config)")
    parser.add_argument("--estimator", required=True, choices=estimator.KINDS, help="which estimator")
    parser.add_argument("--out", required=True, help="output Parquet (id, score, n_tokens, seconds)")
    parser.add_argument("--checkpoint", help="score this checkpoint directory instead of the base model")
    parser.add_argument("--seed", type=int, default=0, help="sampling seed")
    args = parser.parse_args(argv)
    config = _job_config(args.config, gpu_check=True)
    scores = estimator.score_to_file(config, args.domain, args.model, args.estimator, args.out,
                                     checkpoint=args.checkpoint, seed=args.seed)
    total = sum(s["seconds"] for s in scores)
    print(f"{args.estimator}: {len(scores)} samples, {total / max(1, len(scores)):.4f} s/sample -> {args.out}")
    return 0


# --------------------------------------------------------------------------- trainer
def train(trainer, argv: list[str]) -> int:
    parser = _parser("train", "Run all curriculum rounds of one run (edco.trainer.run_rounds).")
    parser.add_argument("--config", required=True)
    parser.add_argument("--domain", required=True)
    parser.add_argument("--model", required=True)
    parser.add_argument("--paradigm", required=True, choices=trainer.PARADIGMS)
    parser.add_argument("--strategy", required=True, action="append",
                        help="repeatable: several strategies run one after the other in this process")
    parser.add_argument("--seed", required=True, type=int, action="append",
                        help="repeatable: every strategy runs with every seed, in this process")
    parser.add_argument("--evaluate", action="store_true",
                        help="also evaluate each run's final model (saves a process start per run)")
    args = parser.parse_args(argv)
    _log_info()
    if args.evaluate:
        os.environ.setdefault("HF_DATASETS_OFFLINE", "1")  # lm-eval reads the run's own test file
    from edco import curriculum

    config = _job_config(args.config, gpu_check=True)
    curriculum.check_strategies(config, args.strategy)  # a bad name or option stops before any run starts
    runs = [(strategy, seed) for strategy in args.strategy for seed in args.seed]
    # One evaluation, not one per GPU.
    evaluate_here = args.evaluate and trainer.Processes(config["compute"]["device"]).is_main
    log = logging.getLogger("edco.trainer")
    from edco import plan

    if warning := plan.train_scratch_warning(config, [(args.domain, args.model, args.paradigm, *run) for run in runs]):
        log.warning(warning)  # compute.scratch_dir: null on a GPU node: model saves to /tmp, often RAM
    for i, (strategy, seed) in enumerate(runs, 1):
        log.info("run %d/%d: %s %s %s %s seed %d", i, len(runs), args.domain, args.model, args.paradigm, strategy, seed)
        path = trainer.run_rounds(config, args.domain, args.model, args.paradigm, strategy, seed)
        log.info("done: %s (final model in %s)", path / "run.json", path / "final")
        if evaluate_here:
            from edco.evaluate import evaluate_to_file

            out = layout.eval_file(config["run"], args.domain, args.model, args.paradigm, strategy, seed)
            evaluate_to_file(config, args.domain, args.model, str(_final_model(path)), out)
            if not layout.keeps_final(config, args.paradigm, strategy, seed):
                shutil.rmtree(path / "final")  # compute.keep_final: false
    return 0


def _final_model(run_path: Path) -> Path:
    """A finished run's final model, or an error saying that compute.keep_final removed it."""
    final = run_path / "final"
    if not final.is_dir():
        raise UserFacingError(f"{final}: the final model was removed after its evaluation (compute.keep_final: false); "
                              f"delete {run_path} to train the run again")
    return final


def strategies(curriculum, argv: list[str]) -> int:
    parser = _parser("strategies", "List the registered curriculum strategies (baselines/*.py) and their options "
                                   "(set under strategy_options.<strategy> in a config).")
    parser.parse_args(argv)
    names = curriculum.available_strategies()
    width = max(map(len, names))
    for name in names:
        cls = curriculum.get_strategy(name)
        print(f"{name:<{width}}  {cls.description}")
        defaults = {option: spec["default"] for option, spec in cls.options.items()}
        print(f"{'':<{width}}    cost at the default options: {cls.cost(defaults).describe()}")
        for option, spec in cls.options.items():
            print(f"{'':<{width}}    {option} (default {json.dumps(spec['default'])}): {spec['description']}")
    for path, why in curriculum.broken_baselines().items():
        print(f"broken: {path}: {why}", file=sys.stderr)
    return 0


# --------------------------------------------------------------------------- resource plan
def plan(planner, argv: list[str]) -> int:
    parser = _parser("plan", "The resource plan of a config: peak GPU memory per job (and what peaks), GPU-hours "
                             "and disk, computed from the config; the verdict against compute.gpu_memory_gb.")
    parser.add_argument("--config", default="config/config.yaml", help="run configuration (default: the paper's)")
    parser.add_argument("--out-dir", type=Path, help="also write plan.md and plan.csv here")
    parser.add_argument("--readme", type=Path, help="rewrite this file's marked plan block (README.md)")
    parser.add_argument("--check", action="store_true",
                        help="exit 1, naming each job that does not fit and the settings that would")
    args = parser.parse_args(argv)
    config = load_config(args.config)  # no torch: the plan is config arithmetic
    result = planner.make_plan(config)
    print(planner.markdown(result, args.config), end="")
    if args.out_dir:
        for path in planner.write_plan(result, args.config, args.out_dir):
            print(f"wrote {path}", file=sys.stderr)
    if args.readme:
        planner.update_readme(result, args.readme)
        print(f"rewrote the plan block of {args.readme}", file=sys.stderr)
    if args.check:
        planner.check_plan(config, args.config)
    return 0


# --------------------------------------------------------------------------- evaluation
def evaluate(evaluation, argv: list[str]) -> int:
    parser = _parser("evaluate", "Evaluate a checkpoint on a domain's test split with lm-eval.")
    parser.add_argument("--config", required=True)
    parser.add_argument("--domain", required=True, action="append",
                        help="repeatable; with several domains, outputs go to their standard paths")
    parser.add_argument("--model", required=True, help="model name (config key)")
    parser.add_argument("--checkpoint", required=True, help="a checkpoint directory, or 'base'")
    parser.add_argument("--base", default=layout.SHARED_BASE,
                        help="with --checkpoint base: which base model, 'shared' or 'seed<s>' (pretrain.per_seed)")
    parser.add_argument("--out", help="output JSON (one domain only); default: the standard eval path")
    args = parser.parse_args(argv)
    if args.out and len(args.domain) > 1:
        parser.error("--out takes one --domain")
    if not args.out and args.checkpoint != "base":
        parser.error("--out is required for a checkpoint other than 'base'")
    _log_info()
    os.environ.setdefault("HF_DATASETS_OFFLINE", "1")  # lm-eval reads the run's own test file
    config = _job_config(args.config, gpu_check=True)
    for domain in args.domain:
        out = args.out or layout.eval_file(config["run"], domain, args.model, base=args.base)
        evaluation.evaluate_to_file(config, domain, args.model, args.checkpoint, out, base=args.base)
    return 0


# --------------------------------------------------------------------------- estimator benchmark
def estimator_bench(bench, argv: list[str]) -> int:
    parser = _parser("estimator-bench", "Time and rank agreement of prefix vs full entropy on a domain's training "
                                        "pool, on the base model and any checkpoints (edco.estimator_bench).")
    parser.add_argument("--config", required=True, help="run configuration (YAML)")
    parser.add_argument("--domain", required=True, help="domain whose training pool is scored")
    parser.add_argument("--model", required=True, help="model name (a key of `models`); its base model is measured")
    parser.add_argument("--checkpoint", action="append", default=[], help="also measure this checkpoint (repeatable)")
    parser.add_argument("--out-dir", required=True, help="where estimator.{csv,md} and estimator_k.{png,pdf} go")
    parser.add_argument("--seed", type=int, default=0, help="sampling seed")
    parser.add_argument("--limit", type=int, default=None, help="a seeded random N of the pool samples (quick look)")
    parser.add_argument("--repeats", type=int, default=3, help="repeats of the batched vs one-at-a-time timing")
    parser.add_argument("--throughput-samples", type=int, default=None,
                        help="samples in the batched vs one-at-a-time timing (default: 4 x batch size, capped by the pool)")
    parser.add_argument("--no-progress", action="store_true", help="no tqdm bars")
    args = parser.parse_args(argv)
    config = _job_config(args.config, gpu_check=True)
    answers = None
    if config["estimator_bench"]["validity"]:
        os.environ.setdefault("HF_DATASETS_OFFLINE", "1")  # lm-eval reads the benchmarked questions from a file
        answers = _pool_answers(config, args.model)
    paths = bench.run_bench(config, args.config, args.domain, args.model, args.checkpoint, args.out_dir, args.seed,
                            args.limit, args.repeats, args.throughput_samples, not args.no_progress, answers)
    print(f"estimator-bench: wrote {', '.join(map(str, paths))}", file=sys.stderr)
    return 0


def _pool_answers(config: dict, model_name: str):
    """The estimator benchmark's validity labels: a model's answers to the benchmarked pool
    questions, evaluated as the test split is (edco.evaluate, every mode of evaluate.modes, no
    limit), as ``(model, tokenizer, records) -> {mode: {id: correct}}``. Wired here: the
    benchmark (a component) does not import the evaluation (another)."""
    import tempfile

    from edco import io
    from edco.evaluate import evaluate_model

    settings = {**config, "evaluate": {**config["evaluate"], "limit": None}}

    def answers(model, tokenizer, records: list[dict]) -> dict[str, dict[str, bool]]:
        with tempfile.TemporaryDirectory(prefix="edco-bench-answers-") as tmp:
            questions = Path(tmp) / "pool.jsonl"
            io.write_jsonl(questions, records)
            report = evaluate_model(model, tokenizer, settings, model_name, "pool", questions)
        return {mode: {q["id"]: q[mode]["correct"] for q in report["questions"] if mode in q}
                for mode in report["summary"]}

    return answers


# --------------------------------------------------------------------------- preflight
def preflight(checks, argv: list[str]) -> int:
    parser = _parser("preflight", "Every GPU path of a run once, at minimum size, on one GPU: an SFT round, scoring "
                                  "between rounds, a GRPO round, evaluation, the estimator benchmark; measured peak "
                                  "memory per phase beside the plan's, failing where measured > planned + 10 % "
                                  "(edco.preflight).")
    parser.add_argument("--config", required=True, action="append",
                        help="repeatable: config files layered in order, as snakemake --configfile layers them "
                             "(config/config.yaml, then config/preflight.yaml)")
    parser.add_argument("--model", action="append", help="only this model (repeatable; default: grid.models)")
    args = parser.parse_args(argv)
    _log_info()
    os.environ.setdefault("HF_DATASETS_OFFLINE", "1")  # lm-eval reads the run's own test file
    import torch

    config = load_layers(args.config)  # no GPU check: a phase whose library is absent is skipped, and said so
    torch.set_num_threads(config["compute"]["threads"])
    portable.apply_torch(config)
    rows = checks.run_preflight(config, " + ".join(args.config), args.model, _pool_answers)
    print(checks.markdown(rows, config["compute"]["device"]), end="")
    print(f"preflight: wrote {layout.run_root(checks.RUN) / 'preflight'}/preflight.{{csv,md}}", file=sys.stderr)
    if problem := checks.failures(rows):
        raise UserFacingError(problem)
    return 0


# --------------------------------------------------------------------------- reporting
def table(tables, argv: list[str]) -> int:
    from edco.report.config_page import write_config_page
    from edco.report.registry import TABLES, table_names

    parser = _parser("table", "Tables of a finished grid (edco.report.registry), as CSV, Markdown, LaTeX and HTML; "
                              f"without a name: {', '.join(tables.DEFAULT)}.")
    parser.add_argument("--config", required=True)
    for name, spec in TABLES.items():
        parser.add_argument(f"--{name}", action="append_const", dest="names", const=name, help=spec.help)
    parser.add_argument(f"--{tables.QUESTIONS}", action="append_const", dest="names", const=tables.QUESTIONS,
                        help="tables/questions.parquet: every evaluation's per-question answers")
    parser.add_argument("--all", action="store_true", help="every table the run has, and questions.parquet")
    parser.add_argument("--config-page", action="store_true",
                        help="results/<run>/config.html: the config as the HTML report shows it")
    args = parser.parse_args(argv)
    _log_info()
    config = load_config(args.config)
    if args.config_page:
        print(write_config_page(config, args.config))
        return 0
    names = [tables.QUESTIONS, *table_names(config)] if args.all else list(dict.fromkeys(args.names or tables.DEFAULT))
    for name in names:
        paths = tables.write_tables(config, name)
        logging.getLogger("edco.report").info("wrote %s", ", ".join(map(str, paths)))
        markdown = [path for path in paths if path.suffix == ".md"]
        if markdown:
            print(markdown[0].read_text(encoding="utf-8"))
    return 0


def plots(plotting, argv: list[str]) -> int:
    parser = _parser("plots", "Plots of a finished grid (edco.report): PNG for the report.")
    parser.add_argument("--config", required=True)
    parser.add_argument("--only", action="append", help="only this plot (repeatable); default: every plot")
    parser.add_argument("--pdf", action="store_true", help="a PDF (vector, for papers) beside each PNG")
    args = parser.parse_args(argv)
    _log_info()
    for path in plotting.write_plots(load_config(args.config), args.only, ("png", "pdf") if args.pdf else ("png",)):
        print(path)
    return 0


def replicate(replication, argv: list[str]) -> int:
    parser = _parser("replicate", "The pre-registered replication test (edco.report.replication): does a "
                                  "replication's verdict table repeat the study's claims (or its lead)?")
    parser.add_argument("--study", type=Path, required=True, help="the study's run directory or its tables/verdict.csv")
    parser.add_argument("--replication", type=Path, required=True,
                        help="the replication's run directory or its tables/verdict.csv")
    parser.add_argument("--out", type=Path,
                        help="write <out>.csv and <out>.md (default: tables/replication.* of the replication)")
    args = parser.parse_args(argv)
    csv, md = replication.write_replication(args.study, args.replication, args.out)
    print(md.read_text(encoding="utf-8"))
    print(f"replicate: wrote {csv}, {md}", file=sys.stderr)
    return 0


# --------------------------------------------------------------------------- main
def _portable_env(argv: list[str], process: bool) -> None:
    """compute.portable_math's environment (edco.portable), set before the command imports
    torch (torch and MKL read it when they load), and the command started again with glibc's
    setting, which only a new process reads. Only in a process of its own (``python -m
    edco``): a call inside another program leaves its environment alone (the job's manifest
    then says portable math was not in effect). A command without --config has none."""
    paths = [argv[i + 1] for i, arg in enumerate(argv[:-1]) if arg == "--config"]
    paths += [arg.split("=", 1)[1] for arg in argv if arg.startswith("--config=")]
    if process and paths and all(Path(p).is_file() for p in paths) and portable.apply_env(load_layers(paths)):
        portable.reexec()


def usage() -> str:
    width = max(map(len, COMMANDS))
    lines = ["usage: python -m edco <command> [options]", "", "commands:"]
    lines += [f"  {name:<{width}}  {help_}" for name, (_, _, help_) in COMMANDS.items()]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    process = argv is None  # python -m edco, not a call inside another program
    argv = sys.argv[1:] if argv is None else argv
    if not argv or argv[0] in {"-h", "--help"}:
        print(usage())
        return 0
    name, rest = argv[0], argv[1:]
    if name not in COMMANDS:
        print(f"edco: unknown command {name!r}\n\n{usage()}", file=sys.stderr)
        return 2
    module, function, _ = COMMANDS[name]
    try:
        _portable_env(rest, process)
        return globals()[function](importlib.import_module(module), rest) or 0
    except UserFacingError as exc:
        print(f"edco {name}: error: {exc}", file=sys.stderr)
        return 1
