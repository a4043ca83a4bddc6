"""``SweepPlot``: what the sweep's scatter and parallel coordinates have in common.

Both take :class:`~tui.core.sweep.SweepPoint` objects through ``set_points`` and the
metric, which end of it is best and how many best runs to highlight as reactives; both
redraw only when those or their size change, and highlight the best runs among those they
draw, naming each with its value.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import numpy.typing as npt
from rich.text import Text
from textual.app import RenderResult
from textual.reactive import reactive
from textual.widget import Widget

from tui.app.widgets.plot_colors import BEST_COLORS
from tui.app.widgets.plot_titles import cut_label
from tui.app.widgets.render_cache import RenderCache
from tui.core.shapes import format_number
from tui.core.sweep import SweepPoint, best_indices, metric_value


class SweepPlot(Widget):
    """Base of the sweep plots: the runs, the metric's options and the best runs drawn.

    Subclasses draw in :meth:`draw` and name what else their drawing depends on in
    :meth:`drawing_key`.
    """

    DEFAULT_CSS = """
    SweepPlot {
        width: 1fr;
        height: 1fr;
        min-height: 8;
    }
    """

    metric: reactive[str] = reactive("value")
    """Name of the metric (plain text)."""
    mode: reactive[str] = reactive("min")
    """``"min"`` or ``"max"``: which end of the metric is best."""
    top_k: reactive[int] = reactive(3)
    """How many best runs to highlight (and name in the legend)."""

    def __init__(
        self,
        *,
        name: str | None = None,
        id: str | None = None,
        classes: str | None = None,
        disabled: bool = False,
    ) -> None:
        """Create an empty plot; give it runs with :meth:`set_points`."""
        super().__init__(name=name, id=id, classes=classes, disabled=disabled)
        self._points: tuple[SweepPoint, ...] = ()
        self._generation = 0
        self._drawing_cache = RenderCache()
        self._plotted = 0
        self._best: list[int] = []

    @property
    def plotted(self) -> int:
        """Number of runs drawn in the last drawing."""
        return self._plotted

    @property
    def highlighted(self) -> list[str]:
        """Labels of the runs highlighted as best in the last drawing, best first."""
        return [self._points[i].run_label for i in self._best]

    def set_points(self, points: Sequence[SweepPoint]) -> None:
        """Replace the runs; the plot redraws once, on the next refresh."""
        self._points = tuple(points)
        self._generation += 1
        self.refresh()

    def validate_mode(self, mode: str) -> str:
        """Anything but ``"max"`` means ``"min"``."""
        return "max" if mode == "max" else "min"

    def validate_top_k(self, top_k: int) -> int:
        """At least 0, at most the number of highlight colours."""
        return min(max(0, int(top_k)), len(BEST_COLORS))

    def metric_values(self) -> npt.NDArray[np.float64]:
        """The runs' metric values; NaN for a NaN, an infinity or no value."""
        return np.array([metric_value(p.value) for p in self._points], dtype=np.float64)

    def pick_best(self, values: npt.NDArray[np.float64], drawn: npt.NDArray[np.bool_]) -> list[int]:
        """The best ``top_k`` runs among those ``drawn``, best first (kept for
        :attr:`highlighted`)."""
        self._best = best_indices(values.tolist(), self.top_k, self.mode, drawn.tolist())
        return self._best

    def best_label(self, i: int, values: npt.NDArray[np.float64]) -> str:
        """How a legend names best run ``i``: its label, cut short, and its value."""
        return f"{cut_label(self._points[i].run_label, 24)} {format_number(float(values[i]))}"

    def drawing_key(self) -> tuple[object, ...]:
        """What a subclass's drawing depends on besides the runs, options and size."""
        return ()

    def draw(self, width: int, height: int) -> Text:
        """The drawing at this size (subclasses draw here)."""
        raise NotImplementedError

    def render(self) -> RenderResult:
        """Draw; reuse the last drawing while nothing it depends on changed."""
        width, height = self.size
        key = (
            self._generation,
            self.metric,
            self.mode,
            self.top_k,
            width,
            height,
            *self.drawing_key(),
        )
        return self._drawing_cache.get(key, lambda: self.draw(width, height))
