"""``SystemView``: a run's machine use over time (the run view's System tab).

The history (:class:`~tui.core.gpu.history.SystemHistory`) is a run of its own, so the
charts are the run view's own :class:`~tui.app.widgets.chart_board.ChartBoard`, against the
time since the first sample. A line above says where the figures come from: the run's
``system.jsonl``, samples this app took while the run was open, or the format's own system
metrics.
"""

from __future__ import annotations

import time

from rich.text import Text
from textual.app import ComposeResult
from textual.containers import Vertical
from textual.widgets import Static

from tui.app.widgets.chart_board import ChartBoard
from tui.app.widgets.chart_grid import ChartGrid
from tui.core.gpu.history import SystemHistory
from tui.core.gpu.sampler import SYSTEM
from tui.core.store import Run

_SOURCES = {
    "file": f"from the run's {SYSTEM} (written by tracktui run)",
    "format": "the format's own system metrics (system/…)",
}


class SystemView(Vertical):
    """A run's CPU, memory, IO and GPU charts; the screen calls :meth:`show_history`."""

    DEFAULT_CSS = """
    SystemView {
        height: 1fr;
    }
    SystemView > #system-status {
        height: auto;
        padding: 0 1;
    }
    """

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self.shown_run: Run | None = None
        self._records = -1
        self._latest: tuple[SystemHistory | None, float | None, bool] = (None, None, False)

    def compose(self) -> ComposeResult:
        yield Static(id="system-status")
        yield ChartBoard(id="system-board")

    @property
    def board(self) -> ChartBoard:
        """The charts."""
        return self.query_one(ChartBoard)

    @property
    def grid(self) -> ChartGrid:
        """The widget that takes focus."""
        return self.board.grid

    def on_mount(self) -> None:
        self.board.x_axis = "relative"
        history, since, known = self._latest
        self.show_history(history, since, known_process=known)

    def set_shown(self, shown: bool) -> None:
        """Whether the tab is on screen (hidden charts are drawn when shown again)."""
        self.board.set_shown(shown)

    def show_history(
        self, history: SystemHistory | None, sampled_since: float | None, *, known_process: bool
    ) -> None:
        """Draw what ``history`` holds (new points only redraw the charts)."""
        self._latest = (history, sampled_since, known_process)
        if not self.is_mounted:
            return  # drawn on mount
        run = history.run if history is not None else None
        self._show_status(history, run, sampled_since, known_process)
        if run is None:
            return
        if run is not self.shown_run:
            self.shown_run, self._records = run, len(run.steps)
            self.board.show_run(run)
        elif len(run.steps) != self._records:
            self._records = len(run.steps)
            self.board.metrics_changed(run, list(run.series))

    def _show_status(
        self,
        history: SystemHistory | None,
        run: Run | None,
        sampled_since: float | None,
        known_process: bool,
    ) -> None:
        text = Text()
        if run is None or history is None:
            if known_process:
                text.append("waiting for the first sample of the run's process tree…", style="dim")
            else:
                text.append(
                    f"no machine-use history: no {SYSTEM} (tracktui run writes one) and no"
                    " alive process of the run to sample",
                    style="yellow",
                )
            self.query_one("#system-status", Static).update(text)
            return
        parts = []
        for source in sorted(history.sources):
            if source == "sampled":
                since = time.strftime("%H:%M:%S", time.localtime(sampled_since or 0))
                parts.append(f"sampled by tracktui while the run is open (since {since})")
            else:
                parts.append(_SOURCES.get(source, source))
        text.append(f"{len(run.steps)} samples", style="bold")
        text.append(" · " + " · ".join(parts))
        if history.sources & {"file", "sampled"}:
            text.append(": CPU, memory and IO of its process tree, GPU per device", style="dim")
        self.query_one("#system-status", Static).update(text)
