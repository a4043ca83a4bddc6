"""The run view: one run's charts, matrices, values, config, log, health and processes.

The app calls :meth:`RunScreen.runs_updated` with every store change; the screen hands
each tab only what changed for its run (metrics to the charts, objects to the matrices and
values, log lines to the log, metadata to the config and processes). Nothing here polls,
except the process table while its tab is on screen.
"""

from __future__ import annotations

from rich.text import Text
from textual import on
from textual.app import ComposeResult
from textual.binding import Binding
from textual.widget import Widget
from textual.widgets import Static, TabbedContent, TabPane, Tabs

from tui.app.messages import RunsUpdated
from tui.app.screens.base import StoreScreen
from tui.app.screens.panel_picker import PanelPicker
from tui.app.status_badges import status_text
from tui.app.widgets.chart_board import ChartBoard
from tui.app.widgets.config_view import ConfigView
from tui.app.widgets.health_view import HealthView
from tui.app.widgets.key_footer import KeyFooter
from tui.app.widgets.log_lines import LogLines
from tui.app.widgets.log_view import LogView
from tui.app.widgets.matrix_browser import MatrixBrowser
from tui.app.widgets.process_table import ProcessTable
from tui.app.widgets.system_view import SystemView
from tui.app.widgets.values_view import ValuesView
from tui.core.sanitize import sanitize
from tui.core.shapes import format_number
from tui.core.store import Run
from tui.core.summary import duration, human_duration

TABS: tuple[tuple[str, str], ...] = (
    ("charts", "Charts"),
    ("matrices", "Matrices"),
    ("values", "Values"),
    ("config", "Config"),
    ("log", "Log"),
    ("health", "Health"),
    ("procs", "Processes"),
    ("system", "System"),
)
"""Tab ids and titles, in the order keys 1..8 select them."""


def header_text(run: Run, now: float, triggered: list[str]) -> Text:
    """One line: name, status badge, format, path, step, duration, host and user, flags."""
    text = Text(no_wrap=True, overflow="ellipsis")
    text.append(sanitize(run.name, 120), style="bold")
    text.append("  ")
    text.append_text(status_text(run))
    text.append(f"  {run.format}", style="dim")
    text.append("  ")
    text.append(sanitize(run.path, 200), style="cyan")
    step = run.last_step
    if step is not None:
        text.append(f"  step {format_number(step)}")
    took = human_duration(duration(run, now))
    if took:
        text.append(f"  {took}")
    host, user = run.meta.get("host"), run.meta.get("user")
    if isinstance(host, str) and host:
        text.append("  on ")
        text.append(sanitize(host, 100))
        if isinstance(user, str) and user:
            text.append(" (" + sanitize(user, 64) + ")")
    for name in triggered:
        text.append("  ⚑ ", style="bold red")
        text.append(sanitize(name, 60), style="bold red")
    return text


class RunScreen(StoreScreen):
    """Everything about one run, keyboard first; escape goes back to the run table.

    Args:
        key: the run's key in the app's store.
    """

    CSS_PATH = "run_view.tcss"

    BINDINGS = [
        Binding("escape", "back", "Back"),
        *(
            Binding(str(i + 1), f"show_tab('{tab_id}')", f"{title} tab", show=False)
            for i, (tab_id, title) in enumerate(TABS)
        ),
    ]

    def __init__(self, key: str) -> None:
        super().__init__()
        self.key = key

    # Layout -----------------------------------------------------------------------------
    def compose(self) -> ComposeResult:
        yield Static(id="run-header")
        with TabbedContent(initial="charts", id="run-tabs"):
            with TabPane("1 Charts", id="charts"):
                yield ChartBoard(id="chart-board")
            with TabPane("2 Matrices", id="matrices"):
                yield MatrixBrowser(id="matrix-browser")
            with TabPane("3 Values", id="values"):
                yield ValuesView(id="values-view")
            with TabPane("4 Config", id="config"):
                yield ConfigView(id="config-view")
            with TabPane("5 Log", id="log"):
                yield LogView(id="log-view")
            with TabPane("6 Health", id="health"):
                yield HealthView(id="health-view")
            with TabPane("7 Processes", id="procs"):
                yield ProcessTable(id="process-table")
            with TabPane("8 System", id="system"):
                yield SystemView(id="system-view")
        yield KeyFooter()

    @property
    def run_data(self) -> Run | None:
        """The run shown, from the app's store."""
        return self.track_app.store.get(self.key)

    def on_mount(self) -> None:
        # Tabs are switched with 1..7 (or a click); keeping focus off the tab bar leaves
        # every key to the tab's content.
        self.query_one(Tabs).can_focus = False
        self.track_app.prioritize([self.key])
        self.track_app.request_evidence()  # its process, now rather than at the next scan
        self.track_app.telemetry.wake()  # its machine use, from now on while it is open
        board = self.query_one("#chart-board", ChartBoard)
        view = self.track_app.view  # the smoothing and x-axis last chosen for ROOT
        board.smoothing, board.x_axis = view.chart_smoothing, view.x_axis
        self.show_everything()
        self._focus_tab("charts")

    def show_everything(self) -> None:
        """Draw every tab from scratch (on open, and when the history was replaced)."""
        run = self.run_data
        if run is None:
            self.query_one("#run-header", Static).update(
                Text(f"run {sanitize(self.key, 200)} is not known (any more)", style="bold red")
            )
            return
        self.query_one("#chart-board", ChartBoard).show_run(run)
        self.query_one(MatrixBrowser).show_run(run)
        self.query_one(ValuesView).show_run(self.track_app.root, run)
        self.query_one(ConfigView).show_run(run)
        self.query_one(LogView).show_lines(run.log, run.log_total)
        self.query_one(ProcessTable).set_run(run.meta, run.format, run.process)
        self._show_header_and_health(run)
        self.telemetry_updated()

    def _show_header_and_health(self, run: Run) -> None:
        app = self.track_app
        verdicts = app.verdicts.get(self.key, [])
        triggered = [v.rule for v in verdicts if v.state == "triggered"]
        header = header_text(run, app.clock(), triggered)
        self.query_one("#run-header", Static).update(header)
        health = self.query_one(HealthView)
        rules = app.rules
        health.show_rules(None if rules is None else rules.rules, verdicts, app.rules_error)
        health.show_reading(run, app.watch_mode)

    # Live updates -----------------------------------------------------------------------
    def runs_updated(self, update: RunsUpdated) -> None:
        """Refresh only what changed for this run."""
        if self.key not in update.keys or not self.is_attached:
            return
        run = self.run_data
        if run is None:
            return
        deltas = [d for d in update.deltas if d.key == self.key]
        if any(d.replaced or d.created for d in deltas):
            self.show_everything()
            return
        metrics = frozenset().union(*(d.metrics for d in deltas))
        objects = frozenset().union(*(d.objects for d in deltas))
        with self.app.batch_update():
            if metrics:
                self.query_one("#chart-board", ChartBoard).metrics_changed(run, metrics)
                self.query_one(ValuesView).metrics_changed(run)
            if objects:
                self.query_one(MatrixBrowser).objects_changed(run, objects)
                self.query_one(ValuesView).objects_changed(run, objects)
            if deltas:
                self.query_one(ValuesView).media_changed(run)
            if any(d.log for d in deltas):
                self.query_one(LogView).show_lines(run.log, run.log_total)
            if any(d.meta for d in deltas):
                self.query_one(ConfigView).show_run(run)
            # Also without new data: the evidence thread may have found or lost its process.
            self.query_one(ProcessTable).set_run(run.meta, run.format, run.process)
            self._show_header_and_health(run)

    # Tabs -------------------------------------------------------------------------------
    def action_show_tab(self, tab_id: str) -> None:
        """Show the tab ``tab_id`` and give its content the keys."""
        self.query_one(TabbedContent).active = tab_id
        self._focus_tab(tab_id)

    @on(TabbedContent.TabActivated, "#run-tabs")
    def tab_activated(self, event: TabbedContent.TabActivated) -> None:
        """A tab was shown (key or click): focus it; poll processes only while shown."""
        tab_id = event.pane.id or ""
        self._focus_tab(tab_id)

    def _focus_tab(self, tab_id: str) -> None:
        target = self._focus_target(tab_id)
        if target is not None:
            target.focus()
        self.query_one("#chart-board", ChartBoard).set_shown(tab_id == "charts")
        self.query_one(SystemView).set_shown(tab_id == "system")
        self.query_one(ProcessTable).active = tab_id == "procs" and self.is_current

    def _focus_target(self, tab_id: str) -> Widget | None:
        targets: dict[str, Widget] = {
            "charts": self.query_one("#chart-board", ChartBoard).grid,
            "matrices": self.query_one(MatrixBrowser),
            "values": self.query_one(ValuesView),
            "config": self.query_one(ConfigView),
            "log": self.query_one(LogLines),
            "health": self.query_one(HealthView),
            "procs": self.query_one(ProcessTable).table,
            "system": self.query_one(SystemView).grid,
        }
        return targets.get(tab_id)

    def on_screen_suspend(self) -> None:
        self.query_one(ProcessTable).active = False

    def on_screen_resume(self) -> None:
        active = self.query_one(TabbedContent).active
        self.query_one(ProcessTable).active = active == "procs"

    # Machine use ------------------------------------------------------------------------
    def shows_gpu(self) -> bool:
        """The Processes and System tabs show GPU figures."""
        return True

    def watched_run(self) -> str | None:
        """This run's machine use is recorded while the view is open."""
        return self.key

    def telemetry_updated(self) -> None:
        """Redraw the System tab's history and the Processes tab's GPU memory."""
        if not self.is_attached:
            return
        telemetry = self.track_app.telemetry
        run = self.run_data
        known = (
            run is not None
            and (isinstance(run.meta.get("pid"), int) or run.process is not None)
            and run.status in ("running", "stalled")
        )
        self.query_one(SystemView).show_history(
            telemetry.histories.get(self.key), telemetry.started.get(self.key), known_process=known
        )
        self.query_one(ProcessTable).set_gpu(telemetry.memory_by_pid())

    # Actions ----------------------------------------------------------------------------
    def action_back(self) -> None:
        """Back to the run table."""
        self.app.pop_screen()

    def kill_targets(self) -> list[str]:
        """The run shown: what the app's I / T / K keys act on."""
        return [self.key]

    @on(ChartBoard.OptionsChosen)
    def remember_chart_options(self, event: ChartBoard.OptionsChosen) -> None:
        """Keep the smoothing and x-axis for the next chart screen, and the next start."""
        self.track_app.remember(chart_smoothing=event.smoothing, x_axis=event.x_axis)

    @on(ChartBoard.PickRequested)
    def pick_metrics(self, event: ChartBoard.PickRequested) -> None:
        """Let the user place each metric (hidden, own chart, shared left/right axis)."""
        board = event.board

        def chosen(placements: dict[str, str] | None) -> None:
            if placements is not None:
                board.set_placements(placements)

        self.app.push_screen(PanelPicker(event.order, event.placements), chosen)
