"""Load a run configuration, validate it against config/schema.yaml, fill defaults.

The Snakefile and every ``python -m edco`` subcommand go through ``load_config`` so a
bad key stops the run before any job starts, with the key's path in the message.
"""

from __future__ import annotations

import copy
from pathlib import Path

import jsonschema
import yaml

from edco.errors import UserFacingError

REPO = Path(__file__).resolve().parent.parent
SCHEMA_PATH = REPO / "config" / "schema.yaml"


class ConfigError(UserFacingError):
    """A configuration that does not match the schema; the message names file and key."""


def _key_path(error: jsonschema.ValidationError) -> str:
    parts = [f"[{p}]" if isinstance(p, int) else f".{p}" for p in error.absolute_path]
    return "".join(parts).lstrip(".") or "<top level>"


def _describe(error: jsonschema.ValidationError) -> str:
    if error.validator == "additionalProperties":
        allowed = sorted(error.schema.get("properties", {}))
        extra = sorted(set(error.instance) - set(allowed))
        hint = f"; allowed keys: {', '.join(allowed)}" if allowed else ""
        return f"unknown key {', '.join(map(repr, extra))}{hint}"
    return error.message


def _fill_defaults(schema: dict, instance, root: dict) -> None:
    """Fill ``default`` values of declared properties, recursively (objects only)."""
    if "$ref" in schema:
        name = schema["$ref"].rsplit("/", 1)[-1]
        schema = {**root["$defs"][name], **{k: v for k, v in schema.items() if k != "$ref"}}
    if not isinstance(instance, dict):
        return
    for key, sub in schema.get("properties", {}).items():
        if key not in instance and "default" in sub:
            instance[key] = copy.deepcopy(sub["default"])
        elif key not in instance and sub.get("type") == "object" and "properties" in sub:
            instance[key] = {}  # an omitted section gets its members' defaults
        if key in instance:
            _fill_defaults(sub, instance[key], root)
    extra = schema.get("additionalProperties")
    if isinstance(extra, dict):
        for key in set(instance) - set(schema.get("properties", {})):
            _fill_defaults(extra, instance[key], root)


def validate_config(config: dict, source: str = "<config>") -> dict:
    """Validate ``config`` (a dict) and return a copy with defaults filled."""
    schema = yaml.safe_load(SCHEMA_PATH.read_text())
    validator = jsonschema.Draft202012Validator(schema)
    errors = sorted(validator.iter_errors(config), key=lambda e: list(e.absolute_path))
    if errors:
        lines = [f"{source}: {_key_path(e)}: {_describe(e)}" for e in errors]
        raise ConfigError("\n".join(lines))
    config = copy.deepcopy(config)
    _fill_defaults(schema, config, schema)
    _check_cross_references(config, source)
    config["grid"]["strategies"] = grid_strategies(config["grid"])
    return config


#: The strategies beyond the paper's four (answers to its reviewers), in the order
#: ``grid.beyond_paper: true`` appends them to ``grid.strategies``.
BEYOND_PAPER_STRATEGIES = ("length", "answer_complexity", "ppl_dynamic", "ucb_bandit", "edco_partial",
                           "edco_early_stop")


def grid_strategies(grid: dict) -> list[str]:
    """The strategies a grid runs: ``grid.strategies``, plus, when ``grid.beyond_paper`` is
    true, every beyond-paper strategy not already named (idempotent, so a validated config
    validates to itself). ``validate_config`` stores the result in ``grid.strategies``, so
    the workflow, tables and plots all read the expanded list from there."""
    strategies = list(grid["strategies"])
    if grid.get("beyond_paper"):
        strategies += [s for s in BEYOND_PAPER_STRATEGIES if s not in strategies]
    return strategies


def typed_overrides(overrides: dict) -> dict:
    """Snakemake's ``--config key=value`` parses a nested value with YAML's BaseLoader, so
    ``--config grid='{beyond_paper: true}'`` arrives as the *string* 'true' (and
    ``curriculum='{rounds: 3}'`` as '3'). Re-read every string inside a nested override
    with ``yaml.safe_load`` so it gets its YAML type; top-level values are left as parsed."""

    def retype(value):
        if isinstance(value, dict):
            return {k: retype(v) for k, v in value.items()}
        if isinstance(value, list):
            return [retype(v) for v in value]
        if isinstance(value, str):
            try:
                return yaml.safe_load(value) if value.strip() else value
            except yaml.YAMLError:
                return value
        return value

    return {k: retype(v) if isinstance(v, (dict, list)) else v for k, v in overrides.items()}


def _check_cross_references(config: dict, source: str) -> None:
    """Checks a JSON schema cannot express: names that must refer to other sections."""
    for name in config["grid"]["models"]:
        if name not in config["models"]:
            raise ConfigError(
                f"{source}: grid.models: {name!r} is not defined under models "
                f"(defined: {', '.join(sorted(config['models']))})"
            )
    data = config["data"]
    section = data.get(data["source"])
    if data["source"] != "synthetic":
        if not section or "domains" not in section:
            raise ConfigError(f"{source}: data.{data['source']}.domains: required when data.source is {data['source']!r}")
        for domain in config["grid"]["domains"]:
            if domain not in section["domains"]:
                raise ConfigError(
                    f"{source}: grid.domains: {domain!r} has no entry under data.{data['source']}.domains"
                )
    for name, model in config["models"].items():
        if model["source"] == "hub" and "hub_id" not in model:
            raise ConfigError(f"{source}: models.{name}.hub_id: required when source is 'hub'")
        if model["source"] == "tiny" and ("tokenizer" not in model or "size" not in model):
            raise ConfigError(f"{source}: models.{name}: a tiny model needs 'tokenizer' and 'size'")
    for paradigm in ("sft", "rl"):
        for name in config.get(paradigm, {}).get("n_by_model", {}):
            if name not in config["models"]:
                raise ConfigError(f"{source}: {paradigm}.n_by_model: {name!r} is not defined under models")
    for paradigm in config["grid"]["paradigms"]:
        for model in config["grid"]["models"]:
            n = round_budget(config, paradigm, model)[1]
            if data.get("max_train") and n > data["max_train"]:
                raise ConfigError(
                    f"{source}: {budget_key(config, paradigm, model)}: {n} exceeds data.max_train "
                    f"({data['max_train']}); lower it or raise data.max_train"
                )


def _n_source(config: dict, paradigm: str, model: str) -> tuple[int, str]:
    """N of a run and the config key it comes from: the paradigm's ``n_by_model[model]``, its
    ``n``, else ``curriculum.n`` (the first one set)."""
    section = config.get(paradigm) or {}
    by_model = section.get("n_by_model") or {}
    if by_model.get(model):
        return by_model[model], f"{paradigm}.n_by_model.{model}"
    if section.get("n"):
        return section["n"], f"{paradigm}.n"
    return config["curriculum"]["n"], "curriculum.n"


def round_budget(config: dict, paradigm: str, model: str) -> tuple[int, int]:
    """(rounds, N) of a run of ``paradigm`` on ``model``: the paradigm's own ``rounds`` and
    ``n_by_model[model]`` / ``n`` where set, else ``curriculum.rounds`` / ``curriculum.n``.
    The paper's SFT is 8 x 1750 and its RL 5 x 200 (Qwen3-4B) / 5 x 800 (Llama-3.2-3B)."""
    rounds = (config.get(paradigm) or {}).get("rounds") or config["curriculum"]["rounds"]
    return rounds, _n_source(config, paradigm, model)[0]


def budget_key(config: dict, paradigm: str, model: str) -> str:
    """The config key ``round_budget`` took N from, for messages."""
    return _n_source(config, paradigm, model)[1]


def load_config(path: str | Path) -> dict:
    """Read a YAML config file, validate it and fill defaults."""
    path = Path(path)
    try:
        raw = yaml.safe_load(path.read_text())
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path}: not valid YAML: {exc}") from exc
    if not isinstance(raw, dict):
        raise ConfigError(f"{path}: expected a mapping at the top level")
    return validate_config(raw, str(path))


def run_dir(config: dict) -> Path:
    """results/<run>/, relative to the working directory (the repository in Snakemake)."""
    return Path("results") / config["run"]


def gpu_problems(config: dict) -> list[str]:
    """The config's GPU-only settings that cannot run on this machine, each naming its key.
    torch is imported only when a setting asks for a GPU (the CPU configs pay nothing)."""
    import importlib.util

    from edco.curriculum import get_strategy

    grid = config["grid"]
    wants_vllm = []
    scores = any(get_strategy(s).scores_with_model for s in grid["strategies"])
    if config["estimator"]["backend"] == "vllm" and (scores or config.get("estimator_bench", {}).get("enabled")):
        wants_vllm.append("estimator.backend: vllm")
    if "rl" in grid["paradigms"] and (config.get("rl") or {}).get("use_vllm"):
        wants_vllm.append("rl.use_vllm: true")
    cuda = config.get("compute", {}).get("device") == "cuda"
    gpus = {name: config["models"][name].get("gpus", 0) for name in grid["models"]}
    if not (wants_vllm or cuda or any(g > 1 for g in gpus.values())):
        return []
    import torch

    visible = torch.cuda.device_count() if torch.cuda.is_available() else 0
    problems = []
    if cuda and not visible:
        problems.append("compute.device: cuda (no CUDA GPU is visible)")
    for setting in wants_vllm:
        if importlib.util.find_spec("vllm") is None:
            problems.append(f"{setting} (the vllm package is not installed: pip install 'edco-bench[vllm]')")
        elif not visible:
            problems.append(f"{setting} (vLLM needs a CUDA GPU and none is visible)")
    problems += [f"models.{name}.gpus: {n} ({visible} GPUs visible)" for name, n in gpus.items() if n > max(visible, 1)]
    return problems


def check_gpu_settings(config: dict, source: str) -> None:
    """Stop, in one line naming every offending key, when the config needs GPUs or vLLM this
    machine lacks. Called where real work starts, in the job's own environment:
    ``python -m edco train|score|evaluate`` (edco/cli.py)."""
    problems = gpu_problems(config)
    if problems:
        raise ConfigError(
            f"{source}: GPU-only settings cannot run on this machine: {'; '.join(problems)}. "
            "Run on a GPU node (or --profile profiles/slurm), or use a CPU config (config/smoke.yaml)"
        )

