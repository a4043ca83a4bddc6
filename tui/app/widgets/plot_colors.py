"""Plot colours: the run palette, plotext colour names, and the same colours for Rich.

Plots are drawn by plotext, which names colours (``"cyan+"``), numbers them (0-255) or
takes ``(r, g, b)``; text beside a plot (legends, table headers) is styled with Rich. Every
conversion between the two goes through here, so a run has one colour in both.
"""

from __future__ import annotations

from collections.abc import Sequence

from plotext._dict import color_codes as _plotext_color_codes
from rich.color import Color
from rich.style import Style

from tui.app.widgets import palette as palette_mode
from tui.app.widgets.palette import RUN_RGB

PlotColor = str | int | tuple[int, int, int]
"""A plotext colour: a name such as ``"cyan+"``, a 0-255 index, or an ``(r, g, b)`` tuple."""

PALETTE: tuple[PlotColor, ...] = RUN_RGB
"""Run colours (see :mod:`tui.app.widgets.palette`): colour-blind-safe, none of them red,
which is reserved for the NaN/inf markers."""

PALETTE_16: tuple[str, ...] = (
    "cyan+",
    "orange+",
    "green+",
    "blue+",
    "orange",
    "gray+",
    "green",
    "magenta+",
)
"""The run colours in a 16-colour terminal (plotext names of :data:`RUN_ANSI`)."""

NONFINITE_COLOR = "red+"
"""Colour of the markers drawn where a value is NaN or infinite."""

BEST_COLORS: tuple[str, ...] = ("orange+", "magenta+", "green+", "cyan+", "blue+")
"""Colours of the best runs of a sweep, best first (bright ANSI: safe in 16 colours)."""

OTHER_COLOR = "gray"
"""Colour of the runs of a sweep that are not among the best."""

_ANSI_CODES: dict[str, int] = dict(_plotext_color_codes)
"""plotext's colour names and their ANSI numbers; any other string draws uncoloured."""


def color_for(index: int) -> PlotColor:
    """Return the palette colour for the ``index``-th run, so each run keeps one colour."""
    palette = PALETTE_16 if palette_mode.sixteen else PALETTE
    return palette[index % len(palette)]


def valid_color(color: object) -> bool:
    """Whether plotext would draw in ``color`` (a known name, a 0-255 index or an RGB)."""
    if isinstance(color, str):
        return color in _ANSI_CODES
    if isinstance(color, bool):
        return False
    if isinstance(color, int):
        return 0 <= color <= 255
    if isinstance(color, tuple) and len(color) == 3:
        return all(isinstance(c, int) and not isinstance(c, bool) and 0 <= c <= 255 for c in color)
    return False


def rich_color(color: PlotColor) -> Color:
    """The Rich colour of a plotext colour, to style text in a run's plot colour.

    Args:
        color: a plotext colour name (``"cyan+"``), a 0-255 index or an ``(r, g, b)`` tuple.

    Returns:
        The matching :class:`rich.color.Color`; the terminal's default colour for anything
        plotext would not recognise (plotext draws those uncoloured).
    """
    if not valid_color(color):
        return Color.default()
    if isinstance(color, str):
        return Color.from_ansi(_ANSI_CODES[color])
    if isinstance(color, int):
        return Color.from_ansi(color)
    return Color.from_rgb(*color)


def plot_style(color: PlotColor, *, bold: bool = False) -> Style:
    """The Rich style of text in a plotext colour (a legend entry, a column heading)."""
    return Style(color=rich_color(color), bold=bold)


def run_colors(indices: Sequence[int]) -> list[PlotColor]:
    """Each run's stable palette colour; one already taken in this view gets a free one.

    Stable colours come from a run's order of appearance, so two runs shown together can
    fall on the same palette entry; telling them apart matters more than the stable colour.
    """
    taken: set[PlotColor] = set()
    out = []
    palette = PALETTE_16 if palette_mode.sixteen else PALETTE
    for index in indices:
        color = color_for(index)
        if color in taken:
            color = next((c for c in palette if c not in taken), color)
        taken.add(color)
        out.append(color)
    return out
