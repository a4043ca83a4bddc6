"""The status timer's tick redraws only what the clock moved on.

Every few seconds the app re-derives time-based statuses and the runs screen redraws the
ages and durations on screen. An age of days changes once an hour, so most ticks must
redraw no row (and no bar): with thousands of runs open, a redraw of every visible row
each tick was most of what the idle app spent.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

from conftest import table_of
from fake_engine import fake_app, loaded
from textual.widgets import Static

from tui.app.screens.runs import RunsScreen

LAST = 1_790_000_000.0
"""Wall time of every run's last record."""


def finished_runs(root: Path, count: int) -> None:
    """``count`` finished runs whose last record was written at :data:`LAST`."""
    for r in range(count):
        run = root / f"run-{r}"
        run.mkdir(parents=True)
        (run / "run.json").write_text(json.dumps({"name": f"run-{r}", "status": "finished"}))
        rows = []
        for step in range(5):
            stamp = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(LAST - (4 - step) * 60))
            rows.append(
                json.dumps({"step": step, "_time": f"{stamp}.000Z", "loss": 1 / (1 + step)})
            )
        (run / "metrics.jsonl").write_text("\n".join(rows) + "\n")


async def test_a_tick_that_changes_no_age_redraws_no_row(tmp_path: Path) -> None:
    finished_runs(tmp_path, 3)
    now = [LAST + 3 * 86400 + 30 * 60]  # every age reads 3d00h
    app = fake_app(tmp_path, clock=lambda: now[0])
    async with app.run_test(size=(160, 30)) as pilot:
        await loaded(pilot, 3)
        screen = app.screen
        assert isinstance(screen, RunsScreen)
        while screen.resort_pending:  # the re-sort after loading redraws the cursor row
            await pilot.pause(0.05)
        table = table_of(app)
        assert table.get_cell("run-0", "age").plain == "3d00h"
        drawn = table.rows_rendered
        topbar = app.screen.query_one("#topbar", Static).content

        now[0] += 5.0
        app.refresh_statuses()
        await pilot.pause()
        assert table.rows_rendered == drawn  # same ages: every row drawn from its cache
        assert app.screen.query_one("#topbar", Static).content is topbar  # not re-laid out

        now[0] += 3600.0
        app.refresh_statuses()
        await pilot.pause()
        assert [table.get_cell(f"run-{r}", "age").plain for r in range(3)] == ["3d01h"] * 3
        assert table.rows_rendered >= drawn + 3  # each row whose age changed is drawn again
