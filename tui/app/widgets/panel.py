"""``Panel``: one chart of the run view, and where each metric goes among the charts.

By default each scalar metric gets its own chart (the key metrics first, at most
:data:`MAX_DEFAULT_PANELS`); the user can hide metrics, give them their own chart, or put
them on the left or right y-axis of one shared chart (as Valohai's charts allow).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Literal

from tui.app.widgets.chart_options import points_against
from tui.app.widgets.plot_colors import color_for
from tui.app.widgets.trace import Trace
from tui.core.shapes import format_number
from tui.core.store import Run
from tui.core.summary import key_metrics

MAX_DEFAULT_PANELS = 8
"""Charts shown by default; further metrics start hidden (``a`` shows them)."""

PLACEMENTS: tuple[str, ...] = ("hidden", "own", "left", "right")
"""Where a metric can go: nowhere, its own chart, or the shared chart's left/right axis."""

PLACEMENT_LABELS = {
    "hidden": "hidden",
    "own": "own chart",
    "left": "shared chart, left axis",
    "right": "shared chart, right axis",
}


@dataclass(frozen=True)
class Panel:
    """One chart: metrics measured against the left and the right y-axis."""

    title: str
    left: tuple[str, ...]
    right: tuple[str, ...] = ()
    shared: bool = False

    @property
    def metrics(self) -> tuple[str, ...]:
        """Every metric drawn on the chart, left axis first."""
        return self.left + self.right


def metric_order(names: Iterable[str]) -> list[str]:
    """Metrics in display order: validation losses and accuracies first, lr and epoch last."""
    names = list(names)
    return key_metrics([names], limit=len(names))


def default_placements(order: list[str], cap: int = MAX_DEFAULT_PANELS) -> dict[str, str]:
    """Each of the first ``cap`` metrics on its own chart, the rest hidden."""
    return {name: ("own" if i < cap else "hidden") for i, name in enumerate(order)}


def panels_for(order: list[str], placements: dict[str, str]) -> list[Panel]:
    """The charts for ``placements``: the shared chart first (if any), then one per metric."""
    left = tuple(n for n in order if placements.get(n) == "left")
    right = tuple(n for n in order if placements.get(n) == "right")
    panels = []
    if left or right:
        panels.append(Panel("shared", left, right, shared=True))
    panels.extend(Panel(n, (n,)) for n in order if placements.get(n, "hidden") == "own")
    return panels


def panel_traces(run: Run, panel: Panel, axis: str, order: list[str]) -> list[Trace]:
    """The traces of one chart: a metric's x values on ``axis`` against its values.

    A metric alone on its chart keeps its colour from the run's metric order; metrics on
    the shared chart take the palette in turn, so they stay apart.
    """
    traces = []
    for i, name in enumerate(panel.metrics):
        series = run.series.get(name)
        if series is None:
            continue
        x, y = points_against(run, series, axis)
        index = i if panel.shared else (order.index(name) if name in order else i)
        side: Literal["left", "right"] = "right" if name in panel.right else "left"
        traces.append(Trace(name, x, y, color=color_for(index), axis=side))
    return traces


def panel_title(run: Run, panel: Panel) -> str:
    """A chart's title: the metric and its last value, or what the shared chart holds."""
    if panel.shared:
        parts = []
        if panel.left:
            parts.append("left: " + ", ".join(panel.left))
        if panel.right:
            parts.append("right: " + ", ".join(panel.right))
        return " · ".join(parts)
    series = run.series.get(panel.title)
    if series is None or not series.count:
        return panel.title
    return f"{panel.title} = {format_number(series.last)}"
