"""``ChartCursor``: a cursor and an x-range shared by the charts of a screen.

The run view's charts and the compare screen's charts share their x-axis, so one cursor
stands at the same x on all of them (each chart reads its own traces there) and one x-range
is shown by all of them. :class:`CursorKeys` gives a widget or a screen holding charts the
keys of :data:`CURSOR_BINDINGS`.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from textual.binding import Binding

from tui.app.widgets.metric_chart import MetricChart

CURSOR_BINDINGS = [
    Binding("c", "toggle_cursor", "Cursor"),
    Binding("comma", "cursor_step(-1)", "Cursor: point left", key_display=",", show=False),
    Binding("full_stop", "cursor_step(1)", "Cursor: point right", key_display=".", show=False),
    Binding("less_than_sign", "cursor_page(-1)", "Cursor: page left", key_display="<", show=False),
    Binding(
        "greater_than_sign", "cursor_page(1)", "Cursor: page right", key_display=">", show=False
    ),
    # Priority: a run view's chart grid scrolls with home/end while the cursor is off.
    Binding("home", "cursor_jump(-1)", "Cursor: first point", show=False, priority=True),
    Binding("end", "cursor_jump(1)", "Cursor: last point", show=False, priority=True),
    # Named in the line above the charts rather than in the footer, which has no room left.
    Binding("right_parenthesis", "x_zoom(1)", "Zoom x in", key_display=")", show=False),
    Binding("left_parenthesis", "x_zoom(-1)", "Zoom x out", key_display="(", show=False),
    Binding("left_curly_bracket", "x_pan(-1)", "Pan left", key_display="{", show=False),
    Binding("right_curly_bracket", "x_pan(1)", "Pan right", key_display="}", show=False),
    Binding("0", "x_reset", "Whole x-range", show=False),
]
"""The cursor and x-range keys, declared by each holder of charts so its help lists them."""

CURSOR_ACTIONS = frozenset(binding.action.partition("(")[0] for binding in CURSOR_BINDINGS)
"""The actions of :data:`CURSOR_BINDINGS`, without their arguments."""

PAGE = 0.1
"""A page move of the cursor: this share of the x-range shown."""
PAN = 0.25
"""A pan: this share of the x-range shown."""
ZOOM = 2.0
"""How much one zoom key narrows or widens the x-range."""


def _extent(charts: Sequence[MetricChart]) -> tuple[float, float] | None:
    """The first and last x of every chart's points."""
    ends = [e for e in (c.extent() for c in charts) if e is not None]
    if not ends:
        return None
    return min(lo for lo, _ in ends), max(hi for _, hi in ends)


def _after(charts: Sequence[MetricChart], x: float) -> float | None:
    """The first point of any chart right of ``x``."""
    return min((p for p in (c.point_after(x) for c in charts) if p is not None), default=None)


def _before(charts: Sequence[MetricChart], x: float) -> float | None:
    """The last point of any chart left of ``x``."""
    return max((p for p in (c.point_before(x) for c in charts) if p is not None), default=None)


def _count_in(charts: Sequence[MetricChart], low: float, high: float) -> int:
    """The most points one trace of one chart has between ``low`` and ``high``."""
    return max((c.count_in(low, high) for c in charts), default=0)


class ChartCursor:
    """Where the cursor stands and which x-range shows, for a set of charts.

    Each change returns whether anything changed; :meth:`apply` hands the state to charts
    (new charts get it the same way).
    """

    def __init__(self) -> None:
        self.x: float | None = None
        """The cursor's x (``None``: no cursor)."""
        self.window: tuple[float, float] | None = None
        """The x-range shown (``None``: every point, growing with the runs)."""

    def apply(self, charts: Sequence[MetricChart]) -> None:
        """Show the cursor and the x-range on ``charts``."""
        for chart in charts:
            chart.cursor_x = self.x
            chart.x_window = self.window

    def shown(self, charts: Sequence[MetricChart]) -> tuple[float, float] | None:
        """The x-range shown: the window, else every point's."""
        return self.window if self.window is not None else _extent(charts)

    def describe(self, charts: Sequence[MetricChart]) -> str:
        """The x-range shown when narrowed (``x 40–60``), else nothing."""
        if self.window is None or not charts:
            return ""
        low, high = (charts[0].short_x(x) for x in self.window)
        return f"x {low}–{high}"

    def clear(self) -> None:
        """Forget the cursor and the x-range (another x-axis: their values mean nothing)."""
        self.x, self.window = None, None

    # The cursor ---------------------------------------------------------------------------
    def toggle(self, charts: Sequence[MetricChart]) -> bool:
        """Hide the cursor, or show it on the last point shown."""
        if self.x is not None:
            self.x = None
            return True
        return self._show(charts)

    def _show(self, charts: Sequence[MetricChart]) -> bool:
        shown = self.shown(charts)
        if shown is None:
            return False
        last = _before(charts, np.nextafter(shown[1], np.inf))
        self.x = last if last is not None and last >= shown[0] else shown[1]
        return True

    def step(self, charts: Sequence[MetricChart], count: int) -> bool:
        """Move the cursor ``count`` points right (left when negative); show it if hidden."""
        if self.x is None:
            return self._show(charts)
        x = self.x
        for _ in range(abs(count)):
            moved = _after(charts, x) if count > 0 else _before(charts, x)
            if moved is None:
                break
            x = moved
        return self._move_to(charts, x)

    def page(self, charts: Sequence[MetricChart], direction: int) -> bool:
        """Move the cursor a tenth of the x-range shown: to the point nearest there, and at
        least one point."""
        shown = self.shown(charts)
        if self.x is None or shown is None:
            return self._show(charts)
        target = self.x + direction * PAGE * (shown[1] - shown[0])
        near = [
            p
            for p in (_before(charts, np.nextafter(target, np.inf)), _after(charts, target))
            if p is not None and (p - self.x) * direction > 0
        ]
        if not near:
            moved = _after(charts, self.x) if direction > 0 else _before(charts, self.x)
        else:
            moved = min(near, key=lambda p: abs(p - target))
        return moved is not None and self._move_to(charts, moved)

    def jump(self, charts: Sequence[MetricChart], end: int) -> bool:
        """Put the cursor on the first (``end < 0``) or last point of all."""
        extent = _extent(charts)
        if extent is None:
            return False
        return self._move_to(charts, extent[1] if end > 0 else extent[0])

    def _move_to(self, charts: Sequence[MetricChart], x: float) -> bool:
        """Put the cursor at ``x``, panning the x-range to keep it in view."""
        changed = x != self.x
        self.x = x
        window = self.window
        if window is not None and not window[0] <= x <= window[1]:
            width = window[1] - window[0]
            low = x - width if x > window[1] else x
            self.window = self._clamped(charts, low, low + width)
            changed = True
        return changed

    # The x-range --------------------------------------------------------------------------
    def zoom(self, charts: Sequence[MetricChart], direction: int) -> bool:
        """Narrow (``direction > 0``) or widen the x-range around the cursor, else around
        its middle. Never narrower than two points of one chart."""
        shown = self.shown(charts)
        if shown is None:
            return False
        low, high = shown
        centre = self.x if self.x is not None and low <= self.x <= high else (low + high) / 2
        factor = 1 / ZOOM if direction > 0 else ZOOM
        new_low, new_high = centre - (centre - low) * factor, centre + (high - centre) * factor
        if direction > 0 and (new_high <= new_low or _count_in(charts, new_low, new_high) < 2):
            return False
        window = self._clamped(charts, new_low, new_high)
        changed = window != self.window
        self.window = window
        return changed

    def pan(self, charts: Sequence[MetricChart], direction: int) -> bool:
        """Move the x-range a quarter of its width; the cursor stays in it."""
        window = self.window
        if window is None:
            return False
        shift = direction * PAN * (window[1] - window[0])
        moved = self._clamped(charts, window[0] + shift, window[1] + shift)
        if moved == window or moved is None:
            return False
        self.window = moved
        if self.x is not None and not moved[0] <= self.x <= moved[1]:
            inside = _after(charts, moved[0]) if self.x < moved[0] else _before(charts, moved[1])
            if inside is not None and moved[0] <= inside <= moved[1]:
                self.x = inside
        return True

    def reset(self) -> bool:
        """Show every point again."""
        changed = self.window is not None
        self.window = None
        return changed

    def _clamped(
        self, charts: Sequence[MetricChart], low: float, high: float
    ) -> tuple[float, float] | None:
        """``low``..``high`` moved inside the points' extent; ``None`` when it covers it."""
        extent = _extent(charts)
        if extent is None:
            return None
        first, last = extent
        width = high - low
        if width >= last - first:
            return None
        if low < first:
            low, high = first, first + width
        elif high > last:
            low, high = last - width, last
        return (low, high)


class CursorKeys:
    """The actions of :data:`CURSOR_BINDINGS` for a widget or screen holding charts.

    The holder sets :attr:`chart_cursor` and says which charts it holds
    (:meth:`cursor_charts`); :meth:`cursor_changed` runs after every change.
    """

    chart_cursor: ChartCursor

    def cursor_charts(self) -> Sequence[MetricChart]:
        """The charts the cursor moves over."""
        raise NotImplementedError

    def cursor_changed(self) -> None:
        """The cursor or the x-range changed (and is shown on the charts already)."""

    def cursor_action(self, action: str) -> bool | None:
        """Whether a cursor key acts now (``None`` for other actions): home and end only
        while the cursor shows (else they keep their usual meaning), pan and reset only
        while the x-range is narrowed."""
        if action == "cursor_jump":
            return self.chart_cursor.x is not None
        if action in ("x_pan", "x_reset"):
            return self.chart_cursor.window is not None
        return True if action in CURSOR_ACTIONS else None

    def _changed(self, changed: bool) -> None:
        if changed:
            self.chart_cursor.apply(self.cursor_charts())
            self.cursor_changed()

    def action_toggle_cursor(self) -> None:
        """Show or hide the cursor and its readout."""
        self._changed(self.chart_cursor.toggle(self.cursor_charts()))

    def action_cursor_step(self, count: int) -> None:
        """Move the cursor by points."""
        self._changed(self.chart_cursor.step(self.cursor_charts(), count))

    def action_cursor_page(self, direction: int) -> None:
        """Move the cursor by a tenth of the x-range shown."""
        self._changed(self.chart_cursor.page(self.cursor_charts(), direction))

    def action_cursor_jump(self, end: int) -> None:
        """Put the cursor on the first or the last point."""
        self._changed(self.chart_cursor.jump(self.cursor_charts(), end))

    def action_x_zoom(self, direction: int) -> None:
        """Narrow or widen the x-range shown."""
        self._changed(self.chart_cursor.zoom(self.cursor_charts(), direction))

    def action_x_pan(self, direction: int) -> None:
        """Move the x-range shown left or right."""
        self._changed(self.chart_cursor.pan(self.cursor_charts(), direction))

    def action_x_reset(self) -> None:
        """Show every point."""
        self._changed(self.chart_cursor.reset())
