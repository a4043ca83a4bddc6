"""End to end: the real watcher, the app's reader thread and real processes.

The few behaviours that only the whole machine shows: an append reaching the table through
inotify, runs appearing under an empty ROOT, a log followed as it grows, and kills of real
process trees (confirmed, declined, by a rule). The screens' behaviour is piloted on the
thread-free :class:`fake_engine.FakeEngine` instead (``test_app.py``, ``test_run_view.py``,
``test_compare_sweep.py``, the snapshots).
"""

from __future__ import annotations

import json
from pathlib import Path

import psutil
import pytest
from conftest import open_run, plain, table_of, wait_for, wait_loaded
from processes import marked, read_meta

from tui.app.app import TrackApp
from tui.app.screens.confirm_kill import ConfirmKill
from tui.app.screens.runs import RunsScreen
from tui.app.widgets.log_lines import LogLines
from tui.app.widgets.log_view import LogView

SIZE = (140, 40)
RUN_VIEW = (120, 40)


async def open_app_on_run(root: Path, **options) -> TrackApp:
    return TrackApp(root, watch="poll", grace=2.0, **options)


# Files -----------------------------------------------------------------------------------


async def test_an_appended_line_reaches_the_table(samples: Path) -> None:
    root = samples / "sweep"
    app = TrackApp(root, watch="native")
    async with app.run_test(size=SIZE) as pilot:
        await wait_loaded(pilot, runs=5)
        key = "resnet-lr0.01"
        screen = app.screen
        assert isinstance(screen, RunsScreen)
        column = "metric:last:" + (
            "val_loss"
            if any(c.key == "metric:last:val_loss" for c in table_of(app).columns_spec)
            else "loss"
        )
        metric = column.split(":")[-1]
        with open(root / key / "metrics.jsonl", "a") as handle:
            handle.write(json.dumps({"step": 100000, metric: 123.25}) + "\n")
        await wait_for(pilot, lambda: table_of(app).get_cell(key, column).plain == "123.2")
        assert table_of(app).get_cell(key, "step").plain == "100000"


async def test_empty_root_waits_and_shows_runs_as_they_appear(tmp_path: Path) -> None:
    app = TrackApp(tmp_path, watch="poll")
    app.engine.walk_interval = 0.2
    async with app.run_test(size=SIZE) as pilot:
        await pilot.pause(0.3)
        status = str(app.screen.query_one("#statusbar").render())
        assert "waiting for runs" in status
        run = tmp_path / "late"
        run.mkdir()
        (run / "metrics.jsonl").write_text('{"step": 1, "loss": 0.5}\n')
        await wait_for(pilot, lambda: "late" in table_of(app).shown)


async def test_log_follows_new_lines_until_the_user_scrolls_up(samples: Path) -> None:
    app = TrackApp(samples / "sweep", watch="poll")
    log_file = samples / "sweep" / "resnet-lr0.1" / "output.log"
    async with app.run_test(size=RUN_VIEW) as pilot:
        await wait_loaded(pilot, runs=5)
        screen = await open_run(pilot, "resnet-lr0.1")
        await pilot.press("5")
        view = screen.query_one(LogLines)
        log = screen.query_one(LogView)
        before = len(view.lines)
        with log_file.open("a") as out:
            out.write("".join(f"epoch line {i}\n" for i in range(100)))
        await wait_for(pilot, lambda: len(view.lines) == before + 100)
        await wait_for(pilot, lambda: view.scroll_y == view.max_scroll_y > 0)
        assert log.follow and "follow on" in plain(screen, "#log-status")
        await pilot.press("up")
        await wait_for(pilot, lambda: not log.follow)
        top = view.scroll_y
        with log_file.open("a") as out:
            out.write("one more\n")
        await wait_for(pilot, lambda: len(view.lines) == before + 101)
        await pilot.pause()
        assert view.scroll_y == top  # reading earlier lines: the view stays put
        await pilot.press("G")
        await wait_for(pilot, lambda: log.follow and view.scroll_y == view.max_scroll_y)


# Killing real processes ---------------------------------------------------------------


@pytest.mark.slow
async def test_terminate_from_the_app_kills_the_whole_tree(tmp_path: Path, processes) -> None:
    processes.launch(tmp_path, "victim")
    app = await open_app_on_run(tmp_path)
    async with app.run_test(size=SIZE) as pilot:
        await wait_for(pilot, lambda: "victim" in table_of(app).shown)
        await wait_for(pilot, lambda: app.store.runs["victim"].status == "running")
        assert len(marked(processes.marker)) >= 3  # the script and its two workers
        await pilot.press("T")
        await wait_for(pilot, lambda: isinstance(app.screen, ConfirmKill))
        text = " ".join(str(w.render()) for w in app.screen.query("Static"))
        assert "victim" in text and str(read_meta(tmp_path / "victim")["pid"]) in text
        await pilot.press("y")
        await wait_for(pilot, lambda: not marked(processes.marker), timeout=15)
        await wait_for(
            pilot, lambda: read_meta(tmp_path / "victim").get("status") == "killed", timeout=10
        )
        # The launcher records the status as soon as its command dies; the audit line is
        # written once the kill has seen the whole tree gone, which may come a poll later.
        audit = tmp_path / ".tracktui" / "audit.jsonl"
        await wait_for(pilot, lambda: audit.exists() and "victim" in audit.read_text())


@pytest.mark.slow
async def test_declining_the_confirmation_leaves_the_run_alone(tmp_path: Path, processes) -> None:
    processes.launch(tmp_path, "spared")
    app = await open_app_on_run(tmp_path)
    async with app.run_test(size=SIZE) as pilot:
        await wait_for(pilot, lambda: "spared" in table_of(app).shown)
        await wait_for(pilot, lambda: app.store.runs["spared"].status == "running")
        await pilot.press("T")
        await wait_for(pilot, lambda: isinstance(app.screen, ConfirmKill))
        await pilot.press("n")
        await pilot.pause(0.5)
        meta = read_meta(tmp_path / "spared")
        assert psutil.pid_exists(meta["pid"]) and meta["status"] == "running"
        assert len(marked(processes.marker)) >= 3


@pytest.mark.slow
async def test_auto_kill_stops_exactly_the_diverging_run(tmp_path: Path, processes) -> None:
    (tmp_path / "tracktui.toml").write_text(
        '[[rule]]\nname = "diverged"\nmetric = "loss"\nwhen = "nonfinite"\naction = "kill"\n'
    )
    processes.launch(tmp_path, "healthy-a", "--interval", "0.05", steps=60)
    processes.launch(tmp_path, "healthy-b", "--interval", "0.05", steps=60)
    processes.launch(tmp_path, "diverging", "--interval", "0.05", "--nan-at", "10")
    app = TrackApp(tmp_path, watch="native", auto_kill=True, grace=2.0)
    async with app.run_test(size=SIZE) as pilot:
        await wait_for(
            pilot, lambda: read_meta(tmp_path / "diverging").get("status") == "killed", timeout=20
        )
        await wait_for(
            pilot,
            lambda: all(
                read_meta(tmp_path / n).get("status") == "finished"
                for n in ("healthy-a", "healthy-b")
            ),
            timeout=20,
        )
        verdict = app.verdicts["diverging"][0]
        assert verdict.state == "triggered" and verdict.step is not None and verdict.step >= 10
        audit = (tmp_path / ".tracktui" / "audit.jsonl").read_text()
        assert "diverged" in audit and "healthy" not in audit


@pytest.mark.slow
async def test_x_terminates_the_run_a_kill_rule_flagged(tmp_path: Path, processes) -> None:
    (tmp_path / "tracktui.toml").write_text(
        '[[rule]]\nname = "diverged"\nmetric = "loss"\nwhen = "nonfinite"\naction = "kill"\n'
    )
    processes.launch(tmp_path, "steady")
    processes.launch(tmp_path, "diverging", "--nan-at", "3")
    app = TrackApp(tmp_path, watch="native", grace=2.0)  # no --auto-kill: flag only
    async with app.run_test(size=SIZE) as pilot:
        await wait_for(pilot, lambda: app.flagged() == ["diverging"], timeout=15)
        # The table repaints changed cells at most ~10 times a second (1 s while loading).
        await wait_for(
            pilot, lambda: table_of(app).get_cell("diverging", "rules").plain == "⚑diverged"
        )
        assert read_meta(tmp_path / "diverging")["status"] == "running"  # only flagged
        await pilot.press("X")
        await wait_for(pilot, lambda: isinstance(app.screen, ConfirmKill))
        await pilot.press("y")
        await wait_for(
            pilot, lambda: read_meta(tmp_path / "diverging").get("status") == "killed", timeout=15
        )
        assert read_meta(tmp_path / "steady")["status"] == "running"
