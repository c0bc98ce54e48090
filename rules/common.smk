# Helpers shared by the rules: the validated config, the grid, artefact paths.
import itertools
import os

from edco import layout
from edco.config import validate_config
from edco.io import write_text

import yaml

CFG = validate_config(config, ", ".join(map(str, workflow.overwrite_configfiles)) or "config/config.yaml")
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


def main_table_outputs():
    tables = layout.tables_dir(RUN)
    return [f"{tables}/main.csv", f"{tables}/main.md"]


def estimator_bench_outputs():
    return [f"{ROOT}/estimator/{d}/{m}/estimator.csv" for d in GRID["domains"] for m in GRID["models"]]


def estimator_table_outputs():
    if not CFG["estimator_bench"]["enabled"]:
        return []
    tables = layout.tables_dir(RUN)
    return [f"{tables}/estimator.csv", f"{tables}/estimator.md"]


def final_checkpoint(wildcards):
    """The model a finished run leaves behind (its last round's checkpoint)."""
    w = wildcards
    return f"{layout.run_dir(RUN, w.domain, w.model, w.paradigm, w.strategy, w.seed)}/final"
