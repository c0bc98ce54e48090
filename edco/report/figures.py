"""What every plot shares: seaborn's look, a fixed colour and marker per strategy, panel
grids, one legend outside the panels, and atomic saving (PNG for the report; PDF on request).

PNGs are saved with a 256-colour palette: plots are flat colours and lines, so this keeps
them sharp at a third of the size (the committed reference results stay small).
"""

from __future__ import annotations

import io as bytes_io
import math
from pathlib import Path

from PIL import Image  # matplotlib's own image library

from edco import io
from edco.config import BEYOND_PAPER_STRATEGIES
from edco.errors import UserFacingError

PARADIGM_MARKERS = {"sft": "o", "rl": "s"}
#: Formats a figure can be saved in; the workflow asks for PNG only.
FORMATS = ("png", "pdf")


def pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import seaborn as sns

    sns.set_theme(style="whitegrid", context="paper", font_scale=1.15)
    return plt


def require(frame, columns: list[str], what: str) -> None:
    missing = [c for c in columns if c not in getattr(frame, "columns", [])]
    if frame is None or missing or frame.empty:
        detail = f"missing columns {missing}" if missing else "no rows"
        raise UserFacingError(f"plot {what}: nothing to plot ({detail}); are the runs and evaluations finished?")


def order(values) -> list:
    return list(dict.fromkeys(values))


#: Every strategy keeps its colour in every plot and every run, whichever subset a plot
#: shows: the paper's four, then the six beyond-paper ones, take the ten colours of the
#: colour-blind palette in this order; other names get the remaining colours after them.
STRATEGY_ORDER = ("random", "static_difficulty", "edco", "edco_full")


#: Marker per strategy where markers carry the strategy (accuracy_vs_time), same slots as colours.
STRATEGY_MARKERS = ("o", "s", "D", "^", "v", "P", "X", "p", "h", "<")


def _slots(strategies: list[str]) -> dict[str, int]:
    """A fixed slot per strategy: the paper's four, the six beyond-paper ones, then the rest."""
    known = [*STRATEGY_ORDER, *BEYOND_PAPER_STRATEGIES]
    return {s: i for i, s in enumerate([*known, *(s for s in strategies if s not in known)])}


def strategy_colours(strategies: list[str]) -> dict:
    import seaborn as sns

    slot = _slots(strategies)
    colours = sns.color_palette("colorblind", 10) + sns.color_palette("dark", max(len(slot) - 10, 1))
    return {s: colours[slot[s] % len(colours)] for s in strategies}


def strategy_markers(strategies: list[str]) -> dict:
    slot = _slots(strategies)
    return {s: STRATEGY_MARKERS[slot[s] % len(STRATEGY_MARKERS)] for s in strategies}


def column_count(keys: list[tuple]) -> int:
    """Columns of a panel grid: the distinct values of the keys' last component (e.g. the
    paradigms), or of the last two when the last has one value; at most 4."""
    for depth in range(1, len(keys[0]) + 1):
        n = len({k[-depth:] for k in keys})
        if n > 1:
            return min(n, 4)
    return 1


def panels(keys: list[tuple], ncols: int | None = None, width: float = 3.9, height: float = 3.1,
            sharey: bool = True, sharex: bool = False):
    """A grid of axes, one per key, in order; unused cells hidden. Returns (fig, {key: ax})."""
    plt = pyplot()
    ncols = ncols or column_count(keys)
    nrows = math.ceil(len(keys) / ncols)
    fig, axes = plt.subplots(nrows, ncols, figsize=(width * ncols + 1.8, height * nrows + 0.8), squeeze=False,
                             sharey=sharey, sharex=sharex, layout="constrained")
    flat = axes.ravel()
    for ax in flat[len(keys):]:
        ax.set_visible(False)
    for ax in flat[:len(keys)]:
        ax.tick_params(labelleft=True)  # shared axes still get their tick labels on every panel
    return fig, dict(zip(keys, flat))


def outer_labels(axes: dict, ncols: int, xlabel: str, ylabel: str) -> None:
    """The x label under the bottom panel of each column, the y label left of each row."""
    flat = list(axes.values())
    for i, ax in enumerate(flat):
        ax.set_ylabel(ylabel if i % ncols == 0 else "")
        ax.set_xlabel(xlabel if i + ncols >= len(flat) else "")


def clip_to_fraction(axes: dict) -> None:
    """Accuracy is a fraction: a t-interval of 2 seeds reaching past 0 or 1 is cut at the frame."""
    for ax in axes.values():
        low, high = ax.get_ylim()
        ax.set_ylim(max(low, -0.02), min(high, 1.02))


def panel_title(key: tuple) -> str:
    return " · ".join(str(k) for k in key)


def legend(fig, handles, labels, title: str | None = None) -> None:
    """One legend for the figure, outside the panels on the right, so it hides no data. A long
    list (ten strategies and the markers' key) gets a taller figure rather than running into
    the title (~0.3 inch per entry)."""
    fig.set_figheight(max(fig.get_figheight(), 0.3 * (len(labels) + 2)))
    fig.legend(handles, labels, title=title, loc="outside right center", frameon=False)


def _write_png(fig, path: Path) -> None:
    """The figure at 150 dpi, as a palette PNG (``compact_png``)."""
    buffer = bytes_io.BytesIO()
    fig.savefig(buffer, format="png", dpi=150, bbox_inches="tight")
    compact_png(buffer, path)


def compact_png(source, path: Path) -> Path:
    """A PNG (a path or a file object) written to ``path`` with a 256-colour palette, no
    dithering (flat colours stay flat): about a third of the size of the RGBA original."""
    image = Image.open(source).convert("RGB").quantize(256, method=Image.Quantize.MEDIANCUT, dither=Image.Dither.NONE)
    with io.atomic_path(path) as tmp:
        image.save(tmp, format="png", optimize=True)
    return Path(path)


def save(fig, stem: Path, formats: tuple[str, ...] = ("png",)) -> list[Path]:
    """<stem>.<format> for each of ``formats`` (atomically); closes the figure."""
    unknown = sorted(set(formats) - set(FORMATS))
    if unknown:
        raise UserFacingError(f"figure format {unknown}: choose from {', '.join(FORMATS)}")
    stem = Path(stem)
    paths = []
    for ext in formats:
        path = stem.with_name(f"{stem.name}.{ext}")
        if ext == "png":
            _write_png(fig, path)
        else:
            with io.atomic_path(path) as tmp:
                fig.savefig(tmp, format=ext, bbox_inches="tight")
        paths.append(path)
    pyplot().close(fig)
    return paths


def message_plot(title: str, message: str):
    """A figure that says why there is nothing to draw (an output the workflow expects)."""
    fig, ax = pyplot().subplots(figsize=(6, 2.2))
    ax.axis("off")
    ax.text(0.5, 0.5, message, ha="center", va="center", wrap=True, fontsize=11)
    fig.suptitle(title)
    return fig


def acc_panels(frame):
    """Panels (model, mode, domain) for the accuracy plots: columns domains (or modes, with
    one domain), rows model x mode."""
    domains = order(frame["domain"])
    rows = order(zip(frame["model"], frame["mode"]))
    keys = [(model, mode, domain) for model, mode in rows for domain in domains]
    return keys, column_count(keys)


def marker_handles(paradigms: list[str]):
    from matplotlib.lines import Line2D

    return [Line2D([], [], color="0.3", marker=PARADIGM_MARKERS.get(p, "D"), ls="", label=p) for p in paradigms]


def strategy_handles(palette: dict):
    from matplotlib.patches import Patch

    return [Patch(color=c, label=s) for s, c in palette.items()]


def run_suffix(run: str) -> str:
    return f" — run {run}" if run else ""

