"""The main screen, piloted: sorting, filtering, marking, live updates, safety, killing."""

from __future__ import annotations

import json
import math
import socket
import subprocess
import sys
from pathlib import Path

import psutil
import pytest
from conftest import wait_for, wait_loaded
from processes import marked, read_meta
from rich.text import Text
from textual.widgets import Input, OptionList
from textual.widgets._footer import FooterKey

from tui.app.app import TrackApp
from tui.app.screens.confirm_kill import ConfirmKill
from tui.app.screens.runs import RunsScreen
from tui.app.widgets.run_table import RunTable

SIZE = (140, 40)


def table_of(app: TrackApp) -> RunTable:
    return app.screen.query_one(RunTable)


def metric_of(app: TrackApp, key: str, metric: str) -> float:
    series = app.store.runs[key].series.get(metric)
    return math.nan if series is None else series.last


async def choose(pilot, key: str, option: str) -> None:
    """Open a picker with ``key`` and choose the option whose id is ``option``."""
    await pilot.press(key)
    await wait_for(pilot, lambda: pilot.app.screen.query(OptionList))
    listing = pilot.app.screen.query_one(OptionList)
    listing.highlighted = listing.get_option_index(option)
    await pilot.press("enter")
    await pilot.pause()


async def test_sorting_by_a_metric_puts_nan_last_both_ways(samples: Path) -> None:
    app = TrackApp(samples / "sweep", watch="poll")
    (samples / "sweep" / "broken").mkdir()
    (samples / "sweep" / "broken" / "metrics.jsonl").write_text(
        '{"step": 1, "val_loss": 2.0}\n{"step": 2, "val_loss": NaN}\n'
    )
    async with app.run_test(size=SIZE) as pilot:
        await wait_loaded(pilot, runs=6)
        await choose(pilot, "s", "metric:last:val_loss")
        keys = table_of(app).shown
        values = [metric_of(app, k, "val_loss") for k in keys]
        assert keys[-1] == "broken" and math.isnan(values[-1])
        assert values[:-1] == sorted(values[:-1])
        await pilot.press("r")
        await pilot.pause()
        keys = table_of(app).shown
        values = [metric_of(app, k, "val_loss") for k in keys]
        assert keys[-1] == "broken"
        assert values[:-1] == sorted(values[:-1], reverse=True)


async def test_filter_narrows_and_a_bad_query_keeps_the_previous_one(samples: Path) -> None:
    app = TrackApp(samples / "sweep", watch="poll")
    async with app.run_test(size=SIZE) as pilot:
        await wait_loaded(pilot, runs=5)
        await pilot.press("slash")
        await pilot.press(*"name~resnet")
        await pilot.press("enter")
        await pilot.pause()
        shown = table_of(app).shown
        assert shown and all("resnet" in app.store.runs[k].name for k in shown)
        assert len(shown) < len(app.store.runs)
        await pilot.press("slash")
        field = app.screen.query_one("#filter", Input)
        field.value = "lr<"
        await pilot.press("enter")
        await pilot.pause()
        assert table_of(app).shown == shown  # previous filter kept
        assert any("lr<" in str(n.message) for n in app._notifications)
        await pilot.press("escape", "escape")
        await pilot.pause()
        assert len(table_of(app).shown) == len(app.store.runs)


async def test_marks_and_mark_all(samples: Path) -> None:
    app = TrackApp(samples / "sweep", watch="poll")
    async with app.run_test(size=SIZE) as pilot:
        await wait_loaded(pilot, runs=5)
        table = table_of(app)
        first = table.shown[0]
        await pilot.press("space")
        assert table.marked == {first}
        assert table.get_cell(first, "mark").plain == "●"
        await pilot.press("a")
        assert table.marked == set(table.shown)
        await pilot.press("u")
        assert not table.marked


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


async def test_markup_and_escapes_in_run_data_render_as_plain_text(samples: Path) -> None:
    app = TrackApp(samples, watch="poll")
    async with app.run_test(size=SIZE) as pilot:
        await wait_loaded(pilot, runs=10, timeout=30)
        table = table_of(app)
        hostile = app.store.runs["hostile"]
        cell = table.get_cell("hostile", "name")
        assert isinstance(cell, Text)
        assert "[@click=app.quit]" in cell.plain and "\x1b" not in cell.plain
        assert not any("@click" in str(span.style) for span in cell.spans)
        assert cell.plain == hostile.name
        table.move_cursor(row=table.get_row_index("hostile"))
        await pilot.click(RunTable, offset=(20, table.cursor_row + 1))
        await pilot.pause()
        assert app.is_running


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


# Killing -------------------------------------------------------------------------------


async def open_app_on_run(root: Path, **options) -> TrackApp:
    return TrackApp(root, watch="poll", grace=2.0, **options)


def footer_key(app: TrackApp, key: str) -> FooterKey:
    return next(k for k in app.screen.query(FooterKey) if k.key == key)


async def test_the_terminate_key_follows_the_cursor_in_the_footer(tmp_path: Path) -> None:
    sleeper = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(120)"])
    try:
        for name, meta in (
            ("a-done", {"status": "finished", "exit_code": 0}),
            (
                "b-live",
                {
                    "pid": sleeper.pid,
                    "pid_create_time": psutil.Process(sleeper.pid).create_time(),
                    "host": socket.gethostname(),
                },
            ),
        ):
            (tmp_path / name).mkdir()
            (tmp_path / name / "run.json").write_text(json.dumps({"name": name, **meta}))
            (tmp_path / name / "metrics.jsonl").write_text('{"step": 1, "loss": 0.5}\n')
        app = TrackApp(tmp_path, watch="poll")
        async with app.run_test(size=SIZE) as pilot:
            await wait_loaded(pilot, runs=2)
            await wait_for(pilot, lambda: app.store.runs["b-live"].status == "running")
            table = table_of(app)
            assert table.shown == ["a-done", "b-live"] and table.current_key == "a-done"
            await wait_for(pilot, lambda: footer_key(app, "T").has_class("-disabled"))
            await pilot.press("down")
            assert app.check_action("kill", ("term",)) is True
            await wait_for(pilot, lambda: not footer_key(app, "T").has_class("-disabled"))
            await pilot.press("up")
            assert app.check_action("kill", ("term",)) is None
            await wait_for(pilot, lambda: footer_key(app, "T").has_class("-disabled"))
    finally:
        sleeper.kill()
        sleeper.wait()


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
        audit = tmp_path / ".tracktui" / "audit.jsonl"
        assert audit.exists() and "victim" in audit.read_text()


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
async def test_read_only_refuses_every_action(tmp_path: Path, processes) -> None:
    processes.launch(tmp_path, "protected")
    app = await open_app_on_run(tmp_path, read_only=True)
    async with app.run_test(size=SIZE) as pilot:
        await wait_for(pilot, lambda: "protected" in table_of(app).shown)
        await wait_for(pilot, lambda: app.store.runs["protected"].status == "running")
        assert app.check_action("kill", ("term",)) is None  # greyed out
        await pilot.press("T", "K", "I", "X")
        await pilot.pause(0.3)
        assert not isinstance(app.screen, ConfirmKill)
        app.kill_runs(["protected"], "kill", confirm=False)  # even a direct call is refused
        await pilot.pause(0.5)
        assert len(marked(processes.marker)) >= 3
        assert not (tmp_path / ".tracktui" / "audit.jsonl").exists()


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


async def test_help_and_command_palette_list_the_bindings(samples: Path) -> None:
    from textual.widgets import Static

    from tui.app.screens.help import HelpScreen

    app = TrackApp(samples / "sweep", watch="poll")
    async with app.run_test(size=SIZE) as pilot:
        await wait_loaded(pilot, runs=5)
        described = {b.description for b in RunsScreen.BINDINGS if b.description}
        commands = {c.title for c in app.get_system_commands(app.screen)}
        assert {"Filter", "Sort", "Compare", "Sweep", "Mark"} <= commands
        assert "Terminate" not in commands  # finished runs: nothing to kill
        await pilot.press("question_mark")
        await wait_for(pilot, lambda: isinstance(app.screen, HelpScreen))
        widget = app.screen.query_one(Static)
        rendered = "\n".join(
            strip.text for strip in widget.render_lines(widget.region.reset_offset)
        )
        for description in described:
            assert description in rendered
        assert " / " in rendered or "/ " in rendered
        await pilot.press("escape")
        await wait_for(pilot, lambda: isinstance(app.screen, RunsScreen))


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
