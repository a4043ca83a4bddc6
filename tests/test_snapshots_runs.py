"""SVG snapshot of the run table: native runs sorted by a metric, one marked, one NaN.

Deterministic: sample runs copied into tmp_path, read by the thread-free fake engine, a fixed
clock, a fixed terminal size.
"""

from __future__ import annotations

import shutil
from pathlib import Path

from fake_engine import fake_app, loaded

from tui.app.widgets.run_table import RunTable

SIZE = (120, 30)
NOW = 1.8e9


def test_run_table_sorted_with_a_mark_and_a_baseline(
    snap_compare, samples: Path, monkeypatch
) -> None:
    monkeypatch.chdir(samples.parent)  # the top bar shows ROOT as typed: keep it stable
    root = samples.parent / "root"
    root.mkdir()
    for name in ("sweep", "diverged", "plateaued"):
        shutil.move(samples / name, root / name)

    async def run_before(pilot) -> None:
        app = pilot.app
        await loaded(pilot, runs=7)
        app.screen.sort_by("metric:last:val_loss")
        table = app.screen.query_one(RunTable)
        table.move_cursor(row=table.get_row_index("sweep/vit-lr0.001"))
        await pilot.press("space")
        table.move_cursor(row=table.get_row_index("sweep/resnet-lr0.001"))
        await pilot.press("b")
        await pilot.pause()

    app = fake_app(Path("root"), clock=lambda: NOW)
    assert snap_compare(app, terminal_size=SIZE, run_before=run_before)
