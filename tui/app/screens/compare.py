"""``CompareScreen``: marked runs side by side: overlaid charts, config diff, metric summary.

Also home of the small pieces the sweep screen shares with it: run colours as Rich styles,
config values as text, a table filled in place, and a grid of focusable plots that arrows
move through and ``z`` maximizes.
"""

from __future__ import annotations

import json
import math
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
from textual.screen import Screen
from textual.widget import Widget
from textual.widgets import DataTable, Footer, Static, TabbedContent, TabPane
from textual.widgets.data_table import CellDoesNotExist, RowDoesNotExist

from tui.app.messages import RunsUpdated
from tui.app.widgets.metric_chart import PALETTE, MetricChart, Trace, color_for
from tui.app.widgets.run_table import number_text
from tui.core.sanitize import sanitize
from tui.core.shapes import format_number
from tui.core.store import Run
from tui.core.summary import config_diff, flatten, key_metrics, metric_mode, varying_keys

MAX_CHARTS = 6
"""Charts shown at first (the ``a`` picker shows any others)."""

SMOOTHING_STEPS = (0.0, 0.3, 0.6, 0.8, 0.9, 0.95, 0.99)
"""EMA strengths that ``+`` and ``-`` step through."""

X_LABELS = {"step": "step", "relative": "time since start (s)", "time": "wall time (s)"}
"""The built-in x-axes; any numeric metric every run has comes after them."""

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
    return [
        name if names.count(name) == 1 else f"{name} ({_tail(run.key, 30)})"
        for name, run in zip(names, runs)
    ]


def _tail(text: str, width: int) -> str:
    return text if len(text) <= width else "…" + text[-(width - 1) :]


def config_text(value: object) -> Text:
    """A config value as plain text: JSON spelling for booleans, null and containers."""
    if isinstance(value, bool) or value is None:
        shown = json.dumps(value)
    elif isinstance(value, (int, float, str)):
        shown = str(value)
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


def fill_table(
    table: DataTable[Text],
    columns: Sequence[tuple[str, Text]],
    rows: Sequence[tuple[str, Sequence[Text]]],
) -> None:
    """Show ``rows`` under ``columns``; when only cells changed, update them in place so the
    cursor and scroll position survive live updates."""
    same_columns = [(str(c.key.value), c.label.plain) for c in table.columns.values()] == [
        (key, label.plain) for key, label in columns
    ]
    if same_columns and [r.value for r in table.rows] == [key for key, _ in rows]:
        keys = [key for key, _ in columns]
        for row, cells in rows:
            for column, cell in zip(keys, cells):
                try:
                    table.update_cell(row, column, cell, update_width=True)
                except (CellDoesNotExist, RowDoesNotExist):
                    continue
        return
    table.clear(columns=not same_columns)
    if not same_columns:
        for key, label in columns:
            table.add_column(label, key=key)
    for key, cells in rows:
        table.add_row(*cells, key=key)


def grid_columns(count: int, width: int) -> int:
    """Columns of a plot grid: side by side while each plot keeps about 40 cells."""
    if count <= 1:
        return 1
    fit = max(1, width // 40)
    return min(fit, 2 if count <= 4 else 3)


class PlotGrid(Grid):
    """A grid of plots: each can take focus (arrows move between them, ``z`` maximizes).

    Rows share the height while each keeps ``min_plot_height`` lines; below that the rows
    keep that height and the grid scrolls (focusing a plot scrolls it into view).

    Args:
        min_plot_height: lines a plot needs to be readable.
        id: the widget's id.
    """

    BINDINGS = [
        Binding("left", "move(-1, 0)", "Left", show=False),
        Binding("right", "move(1, 0)", "Right", show=False),
        Binding("up", "move(0, -1)", "Up", show=False),
        Binding("down", "move(0, 1)", "Down", show=False),
        Binding("z", "zoom", "Zoom"),
    ]

    def __init__(self, *, min_plot_height: int = 10, id: str | None = None) -> None:
        super().__init__(id=id)
        self.min_plot_height = min_plot_height

    def set_plots(self, plots: Sequence[Widget]) -> None:
        """Replace the plots (kept in order; the focused position is kept where it can be)."""
        focused = self.screen.focused if self.is_attached else None
        position = list(self.children).index(focused) if focused in self.children else None
        old = list(self.children)
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

    def action_move(self, dx: int, dy: int) -> None:
        """Focus the plot left, right, above or below the focused one."""
        plots = list(self.children)
        focused = self.screen.focused
        if focused not in plots:
            return
        target = plots.index(focused) + dx + dy * (self.styles.grid_size_columns or 1)
        if 0 <= target < len(plots):
            plots[target].focus()

    def action_zoom(self) -> None:
        """Fill the screen with the focused plot, or restore the grid."""
        screen = self.screen
        if screen.maximized is not None:
            screen.minimize()
        elif screen.focused in self.children:
            screen.maximize(screen.focused, container=False)


class TabbedPlotsScreen(Screen[None]):
    """A screen of tabs holding plots: number keys switch tabs, escape un-zooms then leaves."""

    def action_show_tab(self, tab: str) -> None:
        """Switch to a tab."""
        self.query_one(TabbedContent).active = tab

    def action_back(self) -> None:
        """Restore a zoomed plot, else go back to the run table."""
        if self.maximized is not None:
            self.minimize()
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
        Binding("plus,equals_sign", "smoothing(1)", "Smooth more", key_display="+", group=SMOOTH),
        Binding("minus", "smoothing(-1)", "Smooth less", key_display="-", group=SMOOTH),
        Binding("x", "cycle_x", "X-axis"),
        Binding("l", "toggle_log", "Log y"),
        Binding("d", "toggle_all_keys", "All keys"),
    ]

    def __init__(self, keys: list[str], baseline: str | None = None) -> None:
        super().__init__()
        self.keys = list(dict.fromkeys(keys))
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
        store = self.app.store  # type: ignore[attr-defined]
        return [store.runs[k] for k in self.keys if k in store.runs]

    def colors(self, runs: Sequence[Run]) -> list[str]:
        """The plotext colour of each of ``runs`` (distinct within this view)."""
        return run_colors([self.app.color_of(run.key) for run in runs])  # type: ignore[attr-defined]

    def refresh_legend(self) -> None:
        """The header: which colour is which run."""
        runs = self.runs
        legend = Text(f"Compare {len(runs)} runs  ", style="bold")
        for run, label, color in zip(runs, run_labels(runs), self.colors(runs)):
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
        return [*X_LABELS, *sorted(common)]

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
        chart.x_label = X_LABELS.get(self.x_axis, self.x_axis)
        chart.smoothing = self.smoothing
        chart.log_y = self.log_y
        chart.show_legend = False  # the header names every colour, for all charts at once
        chart.empty_message = f"no {metric} against {chart.x_label}"

    def _chart_traces(self, metric: str) -> list[Trace]:
        runs = self.runs
        traces = []
        for run, label, color in zip(runs, run_labels(runs), self.colors(runs)):
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
        info.append(f" · x: {X_LABELS.get(self.x_axis, self.x_axis)}")
        info.append(f" · smoothing {self.smoothing:g}" if self.smoothing else " · no smoothing")
        info.append(" · log y" if self.log_y else "")
        info.append("   arrows move · z zooms", style="dim")
        self.query_one("#charts-info", Static).update(info)

    def action_smoothing(self, direction: int) -> None:
        """Step the EMA strength up or down."""
        steps = SMOOTHING_STEPS
        position = min(range(len(steps)), key=lambda i: abs(steps[i] - self.smoothing))
        self.smoothing = steps[max(0, min(len(steps) - 1, position + direction))]
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
        for run, label, color in zip(runs, run_labels(runs), self.colors(runs)):
            columns.append((run.key, Text(f"● {label}", style=plot_style(color, bold=True))))
        return columns

    @property
    def diff_keys(self) -> list[str]:
        """The config keys the diff table lists, in order."""
        return [str(row.value) for row in self.query_one("#diff-table", DataTable).rows]

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
        return True

    def kill_targets(self) -> list[str]:
        """The compared runs (what I/T/K act on here)."""
        return list(self.keys)

    # Live updates ---------------------------------------------------------------------------
    def runs_updated(self, message: RunsUpdated) -> None:
        """Redraw what changed: charts of changed metrics of changed runs, the tables."""
        if not self.is_attached or not message.keys & set(self.keys):
            return
        deltas = [d for d in message.deltas if d.key in self.keys]
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
