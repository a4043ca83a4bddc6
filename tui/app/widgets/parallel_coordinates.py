"""``ParallelCoordinates``: hyperparameters and the metric of a sweep, one polyline per run.

Drawn with the braille rasterizer of :mod:`tui.app.widgets.braille`; axes come from
:func:`tui.core.sweep.axis_for` and :func:`tui.core.sweep.metric_axis`.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import numpy.typing as npt
from rich.style import Style
from rich.text import Text

from tui.app.widgets.braille import compose_layers, draw_polylines, pack_braille
from tui.app.widgets.plot_colors import BEST_COLORS, NONFINITE_COLOR, OTHER_COLOR, plot_style
from tui.app.widgets.plot_titles import centred_message, cut_label, fit_title, plural
from tui.app.widgets.sweep_plot import SweepPlot
from tui.core.sweep import Axis, SweepPoint, axis_for, metric_axis, varying_params
from tui.core.values import MISSING

_HINT = Style(dim=True)
_CATEGORY = Style(italic=True)
_BEYOND = plot_style(NONFINITE_COLOR, bold=True)


def _label_categories(canvas: list[Text], axes: list[Axis], columns: list[int], width: int) -> None:
    """Write the inner categories of categorical axes beside the axis, at their height.

    The two end categories are already named above and below the axis.
    """
    rows = len(canvas)
    for column, axis in zip(columns, axes):
        if axis.kind != "categorical" or width < 2:
            continue
        for unit, label in axis.ticks[1:-1]:
            row = round((1.0 - unit) * (rows * 4 - 1)) // 4
            text = cut_label(label, width)
            line = canvas[row]
            start, end = column + 1, min(column + 1 + len(text), len(line))
            if end > start:
                canvas[row] = Text.assemble(
                    line[:start], (text[: end - start], _CATEGORY), line[end:], no_wrap=True
                )


class ParallelCoordinates(SweepPlot):
    """Parallel coordinates of hyperparameters and the metric, one polyline per run.

    Each hyperparameter is an axis scaled to its own range (log when it spans more than two
    decades, evenly spaced categories when it is not numeric); the metric is the last axis,
    which leaves out a run that explodes (see :func:`~tui.core.sweep.metric_range`): its
    line ends on the axis's end, marked ``▴`` or ``▾``. The best runs among those drawn are
    drawn on top in bright colours and named in the legend, the others in grey. Runs with a
    NaN metric or lacking a hyperparameter are left out and counted.
    """

    _params: tuple[str, ...] | None = None
    """The hyperparameters given to :meth:`set_points` (``None``: those that vary)."""

    def set_points(self, points: Sequence[SweepPoint], params: Sequence[str] | None = None) -> None:
        """Replace the runs, and the hyperparameter axes (default: those that vary)."""
        self._params = None if params is None else tuple(params)
        super().set_points(points)

    def draw(self, width: int, height: int) -> Text:
        """The plot at this size, or a line saying why there is none."""
        self._plotted = 0
        self._best = []
        points = self._points
        if not points:
            return centred_message("no runs to plot", width, height)
        if width < 20 or height < 8:
            return centred_message("too small for parallel coordinates", width, height)
        values = self.metric_values()
        if self._params is not None:
            params = list(self._params)
        else:
            # Only runs that get a line decide which hyperparameters vary.
            drawn = [p for p, v in zip(points, values.tolist()) if math.isfinite(v)]
            params = varying_params(drawn or points)
        # Each axis needs room for a short label; the rest are left out, with a note.
        fit = max(1, width // 8 - 1)
        hidden_params = max(0, len(params) - fit)
        params = params[:fit]
        axes = [axis_for(name, [p.params.get(name, MISSING) for p in points]) for name in params]
        metric = metric_axis(self.metric or "value", values.tolist())
        axes.append(metric)
        units = np.vstack([axis.unit for axis in axes]).T  # runs x axes
        complete: npt.NDArray[np.bool_] = ~np.isnan(units).any(axis=1)
        nan_runs = int((~np.isfinite(values)).sum())
        lacking = int((~complete).sum()) - nan_runs
        shown = np.flatnonzero(complete)
        self._plotted = int(shown.size)

        canvas_rows = height - 5  # title, top labels, bottom labels, names, legend
        margin = max(3, min(10, width // (2 * len(axes))))
        usable = width - 2 * margin
        columns = (
            [margin + round(j * usable / (len(axes) - 1)) for j in range(len(axes))]
            if len(axes) > 1
            else [width // 2]
        )
        spacing = usable // max(1, len(axes) - 1) if len(axes) > 1 else width - 2
        label_width = max(3, spacing - 1)

        best = self.pick_best(values, complete)
        layers: list[tuple[npt.NDArray[np.int64], Style]] = []
        dot_x = np.array([c * 2 for c in columns], dtype=np.int64)
        to_rows = (canvas_rows * 4 - 1) * (1.0 - units)
        others = np.array([i for i in shown if i not in set(best)], dtype=np.int64)
        for members, style in [(others, plot_style(OTHER_COLOR))] + [
            (np.array([i], dtype=np.int64), plot_style(BEST_COLORS[rank], bold=True))
            for rank, i in reversed(list(enumerate(best)))
        ]:
            dots = np.zeros((canvas_rows * 4, width * 2), dtype=bool)
            draw_polylines(dots, dot_x, to_rows[members])
            layers.append((pack_braille(dots), style))

        beyond = metric.clipped & complete
        lines = [
            self._title(len(shown), nan_runs, int(beyond.sum()), lacking, hidden_params, width)
        ]
        lines.append(self._labels(axes, columns, label_width, width, top=True))
        canvas = compose_layers(layers, columns, canvas_rows, width)
        _label_categories(canvas, axes, columns, label_width - 1)
        _mark_beyond(canvas, columns[-1], metric, complete)
        lines.extend(canvas)
        lines.append(self._labels(axes, columns, label_width, width, top=False))
        names = _row_of(
            [
                (c, cut_label(axis.name + (" (log)" if axis.kind == "log" else ""), label_width))
                for c, axis in zip(columns, axes)
            ],
            width,
            bold_last=True,
        )
        lines.append(names)
        lines.append(self._legend(values, best, width))
        return Text("\n").join(lines)

    def _title(
        self, shown: int, nan_runs: int, beyond: int, lacking: int, hidden: int, width: int
    ) -> Text:
        # Most important first, as a narrow plot keeps only the start of its title.
        parts = [cut_label(self.metric, 200), f"{nan_runs} NaN left out" if nan_runs else ""]
        parts.append(f"{beyond} beyond range" if beyond else "")
        parts += [plural(shown, "run"), f"best {self.top_k} ({self.mode})"]
        if lacking:
            parts.append(f"{plural(lacking, 'run')} lacking a parameter left out")
        if hidden:
            parts.append(f"{hidden} more parameters not shown")
        return Text(fit_title(parts, width), style="bold", no_wrap=True)

    @staticmethod
    def _labels(
        axes: list[Axis], columns: list[int], label_width: int, width: int, *, top: bool
    ) -> Text:
        """The value at the top (or bottom) end of every axis."""
        placed = []
        for column, axis in zip(columns, axes):
            ticks = axis.ticks
            if not ticks:
                continue
            label = ticks[-1][1] if top else ticks[0][1]
            if len(ticks) == 1 and top:
                continue
            placed.append((column, cut_label(label, label_width)))
        return _row_of(placed, width, style=_HINT)

    def _legend(self, values: npt.NDArray[np.float64], best: list[int], width: int) -> Text:
        legend = Text(no_wrap=True, overflow="ellipsis")
        for rank, i in enumerate(best):
            legend.append(
                f"◆ {self.best_label(i, values)}", plot_style(BEST_COLORS[rank], bold=True)
            )
            legend.append("  ")
        legend.truncate(width)
        return legend


def _mark_beyond(
    canvas: list[Text], column: int, metric: Axis, drawn: npt.NDArray[np.bool_]
) -> None:
    """Mark the metric axis's ends where drawn runs lie beyond them (their lines end there)."""
    for row, side, marker in (
        (0, metric.data > metric.high, "▴"),
        (-1, metric.data < metric.low, "▾"),
    ):
        line = canvas[row]
        if (side & drawn).any() and 0 <= column < len(line):
            canvas[row] = Text.assemble(
                line[:column], (marker, _BEYOND), line[column + 1 :], no_wrap=True
            )


def _row_of(
    placed: list[tuple[int, str]],
    width: int,
    *,
    style: Style | None = None,
    bold_last: bool = False,
) -> Text:
    """A line with each label centred on its column, clipped to the line and its neighbours."""
    chars = [" "] * width
    owners = [-1] * width
    for n, (column, label) in enumerate(placed):
        start = max(0, min(width - len(label), column - len(label) // 2))
        for k, ch in enumerate(label):
            if 0 <= start + k < width:
                chars[start + k] = ch
                owners[start + k] = n
    text = Text("".join(chars), style=style or "", no_wrap=True)
    if bold_last and placed:
        last = len(placed) - 1
        cells = [i for i, owner in enumerate(owners) if owner == last]
        if cells:
            text.stylize("bold", cells[0], cells[-1] + 1)
    return text
