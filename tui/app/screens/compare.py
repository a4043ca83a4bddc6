"""``CompareScreen``: marked runs side by side: overlaid charts, config diff, metric summary.

Also home of the small pieces the sweep screen shares with it: run colours as Rich styles,
config values as text, a table filled in place, and a grid of focusable plots that arrows
move through and ``z`` maximizes.
"""

from __future__ import annotations

import json
import math
from collections import Counter
from collections.abc import Sequence

import numpy as np
from plotext._dict import color_codes as _plotext_color_codes
from rich.color import Color
from rich.style import Style
from rich.text import Text
from textual import on
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Grid
from textual.widget import Widget
from textual.widgets import DataTable, Footer, Static, TabbedContent, TabPane

from tui.app.messages import RunsUpdated
from tui.app.screens.base import StoreScreen
from tui.app.widgets.chart_board import BUILTIN_AXES, SMOOTHING_STEPS, axis_label
from tui.app.widgets.metric_chart import PALETTE, MetricChart, Trace, color_for
from tui.app.widgets.run_table import number_text
from tui.core.sanitize import sanitize
from tui.core.shapes import format_number
from tui.core.store import Run
from tui.core.summary import config_diff, flatten, key_metrics, metric_mode, varying_keys

MAX_CHARTS = 6
"""Charts shown at first (the ``a`` picker shows any others)."""

TABS = Binding.Group("Tabs", compact=True)
SMOOTH = Binding.Group("Smooth", compact=True)

_MISSING = Text("–", style="dim")


# Shared pieces ---------------------------------------------------------------------------
def plot_style(color: str | int, **attributes: bool) -> Style:
    """The Rich style of a plotext colour name (``"cyan+"``) or 0-255 index."""
    code = _plotext_color_codes.get(color, 7) if isinstance(color, str) else color
    return Style(color=Color.from_ansi(code), **attributes)


def run_colors(indices: Sequence[int]) -> list[str]:
    """Each run's stable palette colour; one already taken in this view gets a free one.

    Stable colours come from a run's order of appearance, so two compared runs can fall on
    the same palette entry; telling them apart matters more here than the stable colour.
    """
    taken: set[str] = set()
    out = []
    for index in indices:
        color = color_for(index)
        if color in taken:
            color = next((c for c in PALETTE if c not in taken), color)
        taken.add(color)
        out.append(color)
    return out


def run_labels(runs: Sequence[Run]) -> list[str]:
    """Runs' names, with the path added where two runs share a name (e.g. two MLflow stores)."""
    names = [run.name for run in runs]
    counts = Counter(names)
    return [
        name if counts[name] == 1 else f"{name} ({_tail(run.key, 30)})"
        for name, run in zip(names, runs)
    ]


def _tail(text: str, width: int) -> str:
    return text if len(text) <= width else "…" + text[-(width - 1) :]


def config_text(value: object) -> Text:
    """A config value as plain text: JSON spelling for booleans, null and containers."""
    if isinstance(value, bool) or value is None:
        return Text(json.dumps(value))
    if isinstance(value, (int, float)):
        return Text(str(value), no_wrap=True, overflow="ellipsis")
    if isinstance(value, str):
        shown = value
    else:
        try:
            shown = json.dumps(value, ensure_ascii=False, default=str)
        except (TypeError, ValueError):
            shown = repr(value)
    return Text(sanitize(shown, 80), no_wrap=True, overflow="ellipsis")


def ordered_metrics(runs: Sequence[Run]) -> list[str]:
    """Every scalar metric of ``runs``: those all of them report first, key metrics first."""
    names = [set(run.series) for run in runs]
    ranked = key_metrics(names, limit=len(set().union(*names)))
    common = set.intersection(*names) if names else set()
    return sorted(ranked, key=lambda name: name not in common)


MAX_CELL_WIDTH = 40
"""Widest a table column grows; longer values end in an ellipsis."""


def fill_table(
    table: DataTable[Text],
    columns: Sequence[tuple[str, Text]],
    rows: Sequence[tuple[str, Sequence[Text]]],
) -> None:
    """Show ``rows`` under ``columns`` in this order.

    Column widths are measured here, from the text, so that when only cells or the order
    changed the changed cells are updated in place and the rows re-sorted: the cursor and
    scroll position survive live updates and DataTable measures nothing again (re-adding
    or re-measuring a thousand rows costs a visible pause).
    """
    widths = [label.cell_len for _, label in columns]
    for _, cells in rows:
        for i, cell in enumerate(cells):
            if cell.cell_len > widths[i]:
                widths[i] = cell.cell_len
    widths = [max(1, min(w, MAX_CELL_WIDTH)) for w in widths]
    current = list(table.columns.values())
    if [(str(c.key.value), c.label.plain) for c in current] == [
        (key, label.plain) for key, label in columns
    ]:
        # Columns only grow, so values that toggle between lengths rebuild nothing.
        widths = [max(w, c.width) for w, c in zip(widths, current)]
    same_columns = [(str(c.key.value), c.label.plain, c.width) for c in current] == [
        (key, label.plain, w) for (key, label), w in zip(columns, widths)
    ]
    shown = [row.key.value for row in table.ordered_rows]
    wanted = [key for key, _ in rows]
    if same_columns and len(shown) == len(wanted) and set(shown) == set(wanted):
        keys = [key for key, _ in columns]
        for row, cells in rows:
            for column, cell in zip(keys, cells):
                if table.get_cell(row, column) != cell:
                    table.update_cell(row, column, cell)
        if shown != wanted and keys:
            # DataTable sorts by cell values; each row's first cell is its own object, so
            # its identity names the row.
            place = {id(table.get_cell(key, keys[0])): i for i, key in enumerate(wanted)}
            table.sort(keys[0], key=lambda cell: place[id(cell)])
        return
    table.clear(columns=True)
    for (key, label), width in zip(columns, widths):
        table.add_column(label, key=key, width=width)
    for key, cells in rows:
        table.add_row(*cells, key=key)


def grid_columns(count: int, width: int) -> int:
    """Columns of a plot grid: side by side while each plot keeps about 40 cells."""
    if count <= 1:
        return 1
    fit = max(1, width // 40)
    return min(fit, 2 if count <= 4 else 3)


PLOT_BINDINGS = [
    Binding("z", "zoom", "Zoom"),
    Binding("left", "move_plot(-1, 0)", "Plot on the left", show=False),
    Binding("right", "move_plot(1, 0)", "Plot on the right", show=False),
    Binding("up", "move_plot(0, -1)", "Plot above", show=False),
    Binding("down", "move_plot(0, 1)", "Plot below", show=False),
]
"""Keys of a :class:`PlotGrid`, declared by each screen so its help lists them."""


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


class TabbedPlotsScreen(StoreScreen):
    """A screen of tabs holding plots: number keys switch tabs, arrows move between plots,
    ``z`` zooms one, escape un-zooms and then leaves."""

    def _focused_plot(self) -> tuple[PlotGrid, Widget] | None:
        focused = self.focused
        if focused is not None and isinstance(focused.parent, PlotGrid):
            return focused.parent, focused
        return None

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        """Plot keys only while a plot has the focus (or one is zoomed)."""
        if action == "zoom":
            return self.maximized is not None or self._focused_plot() is not None
        if action == "move_plot":
            return self.maximized is None and self._focused_plot() is not None
        return True

    def action_move_plot(self, dx: int, dy: int) -> None:
        """Focus the plot left of, right of, above or below the focused one."""
        found = self._focused_plot()
        if found is not None:
            grid, plot = found
            grid.move(plot, dx, dy)

    def action_zoom(self) -> None:
        """Fill the screen with the focused plot, or restore the grid."""
        found = self._focused_plot()
        if self.maximized is not None:
            self.minimize()
        elif found is not None:
            self.maximize(found[1], container=False)
        self.refresh_bindings()

    def action_show_tab(self, tab: str) -> None:
        """Switch to a tab."""
        self.query_one(TabbedContent).active = tab

    def action_back(self) -> None:
        """Restore a zoomed plot, else go back to the run table."""
        if self.maximized is not None:
            self.minimize()
            self.refresh_bindings()
        else:
            self.dismiss()


# The screen --------------------------------------------------------------------------------
class CompareScreen(TabbedPlotsScreen):
    """Compare runs: overlaid charts, the config keys that differ, and a metric summary.

    Args:
        keys: the runs to compare, in column order (a pinned baseline first).
        baseline: the pinned baseline run, if it is among ``keys``.
    """

    CSS_PATH = "compare.tcss"
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
        Binding("d", "toggle_all_keys", "All keys"),
        *PLOT_BINDINGS,
    ]

    def __init__(self, keys: list[str], baseline: str | None = None) -> None:
        super().__init__()
        self.keys = list(dict.fromkeys(keys))
        self._keyset = frozenset(self.keys)
        self.baseline = baseline if baseline in self.keys else None
        self.show_all_keys = False
        self.smoothing = 0.0
        self.log_y = False
        self.x_axis = "step"
        self.chosen_metrics: list[str] | None = None
        self.chart_metrics: list[str] = []
        self._traces: dict[tuple[str, str], Trace | None] = {}
        self.charts: list[MetricChart] = []
        """The charts shown, in the order of ``chart_metrics``."""

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
        yield Footer()

    def on_mount(self) -> None:
        self.refresh_legend()
        self.rebuild_charts()
        self.refresh_diff()
        self.refresh_summary()
        self.call_after_refresh(self.query_one(PlotGrid).focus_first)

    @property
    def runs(self) -> list[Run]:
        """The compared runs the store knows, in column order."""
        return self.runs_of(self.keys)

    def colors_of(self, runs: Sequence[Run]) -> list[str]:
        """The plotext colour of each of ``runs`` (distinct within this view)."""
        return run_colors([self.track_app.color_of(run.key) for run in runs])

    def refresh_legend(self) -> None:
        """The header: which colour is which run."""
        runs = self.runs
        legend = Text(f"Compare {len(runs)} runs  ", style="bold")
        for run, label, color in zip(runs, run_labels(runs), self.colors_of(runs)):
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
        chart.show_legend = False  # the header names every colour, for all charts at once
        chart.empty_message = f"no {metric} against {chart.x_label}"

    def _chart_traces(self, metric: str) -> list[Trace]:
        runs = self.runs
        traces = []
        for run, label, color in zip(runs, run_labels(runs), self.colors_of(runs)):
            key = (metric, run.key)
            if key not in self._traces:
                self._traces[key] = self._trace(run, metric, label, color)
            trace = self._traces[key]
            if trace is not None:
                traces.append(trace)
        return traces

    def _trace(self, run: Run, metric: str, label: str, color: str) -> Trace | None:
        series = run.series.get(metric)
        if series is None or not series.count:
            return None
        x = run.x_values(series, self.x_axis)
        y = series.array()
        if self.x_axis != "step":
            # Another metric as x exists only in the records that logged it.
            keep = np.isfinite(x)
            x, y = x[keep], y[keep]
        return Trace(label, x, y, color)

    def refresh_chart_info(self) -> None:
        """The line above the charts: the options in effect."""
        info = Text()
        shown, total = len(self.chart_metrics), len(ordered_metrics(self.runs))
        info.append(f"{shown} of {total} metrics", style="bold")
        info.append(" (a: choose)", style="dim")
        info.append(f" · x: {axis_label(self.x_axis)}")
        info.append(f" · smoothing {self.smoothing:g}" if self.smoothing else " · no smoothing")
        info.append(" · log y" if self.log_y else "")
        info.append("   arrows move · z zooms", style="dim")
        self.query_one("#charts-info", Static).update(info)

    def action_smoothing(self, direction: int) -> None:
        """Step the EMA strength up or down (the run view's steps)."""
        if direction > 0:
            self.smoothing = next(
                (s for s in SMOOTHING_STEPS if s > self.smoothing), self.smoothing
            )
        else:
            lower = [s for s in SMOOTHING_STEPS if s < self.smoothing]
            self.smoothing = lower[-1] if lower else self.smoothing
        for chart in self.charts:
            chart.smoothing = self.smoothing
        self.refresh_chart_info()

    def action_toggle_log(self) -> None:
        """Logarithmic y-axes on or off."""
        self.log_y = not self.log_y
        for chart in self.charts:
            chart.log_y = self.log_y
        self.refresh_chart_info()

    def action_cycle_x(self) -> None:
        """Next x-axis: step, time since start, wall time, then numeric metrics."""
        axes = self.x_axes()
        position = axes.index(self.x_axis) if self.x_axis in axes else -1
        self.x_axis = axes[(position + 1) % len(axes)]
        self._traces.clear()
        for chart, metric in zip(self.charts, self.chart_metrics):
            self._configure(chart, metric)
            chart.set_traces(self._chart_traces(metric))
        self.refresh_chart_info()

    def action_pick_metrics(self) -> None:
        """Choose the charted metrics."""
        from tui.app.screens.pick import PickMany

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
            cells = [config_text(flat[key]) if key in flat else _MISSING.copy() for flat in flats]
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
        for run, label, color in zip(runs, run_labels(runs), self.colors_of(runs)):
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
            last = [number_text(s.last) if s is not None else _MISSING.copy() for s in series]
            best_cells = []
            for i, (value, _) in enumerate(bests):
                if series[i] is None:
                    best_cells.append(_MISSING.copy())
                elif i in winners:
                    best_cells.append(
                        Text(f"★ {format_number(value)}", style="bold green", justify="right")
                    )
                else:
                    best_cells.append(number_text(value))  # NaN: no finite value at all
            steps = [
                number_text(step) if step is not None else _MISSING.copy() for _, step in bests
            ]
            label = Text(f"{metric} ({mode})", style="bold")
            rows.append((f"{metric}\x00last", [label, Text("last"), *last]))
            rows.append((f"{metric}\x00best", [Text(""), Text("best"), *best_cells]))
            rows.append((f"{metric}\x00step", [Text(""), Text("step of best"), *steps]))
            if any(s is not None and s.nonfinite for s in series):
                bad = [
                    Text(f"{format_number(s.first_nonfinite_step)}", style="red", justify="right")
                    if s is not None and s.first_nonfinite_step is not None
                    else _MISSING.copy()
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
        return table.get_cell(f"{metric}\x00{row}", key).plain

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
        if action == "toggle_all_keys":
            return active == "diff"
        return super().check_action(action, parameters)

    def kill_targets(self) -> list[str]:
        """The compared runs (what I/T/K act on here)."""
        return list(self.keys)

    # Live updates ---------------------------------------------------------------------------
    def runs_updated(self, update: RunsUpdated) -> None:
        """Redraw what changed: charts of changed metrics of changed runs, the tables."""
        if not self.is_attached or not update.keys & self._keyset:
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
