"""The run table of many runs makes the rows out of view a few at a time after the first
frame, and again after a batch that changes them: every row still gets its exact cells, and
the columns end as wide as their widest cell, in view or not."""

from __future__ import annotations

from pathlib import Path

from conftest import table_of, wait_for, write_run

from tui.app.app import TrackApp
from tui.app.screens.runs import RunsScreen
from tui.app.widgets.run_table import REST_ROWS, VIEW_ROWS

RUNS = VIEW_ROWS + 3 * REST_ROWS + 7
"""Enough runs that the rows out of view take several turns to get their cells."""


def gap(header: str, label: str, following: str) -> int:
    """Cells from one column label to the next in the table's header line."""
    return header.index(following) - header.index(label)


async def test_rows_out_of_view_get_their_cells_and_widen_their_columns(tmp_path: Path) -> None:
    for i in range(RUNS):
        write_run(tmp_path, f"run-{i:03d}", [1.0, 0.5])
    last = f"run-{RUNS - 1:03d}"
    with (tmp_path / last / "metrics.jsonl").open("a") as handle:
        handle.write('{"step": 1234567, "loss": 0.25}\n')
    app = TrackApp(tmp_path, watch="poll", fresh=True)
    async with app.run_test(size=(160, 30)) as pilot:
        table = table_of(app)
        screen = app.screen
        assert isinstance(screen, RunsScreen)
        await wait_for(pilot, lambda: len(table.shown) == RUNS)
        await wait_for(pilot, lambda: app.progress is None and not screen.filling)
        await pilot.pause()
        # The bottom run's step, far out of view, widened the step column on screen.
        header = table.render_line(0).text
        assert gap(header, "step", "loss") == len("1234567") + 1
        assert [table.get_cell(f"run-{i:03d}", "step").plain for i in (0, RUNS - 2)] == ["1", "1"]

        # A run out of view changes: its cells are made again, and widen the column again.
        with (tmp_path / last / "metrics.jsonl").open("a") as handle:
            handle.write('{"step": 12345678, "loss": 0.125}\n')
        await wait_for(pilot, lambda: gap(table.render_line(0).text, "step", "loss") == 9)
        assert table.get_cell(last, "step").plain == "12345678"
        assert table.get_cell(last, "metric:last:loss").plain == "0.125"
        table.move_cursor(row=table.get_row_index(last))
        await pilot.pause()
        row = next(
            line
            for line in (table.render_line(y).text for y in range(1, table.size.height))
            if last in line
        )
        assert " 12345678 0.125 " in row
