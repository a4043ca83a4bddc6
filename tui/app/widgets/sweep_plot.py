"""Sweep views: a metric against one hyperparameter, and parallel coordinates.

Both take :class:`SweepPoint` objects (one per run: its label, its hyperparameters and one
metric value) through ``set_points`` and options as reactives, and redraw only when those or
their size change. Hyperparameters are mapped to axes by :func:`axis_for`: numbers on a
linear or (when they span more than two decades) log scale, anything else as evenly spaced
categories. The best runs (top ``top_k`` by the metric, ``mode`` ``"min"`` or ``"max"``)
are highlighted; NaN metric values are marked or left out with a note, never dropped
silently.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Literal

import numpy as np
import numpy.typing as npt
from rich.style import Style
from rich.text import Text
from textual.app import RenderResult
from textual.reactive import reactive
from textual.widget import Widget
from textual_plotext import PlotextPlot

from tui.app.widgets.metric_chart import RenderCache, centred_message, fit_title, put_title
from tui.core.sanitize import sanitize
from tui.core.shapes import format_number

BEST_COLORS: tuple[str, ...] = ("orange+", "magenta+", "green+", "cyan+", "blue+")
"""plotext colours of the best runs, best first (ANSI names: safe in 16 colours)."""

_BEST_STYLES = tuple(
    Style(color=name, bold=True)
    for name in ("bright_yellow", "bright_magenta", "bright_green", "bright_cyan", "bright_blue")
)
_OTHER_COLOR = "gray"
_OTHER_STYLE = Style(color="bright_black")
_NAN_COLOR = "red+"
_HINT = Style(dim=True)
_AXIS = Style(dim=True)
_CATEGORY = Style(italic=True)
_LOG_DECADES = 2.0


class _Missing:
    """Marks a run that has no value for a hyperparameter."""

    def __repr__(self) -> str:
        return "MISSING"


MISSING = _Missing()
"""Placeholder passed to :func:`axis_for` for a run that lacks the hyperparameter."""


@dataclass(frozen=True)
class SweepPoint:
    """One run in a sweep.

    Attributes:
        run_label: the run's name as shown (already sanitized).
        params: its hyperparameters (flattened config keys to values).
        value: the chosen metric for the run (last or best); NaN when it has none.
    """

    run_label: str
    params: Mapping[str, object] = field(default_factory=dict)
    value: float = math.nan


@dataclass(frozen=True)
class Axis:
    """A hyperparameter (or the metric) laid out on one axis.

    Attributes:
        name: the axis title.
        kind: ``"linear"``, ``"log"`` or ``"categorical"``.
        data: per run, the value in plot space (the number itself for linear and log axes,
            the category's index for categorical ones), NaN when missing.
        unit: per run, the position scaled to ``[0, 1]`` (log axes on log10), NaN when
            missing.
        ticks: ``(unit position, label)`` pairs: every category, or the two ends.
    """

    name: str
    kind: Literal["linear", "log", "categorical"]
    data: npt.NDArray[np.float64]
    unit: npt.NDArray[np.float64]
    ticks: tuple[tuple[float, str], ...]

    @property
    def categories(self) -> tuple[str, ...]:
        """Category labels in axis order (empty for numeric axes)."""
        return tuple(label for _, label in self.ticks) if self.kind == "categorical" else ()


def _real(value: object) -> float:
    """``value`` as a float when it is a number (numpy scalars too, bools not), else NaN."""
    if isinstance(value, (int, float, np.integer, np.floating)) and not isinstance(
        value, (bool, np.bool_)
    ):
        return float(value)
    return math.nan


def _number(value: object) -> float | None:
    number = _real(value)
    return number if math.isfinite(number) else None


def _category(value: object) -> str:
    number = _number(value)
    if number is not None:
        return format_number(number)
    return sanitize(str(value), 40)


def axis_for(name: str, values: Sequence[object]) -> Axis:
    """Lay out one hyperparameter's values (one per run, :data:`MISSING` allowed).

    Args:
        name: the axis title.
        values: the runs' values; numbers (not bools) give a numeric axis, log-scaled when
            all are positive and span more than two decades; any other value (text, bool,
            NaN, a list) makes the axis categorical: numbers first in ascending order, then
            the rest sorted as text.

    Returns:
        The :class:`Axis`.
    """
    present = [v for v in values if v is not MISSING]
    numbers = [_number(v) for v in present]
    count = len(values)
    data = np.full(count, np.nan)
    unit = np.full(count, np.nan)
    if present and all(n is not None for n in numbers):
        for i, value in enumerate(values):
            if value is not MISSING:
                data[i] = _number(value)
        lo, hi = float(np.nanmin(data)), float(np.nanmax(data))
        log = lo > 0 and hi / lo > 10**_LOG_DECADES
        scaled = np.log10(data) if log else data
        s_lo, s_hi = (math.log10(lo), math.log10(hi)) if log else (lo, hi)
        unit = (
            (scaled - s_lo) / (s_hi - s_lo)
            if s_hi > s_lo
            else np.where(np.isnan(data), np.nan, 0.5)
        )
        ticks = (
            ((0.0, format_number(lo)), (1.0, format_number(hi)))
            if hi > lo
            else ((0.5, format_number(lo)),)
        )
        return Axis(name, "log" if log else "linear", data, unit, ticks)
    labels: dict[str, tuple[int, float, str]] = {}
    for value in present:
        label = _category(value)
        number = _number(value)
        labels.setdefault(label, (0, number, "") if number is not None else (1, 0.0, label))
    order = sorted(labels, key=lambda label: labels[label])
    index = {label: i for i, label in enumerate(order)}
    for i, value in enumerate(values):
        if value is not MISSING:
            data[i] = index[_category(value)]
    span = max(1, len(order) - 1)
    unit = data / span if len(order) > 1 else np.where(np.isnan(data), np.nan, 0.5)
    ticks = tuple(((i / span if len(order) > 1 else 0.5), label) for i, label in enumerate(order))
    return Axis(name, "categorical", data, unit, ticks)


def best_indices(values: Sequence[float], k: int, mode: str) -> list[int]:
    """Indices of the ``k`` best finite values, best first (ties keep input order).

    ``mode`` is ``"max"`` when larger is better; anything else means smaller is better.
    """
    finite = [(v, i) for i, v in enumerate(values) if math.isfinite(v)]
    finite.sort(key=lambda item: (-item[0] if mode == "max" else item[0], item[1]))
    return [i for _, i in finite[: max(0, k)]]


def varying_params(points: Sequence[SweepPoint]) -> list[str]:
    """Hyperparameter names whose value differs between runs, in first-seen order."""
    seen: dict[str, set[str]] = {}
    for point in points:
        for key, value in point.params.items():
            seen.setdefault(key, set()).add(repr(value))
    for key, values in seen.items():
        if any(key not in p.params for p in points):
            values.add("<missing>")
    return [key for key, values in seen.items() if len(values) > 1]


def _plural(count: int, word: str) -> str:
    return f"{count} {word}" if count == 1 else f"{count} {word}s"


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
        values = np.array([_real(p.value) for p in points])
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
            plt.xticks(list(range(count)), [_cut(label, width) for label in axis.categories])
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
            plt.scatter(x[others].tolist(), values[others].tolist(), marker="•", color=_OTHER_COLOR)
        for rank, i in enumerate(best):
            label = f"{_cut(points[i].run_label, 24)} {format_number(float(values[i]))}"
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
                color=_NAN_COLOR,
                label="NaN" if self.show_legend else None,
            )
        self._plotted = int(finite.sum() + nan.sum())
        # Most important first, as a narrow plot keeps only the start of its title.
        notes = [f"{self.metric} vs {param}", f"{int(nan.sum())} NaN" if nan.any() else ""]
        if best:
            notes.append(f"best {len(best)} ({self.mode})")
        lacking = int((~has).sum())
        if lacking:
            notes.append(f"{_plural(lacking, 'run')} without {param}")
        notes = [_cut(note, 400) for note in notes if note]
        self._shown_title = " · ".join(notes)
        self._fitted_title = fit_title(notes, self.size.width)
        plt.title(self._fitted_title)
        plt.xlabel(_cut(param + (" (log)" if axis.kind == "log" else ""), 80))
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


def _cut(text: str, width: int) -> str:
    """``text`` made safe to show (labels reach plotext's ANSI parser) and cut to ``width``."""
    text = sanitize(text, 200)
    return text if len(text) <= width else text[: max(0, width - 1)] + "…"


# Bit of each dot in a braille cell, indexed [row 0-3][column 0-1] (Unicode's numbering).
_BRAILLE_BITS = ((0x01, 0x08), (0x02, 0x10), (0x04, 0x20), (0x40, 0x80))


def _pack_braille(dots: npt.NDArray[np.bool_]) -> npt.NDArray[np.int64]:
    """Turn a (4*rows, 2*cols) dot grid into (rows, cols) braille bit patterns."""
    bits = np.zeros((dots.shape[0] // 4, dots.shape[1] // 2), dtype=np.int64)
    for row, pair in enumerate(_BRAILLE_BITS):
        for col, bit in enumerate(pair):
            bits |= dots[row::4, col::2].astype(np.int64) * bit
    return bits


def _draw_polylines(
    dots: npt.NDArray[np.bool_], xs: npt.NDArray[np.int64], ys: npt.NDArray[np.float64]
) -> None:
    """Set the dots of polylines through ``(xs[j], ys[r, j])`` for every row ``r``.

    ``ys`` are dot rows (floats, 0 at the top); segments are sampled densely enough that
    steep ones stay connected.
    """
    if ys.size == 0:
        return
    if xs.size == 1:
        dots[np.rint(ys[:, 0]).astype(np.int64), xs[0]] = True
        return
    for j in range(xs.size - 1):
        x0, x1 = int(xs[j]), int(xs[j + 1])
        y0, y1 = ys[:, j], ys[:, j + 1]
        steps = max(x1 - x0, int(np.ceil(np.max(np.abs(y1 - y0)))), 1) + 1
        t = np.linspace(0.0, 1.0, steps)
        col = np.rint(x0 + (x1 - x0) * t).astype(np.int64)
        row = np.rint(y0[:, None] + (y1 - y0)[:, None] * t[None, :]).astype(np.int64)
        dots[row, np.broadcast_to(col, row.shape)] = True


def _compose(
    layers: list[tuple[npt.NDArray[np.int64], Style]],
    columns: list[int],
    rows: int,
    width: int,
) -> list[Text]:
    """Overlay braille layers (later ones on top) and axis lines into lines of text."""
    stack = np.stack([bits for bits, _ in layers])
    present = stack > 0
    drawn = present.any(axis=0)
    top = len(layers) - 1 - present[::-1].argmax(axis=0)
    codes = np.where(drawn, 0x2800 + np.take_along_axis(stack, top[None], 0)[0], ord(" "))
    styles = np.where(drawn, top, -2)
    axis = np.zeros(width, dtype=bool)
    axis[[c for c in columns if 0 <= c < width]] = True
    bare_axis = ~drawn & axis[None, :]
    codes[bare_axis] = ord("│")
    styles[bare_axis] = -1
    by_index = {i: style for i, (_, style) in enumerate(layers)} | {-1: _AXIS}
    lines = []
    for row in range(rows):
        text = Text("".join(map(chr, codes[row].tolist())), no_wrap=True)
        row_styles = styles[row]
        cuts = [0, *(np.flatnonzero(np.diff(row_styles)) + 1).tolist(), width]
        for start, end in itertools.pairwise(cuts):
            style = by_index.get(int(row_styles[start]))
            if style is not None:
                text.stylize(style, start, end)
        lines.append(text)
    return lines


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
            text = _cut(label, width)
            line = canvas[row]
            start, end = column + 1, min(column + 1 + len(text), len(line))
            if end > start:
                canvas[row] = Text.assemble(
                    line[:start], (text[: end - start], _CATEGORY), line[end:], no_wrap=True
                )


class ParallelCoordinates(Widget):
    """Parallel coordinates of hyperparameters and the metric, one polyline per run.

    Each hyperparameter is an axis scaled to its own range (log when it spans more than two
    decades, evenly spaced categories when it is not numeric); the metric is the last axis.
    The best runs are drawn on top in bright colours and named in the legend, the others in
    grey. Runs with a NaN metric or lacking a hyperparameter are left out and counted.
    """

    DEFAULT_CSS = """
    ParallelCoordinates {
        width: 1fr;
        height: 1fr;
        min-height: 8;
    }
    """

    metric: reactive[str] = reactive("value")
    """Name of the metric axis (plain text)."""
    mode: reactive[str] = reactive("min")
    """``"min"`` or ``"max"``: which end of the metric is best."""
    top_k: reactive[int] = reactive(3)
    """How many best runs to highlight."""

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
        self._params: tuple[str, ...] | None = None
        self._generation = 0
        self._drawing_cache = RenderCache()
        self._plotted = 0

    @property
    def plotted(self) -> int:
        """Number of runs drawn in the last drawing."""
        return self._plotted

    def set_points(self, points: Sequence[SweepPoint], params: Sequence[str] | None = None) -> None:
        """Replace the runs, and the hyperparameter axes (default: those that vary)."""
        self._points = tuple(points)
        self._params = None if params is None else tuple(params)
        self._generation += 1
        self.refresh()

    def validate_mode(self, mode: str) -> str:
        """Anything but ``"max"`` means ``"min"``."""
        return "max" if mode == "max" else "min"

    def validate_top_k(self, top_k: int) -> int:
        """At least 0, at most the number of highlight colours."""
        return min(max(0, int(top_k)), len(_BEST_STYLES))

    def render(self) -> RenderResult:
        """Draw the plot; reuse the last drawing while nothing it depends on changed."""
        width, height = self.size
        key = (self._generation, self.metric, self.mode, self.top_k, width, height)
        return self._drawing_cache.get(key, lambda: self._draw(width, height))

    def _draw(self, width: int, height: int) -> Text:
        self._plotted = 0
        points = self._points
        if not points:
            return centred_message("no runs to plot", width, height)
        if width < 20 or height < 8:
            return centred_message("too small for parallel coordinates", width, height)
        values = [_real(p.value) for p in points]
        if self._params is not None:
            params = list(self._params)
        else:
            # Only runs that get a line decide which hyperparameters vary.
            drawn = [p for p, v in zip(points, values) if math.isfinite(v)]
            params = varying_params(drawn or points)
        # Each axis needs room for a short label; the rest are left out, with a note.
        fit = max(1, width // 8 - 1)
        hidden_params = max(0, len(params) - fit)
        params = params[:fit]
        axes = [axis_for(name, [p.params.get(name, MISSING) for p in points]) for name in params]
        axes.append(
            axis_for(self.metric or "value", [v if math.isfinite(v) else MISSING for v in values])
        )
        units = np.vstack([axis.unit for axis in axes]).T  # runs x axes
        complete = ~np.isnan(units).any(axis=1)
        nan_runs = sum(1 for v in values if not math.isfinite(v))
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

        best = [i for i in best_indices(values, self.top_k, self.mode) if complete[i]]
        layers: list[tuple[npt.NDArray[np.int64], Style]] = []
        dot_x = np.array([c * 2 for c in columns], dtype=np.int64)
        to_rows = (canvas_rows * 4 - 1) * (1.0 - units)
        others = np.array([i for i in shown if i not in set(best)], dtype=np.int64)
        for members, style in [(others, _OTHER_STYLE)] + [
            (np.array([i], dtype=np.int64), _BEST_STYLES[rank])
            for rank, i in reversed(list(enumerate(best)))
        ]:
            dots = np.zeros((canvas_rows * 4, width * 2), dtype=bool)
            _draw_polylines(dots, dot_x, to_rows[members])
            layers.append((_pack_braille(dots), style))

        lines = [self._title(len(shown), nan_runs, lacking, hidden_params, width)]
        lines.append(self._labels(axes, columns, label_width, width, top=True))
        canvas = _compose(layers, columns, canvas_rows, width)
        _label_categories(canvas, axes, columns, label_width - 1)
        lines.extend(canvas)
        lines.append(self._labels(axes, columns, label_width, width, top=False))
        names = _row_of(
            [
                (c, _cut(axis.name + (" (log)" if axis.kind == "log" else ""), label_width))
                for c, axis in zip(columns, axes)
            ],
            width,
            bold_last=True,
        )
        lines.append(names)
        lines.append(self._legend(points, values, best, width))
        return Text("\n").join(lines)

    def _title(self, shown: int, nan_runs: int, lacking: int, hidden: int, width: int) -> Text:
        # Most important first, as a narrow plot keeps only the start of its title.
        parts = [_cut(self.metric, 200), f"{nan_runs} NaN left out" if nan_runs else ""]
        parts += [_plural(shown, "run"), f"best {self.top_k} ({self.mode})"]
        if lacking:
            parts.append(f"{_plural(lacking, 'run')} lacking a parameter left out")
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
            placed.append((column, _cut(label, label_width)))
        return _row_of(placed, width, style=_HINT)

    @staticmethod
    def _legend(
        points: Sequence[SweepPoint], values: list[float], best: list[int], width: int
    ) -> Text:
        legend = Text(no_wrap=True, overflow="ellipsis")
        for rank, i in enumerate(best):
            legend.append(
                f"◆ {_cut(points[i].run_label, 24)} {format_number(values[i])}", _BEST_STYLES[rank]
            )
            legend.append("  ")
        legend.truncate(width)
        return legend


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
