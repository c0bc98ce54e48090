# EDCO-bench workflow. Loads and validates the config, includes the rules, defines `all`.
#
#   snakemake --cores all --use-conda                          # the paper (GPU cluster)
#   snakemake --cores all --configfile config/smoke.yaml       # embedded default, CPU, minutes
#   snakemake --profile profiles/slurm                         # SLURM
#
# Every rule calls one `python -m edco <command>`, so each step can be run by hand.
from pathlib import Path

from snakemake.utils import min_version

min_version("9.0")


# The paper config is the default; a --configfile replaces it (rather than being merged
# into it, which would mix the paper's models into a smoke run).
if not workflow.overwrite_configfiles:

    configfile: "config/config.yaml"


include: "rules/common.smk"
# GPU-only settings (compute.device: cuda, estimator.backend: vllm, rl.use_vllm, models.*.gpus)
# are checked by each job that needs them, in its own environment, when
# `python -m edco train|score|evaluate|...` starts (edco/cli.py): Snakemake's own Python may
# have neither CUDA nor vLLM (the controller's environment, envs/snakemake.yaml), and a
# data-only run (--until data) needs no GPU.
# Helpers of the estimator and report rules: which tables and plots a run has (edco.report.registry).
include: "rules/report_common.smk"
include: "rules/config.smk"
include: "rules/data.smk"
include: "rules/models.smk"
include: "rules/train.smk"
include: "rules/evaluate.smk"
include: "rules/estimator.smk"
include: "rules/report.smk"


# A baseline that needs a step of its own ships it as baselines/<name>.smk.
for baseline_rules in sorted(Path(workflow.basedir, "baselines").glob("*.smk")):

    include: baseline_rules


rule all:
    default_target: True
    input:
        report_outputs(),
