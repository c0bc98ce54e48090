"""Load a run configuration, validate it against the schema, fill defaults once.

The schema is package data (``edco/schema.yaml``, read with ``importlib.resources``, so an
installed wheel finds it) and the one source of every default: ``validate_config`` fills
them, and code reads ``config["section"]["key"]`` without fallbacks. The Snakefile and every
``python -m edco`` command go through ``load_config`` / ``validate_config``, so a bad key
stops the run before any job starts, with the file, line and key in the message.

Strategy options (``strategy_options``) are declared by the strategies themselves and
checked by ``edco.curriculum`` when a strategy is looked up; this module only checks their
shape (ground never imports a component).
"""

from __future__ import annotations

import copy
import functools
import importlib.resources
from pathlib import Path

import jsonschema
import yaml

from edco import layout
from edco.errors import UserFacingError


class ConfigError(UserFacingError):
    """A configuration that does not match the schema; the message names file, line and key."""


@functools.cache
def _schema() -> dict:
    return yaml.safe_load(importlib.resources.files("edco").joinpath("schema.yaml").read_text(encoding="utf-8"))


def schema() -> dict:
    """The config schema (a fresh copy: callers may change it)."""
    return copy.deepcopy(_schema())


# --------------------------------------------------------------------------- locations
class Lines:
    """Line numbers of the keys of a YAML file, so an error can say where a key is written."""

    def __init__(self, source: str, lines: dict[tuple[str, ...], int] | None = None):
        self.source, self.lines = source, lines or {}

    def at(self, path) -> str:
        """``file:line`` of the longest prefix of ``path`` written in the file, else ``file``."""
        path = tuple(str(p) for p in path)
        for end in range(len(path), -1, -1):
            if path[:end] in self.lines:
                return f"{self.source}:{self.lines[path[:end]]}"
        return self.source


def _yaml_lines(text: str, source: str) -> dict[tuple[str, ...], int]:
    """(key path) -> 1-based line, from YAML's node tree (keys as strings, list items by index).
    A key written twice in one mapping is an error: YAML would keep the last one silently."""
    lines: dict[tuple[str, ...], int] = {}

    def walk(node, path):
        if isinstance(node, yaml.MappingNode):
            for key, value in node.value:
                sub = (*path, str(key.value))
                if sub in lines and key.tag != "tag:yaml.org,2002:merge":
                    raise ConfigError(f"{source}:{key.start_mark.line + 1}: {'.'.join(sub)}: given twice in one "
                                      f"mapping (first at line {lines[sub]}); keep one")
                lines[sub] = key.start_mark.line + 1
                walk(value, sub)
        elif isinstance(node, yaml.SequenceNode):
            for index, item in enumerate(node.value):
                lines[(*path, str(index))] = item.start_mark.line + 1
                walk(item, (*path, str(index)))

    root = yaml.compose(text, Loader=yaml.SafeLoader)
    if root is not None:
        lines[()] = root.start_mark.line + 1
        walk(root, ())
    return lines


# --------------------------------------------------------------------------- messages
def _key_path(path) -> str:
    parts = [f"[{p}]" if isinstance(p, int) else f".{p}" for p in path]
    return "".join(parts).lstrip(".") or "<top level>"


def _condition(error: jsonschema.ValidationError, root: dict) -> str:
    """' (when source is 'tiny')' for an error of an ``if``/``then`` rule, else ''."""
    path = list(error.schema_path)
    if "then" not in path:
        return ""
    node = root
    for part in path[: len(path) - 1 - path[::-1].index("then")]:
        node = node[part]
    consts = [f"{key} is {spec['const']!r}" for key, spec in node["if"].get("properties", {}).items() if "const" in spec]
    return f" (when {' and '.join(consts)})" if consts else ""


def _short(message: str) -> str:
    """A message of readable length: a megabyte of value in the config is not a message."""
    return message if len(message) <= 200 else message[:150] + " ... " + message[-40:]


def _describe(error: jsonschema.ValidationError, root: dict) -> tuple[list, str]:
    """(path of the key whose line to name, message)."""
    path = list(error.absolute_path)
    if error.validator == "additionalProperties":
        allowed = sorted(error.schema.get("properties", {}))
        extra = sorted((set(error.instance) - set(allowed)), key=repr)
        hint = f"; allowed keys: {', '.join(allowed)}" if allowed else ""
        return [*path, extra[0]], _short(f"unknown key {', '.join(map(repr, extra))}") + hint
    return path, _short(error.message) + _condition(error, root)


def _schema_errors(config: dict, where: Lines) -> list[str]:
    root = schema()
    validator = jsonschema.Draft202012Validator(root)
    found = sorted(validator.iter_errors(config), key=lambda e: [str(p) for p in e.absolute_path])
    out = []
    for error in found:
        line_path, message = _describe(error, root)
        out.append(f"{where.at(line_path)}: {_key_path(error.absolute_path)}: {message}")
    return out


def _raise_first(problems: list[str]) -> None:
    """One problem: one line. Several: the first line is complete, the others follow."""
    if problems:
        more = f"\n{len(problems) - 1} more:\n  " + "\n  ".join(problems[1:]) if len(problems) > 1 else ""
        raise ConfigError(problems[0] + more)


# --------------------------------------------------------------------------- defaults
def _resolve(node: dict, root: dict) -> dict:
    if "$ref" in node:
        name = node["$ref"].rsplit("/", 1)[-1]
        return {**root["$defs"][name], **{k: v for k, v in node.items() if k != "$ref"}}
    return node


def _fill_defaults(node: dict, instance, root: dict) -> None:
    """Fill ``default`` values of declared properties, recursively. An omitted section gets
    its members' defaults only when it has no required keys: a section that needs a value
    only the user can give (e.g. a tiny model's ``tokenizer.kind``) is never invented, so a
    filled config validates again."""
    node = _resolve(node, root)
    if isinstance(instance, list) and isinstance(node.get("items"), dict):
        for item in instance:  # e.g. the dataset specs of data.hub.domains.<domain>
            _fill_defaults(node["items"], item, root)
    if not isinstance(instance, dict):
        return
    for key, sub in node.get("properties", {}).items():
        sub = _resolve(sub, root)
        if key not in instance and "default" in sub:
            instance[key] = copy.deepcopy(sub["default"])
        elif key not in instance and sub.get("type") == "object" and "properties" in sub and not sub.get("required"):
            instance[key] = {}
        if key in instance:
            _fill_defaults(sub, instance[key], root)
    extra = node.get("additionalProperties")
    if isinstance(extra, dict):
        for key in set(instance) - set(node.get("properties", {})):
            _fill_defaults(extra, instance[key], root)


def section_defaults(*path: str) -> dict:
    """The defaults-filled section at ``path`` (``"*"`` for a named entry, ``"[]"`` for a list
    item), for code that builds one section by hand (tests, benchmarks):
    ``section_defaults("estimator")``, ``section_defaults("models", "*", "pretrain")``."""
    root = schema()
    node = root
    for key in path:
        node = _resolve(node, root)
        node = {"*": node.get("additionalProperties"), "[]": node.get("items")}.get(key) or node["properties"][key]
    section: dict = {}
    _fill_defaults(node, section, root)
    return section


# --------------------------------------------------------------------------- validation
def validate_config(config: dict, source: str = "<config>", lines: Lines | None = None) -> dict:
    """Validate ``config`` (a dict) and return a copy with defaults filled and
    ``grid.strategies`` expanded (``grid_strategies``). Idempotent: the result validates to
    itself, whatever the model and data sources."""
    where = lines or Lines(source)
    if not isinstance(config, dict):
        raise ConfigError(f"{where.at(())}: expected a mapping of sections at the top level, "
                          f"got {type(config).__name__}")
    _raise_first(_schema_errors(config, where))
    config = copy.deepcopy(config)
    root = schema()
    unset_optim = [p for p in ("sft", "rl") if "optim" not in (config.get(p) or {})]
    _fill_defaults(root, config, root)
    if config["compute"]["portable_math"]:  # the optimiser's default follows the setting
        for paradigm in unset_optim:
            config[paradigm]["optim"] = PORTABLE_OPTIM
    _raise_first(_cross_reference_errors(config, where))
    config["grid"]["strategies"] = grid_strategies(config["grid"])
    return config


def _read_text(path: Path) -> str:
    """The file's text, or a ConfigError naming what is wrong with the file (and the line of
    a byte that is not UTF-8)."""
    if path.is_dir():
        raise ConfigError(f"{path}: is a directory; give a YAML config file (e.g. config/smoke.yaml)")
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise ConfigError(f"{path}: no such file; give a YAML config file (e.g. config/smoke.yaml)") from None
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read: {exc.strerror}") from None
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = data[: exc.start].count(b"\n") + 1
        raise ConfigError(f"{path}:{line}: not UTF-8 text (byte 0x{data[exc.start]:02x}); "
                          f"save the config as UTF-8") from None


def _read_yaml(path: Path) -> tuple[dict, Lines]:
    """A config file's mapping and the line of each of its keys (for error messages)."""
    text = _read_text(path)
    try:
        raw = yaml.safe_load(text)
        lines = Lines(str(path), _yaml_lines(text, str(path)))
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"{path}:{mark.line + 1}" if mark is not None else str(path)
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        raise ConfigError(f"{where}: not valid YAML: {problem}") from None
    except RecursionError:
        raise ConfigError(f"{path}: not valid YAML: nested too deeply") from None
    if raw is None:
        raise ConfigError(f"{path}:1: empty config; a config needs at least run, grid, data, models, curriculum, "
                          f"sft, estimator and evaluate (see config/smoke.yaml)")
    if not isinstance(raw, dict):
        raise ConfigError(f"{path}:1: a config is a mapping of sections (run:, grid:, ...), not {type(raw).__name__}")
    return raw, lines


def load_config(path: str | Path) -> dict:
    """Read a YAML config file, validate it and fill defaults."""
    raw, lines = _read_yaml(Path(path))
    return validate_config(raw, str(path), lines)


def layer(base: dict, over: dict) -> dict:
    """``over`` layered on ``base`` as Snakemake layers ``--configfile a b`` (snakemake.utils.update_config):
    mappings key by key, the later file winning; lists and scalars replaced whole."""
    merged = dict(base)
    for key, value in over.items():
        both = isinstance(value, dict) and isinstance(merged.get(key), dict)
        merged[key] = layer(merged[key], value) if both else value
    return merged


def load_layers(paths: list[str | Path]) -> dict:
    """Config files layered in order (``layer``), then validated with defaults filled: what
    ``snakemake --configfile a.yaml b.yaml`` gives its jobs. One file is ``load_config``."""
    if len(paths) == 1:
        return load_config(paths[0])
    merged: dict = {}
    for path in paths:
        merged = layer(merged, _read_yaml(Path(path))[0])
    return validate_config(merged, " + ".join(map(str, paths)))


# --------------------------------------------------------------------------- grid
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
    if grid["beyond_paper"]:
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


#: The one optimiser whose update is the same bits on every x86-64 CPU under portable math: torch's
#: fused CPU AdamW computes in its own vectorised kernel (torch's baseline build there), where the
#: unfused one calls MKL's vsSqrt, not correctly rounded and different on Intel and AMD CPUs.
PORTABLE_OPTIM = "adamw_torch_fused"


def _cross_reference_errors(config: dict, where: Lines) -> list[str]:
    """Checks a JSON schema cannot express: names that must refer to other sections, settings
    that rule each other out."""
    errors = []
    if config["compute"]["portable_math"]:
        for paradigm in ("sft", "rl"):
            if config[paradigm]["optim"] != PORTABLE_OPTIM:
                errors.append(f"{where.at((paradigm, 'optim'))}: {paradigm}.optim: {config[paradigm]['optim']!r} does not "
                              f"compute the same bits on every CPU (adamw_torch's sqrt runs through MKL's vector math, "
                              f"whose last bits depend on the CPU maker); under compute.portable_math set "
                              f"{paradigm}.optim: {PORTABLE_OPTIM}")
    defined = ", ".join(sorted(config["models"]))
    for index, name in enumerate(config["grid"]["models"]):
        if name not in config["models"]:
            errors.append(f"{where.at(('grid', 'models', index))}: grid.models: {name!r} is not defined under "
                          f"models (defined: {defined})")
    data = config["data"]
    if data["source"] == "synthetic" and data["domain_sources"]:
        errors.append(f"{where.at(('data', 'domain_sources'))}: data.domain_sources: the synthetic world generates "
                      f"every domain; remove it or set data.source to local or hub")
    elif data["source"] != "synthetic":
        for index, domain in enumerate(config["grid"]["domains"]):
            source = domain_source(config, domain)
            if domain not in (data.get(source) or {}).get("domains", {}):  # data.local is optional in the schema
                errors.append(f"{where.at(('grid', 'domains', index))}: grid.domains: {domain!r} has no entry under "
                              f"data.{source}.domains")
    for paradigm in ("sft", "rl"):
        for name in config[paradigm]["n_by_model"]:
            if name not in config["models"]:
                errors.append(f"{where.at((paradigm, 'n_by_model', name))}: {paradigm}.n_by_model: {name!r} is not "
                              f"defined under models")
    if errors:
        return errors
    for paradigm in config["grid"]["paradigms"]:
        for model in config["grid"]["models"]:
            n, key = _n_source(config, paradigm, model)
            if data["max_train"] and n > data["max_train"]:
                errors.append(f"{where.at(key.split('.'))}: {key}: {n} exceeds data.max_train ({data['max_train']}); "
                              f"lower it or raise data.max_train")
            elif data["source"] == "synthetic" and n > _synthetic_pool(data["synthetic"]):
                errors.append(f"{where.at(key.split('.'))}: {key}: {n} exceeds the synthetic training pool "
                              f"({_synthetic_pool(data['synthetic'])} = data.synthetic.train_per_level x levels); "
                              f"lower it or raise data.synthetic.train_per_level")
    return errors


def _synthetic_pool(synthetic: dict) -> int:
    """Training questions per domain of the synthetic world (edco/synthetic.py)."""
    return synthetic["train_per_level"] * len(synthetic["levels"])


def domain_source(config: dict, domain: str) -> str:
    """Where ``domain``'s questions come from: ``data.domain_sources.<domain>``, else ``data.source``."""
    return config["data"]["domain_sources"].get(domain, config["data"]["source"])


def _n_source(config: dict, paradigm: str, model: str) -> tuple[int, str]:
    """N of a run and the config key it comes from: the paradigm's ``n_by_model[model]``, its
    ``n``, else ``curriculum.n`` (the first one set)."""
    section = config[paradigm]
    if model in section["n_by_model"]:
        return section["n_by_model"][model], f"{paradigm}.n_by_model.{model}"
    if section["n"]:
        return section["n"], f"{paradigm}.n"
    return config["curriculum"]["n"], "curriculum.n"


def per_seed_base(config: dict, model: str) -> bool:
    """Does every run seed of ``model`` start from a base model of its own? (a tiny model with
    ``pretrain.per_seed``: the study's seeds then sample base models too, issue 18)."""
    model_cfg = config["models"][model]
    return model_cfg["source"] == "tiny" and model_cfg["pretrain"]["per_seed"]


def base_label(config: dict, model: str, seed: int) -> str:
    """The base model a run of ``seed`` starts from: "shared", or "seed<s>" (edco.layout)."""
    return f"seed{seed}" if per_seed_base(config, model) else layout.SHARED_BASE


def base_labels(config: dict, model: str) -> list[str]:
    """Every base model of ``model`` the grid needs, in seed order."""
    return list(dict.fromkeys(base_label(config, model, seed) for seed in config["seeds"]))


def base_seed(base: str) -> int | None:
    """The run seed of a base label ("seed3" -> 3); None for the shared base model."""
    return int(base.removeprefix("seed")) if base != layout.SHARED_BASE else None


def model_size(model: dict) -> dict:
    """``models.<m>.size`` with what is omitted filled: the schema's defaults (also for a size
    block built by hand) and the head width, hidden_size / num_attention_heads (Qwen3Config's own
    default, 128 whatever the width, does not suit a tiny model). Read by the model builder and
    the planner, so both size the same model."""
    size = {**section_defaults("models", "*", "size"), **model["size"]}
    size.setdefault("head_dim", size["hidden_size"] // size["num_attention_heads"])
    return size


def arm_learning_rate(config: dict, strategy: str, paradigm: str) -> float:
    """The learning rate ``strategy`` trains ``paradigm`` with: ``learning_rates.<strategy>.<paradigm>``
    (an arm tuned on its own), else the paradigm's ``learning_rate``."""
    own = config["learning_rates"][strategy][paradigm] if strategy in config["learning_rates"] else None
    return config[paradigm]["learning_rate"] if own is None else own


def round_budget(config: dict, paradigm: str, model: str) -> tuple[int, int]:
    """(rounds, N) of a run of ``paradigm`` on ``model``: the paradigm's own ``rounds`` and
    ``n_by_model[model]`` / ``n`` where set, else ``curriculum.rounds`` / ``curriculum.n``.
    The paper's SFT is 8 x 1750 and its RL 5 x 200 (Qwen3-4B) / 5 x 800 (Llama-3.2-3B)."""
    rounds = config[paradigm]["rounds"] or config["curriculum"]["rounds"]
    return rounds, _n_source(config, paradigm, model)[0]
