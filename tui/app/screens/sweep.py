"""``SweepScreen``: a metric against each hyperparameter that varies, for a sweep of runs.

What NePS users get from TensorBoard's hparams plugin: one scatter per hyperparameter (one
point per run), parallel coordinates of all of them and the metric, and a ranking. The
metric is a run's last or best value; runs where it is NaN are listed as diverged, runs
without it as such, never dropped silently.
"""

from __future__ import annotations

import math
from typing import TypeGuard

from rich.text import Text
from textual import events, on
from textual.app import ComposeResult
from textual.binding import Binding
from textual.widgets import DataTable, Static, TabbedContent, TabPane

from tui.app.messages import RunsUpdated
from tui.app.screens.pick import PickMany, PickOne
from tui.app.screens.run_set import (
    PLOT_BINDINGS,
    TABS,
    RunSetScreen,
    ordered_metrics,
    run_labels,
)
from tui.app.widgets.cells import config_text, fill_table, missing_cell, number_text
from tui.app.widgets.key_footer import KeyFooter
from tui.app.widgets.parallel_coordinates import ParallelCoordinates
from tui.app.widgets.plot_colors import BEST_COLORS, plot_style
from tui.app.widgets.plot_grid import PlotGrid
from tui.app.widgets.sweep_plot import SweepPlot
from tui.app.widgets.sweep_scatter import SweepScatter
from tui.core.shapes import format_number
from tui.core.store import Run
from tui.core.summary import flatten, metric_mode, varying_keys
from tui.core.sweep import SweepPoint, best_indices

MAX_SCATTERS = 6
"""Hyperparameters plotted at first (the ``p`` picker shows any others)."""

TOP_K = 3
"""Best runs highlighted in the plots and the ranking."""

MAX_NAMED = 3
"""Diverged runs named in the ranking's header before ``+N more``."""

RECOMPUTE_DELAY = 0.25
"""Seconds live updates are gathered before the plots and ranking are recomputed."""


def _is_number(value: object) -> TypeGuard[int | float]:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def param_text(value: object) -> Text:
    """A hyperparameter's cell as the run table shows it: a number compact and
    right-aligned, anything else as config text."""
    return number_text(float(value)) if _is_number(value) else config_text(value)


class SweepScreen(RunSetScreen):
    """A chosen metric (last or best) against the hyperparameters of the runs.

    Args:
        keys: the runs of the sweep (the visible rows of the run table).
    """

    CSS_PATH = ["run_set.tcss", "sweep.tcss"]
    BINDINGS = [
        Binding("escape", "back", "Back"),
        Binding("1", "show_tab('scatter')", "Scatter", group=TABS),
        Binding("2", "show_tab('parallel')", "Parallel coordinates", group=TABS),
        Binding("m", "next_metric", "Metric"),
        Binding("M", "pick_metric", "Pick metric", show=False),
        Binding("b", "toggle_best", "Last/best"),
        Binding("o", "flip_mode", "Min/max", show=False),
        Binding("p", "pick_params", "Params"),
        Binding("r", "focus_ranking", "Ranking", show=False),
        *PLOT_BINDINGS,
    ]

    def __init__(self, keys: list[str]) -> None:
        super().__init__(keys)
        self.metric: str | None = None
        self.use_best = False
        self.modes: dict[str, str] = {}
        self.chosen_params: list[str] | None = None
        self.params: list[str] = []
        self.points: list[SweepPoint] = []
        self.point_keys: list[str] = []
        self.scatters: list[SweepScatter] = []
        """The scatter plots, one per hyperparameter shown."""
        self._recompute_pending = False

    def compose(self) -> ComposeResult:
        yield Static(id="sweep-title")
        with TabbedContent(initial="scatter"):
            with TabPane("Scatter", id="scatter"):
                yield PlotGrid(min_plot_height=12, id="scatter-grid")
            with TabPane("Parallel coordinates", id="parallel"):
                yield ParallelCoordinates(id="parallel-plot")
        yield Static(id="ranking-info", classes="info")
        yield DataTable(id="ranking", cursor_type="row", zebra_stripes=True, show_cursor=False)
        yield KeyFooter()

    def on_mount(self) -> None:
        self.recompute()
        self.call_after_refresh(self.query_one(PlotGrid).focus_first)

    # The data ---------------------------------------------------------------------------
    @property
    def mode(self) -> str:
        """``"min"`` or ``"max"``: which end of the metric is best (``o`` flips it)."""
        metric = self.metric or ""
        return self.modes.get(metric, metric_mode(metric))

    @property
    def metric_label(self) -> str:
        """The metric as the plots name it: ``val_loss (last)``."""
        return f"{self.metric} ({'best' if self.use_best else 'last'})"

    def value_of(self, run: Run) -> float | None:
        """The run's last or best value of the metric; ``None`` when it has none."""
        series = run.series.get(self.metric or "")
        if series is None or not series.count:
            return None
        return series.best(self.mode)[0] if self.use_best else series.last

    def recompute(self) -> None:
        """Points, plots and ranking from the store (cheap: summaries only)."""
        runs = self.runs
        metrics = ordered_metrics(runs)
        if self.metric not in metrics:
            self.metric = metrics[0] if metrics else None
        labels = dict(zip((r.key for r in runs), run_labels(runs)))
        configs = {run.key: flatten(run.config) for run in runs}
        self.points, self.point_keys = [], []
        for run in runs:
            value = self.value_of(run)
            if value is not None:
                self.points.append(SweepPoint(labels[run.key], configs[run.key], value))
                self.point_keys.append(run.key)
        varying = varying_keys([dict(p.params) for p in self.points])
        if self.chosen_params is not None:
            params = [p for p in self.chosen_params if p in varying]
        else:
            params = varying[:MAX_SCATTERS]
        if params != self.params or len(self.scatters) != len(params):
            self.params = params
            self.scatters = [SweepScatter(classes="plot") for _ in params]
            self.query_one(PlotGrid).set_plots(self.scatters)
        # The ranking below names the best runs in the plots' colours: a plot whose best
        # runs are the same ones needs no legend of its own.
        values = [p.value for p in self.points]
        named = tuple(self.points[i].run_label for i in best_indices(values, TOP_K, self.mode))
        for scatter, param in zip(self.scatters, params):
            self._configure(scatter)
            scatter.param = param
            scatter.named_best = named
            scatter.set_points(self.points)
        parallel = self.query_one(ParallelCoordinates)
        self._configure(parallel)
        parallel.set_points(self.points, params)
        self.refresh_texts(runs, len(varying))
        self.refresh_ranking(runs, labels, configs)

    def _configure(self, plot: SweepPlot) -> None:
        # The title says last or best; plot titles must stay short to be drawn at all.
        plot.metric = self.metric or "value"
        plot.mode = self.mode
        plot.top_k = TOP_K

    def diverged(self) -> list[str]:
        """Keys of runs whose metric value is NaN or infinite."""
        return [
            key
            for key, point in zip(self.point_keys, self.points)
            if not math.isfinite(point.value)
        ]

    # Texts and the ranking ----------------------------------------------------------------
    def refresh_texts(self, runs: list[Run], varying: int) -> None:
        """The title: the runs, the metric and which end of it is best, the parameters."""
        title = Text(f"Sweep · {len(runs)} runs", style="bold", no_wrap=True, overflow="ellipsis")
        if self.metric is None:
            title.append(" · no run has a scalar metric yet", style="yellow")
        else:
            better = "lower" if self.mode == "min" else "higher"
            title.append(" · ")
            title.append(self.metric, style="bold")
            title.append(f" ({'best' if self.use_best else 'last'} value, {better} is better)")
            title.append(f" · {varying} hyperparameters vary")
            if len(self.params) < varying:
                title.append(f", {len(self.params)} shown", style="dim")
        self.query_one("#sweep-title", Static).update(title)

    def refresh_ranking(
        self, runs: list[Run], labels: dict[str, str], configs: dict[str, dict[str, object]]
    ) -> None:
        """Runs ranked by the metric: best first, then diverged ones, then runs without it."""
        values = [p.value for p in self.points]
        by_key = {run.key: run for run in runs}
        rows: list[tuple[str, list[Text]]] = []

        def add(key: str, place: Text, value: Text, note: Text) -> None:
            config = configs[key]
            params = [param_text(config[p]) if p in config else missing_cell() for p in self.params]
            rows.append((key, [place, Text(labels[key]), value, note, *params]))

        for rank, i in enumerate(best_indices(values, len(values), self.mode)):
            key = self.point_keys[i]
            place = Text(f"{rank + 1}", justify="right")
            if rank < TOP_K:
                place = Text(f"◆ {rank + 1}", style=plot_style(BEST_COLORS[rank], bold=True))
            note = Text("")
            series = by_key[key].series.get(self.metric or "")
            if series is not None and series.first_nonfinite_step is not None:
                step = format_number(series.first_nonfinite_step)
                note = Text(f"NaN/inf from step {step}", style="red")
            add(key, place, number_text(values[i]), note)
        diverged = [i for i, value in enumerate(values) if not math.isfinite(value)]
        for i in diverged:
            add(self.point_keys[i], Text(""), number_text(values[i]), Text("diverged", "bold red"))
        plotted = set(self.point_keys)
        lacking = [run.key for run in runs if run.key not in plotted]
        for key in lacking:
            note = Text(f"no {self.metric}" if self.metric else "no metric", style="dim")
            add(key, Text(""), number_text(None), note)
        # Numbers are right-aligned under right-aligned headings.
        numeric = {
            p: all(_is_number(c[p]) for c in configs.values() if p in c) for p in self.params
        }
        columns = [
            ("_rank", Text("#")),
            ("_run", Text("run")),
            # Constant while b toggles: no rebuild.
            ("_value", Text(self.metric or "value", justify="right")),
            ("_note", Text("")),
            *(
                (f"param:{p}", Text(p, justify="right" if numeric[p] else "left"))
                for p in self.params
            ),
        ]
        fill_table(self.query_one("#ranking", DataTable), columns, rows)
        info = Text(f"Ranking by {self.metric_label if self.metric else '–'}", style="bold")
        info.append(f" · ◆ best {TOP_K}", style="dim")
        if diverged:
            named = ", ".join(labels[self.point_keys[i]] for i in diverged[:MAX_NAMED])
            more = f" +{len(diverged) - MAX_NAMED} more" if len(diverged) > MAX_NAMED else ""
            info.append(f" · x {len(diverged)} diverged (NaN): {named}{more}", style="bold red")
        if lacking:
            info.append(f" · {len(lacking)} without {self.metric or 'a metric'}", style="yellow")
        self.query_one("#ranking-info", Static).update(info)

    # Actions ------------------------------------------------------------------------------
    def action_next_metric(self) -> None:
        """The next metric (key metrics first)."""
        metrics = ordered_metrics(self.runs)
        if not metrics:
            return
        position = metrics.index(self.metric) if self.metric in metrics else -1
        self.metric = metrics[(position + 1) % len(metrics)]
        self.recompute()

    def action_pick_metric(self) -> None:
        """Choose the metric from a list."""

        def chosen(metric: str | None) -> None:
            if metric is not None:
                self.metric = metric
                self.recompute()

        options = [(m, m) for m in ordered_metrics(self.runs)]
        self.app.push_screen(PickOne("Sweep metric", options, self.metric), chosen)

    def action_toggle_best(self) -> None:
        """Each run's last value, or its best."""
        self.use_best = not self.use_best
        self.recompute()

    def action_flip_mode(self) -> None:
        """Lower is better, or higher (when the name-based guess is wrong)."""
        if self.metric is not None:
            self.modes[self.metric] = "max" if self.mode == "min" else "min"
            self.recompute()

    def action_pick_params(self) -> None:
        """Choose the hyperparameters plotted."""

        def chosen(picked: list[str] | None) -> None:
            if picked is not None:
                self.chosen_params = picked
                self.recompute()

        options = varying_keys([dict(p.params) for p in self.points])
        self.app.push_screen(PickMany("Hyperparameters", options, self.params), chosen)

    def action_focus_ranking(self) -> None:
        """Move to the ranking (what I/T/K then act on)."""
        self.query_one("#ranking", DataTable).focus()

    @on(TabbedContent.TabActivated)
    def tab_shown(self, event: TabbedContent.TabActivated) -> None:
        """Focus the scatter grid, or the ranking under the parallel coordinates."""
        if event.pane.id == "scatter":
            self.query_one(PlotGrid).focus_first()
        else:
            self.action_focus_ranking()

    def on_descendant_focus(self, event: events.DescendantFocus) -> None:
        """Show the ranking's cursor only while it has the focus (it hides the best colours)."""
        ranking = self.query_one("#ranking", DataTable)
        ranking.show_cursor = event.widget is ranking
        self.refresh_kill_ready()

    @on(DataTable.RowHighlighted, "#ranking")
    def ranking_moved(self) -> None:
        """The kill keys act on the ranking's current run."""
        self.refresh_kill_ready()

    def kill_targets(self) -> list[str]:
        """The ranking's current run while the ranking has the focus, else none."""
        table = self.query_one("#ranking", DataTable)
        if not table.has_focus or not table.row_count:
            return []
        row_key, _ = table.coordinate_to_cell_key(table.cursor_coordinate)
        return [str(row_key.value)]

    # Live updates -------------------------------------------------------------------------
    def runs_updated(self, update: RunsUpdated) -> None:
        """Recompute soon when any run of the sweep changed (a burst costs one pass)."""
        if not self._recompute_pending and self.concerns(update):
            self._recompute_pending = True
            self.set_timer(RECOMPUTE_DELAY, self._recompute_now)

    def _recompute_now(self) -> None:
        self._recompute_pending = False
        self.recompute()
