"""``MatrixBrowser``: a run's confusion matrices, one metric at a time, stepping through time.

The list on the left names the matrix metrics; the heatmap on the right shows the selected
one at one logged step. Live updates keep showing the latest matrix unless the user
stepped back to an earlier one.
"""

from __future__ import annotations

from collections.abc import Iterable

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal
from textual.widgets import OptionList
from textual.widgets.option_list import Option

from tui.app.widgets.confusion_heatmap import ConfusionHeatmap
from tui.core.shapes import Matrix, format_number
from tui.core.store import Run


class MatrixBrowser(Horizontal, can_focus=True):
    """Matrix metrics of one run (up/down) and their history (left/right, home/end)."""

    BINDINGS = [
        Binding("n", "toggle_normalized", "Row %"),
        Binding("comma,left", "step(-1)", "Earlier", key_display=","),
        Binding("full_stop,right", "step(1)", "Later", key_display="."),
        Binding("home", "first", "First", show=False),
        Binding("end", "last", "Last", show=False),
        Binding("up,k", "select(-1)", "Previous matrix", show=False),
        Binding("down,j", "select(1)", "Next matrix", show=False),
        Binding("pageup", "scroll_heatmap(-1)", "Scroll up", show=False),
        Binding("pagedown", "scroll_heatmap(1)", "Scroll down", show=False),
    ]

    DEFAULT_CSS = """
    MatrixBrowser {
        height: 1fr;
    }
    MatrixBrowser > OptionList {
        width: 24;
        height: 1fr;
    }
    MatrixBrowser > ConfusionHeatmap {
        width: 1fr;
        height: 1fr;
        padding: 0 1;
    }
    """

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self.run_data: Run | None = None
        self.names: list[str] = []
        self.selected: str | None = None
        self.positions: dict[str, int] = {}
        """Index into each metric's history the user stepped to; absent: follow the latest."""

    def compose(self) -> ComposeResult:
        listing = OptionList()
        # The browser takes the keys (arrows step through time); the list is for reading
        # and clicking.
        listing.can_focus = False
        yield listing
        heatmap = ConfusionHeatmap()
        heatmap.can_focus = False
        yield heatmap

    @property
    def heatmap(self) -> ConfusionHeatmap:
        """The heatmap showing the selected matrix."""
        return self.query_one(ConfusionHeatmap)

    # Data -------------------------------------------------------------------------------
    def show_run(self, run: Run) -> None:
        """Show ``run``'s matrices from scratch (a replaced history starts at the latest)."""
        self.run_data = run
        self.positions.clear()
        self._refresh_list()
        self._show()

    def objects_changed(self, run: Run, names: Iterable[str]) -> None:
        """New values arrived for ``names``; redraw if the selected matrix is among them."""
        self.run_data = run
        changed = set(names)
        if self._refresh_list() or self.selected in changed:
            self._show()

    def _refresh_list(self) -> bool:
        run = self.run_data
        names = run.objects_of(Matrix) if run is not None else []
        if names == self.names:
            return False
        self.names = names
        listing = self.query_one(OptionList)
        listing.set_options(Option(Text(n), id=str(i)) for i, n in enumerate(names))
        if self.selected not in names:
            self.selected = names[0] if names else None
        if self.selected is not None:
            listing.highlighted = names.index(self.selected)
        return True

    def history(self) -> list[tuple[float, Matrix]]:
        """``(step, matrix)`` of every logged value of the selected metric."""
        run = self.run_data
        if run is None or self.selected is None:
            return []
        return [(s, m) for s, m in run.objects.get(self.selected, ()) if isinstance(m, Matrix)]

    def position(self) -> int | None:
        """Index of the matrix shown in :meth:`history`, ``None`` when there is none."""
        count = len(self.history())
        if not count:
            return None
        wanted = self.positions.get(self.selected or "")
        return count - 1 if wanted is None else min(max(wanted, 0), count - 1)

    def _show(self) -> None:
        heatmap = self.heatmap
        history = self.history()
        index = self.position()
        if index is None:
            heatmap.caption = ""
            heatmap.matrix = None
            heatmap.empty_message = (
                "this run logged no confusion matrix"
                if not self.names
                else "no matrix in this metric's history"
            )
            return
        step, matrix = history[index]
        heatmap.caption = (
            f"{self.selected} · step {format_number(step)} ({index + 1} of {len(history)})"
        )
        heatmap.matrix = matrix

    # Keys -------------------------------------------------------------------------------
    def action_toggle_normalized(self) -> None:
        """Toggle counts and row percentages."""
        self.heatmap.normalized = not self.heatmap.normalized

    def action_step(self, delta: int) -> None:
        """Show an earlier (-1) or later (+1) matrix; at the latest, follow new ones again."""
        index = self.position()
        if index is None or self.selected is None:
            return
        last = len(self.history()) - 1
        target = min(max(index + delta, 0), last)
        self._go(target, last)

    def action_first(self) -> None:
        """Show the first matrix logged."""
        if self.position() is not None:
            self._go(0, len(self.history()) - 1)

    def action_last(self) -> None:
        """Show the latest matrix and follow new ones."""
        if self.position() is not None:
            self._go(len(self.history()) - 1, len(self.history()) - 1)

    def _go(self, target: int, last: int) -> None:
        if self.selected is None:
            return
        if target >= last:
            self.positions.pop(self.selected, None)
        else:
            self.positions[self.selected] = target
        self._show()

    def action_select(self, delta: int) -> None:
        """Select the previous or next matrix metric."""
        if not self.names:
            return
        index = self.names.index(self.selected) if self.selected in self.names else 0
        self._select(min(max(index + delta, 0), len(self.names) - 1))

    def _select(self, index: int) -> None:
        self.selected = self.names[index]
        self.query_one(OptionList).highlighted = index
        self._show()

    def action_scroll_heatmap(self, pages: int) -> None:
        """Scroll a large heatmap by a page."""
        if pages < 0:
            self.heatmap.scroll_page_up()
        else:
            self.heatmap.scroll_page_down()

    def on_option_list_option_selected(self, event: OptionList.OptionSelected) -> None:
        event.stop()
        self._select(event.option_index)
        self.focus()

    def on_option_list_option_highlighted(self, event: OptionList.OptionHighlighted) -> None:
        event.stop()
