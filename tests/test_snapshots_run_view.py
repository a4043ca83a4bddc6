"""SVG snapshots of the run view (pytest-textual-snapshot): charts of a sweep run, matrices.

Deterministic by construction: sample runs copied into tmp_path, read by the thread-free
fake engine, a fixed clock (durations are computed from it), a fixed terminal size, no rules
file (so no notifications).
"""

from __future__ import annotations

import shutil
from pathlib import Path

from conftest import wait_for
from fake_engine import fake_app, loaded

from tui.app.screens.run_view import RunScreen
from tui.app.widgets.run_table import RunTable

SIZE = (120, 40)
NOW = 1.8e9


def opener(key: str, runs: int, *keys: str):
    """A ``run_before`` that waits for the runs, opens ``key`` and presses ``keys``."""

    async def run_before(pilot) -> None:
        app = pilot.app
        await loaded(pilot, runs=runs)
        table = app.screen.query_one(RunTable)
        table.move_cursor(row=table.get_row_index(key))
        await pilot.press("enter")
        await wait_for(pilot, lambda: isinstance(app.screen, RunScreen))
        await pilot.press(*keys)
        await pilot.pause()

    return run_before


def test_run_view_charts_of_a_sweep_run(snap_compare, samples: Path) -> None:
    app = fake_app(samples / "sweep", clock=lambda: NOW)
    assert snap_compare(app, terminal_size=SIZE, run_before=opener("resnet-lr0.01", 5))


def test_run_view_matrices_of_the_shapes_run(snap_compare, samples: Path) -> None:
    root = samples.parent / "root"
    root.mkdir()
    shutil.move(samples / "shapes", root / "shapes")
    app = fake_app(root, clock=lambda: NOW)
    assert snap_compare(
        app,
        terminal_size=SIZE,
        run_before=opener("shapes", 1, "2", "down", "down", "down", "comma"),
    )
