"""``ChartGrid``: the scrolling grid a run's charts sit in."""

from __future__ import annotations

import math

from textual.containers import ScrollableContainer

WIDE = 110
"""Grid width from which charts go two to a row."""

MIN_CHART_HEIGHT = 10
"""Rows of one chart at least; the grid scrolls when more do not fit."""


class ChartGrid(ScrollableContainer, can_focus=True):
    """The scrolling grid the charts sit in (two columns when wide, one when narrow)."""

    DEFAULT_CSS = """
    ChartGrid {
        layout: grid;
        grid-size: 1;
        grid-gutter: 0 1;
        height: 1fr;
    }
    ChartGrid > MetricChart {
        height: 100%;
    }
    """

    def on_resize(self) -> None:
        self.layout_charts()

    def layout_charts(self) -> None:
        """Set columns and row heights for the number of charts and the space there is."""
        count = len(self.children)
        width, height = self.size
        columns = 2 if width >= WIDE and count > 1 else 1
        rows = max(1, math.ceil(count / columns))
        fits = height >= rows * MIN_CHART_HEIGHT
        self.styles.grid_size_columns = columns
        # Charts share the height when they fit; otherwise they keep a readable height
        # and the grid scrolls.
        self.styles.grid_rows = "1fr" if fits else str(MIN_CHART_HEIGHT)
