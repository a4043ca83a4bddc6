"""SVG snapshots of the compare and sweep screens.

Fixed size and clock; sample runs copied into tmp_path, read by the thread-free fake engine.
"""

from __future__ import annotations

from pathlib import Path

from conftest import compare_marked, sweep_root, wait_for
from fake_engine import fake_app, loaded

from tui.app.screens.compare import CompareScreen
from tui.app.screens.sweep import SweepScreen

SIZE = (120, 40)
CLOCK = 1.8e9


def test_compare_snapshot(snap_compare, samples: Path) -> None:
    app = fake_app(sweep_root(samples), clock=lambda: CLOCK)

    async def run_before(pilot) -> None:
        await loaded(pilot, runs=6)
        await compare_marked(pilot, ("resnet-lr0.01", "resnet-lr0.1", "diverged"))
        await pilot.pause()

    assert snap_compare(app, terminal_size=SIZE, run_before=run_before)


def test_sweep_snapshot(snap_compare, samples: Path) -> None:
    app = fake_app(sweep_root(samples), clock=lambda: CLOCK)

    async def run_before(pilot) -> None:
        await loaded(pilot, runs=6)
        await pilot.press("w")
        await wait_for(pilot, lambda: isinstance(app.screen, SweepScreen))
        await pilot.press("m")  # val_loss: the diverged run is listed as such
        await pilot.pause()

    assert snap_compare(app, terminal_size=SIZE, run_before=run_before)


def test_exploding_run_compare_snapshot(snap_compare, exploding: Path) -> None:
    """One run explodes to 3.8e24: the healthy runs keep their own y-range, the exploding
    one is clipped and marked at the plot's edge, the ticks stay short."""
    app = fake_app(exploding, clock=lambda: CLOCK)

    async def run_before(pilot) -> None:
        await loaded(pilot, runs=4)
        await pilot.press("a", "c")  # every run marked, compared
        await wait_for(pilot, lambda: isinstance(app.screen, CompareScreen))
        await pilot.pause()

    assert snap_compare(app, terminal_size=SIZE, run_before=run_before)
