# Helpers shared by the rules: the validated config, the grid, artefact paths.
import itertools
import os

from edco import layout
from edco.config import check_gpu_settings, typed_overrides, validate_config
from edco.io import write_text
from snakemake.utils import update_config

import yaml

# `--config grid='{beyond_paper: true}'` reaches `config` as strings ('true'); give nested
# overrides their YAML types again before validating.
update_config(config, typed_overrides(workflow.config_settings.overwrite_config))
CONFIG_SOURCE = ", ".join(map(str, workflow.overwrite_configfiles)) or "config/config.yaml"
CFG = validate_config(config, CONFIG_SOURCE)
RUN = CFG["run"]
ROOT = str(layout.run_root(RUN))
GRID = CFG["grid"]
SYNTHETIC = CFG["data"]["source"] == "synthetic"

# Jobs read the validated config (defaults filled, --config overrides applied) from one
# file. It is rewritten only when its content changes, so its mtime stays put otherwise.
RESOLVED_CONFIG = f"{ROOT}/config.yaml"
_resolved = yaml.safe_dump(CFG, sort_keys=False)
if not os.path.exists(RESOLVED_CONFIG) or open(RESOLVED_CONFIG).read() != _resolved:
    write_text(RESOLVED_CONFIG, _resolved)

# Unknown strategy names stop the workflow here, before any job starts.
from edco.curriculum import get_strategy

for _strategy in GRID["strategies"]:
    get_strategy(_strategy)


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


def train_gpus(wildcards):
    """GPUs of a training job: the model's `gpus` (at least one on a GPU config)."""
    return max(1, CFG["models"][wildcards.model]["gpus"]) if CUDA else 0


def edco_launcher(wildcards):
    """`python -m edco`, or accelerate's launcher with one process per GPU when the model
    asks for more than one (data-parallel full fine-tuning, bf16)."""
    gpus = CFG["models"][wildcards.model]["gpus"]
    if gpus > 1:
        return (
            f"accelerate launch --multi_gpu --num_processes {gpus} --num_machines 1 --mixed_precision bf16"
            " --dynamo_backend no -m edco"
        )
    return "python -m edco"


wildcard_constraints:
    domain="|".join(GRID["domains"]),
    model="|".join(CFG["models"]),
    paradigm="sft|rl",
    seed=r"\d+",


def cells():
    """Every (domain, model, paradigm, strategy) of the grid."""
    return itertools.product(GRID["domains"], GRID["models"], GRID["paradigms"], GRID["strategies"])


def run_json(domain, model, paradigm, strategy, seed):
    return f"{layout.run_dir(RUN, domain, model, paradigm, strategy, seed)}/run.json"


def eval_json(domain, model, paradigm=None, strategy=None, seed=None):
    return str(layout.eval_file(RUN, domain, model, paradigm, strategy, seed))


def all_eval_outputs():
    base = [eval_json(d, m) for d in GRID["domains"] for m in GRID["models"]]
    runs = [eval_json(d, m, p, s, seed) for d, m, p, s in cells() for seed in CFG["seeds"]]
    return base + runs


def all_run_outputs():
    return [run_json(*cell, seed) for cell in cells() for seed in CFG["seeds"]]


def final_checkpoint(wildcards):
    """The model a finished run leaves behind (its last round's checkpoint)."""
    w = wildcards
    return f"{layout.run_dir(RUN, w.domain, w.model, w.paradigm, w.strategy, w.seed)}/final"


# rules/models.smk
def base_model_inputs(wildcards):
    if CFG["models"][wildcards.model]["source"] != "tiny":
        return []
    # The tokenizer is trained on training text only (never a test split).
    general = [f"{ROOT}/data/general/train.jsonl"] if SYNTHETIC else []
    return general + [str(layout.data_file(RUN, d, "train")) for d in GRID["domains"]]
