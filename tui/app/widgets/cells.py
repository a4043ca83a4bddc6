"""Table cells as ``Text``, and a ``DataTable`` filled in place.

Every cell is a :class:`~rich.text.Text` built from sanitized strings: a ``str`` cell would
be parsed as markup, and DataTable would show floats with two decimals.
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence

from rich.text import Text
from textual.widgets import DataTable

from tui.core.sanitize import sanitize
from tui.core.shapes import format_number

MAX_CELL_WIDTH = 40
"""Widest a filled table's column grows; longer values end in an ellipsis."""


def missing_cell() -> Text:
    """A dim dash for a value a run does not have (a new ``Text``: cells are styled in place)."""
    return Text("–", style="dim")


def number_text(value: float | None, digits: int = 4) -> Text:
    """A right-aligned number cell; NaN/inf in bold red, missing as a dim dash."""
    if value is None:
        return Text("–", style="dim", justify="right")
    text = format_number(value, digits)
    style = "bold red" if not math.isfinite(value) else ""
    return Text(text, style=style, justify="right")


def config_text(value: object) -> Text:
    """A config value as plain text: JSON spelling for booleans, null and containers."""
    if isinstance(value, bool) or value is None:
        return Text(json.dumps(value))
    if isinstance(value, (int, float)):
        return Text(str(value), no_wrap=True, overflow="ellipsis")
    if isinstance(value, str):
        shown = value
    else:
        try:
            shown = json.dumps(value, ensure_ascii=False, default=str)
        except (TypeError, ValueError):
            shown = repr(value)
    return Text(sanitize(shown, 80), no_wrap=True, overflow="ellipsis")


def fill_table(
    table: DataTable[Text],
    columns: Sequence[tuple[str, Text]],
    rows: Sequence[tuple[str, Sequence[Text]]],
) -> None:
    """Show ``rows`` under ``columns`` in this order.

    Column widths are measured here, from the text, so that when only cells or the order
    changed the changed cells are updated in place and the rows re-sorted: the cursor and
    scroll position survive live updates and DataTable measures nothing again (re-adding
    or re-measuring a thousand rows costs a visible pause).
    """
    widths = [label.cell_len for _, label in columns]
    for _, cells in rows:
        for i, cell in enumerate(cells):
            if cell.cell_len > widths[i]:
                widths[i] = cell.cell_len
    widths = [max(1, min(w, MAX_CELL_WIDTH)) for w in widths]
    current = list(table.columns.values())
    if [(str(c.key.value), c.label.plain) for c in current] == [
        (key, label.plain) for key, label in columns
    ]:
        # Columns only grow, so values that toggle between lengths rebuild nothing.
        widths = [max(w, c.width) for w, c in zip(widths, current)]
    same_columns = [(str(c.key.value), c.label.plain, c.width) for c in current] == [
        (key, label.plain, w) for (key, label), w in zip(columns, widths)
    ]
    shown = [row.key.value for row in table.ordered_rows]
    wanted = [key for key, _ in rows]
    if same_columns and len(shown) == len(wanted) and set(shown) == set(wanted):
        keys = [key for key, _ in columns]
        for row, cells in rows:
            for column, cell in zip(keys, cells):
                if table.get_cell(row, column) != cell:
                    table.update_cell(row, column, cell)
        if shown != wanted and keys:
            # DataTable sorts by cell values; each row's first cell is its own object, so
            # its identity names the row.
            place = {id(table.get_cell(key, keys[0])): i for i, key in enumerate(wanted)}
            table.sort(keys[0], key=lambda cell: place[id(cell)])
        return
    table.clear(columns=True)
    for (key, label), width in zip(columns, widths):
        table.add_column(label, key=key, width=width)
    for key, cells in rows:
        table.add_row(*cells, key=key)
