"""The course's figure type and colours, shared by every picture.

Figures are built without pyplot, so nothing is shown, no global figure list grows and no
backend is chosen at import; a ``CourseFigure`` displays itself in a notebook as PNG.
"""

from __future__ import annotations

import io

from matplotlib.axes import Axes
from matplotlib.figure import Figure, SubFigure
from matplotlib.path import Path

__all__ = ["CourseFigure", "course_figure", "figure_of", "to_png"]

# Colours chosen to stay distinct for the common forms of colour blindness.
MESSAGE = "#1f5a96"
DUPLICATE = "#8e44ad"
DROPPED = "#7f8c8d"
CROSS = "#c0392b"
CRASH = "#d62728"
RECOVER = "#2e8b57"
TIMEOUT = "#d35400"
LOG = "#2c3e50"
LIFELINE = "#555555"
DOWN = "#bbbbbb"
PARTITION = "#f0c987"
DECISION_COLOURS = {"commit": "#2e8b57", "abort": "#c0392b"}
# Outcomes named otherwise (sagas: committed, compensated) take the colour of their kind.
DECISION_KINDS = {"committed": "commit", "aborted": "abort", "compensated": "abort"}
OTHER_DECISION = "#7f8c8d"
COST_COLUMNS = ("messages", "forced_writes", "lazy_writes", "delays")
PALETTE = ("#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2")

#: An hourglass: two triangles meeting at the centre, drawn as one closed marker path.
HOURGLASS = Path([(-1, 1), (1, 1), (-1, -1), (1, -1), (-1, 1)], closed=False)

LANE_INCHES = 1.9
ROW_INCHES = 0.3
LEGEND_INCHES = 2.1
LEFT_INCHES = 0.75
TOP_INCHES = 0.85
BOTTOM_INCHES = 0.35
FONT = 7.5


class CourseFigure(Figure):
    """A Figure that shows itself as a PNG in a notebook, with or without pyplot."""

    def _repr_png_(self) -> bytes:
        return to_png(self)


def to_png(figure: Figure, *, dpi: int = 100) -> bytes:
    """The figure as PNG bytes (for notebooks, files and tests)."""
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=dpi)
    return buffer.getvalue()


def course_figure(width: float, height: float) -> CourseFigure:
    return CourseFigure(figsize=(width, height), dpi=100)


# --- sequence diagrams -------------------------------------------------------------------


def figure_of(ax: Axes) -> Figure:
    """The top-level figure an axes draws into (callers may pass axes of a subfigure)."""
    figure = ax.get_figure()
    while isinstance(figure, SubFigure):
        figure = figure.figure
    if not isinstance(figure, Figure):
        raise TypeError("these axes belong to no figure")
    return figure
