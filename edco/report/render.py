"""One renderer for every table: the raw numbers go to CSV, readable sections to Markdown,
LaTeX (booktabs) and HTML, all written atomically (edco.io). Every cell text comes from one
value formatter, ``fmt``, and the few builders on top of it (``mean_sd``, ``estimate``).

A table is a raw frame (its CSV, unrounded) and a list of ``Section``s: a heading, a note, an
optional alert (shown green / red in HTML), and a frame of text cells. The estimator
benchmark writes its Markdown with the same pieces (``markdown``, ``formatted``).
"""

from __future__ import annotations

import html
import math
import numbers
import re
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from edco import io, layout

MISSING = "–"
#: How floats reach the CSV: enough digits to recompute anything, no binary noise.
CSV_FLOATS = "%.6g"


# --------------------------------------------------------------------------- values
def is_missing(value) -> bool:
    return value is None or value is pd.NA or (isinstance(value, float) and math.isnan(value))


def fmt(value, spec: str = ".3g") -> str:
    """The one value formatter: a missing value (None, NaN, NA) is "–", a number follows the
    format ``spec`` (".3f", "+.3f", ".2g", ".0%", ",.0f"; an integer ignores a "g" spec and is
    shown whole), anything else is its text."""
    if is_missing(value):
        return MISSING
    if isinstance(value, (bool, np.bool_)):
        return "yes" if value else "no"
    if isinstance(value, numbers.Integral) and spec.endswith("g"):
        return str(int(value))
    if isinstance(value, numbers.Real):
        return format(value, spec)
    return str(value)


def prose(text: str) -> str:
    """A legend written as a triple-quoted block, on one line (Markdown and captions want one)."""
    return " ".join(text.split())


def mean_sd(mean, sd, spec: str = ".3f") -> str:
    """'mean ± sd' (the sd left out when missing)."""
    return fmt(mean, spec) + ("" if is_missing(sd) else f" ± {fmt(sd, spec)}")


def estimate(diff, low, high, p=None, spec: str = "+.3f", bounds: str = "+.2f") -> str:
    """'+0.250 [+0.12, +0.38] p=0.0001': a difference, its 95 % interval and (optionally) p."""
    if is_missing(diff):
        return MISSING
    text = f"{fmt(diff, spec)} [{fmt(low, bounds)}, {fmt(high, bounds)}]"
    return text if p is None else f"{text} p={fmt(p, '.2g')}"


def formatted(frame: pd.DataFrame, columns: dict[str, tuple[str, str]]) -> pd.DataFrame:
    """Text cells of ``frame``: ``columns`` maps a column to (header, format spec)."""
    return pd.DataFrame({header: [fmt(v, spec) for v in frame[column]] for column, (header, spec) in columns.items()})


# --------------------------------------------------------------------------- sections
@dataclass
class Section:
    """One heading of a table: a note, an optional alert ``(text, ok)`` and text cells.
    ``latex`` / ``html``: other text cells for that format (a narrower LaTeX table, HTML cells
    broken over lines); by default every format shows ``table``."""

    heading: str
    table: pd.DataFrame
    note: str = ""
    alert: tuple[str, bool] | None = None
    latex: pd.DataFrame | None = field(default=None, repr=False)
    html: pd.DataFrame | None = field(default=None, repr=False)


def markdown(frame: pd.DataFrame) -> str:
    """A pipe table of text cells (a missing cell as "–")."""
    lines = ["| " + " | ".join(map(str, frame.columns)) + " |", "|" + "---|" * len(frame.columns)]
    for values in frame.itertuples(index=False):
        lines.append("| " + " | ".join(fmt(v) for v in values) + " |")
    return "\n".join(lines)


def _markdown_page(title: str, legend: str, sections: list[Section], empty: str) -> str:
    parts = [f"# {title}\n"]
    if legend:
        parts.append(f"{legend}\n")
    if not sections:
        parts.append(f"{empty}\n")
    for section in sections:
        parts.append(f"## {section.heading}\n")
        for text in (section.note, section.alert[0] if section.alert else ""):
            if text:
                parts.append(f"{text}\n")
        parts.append(markdown(section.table) + "\n")
    return "\n".join(parts)


# --------------------------------------------------------------------------- LaTeX
_LATEX = (("\\", r"\textbackslash{}"), ("&", r"\&"), ("%", r"\%"), ("$", r"\$"), ("#", r"\#"), ("_", r"\_"),
          ("{", r"\{"), ("}", r"\}"), ("×", r"$\times$"), ("÷", "/"), ("±", r"$\pm$"), ("—", "--"),
          ("Δ", r"$\Delta$"), ("≤", r"$\leq$"), ("●", r"$\bullet$"), ("*", r"$^{*}$"))


_LATEX_CHARS = re.compile("|".join(re.escape(char) for char, _ in _LATEX))


_BOLD = re.compile(r"\*\*(.+?)\*\*")


def latex_escape(text: str) -> str:
    """Text as LaTeX, in one pass (so an escape's own braces are not escaped again);
    Markdown's **bold** becomes \\textbf."""
    parts = _BOLD.split(text)  # odd positions: the bold parts
    return "".join((r"\textbf{%s}" if i % 2 else "%s") % _LATEX_CHARS.sub(lambda m: dict(_LATEX)[m.group()], part)
                   for i, part in enumerate(parts))


def html_text(text: str) -> str:
    """Text as HTML; Markdown's **bold** becomes <b>."""
    return _BOLD.sub(r"<b>\1</b>", html.escape(text))


def numeric_text(value) -> bool:
    """A cell that reads as a number ("0.512 ± 0.03", "1,024", "–"): right-aligned."""
    return bool(re.match(r"^\s*([-+]?[\d.,]|--|–)", str(value)))


def latex_table(frame: pd.DataFrame, caption: str, label: str) -> str:
    """A booktabs ``table`` environment (needs \\usepackage{booktabs}); headers, cells and the
    caption are escaped."""
    escaped = pd.DataFrame({latex_escape(str(c)): [latex_escape(fmt(v)) for v in frame[c]] for c in frame.columns})
    align = "".join("r" if escaped[c].map(numeric_text).all() else "l" for c in escaped.columns)
    return escaped.to_latex(index=False, escape=False, caption=latex_escape(caption), label=label, position="htbp",
                            column_format=align) + "\n"


def _latex_page(name: str, title: str, sections: list[Section], empty: str) -> str:
    if not sections:
        return f"% {title}: {empty}\n"
    return "\n".join(latex_table(s.table if s.latex is None else s.latex,
                                 ". ".join(t for t in (s.heading, s.note, s.alert[0] if s.alert else "") if t),
                                 f"tab:{name}-{i}") for i, s in enumerate(sections))


# --------------------------------------------------------------------------- HTML
STYLE = """
body { font-family: -apple-system, "Segoe UI", Helvetica, Arial, sans-serif; font-size: 12px; margin: 0.8em; color: #222; }
h1 { font-size: 17px; } h2 { font-size: 14px; margin-top: 1.4em; }
p.note { color: #555; max-width: 60em; white-space: pre-line; }
p.ok { color: #176f2c; font-weight: bold; } p.bad { color: #b00; font-weight: bold; }
table { border-collapse: collapse; margin: 0.5em 0 1em; }
th, td { border-bottom: 1px solid #ddd; padding: 3px 5px; vertical-align: top; }
th { background: #f3f3f3; border-bottom: 2px solid #999; text-align: left; max-width: 6em; }
td { white-space: pre; } td.num { text-align: right; font-variant-numeric: tabular-nums; }
td.flag { color: #b00; font-weight: bold; white-space: normal; }
tr:hover td { background: #fafaf0; }
pre { background: #f6f6f6; padding: 0.8em; font-size: 12px; }
"""


def html_document(title: str, body: str) -> str:
    """A self-contained HTML page with the tables' style."""
    return (f"<!DOCTYPE html><html><head><meta charset='utf-8'><title>{html.escape(title)}</title>"
            f"<style>{STYLE}</style></head><body><h1>{html.escape(title)}</h1>\n{body}\n</body></html>\n")


def _html_cell(value) -> str:
    text = fmt(value)
    cls = "flag" if "MISMATCH" in text else "num" if numeric_text(text) else ""
    return f"<td class='{cls}'>{html.escape(text)}</td>" if cls else f"<td>{html.escape(text)}</td>"


def _html_table(frame: pd.DataFrame) -> str:
    rows = ["<tr>" + "".join(f"<th>{html.escape(str(c))}</th>" for c in frame.columns) + "</tr>"]
    rows += ["<tr>" + "".join(_html_cell(v) for v in values) + "</tr>" for values in frame.itertuples(index=False)]
    return "<table>\n" + "\n".join(rows) + "\n</table>"


def _html_page(title: str, legend: str, sections: list[Section], empty: str) -> str:
    parts = [f"<p class='note'>{html_text(legend)}</p>"] if legend else []
    if not sections:
        parts.append(f"<p>{html.escape(empty)}</p>")
    for section in sections:
        parts.append(f"<h2>{html.escape(section.heading)}</h2>")
        if section.note:
            parts.append(f"<p class='note'>{html_text(section.note)}</p>")
        if section.alert:
            text, ok = section.alert
            parts.append(f"<p class='{'ok' if ok else 'bad'}'>{html.escape(text)}</p>")
        parts.append(_html_table(section.table if section.html is None else section.html))
    return html_document(title, "\n".join(parts))


# --------------------------------------------------------------------------- writing
def write_table(run: str, name: str, title: str, data: pd.DataFrame, sections: list[Section], legend: str = "",
                empty: str = "Nothing to report.") -> list[Path]:
    """tables/<name>.{csv,md,tex,html} of a run: ``data`` (raw numbers) as CSV, the sections in
    the other three; ``empty`` is what they say when there is no section. Returns the paths in
    layout.TABLE_FORMATS order."""
    plain = title.replace("`", "")
    texts = {"csv": data.to_csv(index=False, float_format=CSV_FLOATS),
             "md": _markdown_page(title, legend, sections, empty),
             "tex": _latex_page(name, plain, sections, empty),
             "html": _html_page(plain, legend.replace("`", ""), sections, empty)}
    paths = [layout.table_file(run, name, fmt_) for fmt_ in layout.TABLE_FORMATS]
    for path, fmt_ in zip(paths, layout.TABLE_FORMATS):
        io.write_text(path, texts[fmt_])
    return paths
