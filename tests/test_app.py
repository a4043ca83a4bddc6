"""The main screen, piloted on the thread-free fake engine: sorting, filtering, marking, safety.

Live updates and kills of real process trees are in ``test_end_to_end.py``.
"""

from __future__ import annotations

import json
import math
import socket
import subprocess
import sys
from pathlib import Path

import psutil
import pytest
from conftest import table_of, wait_for
from fake_engine import fake_app, loaded
from processes import marked
from rich.text import Text
from textual.widgets import Input, OptionList
from textual.widgets._footer import FooterKey

from tui.app.app import TrackApp
from tui.app.screens.confirm_kill import ConfirmKill
from tui.app.screens.runs import RunsScreen
from tui.app.widgets.run_table import RunTable

SIZE = (140, 40)


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
    app = fake_app(samples / "sweep")
    (samples / "sweep" / "broken").mkdir()
    (samples / "sweep" / "broken" / "metrics.jsonl").write_text(
        '{"step": 1, "val_loss": 2.0}\n{"step": 2, "val_loss": NaN}\n'
    )
    async with app.run_test(size=SIZE) as pilot:
        await loaded(pilot, runs=6)
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
    app = fake_app(samples / "sweep")
    async with app.run_test(size=SIZE) as pilot:
        await loaded(pilot, runs=5)
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
    app = fake_app(samples / "sweep")
    async with app.run_test(size=SIZE) as pilot:
        await loaded(pilot, runs=5)
        table = table_of(app)
        first = table.shown[0]
        await pilot.press("space")
        assert table.marked == {first}
        assert table.get_cell(first, "mark").plain == "●"
        await pilot.press("a")
        assert table.marked == set(table.shown)
        await pilot.press("u")
        assert not table.marked


async def test_markup_and_escapes_in_run_data_render_as_plain_text(samples: Path) -> None:
    app = fake_app(samples)
    async with app.run_test(size=SIZE) as pilot:
        await loaded(pilot)
        assert len(app.store.runs) >= 10
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


# Kill keys ------------------------------------------------------------------------------


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
        app = fake_app(tmp_path)
        async with app.run_test(size=SIZE) as pilot:
            await loaded(pilot, runs=2)
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
async def test_read_only_refuses_every_action(tmp_path: Path, processes) -> None:
    processes.launch(tmp_path, "protected")
    app = fake_app(tmp_path, grace=2.0, read_only=True)
    async with app.run_test(size=SIZE) as pilot:
        await loaded(pilot, runs=1)
        await wait_for(pilot, lambda: "protected" in table_of(app).shown)
        await wait_for(pilot, lambda: app.store.runs["protected"].status == "running")
        assert app.check_action("kill", ("term",)) is None  # greyed out
        await pilot.press("T", "K", "I", "X")
        await pilot.pause()
        assert not isinstance(app.screen, ConfirmKill)
        app.kill_runs(["protected"], "kill", confirm=False)  # even a direct call is refused
        await pilot.pause()
        assert not any(worker.group == "kill" for worker in app.workers)  # none was planned
        assert any("read-only" in str(n.message) for n in app._notifications)
        assert len(marked(processes.marker)) >= 3
        assert not (tmp_path / ".tracktui" / "audit.jsonl").exists()


async def test_help_and_command_palette_list_the_bindings(samples: Path) -> None:
    from textual.widgets import Static

    from tui.app.screens.help import HelpScreen

    app = fake_app(samples / "sweep")
    async with app.run_test(size=SIZE) as pilot:
        await loaded(pilot, runs=5)
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
