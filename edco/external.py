"""What a run needs from outside the checkout, checked before the DAG starts.

A run reads things no rule makes: staged files (``data.local`` files, such as the paper's
JEC-QA JSONL; a tiny model's real tokenizer files), gated Hugging Face ids (a model or dataset
whose terms must be accepted and whose download needs a token), and, on a GPU config, an NVIDIA
driver new enough for the CUDA build of ``envs/gpu.yaml``'s torch. Each job checks its own
input when it starts, but that is the first job that needs it, possibly hours in. The workflow
asks ``needs(config)`` when it is parsed (rules/common.smk): a dry run warns, and a real run stops
in its onstart handler, before any job, with every missing thing in one message, when a job
that needs one of them is to run (``blocking``; a data-only run needs no model).

Standard library only, and no network: Snakemake's controller environment has no torch and no
huggingface_hub (envs/snakemake.yaml), and a run may be offline. So a Hub id counts as
reachable when it is in the local Hugging Face cache (a dataset: or in ``datasets``' own);
otherwise, under ``HF_HUB_OFFLINE``, it is missing; otherwise a gated one (``gated: true`` in
the config) needs a token (``HF_TOKEN`` or the file ``hf auth login`` writes). Whether that token's account accepted the terms only
the Hub knows: the first download says. Paths and variables follow huggingface_hub 1.x
(``huggingface_hub.constants``); tests compare them with the installed library's.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from dataclasses import dataclass, field
from pathlib import Path

from edco.config import domain_source
from edco.errors import UserFacingError

# envs/gpu.yaml pins torch==2.13.0 from PyPI, a CUDA 13 build, which needs NVIDIA driver >= 580
# (NVIDIA's CUDA toolkit release notes; edco/devices.py MIN_DRIVER, the same figure a job checks).
GPU_ENV_CUDA, GPU_ENV_MIN_DRIVER = 13, 580
# The rules whose jobs load a model (and run on a GPU on a GPU config).
MODEL_RULES = ("train", "evaluate_base", "estimator_bench")
TRUE = {"1", "ON", "YES", "TRUE"}  # huggingface_hub's ENV_VARS_TRUE_VALUES


class ExternalError(UserFacingError):
    """The run lacks something no rule makes; the message names each and what to do."""


@dataclass(frozen=True)
class Need:
    """A missing thing: ``problem`` names it and what to do; jobs of ``rules`` whose wildcards
    match ``wildcards`` need it."""

    problem: str
    rules: tuple[str, ...]
    wildcards: dict = field(default_factory=dict)

    def needed_by(self, rule: str, wildcards: dict) -> bool:
        return rule in self.rules and all(wildcards.get(k, v) == v for k, v in self.wildcards.items())


# --------------------------------------------------------------------------- the Hub
def _hf_home(environ: dict) -> Path:
    default = os.path.join(environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache"),
                           "huggingface")
    return Path(os.path.expanduser(os.path.expandvars(environ.get("HF_HOME") or default)))


def hub_cache(environ: dict) -> Path:
    """``HF_HUB_CACHE`` (or ``HUGGINGFACE_HUB_CACHE``), else ``$HF_HOME/hub``."""
    path = environ.get("HF_HUB_CACHE") or environ.get("HUGGINGFACE_HUB_CACHE") or str(_hf_home(environ) / "hub")
    return Path(os.path.expanduser(os.path.expandvars(path)))


def token_path(environ: dict) -> Path:
    """``HF_TOKEN_PATH``, else ``$HF_HOME/token``: the file ``hf auth login`` writes."""
    path = environ.get("HF_TOKEN_PATH") or str(_hf_home(environ) / "token")
    return Path(os.path.expanduser(os.path.expandvars(path)))


def has_token(environ: dict) -> bool:
    """A Hub token: ``HF_TOKEN`` (or ``HUGGING_FACE_HUB_TOKEN``), else a non-empty token file."""
    if (environ.get("HF_TOKEN") or environ.get("HUGGING_FACE_HUB_TOKEN") or "").strip():
        return True
    try:
        return bool(token_path(environ).read_text().strip())
    except OSError:
        return False


def offline(environ: dict, kind: str) -> bool:
    """Does the job's library refuse the network? (datasets: ``HF_DATASETS_OFFLINE`` first)"""
    hub = (environ.get("HF_HUB_OFFLINE") or environ.get("TRANSFORMERS_OFFLINE") or "").upper() in TRUE
    if kind == "dataset" and environ.get("HF_DATASETS_OFFLINE") is not None:
        return environ["HF_DATASETS_OFFLINE"].upper() in TRUE
    return hub


def datasets_cache_dir(hub_id: str, environ: dict) -> Path:
    """Where ``datasets`` keeps a dataset it has prepared (``HF_DATASETS_CACHE``, else
    ``$HF_HOME/datasets``; ``org___snake_case_name``), which it reads offline without the Hub
    files (datasets 5.2, ``load.CachedDatasetModuleFactory``)."""
    root = environ.get("HF_DATASETS_CACHE") or str(_hf_home(environ) / "datasets")
    *namespace, name = hub_id.split("/")
    name = re.sub(r"([a-z\d])([A-Z])", r"\1_\2", re.sub(r"([A-Z]+)([A-Z][a-z])", r"\1_\2", name)).lower()
    return Path(os.path.expanduser(os.path.expandvars(root))) / "___".join([*namespace, name])


def cached(hub_id: str, kind: str, environ: dict) -> bool:
    """Is ``hub_id`` (a "model" or "dataset") in the local Hub cache (a snapshot), or, for a
    dataset, prepared in ``datasets``' own cache?"""
    snapshots = hub_cache(environ) / f"{kind}s--{hub_id.replace('/', '--')}" / "snapshots"
    if snapshots.is_dir() and any(snapshots.iterdir()):
        return True
    return kind == "dataset" and any(p.is_dir() for p in datasets_cache_dir(hub_id, environ).glob("*/*/*"))


def hub_problem(hub_id: str, kind: str, gated: bool, where: str, environ: dict) -> str | None:
    """Why a job could not fetch ``hub_id``, or None."""
    if cached(hub_id, kind, environ):
        return None
    if offline(environ, kind):
        return (f"{where}: {kind} {hub_id} is not in the Hugging Face cache ({hub_cache(environ)}) and the Hub "
                f"is offline (HF_HUB_OFFLINE); fetch it first where there is network: hf download "
                f"{'--repo-type dataset ' if kind == 'dataset' else ''}{hub_id}")
    if gated and not has_token(environ):
        page = f"https://huggingface.co/{'datasets/' if kind == 'dataset' else ''}{hub_id}"
        return (f"{where}: {kind} {hub_id} is gated and no Hub token is set; accept its terms at {page}, "
                f"then `hf auth login` (or export HF_TOKEN)")
    return None


# --------------------------------------------------------------------------- the driver
def driver_problem() -> str | None:
    """Why this machine's NVIDIA driver cannot run envs/gpu.yaml's torch, or None."""
    where = "compute.device: cuda"
    if shutil.which("nvidia-smi") is None:
        return (f"{where}: no nvidia-smi on this machine, so no NVIDIA driver for the jobs that run here; run on "
                f"a GPU node (or --profile profiles/slurm), or use a CPU config (config/smoke.yaml)")
    try:
        out = subprocess.run(["nvidia-smi", "--query-gpu=driver_version", "--format=csv,noheader"],
                             capture_output=True, text=True, timeout=60, check=True).stdout
    except (OSError, subprocess.SubprocessError) as exc:
        return f"{where}: nvidia-smi cannot read the driver ({exc}); is the NVIDIA driver loaded?"
    versions = re.findall(r"^\s*((\d+)\.\S*)", out, re.M)
    if not versions:
        return f"{where}: nvidia-smi names no GPU ({out.strip() or 'no output'})"
    oldest, major = min(versions, key=lambda version: int(version[1]))
    if int(major) < GPU_ENV_MIN_DRIVER:
        return (f"{where}: NVIDIA driver {oldest} is older than {GPU_ENV_MIN_DRIVER}, which the CUDA "
                f"{GPU_ENV_CUDA} build of torch in envs/gpu.yaml needs (it would see no GPU); update the driver")
    return None


# --------------------------------------------------------------------------- the config
def data_needs(config: dict, environ: dict) -> list[Need]:
    """Each grid domain's staged files (local) or Hub datasets (hub): the ``data`` job's input."""
    found = []
    for domain in config["grid"]["domains"]:
        source, rules, wildcards = domain_source(config, domain), ("data",), {"domain": domain}
        if source == "local":
            local = config["data"]["local"]
            spec = local["domains"].get(domain)
            if spec is None:
                continue  # the data job says so (edco.data.load_local), naming the key
            root = Path(local["root"])
            missing = [str(root / p) for split in ("train", "test") for p in spec[split] if not (root / p).is_file()]
            if missing:
                found.append(Need(f"data.local.domains.{domain}: {', '.join(missing)} missing (data.local.root = "
                                  f"{root}, from {Path.cwd()}); stage the files (../shared/data/README.md) or set "
                                  f"data.local.root", rules, wildcards))
        elif source == "hub":
            for i, spec in enumerate(config["data"]["hub"]["domains"].get(domain, [])):
                problem = hub_problem(spec["id"], "dataset", spec["gated"], f"data.hub.domains.{domain}[{i}]", environ)
                if problem:
                    found.append(Need(problem, rules, wildcards))
    return found


def model_needs(config: dict, environ: dict) -> list[Need]:
    """Each grid model's Hub id (hub) or real tokenizer files (tiny, tokenizer kind path)."""
    found = []
    for name in config["grid"]["models"]:
        model = config["models"][name]
        if model["source"] == "hub":
            problem = hub_problem(model["hub_id"], "model", model["gated"], f"models.{name}", environ)
            if problem:
                found.append(Need(problem, MODEL_RULES, {"model": name}))
        tokenizer = model.get("tokenizer") or {}
        if model["source"] == "tiny" and tokenizer.get("kind") == "path" and not Path(tokenizer["path"]).is_dir():
            found.append(Need(f"models.{name}.tokenizer.path: {tokenizer['path']} is not a directory (from "
                              f"{Path.cwd()}); stage the tokenizer files (../shared/tokenizers/README.md)",
                              ("base_model",), {"model": name}))
    return found


def needs(config: dict, environ: dict | None = None, local_exec: bool = True, driver: bool = True) -> list[Need]:
    """Everything ``config``'s run lacks on this machine. The driver is left out with ``driver``
    False (the workflow's parse: a dry run runs no nvidia-smi) or ``local_exec`` False (a cluster
    executor: the jobs run on other nodes, and each job checks its node's GPU itself, edco.gpu);
    files, Hub cache and token are taken to be shared with the nodes."""
    environ = dict(os.environ if environ is None else environ)
    found = data_needs(config, environ) + model_needs(config, environ)
    if config["compute"]["device"] == "cuda" and driver and local_exec and (problem := driver_problem()):
        found.append(Need(problem, MODEL_RULES))
    return found


def blocking(found: list[Need], jobs) -> list[str]:
    """The problems some job of ``jobs`` ((rule name, wildcards dict) pairs) needs solved."""
    jobs = list(jobs)
    return [need.problem for need in found if any(need.needed_by(rule, wildcards) for rule, wildcards in jobs)]


def message(problems: list[str], source: str) -> str:
    """One message naming every missing thing."""
    lines = "\n".join(f"  - {p}" for p in problems)
    return f"{source}: this run needs {len(problems)} thing(s) it cannot find on this machine:\n{lines}"
