"""A line chart of metric series: reduced, smoothed, log-y, with NaN/inf made visible.

The screen hands over :class:`Trace` objects with :meth:`MetricChart.set_traces` and sets
the options as reactives; the plotext figure (one per widget, never plotext's global one) is
rebuilt only when the data, an option or the widget's size changed (DESIGN.md §9).
"""

from __future__ import annotations

import math
import time
from bisect import bisect_left, bisect_right
from dataclasses import dataclass
from typing import Literal

import numpy as np
import numpy.typing as npt
from rich.color import Color
from rich.style import Style
from rich.text import Span, Text
from textual.app import RenderResult
from textual.reactive import reactive
from textual_plotext import PlotextPlot

from tui.app.widgets.axis_ticks import (
    clock_label,
    log_ticks,
    nice_ticks,
    short_number,
)
from tui.app.widgets.plot_colors import (
    NONFINITE_COLOR,
    PlotColor,
    color_for,
    plot_style,
    rich_color,
    valid_color,
)
from tui.app.widgets.plot_titles import (
    MIN_PIECE,
    TITLE_SEPARATOR,
    centred_message,
    ellipsize,
    fit_title,
    put_title,
)
from tui.app.widgets.render_cache import RenderCache
from tui.app.widgets.trace import Trace
from tui.core.reduce import (
    clamp_strength,
    ema,
    first_nonfinite,
    log_safe,
    minmax_indices,
    nonfinite_points,
    robust_range,
)
from tui.core.sanitize import sanitize
from tui.core.shapes import format_number

EMPTY_MESSAGE = "no data yet"

_MARKERS = {"nan": "x", "inf": "^", "-inf": "v"}

CURSOR_COLOR = "gray"
"""Colour of the cursor's vertical line (a box-drawing line: no run's braille line)."""


@dataclass(frozen=True)
class _Prepared:
    """One trace reduced for the current width: what plotext gets, plus its markers."""

    index: int
    label: str
    color: PlotColor
    side: Literal["left", "right"]
    raw: tuple[list[float], list[float]]
    smooth: tuple[list[float], list[float]] | None
    marks: dict[str, list[float]]
    first_bad: tuple[float, str] | None
    hidden: int


def _placeholder(index: int) -> tuple[int, int, int]:
    """A colour no trace uses, standing for "trace ``index``, faint" in plotext's output."""
    return (1, 2 + index // 256, index % 256)


@dataclass(frozen=True)
class Reading:
    """One trace's value at the cursor: the last point at or before the cursor's x."""

    label: str
    color: PlotColor
    x: float | None
    """The x of the point read (``None``: the trace starts after the cursor)."""
    value: float
    """The raw value there (NaN when there is no point)."""
    smoothed: float | None
    """The smoothed value there, when smoothing is on."""


def _compact(value: float) -> str:
    """``value`` as the tick labels write it, after rounding off the noise of its float32
    storage (0.01 is stored as 0.0099999998, which would read ``1e-2``)."""
    return short_number(float(f"{value:.4g}") if math.isfinite(value) else value)


def _between(xs: list[float], ys: list[float], at: int, x: float) -> float:
    """The line's y at ``x``, between its points ``at - 1`` and ``at``."""
    x0, x1, y0, y1 = xs[at - 1], xs[at], ys[at - 1], ys[at]
    return y0 + (y1 - y0) * (x - x0) / (x1 - x0) if x1 != x0 else y1


def _background(line: Text) -> Color | None:
    """The first background colour in ``line``'s styles."""
    for span in line.spans:
        if isinstance(span.style, Style) and span.style.bgcolor is not None:
            return span.style.bgcolor
    return None


def _kind(value: float) -> str:
    if math.isnan(value):
        return "nan"
    return "inf" if value > 0 else "-inf"


def _kind_word(kind: str) -> str:
    return "NaN" if kind == "nan" else kind


def _finite_line(
    x: npt.NDArray[np.float64], y: npt.NDArray[np.float64], log_y: bool
) -> tuple[list[float], list[float]]:
    """Keep the drawable points: finite, and positive on a log axis."""
    keep = np.isfinite(y)
    if log_y:
        keep &= ~np.ma.getmaskarray(log_safe(y))
    return x[keep].tolist(), y[keep].tolist()


def _limits(values: list[float], log_y: bool, robust: bool = False) -> tuple[float, float]:
    """Axis limits covering ``values`` with room, in plotext's space (log10 on a log axis);
    ``robust`` leaves outliers out (see :func:`robust_range`)."""
    if log_y:
        values = [v for v in values if v > 0]
    if not values:
        return (0.0, 1.0)
    kept = robust_range(values) if robust else None
    lo, hi = kept if kept is not None else (min(values), max(values))
    if log_y:
        lo, hi = math.log10(lo), math.log10(hi)
    if hi - lo <= 1e-12 * max(abs(lo), abs(hi), 1e-300):
        pad = 0.5 if log_y else max(abs(lo) * 0.1, 1e-9)
        return (lo - pad, hi + pad)
    return (lo, hi)


class MetricChart(PlotextPlot):
    """A plotext line chart of :class:`Trace` objects with smoothing, log-y and NaN markers.

    Each trace is reduced to about two points per column (min and max per bucket, so spikes
    survive) before plotting. Non-finite values become red markers at the top (NaN, +inf)
    or bottom (-inf) of the plot, and the first one is named in the title and legend.
    """

    DEFAULT_CSS = """
    MetricChart {
        width: 1fr;
        height: 1fr;
        min-height: 6;
    }
    """

    smoothing: reactive[float] = reactive(0.0)
    """EMA strength in ``[0, 0.999]``; 0 is off. When on, raw is drawn dim under the EMA."""
    log_y: reactive[bool] = reactive(False)
    """Logarithmic y-axes; values ``<= 0`` are hidden and counted in the title."""
    x_label: reactive[str] = reactive("step")
    """Name of the x-axis, also used in the non-finite note (``NaN from step 1200``)."""
    title: reactive[str] = reactive("")
    """Chart title (plain text; markup is not interpreted)."""
    empty_message: reactive[str] = reactive(EMPTY_MESSAGE)
    """Centred text shown when there is nothing to draw."""
    show_legend: reactive[bool] = reactive(True)
    """Name the lines in a legend (left out anyway when it would cover a third of the plot)."""
    full_range: reactive[bool] = reactive(False)
    """Scale the y-axes to every value; by default outliers are left out (a run exploding
    to 1e24 would flatten the others) and points beyond the range are marked on its edge."""
    clock_x: reactive[bool] = reactive(False)
    """The x values are epoch seconds: label them as the local clock time."""
    x_window: reactive[tuple[float, float] | None] = reactive(None)
    """The x-range shown (``None``: every point); the y-range is that of the points in it."""
    cursor_x: reactive[float | None] = reactive(None)
    """Where the cursor stands on the x-axis (``None``: no cursor). The chart draws a
    vertical line there and, under the plot, each trace's value at that x."""

    def __init__(
        self,
        traces: list[Trace] | None = None,
        *,
        name: str | None = None,
        id: str | None = None,
        classes: str | None = None,
        disabled: bool = False,
    ) -> None:
        """Create the chart, optionally with traces already set."""
        super().__init__(name=name, id=id, classes=classes, disabled=disabled)
        self._traces: tuple[Trace, ...] = tuple(traces or ())
        self._generation = 0
        self._smoothed: dict[int, npt.NDArray[np.float64]] = {}
        self._smoothed_strength = 0.0
        self._prepared: tuple[tuple[object, ...], list[_Prepared]] | None = None
        self._drawing_cache = RenderCache()
        self._shown_title = ""
        self._fitted_title = ""
        self.y_ranges: dict[str, tuple[float, float]] = {}
        """Each y-axis's range in the last drawing (data space), for readers and tests."""
        self.clipped = 0
        """Points beyond the y-range in the last drawing (marked on its edge)."""
        self.tick_labels: list[str] = []
        """The y tick labels of the last drawing."""
        self.x_range: tuple[float, float] | None = None
        """The x-axis's range in the last drawing."""
        self._sorted_x: list[tuple[npt.NDArray[np.float64], bool]] | None = None

    @property
    def traces(self) -> tuple[Trace, ...]:
        """The traces currently set."""
        return self._traces

    @property
    def shown_title(self) -> str:
        """The title of the last drawing in full, notes included (for tests and readers).

        The chart itself shows it cut to its width; see :func:`fit_title`.
        """
        return self._shown_title

    def set_traces(self, traces: list[Trace] | tuple[Trace, ...]) -> None:
        """Replace the series to draw; the chart redraws once, on the next refresh."""
        self._traces = tuple(traces)
        self._generation += 1
        self._smoothed.clear()
        self._sorted_x = None
        self.refresh()

    # Cursor ------------------------------------------------------------------------------
    def _points(self) -> list[tuple[npt.NDArray[np.float64], bool]]:
        """Per trace, the x of its points (values finite or not) ascending and finite, and
        whether that is the trace's own array (no copy of a long series: a step or time
        axis already is ascending)."""
        if self._sorted_x is None:
            self._sorted_x = []
            for trace in self._traces:
                xs = trace.x[: min(trace.x.size, trace.y.size)]
                own = xs.size == 0 or (
                    bool((xs[1:] >= xs[:-1]).all())
                    and math.isfinite(xs[0])
                    and math.isfinite(xs[-1])
                )
                self._sorted_x.append((xs if own else np.unique(xs[np.isfinite(xs)]), own))
        return self._sorted_x

    def point_after(self, x: float) -> float | None:
        """The first x right of ``x`` where a trace has a point."""
        found = []
        for xs, _ in self._points():
            at = int(np.searchsorted(xs, x, side="right"))
            if at < xs.size:
                found.append(float(xs[at]))
        return min(found, default=None)

    def point_before(self, x: float) -> float | None:
        """The last x left of ``x`` where a trace has a point."""
        found = []
        for xs, _ in self._points():
            at = int(np.searchsorted(xs, x, side="left")) - 1
            if at >= 0:
                found.append(float(xs[at]))
        return max(found, default=None)

    def extent(self) -> tuple[float, float] | None:
        """The first and the last x where a trace has a point."""
        ends = [(float(xs[0]), float(xs[-1])) for xs, _ in self._points() if xs.size]
        if not ends:
            return None
        return min(lo for lo, _ in ends), max(hi for _, hi in ends)

    def count_in(self, low: float, high: float) -> int:
        """The most points one trace has with an x from ``low`` to ``high``."""
        return max(
            (
                int(np.searchsorted(xs, high, side="right") - np.searchsorted(xs, low))
                for xs, _ in self._points()
            ),
            default=0,
        )

    def format_x(self, x: float) -> str:
        """An x value in full: the step, or the clock time on a wall-time axis."""
        if self.clock_x:
            return time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(x))
        return format_number(x)

    def short_x(self, x: float) -> str:
        """An x value in a few characters: as the ticks write it, or the clock time."""
        if self.clock_x:
            return time.strftime("%H:%M:%S", time.localtime(x))
        return short_number(x)

    def _at_or_before(self, index: int, trace: Trace, x: float) -> int | None:
        """The index of ``trace``'s last point at or before ``x`` (the latest record of
        the greatest such x), or ``None``."""
        xs = trace.x[: min(trace.x.size, trace.y.size)]
        if self._points()[index][1]:
            at = int(np.searchsorted(xs, x, side="right")) - 1
            return at if at >= 0 else None
        # Against another metric, x goes back and forth: the nearest x below, latest record.
        before = np.flatnonzero(xs <= x)
        if before.size == 0:
            return None
        best = xs[before].max()
        return int(before[xs[before] == best][-1])

    def readings(self) -> list[Reading]:
        """Each trace's value at the cursor, in the traces' order (empty without a cursor)."""
        x = self.cursor_x
        if x is None:
            return []
        out = []
        strength = self.smoothing
        for index, trace in enumerate(self._traces):
            at = self._at_or_before(index, trace, x)
            color = trace.color if valid_color(trace.color) else color_for(index)
            label = sanitize(str(trace.label), 60)
            if at is None:
                out.append(Reading(label, color, None, math.nan, None))
                continue
            smoothed = float(self._smooth(index, trace, strength)[at]) if strength > 0 else None
            out.append(Reading(label, color, float(trace.x[at]), float(trace.y[at]), smoothed))
        return out

    def readout(self, width: int | None = None) -> Text:
        """The line under the plot while the cursor shows: the x, then per trace a marker in
        its colour, its name and its value there (``@x`` when its last point is before).

        Where that is too long, the names are left out (the colours tell the traces apart),
        then the ``@x``; what still does not fit is cut.

        Args:
            width: cut to this many cells (``None``: the widget's width).
        """
        width = self.size.width if width is None else width
        readings = self.readings()
        for named, placed in ((True, True), (False, True), (False, False)):
            line = self._readout(readings, named=named, placed=placed)
            if line.cell_len <= width:
                break
        line.truncate(width)
        return line

    def _readout(self, readings: list[Reading], *, named: bool, placed: bool) -> Text:
        """The readout with or without the traces' names and the ``@x`` of values read
        before the cursor's x."""
        line = Text(no_wrap=True, overflow="ellipsis")
        x = self.cursor_x
        if x is None:
            return line
        # (text, style, whether it starts a trace's reading: a wider gap before it)
        words: list[tuple[str, Style | str, bool]] = [
            (f"{sanitize(self.x_label, 40)} {self.format_x(x)}", "bold", False)
        ]
        for reading in readings:
            words.append(("●", plot_style(reading.color, bold=True), True))
            if named:
                words.append((reading.label, "", False))
            if reading.x is None:
                words.append(("—", "dim", False))
                continue
            exact = reading.x == x
            if not math.isfinite(reading.value):
                value_style = plot_style(NONFINITE_COLOR, bold=True)
            else:
                # A value from before the cursor's x is dim, @x or not.
                value_style = Style(bold=exact, dim=not exact)
            words.append((_compact(reading.value), value_style, False))
            if reading.smoothed is not None:
                words.append((f"~{_compact(reading.smoothed)}", "dim", False))
            if placed and not exact:
                words.append((f"@{self.short_x(reading.x)}", "dim", False))
        # Each gap ends the word before it: a span never starts with a space, which an SVG
        # screenshot would draw one cell to the left.
        for (text, style, _), following in zip(words, [*words[1:], None]):
            gap = "" if following is None else "  " if following[2] else " "
            line.append(text + gap, style=style)
        return line

    def validate_smoothing(self, value: float) -> float:
        """Clamp the smoothing strength into ``[0, 0.999]``."""
        return clamp_strength(value)

    def _smooth(self, index: int, trace: Trace, strength: float) -> npt.NDArray[np.float64]:
        # Smoothing is computed on the full series, so it is kept while only the width or
        # the axis options change; a new strength starts a new cache.
        if self._smoothed_strength != strength:
            self._smoothed.clear()
            self._smoothed_strength = strength
        cached = self._smoothed.get(index)
        if cached is None:
            n = min(trace.x.size, trace.y.size)
            cached = self._smoothed[index] = ema(trace.y[:n], strength)
        return cached

    def _prepare(self, index: int, trace: Trace, buckets: int) -> _Prepared:
        strength = self.smoothing
        log_y = self.log_y
        n = min(trace.x.size, trace.y.size)
        picked = self._in_window(trace.x[:n])
        if picked is None:
            kept = minmax_indices(trace.x[:n], trace.y[:n], buckets)
        else:
            kept = picked[minmax_indices(trace.x[picked], trace.y[picked], buckets)]
        x, y = trace.x[kept], trace.y[kept]
        raw = self._cut(*_finite_line(x, y, log_y))
        # Counted on the full series: the reduced one keeps only a few of them.
        hidden = int(np.count_nonzero(trace.y[:n] <= 0.0)) if log_y else 0
        smooth = None
        if strength > 0.0:
            # The average has no spikes of its own: sampling it where the raw series was
            # kept draws it just as well and saves a second pass over the full series.
            smooth = self._cut(*_finite_line(x, self._smooth(index, trace, strength)[kept], log_y))
        bad_x, bad_y = nonfinite_points(x, y)
        marks: dict[str, list[float]] = {kind: [] for kind in _MARKERS}
        for bx, by in zip(bad_x.tolist(), bad_y.tolist()):
            if self._shows(bx):
                marks[_kind(by)].append(bx)
        # On the full series: the note names where the run went bad, shown or not.
        first = first_nonfinite(trace.x[:n], trace.y[:n])
        color = trace.color if valid_color(trace.color) else color_for(index)
        side: Literal["left", "right"] = "right" if trace.axis == "right" else "left"
        return _Prepared(
            index=index,
            label=sanitize(str(trace.label), 60),
            color=color,
            side=side,
            raw=raw,
            smooth=smooth,
            marks=marks,
            first_bad=None if first is None else (first[0], _kind(first[1])),
            hidden=hidden,
        )

    def _in_window(self, x: npt.NDArray[np.float64]) -> npt.NDArray[np.intp] | None:
        """Indices of the points in :attr:`x_window` and of their neighbours just outside it
        (so lines run on to the plot's edges); ``None`` when every point is shown."""
        window = self.x_window
        if window is None:
            return None
        inside = (x >= window[0]) & (x <= window[1])
        near = inside.copy()
        near[1:] |= inside[:-1]
        near[:-1] |= inside[1:]
        return np.flatnonzero(near)

    def _shows(self, x: float) -> bool:
        """Whether ``x`` lies in the x-range shown."""
        window = self.x_window
        return window is None or window[0] <= x <= window[1]

    def _notes(self, prepared: list[_Prepared], label_room: int | None = None) -> list[str]:
        """The title's notes: first non-finite steps, then the count of hidden values.

        Args:
            prepared: the reduced traces.
            label_room: the characters a note may take; a run's name in it is cut, or left
                out, first, so that a narrow chart still says where the values went bad.
        """
        bad = sorted((p.first_bad, p.label) for p in prepared if p.first_bad is not None)
        notes = []
        for (at, kind), label in bad[:2]:
            note = f"{_kind_word(kind)} from {sanitize(self.x_label, 80)} {format_number(at)}"
            room = len(label) if label_room is None else label_room - len(note) - 2
            if len(prepared) > 1 and room >= MIN_PIECE:
                note = f"{ellipsize(label, room)}: {note}"
            notes.append(note)
        if len(bad) > 2:
            notes.append(f"+{len(bad) - 2} more non-finite")
        hidden = sum(p.hidden for p in prepared)
        if hidden:
            notes.append(f"{hidden} values <= 0 hidden")
        if self.clipped:
            notes.append(f"{self.clipped} beyond range")
        return notes

    def _draw_figure(self, width: int, height: int) -> str | None:
        """Rebuild the plotext figure from the traces for a ``width`` x ``height`` plot.

        Returns:
            A message to show instead of the chart when nothing can be drawn, else ``None``.
        """
        plt = self.plt
        plt.clear_figure()
        # Reduction depends on the width only; a change of height reuses it.
        prepared_key = (self._generation, self.smoothing, self.log_y, self.x_window, width)
        self.y_ranges = {}
        if self._prepared is None or self._prepared[0] != prepared_key:
            buckets = max(8, width)
            reduced = [self._prepare(i, t, buckets) for i, t in enumerate(self._traces)]
            self._prepared = (prepared_key, reduced)
        prepared = self._prepared[1]
        log_y = self.log_y
        drawable = any(p.raw[0] or any(p.marks.values()) for p in prepared)
        if not drawable:
            if log_y and any(p.hidden for p in prepared):
                return "no positive values to draw on a log scale"
            return self.empty_message
        if self.x_window is not None:
            x_lo, x_hi = self.x_window
        else:
            xs = [v for p in prepared for v in (p.raw[0][:1] + p.raw[0][-1:])]
            xs += [v for p in prepared for m in p.marks.values() for v in (m[:1] + m[-1:])]
            x_lo, x_hi = _limits(xs, False)
        self.x_range = (x_lo, x_hi)
        plt.xlim(x_lo, x_hi)
        x_ticks = nice_ticks(x_lo, x_hi, max(2, width // 10))
        if self.clock_x:
            plt.xticks(x_ticks, [clock_label(t, x_hi - x_lo) for t in x_ticks])
        else:
            plt.xticks(x_ticks, [short_number(t) for t in x_ticks])
        self.clipped = 0
        legend = self._legend_rows(prepared, height)
        # plotext draws the legend over the top-left of the canvas; rows of headroom keep
        # it from hiding data or markers (canvas = height minus title, frame, ticks, label).
        canvas_rows = max(1, height - 5)
        headroom = (legend + 0.5) / max(1.0, canvas_rows - legend - 1.0) if legend else 0.0
        for side in ("left", "right"):
            on_side = [p for p in prepared if p.side == side]
            if not on_side:
                continue
            values = [v for p in on_side for v in p.raw[1]]
            values += [v for p in on_side if p.smooth for v in p.smooth[1]]
            lo, hi = _limits(values, log_y, robust=not self.full_range)
            if log_y:
                plt.yscale("log", yside=side)
            # textual-plotext's stub types yside as a number; plotext takes "left"/"right".
            plt.ylim(lo, hi + (hi - lo) * headroom, yside=side)  # type: ignore[arg-type]
            self._y_ticks(lo, hi, height, side)
            top, bottom = (10**hi, 10**lo) if log_y else (hi, lo)
            self.y_ranges[side] = (bottom, top)
            for p in on_side:
                self._plot_one(p, side, (bottom, top), labelled=legend > 0)
                self._mark_clipped(p, side, bottom, top)
            for p in on_side:
                for kind, at in p.marks.items():
                    if at:
                        edge = bottom if kind == "-inf" else top
                        plt.scatter(
                            at,
                            [edge] * len(at),
                            marker=_MARKERS[kind],
                            color=NONFINITE_COLOR,
                            yside=side,
                        )
        cursor = self.cursor_x
        if cursor is not None and x_lo <= cursor <= x_hi:
            plt.vline(cursor, color=CURSOR_COLOR)
        # plotext's output is parsed as ANSI, so every string given to it is sanitized.
        head = sanitize(self.title, 400).strip()
        notes = self._notes(prepared)
        self._shown_title = TITLE_SEPARATOR.join(part for part in (head, *notes) if part)
        if len(self._shown_title) > width:
            room = width - (len(head) + len(TITLE_SEPARATOR) if head else 0)
            self._fitted_title = fit_title([head, *self._notes(prepared, room)], width)
        else:
            self._fitted_title = self._shown_title
        plt.title(self._fitted_title)
        plt.xlabel(sanitize(self.x_label, 80))
        return None

    def _y_ticks(self, lo: float, hi: float, height: int, side: str) -> None:
        """Round ticks with labels of at most seven characters (no 0 on a log axis)."""
        count = max(2, (height - 5) // 3)
        if self.log_y:
            ticks = [10.0**e for e in log_ticks(lo, hi, count)]
            labels = [short_number(t) for t in ticks]
        else:
            ticks = nice_ticks(lo, hi, count)
            labels = [short_number(t) for t in ticks]
        self.tick_labels = labels
        # plotext takes a log axis's ticks as values (its limits as log10 of them).
        self.plt.yticks(ticks, labels, yside=side)  # type: ignore[arg-type]

    def _mark_clipped(self, p: _Prepared, side: str, bottom: float, top: float) -> None:
        """Points beyond the y-range drawn on its edge in the trace's colour."""
        line_x, line_y = p.smooth or p.raw
        above = [x for x, y in zip(line_x, line_y) if y > top]
        below = [x for x, y in zip(line_x, line_y) if y < bottom]
        self.clipped += len(above) + len(below)
        for at, edge, marker in ((above, top, "▴"), (below, bottom, "▾")):
            if at:
                self.plt.scatter(at, [edge] * len(at), marker=marker, color=p.color, yside=side)

    def _legend_rows(self, prepared: list[_Prepared], height: int) -> int:
        """Legend entries to draw: one per visible line, none when they would crowd it."""
        if not self.show_legend:
            return 0
        count = sum(1 for p in prepared if (p.smooth or p.raw)[0])
        return count if count <= max(1, (height - 5) // 3) else 0

    def _plot_one(
        self,
        p: _Prepared,
        side: Literal["left", "right"],
        span: tuple[float, float],
        *,
        labelled: bool,
    ) -> None:
        label: str | None = p.label
        if p.first_bad is not None:
            label = f"{label} · {_kind_word(p.first_bad[1])}@{format_number(p.first_bad[0])}"
        if not labelled:
            label = None
        # Lines are clipped to the range here: plotext would otherwise rasterize a jump to
        # 1e24 row by row (and run out of memory).
        bottom, top = span
        raw_x, raw_y = p.raw[0], np.clip(p.raw[1], bottom, top).tolist()
        if p.smooth is None:
            if raw_x:
                self.plt.plot(
                    raw_x, raw_y, marker="braille", color=p.color, yside=side, label=label
                )
            return
        if raw_x:
            # plotext drops the style of braille points, so the raw line is drawn in a
            # placeholder colour that render() turns into the trace's colour, dimmed.
            self.plt.plot(raw_x, raw_y, marker="braille", color=_placeholder(p.index), yside=side)
        sx, sy = p.smooth[0], np.clip(p.smooth[1], bottom, top).tolist()
        if sx:
            self.plt.plot(sx, sy, marker="braille", color=p.color, yside=side, label=label)

    def _cut(self, xs: list[float], ys: list[float]) -> tuple[list[float], list[float]]:
        """A line (x ascending) cut to :attr:`x_window`, ending on its edges where it runs
        on beyond them: the y-range then covers the line as drawn, with no stretch of it
        pressed flat against the plot's top or bottom."""
        window = self.x_window
        if window is None:
            return xs, ys
        low, high = window
        first, end = bisect_left(xs, low), bisect_right(xs, high)
        out_x, out_y = xs[first:end], ys[first:end]
        if 0 < first < len(xs):
            out_x.insert(0, low)
            out_y.insert(0, _between(xs, ys, first, low))
        if 0 < end < len(xs):
            out_x.append(high)
            out_y.append(_between(xs, ys, end, high))
        return out_x, out_y

    def _faint_raw(self, text: Text) -> Text:
        """Give the raw lines their trace's colour, dimmed, in place of the placeholder."""
        faint: dict[tuple[int, int, int], Style] = {}
        for index, trace in enumerate(self._traces):
            color = trace.color if valid_color(trace.color) else color_for(index)
            faint[_placeholder(index)] = Style(color=rich_color(color), dim=True)
        spans = []
        for span in text.spans:
            style = span.style
            if isinstance(style, Style) and style.color is not None and style.color.triplet:
                red, green, blue = style.color.triplet
                dimmed = faint.get((red, green, blue))
                if dimmed is not None:
                    span = Span(span.start, span.end, style + dimmed)
            spans.append(span)
        text.spans = spans
        return text

    def _has_anything(self) -> bool:
        return any(min(t.x.size, t.y.size) > 0 for t in self._traces)

    def render(self) -> RenderResult:
        """Draw the chart; reuse the last drawing while nothing it depends on changed."""
        width, height = self.size
        key = (
            self._generation,
            self.smoothing,
            self.log_y,
            self.x_label,
            self.title,
            self.empty_message,
            self.show_legend,
            self.full_range,
            self.clock_x,
            self.x_window,
            self.cursor_x,
            width,
            height,
            self.app.theme,
            self.theme,
        )
        return self._drawing_cache.get(key, lambda: self._draw(width))

    def _draw(self, width: int) -> Text:
        if not self._has_anything():
            return centred_message(self.empty_message, *self.size)
        try:
            message = self._draw_figure(width, self.size.height)
            if message is not None:
                return centred_message(message, *self.size)
            # plotext's build() rescales a figure's data in place for log axes, so each
            # figure is built exactly once, right after it is drawn.
            rendered = super().render()
        except Exception as error:
            # plotext raises on inputs we cannot enumerate (overflowing ticks, odd ranges);
            # a chart must never take the app down, so the reason is shown instead.
            reason = "values too large" if isinstance(error, OverflowError) else str(error)
            return centred_message(f"cannot draw this chart: {sanitize(reason, 80)}", *self.size)
        if not isinstance(rendered, Text):
            return Text(str(rendered))
        rendered = put_title(rendered, self._fitted_title)
        if self.smoothing > 0.0:
            rendered = self._faint_raw(rendered)
        if self.cursor_x is None:
            return rendered
        # The readout takes the x-axis label's row: it names the axis too.
        lines = rendered.split("\n", allow_blank=True)
        label_row = max((i for i, line in enumerate(lines) if line.plain.strip()), default=0)
        readout = self.readout(width)
        readout.truncate(width, pad=True)
        # On the chart's own background, which plotext gives every cell of its drawing.
        readout.style = Style(bgcolor=_background(lines[label_row]))
        lines[label_row] = readout
        return rendered.blank_copy("\n").join(lines)
