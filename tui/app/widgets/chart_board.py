"""``ChartBoard``: one run's scalar metrics as a grid of charts, with the chart options.

Which metrics get a chart, and which share one, is a list of :class:`Panel` objects (see
:mod:`tui.app.widgets.panel`). Smoothing, the x-axis, log-y, the cursor and the x-range
apply to every chart. Live updates redraw only the charts that show a changed metric.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.message import Message
from textual.reactive import reactive
from textual.widgets import Static

from tui.app.widgets.chart_cursor import CURSOR_BINDINGS, ChartCursor, CursorKeys
from tui.app.widgets.chart_grid import ChartGrid
from tui.app.widgets.chart_options import BUILTIN_AXES, axis_label, next_axis, step_smoothing
from tui.app.widgets.metric_chart import MetricChart
from tui.app.widgets.panel import (
    Panel,
    default_placements,
    metric_order,
    panel_title,
    panel_traces,
    panels_for,
)
from tui.core.store import Run


class ChartBoard(CursorKeys, Vertical):
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
        Binding("f", "toggle_full_range", "Full y-range"),
        *CURSOR_BINDINGS,
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
    """EMA strength of every chart (one of the chart options' smoothing steps)."""
    x_axis: reactive[str] = reactive("step", init=False)
    """``step``, ``time``, ``relative`` or the name of a numeric metric."""
    log_y: reactive[bool] = reactive(False, init=False)
    """Logarithmic y-axes on every chart."""
    full_range: reactive[bool] = reactive(False, init=False)
    """Scale the charts to every value; by default outliers are left out of the y-range."""

    class PickRequested(Message):
        """The user asked to choose which metrics go where (the screen shows a picker)."""

        def __init__(self, board: ChartBoard, order: list[str], placements: dict[str, str]) -> None:
            super().__init__()
            self.board = board
            self.order = order
            self.placements = placements

    class OptionsChosen(Message):
        """The user changed the smoothing or the x-axis (the screen remembers them)."""

        def __init__(self, smoothing: float, x_axis: str) -> None:
            super().__init__()
            self.smoothing = smoothing
            self.x_axis = x_axis

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
        self.chart_cursor = ChartCursor()

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
            self.chart_cursor.clear()
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
        chart.full_range = self.full_range
        chart.clock_x = self.x_axis == "time"
        chart.x_label = axis_label(self.x_axis)
        chart.cursor_x = self.chart_cursor.x
        chart.x_window = self.chart_cursor.window
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
        line.append(f" · y-range {'full' if self.full_range else 'no outliers'} (f)")
        line.append(f" · {shown} of {len(self.order)} metrics (a)")
        window = self.chart_cursor.describe(self.charts)
        if window:
            line.append(" · ")
            line.append(window + " ", style="bold")
            line.append("({ } pan, 0: all)")
        else:
            line.append(" · ) ( zoom x")
        self.query_one("#chart-options", Static).update(line)

    # Options ----------------------------------------------------------------------------
    def watch_smoothing(self) -> None:
        self._options_changed(redraw=False)

    def watch_log_y(self) -> None:
        self._options_changed(redraw=False)

    def watch_full_range(self) -> None:
        self._options_changed(redraw=False)

    def watch_x_axis(self) -> None:
        self.chart_cursor.clear()
        self._options_changed(redraw=True)

    def _options_changed(self, redraw: bool) -> None:
        for chart in self.charts:
            self._apply_options(chart)
        if redraw:
            self._draw(range(len(self.panels)))
        self._show_options()

    def cursor_charts(self) -> Sequence[MetricChart]:
        """Every chart of the board: the cursor stands at the same x on all of them."""
        return self.charts

    def cursor_changed(self) -> None:
        """Name the x-range shown in the options line."""
        self._show_options()

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        """Home and end move the cursor while it shows, else scroll the grid."""
        available = self.cursor_action(action)
        return True if available is None else available

    def _chosen(self) -> None:
        self.post_message(self.OptionsChosen(self.smoothing, self.x_axis))

    def axes(self) -> list[str]:
        """The x-axes to cycle through: step, wall time, time since start, numeric metrics."""
        run = self.run_data
        metrics = sorted(run.series) if run is not None else []
        return [*BUILTIN_AXES, *metrics]

    def action_next_axis(self) -> None:
        """Switch every chart to the next x-axis."""
        self.x_axis = next_axis(self.axes(), self.x_axis)
        self._chosen()

    def action_smoother(self) -> None:
        """Step the smoothing strength up."""
        self.smoothing = step_smoothing(self.smoothing, 1)
        self._chosen()

    def action_rougher(self) -> None:
        """Step the smoothing strength down."""
        self.smoothing = step_smoothing(self.smoothing, -1)
        self._chosen()

    def action_toggle_log(self) -> None:
        """Toggle logarithmic y-axes."""
        self.log_y = not self.log_y

    def action_toggle_full_range(self) -> None:
        """Scale the charts to every value, or leave outliers out."""
        self.full_range = not self.full_range

    def action_pick(self) -> None:
        """Ask the screen for the metric picker."""
        self.post_message(self.PickRequested(self, list(self.order), dict(self.placements)))
