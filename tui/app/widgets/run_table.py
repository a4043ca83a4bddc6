"""``RunTable``: the sortable, live run table of the main screen.

Columns are described by :class:`Column` objects (a cell renderer and a sort value); the
screen decides which exist. Rows are keyed by run key, so live updates touch only the
cells of runs that changed, and re-sorting keeps the cursor on the same run. Every cell
is a :class:`~rich.text.Text` built from sanitized strings: nothing from a run is parsed
as markup.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass

from rich.text import Text
from textual.message import Message
from textual.widgets import DataTable
from textual.geometry import Size
from textual.widgets.data_table import CellDoesNotExist, RowDoesNotExist, RowKey

from tui.core.rules import Verdict
from tui.core.shapes import format_number
from tui.core.store import Run
from tui.core.summary import best, duration, human_duration, smoothed_last, throughput

STATUS_BADGES = {
    "running": ("▶ running", "bold green"),
    "stalled": ("‖ stalled", "bold yellow"),
    "pending": ("· pending", "cyan"),
    "finished": ("✓ finished", "blue"),
    "failed": ("✗ failed", "bold red"),
    "killed": ("☠ killed", "magenta"),
    "crashed": ("! crashed", "red"),
    "unknown": ("? unknown", "dim"),
}

SortValue = tuple[int, float | str]


def number_text(value: float | None, digits: int = 4) -> Text:
    """A right-aligned number cell; NaN/inf in bold red, missing as a dim dash."""
    if value is None:
        return Text("–", style="dim", justify="right")
    text = format_number(value, digits)
    style = "bold red" if not math.isfinite(value) else ""
    return Text(text, style=style, justify="right")


def _num_key(value: float | None) -> SortValue | None:
    if value is None or not math.isfinite(value):
        return None
    return (0, value)


@dataclass(frozen=True)
class Column:
    """One table column: how to draw a run's cell and what to sort it by.

    ``value`` returns ``None`` for a missing or non-finite value, which always sorts last.
    """

    key: str
    label: str
    cell: Callable[[Run], Text]
    value: Callable[[Run], SortValue | None]
    width: int | None = None


def status_column() -> Column:
    def cell(run: Run) -> Text:
        label, style = STATUS_BADGES.get(run.status, (run.status, ""))
        if run.partial:
            label += "…"
        return Text(label, style=style)

    order = {name: i for i, name in enumerate(STATUS_BADGES)}
    return Column("status", "status", cell, lambda r: (0, order.get(r.status, 99)), 11)


def text_column(
    key: str, label: str, get: Callable[[Run], str], width: int | None = None
) -> Column:
    return Column(key, label, lambda r: Text(get(r)), lambda r: (1, get(r).lower()), width)


def step_column() -> Column:
    def value(run: Run) -> float | None:
        return run.last_step

    return Column(
        "step", "step", lambda r: number_text(value(r), 9), lambda r: _num_key(value(r)), 8
    )


def duration_column(clock: Callable[[], float]) -> Column:
    def cell(run: Run) -> Text:
        return Text(human_duration(duration(run, clock())), justify="right")

    return Column("duration", "time", cell, lambda r: _num_key(duration(r, clock())), 7)


def rate_column() -> Column:
    def cell(run: Run) -> Text:
        rate = throughput(run)
        return Text("" if rate is None else f"{rate:.3g}", justify="right")

    return Column("rate", "step/s", cell, lambda r: _num_key(throughput(r)), 7)


def age_column(clock: Callable[[], float]) -> Column:
    def age(run: Run) -> float | None:
        last = run.last_time if run.last_time is not None else run.mtime
        return None if last is None else max(0.0, clock() - last)

    return Column(
        "age",
        "age",
        lambda r: Text(human_duration(age(r)), justify="right"),
        lambda r: _num_key(age(r)),
        6,
    )


def metric_column(name: str, kind: str, smoothing: Callable[[], float]) -> Column:
    """``kind``: ``last`` (or the smoothed last value while smoothing is on) or ``best``."""

    def value(run: Run) -> float | None:
        series = run.series.get(name)
        if series is None or not series.count:
            return None
        if kind == "best":
            found, _ = best(series)
            return None if math.isnan(found) else found
        strength = smoothing()
        return smoothed_last(series, strength) if strength > 0 else series.last

    label = name if kind == "last" else f"{name} best"

    def cell(run: Run) -> Text:
        series = run.series.get(name)
        text = number_text(value(run))
        if (
            series is not None
            and series.nonfinite
            and kind == "last"
            and math.isfinite(series.last)
        ):
            text.append(" !", style="bold red")  # was non-finite earlier
        return text

    return Column(f"metric:{kind}:{name}", label, cell, lambda r: _num_key(value(r)))


def rules_column(verdicts: Callable[[str], Sequence[Verdict]]) -> Column:
    def cell(run: Run) -> Text:
        mine = verdicts(run.key)
        fired = [v for v in mine if v.state == "triggered"]
        if fired:
            return Text(" ".join(f"⚑{v.rule}" for v in fired), style="bold red")
        if not mine:
            return Text("")
        waiting = sum(v.state == "waiting" for v in mine)
        return Text(
            "ok" if not waiting else f"ok ({waiting}…)", style="green" if not waiting else "dim"
        )

    def value(run: Run) -> SortValue:
        return (0, -float(sum(v.state == "triggered" for v in verdicts(run.key))))

    return Column("rules", "rules", cell, value)


def config_column(key: str) -> Column:
    def get(run: Run) -> object:
        node: object = run.config
        for part in key.split("."):
            if not isinstance(node, dict) or part not in node:
                return None
            node = node[part]
        return node

    def cell(run: Run) -> Text:
        value = get(run)
        if value is None:
            return Text("–", style="dim")
        if isinstance(value, bool):
            return Text(str(value).lower())
        if isinstance(value, (int, float)):
            return number_text(float(value), 4)
        return Text(str(value)[:40])

    def value(run: Run) -> SortValue | None:
        found = get(run)
        if found is None:
            return None
        if isinstance(found, (int, float)) and not isinstance(found, bool):
            return _num_key(float(found))
        return (1, str(found).lower())

    return Column(f"config:{key}", key, cell, value)


class RunTable(DataTable[Text]):
    """The run table. The screen owns the columns, the order and which runs are shown."""

    DEFAULT_CSS = """
    RunTable { height: 1fr; }
    """

    class SortRequested(Message):
        """The user clicked a header: sort by that column."""

        def __init__(self, column: str) -> None:
            super().__init__()
            self.column = column

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(id=id, cursor_type="row", zebra_stripes=True)
        self.columns_spec: list[Column] = []
        self.marked: set[str] = set()
        self.baseline: str | None = None
        self.shown: list[str] = []

    def _update_dimensions(self, new_rows: Iterable[RowKey]) -> None:
        """Column widths for new rows, measured as Text cell lengths.

        DataTable measures each new cell through ``console.options`` (a terminal-size
        system call per cell: most of the time to add 1,000 rows). Every cell here is a
        one-line ``Text``, whose width is its cell length; rows are one line high.
        Textual is pinned to one version (pyproject), which keeps this override honest.
        """
        columns = self.ordered_columns
        for row_key in new_rows:
            cells = self._data.get(row_key)
            if cells is None:
                continue
            for column in columns:
                cell = cells.get(column.key)
                if cell is not None:
                    width = cell.cell_len if isinstance(cell, Text) else len(str(cell))
                    if width > column.content_width:
                        column.content_width = width
        data_width = sum(column.get_render_width(self) for column in self.columns.values())
        header = self.header_height if self.show_header else 0
        self.virtual_size = Size(data_width + self._row_label_column_width, self._total_row_height + header)

    # Structure ------------------------------------------------------------------------------
    def set_columns(self, columns: list[Column]) -> bool:
        """Replace the columns; returns True when they changed (rows must be re-added)."""
        if [c.key for c in columns] == [c.key for c in self.columns_spec]:
            self.columns_spec = columns
            return False
        self.columns_spec = columns
        self.clear(columns=True)
        self.add_column(Text(" "), key="mark", width=1)
        for column in columns:
            self.add_column(Text(column.label), key=column.key, width=column.width)
        self.shown = []
        return True

    def _mark_cell(self, key: str) -> Text:
        if key == self.baseline:
            return Text("◆", style="bold yellow")
        return Text("●", style="bold cyan") if key in self.marked else Text(" ")

    def _cells(self, run: Run) -> list[Text]:
        return [self._mark_cell(run.key), *(column.cell(run) for column in self.columns_spec)]

    def show(self, runs: Sequence[Run]) -> None:
        """Show exactly ``runs`` in this order, keeping the cursor on the same run."""
        current = self.current_key
        keys = [run.key for run in runs]
        if keys == self.shown:
            return
        old = set(self.shown)
        if set(keys) == old:
            self._reorder(keys)
        elif old and old < set(keys):
            # Runs were added: add just their rows, then order everything.
            for run in runs:
                if run.key not in old:
                    self.add_row(*self._cells(run), key=run.key)
            self.shown = self.shown + [k for k in keys if k not in old]
            if self.shown != keys:
                self._reorder(keys)
        else:
            scroll = self.scroll_y
            self.clear()
            for run in runs:
                self.add_row(*self._cells(run), key=run.key)
            self.shown = keys
            self.scroll_y = scroll
        self._restore_cursor(current)

    def _reorder(self, keys: list[str]) -> None:
        # DataTable sorts by cell values; each row's mark cell is its own Text object, so
        # its identity names the row.
        rank = {id(self.get_cell(key, "mark")): i for i, key in enumerate(keys)}
        self.sort("mark", key=lambda cell: rank.get(id(cell), 0))
        self.shown = keys

    def _restore_cursor(self, key: str | None) -> None:
        if key is None or key not in self.shown:
            return
        try:
            index = self.get_row_index(key)
        except RowDoesNotExist:
            return
        if index != self.cursor_row:
            self.move_cursor(row=index, animate=False, scroll=False)

    def update_runs(self, runs: Iterable[Run]) -> None:
        """Redraw the cells of ``runs`` (only those that are shown)."""
        shown = set(self.shown)
        for run in runs:
            if run.key not in shown:
                continue
            for column, cell in zip(
                ["mark", *(c.key for c in self.columns_spec)], self._cells(run)
            ):
                try:
                    self.update_cell(run.key, column, cell)
                except (CellDoesNotExist, RowDoesNotExist):
                    break

    def refresh_marks(self) -> None:
        """Redraw the mark column after marks or the baseline changed."""
        for key in self.shown:
            try:
                self.update_cell(key, "mark", self._mark_cell(key))
            except (CellDoesNotExist, RowDoesNotExist):
                continue

    @property
    def current_key(self) -> str | None:
        """The run under the cursor."""
        if not self.shown or self.cursor_row < 0 or self.cursor_row >= self.row_count:
            return None
        try:
            row_key, _ = self.coordinate_to_cell_key(self.cursor_coordinate)
        except (CellDoesNotExist, RowDoesNotExist):
            return None
        return row_key.value

    def on_data_table_header_selected(self, event: DataTable.HeaderSelected) -> None:
        event.stop()
        if event.column_key.value and event.column_key.value != "mark":
            self.post_message(self.SortRequested(event.column_key.value))


def order_runs(
    runs: list[Run], column: Column | None, descending: bool, baseline: str | None
) -> list[Run]:
    """Sort ``runs`` by ``column``: missing and non-finite values last in either direction,
    ties in name order, the baseline run pinned first."""
    if column is None:
        ordered = sorted(runs, key=lambda r: (r.name.lower(), r.key))
    else:
        present: list[tuple[SortValue, str, Run]] = []
        absent: list[Run] = []
        for run in runs:
            value = column.value(run)
            if value is None:
                absent.append(run)
            else:
                present.append((value, run.name.lower(), run))
        present.sort(key=lambda item: (item[0], item[1]), reverse=descending)
        absent.sort(key=lambda r: r.name.lower())
        ordered = [r for _, _, r in present] + absent
    if baseline is not None:
        pinned = [r for r in ordered if r.key == baseline]
        ordered = pinned + [r for r in ordered if r.key != baseline]
    return ordered


def now() -> float:
    """Wall clock default for columns."""
    return time.time()
