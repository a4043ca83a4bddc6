"""Issue 12, the rest of the face: the demo, a table that scales, views that persist, export
and the sweep and help fixes."""

from __future__ import annotations

import csv
import io
import json
import subprocess
import sys
from pathlib import Path
from xml.etree import ElementTree

import psutil
import pytest
from conftest import SAMPLES, load, table_of, wait_for, wait_loaded, write_run
from fake_engine import fake_app, loaded
from processes import running

from tui.app.app import TrackApp
from tui.app.screens.help import HelpScreen, bindings_of
from tui.app.screens.pick import PickOne
from tui.app.screens.runs import RunsScreen
from tui.commands import demo
from tui.core import exports
from tui.core.names import unique_names
from tui.core.query import parse_query

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
            assert app.view.sort_key == "age"  # the newest records, the live runs, on top
            table = table_of(app)
            assert all(key.startswith("live/") for key in table.shown[:2])
            assert DIVERGING in app.flagged()
            assert "hostile" not in app.store.runs
        assert started_from(root)  # the runs live while the demo does
    assert not root.exists()
    assert not started_from(root)


def test_demo_samples_read_as_finished_history_not_as_running(tmp_path: Path) -> None:
    """A fresh checkout dates every sample file now; the demo's copies are dated back, so
    no static sample (no writer process) reads as running or stalled."""
    root = tmp_path / "demo"
    demo.populate(root)
    out = subprocess.run(
        [sys.executable, "-m", "tui", "status", str(root), "--json"],
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    statuses = {run["path"]: run["status"] for run in json.loads(out.stdout)["runs"]}
    assert len(statuses) > 30
    assert not {p: s for p, s in statuses.items() if s in ("running", "stalled", "unknown")}


# (b) A table that scales --------------------------------------------------------------------
def test_unique_names_for_the_repeated_cases() -> None:
    names = unique_names(
        [
            ("foreign/neps_current/configs/config_1", "config_1"),
            ("foreign/neps_legacy/results/config_1", "config_1"),
            ("mlflow_file/mlruns/1/6a754863b85049d99f5b9389961fb2da", "lr0.01"),
            ("mlflow_sqlite/mlflow.db#09773cc8789340d9b379117cbb0fde4b", "lr0.01"),
            ("valohai/a/train.log", "train"),
            ("valohai/b/train.log", "train"),
            ("proj/output.log", "output"),
            ("gymnos/trainings/boston/executions/09-00-05__01-01-2026", "09-00-05__01-01-2026"),
            ("sweep/resnet-lr0.1", "resnet-lr0.1"),
        ]
    )
    assert len(set(names.values())) == len(names)
    assert names["foreign/neps_current/configs/config_1"] == "configs/config_1"
    assert names["foreign/neps_legacy/results/config_1"] == "results/config_1"
    assert names["mlflow_file/mlruns/1/6a754863b85049d99f5b9389961fb2da"] == "lr0.01 (6a754863)"
    assert names["valohai/a/train.log"] == "a"
    assert names["proj/output.log"] == "proj"
    assert names["gymnos/trainings/boston/executions/09-00-05__01-01-2026"] == (
        "09-00-05__01-01-2026 (boston)"
    )
    assert names["sweep/resnet-lr0.1"] == "resnet-lr0.1"  # a unique, telling name stays


def test_unknown_filter_keys_are_named() -> None:
    store = load(SAMPLES / "sweep")
    assert parse_query("lrr<0.1 or lr<0.1 and max(val_accurcy)>0.5").unknown_keys(store) == [
        "lrr",
        "val_accurcy",
    ]
    assert parse_query("name~resnet status:running tag:x val_loss<1").unknown_keys(store) == []


async def test_sample_table_names_are_unique_and_frozen_while_scrolling(samples: Path) -> None:
    app = fake_app(samples)
    async with app.run_test(size=(140, 40)) as pilot:
        await loaded(pilot)
        screen = app.screen
        assert isinstance(screen, RunsScreen)
        table = table_of(app)
        shown = [table.get_cell(key, "name").plain for key in table.shown]
        assert len(set(shown)) == len(shown)
        assert table.get_cell("valohai/train.log", "name").plain == "valohai"
        assert table.get_cell("valohai/train.log", "path").plain == "valohai/train.log"
        # Rules cells are quiet unless a rule fired.
        rules = {table.get_cell(key, "rules").plain for key in table.shown}
        assert all(text == "" or text.startswith("⚑") for text in rules)
        assert "⚑diverged" in table.get_cell("diverged", "rules").plain
        before = table.render_line(1).text
        head = before[: table.frozen_width]
        table.scroll_to(x=60, animate=False)
        await pilot.pause()
        assert table.scroll_x == 60
        after = table.render_line(1).text
        assert after[: table.frozen_width] == head  # status and name stay
        assert after[table.frozen_width :] != before[table.frozen_width :]
        header = table.render_line(0).text
        assert "status" in header and "name" in header


async def test_sort_picker_offers_every_metric_and_filter_explains_unknown_keys(
    samples: Path,
) -> None:
    app = fake_app(samples)
    async with app.run_test(size=(140, 40)) as pilot:
        await loaded(pilot)
        screen = app.screen
        assert isinstance(screen, RunsScreen)
        shown = {c.key for c in table_of(app).columns_spec}
        await pilot.press("s")
        picker = app.screen
        assert isinstance(picker, PickOne)
        offered = {key for key, _ in picker.options}
        assert "metric:last:grad_norm" in offered and "metric:last:grad_norm" not in shown
        picker.dismiss("metric:last:grad_norm")
        await pilot.pause()
        assert screen.sort_key == "metric:last:grad_norm"
        first = table_of(app).shown[0]
        assert "grad_norm" in app.store.runs[first].series
        await pilot.press("slash")
        await pilot.press(*"lrr<0.1", "enter")
        await pilot.pause()
        messages = [n.message for n in app._notifications]
        assert any("no run has a key `lrr`" in m for m in messages)


# (c) Views that persist -----------------------------------------------------------------------
async def test_view_is_restored_after_restart_and_fresh_ignores_it(
    samples: Path, state_home: Path
) -> None:
    root = samples / "sweep"
    app = fake_app(root)
    async with app.run_test(size=(140, 40)) as pilot:
        await loaded(pilot)
        screen = app.screen
        assert isinstance(screen, RunsScreen)
        screen.sort_by("metric:best:val_loss", descending=True)
        screen.chosen_metrics = ("val_loss", "lr")
        await pilot.press("tilde", "v", "slash", *"lr<0.05", "enter")
        await pilot.pause()
        table = table_of(app)
        table.marked.update(table.shown[:2])
        await pilot.press("c")
        await wait_for(pilot, lambda: not isinstance(app.screen, RunsScreen))
        await pilot.press("plus", "x")
        await pilot.pause()
    saved = list((state_home / "tracktui" / "views").glob("*.json"))
    assert len(saved) == 1 and not list(root.rglob("*.json.tmp"))
    assert json.loads(saved[0].read_text())["root"] == str(root)

    again = fake_app(root)
    async with again.run_test(size=(140, 40)) as pilot:
        await loaded(pilot)
        screen = again.screen
        assert isinstance(screen, RunsScreen)
        assert (screen.sort_key, screen.descending) == ("metric:best:val_loss", True)
        assert screen.chosen_metrics == ("val_loss", "lr")
        assert screen.filter_query.text == "lr<0.05"
        assert screen.smoothing > 0
        assert not screen.strip.display
        assert again.view.chart_smoothing > 0 and again.view.x_axis != "step"
        assert len(table_of(again).shown) == 4  # every run but lr=0.1

    fresh = fake_app(root, fresh=True)
    async with fresh.run_test(size=(140, 40)) as pilot:
        await loaded(pilot)
        screen = fresh.screen
        assert isinstance(screen, RunsScreen)
        assert screen.sort_key is None and screen.filter_query.empty
        assert screen.strip.display


# (d) Export -----------------------------------------------------------------------------------
async def test_screen_as_svg_and_table_as_csv_go_to_the_cwd_and_parse(
    samples: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    out = tmp_path / "out"
    out.mkdir()
    monkeypatch.chdir(out)
    monkeypatch.setenv("HOME", str(tmp_path / "home"))  # no ~/Downloads anywhere
    app = fake_app(samples / "sweep")
    async with app.run_test(size=(140, 40)) as pilot:
        await loaded(pilot)
        screen = app.screen
        assert isinstance(screen, RunsScreen)
        screen.sort_by("metric:last:val_loss", descending=True)
        screen.filter_query = parse_query("name~resnet")
        await pilot.pause()
        shown = list(table_of(app).shown)
        await pilot.press("S", "e")
        await pilot.pause()
        told = " ".join(n.message for n in app._notifications)
    svgs, csvs = list(out.glob("*.svg")), list(out.glob("*.csv"))
    assert len(svgs) == 1 and len(csvs) == 1
    assert svgs[0].name in told and csvs[0].name in told  # the user is told where
    root = ElementTree.parse(svgs[0]).getroot()
    assert root.tag.endswith("svg")
    rows = list(csv.DictReader(io.StringIO(csvs[0].read_text())))
    assert len(rows) == 3 and [row["path"] for row in rows] == shown  # as on screen
    losses = [float(row["val_loss (last)"]) for row in rows]
    assert losses == sorted(losses, reverse=True) and len(losses) == 3


def test_exports_fall_back_to_the_state_dir_where_the_cwd_is_not_writable(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, state_home: Path
) -> None:
    monkeypatch.setattr(exports.os, "access", lambda path, mode: False)
    assert exports.export_dir() == state_home / "tracktui" / "exports"
    assert exports.export_dir().is_dir()


# (e) Fixes ------------------------------------------------------------------------------------
async def test_help_lists_enter_once(samples: Path) -> None:
    app = fake_app(samples / "sweep")
    async with app.run_test(size=(140, 40)) as pilot:
        await loaded(pilot)
        screen = app.screen
        entries = [b for _, b in bindings_of(screen) if "enter" in b.key.split(",")]
        assert [b.description for b in entries] == ["Open"]
        await pilot.press("question_mark")
        await wait_for(pilot, lambda: isinstance(app.screen, HelpScreen))


async def test_cursor_stays_on_top_until_the_user_moves_it(tmp_path: Path) -> None:
    """Runs found after the first frame that sort above it leave an untouched cursor on
    the first row (a newcomer sees the newest run); once moved, the cursor keeps its run."""
    root = tmp_path / "root"
    for name in ("b", "d"):
        (root / name).mkdir(parents=True)
        (root / name / "metrics.jsonl").write_text('{"step": 0, "loss": 1.0}\n')
    app = fake_app(root)
    async with app.run_test(size=(120, 30)) as pilot:
        engine = await loaded(pilot, runs=2)
        table = table_of(app)
        assert table.current_key == "b"
        (root / "a").mkdir()
        await engine.append(root / "a" / "metrics.jsonl", {"step": 0, "loss": 2.0})
        await pilot.pause()
        assert table.shown[:2] == ["a", "b"] and table.current_key == "a"
        await pilot.press("j")  # the user moves: the cursor is theirs now
        assert table.current_key == "b"
        (root / "0").mkdir()
        await engine.append(root / "0" / "metrics.jsonl", {"step": 0, "loss": 3.0})
        await pilot.pause()
        assert table.shown[0] == "0" and table.current_key == "b"


async def test_rows_below_the_first_screen_are_made_after_it_and_widen_their_columns(
    tmp_path: Path,
) -> None:
    """A table of more runs than a screen holds makes the rows out of view after the first
    frame: the run at the bottom still shows its whole step count, in a column its value
    widened, and its row draws when the cursor reaches it."""
    for i in range(150):
        write_run(tmp_path, f"run-{i:03d}", [1.0, 0.5])
    last = tmp_path / "run-149"
    with (last / "metrics.jsonl").open("a") as handle:
        handle.write('{"step": 1234567, "loss": 0.25}\n')
    app = TrackApp(tmp_path, watch="poll", fresh=True)
    async with app.run_test(size=(160, 30)) as pilot:
        table = table_of(app)
        await wait_for(pilot, lambda: len(table.shown) == 150 and "run-149" in table.shown)
        await wait_for(pilot, lambda: app.store.runs["run-149"].series["loss"].count == 3)
        await pilot.pause()
        assert table.get_cell("run-149", "step").plain == "1234567"
        table.move_cursor(row=table.get_row_index("run-149"))
        await pilot.pause()
        drawn = [table.render_line(y).text for y in range(table.size.height)]
        row = next(line for line in drawn if "run-149" in line)
        assert "1234567" in row and "…" not in row
