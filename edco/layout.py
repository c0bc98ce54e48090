"""Where every artefact of a run lives. The Snakefile and the CLI both use these
functions, so a path is spelled once.

Every function takes plain strings, so the workflow passes Snakemake wildcards through them
(``layout.data_file(RUN, "{domain}", "train")`` is the rule's output pattern).

results/<run>/
  config.yaml                            the validated config every job reads (a rule output)
  data/<domain>/{train,test}.jsonl      data/general/train.jsonl (synthetic world only)
  models/<model>/<base>/                 base model (HF format) + manifest.json, written last;
                                         <base> = shared, or seed<s> (pretrain.per_seed)
  runs/<domain>/<model>/<paradigm>/<strategy>/seed<s>/
      round<r>/{scores.parquet, selection.jsonl, metrics.jsonl, timing.json, done.json}
      final/                             last round's model;  run.json written last
  eval/<domain>/<model>/base/<base>.json round 0: a base model, no fine-tuning
  eval/<domain>/<model>/<paradigm>/<strategy>/seed<s>.json
  estimator/<domain>/<model>/            the estimator benchmark
  tables/<name>.{csv,md,tex,html}  tables/questions.parquet   plots/<name>.png   config.html
  logs/<step>/...log  benchmarks/<step>/...tsv   one log and one Snakemake benchmark per job
"""

from __future__ import annotations

from pathlib import Path


def run_root(run: str) -> Path:
    return Path("results") / run


def resolved_config(run: str) -> Path:
    """The validated, defaults-filled config every job of a run reads."""
    return run_root(run) / "config.yaml"


def data_file(run: str, domain: str, split: str) -> Path:
    return run_root(run) / "data" / domain / f"{split}.jsonl"


def general_file(run: str) -> Path:
    return run_root(run) / "data" / "general" / "train.jsonl"


#: The base model every seed starts from, unless models.<m>.pretrain.per_seed gives seed s its
#: own ("seed<s>"; edco.config.base_label).
SHARED_BASE = "shared"


def model_dir(run: str, model: str, base: str = SHARED_BASE) -> Path:
    return run_root(run) / "models" / model / base


def model_manifest(run: str, model: str, base: str = SHARED_BASE) -> Path:
    return model_dir(run, model, base) / "manifest.json"


def run_dir(run: str, domain: str, model: str, paradigm: str, strategy: str, seed: int) -> Path:
    return run_root(run) / "runs" / domain / model / paradigm / strategy / f"seed{seed}"


def round_dir(run_path: Path, round_index: int) -> Path:
    return Path(run_path) / f"round{round_index}"


def eval_file(run: str, domain: str, model: str, paradigm: str | None = None,
              strategy: str | None = None, seed: int | None = None, base: str = SHARED_BASE) -> Path:
    """A run's evaluation, or (no paradigm) base model ``base``'s."""
    cell = run_root(run) / "eval" / domain / model
    if paradigm is None:
        return cell / "base" / f"{base}.json"
    return cell / paradigm / strategy / f"seed{seed}.json"


def tables_dir(run: str) -> Path:
    return run_root(run) / "tables"


def plots_dir(run: str) -> Path:
    return run_root(run) / "plots"


def estimator_dir(run: str, domain: str, model: str) -> Path:
    """The estimator benchmark of one domain x model: estimator.{csv,md}, estimator_k.{png,pdf}."""
    return run_root(run) / "estimator" / domain / model


def config_page(run: str) -> Path:
    return run_root(run) / "config.html"


def log_file(run: str, step: str, *parts: str) -> Path:
    """logs/<step>/<parts...>.log: one per job."""
    return run_root(run) / "logs" / step / f"{Path(*parts)}.log"


def benchmark_file(run: str, step: str, *parts: str) -> Path:
    """benchmarks/<step>/<parts...>.tsv: Snakemake's wall-clock and peak memory of one job."""
    return run_root(run) / "benchmarks" / step / f"{Path(*parts)}.tsv"


def run_record(run: str, domain: str, model: str, paradigm: str, strategy: str, seed: int | str) -> Path:
    """run.json: written last by a finished run (its existence means the run is complete)."""
    return run_dir(run, domain, model, paradigm, strategy, seed) / "run.json"


# --------------------------------------------------------------------------- report artefacts
# Which tables and plots a run has is edco.report.registry's (from the config alone, without
# pandas: the workflow's controller lists them as rule outputs); their paths are spelled here.

#: Every table is written in these formats: tables/<name>.<format>.
TABLE_FORMATS = ("csv", "md", "tex", "html")


def table_file(run: str, name: str, fmt: str) -> Path:
    return tables_dir(run) / f"{name}.{fmt}"


def questions_file(run: str) -> Path:
    """Every evaluation's per-question answers (Parquet): what every interval is computed from."""
    return tables_dir(run) / "questions.parquet"


def plot_file(run: str, name: str, fmt: str = "png") -> Path:
    return plots_dir(run) / f"{name}.{fmt}"


def bench_run(config: dict) -> tuple[str, str, int] | None:
    """(paradigm, strategy, seed) of the fine-tuned run whose final model the estimator benchmark
    also measures, per domain x model: the first paradigm and seed, ``random`` if in the grid
    (else the first strategy); None when the benchmark measures the base model alone."""
    bench, grid = config["estimator_bench"], config["grid"]
    if not (bench["enabled"] and bench["checkpoint"]):
        return None
    strategy = "random" if "random" in grid["strategies"] else grid["strategies"][0]
    return grid["paradigms"][0], strategy, config["seeds"][0]


def keeps_final(config: dict, paradigm: str, strategy: str, seed: int) -> bool:
    """Whether a finished run keeps its final model after its evaluation: always with
    ``compute.keep_final``, else only the estimator benchmark's run (``bench_run``)."""
    return config["compute"]["keep_final"] or bench_run(config) == (paradigm, strategy, seed)


def has_verdict(config: dict) -> bool:
    """The verdict (tables/verdict.*, plots/verdict.png) needs random in the grid, another
    strategy, and at least two seeds."""
    strategies = config["grid"]["strategies"]
    return "random" in strategies and len(strategies) > 1 and len(config["seeds"]) >= 2
