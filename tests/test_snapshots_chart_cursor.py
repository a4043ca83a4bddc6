"""SVG snapshots of the chart cursor: compare with the cursor on a step and the x-range
narrowed around it, and the run view's charts with their readouts."""

from __future__ import annotations

from pathlib import Path

from conftest import compare_marked, open_run, sweep_root
from fake_engine import fake_app, loaded

SIZE = (120, 40)
CLOCK = 1.8e9


def test_compare_cursor_snapshot(snap_compare, samples: Path) -> None:
    app = fake_app(sweep_root(samples), clock=lambda: CLOCK)

    async def run_before(pilot) -> None:
        await loaded(pilot, runs=6)
        await compare_marked(pilot, ("resnet-lr0.01", "resnet-lr0.1", "diverged"))
        # The cursor, a third of the way back, then the x-range narrowed around it.
        await pilot.press("c", "less_than_sign", "less_than_sign", "less_than_sign")
        await pilot.press("right_parenthesis")
        await pilot.pause()

    assert snap_compare(app, terminal_size=SIZE, run_before=run_before)


def test_run_view_cursor_snapshot(snap_compare, samples: Path) -> None:
    app = fake_app(samples, clock=lambda: CLOCK)

    async def run_before(pilot) -> None:
        await loaded(pilot)
        await open_run(pilot, "diverged")
        await pilot.press("c", "comma", "comma")
        await pilot.pause()

    assert snap_compare(app, terminal_size=SIZE, run_before=run_before)
