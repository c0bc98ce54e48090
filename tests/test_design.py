"""The suite's own design document, docs/design.md: every reference to it from the code, configs,
rules, tests and docs names one of its headings; nothing cites a design note outside the
repository; and README's layout names every module of edco/."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
DESIGN = REPO / "docs" / "design.md"
REFERENCE = re.compile(r"docs/design\.md#([\w-]+)")
# What the code cited before docs/design.md existed: a note users do not have.
OUTSIDE = re.compile(r"DESIGN §|\bARCHITECTURE\b")
SUFFIXES = {".py", ".smk", ".yaml", ".yml", ".md", ".rst", ".toml"}


def slug(heading: str) -> str:
    """GitHub's anchor of a Markdown heading: lower case, punctuation dropped, spaces to hyphens."""
    return re.sub(r"[^\w\- ]", "", heading.strip().lower()).replace(" ", "-")


def anchors(text: str) -> set[str]:
    body = re.sub(r"```.*?```", "", text, flags=re.S)  # a '#' line in a code block is no heading
    return {slug(m[1]) for m in re.finditer(r"^#{1,6} (.+)$", body, re.M)}


def tracked_files() -> list[Path]:
    """The repository's own text files (results/reference/ excluded: records of past runs)."""
    names = subprocess.run(["git", "ls-files", "--cached", "--others", "--exclude-standard"], cwd=REPO,
                           capture_output=True, text=True, check=True).stdout.split()
    return [REPO / n for n in names if (n == "Snakefile" or Path(n).suffix in SUFFIXES)
            and not n.startswith("results/") and (REPO / n).is_file()]


def test_slugs_are_githubs():
    assert slug("Layout of a run") == "layout-of-a-run"
    assert slug("Strategies and the budget") == "strategies-and-the-budget"
    assert anchors("# A\n```\n# not a heading\n```\n## Data contract\n") == {"a", "data-contract"}


def test_every_design_reference_names_a_heading():
    known = anchors(DESIGN.read_text())
    found, broken = 0, []
    for path in tracked_files():
        for line_no, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
            for anchor in REFERENCE.findall(line):
                found += 1
                if anchor not in known:
                    broken.append(f"{path.relative_to(REPO)}:{line_no}: docs/design.md#{anchor}")
    assert not broken, f"no such heading in docs/design.md (headings: {sorted(known)}):\n" + "\n".join(broken)
    assert found >= 20  # the code does cite it


def test_nothing_cites_a_design_note_outside_the_repository():
    stale = [f"{path.relative_to(REPO)}:{n}: {line.strip()}" for path in tracked_files() if path.name != Path(__file__).name
             for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1) if OUTSIDE.search(line)]
    assert not stale, "cite docs/design.md#<heading> instead:\n" + "\n".join(stale)


def test_readme_layout_names_every_module():
    """README's Layout block names every module of edco/ (and every subpackage as `name/`)."""
    readme = (REPO / "README.md").read_text()
    layout = readme[readme.index("\n## Layout\n"):]
    layout = layout[: layout.index("\n## ", 1)] if "\n## " in layout[1:] else layout
    names = set(re.findall(r"[\w.]+/?", layout))
    edco = REPO / "edco"
    modules = [p.name for p in edco.glob("*.py") if p.name != "__init__.py"]
    packages = [f"{p.name}/" for p in edco.iterdir() if (p / "__init__.py").exists() or p.name == "tasks"]
    missing = sorted(m for m in modules + packages if m not in names)
    assert not missing, f"README's Layout does not name: {', '.join(missing)}"
    assert {"plan.py", "gguf.py", "gpulock.py", "trainer/", "report/"} <= names
