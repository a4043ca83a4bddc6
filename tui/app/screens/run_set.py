"""``RunSetScreen``: the base of the screens about a set of runs in tabs of plots.

The compare and sweep screens show chosen runs in tabs whose plots sit in a
:class:`PlotGrid`: number keys switch tabs, arrows move between plots, ``z`` zooms one,
escape un-zooms and then leaves. Both name runs with :func:`run_labels` (the run table's
unique names) and list metrics with :func:`ordered_metrics`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from textual.binding import Binding
from textual.widget import Widget
from textual.widgets import TabbedContent

from tui.app.messages import RunsUpdated
from tui.app.screens.base import StoreScreen
from tui.app.widgets.plot_grid import PlotGrid
from tui.core.names import unique_names
from tui.core.store import Run
from tui.core.summary import key_metrics

TABS = Binding.Group("Tabs", compact=True)
"""The footer group of the keys that switch tabs."""

PLOT_BINDINGS = [
    Binding("z", "zoom", "Zoom"),
    Binding("left", "move_plot(-1, 0)", "Plot on the left", show=False),
    Binding("right", "move_plot(1, 0)", "Plot on the right", show=False),
    Binding("up", "move_plot(0, -1)", "Plot above", show=False),
    Binding("down", "move_plot(0, 1)", "Plot below", show=False),
]
"""Keys of a :class:`PlotGrid`, declared by each screen so its help lists them."""


def run_labels(runs: Sequence[Run], names: Mapping[str, str] | None = None) -> list[str]:
    """Runs' unique names (see :func:`unique_names`).

    Args:
        runs: the runs to name.
        names: unique names by key among every run, as the run table shows them
            (:attr:`RunSetScreen.names`); ``None``: unique among ``runs``.
    """
    if names is None:
        names = unique_names((run.key, run.name) for run in runs)
    return [names.get(run.key, run.name) for run in runs]


def ordered_metrics(runs: Sequence[Run]) -> list[str]:
    """Every scalar metric of ``runs``: those all of them report first, key metrics first."""
    names = [set(run.series) for run in runs]
    ranked = key_metrics(names, limit=len(set().union(*names)))
    common = set.intersection(*names) if names else set()
    return sorted(ranked, key=lambda name: name not in common)


class RunSetScreen(StoreScreen):
    """Chosen runs in tabs holding plots.

    Args:
        keys: the runs, in the order they are shown (repeats are dropped).
    """

    def __init__(self, keys: Sequence[str]) -> None:
        super().__init__()
        self.keys = list(dict.fromkeys(keys))
        self._keyset = frozenset(self.keys)
        self._names: dict[str, str] | None = None

    @property
    def names(self) -> dict[str, str]:
        """Every run's unique name, by key, as the run table shows it."""
        if self._names is None:
            self._names = unique_names((run.key, run.name) for run in self.track_app.store)
        return self._names

    def forget_names(self, update: RunsUpdated) -> None:
        """Name the runs anew after ``update`` when it added or renamed one (any run: a new
        namesake elsewhere changes how these are told apart)."""
        if any(delta.created or delta.meta for delta in update.deltas):
            self._names = None

    @property
    def runs(self) -> list[Run]:
        """The runs of the set the store knows, in order."""
        return self.runs_of(self.keys)

    def concerns(self, update: RunsUpdated) -> bool:
        """Whether ``update`` touches a run of the set (and the screen is shown at all)."""
        return self.is_attached and bool(update.keys & self._keyset)

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
