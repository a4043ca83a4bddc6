"""Make the README's screenshots from the app itself, on a copy of sample_runs/.

    python docs/make_screenshots.py

Writes SVGs to docs/screenshots/. The clock is fixed so ages and durations do not change
from one run to the next.
"""

from __future__ import annotations

import asyncio
import shutil
import sys
import tempfile
from collections.abc import Awaitable, Callable
from pathlib import Path

HERE = Path(__file__).resolve().parent
SAMPLES = HERE.parent / "sample_runs"
OUT = HERE / "screenshots"
SIZE = (140, 40)
CLOCK = 1_716_000_000.0  # mid-May 2024, a few days after the sample runs

sys.path.insert(0, str(HERE.parent))

from tui.app.app import TrackApp  # noqa: E402
from tui.app.widgets.run_table import RunTable  # noqa: E402


async def settle(pilot, app: TrackApp, runs: int) -> None:
    while (
        len(app.store.runs) < runs or app.progress is not None or any(r.partial for r in app.store)
    ):
        await pilot.pause(0.05)
    await pilot.pause(0.5)


async def shoot(
    root: Path, name: str, steps: Callable[[object, TrackApp], Awaitable[None]], runs: int
) -> None:
    app = TrackApp(root, watch="poll", clock=lambda: CLOCK)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot, app, runs)
        await steps(pilot, app)
        await pilot.pause(0.5)
        app.save_screenshot(str(OUT / f"{name}.svg"))
        print("wrote", OUT / f"{name}.svg")


def cursor_to(app: TrackApp, key: str) -> None:
    table = app.screen.query_one(RunTable)
    table.move_cursor(row=table.get_row_index(key))


async def runs_view(pilot, app: TrackApp) -> None:
    app.screen.sort_by("metric:last:val_loss")
    cursor_to(app, "sweep/resnet-lr0.01")


async def run_charts(pilot, app: TrackApp) -> None:
    cursor_to(app, "sweep/resnet-lr0.01")
    await pilot.press("enter")


async def run_matrices(pilot, app: TrackApp) -> None:
    cursor_to(app, "shapes")
    await pilot.press("enter")
    await pilot.pause(0.3)
    await pilot.press("2")


async def compare(pilot, app: TrackApp) -> None:
    for key in ("sweep/resnet-lr0.1", "sweep/resnet-lr0.01", "sweep/vit-lr0.001", "diverged"):
        cursor_to(app, key)
        await pilot.press("space")
    await pilot.press("c")


async def sweep(pilot, app: TrackApp) -> None:
    await pilot.press("slash", *"path~sweep", "enter")
    await pilot.pause(0.5)
    await pilot.press("w")


async def main() -> None:
    OUT.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp) / "sample_runs"
        shutil.copytree(SAMPLES, root, ignore=shutil.ignore_patterns("*.py", "__pycache__"))
        runs = 30
        for name, steps in [
            ("runs", runs_view),
            ("run_charts", run_charts),
            ("run_matrices", run_matrices),
            ("compare", compare),
            ("sweep", sweep),
        ]:
            await shoot(root, name, steps, runs)


if __name__ == "__main__":
    asyncio.run(main())
