"""``RunTable``: the sortable, live run table of the main screen.

Columns are :class:`~tui.app.widgets.run_columns.Column` objects (a cell renderer and a
sort value); the screen decides which exist. Rows are keyed by run key, so live updates
touch only the cells of runs that changed, and re-sorting keeps the cursor on the same run.
Every cell is a :class:`~rich.text.Text` built from sanitized strings: nothing from a run
is parsed as markup.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from itertools import islice
from typing import ClassVar

from rich.style import Style
from rich.text import Text
from textual import events
from textual.binding import Binding, BindingType
from textual.geometry import Region, Size
from textual.message import Message
from textual.reactive import reactive
from textual.scroll_view import ScrollView
from textual.strip import Strip

from tui.app.widgets.run_columns import Column
from tui.core.store import Run

FROZEN = frozenset({"status", "name"})
"""Columns that stay put while the rest scroll sideways, when they lead the table."""


VIEW_ROWS = 100
"""Rows whose cells a new table makes before its first frame (more than any terminal shows)."""

REST_ROWS = 150
"""Rows whose cells are made between two frames after the first one (about 10 ms): a key or
a frame waits for no more than that while a thousand rows get theirs."""


class RunTable(ScrollView, can_focus=True):
    """The run table: a line-API widget that renders only visible rows.

    Each row is rendered once into a cached strip and re-rendered only when that run's
    cells change, so a live update or a re-sort of 1,000 runs costs the few rows on
    screen, not the whole table. The header stays put when scrolling down and follows
    horizontal scrolling; the mark, status and name columns stay put when scrolling
    sideways, so a row is always known by its run. The screen owns the columns, the order
    and which runs show.
    """

    DEFAULT_CSS = """
    RunTable {
        height: 1fr;
        background: $surface;
    }
    RunTable > .run-table--header {
        text-style: bold;
        background: $panel;
        color: $text;
    }
    RunTable > .run-table--cursor {
        background: $block-cursor-background;
        color: $block-cursor-foreground;
        text-style: bold;
    }
    RunTable:blur > .run-table--cursor {
        background: $block-cursor-blurred-background;
        text-style: none;
    }
    RunTable > .run-table--odd {
        background: $surface-lighten-1;
    }
    """

    COMPONENT_CLASSES: ClassVar[set[str]] = {
        "run-table--header",
        "run-table--cursor",
        "run-table--odd",
    }

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("up", "cursor_up", "Up", show=False),
        Binding("down", "cursor_down", "Down", show=False),
        Binding("pageup", "page_up", "Page up", show=False),
        Binding("pagedown", "page_down", "Page down", show=False),
        Binding("home", "first", "First", show=False),
        Binding("end", "last", "Last", show=False),
        Binding("left", "scroll_left", "Left", show=False),
        Binding("right", "scroll_right", "Right", show=False),
        Binding("enter", "select", "Open", show=False),
    ]

    cursor_row: reactive[int] = reactive(0, always_update=True, repaint=False)
    """Index of the highlighted row in :attr:`shown`."""

    class SortRequested(Message):
        """The user clicked a header: sort by that column."""

        def __init__(self, column: str) -> None:
            super().__init__()
            self.column = column

    class CursorMoved(Message):
        """The cursor is on another run now (``key`` is ``None`` when no row is shown)."""

        def __init__(self, key: str | None) -> None:
            super().__init__()
            self.key = key

    class RowSelected(Message):
        """Enter (or a click on the highlighted row) on a run."""

        def __init__(self, key: str) -> None:
            super().__init__()
            self.key = key

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self.columns_spec: list[Column] = []
        self.marked: set[str] = set()
        self.baseline: str | None = None
        self.shown: list[str] = []
        self._index: dict[str, int] = {}
        self._cells: dict[str, list[Text]] = {}
        self._unmade: dict[str, Run] = {}  # rows shown whose cells wait for the next frame
        self._making = False  # their cells are being made, a few rows between frames
        self._widths: list[int] = []
        self._frozen = 1  # leading cells that do not scroll sideways (the mark at least)
        self._strips: dict[str, tuple[bool, Strip]] = {}
        self._header: Strip | None = None
        self._cursor_key: str | None = None
        self._placed = False  # the user (or the screen for them) has moved the cursor
        self.rows_rendered = 0
        """Rows drawn into strips so far (each cell change redraws its row; a row whose
        cells stay the same is drawn from its cached strip)."""

    # Geometry ---------------------------------------------------------------------------
    @property
    def row_count(self) -> int:
        """Rows shown."""
        return len(self.shown)

    def _labels(self) -> list[Text]:
        return [Text(" "), *(Text(c.label) for c in self.columns_spec)]

    def _measure(self) -> None:
        """Column widths: the widest cell (or label), capped where the column says so."""
        labels = self._labels()
        widths = [label.cell_len for label in labels]
        for cells in self._cells.values():
            for i, cell in enumerate(cells):
                if cell.cell_len > widths[i]:
                    widths[i] = cell.cell_len
        caps = [1, *(c.width or 40 for c in self.columns_spec)]
        self._widths = [max(1, min(w, cap)) for w, cap in zip(widths, caps)]
        self._strips.clear()
        self._header = None
        self._resize()

    def _resize(self) -> None:
        width = sum(self._widths) + len(self._widths)
        self.virtual_size = Size(width, len(self.shown) + 1)

    def _grow(self, rows: Iterable[list[Text]]) -> bool:
        """Widen columns for the cells of new or changed rows; returns True when a width
        changed."""
        caps = [1, *(c.width or 40 for c in self.columns_spec)]
        widths = self._widths
        changed = False
        for cells in rows:
            for i, cell in enumerate(cells):
                wanted = min(cell.cell_len, caps[i])
                if wanted > widths[i]:
                    widths[i] = wanted
                    changed = True
        if changed:
            self._strips.clear()
            self._header = None
            self._resize()
        return changed

    # Structure ---------------------------------------------------------------------------
    def set_columns(self, columns: list[Column]) -> bool:
        """Replace the columns; returns True when they changed (every row is redrawn)."""
        same = [c.key for c in columns] == [c.key for c in self.columns_spec]
        self.columns_spec = columns
        if same:
            return False
        leading = 0
        while leading < len(columns) and columns[leading].key in FROZEN:
            leading += 1
        self._frozen = 1 + leading
        self._cells.clear()
        self._unmade.clear()
        self.shown = []
        self._index = {}
        self._measure()
        self.refresh()
        return True

    def _mark_cell(self, key: str) -> Text:
        if key == self.baseline:
            return Text("◆", style="bold yellow")
        return Text("●", style="bold cyan") if key in self.marked else Text(" ")

    def _row_cells(self, run: Run) -> list[Text]:
        return [self._mark_cell(run.key), *(column.cell(run) for column in self.columns_spec)]

    def show(self, runs: Sequence[Run]) -> None:
        """Show exactly ``runs`` in this order, keeping the cursor on the same run.

        The cells of new rows in view are made now; those of the others once this frame is
        drawn, a few rows between frames (a thousand runs' cells took 60 ms of a
        first paint that shows 40 rows): their widths can widen a column then.
        """
        current = self.current_key
        keys = [run.key for run in runs]
        if keys != self.shown:
            self.shown = keys
            self._index = {key: i for i, key in enumerate(keys)}
        view_end = int(self.scroll_y) + max(self.size.height, VIEW_ROWS)
        made: list[list[Text]] = []
        for index, run in enumerate(runs):
            if run.key in self._cells:
                continue
            if index <= view_end:
                cells = self._cells[run.key] = self._row_cells(run)
                self._unmade.pop(run.key, None)
                made.append(cells)
            else:
                self._unmade[run.key] = run
        if made and not self._unmade:
            self._measure()
        else:  # rows without cells yet may hold a column's widest: widths only grow
            self._grow(made)
            self._resize()
        self._fill()
        self._restore_cursor(current)
        self.refresh()

    @property
    def filling(self) -> bool:
        """Rows shown are still getting their cells, a few between frames."""
        return self._making

    def _make_rest(self) -> None:
        """Make some of the cells left for after the frame and widen the columns for them;
        the others after the next frames."""
        unmade = self._unmade
        made: list[list[Text]] = []
        for key in list(islice(unmade, REST_ROWS)):
            run = unmade.pop(key)
            if key in self._index and key not in self._cells:
                cells = self._cells[key] = self._row_cells(run)
                made.append(cells)
        if self._grow(made):
            self.refresh()
        if unmade:
            self.call_after_refresh(self._make_rest)
        else:
            self._making = False

    def _cells_of(self, key: str) -> list[Text]:
        """The cells of row ``key``, made now if they were left for later."""
        cells = self._cells.get(key)
        if cells is None:
            cells = self._cells[key] = self._row_cells(self._unmade.pop(key))
            self._grow([cells])
        return cells

    def _restore_cursor(self, key: str | None) -> None:
        if not self._placed:  # until the user moves it, the cursor stays on the first row
            self.cursor_row = 0
        elif key is not None and key in self._index:
            self.cursor_row = self._index[key]
        else:
            self.cursor_row = min(self.cursor_row, max(0, len(self.shown) - 1))

    def update_runs(self, runs: Iterable[Run], *, clock_only: bool = False) -> None:
        """Recompute the cells of ``runs``; repaint only rows whose cells changed.

        The cells of rows out of view are dropped and made again between the next frames,
        as after a first paint (the summaries of a thousand runs replaced at once cost
        100 ms of cells of which a screenful shows).

        With ``clock_only``, only the cells of the columns that follow the clock (ages,
        durations) are recomputed: what a clock tick can change, nothing else.
        """
        top = int(self.scroll_y)
        height = self.size.height
        ticking = [i for i, c in enumerate(self.columns_spec, 1) if c.clock]
        if clock_only and not ticking:
            return
        for run in runs:
            old = self._cells.get(run.key)
            if old is None:
                continue
            if not clock_only:
                index = self._index.get(run.key)
                if index is None or not top <= index < top + height:
                    del self._cells[run.key]
                    self._strips.pop(run.key, None)
                    if index is not None:
                        self._unmade[run.key] = run
                    continue
            if clock_only:
                cells = old.copy()
                for i in ticking:
                    cells[i] = self.columns_spec[i - 1].cell(run)
            else:
                cells = self._row_cells(run)
            if all(
                a.plain == b.plain and a.style == b.style and a.spans == b.spans
                for a, b in zip(old, cells)
            ):
                continue
            self._cells[run.key] = cells
            self._strips.pop(run.key, None)
            if not self._grow([cells]):
                index = self._index.get(run.key)
                if index is not None and top <= index < top + height:
                    self.refresh(Region(0, index - top + 1, self.size.width, 1))
            else:
                self.refresh()
        self._fill()

    def _fill(self) -> None:
        """Make the cells of the rows left without, between the next frames."""
        if self._unmade and not self._making:
            self._making = True
            self.call_after_refresh(self._make_rest)

    def refresh_marks(self) -> None:
        """Redraw the mark column after marks or the baseline changed."""
        for key, cells in self._cells.items():
            mark = self._mark_cell(key)
            if cells[0].plain != mark.plain or cells[0].style != mark.style:
                cells[0] = mark
                self._strips.pop(key, None)
        self.refresh()

    def get_cell(self, key: str, column: str) -> Text:
        """The cell of run ``key`` in ``column`` (``mark`` or a column key)."""
        if column == "mark":
            return self._cells_of(key)[0]
        keys = [c.key for c in self.columns_spec]
        return self._cells_of(key)[keys.index(column) + 1]

    def get_row_index(self, key: str) -> int:
        """Position of run ``key`` in the table."""
        return self._index[key]

    @property
    def current_key(self) -> str | None:
        """The run under the cursor."""
        if 0 <= self.cursor_row < len(self.shown):
            return self.shown[self.cursor_row]
        return None

    # Cursor -----------------------------------------------------------------------------
    def validate_cursor_row(self, row: int) -> int:
        return max(0, min(row, len(self.shown) - 1)) if self.shown else 0

    def watch_cursor_row(self, old: int, new: int) -> None:
        self._scroll_to_cursor()
        self.refresh()
        if self.current_key != self._cursor_key:
            self._cursor_key = self.current_key
            self.post_message(self.CursorMoved(self._cursor_key))

    def move_cursor(self, *, row: int, **_: object) -> None:
        """Put the cursor on ``row`` (scrolled into view)."""
        self._placed = True
        self.cursor_row = row

    def _scroll_to_cursor(self) -> None:
        body = max(1, self.size.height - 1)
        top = int(self.scroll_y)
        if self.cursor_row < top:
            self.scroll_to(y=self.cursor_row, animate=False)
        elif self.cursor_row >= top + body:
            self.scroll_to(y=self.cursor_row - body + 1, animate=False)

    def action_cursor_up(self) -> None:
        self._placed = True
        self.cursor_row -= 1

    def action_cursor_down(self) -> None:
        self._placed = True
        self.cursor_row += 1

    def action_page_up(self) -> None:
        self._placed = True
        self.cursor_row -= max(1, self.size.height - 2)

    def action_page_down(self) -> None:
        self._placed = True
        self.cursor_row += max(1, self.size.height - 2)

    def action_first(self) -> None:
        self._placed = True
        self.cursor_row = 0

    def action_last(self) -> None:
        self._placed = True
        self.cursor_row = len(self.shown) - 1

    def action_select(self) -> None:
        key = self.current_key
        if key is not None:
            self.post_message(self.RowSelected(key))

    def on_click(self, event: events.Click) -> None:
        if event.y == 0:
            x = event.x if event.x < self.frozen_width else event.x + int(self.scroll_x)
            column = self._column_at(x)
            if column is not None:
                self.post_message(self.SortRequested(column))
            return
        row = int(self.scroll_y) + event.y - 1
        if 0 <= row < len(self.shown):
            if row == self.cursor_row and event.chain >= 2:
                self.action_select()
            self._placed = True
            self.cursor_row = row

    def _column_at(self, x: int) -> str | None:
        position = 0
        for i, width in enumerate(self._widths):
            position += width + 1
            if x < position:
                return None if i == 0 else self.columns_spec[i - 1].key
        return None

    # Rendering ---------------------------------------------------------------------------
    @property
    def frozen_width(self) -> int:
        """Cells at the left that stay put while the rest scroll sideways."""
        return sum(self._widths[: self._frozen]) + min(self._frozen, len(self._widths))

    def _crop(self, strip: Strip, width: int, base: Style) -> Strip:
        """The part of a full-width line on screen: the frozen columns, then the rest
        from the horizontal scroll position on."""
        scroll_x = int(self.scroll_x)
        frozen = self.frozen_width
        if not scroll_x or frozen >= width:
            return strip.crop_extend(scroll_x, scroll_x + width, base)
        return Strip.join(
            [
                strip.crop_extend(0, frozen, base),
                strip.crop_extend(frozen + scroll_x, scroll_x + width, base),
            ]
        )

    def _row_line(self, key: str, style: Style) -> Strip:
        self.rows_rendered += 1
        return self._line(self._cells_of(key), style)

    def _line(self, cells: list[Text], style: Style) -> Strip:
        line = Text(style=style, no_wrap=True, end="")
        for cell, width in zip(cells, self._widths):
            length = cell.cell_len
            if length > width:
                piece = cell.copy()
                piece.truncate(width, overflow="ellipsis")
                line.append_text(piece)
                line.append(" ")
            elif cell.justify == "right":
                line.append(" " * (width - length))
                line.append_text(cell)
                line.append(" ")
            else:
                line.append_text(cell)
                line.append(" " * (width - length + 1))
        segments = list(line.render(self.app.console))
        return Strip(segments).apply_style(style)

    def render_line(self, y: int) -> Strip:
        width = self.size.width
        base = self.rich_style
        if y == 0:
            if self._header is None:
                self._header = self._line(
                    self._labels(), base + self.get_component_rich_style("run-table--header")
                )
            return self._crop(self._header, width, base)
        row = int(self.scroll_y) + y - 1
        if row >= len(self.shown):
            return Strip.blank(width, base)
        key = self.shown[row]
        if row == self.cursor_row:
            strip = self._row_line(key, base + self.get_component_rich_style("run-table--cursor"))
        else:
            odd = row % 2 == 1
            cached = self._strips.get(key)
            if cached is None or cached[0] != odd:
                style = base + (self.get_component_rich_style("run-table--odd") if odd else Style())
                cached = self._strips[key] = (odd, self._row_line(key, style))
            strip = cached[1]
        return self._crop(strip, width, base)

    def notify_style_update(self) -> None:
        super().notify_style_update()
        self._strips.clear()
        self._header = None
