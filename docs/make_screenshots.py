"""Make the README's screenshots from the app itself, on a copy of sample_runs/.

    python docs/make_screenshots.py

Writes SVGs to docs/screenshots/, and a PNG of each when a headless Chromium is installed
(it honours the SVG's per-cell text widths; rsvg draws braille charts too wide). The clock
is fixed so ages and durations do not change from one run to the next.
"""

from __future__ import annotations

import asyncio
import json
import math
import re
import shutil
import subprocess
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
from tui.commands.demo import populate  # noqa: E402


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
    to_png(OUT / f"{name}.svg")


def to_png(svg: Path) -> None:
    """Render ``svg`` to a PNG beside it with a headless Chromium, when there is one."""
    browser = shutil.which("chromium") or shutil.which("chromium-browser")
    if browser is None:
        print("no chromium: PNG of", svg.name, "not made")
        return
    box = re.search(r'viewBox="0 0 ([0-9.]+) ([0-9.]+)"', svg.read_text())
    width, height = (math.ceil(float(v)) for v in box.groups()) if box else (1600, 1000)
    png = svg.with_suffix(".png")
    subprocess.run(
        [
            browser,
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--hide-scrollbars",
            f"--window-size={width},{height}",
            f"--screenshot={png}",
            svg.as_uri(),
        ],
        check=True,
        capture_output=True,
        timeout=120,
    )
    print("wrote", png)


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


async def compare_cursor(pilot, app: TrackApp) -> None:
    await compare(pilot, app)
    await pilot.pause(0.3)
    await pilot.press("c", *["comma"] * 12)


async def columns(pilot, app: TrackApp) -> None:
    await pilot.press("m")


async def exploding(pilot, app: TrackApp) -> None:
    await pilot.press("a", "c")


def exploding_root(parent: Path) -> Path:
    """Three healthy runs and one whose loss explodes to 1e24 in its last steps."""
    root = parent / "exploding"
    for name, scale, end in [
        ("healthy-a", 2.0, 200),
        ("healthy-b", 2.3, 200),
        ("healthy-c", 1.8, 200),
        ("exploding", 2.0, 190),
    ]:
        run = root / name
        run.mkdir(parents=True)
        (run / "run.json").write_text(json.dumps({"name": name, "status": "finished"}))
        losses = [scale / (1 + s / 4) for s in range(end)]
        if end < 200:
            losses += [10.0**k for k in range(15, 25)]
        rows = (json.dumps({"step": s, "loss": v}) for s, v in enumerate(losses))
        (run / "metrics.jsonl").write_text("\n".join(rows) + "\n")
    return root


async def sweep(pilot, app: TrackApp) -> None:
    await pilot.press("slash", *"path~sweep", "enter")
    await pilot.pause(0.5)
    await pilot.press("w")


async def main() -> None:
    OUT.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp) / "sample_runs"
        populate(root)  # as the demo copies them: dated as they were written
        runs = 30
        for name, steps in [
            ("runs", runs_view),
            ("run_charts", run_charts),
            ("run_matrices", run_matrices),
            ("compare", compare),
            ("compare_cursor", compare_cursor),
            ("columns", columns),
            ("sweep", sweep),
        ]:
            await shoot(root, name, steps, runs)
        await shoot(exploding_root(Path(tmp)), "exploding", exploding, 4)


if __name__ == "__main__":
    asyncio.run(main())
