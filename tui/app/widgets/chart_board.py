"""``ChartBoard``: one run's scalar metrics as a grid of charts, with the chart options.

A *panel* is one chart: by default each scalar metric gets its own (the key metrics first,
at most :data:`MAX_DEFAULT_PANELS`); the user can hide metrics, give them their own chart,
or put them on the left or right y-axis of one shared chart (as Valohai's charts allow).
Smoothing, the x-axis and log-y apply to every chart. Live updates redraw only the charts
that show a changed metric.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np
from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import ScrollableContainer, Vertical
from textual.message import Message
from textual.reactive import reactive
from textual.widgets import Static

from tui.app.widgets.metric_chart import MetricChart, Trace, color_for
from tui.core.shapes import format_number
from tui.core.store import Run
from tui.core.summary import key_metrics

MAX_DEFAULT_PANELS = 8
"""Charts shown by default; further metrics start hidden (``a`` shows them)."""

SMOOTHING_STEPS: tuple[float, ...] = (0.0, 0.6, 0.8, 0.9, 0.95, 0.99)
"""EMA strengths that ``+`` and ``-`` step through."""

PLACEMENTS: tuple[str, ...] = ("hidden", "own", "left", "right")
"""Where a metric can go: nowhere, its own chart, or the shared chart's left/right axis."""

PLACEMENT_LABELS = {
    "hidden": "hidden",
    "own": "own chart",
    "left": "shared chart, left axis",
    "right": "shared chart, right axis",
}

BUILTIN_AXES: tuple[str, ...] = ("step", "time", "relative")
"""X-axes every run has; any numeric metric follows them in the cycle."""

AXIS_LABELS = {"step": "step", "time": "wall time (epoch s)", "relative": "s since start"}

WIDE = 110
"""Board width from which charts go two to a row."""

MIN_CHART_HEIGHT = 10
"""Rows of one chart at least; the grid scrolls when more do not fit."""


@dataclass(frozen=True)
class Panel:
    """One chart: metrics measured against the left and the right y-axis."""

    title: str
    left: tuple[str, ...]
    right: tuple[str, ...] = ()
    shared: bool = False

    @property
    def metrics(self) -> tuple[str, ...]:
        """Every metric drawn on the chart, left axis first."""
        return self.left + self.right


def metric_order(names: Iterable[str]) -> list[str]:
    """Metrics in display order: validation losses and accuracies first, lr and epoch last."""
    names = list(names)
    return key_metrics([names], limit=len(names))


def default_placements(order: list[str], cap: int = MAX_DEFAULT_PANELS) -> dict[str, str]:
    """Each of the first ``cap`` metrics on its own chart, the rest hidden."""
    return {name: ("own" if i < cap else "hidden") for i, name in enumerate(order)}


def panels_for(order: list[str], placements: dict[str, str]) -> list[Panel]:
    """The charts for ``placements``: the shared chart first (if any), then one per metric."""
    left = tuple(n for n in order if placements.get(n) == "left")
    right = tuple(n for n in order if placements.get(n) == "right")
    panels = []
    if left or right:
        panels.append(Panel("shared", left, right, shared=True))
    panels.extend(Panel(n, (n,)) for n in order if placements.get(n, "hidden") == "own")
    return panels


def axis_label(axis: str) -> str:
    """The x-axis name shown under the charts."""
    return AXIS_LABELS.get(axis, axis)


def panel_traces(run: Run, panel: Panel, axis: str, order: list[str]) -> list[Trace]:
    """The traces of one chart: a metric's x values on ``axis`` against its values.

    A metric alone on its chart keeps its colour from the run's metric order; metrics on
    the shared chart take the palette in turn, so they stay apart.
    """
    traces = []
    for i, name in enumerate(panel.metrics):
        series = run.series.get(name)
        if series is None:
            continue
        x = run.x_values(series, axis)
        y = series.array()
        if axis not in BUILTIN_AXES:
            # Records that do not carry the x metric have no place on this axis.
            keep = np.isfinite(x)
            x, y = x[keep], y[keep]
        index = i if panel.shared else (order.index(name) if name in order else i)
        side = "right" if name in panel.right else "left"
        traces.append(Trace(name, x, y, color=color_for(index), axis=side))
    return traces


def panel_title(run: Run, panel: Panel) -> str:
    """A chart's title: the metric and its last value, or what the shared chart holds."""
    if panel.shared:
        parts = []
        if panel.left:
            parts.append("left: " + ", ".join(panel.left))
        if panel.right:
            parts.append("right: " + ", ".join(panel.right))
        return " · ".join(parts)
    series = run.series.get(panel.title)
    if series is None or not series.count:
        return panel.title
    return f"{panel.title} = {format_number(series.last)}"


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


class ChartBoard(Vertical):
    """A run's metrics as a grid of :class:`MetricChart` widgets with shared options.

    The screen calls :meth:`show_run` for a whole new picture and :meth:`metrics_changed`
    with the names a live update touched.
    """

    BINDINGS = [
        Binding("a", "pick", "Metrics…"),
        Binding("plus,equals_sign,right_square_bracket", "smoother", "Smooth+", key_display="+"),
        Binding("minus,left_square_bracket", "rougher", "Smooth-", key_display="-"),
        Binding("x", "next_axis", "X-axis"),
        Binding("l", "toggle_log", "Log-y"),
    ]

    DEFAULT_CSS = """
    ChartBoard {
        height: 1fr;
    }
    ChartBoard > #chart-options {
        height: 1;
        color: $text-muted;
        padding: 0 1;
    }
    """

    smoothing: reactive[float] = reactive(0.0, init=False)
    """EMA strength of every chart (one of :data:`SMOOTHING_STEPS`)."""
    x_axis: reactive[str] = reactive("step", init=False)
    """``step``, ``time``, ``relative`` or the name of a numeric metric."""
    log_y: reactive[bool] = reactive(False, init=False)
    """Logarithmic y-axes on every chart."""

    class PickRequested(Message):
        """The user asked to choose which metrics go where (the screen shows a picker)."""

        def __init__(self, board: ChartBoard, order: list[str], placements: dict[str, str]) -> None:
            super().__init__()
            self.board = board
            self.order = order
            self.placements = placements

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self.run_data: Run | None = None
        self.order: list[str] = []
        self.placements: dict[str, str] = {}
        self.customised = False
        self.panels: list[Panel] = []
        self.charts: list[MetricChart] = []
        self.shown = True
        self._stale: set[int] = set()

    def compose(self) -> ComposeResult:
        yield Static(id="chart-options")
        yield ChartGrid()

    @property
    def grid(self) -> ChartGrid:
        """The container of the charts (the widget that takes focus)."""
        return self.query_one(ChartGrid)

    # Data -------------------------------------------------------------------------------
    def show_run(self, run: Run) -> None:
        """Lay out the charts for ``run`` from scratch and draw them."""
        self.run_data = run
        self._replan(force=True)

    def metrics_changed(self, run: Run, names: Iterable[str]) -> None:
        """Redraw the charts showing any of ``names``; add charts for new metrics."""
        self.run_data = run
        changed = set(names)
        if not changed:
            return
        if self._replan():
            return
        if self.x_axis in changed:
            # Every chart's x values come from that metric.
            self._draw(range(len(self.panels)))
            return
        self._draw(i for i, p in enumerate(self.panels) if changed.intersection(p.metrics))

    def set_placements(self, placements: dict[str, str]) -> None:
        """Apply the user's choice of where each metric goes."""
        self.placements = {n: placements.get(n, "hidden") for n in self.order}
        self.customised = True
        self._replan(force=True)

    def _replan(self, force: bool = False) -> bool:
        """Recompute the panels; rebuild the grid when they changed. True if rebuilt."""
        run = self.run_data
        if run is None:
            return False
        order = metric_order(run.series)
        reordered = order != self.order
        if reordered or force:
            if self.customised:
                placements = {n: self.placements.get(n, "hidden") for n in order}
            else:
                placements = default_placements(order)
            self.order, self.placements = order, placements
        if self.x_axis not in BUILTIN_AXES and self.x_axis not in run.series:
            # The metric used as x-axis is gone (a replaced history): back to steps.
            self.set_reactive(ChartBoard.x_axis, "step")
            for chart in self.charts:
                self._apply_options(chart)
            force = True
        panels = panels_for(self.order, self.placements)
        if panels == self.panels and not force:
            if reordered:
                self._show_options()
            return False
        self.panels = panels
        self._stale.clear()
        self._rebuild()
        return True

    def _rebuild(self) -> None:
        grid = self.grid
        with self.app.batch_update():
            grid.remove_children()
            self.charts = [MetricChart() for _ in self.panels]
            for chart in self.charts:
                self._apply_options(chart)
            if self.charts:
                grid.mount_all(self.charts)
            else:
                grid.mount(Static(Text("this run has no scalar metrics yet", style="dim")))
            grid.call_after_refresh(grid.layout_charts)
            self._draw(range(len(self.panels)))
            self._show_options()

    def set_shown(self, shown: bool) -> None:
        """Whether the charts are on screen; hidden charts are redrawn when shown again."""
        self.shown = shown
        if shown and self._stale:
            stale, self._stale = self._stale, set()
            self._draw(i for i in sorted(stale) if i < len(self.panels))

    def _draw(self, indexes: Iterable[int]) -> None:
        run = self.run_data
        if run is None:
            return
        if not self.shown:
            # Copying long series is the costly part: skip it while nobody looks.
            self._stale.update(indexes)
            return
        for i in indexes:
            panel, chart = self.panels[i], self.charts[i]
            chart.title = panel_title(run, panel)
            # A chart of one metric names it in its title; a legend would repeat it.
            chart.show_legend = panel.shared
            chart.set_traces(panel_traces(run, panel, self.x_axis, self.order))

    def _apply_options(self, chart: MetricChart) -> None:
        chart.smoothing = self.smoothing
        chart.log_y = self.log_y
        chart.x_label = axis_label(self.x_axis)
        if self.x_axis not in BUILTIN_AXES:
            chart.empty_message = f"no points with a value of {self.x_axis}"
        else:
            chart.empty_message = "no data yet"

    def _show_options(self) -> None:
        shown = sum(1 for v in self.placements.values() if v != "hidden")
        line = Text(no_wrap=True, overflow="ellipsis")
        strength = f"{self.smoothing:g}" if self.smoothing else "off"
        line.append(f"smoothing {strength} (+/-)")
        line.append(" · x: ")
        line.append(axis_label(self.x_axis), style="bold")
        line.append(" (x)")
        line.append(f" · log-y {'on' if self.log_y else 'off'} (l)")
        line.append(f" · {shown} of {len(self.order)} metrics (a)")
        self.query_one("#chart-options", Static).update(line)

    # Options ----------------------------------------------------------------------------
    def watch_smoothing(self) -> None:
        self._options_changed(redraw=False)

    def watch_log_y(self) -> None:
        self._options_changed(redraw=False)

    def watch_x_axis(self) -> None:
        self._options_changed(redraw=True)

    def _options_changed(self, redraw: bool) -> None:
        for chart in self.charts:
            self._apply_options(chart)
        if redraw:
            self._draw(range(len(self.panels)))
        self._show_options()

    def axes(self) -> list[str]:
        """The x-axes to cycle through: step, wall time, time since start, numeric metrics."""
        run = self.run_data
        metrics = sorted(run.series) if run is not None else []
        return [*BUILTIN_AXES, *metrics]

    def action_next_axis(self) -> None:
        """Switch every chart to the next x-axis."""
        axes = self.axes()
        index = axes.index(self.x_axis) if self.x_axis in axes else -1
        self.x_axis = axes[(index + 1) % len(axes)]

    def action_smoother(self) -> None:
        """Step the smoothing strength up."""
        higher = [s for s in SMOOTHING_STEPS if s > self.smoothing]
        if higher:
            self.smoothing = higher[0]

    def action_rougher(self) -> None:
        """Step the smoothing strength down."""
        lower = [s for s in SMOOTHING_STEPS if s < self.smoothing]
        if lower:
            self.smoothing = lower[-1]

    def action_toggle_log(self) -> None:
        """Toggle logarithmic y-axes."""
        self.log_y = not self.log_y

    def action_pick(self) -> None:
        """Ask the screen for the metric picker."""
        self.post_message(self.PickRequested(self, list(self.order), dict(self.placements)))
