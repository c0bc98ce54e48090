"""One source of defaults: every key the schema declares is read by some code (a key nobody
reads is a setting that silently does nothing, like models.<m>.dtype once was), and code
reads config values without ``.get(key, default)`` fallbacks (a second default that can
disagree with the schema's, like estimator_bench.enabled once did). Both checks read the
source (AST); each is first shown to catch a hand-made case."""

from __future__ import annotations

import ast
import re
from pathlib import Path

from edco.config import schema

REPO = Path(__file__).resolve().parents[1]
# Code that reads the config: the package, the strategies, the benchmarks, the workflow.
PY_SOURCES = ["edco/**/*.py", "baselines/*.py", "benchmarks/*.py"]
WORKFLOW_SOURCES = ["Snakefile", "rules/*.smk", "baselines/*.smk"]
# Names a config (or a section of one) goes by in the code; .get on them is a fallback.
CONFIG_NAMES = re.compile(r"^(config|cfg|\w+_cfg|spec|section|grid|settings|raw)$")


def schema_leaves(node: dict, root: dict, path: tuple[str, ...] = ()) -> dict[tuple[str, ...], str]:
    """(key path) -> key, for every key the schema declares whose value is not a section of
    further declared keys (``*`` for a named entry, ``[]`` for a list item)."""
    if "$ref" in node:
        node = {**root["$defs"][node["$ref"].rsplit("/", 1)[-1]], **node}
    out = {}
    for key, sub in node.get("properties", {}).items():
        sub_node = {**root["$defs"][sub["$ref"].rsplit("/", 1)[-1]], **sub} if "$ref" in sub else sub
        nested = schema_leaves(sub_node, root, (*path, key))
        out.update(nested or {(*path, key): key})
    for marker, sub in (("*", node.get("additionalProperties")), ("[]", node.get("items"))):
        if isinstance(sub, dict):
            out.update(schema_leaves(sub, root, (*path, marker)))
    return out


def keys_read(py_files: list[Path], workflow_files: list[Path]) -> set[str]:
    """String keys the code subscripts with (``x["key"]``), plus the names in ``*_KEYS``
    tuples (config values passed through under the same name, e.g. to TRL)."""
    found = set()
    for path in py_files:
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Subscript) and isinstance(node.slice, ast.Constant):
                found.add(node.slice.value)
            if isinstance(node, ast.Assign) and any(isinstance(t, ast.Name) and t.id.endswith("_KEYS")
                                                    for t in node.targets):
                found |= {e.value for e in ast.walk(node.value) if isinstance(e, ast.Constant)}
    for path in workflow_files:
        found |= set(re.findall(r"""\[["'](\w+)["']\]""", path.read_text()))
    return found


def unread_keys(leaves: dict[tuple[str, ...], str], read: set[str]) -> list[str]:
    return sorted(".".join(path) for path, key in leaves.items() if key not in read)


def fallback_reads(py_files: list[Path], keys: set[str]) -> list[str]:
    """``config.get("key", ...)`` / ``cfg.get("key")`` on a config or one of its sections, for a
    key the schema declares."""
    found = []
    for path in py_files:
        for node in ast.walk(ast.parse(path.read_text())):
            if not (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr == "get"):
                continue
            if not (node.args and isinstance(node.args[0], ast.Constant) and node.args[0].value in keys):
                continue
            receiver = node.func.value
            while isinstance(receiver, (ast.Subscript, ast.Attribute)) and not (
                    isinstance(receiver, ast.Attribute) and CONFIG_NAMES.match(receiver.attr)):
                receiver = receiver.value
            name = receiver.attr if isinstance(receiver, ast.Attribute) else getattr(receiver, "id", "")
            if CONFIG_NAMES.match(name):
                found.append(f"{path.relative_to(REPO) if path.is_relative_to(REPO) else path}:{node.lineno}: "
                             f"{ast.unparse(node)}")
    return found


def sources(patterns: list[str]) -> list[Path]:
    return sorted(p for pattern in patterns for p in REPO.glob(pattern) if p.is_file())


# --------------------------------------------------------------------------- the checks themselves
def test_the_checks_catch_an_unread_key_and_a_fallback(tmp_path):
    toy = {"type": "object", "properties": {
        "estimator": {"type": "object", "properties": {"top_frac": {"default": 0.2}, "never_read": {"default": 1}}},
        "models": {"additionalProperties": {"properties": {"dtype": {}, "size": {"additionalProperties": {}}}}},
    }}
    leaves = schema_leaves(toy, toy)
    assert leaves == {("estimator", "top_frac"): "top_frac", ("estimator", "never_read"): "never_read",
                      ("models", "*", "dtype"): "dtype", ("models", "*", "size"): "size"}
    code = tmp_path / "code.py"
    code.write_text('K_KEYS = ("dtype",)\n\ndef f(config, cfg, row):\n'
                    '    a = config["estimator"]["top_frac"]\n'
                    '    b = config["models"].get("size", {})\n'
                    '    c = self_cfg = cfg.get("top_frac", 0.2)\n'
                    '    d = row.get("size")\n')
    assert unread_keys(leaves, keys_read([code], [])) == ["estimator.never_read", "models.*.size"]
    found = [f.split(": ", 1)[1] for f in fallback_reads([code], {"top_frac", "size"})]
    assert found == ["config['models'].get('size', {})", "cfg.get('top_frac', 0.2)"]  # row.get is data


# --------------------------------------------------------------------------- the repository
def test_every_declared_key_is_read_by_code():
    root = schema()
    assert unread_keys(schema_leaves(root, root), keys_read(sources(PY_SOURCES), sources(WORKFLOW_SOURCES))) == []


def test_config_values_are_read_without_fallbacks():
    root = schema()
    keys = set(schema_leaves(root, root).values()) | set(root["properties"])
    for section in root["properties"].values():
        keys |= set(section.get("properties", {}))
    assert fallback_reads(sources(PY_SOURCES), keys) == []
