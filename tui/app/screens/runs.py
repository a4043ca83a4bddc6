"""The main screen: every run in a sortable, filterable live table."""

from __future__ import annotations

import time
from typing import TYPE_CHECKING

from rich.text import Text
from textual import on
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.notifications import SeverityLevel
from textual.reactive import var
from textual.timer import Timer
from textual.widgets import Input, Static

from tui.app.messages import RunsUpdated
from tui.app.screens.base import StoreScreen
from tui.app.widgets.chart_strip import ChartStrip, StripRun
from tui.app.widgets.gpu_panel import GpuPanel
from tui.app.widgets.key_footer import KeyFooter
from tui.app.widgets.palette import distinct_colors
from tui.app.widgets.run_columns import (
    Column,
    age_column,
    config_column,
    duration_column,
    gpu_memory_column,
    gpu_util_column,
    metric_column,
    order_runs,
    rate_column,
    rules_column,
    status_column,
    step_column,
    text_column,
)
from tui.app.widgets.run_table import FROZEN, RunTable
from tui.core.names import unique_names
from tui.core.query import Query, QueryError, parse_query
from tui.core.sanitize import escape_path
from tui.core.store import Run
from tui.core.summary import flatten, key_metrics, varying_keys

if TYPE_CHECKING:
    from tui.app.widgets.choice_list import Choice

EVERY_RUN = parse_query("")
"""The empty filter: every run matches."""

MAX_CONFIG_COLUMNS = 8
"""Hyperparameter columns shown until the user picks them: the first that vary."""
METRIC_CHOICE = "metric:"
"""The column chooser's key of a metric (its last and best columns) is this and its name."""
CONFIG_CHOICE = "config:"
"""The same for a hyperparameter (its column's key)."""
BEST = "best"
"""The key that hides every metric's best-value column."""
STRIP_METRICS = 3
"""Metrics charted under the table (fewer where the terminal is narrow)."""
STRIP_RUNS = 8
"""Runs overlaid in the chart strip: the cursor run and the first marked ones."""
RESORT_DELAY = 0.3
CELL_INTERVAL = 0.1
"""Seconds between cell redraws while runs keep changing (data repaints at most ~10 Hz)."""
LOADING_CELL_INTERVAL = 1.0
"""The same while histories load: every redraw re-renders the visible table."""


def sort_label(column: Column) -> str:
    """A column's name out of context (``val_loss (best)`` rather than ``best↓``)."""
    if column.key.startswith("metric:best:"):
        return f"{column.key.removeprefix('metric:best:')} (best)"
    if column.key.startswith("metric:last:"):
        return f"{column.label} (last)"
    return column.label


class RunsScreen(StoreScreen):
    """Every run under ROOT: status, progress, key metrics, rules and varying hyperparameters.

    What the table shows is decided by the reactives below; changing any of them schedules
    one rebuild of the table, however many change at once.
    """

    BINDINGS = [  # its style, screens/runs.tcss, is loaded with the app's (TrackApp.CSS_PATH)
        Binding("enter", "open", "Open"),
        Binding("slash", "filter", "Filter", key_display="/"),
        Binding("space", "mark", "Mark"),
        Binding("a", "mark_all", "Mark all"),
        Binding("u", "unmark_all", "Unmark", show=False),
        Binding("c", "compare", "Compare"),
        Binding("w", "sweep", "Sweep"),
        Binding("s", "sort_menu", "Sort"),
        Binding("r", "reverse", "Reverse", show=False),
        Binding("b", "baseline", "Baseline", show=False),
        Binding("m", "columns", "Columns", show=False),
        Binding("tilde", "toggle_smoothed", "Smoothed last", show=False, key_display="~"),
        Binding("escape", "clear_filter", "Clear filter", show=False),
        Binding("j", "cursor_down", "Down", show=False),
        Binding("k", "cursor_up", "Up", show=False),
        Binding("g", "cursor_top", "Top", show=False),
        Binding("G", "cursor_bottom", "Bottom", show=False),
        Binding("p", "toggle_gpu_panel", "GPU panel", show=False),
        Binding("v", "toggle_strip", "Charts"),
        Binding("f", "toggle_full_range", "Full y-range", show=False),
        Binding("e", "export_csv", "Export table as CSV", show=False),
    ]

    sort_key: var[str | None] = var(None, init=False)
    """Key of the column the runs are sorted by; ``None`` sorts by name."""
    descending: var[bool] = var(False, init=False)
    """Sort from the largest value down (missing values stay last either way)."""
    smoothing: var[float] = var(0.0, init=False)
    """EMA strength of the last-value metric columns; 0 shows the raw last value."""
    filter_query: var[Query] = var(EVERY_RUN, init=False, always_update=True)
    """The filter (its ``text`` as typed): only runs it matches are shown."""
    chosen_metrics: var[tuple[str, ...] | None] = var(None, init=False)
    """The metric columns the user picked; ``None`` shows the key metrics of the runs."""
    chosen_config: var[tuple[str, ...] | None] = var(None, init=False)
    """The hyperparameter columns the user picked; ``None`` shows the first that vary."""

    def __init__(self) -> None:
        super().__init__()
        self._rebuild_scheduled = False
        self._resort_pending = False
        self._watch_shown: str | None = None
        self._gone_shown = False  # ROOT was gone when the watch mode was last told
        self._pending: set[str] = set()
        self._flush_timer: Timer | None = None
        self._flushed_at = 0.0
        self._view_restored = False  # changes are saved once the saved view is applied
        self._hidden_columns: list[Column] = []  # they still sort
        self._bars: dict[str, Text] = {}  # what the top and status bars show
        self.names: dict[str, str] = {}
        """Run key -> the name shown: unique, and telling where a run's own name is not."""

    def compose(self) -> ComposeResult:
        with Vertical(id="main"):
            yield Static(id="topbar")
            yield Input(
                placeholder="filter: lr<0.01 status:running name~resnet tag:baseline val_acc>=0.9",
                id="filter",
            )
            yield RunTable(id="runs")
            yield ChartStrip(id="strip")
            yield GpuPanel(id="gpu-panel")
            yield Static(id="statusbar")
        yield KeyFooter()

    @property
    def table(self) -> RunTable:
        return self.query_one(RunTable)

    @property
    def resort_pending(self) -> bool:
        """A re-sort is scheduled: the table's order may change within ``RESORT_DELAY``."""
        return self._resort_pending

    @property
    def filling(self) -> bool:
        """The table is still making the cells of rows below the first screenful."""
        table = self.query_one_optional(RunTable)  # gone while the app quits
        return table is not None and table.filling

    @property
    def strip(self) -> ChartStrip:
        return self.query_one(ChartStrip)

    def on_mount(self) -> None:
        self.track_app.take_first_previews()  # before the first frame, which shows them
        self._fit_strip(self.app.size.height)  # as the first frame is drawn, not after it
        self.query_one("#filter", Input).display = False
        self.query_one(GpuPanel).display = False
        self.restore_view()
        self.rebuild()
        self.table.focus()

    # The saved view -----------------------------------------------------------------------
    def restore_view(self) -> None:
        """Take the layout saved for ROOT (a filter that no longer parses is dropped)."""
        view = self.track_app.view
        try:
            self.filter_query = parse_query(view.filter)
        except QueryError:
            self.filter_query = EVERY_RUN
        if self.filter_query.text:
            self.query_one("#filter", Input).value = self.filter_query.text
            self.query_one("#filter", Input).display = True
        self.sort_key, self.descending = view.sort_key, view.descending
        self.chosen_metrics = view.metrics
        self.chosen_config = view.config
        self.smoothing = view.smoothing
        self.strip.display = view.strip
        self._view_restored = True

    def remember_view(self) -> None:
        """Save what the table shows now as the layout of ROOT."""
        self.track_app.remember(
            metrics=self.chosen_metrics,
            config=self.chosen_config,
            sort_key=self.sort_key,
            descending=self.descending,
            filter=self.filter_query.text,
            strip=bool(self.strip.display),
            smoothing=self.smoothing,
        )

    def on_screen_resume(self) -> None:
        self.rebuild()

    # What is shown ------------------------------------------------------------------------
    def watch_sort_key(self) -> None:
        self.schedule_rebuild()

    def watch_descending(self) -> None:
        self.schedule_rebuild()

    def watch_smoothing(self) -> None:
        # The last-value cells of every run change, not only their order.
        self.table.update_runs(self.track_app.store)
        self.schedule_rebuild()

    def watch_filter_query(self) -> None:
        self.schedule_rebuild()

    def watch_chosen_metrics(self) -> None:
        self.schedule_rebuild()

    def watch_chosen_config(self) -> None:
        self.schedule_rebuild()

    def schedule_rebuild(self) -> None:
        """Rebuild once, after the current message, however many options changed in it."""
        if self._view_restored:
            self.remember_view()
        if not self._rebuild_scheduled:
            self._rebuild_scheduled = True
            self.call_next(self.rebuild)

    # Data -------------------------------------------------------------------------------
    def runs_updated(self, update: RunsUpdated) -> None:
        """Redraw changed cells (at most ~10 times a second, the first change at once) and
        re-sort soon."""
        if not self.is_attached:
            return
        if any(d.created for d in update.deltas):
            self.rebuild()  # new runs show at once; only re-sorting waits
            return
        self._pending |= update.keys
        structural = any(d.meta or d.replaced for d in update.deltas)
        if (
            structural
            or self.sort_key is not None
            or not self.filter_query.empty
            or update.statuses
        ):
            self._schedule_resort()
        if self._flush_timer is None:
            loading = self.track_app.progress is not None
            interval = LOADING_CELL_INTERVAL if loading else CELL_INTERVAL
            wait = interval - (time.monotonic() - self._flushed_at)
            if wait <= 0:
                self._flush_cells()
            else:
                self._flush_timer = self.set_timer(wait, self._flush_cells)

    def _flush_cells(self) -> None:
        """Redraw the cells of runs that changed since the last flush."""
        self._flush_timer = None
        if not self.app.is_running:
            return  # a timer that fired while the app quits: the table may be gone
        self._flushed_at = time.monotonic()
        keys, self._pending = self._pending, set()
        self.table.update_runs(self.runs_of(keys))
        strip = self.strip
        if strip.display and not strip.keys.isdisjoint(keys):
            strip.data_changed()
        self.update_bars()

    def clock_ticked(self) -> None:
        """Redraw the ages and durations on screen that the clock moved on (an age of days
        changes once an hour: most ticks redraw no row); the top bar follows the watcher
        (ROOT gone, a fall back to polling)."""
        table = self.table
        top = int(table.scroll_y)
        shown = table.shown[top : top + table.size.height]
        table.update_runs(self.runs_of(shown), clock_only=True)
        self.update_bars()

    def _tell_watch_change(self, mode: str, gone: bool) -> None:
        """Notify once when watching changes while running, or starts without inotify."""
        before, self._watch_shown = self._watch_shown, mode
        was_gone, self._gone_shown = self._gone_shown, gone
        if mode == before or mode == "not watching":
            return
        starting = before is None or before == "not watching"
        if starting and not (mode.startswith("polling") and "inotify" in mode):
            return  # polling as asked, or for a network filesystem: the top bar says it
        severity: SeverityLevel = "error" if gone else "warning"
        if was_gone and not gone:
            mode, severity = f"ROOT is back; watching again ({mode})", "information"
        self.notify(mode, title="Watching files", severity=severity, timeout=10, markup=False)

    def _schedule_resort(self) -> None:
        if not self._resort_pending:
            self._resort_pending = True
            self.set_timer(RESORT_DELAY, self._resort)

    def _resort(self) -> None:
        self._resort_pending = False
        self.rebuild()

    def visible_runs(self) -> list[Run]:
        """Runs passing the filter, in display order."""
        app = self.track_app
        runs = list(app.store)
        matcher = self.filter_query
        if not matcher.empty:
            verdicts = app.verdicts
            runs = [
                r
                for r in runs
                if matcher.matches(
                    r,
                    {
                        "status": r.status,
                        "rules": {
                            v.rule for v in verdicts.get(r.key, ()) if v.state == "triggered"
                        },
                    },
                )
            ]
        column = None if self.sort_key is None else self.column_for(self.sort_key)
        return order_runs(runs, column, self.descending, self.table.baseline)

    def column_for(self, key: str) -> Column | None:
        """The column ``key``, shown or not: any metric's last or best value sorts."""
        columns = [*self.table.columns_spec, *self._hidden_columns]
        found = next((c for c in columns if c.key == key), None)
        if found is None and key.startswith(("metric:last:", "metric:best:")):
            _, kind, name = key.split(":", 2)
            found = metric_column(name, kind, lambda: self.smoothing)
        return found

    def metric_names(self, runs: list[Run]) -> list[str]:
        """The metrics with columns: the ones picked, else the key metrics of ``runs``."""
        if self.chosen_metrics is not None:
            return list(self.chosen_metrics)
        return key_metrics(r.series for r in runs)

    def config_keys(self, configs: list[dict[str, object]]) -> list[str]:
        """The hyperparameters with columns: the ones picked, else the first that vary
        among ``configs`` (the runs' flattened configs)."""
        if self.chosen_config is not None:
            return list(self.chosen_config)
        return varying_keys(configs)[:MAX_CONFIG_COLUMNS]

    def columns(self, runs: list[Run]) -> list[Column]:
        """Every column the table shows for ``runs``, hidden ones included: fixed ones, the
        metrics, rules, the hyperparameters."""
        app = self.track_app
        best_shown = BEST not in app.view.hidden
        # Most telling first, so an 80-column terminal shows what matters.
        columns = [
            status_column(),
            text_column("name", "name", lambda r: self.names.get(r.key, r.name), 32),
            step_column(),
        ]
        for name in self.metric_names(runs):
            columns.append(metric_column(name, "last", lambda: self.smoothing))
            if best_shown:
                columns.append(metric_column(name, "best", lambda: self.smoothing))
        if app.rules is not None:
            verdicts = app.verdicts
            columns.append(rules_column(lambda key: verdicts.get(key, ())))
        if app.telemetry.columns:
            columns += [gpu_memory_column(), gpu_util_column()]
        columns += [
            age_column(app.clock),
            duration_column(app.clock),
            rate_column(),
            text_column("format", "format", lambda r: r.format, 13, "the log's format"),
            text_column("path", "path", lambda r: escape_path(r.key), 48, "where it is in ROOT"),
        ]
        for key in self.config_keys([flatten(r.config) for r in runs]):
            columns.append(config_column(key))
        return columns

    def rebuild(self) -> None:
        """Recompute columns, filter and order, and show the result."""
        self._rebuild_scheduled = False
        if not self.is_attached:
            return
        table = self.table
        app = self.track_app
        names = unique_names((r.key, r.name) for r in app.store)
        renamed = [k for k, name in names.items() if self.names.get(k) != name]
        self.names = names
        hidden = set(app.view.hidden) - FROZEN
        shown: list[Column] = []
        self._hidden_columns = []
        for column in self.columns(list(app.store)):
            (self._hidden_columns if column.key in hidden else shown).append(column)
        if not table.set_columns(shown) and renamed:
            table.update_runs(self.runs_of(renamed))
        runs = self.visible_runs()
        table.show(runs)
        app.prioritize(r.key for r in runs[: table.size.height + 5])
        # After the table's frame: the first paint of a large ROOT waits for no chart.
        self.call_after_refresh(self.update_strip)
        self.update_bars()

    def update_bars(self) -> None:
        """The top bar (root, watcher, loading) and the status bar (counts, sort, filter)."""
        app = self.track_app
        store = app.store
        top = Text("tracktui ", style="bold")
        top.append(escape_path(app.root_label), style="cyan")
        mode = app.watch_mode
        if app.root_gone:
            top.append(f"  · {mode}", style="bold red")
        else:
            top.append(f"  · watch: {mode}", style="dim")
        self._tell_watch_change(mode, app.root_gone)
        if app.progress is not None:
            done, total = app.progress
            top.append(f"  · loading history {done}/{total}", style="yellow")
        if app.read_only:
            top.append("  · read-only", style="bold yellow")
        if app.auto_kill:
            top.append("  · auto-kill on", style="bold red")
        if app.rules_error:
            top.append("  · rules file has an error", style="bold red")
        if app.telemetry.note is not None:
            top.append(f"  · GPU: {app.telemetry.note}", style="dim")
        self._show_bar("#topbar", top)
        table = self.table
        bar = Text()
        if not store.runs:
            bar.append(f"waiting for runs under {escape_path(app.root_label)} …", style="yellow")
        else:
            bar.append(
                f"{len(store.runs)} runs · {len(table.shown)} shown · {len(table.marked)} marked"
            )
            if self.sort_key:
                column = self.column_for(self.sort_key)
                label = sort_label(column) if column is not None else self.sort_key
                bar.append(f" · sort: {label} {'↓' if self.descending else '↑'}")
            if self.smoothing:
                bar.append(f" · last values smoothed ({self.smoothing:.2f})")
            if self.filter_query.text:
                bar.append(" · filter: ")
                bar.append(self.filter_query.text, style="bold")
        self._show_bar("#statusbar", bar)

    def _show_bar(self, selector: str, text: Text) -> None:
        """Show ``text`` in a bar unless it shows that already: an update lays the whole
        screen out again, and most updates (a clock tick, a GPU reading) change nothing."""
        shown = self._bars.get(selector)
        if shown is None or shown != text or shown.style != text.style:
            self._bars[selector] = text
            self.query_one(selector, Static).update(text)

    # GPUs -------------------------------------------------------------------------------
    def shows_gpu(self) -> bool:
        """The GPU columns and panel: read the GPUs while the table is on top."""
        return True

    def telemetry_updated(self) -> None:
        """A GPU reading arrived: columns come (or go) with GPUs, the panel redraws."""
        if not self.is_attached:
            return
        has_columns = any(c.key == "gpu_mem" for c in self.table.columns_spec)
        if has_columns != self.track_app.telemetry.columns:
            self.schedule_rebuild()
        self._show_gpu_panel()
        self.update_bars()

    def _show_gpu_panel(self) -> None:
        panel = self.query_one(GpuPanel)
        if not panel.display:
            return
        app = self.track_app
        runs = app.store.runs

        def name_of(key: str) -> str:
            run = runs.get(key)
            return run.name if run is not None else key

        panel.show_state(app.telemetry.state, name_of, app.telemetry.interval)

    def action_toggle_gpu_panel(self) -> None:
        """Show or hide the host's GPUs under the table."""
        panel = self.query_one(GpuPanel)
        panel.display = not panel.display
        self._show_gpu_panel()
        if panel.display:
            self.track_app.telemetry.wake()

    # Filter -----------------------------------------------------------------------------
    def action_filter(self) -> None:
        field = self.query_one("#filter", Input)
        field.display = True
        field.value = self.filter_query.text
        field.focus()

    @on(Input.Submitted, "#filter")
    def apply_filter(self, event: Input.Submitted) -> None:
        """Parse the query; on an error keep the previous filter and say what is wrong."""
        text = event.value.strip()
        try:
            query = parse_query(text)
        except QueryError as exc:
            self.notify(str(exc), title="Filter not applied", severity="error", markup=False)
            return
        self.filter_query = query
        unknown = query.unknown_keys(self.track_app.store)
        if unknown:
            keys = ", ".join(f"`{escape_path(key)}`" for key in unknown)
            self.notify(
                f"no run has a key {keys}: check its spelling (config, metric or field)",
                title="Filter",
                severity="warning",
                markup=False,
            )
        event.input.display = bool(text)
        self.table.focus()

    def action_clear_filter(self) -> None:
        field = self.query_one("#filter", Input)
        if field.has_focus:
            field.display = bool(self.filter_query.text)
            self.table.focus()
            return
        if self.filter_query.text:
            self.filter_query = EVERY_RUN
            field.value = ""
            field.display = False

    # Marks, baseline ----------------------------------------------------------------------
    def action_mark(self) -> None:
        key = self.table.current_key
        if key is None:
            return
        marked = self.table.marked
        marked.symmetric_difference_update({key})
        self.table.refresh_marks()
        self.table.action_cursor_down()
        self._marks_changed()

    def action_mark_all(self) -> None:
        self.table.marked.update(self.table.shown)
        self.table.refresh_marks()
        self._marks_changed()

    def action_unmark_all(self) -> None:
        self.table.marked.clear()
        self.table.refresh_marks()
        self._marks_changed()

    def _marks_changed(self) -> None:
        self.update_strip()
        self.update_bars()
        self.refresh_kill_ready()  # marked runs are what the kill keys act on

    def action_baseline(self) -> None:
        key = self.table.current_key
        table = self.table
        table.baseline = None if table.baseline == key else key
        table.refresh_marks()
        self.schedule_rebuild()

    def kill_targets(self) -> list[str]:
        """Marked runs, else the current one (what I/T/K act on)."""
        if not self.query(RunTable):
            return []  # batches can arrive before the screen has composed its table
        table = self.table
        if table.marked:
            return [k for k in table.shown if k in table.marked]
        return [table.current_key] if table.current_key else []

    @on(RunTable.CursorMoved)
    def cursor_moved(self) -> None:
        """The kill keys act on the run under the cursor (unless runs are marked); the
        chart strip follows the cursor."""
        self.refresh_kill_ready()
        self.update_strip()

    # Chart strip --------------------------------------------------------------------------
    def strip_metrics(self, runs: list[Run]) -> list[str]:
        """The metrics charted: the chosen metric columns, else the key metrics of the
        charted runs (so a run of another format is not shown empty charts)."""
        if self.chosen_metrics:  # with no metric column picked, the charts pick their own
            return list(self.chosen_metrics[:STRIP_METRICS])
        return key_metrics((r.series for r in runs), STRIP_METRICS)

    def update_strip(self) -> None:
        """Chart the cursor run and the marked runs (only while the strip is shown)."""
        strip = self.strip
        if not strip.display:
            return
        table, app = self.table, self.track_app
        current = table.current_key
        keys = [k for k in table.shown if k in table.marked and k != current]
        keys = keys[: STRIP_RUNS - 1] + ([current] if current is not None else [])
        runs = self.runs_of(keys)
        colors = distinct_colors([app.color_of(run.key) for run in runs])
        strip.show(
            [
                StripRun(run, self.names.get(run.key, run.name), color, current=run.key == current)
                for run, color in zip(runs, colors)
            ],
            self.strip_metrics(runs),
        )

    def action_toggle_strip(self) -> None:
        """Show or hide the charts under the table."""
        strip = self.strip
        strip.display = not strip.display
        self.remember_view()
        self.update_strip()

    def action_toggle_full_range(self) -> None:
        """Scale the strip's charts to every value, or leave outliers out."""
        self.strip.full_range = not self.strip.full_range

    def on_resize(self) -> None:
        self._fit_strip(self.size.height)

    def _fit_strip(self, height: int) -> None:
        """A short terminal keeps its rows for the table."""
        self.strip.styles.height = 10 if height >= 36 else 7 if height >= 20 else 0

    # Export -------------------------------------------------------------------------------
    def table_rows(self) -> tuple[list[str], list[list[object]]]:
        """The table as shown (filtered, sorted, its columns): a header and the rows, with
        numbers at full precision and text as on screen."""
        table = self.table
        columns = table.columns_spec
        header = ["path", *(sort_label(c) for c in columns if c.key != "path")]
        rows: list[list[object]] = []
        for run in self.runs_of(table.shown):
            row: list[object] = [run.key]
            for column in columns:
                if column.key == "path":
                    continue
                value = column.value(run)
                if value is not None and value[0] == 0 and column.key not in ("status", "rules"):
                    row.append(value[1])
                else:
                    row.append(table.get_cell(run.key, column.key).plain)
            rows.append(row)
        return header, rows

    def action_export_csv(self) -> None:
        """Write the table as shown to a CSV file and say where."""
        from tui.core.exports import export_dir, export_name, table_csv

        header, rows = self.table_rows()
        try:
            path = export_dir() / export_name("table", "csv")
            path.write_text(table_csv(header, rows))
        except OSError as error:
            self.notify(str(error), title="Table not exported", severity="error", markup=False)
            return
        self.notify(
            f"{len(rows)} runs to {escape_path(str(path))}", title="Table exported", markup=False
        )

    # Sorting ------------------------------------------------------------------------------
    def sort_by(self, key: str, descending: bool | None = None) -> None:
        """Sort by column ``key``; by default ascending, or the other way when it already is."""
        if descending is None:
            descending = not self.descending if key == self.sort_key else False
        self.sort_key, self.descending = key, descending

    @on(RunTable.SortRequested)
    def header_clicked(self, event: RunTable.SortRequested) -> None:
        self.sort_by(event.column)

    def action_sort_menu(self) -> None:
        """Every column shown, then every metric's last value not shown as a column."""
        options = [(c.key, sort_label(c)) for c in self.table.columns_spec]
        shown = {key for key, _ in options}
        metrics = sorted({name for run in self.track_app.store for name in run.series})
        for name in metrics:
            if f"metric:last:{name}" not in shown:
                options.append((f"metric:last:{name}", f"{escape_path(name)} (last)"))

        def chosen(key: str | None) -> None:
            if key is not None:
                self.sort_by(key, self.descending if key == self.sort_key else None)

        from tui.app.screens.pick import PickOne

        self.app.push_screen(PickOne("Sort by", options, self.sort_key), chosen)

    def action_reverse(self) -> None:
        if self.sort_key is None:
            self.sort_key = "name"
        self.descending = not self.descending

    def action_toggle_smoothed(self) -> None:
        self.smoothing = 0.0 if self.smoothing else 0.6

    # Columns ----------------------------------------------------------------------------
    def column_choices(self) -> list[Choice]:
        """Every column the table can show, for the column chooser: each metric any run
        has (its last and best values), each hyperparameter, the other columns but status
        and name; in each section the ones shown first, in the table's order."""
        from tui.app.widgets.choice_list import Choice

        app = self.track_app
        runs = list(app.store)
        counts: dict[str, int] = {}
        for run in runs:
            for name in run.series:
                counts[name] = counts.get(name, 0) + 1

        def metric(name: str, shown: bool) -> Choice:
            count = counts.get(name, 0)
            note = "" if count == len(runs) else f"in {count} of {len(runs)} runs"
            return Choice(f"{METRIC_CHOICE}{name}", name, "Metrics", shown, note)

        metrics = self.metric_names(runs)
        choices = [metric(name, True) for name in metrics]
        choices += [metric(name, False) for name in sorted(counts.keys() - set(metrics))]

        configs = [flatten(r.config) for r in runs]
        varying = set(varying_keys(configs))

        def hyperparameter(key: str, shown: bool) -> Choice:
            note = "" if key in varying else "the same in every run"
            return Choice(f"{CONFIG_CHOICE}{key}", key, "Hyperparameters", shown, note)

        keys = self.config_keys(configs)
        every_key = {key for config in configs for key in config}
        choices += [hyperparameter(key, True) for key in keys]
        choices += [hyperparameter(key, False) for key in sorted(every_key - set(keys))]

        hidden = set(app.view.hidden)
        for column in self.columns(runs):
            if column.key in FROZEN or column.key.startswith(("metric:", CONFIG_CHOICE)):
                continue
            shown = column.key not in hidden
            choices.append(Choice(column.key, column.label, "Other columns", shown, column.about))
            if column.key == "step":
                about = "each metric's best value, beside its last"
                choices.append(Choice(BEST, "best", "Other columns", BEST not in hidden, about))
        return choices

    def action_columns(self) -> None:
        """Choose the columns shown and their order."""
        from tui.app.screens.column_chooser import ColumnChooser

        self.app.push_screen(ColumnChooser(self.column_choices()), self.apply_columns)

    def apply_columns(self, choices: tuple[Choice, ...] | None) -> None:
        """Show the columns ticked in the chooser, in its order, and remember them; a
        metric or hyperparameter list that is still the automatic one stays automatic."""
        if choices is None:
            return
        app = self.track_app
        runs = list(app.store)
        shown = [c.key for c in choices if c.shown]
        metrics = [k.removeprefix(METRIC_CHOICE) for k in shown if k.startswith(METRIC_CHOICE)]
        keys = [k.removeprefix(CONFIG_CHOICE) for k in shown if k.startswith(CONFIG_CHOICE)]
        if self.chosen_metrics is not None or metrics != self.metric_names(runs):
            self.chosen_metrics = tuple(metrics)
        configs = [flatten(r.config) for r in runs]
        if self.chosen_config is not None or keys != self.config_keys(configs):
            self.chosen_config = tuple(keys)
        listed = {c.key for c in choices}
        hidden = [k for k in app.view.hidden if k not in listed]  # a GPU column, say
        hidden += [
            c.key
            for c in choices
            if not c.shown and not c.key.startswith((METRIC_CHOICE, CONFIG_CHOICE))
        ]
        app.remember(hidden=tuple(hidden))
        self.schedule_rebuild()

    # Cursor -------------------------------------------------------------------------------
    def action_cursor_down(self) -> None:
        self.table.action_cursor_down()

    def action_cursor_up(self) -> None:
        self.table.action_cursor_up()

    def action_cursor_top(self) -> None:
        self.table.move_cursor(row=0)

    def action_cursor_bottom(self) -> None:
        self.table.move_cursor(row=max(0, self.table.row_count - 1))

    # Other screens ------------------------------------------------------------------------
    # The other screens (the dialogs above too) are imported when first opened: with their
    # chart widgets and plotext they would add about 0.1 s to the start, before the table
    # first shows.
    def action_open(self) -> None:
        key = self.table.current_key
        if key is not None:
            from tui.app.screens.run_view import RunScreen

            self.app.push_screen(RunScreen(key))

    @on(RunTable.RowSelected)
    def row_selected(self, event: RunTable.RowSelected) -> None:
        event.stop()
        self.action_open()

    def action_compare(self) -> None:
        table = self.table
        keys = [k for k in table.shown if k in table.marked]
        if table.baseline and table.baseline not in keys:
            keys.insert(0, table.baseline)
        if len(keys) < 2:
            self.notify(
                "mark two or more runs with space (or pin a baseline with b)", title="Compare"
            )
            return
        from tui.app.screens.compare import CompareScreen

        self.app.push_screen(CompareScreen(keys, baseline=table.baseline))

    def action_sweep(self) -> None:
        keys = list(self.table.shown)
        if len(keys) < 2:
            self.notify("the sweep view needs two or more visible runs", title="Sweep")
            return
        from tui.app.screens.sweep import SweepScreen

        self.app.push_screen(SweepScreen(keys))
