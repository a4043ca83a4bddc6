"""SVG snapshot of the column chooser over the run table: sections, ticks, notes, the keys.

Deterministic: sample runs copied into tmp_path, read by the thread-free fake engine, a fixed
clock, a fixed terminal size.
"""

from __future__ import annotations

import json
from pathlib import Path

from fake_engine import fake_app, loaded

SIZE = (100, 30)
NOW = 1.8e9


def test_column_chooser_open(snap_compare, samples: Path, monkeypatch) -> None:
    monkeypatch.chdir(samples)  # the top bar shows ROOT as typed: keep it stable
    with open(samples / "sweep" / "vit-lr0.001" / "metrics.jsonl", "a") as handle:
        handle.write(json.dumps({"step": 999, "[bold]x[/bold]": 0.5}) + "\n")

    async def run_before(pilot) -> None:
        await loaded(pilot, runs=5)
        await pilot.press("m")
        await pilot.pause()
        # The first metric not shown (the markup-like name sorts first) ticked and moved up.
        await pilot.press("down", "down", "space", "shift+up")
        await pilot.pause()

    app = fake_app(Path("sweep"), clock=lambda: NOW)
    assert snap_compare(app, terminal_size=SIZE, run_before=run_before)
