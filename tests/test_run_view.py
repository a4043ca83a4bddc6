"""The run view, piloted on the thread-free fake engine: charts, matrices, values, config, log,
health and processes. Following a growing log end to end is in ``test_end_to_end.py``.
"""

from __future__ import annotations

import json
import shutil
import socket
import subprocess
import sys
from pathlib import Path

import psutil
import pytest
from conftest import open_run, plain, wait_for
from fake_engine import fake_app, loaded
from rich.style import Style
from rich.text import Text
from textual.widgets import Input, Static

from tui.app.screens.panel_picker import PanelPicker
from tui.app.screens.runs import RunsScreen
from tui.app.widgets.chart_board import ChartBoard
from tui.app.widgets.config_view import ConfigView
from tui.app.widgets.health_view import HealthView
from tui.app.widgets.log_lines import LogLines
from tui.app.widgets.log_view import LogView
from tui.app.widgets.matrix_browser import MatrixBrowser
from tui.app.widgets.media_list import MediaList
from tui.app.widgets.process_table import ProcessTable
from tui.app.widgets.values_view import ValuesView
from tui.core.rundir import current_user

SIZE = (120, 40)
HOSTILE = "[@click=app.quit]"


def root_with(samples: Path, *names: str) -> Path:
    """A ROOT holding only the named sample runs (fewer runs: a faster start)."""
    root = samples.parent / "root"
    root.mkdir(exist_ok=True)
    for name in names:
        shutil.move(samples / name, root / name)
    return root


# Charts


async def test_charts_show_each_metric_and_grow_when_a_line_is_appended(samples: Path) -> None:
    app = fake_app(samples / "sweep")
    async with app.run_test(size=SIZE) as pilot:
        engine = await loaded(pilot, runs=5)
        screen = await open_run(pilot, "resnet-lr0.01")
        board = screen.query_one(ChartBoard)
        run = app.store.runs["resnet-lr0.01"]
        titles = [p.title for p in board.panels]
        assert sorted(titles) == sorted(run.series)
        assert titles[:2] == ["val_accuracy", "val_loss"]  # key metrics first
        assert titles[-2:] == ["epoch", "lr"]
        for panel, chart in zip(board.panels, board.charts):
            (trace,) = chart.traces
            series = run.series[panel.title]
            assert trace.label == panel.title
            assert trace.y.size == series.count
            assert trace.y[-1] == pytest.approx(series.last, rel=1e-6)
            assert trace.x[-1] == series.last_step
        charts = dict(zip(titles, board.charts))
        untouched = charts["accuracy"].traces
        count = charts["val_loss"].traces[0].x.size

        await engine.append(
            run_dir := samples / "sweep" / "resnet-lr0.01" / "metrics.jsonl",
            {"step": 320, "val_loss": 0.123},
        )
        assert run_dir.exists()
        await wait_for(pilot, lambda: charts["val_loss"].traces[0].x.size == count + 1)
        trace = charts["val_loss"].traces[0]
        assert trace.x[-1] == 320 and trace.y[-1] == pytest.approx(0.123)
        assert charts["val_loss"].title == "val_loss = 0.123"
        assert charts["accuracy"].traces is untouched  # only the affected chart was redrawn
        assert "step 320" in plain(screen, "#run-header")

        # Charts out of sight are brought up to date when their tab is shown again.
        await pilot.press("5")
        await engine.append(run_dir, {"step": 340, "val_loss": 0.111})
        await wait_for(pilot, lambda: run.series["val_loss"].last_step == 340)
        assert charts["val_loss"].traces[0].x[-1] == 320
        await pilot.press("1")
        assert charts["val_loss"].traces[0].x[-1] == 340


async def test_chart_options_x_axis_log_y_and_smoothing(samples: Path) -> None:
    app = fake_app(samples / "sweep")
    async with app.run_test(size=SIZE) as pilot:
        await loaded(pilot, runs=5)
        screen = await open_run(pilot, "resnet-lr0.1")
        board = screen.query_one(ChartBoard)
        chart = board.charts[0]
        run = app.store.runs["resnet-lr0.1"]
        assert chart.x_label == "step"
        await pilot.press("x")
        assert board.x_axis == "time" and chart.x_label == "wall time"
        series = run.series[board.panels[0].title]
        first = run.times[series.positions()[0]]
        assert chart.traces[0].x[0] == pytest.approx(first, abs=1e-3)
        await pilot.press("x")
        assert chart.x_label == "s since start"
        assert chart.traces[0].x[0] == pytest.approx(first - run.times[0], abs=1e-3)
        await pilot.press("x")
        assert chart.x_label == "accuracy"  # then every numeric metric
        await pilot.press("l")
        assert all(c.log_y for c in board.charts)
        await pilot.press("plus")
        assert all(c.smoothing == 0.6 for c in board.charts)
        await pilot.press("right_square_bracket")
        assert board.charts[-1].smoothing == 0.8
        assert "smoothing 0.8" in plain(screen, "#chart-options")
        await pilot.press("minus", "minus", "minus")
        assert chart.smoothing == 0.0
        assert "smoothing off" in plain(screen, "#chart-options")


async def test_picker_puts_metrics_on_the_shared_chart_left_and_right(samples: Path) -> None:
    app = fake_app(samples / "sweep")
    async with app.run_test(size=SIZE) as pilot:
        await loaded(pilot, runs=5)
        screen = await open_run(pilot, "vit-lr0.001")
        board = screen.query_one(ChartBoard)
        order = list(board.order)
        await pilot.press("a")
        await wait_for(pilot, lambda: isinstance(app.screen, PanelPicker))
        await pilot.press("l")  # the first metric (val_accuracy) to the shared left axis
        await pilot.press("down", "r")  # val_loss to the right axis
        await pilot.press("down", "h")  # the third one hidden
        await pilot.press("enter")
        await wait_for(pilot, lambda: app.screen is screen)
        await pilot.pause()
        shared = board.panels[0]
        assert shared.shared and shared.left == (order[0],) and shared.right == (order[1],)
        axes = {t.label: t.axis for t in board.charts[0].traces}
        assert axes == {order[0]: "left", order[1]: "right"}
        assert [p.title for p in board.panels[1:]] == order[3:]
        assert f"{len(order) - 1} of {len(order)} metrics" in plain(screen, "#chart-options")


# Matrices


async def test_heatmap_counts_stepping_normalizing_and_following(samples: Path) -> None:
    root = root_with(samples, "shapes")
    app = fake_app(root)
    async with app.run_test(size=SIZE) as pilot:
        engine = await loaded(pilot, runs=1)
        screen = await open_run(pilot, "shapes")
        await pilot.press("2")
        browser = screen.query_one(MatrixBrowser)
        heatmap = browser.heatmap
        assert browser.has_focus
        assert browser.names == [
            "confusion",
            "confusion_labeled",
            "confusion_triples",
            "confusion_fp_fn",
        ]
        assert heatmap.caption == "confusion · step 200 (10 of 10)"
        assert heatmap.matrix.values == ((48, 1, 1), (1, 48, 1), (3, 1, 46))
        lines = heatmap.lines()
        assert any("48" in line and "1" in line for line in lines)
        await pilot.press("comma")
        assert heatmap.caption == "confusion · step 180 (9 of 10)"
        assert heatmap.matrix.values == ((42, 4, 4), (0, 45, 5), (2, 4, 44))
        await pilot.press("home")
        assert heatmap.caption == "confusion · step 20 (1 of 10)"
        await pilot.press("end")
        assert heatmap.caption.endswith("(10 of 10)")
        await pilot.press("n")
        assert heatmap.normalized
        assert any("96%" in line for line in heatmap.lines())  # 48 of a row of 50
        await pilot.press("n")
        assert not heatmap.normalized
        await pilot.press("down")
        assert browser.selected == "confusion_labeled"
        assert any("cat" in line and "dog" in line for line in heatmap.lines())
        await pilot.press("up")

        # Stepped back: new matrices do not pull the view away; at the end it follows.
        await pilot.press("left")
        matrix = [[10, 0, 0], [0, 10, 0], [0, 0, 10]]
        await engine.append(root / "shapes" / "metrics.jsonl", {"step": 220, "confusion": matrix})
        await wait_for(pilot, lambda: "of 11)" in heatmap.caption)
        assert heatmap.caption == "confusion · step 180 (9 of 11)"
        await pilot.press("end")
        assert heatmap.caption == "confusion · step 220 (11 of 11)"
        await engine.append(root / "shapes" / "metrics.jsonl", {"step": 240, "confusion": matrix})
        await wait_for(pilot, lambda: heatmap.caption == "confusion · step 240 (12 of 12)")


# Values


async def test_values_tab_renders_every_shape_and_lists_media(samples: Path) -> None:
    root = root_with(samples, "shapes")
    app = fake_app(root)
    async with app.run_test(size=SIZE) as pilot:
        await loaded(pilot, runs=1)
        screen = await open_run(pilot, "shapes")
        await pilot.press("3")
        view = screen.query_one(ValuesView)
        assert set(view.blocks) == {
            "model_layout",
            "phase",
            "class_accuracy",
            "predicted_per_class",
            "precision_recall",
            "per_class",
        }
        await pilot.pause()

        def body(name: str) -> str:
            content = view.blocks[name].query_one(".value-body", Static).content
            return content.plain if isinstance(content, Text) else str(content)

        assert "conv3x3-64" in body("model_layout")
        assert "finetune" in body("phase") and "step 20: warmup" in body("phase")
        assert "0.96" in body("class_accuracy") and "█" in body("class_accuracy")
        assert "cat" in body("predicted_per_class") and "52" in body("predicted_per_class")
        line_chart = view.blocks["precision_recall"].query_one("MetricChart")
        assert line_chart.traces[0].x[0] == pytest.approx(1.0)
        media = screen.query_one(MediaList)
        await wait_for(pilot, lambda: len(media.sizes) == 2)
        listing = media.content.plain
        assert "confusion_step200.png" in listing and "1.8 KB" in listing and "image" in listing
        assert "predictions.txt" in listing


# Config, log and health of a hostile run


async def test_hostile_strings_show_literally_and_trigger_nothing(samples: Path) -> None:
    root = root_with(samples, "hostile")
    shutil.copy(samples / "tracktui.toml", root / "tracktui.toml")
    app = fake_app(root)
    async with app.run_test(size=SIZE) as pilot:
        await loaded(pilot, runs=1)
        screen = await open_run(pilot, "hostile")
        assert HOSTILE in plain(screen, "#run-header")

        await pilot.press("4")
        config = screen.query_one(ConfigView).query_one("#config-text", Static).content.plain
        assert "[@click=app.quit]click me[/]" in config
        assert "[bold red]resnet[/]" in config
        assert "exit code" in config and "\x1b" not in config

        await pilot.press("5")
        view = screen.query_one(LogLines)
        assert view.has_focus
        index = next(i for i, line in enumerate(view.lines) if HOSTILE in line)
        text = view.line_text(index)
        assert HOSTILE + "quit[/]" in text.plain
        assert not any(isinstance(s.style, Style) and s.style.meta for s in text.spans)
        row = index - int(view.scroll_y)
        strip = view.render_line(row)
        assert HOSTILE in strip.text
        assert not any(seg.style is not None and seg.style.meta for seg in strip)
        column = view.gutter_width() + view.lines[index].index(HOSTILE) + 2
        await pilot.click(LogLines, offset=(column, row))
        await pilot.press("enter", "space")
        await pilot.pause()
        assert app.is_running and app.screen is screen

        await pilot.press("6")
        assert screen.query_one(HealthView).has_focus
        reading = plain(screen, "#reading-text")
        run = app.store.runs["hostile"]
        assert f"bad lines  {run.health.bad_lines}" in reading
        assert run.health.bad_lines >= 5
        for file, line, _reason in list(run.health.samples)[:3]:
            assert f"{file}:{line}" in reading
        assert "watcher    polling" in reading
        rules = plain(screen, "#rules-text")
        assert "diverged" in rules and "loss becomes NaN or infinite -> kill" in rules
        assert "plateau" in rules and "waiting" in rules


async def test_log_search_jumps_between_matches(samples: Path) -> None:
    root = root_with(samples, "hostile")
    app = fake_app(root)
    async with app.run_test(size=SIZE) as pilot:
        await loaded(pilot, runs=1)
        screen = await open_run(pilot, "hostile")
        await pilot.press("5", "slash")
        field = screen.query_one("#log-search", Input)
        assert field.has_focus
        field.value = "traceback"
        await pilot.press("enter")
        view = screen.query_one(LogLines)
        log = screen.query_one(LogView)
        wanted = next(i for i, line in enumerate(view.lines) if line.startswith("Traceback"))
        assert view.current == wanted
        assert "match 1 of 1" in plain(screen, "#log-status")
        assert not log.follow  # jumping to a match stops following
        await pilot.press("slash")
        field.value = "and"
        await pilot.press("enter")
        hits = [i for i, line in enumerate(view.lines) if "and" in line.lower()]
        assert len(hits) >= 3 and view.current == hits[0]
        await pilot.press("n")
        assert view.current == hits[1]
        await pilot.press("N", "N")
        assert view.current == hits[-1]  # wraps around
        await pilot.press("f")
        assert log.follow
        # escape after a search leaves the run view (the search field is closed)
        await pilot.press("escape")
        await wait_for(pilot, lambda: isinstance(app.screen, RunsScreen))


# Processes


async def test_processes_tab_lists_a_live_run_and_polls_only_while_shown(tmp_path: Path) -> None:
    root = tmp_path / "root"
    run_dir = root / "live"
    run_dir.mkdir(parents=True)
    child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        meta = {
            "name": "live",
            "pid": child.pid,
            "pid_create_time": psutil.Process(child.pid).create_time(),
            "host": socket.gethostname(),
            "user": current_user(),
            "command": ["python", "-c", "sleep"],
        }
        (run_dir / "run.json").write_text(json.dumps(meta))
        (run_dir / "metrics.jsonl").write_text('{"step": 1, "loss": 1.0}\n')
        app = fake_app(root)
        async with app.run_test(size=SIZE) as pilot:
            await loaded(pilot, runs=1)
            screen = await open_run(pilot, "live")
            procs = screen.query_one(ProcessTable)
            assert not procs.active  # not polled while another tab is shown
            assert screen.kill_targets() == ["live"]
            assert app.check_action("kill", ("term",))
            await pilot.press("7")
            assert procs.active
            await wait_for(pilot, lambda: procs.table.row_count >= 1)
            assert str(child.pid) in [row.value for row in procs.table.rows]
            assert "1 process" in plain(screen, "#procs-status")
            await pilot.press("1")
            assert not procs.active and procs._timer is None
    finally:
        child.kill()
        child.wait()


async def test_processes_tab_explains_runs_it_cannot_see(samples: Path) -> None:
    root = root_with(samples, "shapes", "valohai")
    app = fake_app(root)
    async with app.run_test(size=SIZE) as pilot:
        await loaded(pilot, runs=2)
        screen = await open_run(pilot, "shapes")
        await pilot.press("7")
        await wait_for(pilot, lambda: "gpu-node-01" in plain(screen, "#procs-status"))
        await pilot.press("escape")
        await wait_for(pilot, lambda: isinstance(app.screen, RunsScreen))
        screen = await open_run(pilot, "valohai/train.log")
        await pilot.press("7")
        assert "records no pid" in plain(screen, "#procs-status")
        assert not app.check_action("kill", ("term",))
