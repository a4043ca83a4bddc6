"""``ChartStrip``: small live charts of the key metrics under the run table.

One panel per metric, the cursor run and the marked runs overlaid in their run colours.
Drawn with the braille rasterizer, not plotext, so the first screen neither imports nor
waits for plotext; the drawing is made only when the strip is shown and something it
depends on changed (the screen says so at most ~10 times a second).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
from rich.color import Color
from rich.style import Style
from rich.text import Text
from textual.app import RenderResult
from textual.reactive import reactive
from textual.widget import Widget

from tui.app.widgets.axis_ticks import short_number
from tui.app.widgets.braille import compose_layers, draw_polylines, pack_braille
from tui.app.widgets.palette import NONFINITE_RICH
from tui.app.widgets.render_cache import RenderCache
from tui.core.reduce import minmax_indices, robust_range
from tui.core.sanitize import sanitize
from tui.core.store import Run

LABEL_WIDTH = 7
"""Characters of the y tick labels (see :func:`short_number`)."""
MIN_PANEL = 30
"""The narrowest panel worth drawing; a narrow terminal shows fewer metrics."""
MAX_PANELS = 4


@dataclass(frozen=True)
class StripRun:
    """A run the strip draws, and how.

    Attributes:
        run: the run.
        label: its name in the legend: the unique name the run table shows.
        color: its run colour.
        current: the table's cursor is on it (named in bold, drawn on top).
    """

    run: Run
    label: str
    color: Color
    current: bool = False


@dataclass(frozen=True)
class _Line:
    x: npt.NDArray[np.float64]
    y: npt.NDArray[np.float64]
    style: Style


class ChartStrip(Widget):
    """Overlaid line charts of a few metrics for a few runs, side by side."""

    DEFAULT_CSS = """
    ChartStrip {
        height: 10;
        padding: 0 1;
    }
    """

    full_range: reactive[bool] = reactive(False)
    """Scale each chart to every value; by default outliers are left out and clipped
    points are drawn on the chart's edge."""

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self._runs: tuple[StripRun, ...] = ()
        self._metrics: tuple[str, ...] = ()
        self._generation = 0
        self._cache = RenderCache()
        self.ranges: dict[str, tuple[float, float]] = {}
        """Each drawn metric's y-range (for readers and tests)."""
        self.clipped: dict[str, int] = {}
        """Each drawn metric's count of points outside its y-range."""

    @property
    def keys(self) -> frozenset[str]:
        """The runs drawn."""
        return frozenset(s.run.key for s in self._runs)

    @property
    def metrics(self) -> tuple[str, ...]:
        """The metrics drawn, one panel each."""
        return self._metrics

    def show(self, runs: list[StripRun], metrics: list[str]) -> None:
        """Draw ``metrics`` of ``runs`` (the current run last, on top)."""
        runs_t, metrics_t = tuple(runs), tuple(metrics)
        same = [(s.run.key, s.label, s.color, s.current) for s in runs_t] == [
            (s.run.key, s.label, s.color, s.current) for s in self._runs
        ]
        if same and metrics_t == self._metrics:
            return
        self._runs, self._metrics = runs_t, metrics_t
        self.data_changed()

    def data_changed(self) -> None:
        """The drawn runs have new points: redraw on the next refresh."""
        self._generation += 1
        self.refresh()

    def render(self) -> RenderResult:
        width, height = self.content_size
        key = (self._generation, self.full_range, width, height)
        return self._cache.get(key, lambda: self._draw(width, height))

    # Drawing ----------------------------------------------------------------------------
    def _draw(self, width: int, height: int) -> Text:
        self.ranges, self.clipped = {}, {}
        if not self._runs or not self._metrics or width < 12 or height < 4:
            return Text("no run to chart yet", style="dim", no_wrap=True)
        out = [self._legend(width)]
        count = max(1, min(len(self._metrics), MAX_PANELS, width // MIN_PANEL))
        panel_width = (width - (count - 1)) // count
        panels = [self._panel(m, panel_width, height - 1) for m in self._metrics[:count]]
        for row in range(height - 1):
            line = Text(no_wrap=True)
            for i, panel in enumerate(panels):
                if i:
                    line.append(" ")
                line.append_text(panel[row])
            out.append(line)
        return Text("\n").join(out)

    def _legend(self, width: int) -> Text:
        legend = Text(no_wrap=True, overflow="ellipsis")
        for strip_run in reversed(self._runs):
            legend.append("● ", style=Style(color=strip_run.color, bold=True))
            legend.append(sanitize(strip_run.label, 120), style="bold" if strip_run.current else "")
            legend.append("  ")
        legend.truncate(width)
        return legend

    def _lines(self, metric: str, buckets: int) -> list[_Line]:
        lines = []
        for strip_run in self._runs:
            run = strip_run.run
            series = run.series.get(metric)
            if series is None or not series.count:
                continue
            y = series.array().astype(np.float64)
            x = run.x_values(series)
            n = min(x.size, y.size)
            kept = minmax_indices(x[:n], y[:n], buckets)
            lines.append(_Line(x[kept], y[kept], Style(color=strip_run.color)))
        return lines

    def _panel(self, metric: str, width: int, height: int) -> list[Text]:
        """``height`` lines of ``width`` characters: title, plot rows, x labels."""
        plot_width = max(2, width - LABEL_WIDTH - 1)
        rows = max(1, height - 2)
        lines = self._lines(metric, plot_width)
        title = Text(sanitize(metric, 80), style="bold", no_wrap=True)
        blank = Text(" " * width)
        finite = [line.y[np.isfinite(line.y)] for line in lines]
        values = np.concatenate(finite) if finite else np.empty(0)
        xs = np.concatenate([line.x for line in lines]) if lines else np.empty(0)
        if values.size == 0:
            title.append("  no values yet", style="dim")
            title.truncate(width, pad=True)
            return [title, *[blank] * (height - 1)]
        full = (float(values.min()), float(values.max()))
        low, high = full if self.full_range else (robust_range(values) or full)
        if high <= low:
            pad = max(abs(low) * 0.1, 1e-9)
            low, high = low - pad, high + pad
        self.ranges[metric] = (low, high)
        clipped = int(np.count_nonzero((values < low) | (values > high)))
        self.clipped[metric] = clipped
        x_low, x_high = float(xs.min()), float(xs.max())
        x_span = x_high - x_low or 1.0
        dots = np.zeros((rows * 4, plot_width * 2), dtype=bool)
        layers: list[tuple[npt.NDArray[np.int64], Style]] = []
        bad_columns: set[int] = set()
        for line in lines:
            dots[:] = False
            good = np.isfinite(line.y)
            col = np.rint((line.x - x_low) / x_span * (plot_width * 2 - 1)).astype(np.int64)
            bad_columns.update((col[~good] // 2).tolist())
            # Points beyond the range are drawn on its edge: clipped, never dropped.
            row = (high - np.clip(line.y[good], low, high)) / (high - low) * (rows * 4 - 1)
            draw_polylines(dots, col[good], row[None, :])
            layers.append((pack_braille(dots), line.style))
        plot = compose_layers(layers, [0], rows, plot_width)
        for column in bad_columns:
            if 0 <= column < plot_width:
                mark = Text("×", style=Style(color=NONFINITE_RICH, bold=True))
                plot[0] = plot[0][:column] + mark + plot[0][column + 1 :]
        if clipped:
            title.append(f"  {clipped} outside range", style="dim")
        title.truncate(width, pad=True)
        out = [title]
        for r, plot_line in enumerate(plot):
            if r == 0:
                tick = short_number(high)
            elif r == rows - 1:
                tick = short_number(low)
            else:
                tick = ""
            row_text = Text(tick.rjust(LABEL_WIDTH) + " ", style="dim", no_wrap=True)
            row_text.append_text(plot_line)
            out.append(row_text)
        x_line = Text(" " * (LABEL_WIDTH + 1), no_wrap=True)
        left, right = short_number(x_low), short_number(x_high)
        gap = max(1, plot_width - len(left) - len(right))
        x_line.append(f"{left}{'step'.center(gap) if gap > 6 else ' ' * gap}{right}", style="dim")
        x_line.truncate(width, pad=True)
        out.append(x_line)
        return out[:height] + [blank] * max(0, height - len(out))
