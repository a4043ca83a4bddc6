"""``ValueBlock``: one logged metric of a non-scalar shape, drawn from its latest value.

DESIGN.md §3 shapes: text values with their history, vectors as bars of the latest, bar
charts, lines with their own x, tables (numeric columns also as a chart when there are
enough rows). Everything from the run is drawn as ``Text``; nothing is parsed as markup.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import numpy.typing as npt
from rich.table import Table as RichTable
from rich.text import Text
from textual.app import ComposeResult
from textual.containers import Vertical
from textual.widgets import Static

from tui.app.widgets.cells import number_text
from tui.app.widgets.metric_chart import MetricChart
from tui.app.widgets.plot_colors import color_for
from tui.app.widgets.trace import Trace, floats
from tui.core.sanitize import sanitize
from tui.core.shapes import Bar, Line, Shape, Table, describe, format_number

BAR_ITEMS = 40
"""Vectors up to this long are drawn as labelled bars; longer ones as a line."""

TABLE_ROWS = 50
"""Rows of a logged table shown as text (the chart covers all of them)."""

TABLE_CHART_ROWS = 5
"""Tables with at least this many rows also chart their numeric columns."""

TEXT_HISTORY = 8
"""Changes of a text value listed under its latest value."""

_BAR_WIDTH = 40


def _indexes(count: int) -> npt.NDArray[np.float64]:
    """``0, 1, ..., count - 1`` as x values."""
    return np.arange(count, dtype=np.float64)


def bars(labels: Sequence[str], values: Sequence[float], width: int = _BAR_WIDTH) -> Text:
    """Horizontal bars, one line per value: label, bar scaled to the largest magnitude, value.

    Non-finite values get no bar and a red value; negative ones a bar of another colour.
    """
    finite = [abs(v) for v in values if math.isfinite(v)]
    peak = max(finite, default=0.0)
    label_width = min(24, max((len(label) for label in labels), default=1))
    text = Text(no_wrap=True, overflow="ellipsis")
    for label, value in zip(labels, values):
        text.append(sanitize(label, 80)[:label_width].rjust(label_width) + " ", style="bold")
        if math.isfinite(value) and peak > 0:
            eighths = round(abs(value) / peak * width * 8)
            bar = "█" * (eighths // 8) + (" ▏▎▍▌▋▊▉"[eighths % 8] if eighths % 8 else "")
            text.append(bar.ljust(width + 1), style="magenta" if value < 0 else "cyan")
        else:
            text.append(" " * (width + 1))
        text.append_text(number_text(value))
        text.append("\n")
    text.rstrip()
    return text


def table_text(table: Table, limit: int = TABLE_ROWS) -> RichTable:
    """A logged table as a rich table of ``Text`` cells (numbers right-aligned)."""
    out = RichTable(box=None, pad_edge=False, show_edge=False, header_style="bold")
    for column in table.columns:
        out.add_column(Text(sanitize(column, 80)), overflow="ellipsis", max_width=40)
    for row in table.rows[:limit]:
        cells = []
        for cell in row:
            if isinstance(cell, float):
                cells.append(number_text(cell))
            else:
                cells.append(Text(sanitize(str(cell), 200)))
        out.add_row(*cells)
    return out


def numeric_columns(table: Table) -> list[int]:
    """Indexes of the columns whose every cell is a number."""
    return [
        i
        for i in range(len(table.columns))
        if table.rows and all(isinstance(row[i], float) for row in table.rows)
    ]


class ValueBlock(Vertical):
    """One logged metric of a non-scalar shape: a title line and its latest value."""

    DEFAULT_CSS = """
    ValueBlock {
        height: auto;
        margin: 0 0 1 0;
    }
    ValueBlock > .value-title {
        background: $panel;
        padding: 0 1;
    }
    ValueBlock > .value-body {
        padding: 0 1;
        height: auto;
    }
    ValueBlock > MetricChart {
        height: 14;
        display: none;
    }
    ValueBlock > MetricChart.shown {
        display: block;
    }
    """

    def __init__(self, name: str) -> None:
        super().__init__()
        self.metric = name
        self._pending: Sequence[tuple[float, Shape]] = ()
        self._ready = False

    def compose(self) -> ComposeResult:
        yield Static(classes="value-title")
        yield Static(classes="value-body")
        yield MetricChart()

    def on_mount(self) -> None:
        self._ready = True
        if self._pending:
            self.show(self._pending)

    def show(self, history: Sequence[tuple[float, Shape]]) -> None:
        """Draw the latest value of ``history`` (and, for text, how it changed)."""
        if not self._ready:
            self._pending = history  # drawn once the block's parts exist
            return
        self._pending = ()
        if not history:
            return
        step, latest = history[-1]
        title = Text(no_wrap=True, overflow="ellipsis")
        title.append(sanitize(self.metric, 200), style="bold")
        title.append(f"  {describe(latest)} · step {format_number(step)}", style="dim")
        if len(history) > 1:
            title.append(f" · {len(history)} values logged", style="dim")
        self.query_one(".value-title", Static).update(title)
        body = self.query_one(".value-body", Static)
        chart = self.query_one(MetricChart)
        traces: list[Trace] = []
        if isinstance(latest, str):
            body.update(self._text_history(history))
        elif isinstance(latest, tuple):
            if len(latest) <= BAR_ITEMS:
                body.update(bars([str(i) for i in range(len(latest))], latest))
            else:
                body.update(Text("the latest vector, by index:", style="dim"))
                traces = [Trace(self.metric, _indexes(len(latest)), floats(latest), color_for(0))]
        elif isinstance(latest, Bar):
            body.update(bars(latest.x, latest.y))
        elif isinstance(latest, Line):
            body.update(Text(f"x from {_range(latest.x)}", style="dim"))
            traces = [Trace(self.metric, floats(latest.x), floats(latest.y), color_for(0))]
        elif isinstance(latest, Table):
            body.update(self._table(latest))
            if len(latest.rows) >= TABLE_CHART_ROWS:
                traces = [
                    Trace(
                        sanitize(latest.columns[i], 60),
                        _indexes(len(latest.rows)),
                        floats([row[i] for row in latest.rows]),
                        color=color_for(n),
                    )
                    for n, i in enumerate(numeric_columns(latest))
                ]
        chart.set_class(bool(traces), "shown")
        if traces:
            chart.x_label = (
                "row" if isinstance(latest, Table) else "x" if isinstance(latest, Line) else "index"
            )
            chart.set_traces(traces)

    @staticmethod
    def _text_history(history: Sequence[tuple[float, Shape]]) -> Text:
        latest = history[-1][1]
        text = Text(str(latest))
        changes: list[tuple[float, str]] = []
        previous = None
        for step, value in history:
            if isinstance(value, str) and value != previous:
                changes.append((step, value))
                previous = value
        if len(changes) > 1:
            text.append("\nhistory (changes, newest last):", style="dim")
            shown = changes[-TEXT_HISTORY:]
            if len(changes) > len(shown):
                text.append(f"\n  … {len(changes) - len(shown)} earlier", style="dim")
            for step, value in shown:
                text.append(f"\n  step {format_number(step)}: ", style="dim")
                text.append(value)
        return text

    @staticmethod
    def _table(table: Table) -> RichTable | Text:
        if not table.rows:
            return Text("empty table", style="dim")
        rendered = table_text(table)
        if len(table.rows) > TABLE_ROWS:
            rendered.caption = f"first {TABLE_ROWS} of {len(table.rows)} rows"
        return rendered


def _range(values: Sequence[float]) -> str:
    finite = [v for v in values if math.isfinite(v)]
    if not finite:
        return "no finite values"
    return f"{format_number(min(finite))} to {format_number(max(finite))}"
