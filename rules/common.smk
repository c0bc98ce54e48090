# Helpers shared by the rules: the validated config, the grid, and every artefact path,
# generated from edco.layout (a path is spelled once, there). Imports stay light: the
# Snakefile is parsed by the controller's environment (Snakemake and its executor plugin),
# which has no torch; the jobs' own environments (envs/) import the rest.
import itertools
import sys

import yaml
from edco import layout
from edco.config import base_label, base_labels, typed_overrides, validate_config
from snakemake.utils import update_config

# `--config grid='{beyond_paper: true}'` reaches `config` as strings ('true'); give nested
# overrides their YAML types again before validating.
update_config(config, typed_overrides(workflow.config_settings.overwrite_config))
CONFIG_SOURCE = ", ".join(map(str, workflow.overwrite_configfiles)) or "config/config.yaml"
CFG = validate_config(config, CONFIG_SOURCE)
RUN = CFG["run"]
GRID = CFG["grid"]
SEEDS = CFG["seeds"]
SYNTHETIC = CFG["data"]["source"] == "synthetic"
# torch threads of a job (compute.threads); Snakemake counts them against --cores.
THREADS = CFG["compute"]["threads"]

# Every job reads the validated config (defaults filled, --config overrides applied) from
# this file, written by the `resolved_config` rule: a dry run writes nothing.
RESOLVED_CONFIG = str(layout.resolved_config(RUN))
RESOLVED_CONFIG_TEXT = yaml.safe_dump(CFG, sort_keys=False)

# Unknown strategy names and bad strategy options stop the workflow here, before any job starts.
from edco.curriculum import check_strategies

check_strategies(CFG)


# Conda environments (envs/README comments): the rules that load a model (train, evaluate,
# score, base model) run in the CUDA + vLLM environment when the config computes on GPUs and
# in the CPU-torch one otherwise; a rule's `conda:` is fixed when the workflow is parsed, so
# the config decides here. Data, tables and plots never import torch: a small environment.
CUDA = CFG["compute"]["device"] == "cuda"
MODEL_ENV = "../envs/gpu.yaml" if CUDA else "../envs/edco.yaml"
LIGHT_ENV = "../envs/light.yaml"
# The `gpu` resource (snakemake-executor-plugin-slurm turns it into --gpus; locally it is
# what --resources gpu=N limits): one GPU per scoring / evaluation job on a GPU config.
JOB_GPUS = 1 if CUDA else 0

# The resource plan (edco/plan.py: config arithmetic, no torch, so the controller's environment
# runs it). On a GPU config whose planned peak of some job exceeds compute.gpu_memory_gb, parsing
# warns, naming the job and the settings that would fit, and a real run that would start a GPU
# job stops before its first job (the onstart handler runs after the DAG is built, never in a dry run; a
# data-only run passes). `python -m edco plan --config <config>` prints the whole plan.
from edco.plan import PlanError, make_plan, refusal

PLAN_REFUSAL = refusal(make_plan(CFG), CONFIG_SOURCE) if CUDA else None
if PLAN_REFUSAL:
    print(f"Warning: {PLAN_REFUSAL}\nA real run stops before its first GPU job.", file=sys.stderr)
GPU_RULES = ("train", "evaluate_base", "estimator_bench")

# What the run needs from outside the checkout (edco/external.py: staged data and tokenizer
# files, gated Hub ids, the NVIDIA driver; standard library, no network): a dry run warns; a real
# run stops before its first job, naming every missing thing at once, when a job that needs one
# is to run (a data-only run needs no model, and only a local run of GPU jobs the driver).
from edco.external import ExternalError, blocking, message, needs

EXTERNAL = needs(CFG, driver=False)
if EXTERNAL and workflow.is_main_process:
    print(
        f"Warning: {message([need.problem for need in EXTERNAL], CONFIG_SOURCE)}\n"
        "A real run stops before the first job that needs one of them.",
        file=sys.stderr,
    )


onstart:
    needrun = [(job.rule.name, job.wildcards_dict) for job in workflow.dag.needrun_jobs()]
    if PLAN_REFUSAL and any(name in GPU_RULES for name, _ in needrun):
        raise PlanError(PLAN_REFUSAL)
    missing = blocking(needs(CFG, local_exec=workflow.local_exec), needrun)
    if missing:
        raise ExternalError(message(missing, CONFIG_SOURCE))


# A job that SLURM killed for its memory: the plugin says only "FAILED" (or "OUT_OF_MEMORY");
# name the rule and the mem_mb request to raise (edco/slurm.py reads Snakemake's log).
onerror:
    from edco.slurm import report_memory_kills

    report_memory_kills(log)


def gpu_lock(gpus):
    """The prefix that gives a GPU job its own free GPUs of the node (edco/gpulock.py: a lock
    per GPU, CUDA_VISIBLE_DEVICES set to the ones taken; a preset one listing exactly the job's
    GPUs passes through, one listing more is narrowed to a locked subset of it):
    Snakemake counts the gpu resource but never says which GPU a job gets, so every job would
    run on device 0. Nothing on a CPU config."""
    return f"python -m edco.gpulock {gpus} -- " if gpus else ""


wildcard_constraints:
    domain="|".join(GRID["domains"]),
    model="|".join(CFG["models"]),
    paradigm="sft|rl",
    base=rf"{layout.SHARED_BASE}|seed\d+",
    strategy="|".join(GRID["strategies"]),
    seed=r"\d+",


RUN_KEYS = ("domain", "model", "paradigm", "strategy", "seed")
WILDCARDS = {key: f"{{{key}}}" for key in RUN_KEYS}


def grid_runs():
    """(domain, model, paradigm, strategy, seed) of every run of the grid."""
    return itertools.product(GRID["domains"], GRID["models"], GRID["paradigms"], GRID["strategies"], SEEDS)


def run_json(domain, model, paradigm, strategy, seed):
    return str(layout.run_record(RUN, domain, model, paradigm, strategy, seed))


def eval_json(domain, model, paradigm=None, strategy=None, seed=None, base=layout.SHARED_BASE):
    return str(layout.eval_file(RUN, domain, model, paradigm, strategy, seed, base))


def all_run_outputs():
    return [run_json(*keys) for keys in grid_runs()]


def all_eval_outputs():
    """Every base model's evaluation per domain x model (one, or one per seed with
    pretrain.per_seed), and every run's."""
    base = [eval_json(d, m, base=b) for d in GRID["domains"] for m in GRID["models"] for b in base_labels(CFG, m)]
    return base + [eval_json(*keys) for keys in grid_runs()]


def base_manifest(model, seed):
    """The manifest of the base model a run of ``seed`` starts from."""
    return str(layout.model_manifest(RUN, model, base_label(CFG, model, seed)))


# --------------------------------------------------------------------------- the train job
# compute.job says how many runs one train job trains (and evaluates): the run keys it
# leaves as wildcards name the job; the others are expanded over the whole grid.
JOB_WILDCARDS = {
    "run": RUN_KEYS,
    "cell": ("domain", "model", "paradigm", "strategy"),
    "block": ("domain", "model", "paradigm"),
}[CFG["compute"]["job"]]
EXPANDED = {"strategy": GRID["strategies"], "seed": SEEDS}


def per_train_job(path_of):
    """``path_of(domain, model, paradigm, strategy, seed)`` for every run of one train job:
    the job's own keys stay wildcards, the rest are expanded."""
    fixed = {key: WILDCARDS[key] for key in RUN_KEYS if key in JOB_WILDCARDS}
    free = [key for key in RUN_KEYS if key not in JOB_WILDCARDS]
    return [
        path_of(**fixed, **dict(zip(free, values))) for values in itertools.product(*(EXPANDED[key] for key in free))
    ]


def train_job_name():
    """The job's name under logs/train/ and benchmarks/train/: its wildcards as a path."""
    return [f"seed{WILDCARDS[key]}" if key == "seed" else WILDCARDS[key] for key in JOB_WILDCARDS]


def train_job_models(wildcards):
    """The base model(s) the job's runs start from: one shared, or one per seed."""
    seeds = [int(wildcards.seed)] if "seed" in JOB_WILDCARDS else SEEDS
    return sorted({base_manifest(wildcards.model, seed) for seed in seeds})


def train_job_runs(wildcards):
    """--strategy/--seed arguments: the job's own, or every one of the grid."""
    strategies = [wildcards.strategy] if "strategy" in JOB_WILDCARDS else GRID["strategies"]
    seeds = [wildcards.seed] if "seed" in JOB_WILDCARDS else SEEDS
    return " ".join([*(f"--strategy {s}" for s in strategies), *(f"--seed {s}" for s in seeds)])


def train_gpus(wildcards):
    """GPUs of a training job: the model's `gpus` (at least one on a GPU config)."""
    return max(1, CFG["models"][wildcards.model]["gpus"]) if CUDA else 0


def edco_launcher(wildcards):
    """`python -m edco`, or accelerate's launcher with one process per GPU when the model
    asks for more than one (data-parallel full fine-tuning, bf16), behind the job's GPU lock.
    `--main_process_port 0`: a free port per job; accelerate's default 29500 collides when
    two multi-GPU jobs start on one node together (its in-use check is racy)."""
    gpus = CFG["models"][wildcards.model]["gpus"]
    launcher = "python -m edco"
    if gpus > 1:
        launcher = (
            f"accelerate launch --multi_gpu --num_processes {gpus} --num_machines 1 --main_process_port 0"
            " --mixed_precision bf16 --dynamo_backend no -m edco"
        )
    return gpu_lock(train_gpus(wildcards)) + launcher


# --------------------------------------------------------------------------- base models
def base_model_inputs(wildcards):
    if CFG["models"][wildcards.model]["source"] != "tiny":
        return []
    # The tokenizer is trained on training text only (never a test split).
    general = [str(layout.general_file(RUN))] if SYNTHETIC else []
    return general + [str(layout.data_file(RUN, d, "train")) for d in GRID["domains"]]
