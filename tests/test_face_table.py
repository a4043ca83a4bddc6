"""Issue 12, the rest of the face: the demo, a table that scales, views that persist, export
and the sweep and help fixes."""

from __future__ import annotations

from pathlib import Path

import psutil
from conftest import SAMPLES, wait_for, wait_loaded
from processes import running

from tui.app.app import TrackApp
from tui.commands import demo

DIVERGING = "live/run-01-lr1"


def started_from(root: Path) -> list[psutil.Process]:
    """Live processes whose command line names ``root``: the simulator and its runs."""
    found = []
    for proc in psutil.process_iter(["cmdline"]):
        try:
            if str(root) in " ".join(proc.info["cmdline"] or ()) and running(proc):
                found.append(proc)
        except psutil.Error:
            continue
    return found


# (a) A newcomer's first minute ------------------------------------------------------------
def test_showcase_holds_no_hostile_input() -> None:
    assert not (SAMPLES / "hostile").exists()
    assert (Path(__file__).parent / "fixtures" / "hostile" / "metrics.jsonl").is_file()


async def test_demo_shows_live_runs_and_flags_the_diverging_one_then_cleans_up() -> None:
    plan = demo.Plan(runs=2, steps=400, interval=0.05, diverge_at=3)
    with demo.demo_root(plan) as root:
        assert "kill" in (root / "tracktui.toml").read_text()  # the nonfinite kill-rule
        app = TrackApp(root, watch="poll")
        async with app.run_test(size=(140, 40)) as pilot:
            await wait_loaded(pilot, runs=10)
            await wait_for(pilot, lambda: DIVERGING in app.store.runs, timeout=60)
            await wait_for(
                pilot,
                lambda: any(
                    v.rule == "diverged" and v.state == "triggered"
                    for v in app.verdicts.get(DIVERGING, [])
                ),
                timeout=60,
            )
            assert app.store.runs[DIVERGING].status == "running"
            assert DIVERGING in app.flagged()
            assert "hostile" not in app.store.runs
        assert started_from(root)  # the runs live while the demo does
    assert not root.exists()
    assert not started_from(root)
