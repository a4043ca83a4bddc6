"""``SweepScatter``: a metric against one hyperparameter, one point per run.

The screen gives it :class:`~tui.core.sweep.SweepPoint` objects through ``set_points`` and
its options as reactives; it redraws only when those or its size change. The best runs
(top ``top_k`` by the metric, among the runs it draws) are highlighted; NaN metric values
are marked, never dropped silently, and so are runs beyond the metric's axis.
"""

from __future__ import annotations

import math

import numpy as np
from rich.text import Text
from textual.reactive import reactive
from textual_plotext import PlotextPlot

from tui.app.widgets.axis_ticks import log_ticks, nice_ticks, short_number
from tui.app.widgets.plot_colors import BEST_COLORS, NONFINITE_COLOR, OTHER_COLOR
from tui.app.widgets.plot_titles import centred_message, cut_label, fit_title, plural, put_title
from tui.app.widgets.sweep_plot import SweepPlot
from tui.core.sanitize import sanitize
from tui.core.sweep import Axis, axis_for, metric_range
from tui.core.values import MISSING


class SweepScatter(SweepPlot, PlotextPlot):
    """A metric against one hyperparameter: one point per run, the best runs highlighted.

    Both axes span the values drawn, no further. Categorical hyperparameters get evenly
    spaced labelled ticks; numeric ones spanning more than two decades (all positive) a log
    x-axis. The metric's axis leaves out a run that explodes (see
    :func:`~tui.core.sweep.metric_range`): such a run is drawn on the axis's end as ``▴`` or
    ``▾``. Runs with a NaN or infinite metric are drawn as red ``x`` in a row of their own
    at the worse end of the y-axis (the top when ``mode`` is ``"min"``), away from the best
    runs; runs without the hyperparameter are counted in the title.
    """

    param: reactive[str] = reactive("")
    """The hyperparameter on the x-axis."""
    show_legend: reactive[bool] = reactive(True)
    """Name the best runs and the NaN marker in a legend."""
    named_best: reactive[tuple[str, ...]] = reactive(())
    """Labels of the runs that a ranking beside the plot names as the best, best first, in
    the same colours: a plot whose own best runs are these draws no legend (a grid of plots
    would repeat one legend in each). A plot that lacks one of them picks others, and names
    its own."""

    _shown_title = ""
    _fitted_title = ""
    _y_range: tuple[float, float] | None = None
    _y_ticks: tuple[float, ...] = ()

    @property
    def shown_title(self) -> str:
        """The title of the last drawing in full, notes included.

        The plot itself shows it cut to its width; see :func:`fit_title`.
        """
        return self._shown_title

    @property
    def y_range(self) -> tuple[float, float] | None:
        """The metric values at the bottom and top of the last drawing's y-axis (its rows
        for the legend and the NaN markers aside); ``None`` before a drawing."""
        return self._y_range

    @property
    def y_ticks(self) -> tuple[float, ...]:
        """The values labelled on the last drawing's y-axis."""
        return self._y_ticks

    def drawing_key(self) -> tuple[object, ...]:
        """The hyperparameter, the legend and the theme (plotext's colours)."""
        return (self.param, self.show_legend, self.named_best, self.app.theme, self.theme)

    def _draw_figure(self) -> str | None:
        plt = self.plt
        plt.clear_figure()
        self._plotted = 0
        self._best = []
        self._y_range = None
        self._y_ticks = ()
        points = self._points
        param = self.param
        if not points:
            return "no runs to plot"
        if not param:
            return "choose a hyperparameter"
        axis = axis_for(param, [p.params.get(param, MISSING) for p in points])
        has = ~np.isnan(axis.data)
        values = self.metric_values()
        finite = has & np.isfinite(values)
        nan = has & ~np.isfinite(values)
        if not has.any():
            return f"no run has {param}"
        best = self.pick_best(values, finite)
        labelled = self.show_legend and tuple(self.highlighted) != self.named_best
        lo, hi = metric_range(self.metric, values[finite].tolist()) or (0.0, 1.0)
        above_range, below_range = finite & (values > hi), finite & (values < lo)
        beyond = above_range | below_range
        # Rows of the canvas (the height less title, frame, ticks and axis label) are set
        # apart above the points for the legend, which plotext draws over the top-left, and
        # for the NaN markers at the worse end, so neither covers a run.
        legend = len(best) + int(nan.any()) + int(beyond.any()) if labelled else 0
        nan_row = 1 if nan.any() else 0
        above = legend + (nan_row if self.mode == "min" else 0)
        below = nan_row if self.mode == "max" else 0
        # A row is the value step between plotext's rows, so the NaN row and the legend
        # land on whole rows of their own.
        canvas_rows = max(1, self.size.height - 5)
        row = (hi - lo) / max(1, canvas_rows - above - below - 1)
        plt.ylim(lo - below * row, hi + above * row)
        # Ticks label the metric's range only, never the rows for the legend and NaNs.
        self._y_range = (lo, hi)
        self._y_ticks = tuple(nice_ticks(lo, hi, max(2, canvas_rows // 3)))
        plt.yticks(list(self._y_ticks), [short_number(t) for t in self._y_ticks])
        nan_y = hi + row if self.mode == "min" else lo - row
        x = axis.data
        self._x_axis(axis)
        y = np.clip(values, lo, hi)
        rest = np.ones(len(points), dtype=bool)
        rest[best] = False
        others = finite & rest & ~beyond
        if others.any():
            plt.scatter(x[others].tolist(), y[others].tolist(), marker="•", color=OTHER_COLOR)
        for rank, i in enumerate(best):
            plt.scatter(
                [float(x[i])],
                [float(y[i])],
                marker="◆",
                color=BEST_COLORS[rank],
                label=self.best_label(i, values) if labelled else None,
            )
        # Runs beyond the range lie on its end, marked; the legend names the marker once.
        beyond_labelled = labelled
        for side, marker in ((above_range & rest, "▴"), (below_range & rest, "▾")):
            if side.any():
                plt.scatter(
                    x[side].tolist(),
                    y[side].tolist(),
                    marker=marker,
                    color=NONFINITE_COLOR,
                    label="beyond range" if beyond_labelled else None,
                )
                beyond_labelled = False
        if nan.any():
            plt.scatter(
                x[nan].tolist(),
                [nan_y] * int(nan.sum()),
                marker="x",
                color=NONFINITE_COLOR,
                label="NaN" if labelled else None,
            )
        self._plotted = int(finite.sum() + nan.sum())
        # Most important first, as a narrow plot keeps only the start of its title.
        notes = [f"{self.metric} vs {param}", f"{int(nan.sum())} NaN" if nan.any() else ""]
        if beyond.any():
            notes.append(f"{int(beyond.sum())} beyond range")
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

    def _x_axis(self, axis: Axis) -> None:
        """Limits and ticks of the x-axis: the hyperparameter's values, no further."""
        plt = self.plt
        count = max(3, (self.size.width - 10) // 8)
        if axis.kind == "categorical":
            categories = len(axis.ticks)
            plt.xlim(-0.5, categories - 0.5)
            width = max(3, (self.size.width - 10) // max(1, categories) - 1)
            plt.xticks(
                list(range(categories)), [cut_label(label, width) for label in axis.categories]
            )
            return
        lo, hi = axis.low, axis.high
        if hi <= lo:
            pad = max(abs(lo) * 0.1, 1e-9)
            plt.xlim(lo - pad, hi + pad)
            plt.xticks([lo], [short_number(lo)])
            return
        if axis.kind == "log":
            plt.xscale("log")
            # plotext takes a log axis's limits as log10 of them, its ticks as values.
            plt.xlim(math.log10(lo), math.log10(hi))
            ticks = [10.0**e for e in log_ticks(math.log10(lo), math.log10(hi), count)]
        else:
            plt.xlim(lo, hi)
            ticks = nice_ticks(lo, hi, count)
        plt.xticks(ticks, [short_number(t) for t in ticks])

    def draw(self, width: int, height: int) -> Text:
        """The scatter at this size, or a line saying why there is none."""
        try:
            message = self._draw_figure()
            if message is not None:
                return centred_message(message, width, height)
            # plotext's build() rescales a figure's data in place for log axes, so each
            # figure is built exactly once, right after it is drawn.
            rendered = PlotextPlot.render(self)
        except Exception as error:
            # plotext raises on inputs we cannot enumerate; show why instead of crashing.
            self._plotted = 0
            return centred_message(
                f"cannot draw this plot: {sanitize(str(error), 80)}", width, height
            )
        if not isinstance(rendered, Text):
            return Text(str(rendered))
        return put_title(rendered, self._fitted_title)
