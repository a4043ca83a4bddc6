"""``CompareScreen``: marked runs side by side: overlaid charts, config diff, metric summary."""

from __future__ import annotations

import math
from collections.abc import Sequence

from rich.text import Text
from textual import on
from textual.app import ComposeResult
from textual.binding import Binding
from textual.widgets import DataTable, Static, TabbedContent, TabPane

from tui.app.messages import RunsUpdated
from tui.app.screens.pick import PickMany
from tui.app.screens.run_set import (
    PLOT_BINDINGS,
    TABS,
    RunSetScreen,
    ordered_metrics,
    run_labels,
)
from tui.app.widgets.cells import config_text, fill_table, missing_cell, number_text
from tui.app.widgets.chart_cursor import CURSOR_BINDINGS, ChartCursor, CursorKeys
from tui.app.widgets.chart_options import (
    BUILTIN_AXES,
    axis_label,
    next_axis,
    points_against,
    step_smoothing,
)
from tui.app.widgets.key_footer import KeyFooter
from tui.app.widgets.metric_chart import MetricChart
from tui.app.widgets.plot_colors import PlotColor, plot_style, run_colors
from tui.app.widgets.plot_grid import PlotGrid
from tui.app.widgets.trace import Trace
from tui.core.shapes import format_number
from tui.core.store import Run
from tui.core.summary import config_diff, flatten, metric_mode, varying_keys

MAX_CHARTS = 6
"""Charts shown at first (the ``a`` picker shows any others)."""

SMOOTH = Binding.Group("Smooth", compact=True)
"""The footer group of the smoothing keys."""


class CompareScreen(CursorKeys, RunSetScreen):
    """Compare runs: overlaid charts, the config keys that differ, and a metric summary.

    Args:
        keys: the runs to compare, in column order (a pinned baseline first).
        baseline: the pinned baseline run, if it is among ``keys``.
    """

    CSS_PATH = ["run_set.tcss", "compare.tcss"]
    BINDINGS = [
        Binding("escape", "back", "Back"),
        Binding("1", "show_tab('charts')", "Charts", group=TABS),
        Binding("2", "show_tab('diff')", "Config diff", group=TABS),
        Binding("3", "show_tab('summary')", "Summary", group=TABS),
        Binding("a", "pick_metrics", "Metrics"),
        # The run view's chart keys, so hands need not relearn them here.
        Binding(
            "plus,equals_sign,right_square_bracket",
            "smoothing(1)",
            "Smooth more",
            key_display="+",
            group=SMOOTH,
        ),
        Binding(
            "minus,left_square_bracket",
            "smoothing(-1)",
            "Smooth less",
            key_display="-",
            group=SMOOTH,
        ),
        Binding("x", "cycle_x", "X-axis"),
        Binding("l", "toggle_log", "Log y"),
        Binding("f", "toggle_full_range", "Full y-range"),
        Binding("d", "toggle_all_keys", "All keys"),
        *PLOT_BINDINGS,
        *CURSOR_BINDINGS,
    ]

    def __init__(self, keys: list[str], baseline: str | None = None) -> None:
        super().__init__(keys)
        self.baseline = baseline if baseline in self.keys else None
        self.show_all_keys = False
        view = self.track_app.view  # the smoothing and x-axis last chosen for ROOT
        self.smoothing = view.chart_smoothing
        self.log_y = False
        self.full_range = False
        self.x_axis = view.x_axis if view.x_axis in BUILTIN_AXES else "step"
        self.chosen_metrics: list[str] | None = None
        self.chart_metrics: list[str] = []
        self._traces: dict[tuple[str, str], Trace | None] = {}
        self.charts: list[MetricChart] = []
        """The charts shown, in the order of ``chart_metrics``."""
        self.chart_cursor = ChartCursor()

    # Layout ---------------------------------------------------------------------------------
    def compose(self) -> ComposeResult:
        yield Static(id="legend")
        with TabbedContent(initial="charts"):
            with TabPane("Charts", id="charts"):
                yield Static(id="charts-info", classes="info")
                yield PlotGrid(id="chart-grid")
            with TabPane("Config diff", id="diff"):
                yield Static(id="diff-info", classes="info")
                yield DataTable(id="diff-table", cursor_type="row", zebra_stripes=True)
            with TabPane("Summary", id="summary"):
                yield Static(id="summary-info", classes="info")
                yield DataTable(id="summary-table", cursor_type="row", zebra_stripes=True)
        yield KeyFooter()

    def on_mount(self) -> None:
        self.refresh_legend()
        self.rebuild_charts()
        self.refresh_diff()
        self.refresh_summary()
        self.call_after_refresh(self.query_one(PlotGrid).focus_first)

    def colors_of(self, runs: Sequence[Run]) -> list[PlotColor]:
        """The plotext colour of each of ``runs`` (distinct within this view)."""
        return run_colors([self.track_app.color_of(run.key) for run in runs])

    def refresh_legend(self) -> None:
        """The header: which colour is which run."""
        runs = self.runs
        legend = Text(f"Compare {len(runs)} runs  ", style="bold")
        for run, label, color in zip(runs, run_labels(runs, self.names), self.colors_of(runs)):
            legend.append("● ", style=plot_style(color, bold=True))
            legend.append(label)
            if run.key == self.baseline:
                legend.append(" (baseline)", style="dim")
            legend.append("   ")
        self.query_one("#legend", Static).update(legend)

    # Charts -------------------------------------------------------------------------------
    def x_axes(self) -> list[str]:
        """The x-axes ``x`` cycles through: step, times, numeric metrics every run has."""
        runs = self.runs
        common = set.intersection(*(set(r.series) for r in runs)) if runs else set()
        return [*BUILTIN_AXES, *sorted(common)]

    def default_metrics(self) -> list[str]:
        """What the charts show unless chosen: the first metrics by :func:`ordered_metrics`."""
        return ordered_metrics(self.runs)[:MAX_CHARTS]

    def rebuild_charts(self) -> None:
        """One chart per metric shown, every trace recomputed."""
        self.chart_metrics = (
            self.chosen_metrics if self.chosen_metrics is not None else self.default_metrics()
        )
        self._traces.clear()
        self.charts = [MetricChart(classes="plot") for _ in self.chart_metrics]
        for chart, metric in zip(self.charts, self.chart_metrics):
            self._configure(chart, metric)
            chart.set_traces(self._chart_traces(metric))
        self.query_one(PlotGrid).set_plots(self.charts)
        self.refresh_chart_info()

    def _configure(self, chart: MetricChart, metric: str) -> None:
        chart.title = metric
        chart.x_label = axis_label(self.x_axis)
        chart.smoothing = self.smoothing
        chart.log_y = self.log_y
        chart.full_range = self.full_range
        chart.clock_x = self.x_axis == "time"
        chart.show_legend = False  # the header names every colour, for all charts at once
        chart.cursor_x = self.chart_cursor.x
        chart.x_window = self.chart_cursor.window
        chart.empty_message = f"no {metric} against {chart.x_label}"

    def _chart_traces(self, metric: str) -> list[Trace]:
        runs = self.runs
        traces = []
        for run, label, color in zip(runs, run_labels(runs, self.names), self.colors_of(runs)):
            key = (metric, run.key)
            if key not in self._traces:
                self._traces[key] = self._trace(run, metric, label, color)
            trace = self._traces[key]
            if trace is not None:
                traces.append(trace)
        return traces

    def _trace(self, run: Run, metric: str, label: str, color: PlotColor) -> Trace | None:
        series = run.series.get(metric)
        if series is None or not series.count:
            return None
        x, y = points_against(run, series, self.x_axis)
        return Trace(label, x, y, color)

    def refresh_chart_info(self) -> None:
        """The line above the charts: the options in effect (the key hints last, cut with
        an ellipsis when the line is too narrow for them)."""
        info = Text()
        shown, total = len(self.chart_metrics), len(ordered_metrics(self.runs))
        info.append(f"{shown} of {total} metrics", style="bold")
        info.append(" (a: choose)", style="dim")
        info.append(f" · x: {axis_label(self.x_axis)}")
        info.append(f" · smoothing {self.smoothing:g}" if self.smoothing else " · no smoothing")
        info.append(" · log y" if self.log_y else "")
        info.append(" · full y-range" if self.full_range else " · outliers off-scale (f)")
        window = self.chart_cursor.describe(self.charts)
        if window:
            info.append(" · ")
            info.append(window + " ", style="bold")
            info.append("({ } pan, 0: all)")
        info.append("   arrows move · z zooms · c cursor · ) ( zoom x", style="dim")
        self.query_one("#charts-info", Static).update(info)

    def action_smoothing(self, direction: int) -> None:
        """Step the EMA strength up or down (the run view's steps)."""
        self.smoothing = step_smoothing(self.smoothing, direction)
        self.track_app.remember(chart_smoothing=self.smoothing)
        for chart in self.charts:
            chart.smoothing = self.smoothing
        self.refresh_chart_info()

    def action_toggle_log(self) -> None:
        """Logarithmic y-axes on or off."""
        self.log_y = not self.log_y
        for chart in self.charts:
            chart.log_y = self.log_y
        self.refresh_chart_info()

    def action_toggle_full_range(self) -> None:
        """Scale the charts to every value, outliers included, or leave outliers out."""
        self.full_range = not self.full_range
        for chart in self.charts:
            chart.full_range = self.full_range
        self.refresh_chart_info()

    def action_cycle_x(self) -> None:
        """Next x-axis: step, time since start, wall time, then numeric metrics."""
        self.x_axis = next_axis(self.x_axes(), self.x_axis)
        self.track_app.remember(x_axis=self.x_axis)
        self.chart_cursor.clear()
        self._traces.clear()
        for chart, metric in zip(self.charts, self.chart_metrics):
            self._configure(chart, metric)
            chart.set_traces(self._chart_traces(metric))
        self.refresh_chart_info()

    def cursor_charts(self) -> Sequence[MetricChart]:
        """Every chart: the cursor stands at the same x on all of them."""
        return self.charts

    def cursor_changed(self) -> None:
        """Name the x-range shown in the line above the charts."""
        self.refresh_chart_info()

    def action_pick_metrics(self) -> None:
        """Choose the charted metrics."""

        def chosen(picked: list[str] | None) -> None:
            if picked is not None:
                self.chosen_metrics = picked
                self.rebuild_charts()

        self.app.push_screen(
            PickMany("Charted metrics", ordered_metrics(self.runs), self.chart_metrics), chosen
        )

    # Config diff --------------------------------------------------------------------------
    def refresh_diff(self) -> None:
        """The config keys that differ (or all of them), one column per run."""
        runs = self.runs
        flats = [flatten(run.config) for run in runs]
        total = len(set().union(*flats)) if flats else 0
        differing = set(varying_keys(flats))
        rows = []
        for key, _ in config_diff(runs, show_all=self.show_all_keys):
            cells = [config_text(flat[key]) if key in flat else missing_cell() for flat in flats]
            if key in differing and cells:
                reference = cells[0].plain
                for cell in cells[1:]:
                    if cell.plain != reference:
                        cell.stylize("bold yellow")
                name = Text(key, style="bold")
            else:
                for cell in cells:
                    cell.stylize("dim")
                name = Text(key, style="dim")
            rows.append((key, [name, *cells]))
        fill_table(self.query_one("#diff-table", DataTable), self._run_columns("key"), rows)
        info = Text(f"{len(differing)} of {total} keys differ", style="bold")
        if self.show_all_keys:
            info.append(" · showing all keys (d: only those that differ)", style="dim")
        else:
            info.append(" · d: show all keys", style="dim")
        info.append(" · values unlike the first run in yellow", style="dim")
        self.query_one("#diff-info", Static).update(info)

    def _run_columns(self, *heads: str) -> list[tuple[str, Text]]:
        runs = self.runs
        columns = [(f"_{head}", Text(head)) for head in heads]
        for run, label, color in zip(runs, run_labels(runs, self.names), self.colors_of(runs)):
            columns.append((run.key, Text(f"● {label}", style=plot_style(color, bold=True))))
        return columns

    @property
    def diff_keys(self) -> list[str]:
        """The config keys the diff table lists, in order."""
        table = self.query_one("#diff-table", DataTable)
        return [str(row.key.value) for row in table.ordered_rows]

    def action_toggle_all_keys(self) -> None:
        """Show every config key, or only those that differ."""
        self.show_all_keys = not self.show_all_keys
        self.refresh_diff()

    # Summary ------------------------------------------------------------------------------
    def refresh_summary(self) -> None:
        """Per metric and run: last value, best value (winner starred) and the step of best."""
        runs = self.runs
        rows = []
        for metric in ordered_metrics(runs):
            mode = metric_mode(metric)
            series = [run.series.get(metric) for run in runs]
            bests = [s.best(mode) if s is not None else (math.nan, None) for s in series]
            finite = [v for v, _ in bests if math.isfinite(v)]
            top = (max if mode == "max" else min)(finite) if finite else math.nan
            # Every run that reaches the best value gets the star, none when all tie.
            winners = {i for i, (v, _) in enumerate(bests) if v == top}
            if len(winners) == len(runs) > 1:
                winners = set()
            last = [number_text(s.last) if s is not None else missing_cell() for s in series]
            best_cells = []
            for i, (value, _) in enumerate(bests):
                if series[i] is None:
                    best_cells.append(missing_cell())
                elif i in winners:
                    best_cells.append(
                        Text(f"★ {format_number(value)}", style="bold green", justify="right")
                    )
                else:
                    best_cells.append(number_text(value))  # NaN: no finite value at all
            steps = [number_text(step) if step is not None else missing_cell() for _, step in bests]
            label = Text(f"{metric} ({mode})", style="bold")
            rows.append((f"{metric}\x00last", [label, Text("last"), *last]))
            rows.append((f"{metric}\x00best", [Text(""), Text("best"), *best_cells]))
            rows.append((f"{metric}\x00step", [Text(""), Text("step of best"), *steps]))
            if any(s is not None and s.nonfinite for s in series):
                bad = [
                    Text(f"{format_number(s.first_nonfinite_step)}", style="red", justify="right")
                    if s is not None and s.first_nonfinite_step is not None
                    else missing_cell()
                    for s in series
                ]
                rows.append((f"{metric}\x00bad", [Text(""), Text("first NaN/inf"), *bad]))
        table = self.query_one("#summary-table", DataTable)
        fill_table(table, self._run_columns("metric", "value"), rows)
        info = Text("★ best run per metric", style="bold green")
        info.append(" · NaN/inf in red · best is the min or max by the metric's name", style="dim")
        self.query_one("#summary-info", Static).update(info)

    def summary_cell(self, metric: str, row: str, key: str) -> str:
        """The summary's text for ``metric``'s ``row`` (last, best, step) of run ``key``."""
        table = self.query_one("#summary-table", DataTable)
        cell: Text = table.get_cell(f"{metric}\x00{row}", key)
        return cell.plain

    # Tabs and keys --------------------------------------------------------------------------
    @on(TabbedContent.TabActivated)
    def tab_shown(self, event: TabbedContent.TabActivated) -> None:
        """Focus the tab's content and show the keys that now apply."""
        if event.pane.id == "charts":
            self.query_one(PlotGrid).focus_first()
        else:
            event.pane.query_one(DataTable).focus()
        self.refresh_bindings()

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        """Chart keys on the charts tab only, ``d`` on the diff tab only."""
        if not self.is_mounted:
            return True
        active = self.query_one(TabbedContent).active
        if action in ("pick_metrics", "smoothing", "cycle_x", "toggle_log"):
            return active == "charts"
        cursor = self.cursor_action(action)
        if cursor is not None:
            return active == "charts" and cursor
        if action == "toggle_all_keys":
            return active == "diff"
        return super().check_action(action, parameters)

    def kill_targets(self) -> list[str]:
        """The compared runs (what I/T/K act on here)."""
        return list(self.keys)

    # Live updates ---------------------------------------------------------------------------
    def runs_updated(self, update: RunsUpdated) -> None:
        """Redraw what changed: charts of changed metrics of changed runs, the tables."""
        self.forget_names(update)
        if not self.concerns(update):
            return
        deltas = [d for d in update.deltas if d.key in self._keyset]
        if any(d.meta or d.created for d in deltas):
            self.refresh_legend()
            self.refresh_diff()
        if not any(d.metrics or d.replaced for d in deltas):
            return
        if self.chosen_metrics is None and self.default_metrics() != self.chart_metrics:
            self.rebuild_charts()
        else:
            stale = set()
            for d in deltas:
                for metric in self.chart_metrics:
                    if d.replaced or metric in d.metrics:
                        self._traces.pop((metric, d.key), None)
                        stale.add(metric)
            for chart, metric in zip(self.charts, self.chart_metrics):
                if metric in stale:
                    chart.set_traces(self._chart_traces(metric))
            self.refresh_chart_info()
        self.refresh_summary()
