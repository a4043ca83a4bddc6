"""A line chart of metric series: reduced, smoothed, log-y, with NaN/inf made visible.

The screen hands over :class:`Trace` objects with :meth:`MetricChart.set_traces` and sets
the options as reactives; the plotext figure (one per widget, never plotext's global one) is
rebuilt only when the data, an option or the widget's size changed (DESIGN.md §9).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Literal

import numpy as np
import numpy.typing as npt
from plotext._dict import color_codes as _plotext_color_codes
from rich.color import Color
from rich.style import Style
from rich.text import Span, Text
from textual.app import RenderResult
from textual.reactive import reactive
from textual_plotext import PlotextPlot

from tui.core.reduce import (
    clamp_strength,
    ema,
    first_nonfinite,
    log_safe,
    minmax_indices,
    nonfinite_points,
)
from tui.core.sanitize import sanitize
from tui.core.shapes import format_number

PlotColor = str | int | tuple[int, int, int]
"""A plotext colour: a name such as ``"cyan+"``, a 0-255 index, or an ``(r, g, b)`` tuple."""

PALETTE: tuple[str, ...] = (
    "cyan+",
    "orange+",
    "magenta+",
    "green+",
    "blue+",
    "cyan",
    "orange",
    "magenta",
    "green",
    "white",
)
"""Run colours, all from the 16 ANSI colours so they survive 16-colour terminals.

Red is left out on purpose: it is reserved for the NaN/inf markers.
"""

NONFINITE_COLOR = "red+"
"""Colour of the markers drawn where a value is NaN or infinite."""

EMPTY_MESSAGE = "no data yet"

TITLE_SEPARATOR = " · "
"""What joins the parts of a chart title (the metric, then its notes)."""

# Fewer characters than this of a cut title part tell the reader nothing.
_MIN_PIECE = 4

# plotext's colour names and their ANSI numbers; any other string draws uncoloured.
_ANSI_CODES: dict[str, int] = dict(_plotext_color_codes)

_MARKERS = {"nan": "x", "inf": "^", "-inf": "v"}


def color_for(index: int) -> str:
    """Return the palette colour for the ``index``-th run, so each run keeps one colour."""
    return PALETTE[index % len(PALETTE)]


def _valid_color(color: object) -> bool:
    if isinstance(color, str):
        return color in _ANSI_CODES
    if isinstance(color, bool):
        return False
    if isinstance(color, int):
        return 0 <= color <= 255
    if isinstance(color, tuple) and len(color) == 3:
        return all(isinstance(c, int) and not isinstance(c, bool) and 0 <= c <= 255 for c in color)
    return False


def _floats(values: object) -> npt.NDArray[np.float64]:
    try:
        return np.asarray(values, dtype=np.float64).reshape(-1)
    except (TypeError, ValueError):
        return np.empty(0, dtype=np.float64)


@dataclass(frozen=True, eq=False)
class Trace:
    """One series to draw.

    Attributes:
        label: the legend text (a run and/or metric name, already sanitized).
        x: x values (steps, seconds, ...), coerced to a float64 array.
        y: y values, the same length as ``x`` (the longer one is cut when drawing).
        color: a plotext colour; see :data:`PALETTE` and :func:`color_for`.
        axis: ``"left"`` or ``"right"``: which y-axis the series is measured against.
    """

    label: str
    x: npt.NDArray[np.float64] = field(repr=False)
    y: npt.NDArray[np.float64] = field(repr=False)
    color: PlotColor = PALETTE[0]
    axis: Literal["left", "right"] = "left"

    def __post_init__(self) -> None:
        # Frozen, so coercion goes through object.__setattr__; lists and tuples are welcome.
        object.__setattr__(self, "x", _floats(self.x))
        object.__setattr__(self, "y", _floats(self.y))


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


def rich_color(color: PlotColor) -> Color:
    """The Rich colour of a plotext colour, to style text in a run's plot colour.

    Args:
        color: a plotext colour name (``"cyan+"``), a 0-255 index or an ``(r, g, b)`` tuple.

    Returns:
        The matching :class:`rich.color.Color`; the terminal's default colour for anything
        plotext would not recognise (plotext draws those uncoloured).
    """
    if not _valid_color(color):
        return Color.default()
    if isinstance(color, str):
        return Color.from_ansi(_ANSI_CODES[color])
    if isinstance(color, int):
        return Color.from_ansi(color)
    return Color.from_rgb(*color)


def ellipsize(text: str, width: int) -> str:
    """``text`` cut to at most ``width`` characters, ending in ``…`` when it was cut."""
    if len(text) <= width:
        return text
    return text[: max(0, width - 1)].rstrip() + "…" if width > 0 else ""


def fit_title(parts: Sequence[str], width: int) -> str:
    """Join title parts with :data:`TITLE_SEPARATOR` into at most ``width`` characters.

    plotext leaves out a title that does not fit instead of cutting it, so every chart
    title goes through here. Give the parts most important first: the metric name, then
    the non-finite note, then the rest.

    Args:
        parts: the title's parts (already sanitized); empty ones are skipped.
        width: the characters available.

    Returns:
        The first part, cut with an ellipsis only when it does not fit alone; then the
        others in order while whole ones fit. The first one that does not fit is cut when
        a few characters of it would show, else a trailing ``…`` says something was left
        out; the parts after it are left out.
    """
    kept = [part.strip() for part in parts if part.strip()]
    if not kept or width <= 0:
        return ""
    title = ellipsize(kept[0], width)
    for part in kept[1:]:
        joined = title + TITLE_SEPARATOR + part
        if len(joined) <= width:
            title = joined
            continue
        room = width - len(title) - len(TITLE_SEPARATOR)
        if room > _MIN_PIECE:
            return title + TITLE_SEPARATOR + ellipsize(part, room)
        return title + " …" if len(title) + 2 <= width else title
    return title


def _style_at(line: Text, offset: int) -> Style:
    return Style.combine(
        span.style if isinstance(span.style, Style) else Style.parse(span.style)
        for span in line.spans
        if span.start <= offset < span.end
    )


def put_title(rendered: Text, title: str) -> Text:
    """Make the top row of a plotext drawing show ``title``.

    plotext centres the title on the plot area and leaves it out when it would cross the
    figure's edge, which happens to a title shorter than the figure but longer than the
    plot area. Such a title is written here instead, centred on the plot area as far as
    the edges allow and styled like the tick labels.

    Args:
        rendered: the drawing, whose first line is plotext's title row.
        title: the title given to plotext, already cut to the drawing's width.

    Returns:
        ``rendered``, its first line rewritten when plotext had left the title out.
    """
    title = title.strip()
    if not title or title in rendered.plain.partition("\n")[0]:
        return rendered
    lines = rendered.split("\n", allow_blank=True)
    if len(lines) < 3:
        return rendered
    top = lines[0]
    width = len(top.plain)
    if len(title) > width:
        return rendered
    # The plot area lies between the frame's corners on the next line.
    frame = lines[1].plain
    left, right = frame.find("┌"), frame.find("┐")
    centre = (left + 1 + (right - left - 1) // 2) if 0 <= left < right else width // 2
    start = min(max(0, centre - len(title) // 2), width - len(title))
    # The x-axis label and tick labels at the bottom are drawn in the theme's text style.
    labels = next((line for line in reversed(lines[2:]) if line.plain.strip()), top)
    at = len(labels.plain) - len(labels.plain.lstrip())
    text = Text(top.plain[:start] + title + top.plain[start + len(title) :], no_wrap=True)
    text.spans = [*top.spans, Span(start, start + len(title), _style_at(labels, at))]
    lines[0] = text
    return rendered.blank_copy("\n").join(lines)


def centred_message(message: str, width: int, height: int) -> Text:
    """A dim line of text centred in a ``width`` x ``height`` area (for empty charts)."""
    lines = ["" for _ in range(max(0, (height - 1) // 2))]
    lines.append(message.center(max(width, len(message))))
    return Text("\n".join(lines), style="dim", no_wrap=True, overflow="ellipsis")


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


def _limits(values: list[float], log_y: bool) -> tuple[float, float]:
    """Axis limits covering ``values`` with room, in plotext's space (log10 on a log axis)."""
    if log_y:
        values = [math.log10(v) for v in values if v > 0]
    if not values:
        return (0.0, 1.0)
    lo, hi = min(values), max(values)
    if hi - lo <= 1e-12 * max(abs(lo), abs(hi), 1e-300):
        pad = 0.5 if log_y else max(abs(lo) * 0.1, 1e-9)
        return (lo - pad, hi + pad)
    return (lo, hi)


class RenderCache:
    """The last drawing of a widget, kept until something it depends on changes.

    plotext builds are the expensive part of a chart; Textual asks for ``render`` on
    every refresh, so each plot widget keys its drawing on what it depends on.
    """

    def __init__(self) -> None:
        self._key: tuple[object, ...] | None = None
        self._drawing: Text | None = None

    def get(self, key: tuple[object, ...], draw: Callable[[], Text]) -> Text:
        """The drawing for ``key``: the kept one, or a new one from ``draw``."""
        if self._drawing is None or self._key != key:
            self._drawing, self._key = draw(), key
        return self._drawing


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
        self.refresh()

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
        kept = minmax_indices(trace.x[:n], trace.y[:n], buckets)
        x, y = trace.x[kept], trace.y[kept]
        raw = _finite_line(x, y, log_y)
        # Counted on the full series: the reduced one keeps only a few of them.
        hidden = int(np.count_nonzero(trace.y[:n] <= 0.0)) if log_y else 0
        smooth = None
        if strength > 0.0:
            # The average has no spikes of its own: sampling it where the raw series was
            # kept draws it just as well and saves a second pass over the full series.
            smooth = _finite_line(x, self._smooth(index, trace, strength)[kept], log_y)
        bad_x, bad_y = nonfinite_points(x, y)
        marks: dict[str, list[float]] = {kind: [] for kind in _MARKERS}
        for bx, by in zip(bad_x.tolist(), bad_y.tolist()):
            marks[_kind(by)].append(bx)
        first = first_nonfinite(x, y)
        color = trace.color if _valid_color(trace.color) else color_for(index)
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
            if len(prepared) > 1 and room >= _MIN_PIECE:
                note = f"{ellipsize(label, room)}: {note}"
            notes.append(note)
        if len(bad) > 2:
            notes.append(f"+{len(bad) - 2} more non-finite")
        hidden = sum(p.hidden for p in prepared)
        if hidden:
            notes.append(f"{hidden} values <= 0 hidden")
        return notes

    def _draw_figure(self, width: int, height: int) -> str | None:
        """Rebuild the plotext figure from the traces for a ``width`` x ``height`` plot.

        Returns:
            A message to show instead of the chart when nothing can be drawn, else ``None``.
        """
        plt = self.plt
        plt.clear_figure()
        # Reduction depends on the width only; a change of height reuses it.
        prepared_key = (self._generation, self.smoothing, self.log_y, width)
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
        xs = [v for p in prepared for v in (p.raw[0][:1] + p.raw[0][-1:])]
        xs += [v for p in prepared for marks in p.marks.values() for v in (marks[:1] + marks[-1:])]
        x_lo, x_hi = _limits(xs, False)
        plt.xlim(x_lo, x_hi)
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
            lo, hi = _limits(values, log_y)
            if log_y:
                plt.yscale("log", yside=side)
            plt.ylim(lo, hi + (hi - lo) * headroom, yside=side)
            top, bottom = (10**hi, 10**lo) if log_y else (hi, lo)
            for p in on_side:
                self._plot_one(p, side, labelled=legend > 0)
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

    def _legend_rows(self, prepared: list[_Prepared], height: int) -> int:
        """Legend entries to draw: one per visible line, none when they would crowd it."""
        if not self.show_legend:
            return 0
        count = sum(1 for p in prepared if (p.smooth or p.raw)[0])
        return count if count <= max(1, (height - 5) // 3) else 0

    def _plot_one(self, p: _Prepared, side: Literal["left", "right"], *, labelled: bool) -> None:
        label: str | None = p.label
        if p.first_bad is not None:
            label = f"{label} · {_kind_word(p.first_bad[1])}@{format_number(p.first_bad[0])}"
        if not labelled:
            label = None
        raw_x, raw_y = p.raw
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
        sx, sy = p.smooth
        if sx:
            self.plt.plot(sx, sy, marker="braille", color=p.color, yside=side, label=label)

    def _faint_raw(self, text: Text) -> Text:
        """Give the raw lines their trace's colour, dimmed, in place of the placeholder."""
        faint: dict[tuple[int, int, int], Style] = {}
        for index, trace in enumerate(self._traces):
            color = trace.color if _valid_color(trace.color) else color_for(index)
            faint[_placeholder(index)] = Style(color=rich_color(color), dim=True)
        spans = []
        for span in text.spans:
            style = span.style
            if isinstance(style, Style) and style.color is not None and style.color.triplet:
                dimmed = faint.get(tuple(style.color.triplet))
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
        return self._faint_raw(rendered) if self.smoothing > 0.0 else rendered
