"""Figures sized for the Dagster UI: at most `MAX_WIDTH_PX` wide, panels wrapped into rows.

The UI shows a plot embedded in markdown metadata at its natural size in a modal and clips
what is wider (about 1,200 px on a 1,600 px screen, less on a laptop). So every plot is
`MAX_WIDTH_IN` inches at `DPI` (880 px) or narrower, a plot with many panels grows
downwards (rows of panels) rather than sideways, and legends sit inside the figure.

Example:
    >>> pack_rows([3.0, 3.0, 3.0, 5.0])
    [[0, 1], [2, 3]]
    >>> pack_rows([12.0, 1.0])  # a panel wider than a row gets a row of its own
    [[0], [1]]
"""

from __future__ import annotations

import io
from collections.abc import Sequence
from pathlib import Path
from typing import Any

MAX_WIDTH_IN = 8.8
DPI = 100
MAX_WIDTH_PX = int(MAX_WIDTH_IN * DPI)
_STRETCH = 0.4  # a row filled less than this keeps its panels' own widths (blank to the right)


def pack_rows(widths: Sequence[float], max_width: float = MAX_WIDTH_IN) -> list[list[int]]:
    """Panel indices in rows, in order: a new row when the next panel would not fit."""
    rows: list[list[int]] = []
    used = 0.0
    for i, width in enumerate(widths):
        if rows and used + width <= max_width:
            rows[-1].append(i)
            used += width
        else:
            rows.append([i])
            used = width
    return rows


def new_figure(height_in: float, width_in: float = MAX_WIDTH_IN) -> Any:
    """A matplotlib ``Figure`` on the Agg canvas (no pyplot, no global backend switch)."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(min(width_in, MAX_WIDTH_IN), height_in), dpi=DPI,
                 layout="constrained")
    FigureCanvasAgg(fig)
    return fig


def panel_grid(fig: Any, widths: Sequence[float],
               max_width: float = MAX_WIDTH_IN) -> list[Any]:
    """One axes per panel of the given widths (inches), packed into rows that share the
    figure's width; a row filled less than 40 % keeps its panels' widths (the rest blank)."""
    widths = [min(w, max_width) for w in widths]
    rows = pack_rows(widths, max_width)
    subfigs = fig.subfigures(len(rows), 1, squeeze=False)[:, 0]
    axes: list[Any] = []
    for sub, row in zip(subfigs, rows, strict=True):
        ratios = [widths[i] for i in row]
        spare = max_width - sum(ratios)
        if sum(ratios) < _STRETCH * max_width:
            ratios.append(spare)
        row_axes = sub.subplots(1, len(ratios), squeeze=False, width_ratios=ratios)[0]
        axes.extend(row_axes[:len(row)])
        for blank in row_axes[len(row):]:
            blank.set_axis_off()
    return axes


def bar_panel(ax: Any, title: str, labels: Sequence[str], top: float) -> None:
    """A bar panel's ticks (slanted when many or long), title, WER axis and light grid."""
    ax.set_xticks(list(range(len(labels))))
    longest = max((len(lbl) for lbl in labels), default=0)
    rotate = longest * len(labels) > 30 or longest > 12
    ax.set_xticklabels(labels, rotation=35 if rotate else 0,
                       ha="right" if rotate else "center", fontsize=8,
                       rotation_mode="anchor" if rotate else "default")
    ax.set_ylim(0, top)
    ax.set_title(title, fontsize=10)
    ax.set_ylabel("WER (%)", fontsize=8)
    ax.tick_params(axis="y", labelsize=7)
    ax.grid(axis="y", alpha=0.3)
    ax.set_axisbelow(True)
    for side in ("top", "right"):
        ax.spines[side].set_visible(False)


def save_png(fig: Any, path: str | Path, max_bytes: int | None = None) -> Path:
    """Write `fig` as PNG (parent folders created); with `max_bytes`, at a lower dpi
    (100 -> 50) while the file would be larger. Returns the path."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    for dpi in (DPI, 80, 64, 50):
        buf = io.BytesIO()
        fig.savefig(buf, format="png", dpi=dpi)
        if max_bytes is None or buf.tell() < max_bytes:
            break
    path.write_bytes(buf.getvalue())
    return path
