"""results/<run>/config.html: the validated config every job read, as the HTML report shows it."""

from __future__ import annotations

import html
from pathlib import Path

from edco import io, layout
from edco.report.render import html_document


def write_config_page(config: dict, config_path: str | Path) -> Path:
    """The YAML at ``config_path`` (defaults filled, overrides applied) on one HTML page."""
    out = layout.config_page(config["run"])
    text = Path(config_path).read_text(encoding="utf-8")
    io.write_text(out, html_document(
        f"Configuration — run {config['run']}",
        f"<p class='note'>The validated configuration every job of this run read: {html.escape(str(config_path))}, "
        f"with the schema's defaults filled in and command-line overrides applied.</p><pre>{html.escape(text)}</pre>"))
    return out
