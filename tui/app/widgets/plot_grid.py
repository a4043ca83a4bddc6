"""``PlotGrid``: a grid of plots that take focus, for screens of several plots."""

from __future__ import annotations

import math
from collections.abc import Sequence

from textual.containers import Grid
from textual.widget import Widget


def grid_columns(count: int, width: int) -> int:
    """Columns of a plot grid: side by side while each plot keeps about 40 cells."""
    if count <= 1:
        return 1
    fit = max(1, width // 40)
    return min(fit, 2 if count <= 4 else 3)


class PlotGrid(Grid):
    """A grid of plots that take focus: arrows move between them, ``z`` maximizes one.

    Rows share the height while each keeps ``min_plot_height`` lines; below that the rows
    keep that height and the grid scrolls (focusing a plot scrolls it into view).

    Args:
        min_plot_height: lines a plot needs to be readable.
        id: the widget's id.
    """

    def __init__(self, *, min_plot_height: int = 10, id: str | None = None) -> None:
        super().__init__(id=id)
        self.min_plot_height = min_plot_height

    def set_plots(self, plots: Sequence[Widget]) -> None:
        """Replace the plots (kept in order; the focused position is kept where it can be)."""
        focused = self.screen.focused if self.is_attached else None
        old = list(self.children)
        position = old.index(focused) if focused in old else None
        for plot in plots:
            plot.can_focus = True
        self._arrange(len(plots))
        if plots:
            self.mount_all(plots)
        for widget in old:
            widget.remove()
        if position is not None and plots:
            plots[min(position, len(plots) - 1)].focus()

    def _arrange(self, count: int) -> None:
        columns = grid_columns(count, self.size.width or self.app.size.width)
        rows = max(1, math.ceil(count / columns))
        self.styles.grid_size_columns = columns
        self.styles.grid_size_rows = rows
        height = self.size.height or self.app.size.height
        fits = height >= rows * self.min_plot_height
        self.styles.grid_rows = "1fr" if fits else str(self.min_plot_height)

    def on_resize(self) -> None:
        self._arrange(len(self.children))

    def focus_first(self) -> None:
        """Give the first plot the focus (what arrows and ``z`` then act on)."""
        if self.children:
            self.children[0].focus()

    def move(self, focused: Widget, dx: int, dy: int) -> None:
        """Focus the plot ``dx`` columns and ``dy`` rows away from ``focused``, if any."""
        plots = list(self.children)
        target = plots.index(focused) + dx + dy * (self.styles.grid_size_columns or 1)
        if 0 <= target < len(plots):
            plots[target].focus()
