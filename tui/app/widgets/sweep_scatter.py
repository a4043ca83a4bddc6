"""``SweepScatter``: a metric against one hyperparameter, one point per run.

The screen gives it :class:`~tui.core.sweep.SweepPoint` objects through ``set_points`` and
its options as reactives; it redraws only when those or its size change. The best runs
(top ``top_k`` by the metric) are highlighted; NaN metric values are marked, never dropped
silently.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
from rich.text import Text
from textual.app import RenderResult
from textual.reactive import reactive
from textual_plotext import PlotextPlot

from tui.app.widgets.plot_colors import BEST_COLORS, NONFINITE_COLOR, OTHER_COLOR
from tui.app.widgets.plot_titles import centred_message, cut_label, fit_title, plural, put_title
from tui.app.widgets.render_cache import RenderCache
from tui.core.sanitize import sanitize
from tui.core.shapes import format_number
from tui.core.sweep import SweepPoint, axis_for, best_indices, metric_value
from tui.core.values import MISSING


class SweepScatter(PlotextPlot):
    """A metric against one hyperparameter: one point per run, the best runs highlighted.

    Categorical hyperparameters get evenly spaced labelled ticks; numeric ones spanning more
    than two decades (all positive) a log x-axis. Runs with a NaN or infinite metric are
    drawn as red ``x`` in a row of their own at the worse end of the y-axis (the top when
    ``mode`` is ``"min"``), away from the best runs; runs without the hyperparameter are
    counted in the title.
    """

    DEFAULT_CSS = """
    SweepScatter {
        width: 1fr;
        height: 1fr;
        min-height: 8;
    }
    """

    param: reactive[str] = reactive("")
    """The hyperparameter on the x-axis."""
    metric: reactive[str] = reactive("value")
    """Name of the metric on the y-axis (plain text)."""
    mode: reactive[str] = reactive("min")
    """``"min"`` or ``"max"``: which end of the metric is best."""
    top_k: reactive[int] = reactive(3)
    """How many best runs to highlight (and name in the legend)."""
    show_legend: reactive[bool] = reactive(True)
    """Name the best runs and the NaN marker in a legend (off in a grid that names them once)."""

    def __init__(
        self,
        *,
        name: str | None = None,
        id: str | None = None,
        classes: str | None = None,
        disabled: bool = False,
    ) -> None:
        """Create an empty scatter; give it runs with :meth:`set_points`."""
        super().__init__(name=name, id=id, classes=classes, disabled=disabled)
        self._points: tuple[SweepPoint, ...] = ()
        self._generation = 0
        self._drawing_cache = RenderCache()
        self._plotted = 0
        self._shown_title = ""
        self._fitted_title = ""

    @property
    def plotted(self) -> int:
        """Number of runs drawn in the last drawing (NaN markers included)."""
        return self._plotted

    @property
    def shown_title(self) -> str:
        """The title of the last drawing in full, notes included.

        The plot itself shows it cut to its width; see :func:`fit_title`.
        """
        return self._shown_title

    def set_points(self, points: Sequence[SweepPoint]) -> None:
        """Replace the runs to plot; the widget redraws once, on the next refresh."""
        self._points = tuple(points)
        self._generation += 1
        self.refresh()

    def validate_mode(self, mode: str) -> str:
        """Anything but ``"max"`` means ``"min"``."""
        return "max" if mode == "max" else "min"

    def validate_top_k(self, top_k: int) -> int:
        """At least 0, at most the number of highlight colours."""
        return min(max(0, int(top_k)), len(BEST_COLORS))

    def _draw_figure(self) -> str | None:
        plt = self.plt
        plt.clear_figure()
        self._plotted = 0
        points = self._points
        param = self.param
        if not points:
            return "no runs to plot"
        if not param:
            return "choose a hyperparameter"
        axis = axis_for(param, [p.params.get(param, MISSING) for p in points])
        has = ~np.isnan(axis.data)
        values = np.array([metric_value(p.value) for p in points])
        finite = has & np.isfinite(values)
        nan = has & ~np.isfinite(values)
        if not has.any():
            return f"no run has {param}"
        best = [i for i in best_indices(values.tolist(), self.top_k, self.mode) if has[i]]
        if finite.any():
            lo, hi = float(values[finite].min()), float(values[finite].max())
        else:
            lo, hi = 0.0, 1.0
        if hi <= lo:
            pad = max(abs(lo) * 0.1, 1e-9)
            lo, hi = lo - pad, hi + pad
        else:
            pad = (hi - lo) * 0.05
            lo, hi = lo - pad, hi + pad
        # Rows of the canvas (the height less title, frame, ticks and axis label) are set
        # apart above the points for the legend, which plotext draws over the top-left, and
        # for the NaN markers at the worse end, so neither covers a run.
        legend = len(best) + (1 if nan.any() else 0) if self.show_legend else 0
        nan_row = 1 if nan.any() else 0
        above = legend + (nan_row if self.mode == "min" else 0)
        below = nan_row if self.mode == "max" else 0
        # A row is the value step between plotext's rows, so the NaN row and the legend
        # land on whole rows of their own.
        canvas_rows = max(1, self.size.height - 5)
        row = (hi - lo) / max(1, canvas_rows - above - below - 1)
        plt.ylim(lo - below * row, hi + above * row)
        nan_y = hi + row if self.mode == "min" else lo - row
        x = axis.data
        if axis.kind == "categorical":
            count = len(axis.ticks)
            plt.xlim(-0.5, count - 0.5)
            width = max(3, (self.size.width - 10) // max(1, count) - 1)
            plt.xticks(list(range(count)), [cut_label(label, width) for label in axis.categories])
        else:
            if axis.kind == "log":
                plt.xscale("log")
            x_lo, x_hi = float(np.nanmin(x)), float(np.nanmax(x))
            if x_hi <= x_lo:
                plt.xlim(x_lo - max(abs(x_lo) * 0.1, 1e-9), x_hi + max(abs(x_hi) * 0.1, 1e-9))
            elif axis.kind == "log":
                plt.xlim(math.log10(x_lo) - 0.05, math.log10(x_hi) + 0.05)
        others = finite.copy()
        others[best] = False
        if others.any():
            plt.scatter(x[others].tolist(), values[others].tolist(), marker="•", color=OTHER_COLOR)
        for rank, i in enumerate(best):
            label = f"{cut_label(points[i].run_label, 24)} {format_number(float(values[i]))}"
            plt.scatter(
                [float(x[i])],
                [float(values[i])],
                marker="◆",
                color=BEST_COLORS[rank],
                label=label if self.show_legend else None,
            )
        if nan.any():
            plt.scatter(
                x[nan].tolist(),
                [nan_y] * int(nan.sum()),
                marker="x",
                color=NONFINITE_COLOR,
                label="NaN" if self.show_legend else None,
            )
        self._plotted = int(finite.sum() + nan.sum())
        # Most important first, as a narrow plot keeps only the start of its title.
        notes = [f"{self.metric} vs {param}", f"{int(nan.sum())} NaN" if nan.any() else ""]
        if best:
            notes.append(f"best {len(best)} ({self.mode})")
        lacking = int((~has).sum())
        if lacking:
            notes.append(f"{plural(lacking, 'run')} without {param}")
        notes = [cut_label(note, 400) for note in notes if note]
        self._shown_title = " · ".join(notes)
        self._fitted_title = fit_title(notes, self.size.width)
        plt.title(self._fitted_title)
        plt.xlabel(cut_label(param + (" (log)" if axis.kind == "log" else ""), 80))
        return None

    def render(self) -> RenderResult:
        """Draw the scatter; reuse the last drawing while nothing it depends on changed."""
        width, height = self.size
        key = (
            self._generation,
            self.param,
            self.metric,
            self.mode,
            self.top_k,
            self.show_legend,
            width,
            height,
            self.app.theme,
            self.theme,
        )
        return self._drawing_cache.get(key, lambda: self._draw(width, height))

    def _draw(self, width: int, height: int) -> Text:
        try:
            message = self._draw_figure()
            if message is not None:
                return centred_message(message, width, height)
            # plotext's build() rescales a figure's data in place for log axes, so each
            # figure is built exactly once, right after it is drawn.
            rendered = super().render()
        except Exception as error:
            # plotext raises on inputs we cannot enumerate; show why instead of crashing.
            self._plotted = 0
            return centred_message(
                f"cannot draw this plot: {sanitize(str(error), 80)}", width, height
            )
        if not isinstance(rendered, Text):
            return Text(str(rendered))
        return put_title(rendered, self._fitted_title)
