"""Imports point only downward (docs/design.md#layers: cli -> components -> ground), with no
cycle, read from the source (AST: module- and function-level imports) of every module of
edco/ and baselines/. Function-level imports are for heavy optional libraries only (and for
cli.py, which imports its commands lazily), never to hide a cycle. The checker is tested on a
hand-made package first, so a green run means something."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
PACKAGES = ("edco", "baselines")

# Ground, in order: a ground module imports only ground modules to its left.
GROUND = ("edco", "edco.errors", "edco.io", "edco.layout", "edco.config", "edco.portable", "edco.prompts", "edco.synthetic",
          "edco.data", "edco.gguf", "edco.models")
CLI = ("edco.cli", "edco.__main__")
# Components by group, and the other groups each may import (docs/design.md#layers, "Allowed among components").
GROUPS = {
    "estimator": ("edco.estimator",),
    "curriculum": ("edco.curriculum", "baselines"),
    "trainer": ("edco.trainer",),
    "evaluate": ("edco.evaluate", "edco.tasks"),
    "gpu": ("edco.gpu",),
    "slurm": ("edco.slurm",),  # a SLURM job's failure read from its log (the workflow's onerror)
    "devices": ("edco.devices",),  # which device vLLM runs on, memory for an engine: no component imports
    "estimator_bench": ("edco.estimator_bench",),
    "report": ("edco.report",),
    "plan": ("edco.plan",),  # the resource planner: config arithmetic only (no torch)
    "gpulock": ("edco.gpulock",),  # the per-GPU lock wrapper a job's command runs through
    "external": ("edco.external",),  # what a run needs from outside the checkout, checked before the DAG
    "preflight": ("edco.preflight",),  # every GPU path once, measured against the plan
}
ALLOWED = {
    "estimator": {"devices"},
    "curriculum": {"estimator"},
    "trainer": {"curriculum", "estimator", "devices"},
    "evaluate": set(),
    "gpu": {"curriculum", "devices"},  # which strategies score with a model (a vLLM engine)
    "devices": set(),
    "slurm": set(),
    "estimator_bench": {"estimator", "curriculum", "report"},
    "report": set(),
    "plan": {"curriculum"},  # what each strategy declares it costs (Strategy.cost)
    "gpulock": set(),
    "external": set(),
    "preflight": {"trainer", "estimator", "evaluate", "estimator_bench", "plan", "curriculum", "devices"},
}
# Heavy or optional third-party libraries a function may import when it needs them.
LAZY_OK = {"torch", "transformers", "trl", "vllm", "lm_eval", "datasets", "matplotlib", "seaborn", "accelerate",
           "pandas", "pyarrow", "scipy", "tokenizers", "peft", "gguf"}


def module_name(root: Path, path: Path) -> str:
    parts = list(path.relative_to(root).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def collect_imports(root: Path, packages=PACKAGES) -> tuple[set[str], list[tuple[str, str, bool, int]]]:
    """(every module, [(importer, imported, function-level?, line)]) for the packages under
    ``root``. ``from a import b`` is an import of module ``a.b`` when that is a module."""
    files = {module_name(root, p): p for pkg in packages for p in sorted((root / pkg).rglob("*.py"))}
    modules = set(files)
    edges = []
    for name, path in files.items():
        tree = ast.parse(path.read_text(), filename=str(path))
        is_package = path.name == "__init__.py"
        for node, in_function in _imports(tree):
            for target in _targets(node, name, is_package, modules):
                edges.append((name, target, in_function, node.lineno))
    return modules, edges


def _imports(tree: ast.Module):
    def walk(node, in_function):
        for child in ast.iter_child_nodes(node):
            if isinstance(child, (ast.Import, ast.ImportFrom)):
                yield child, in_function
            inner = in_function or isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda))
            yield from walk(child, inner)

    yield from walk(tree, False)


def _targets(node, importer: str, is_package: bool, modules: set[str]) -> list[str]:
    if isinstance(node, ast.Import):
        return [alias.name for alias in node.names]
    base = node.module or ""
    if node.level:  # relative: from the importer's package
        package = importer.split(".") if is_package else importer.split(".")[:-1]
        package = package[: len(package) - (node.level - 1)]
        base = ".".join(package + ([base] if base else []))
    subs = [f"{base}.{alias.name}" for alias in node.names if f"{base}.{alias.name}" in modules]
    return subs or [base]


def internal(name: str, modules: set[str]) -> str | None:
    """The module of ours ``name`` refers to (itself or its closest parent), else None."""
    parts = name.split(".")
    for end in range(len(parts), 0, -1):
        if ".".join(parts[:end]) in modules:
            return ".".join(parts[:end])
    return None


def layer(module: str) -> tuple[str, str | int]:
    """("ground", position) | ("component", group) | ("cli", "")."""
    if module in GROUND:
        return "ground", GROUND.index(module)
    if module in CLI:
        return "cli", ""
    for group, prefixes in GROUPS.items():
        if any(module == p or module.startswith(p + ".") for p in prefixes):
            return "component", group
    raise AssertionError(f"{module}: not placed in a layer; add it to GROUND, CLI or GROUPS in tests/test_layers.py")


def problems(modules: set[str], edges) -> list[str]:
    """Every upward or sideways import, every function-level import that is not a heavy
    library's, and every import cycle."""
    found = []
    graph: dict[str, set[str]] = {m: set() for m in modules}
    for importer, target, in_function, line in edges:
        ours = internal(target, modules)
        where = f"{importer}:{line}: import {target}"
        if in_function and importer not in CLI and (ours or target.split(".")[0] not in LAZY_OK):
            found.append(f"{where}: inside a function (only heavy optional libraries may be imported there)")
        if ours is None or ours == importer:
            continue
        graph[importer].add(ours)
        (kind, where_from), (target_kind, where_to) = layer(importer), layer(ours)
        if target_kind == "cli" and kind != "cli":
            found.append(f"{where}: upward (the cli is the top layer)")
        elif kind == "ground" and (target_kind != "ground" or where_to >= where_from):
            found.append(f"{where}: upward (ground imports only ground modules left of it: {' < '.join(GROUND)})")
        elif kind == "component" and target_kind == "component" and where_to != where_from \
                and where_to not in ALLOWED[where_from]:
            found.append(f"{where}: {where_from} may not import {where_to} (allowed: {sorted(ALLOWED[where_from])})")
    return found + [f"import cycle: {' -> '.join(cycle)}" for cycle in cycles(graph)]


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """One cycle per strongly connected group of modules (Tarjan), as a path back to its start."""
    index, low, stack, on_stack, out = {}, {}, [], set(), []

    def visit(node):
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for nxt in sorted(graph[node]):
            if nxt not in index:
                visit(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in on_stack:
                low[node] = min(low[node], index[nxt])
        if low[node] == index[node]:
            group = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                group.append(member)
                if member == node:
                    break
            if len(group) > 1:
                out.append(_path(graph, sorted(group)))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return out


def _path(graph, group: list[str]) -> list[str]:
    """A cycle through ``group``'s first member (breadth-first back to it)."""
    start, members = group[0], set(group)
    paths = {start: [start]}
    queue = [start]
    while queue:
        node = queue.pop(0)
        for nxt in sorted(graph[node] & members):
            if nxt == start:
                return paths[node] + [start]
            if nxt not in paths:
                paths[nxt] = paths[node] + [nxt]
                queue.append(nxt)
    return group


# --------------------------------------------------------------------------- the checker itself
def write_package(root: Path, files: dict[str, str]) -> None:
    for name, text in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)


def test_the_checker_finds_cycles_upward_and_hidden_imports(tmp_path):
    write_package(tmp_path, {
        "edco/__init__.py": "",
        "edco/config.py": "def f():\n    from edco.curriculum import x\n",  # ground -> component, hidden
        "edco/curriculum.py": "from edco import estimator\n",
        "edco/estimator.py": "import json\nfrom . import config\n\ndef g():\n    import yaml\n    import torch\n",
        "edco/models.py": "from edco.data import load\n",  # ground, rightward: fine
        "edco/data.py": "from edco.models import m\n",  # ... and back: upward + a cycle
        "edco/evaluate.py": "from edco.trainer import run\n",
        "edco/trainer/__init__.py": "from edco.trainer.rounds import run\n",
        "edco/trainer/rounds.py": "from edco.trainer import sft\nfrom edco import cli\n",
        "edco/trainer/sft.py": "",
        "edco/cli.py": "def main():\n    from edco import trainer\n",
        "baselines/__init__.py": "",
    })
    modules, edges = collect_imports(tmp_path)
    found = problems(modules, edges)
    expected = [
        "edco.config:2: import edco.curriculum: inside a function",
        "edco.config:2: import edco.curriculum: upward (ground",
        "edco.data:1: import edco.models: upward (ground",
        "edco.estimator:5: import yaml: inside a function",
        "edco.evaluate:1: import edco.trainer: evaluate may not import trainer",
        "edco.trainer.rounds:2: import edco.cli: upward (the cli is the top layer)",
        "import cycle: edco.cli -> edco.trainer -> edco.trainer.rounds -> edco.cli",
        "import cycle: edco.config -> edco.curriculum -> edco.estimator -> edco.config",
        "import cycle: edco.data -> edco.models -> edco.data",
    ]
    for message in expected:
        assert sum(f.startswith(message) for f in found) == 1, (message, found)
    assert len(found) == len(expected), found  # torch in a function, cli's lazy import, trainer.sft: fine


# --------------------------------------------------------------------------- the repository
def test_imports_point_only_downward_without_cycles():
    modules, edges = collect_imports(REPO)
    assert problems(modules, edges) == []


@pytest.mark.parametrize("module", ["edco.config", "edco.curriculum", "edco.data", "edco.external",
                                    "baselines.ucb_bandit"])
def test_light_modules_do_not_import_torch(module):
    """The workflow (Snakefile: config, strategy names) and validate-data import these: a
    controller environment without torch must be able to."""
    import subprocess
    import sys

    code = f"import sys, {module}; from edco import curriculum; curriculum.available_strategies(); " \
           f"print(sorted(m for m in ('torch', 'transformers', 'pandas') if m in sys.modules))"
    out = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


def test_the_design_document_states_these_layers():
    """docs/design.md#layers says what this test enforces: the ground's order, and per component
    group its modules and the groups it may import."""
    text = (REPO / "docs" / "design.md").read_text()
    section = text[text.index("\n## Layers\n"):]
    section = section[: section.index("\n## ", 1)]
    ground = section[section.index("**ground**, in this order:"):].split(". A ground module")[0]
    assert re.findall(r"`(\w+)`", ground) == [m.split(".")[-1] for m in GROUND]
    rows = {cells[0]: cells[1:] for cells in (
        [c.strip() for c in line.strip("|").split("|")] for line in section.splitlines() if line.startswith("| "))}
    rows.pop("group")
    assert set(rows) == set(GROUPS)
    for group, (modules, allowed) in rows.items():
        assert re.findall(r"`([\w.]+)`", modules) == list(GROUPS[group]), group
        assert set(re.findall(r"\w+", allowed)) == ALLOWED[group], group
