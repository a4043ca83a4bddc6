"""The chart cursor and x-range (issue 12 item 2), the run view's chart options that persist
(item 5) and the chart strip's unique names (item 1), on the thread-free Pilot tier."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
from conftest import open_run, wait_for
from fake_engine import fake_app, loaded
from textual.widgets import Static

from tui.app.screens.compare import CompareScreen
from tui.app.screens.runs import RunsScreen
from tui.app.widgets.axis_ticks import short_number
from tui.app.widgets.chart_board import ChartBoard
from tui.app.widgets.chart_strip import ChartStrip
from tui.app.widgets.metric_chart import MetricChart
from tui.app.widgets.trace import Trace

STEPS = 100
NAN_STEP = 60


def write_run(root: Path, folder: str, losses: list[float], name: str = "train") -> None:
    """A finished native run in ``root/folder`` named ``name``, one ``loss`` per step and an
    ``acc`` that rises with it."""
    run = root / folder
    run.mkdir(parents=True)
    (run / "run.json").write_text(json.dumps({"name": name, "status": "finished"}))
    lines = []
    for step, loss in enumerate(losses):
        value = json.dumps(loss) if math.isfinite(loss) else "NaN"
        lines.append(f'{{"step": {step}, "loss": {value}, "acc": {step / STEPS}}}')
    (run / "metrics.jsonl").write_text("\n".join(lines) + "\n")


def loss_a(step: int) -> float:
    return 1.0 / (1 + step)


def loss_b(step: int) -> float:
    return math.nan if step == NAN_STEP else 0.5 / (1 + step) + 0.01 * (step % 3)


@pytest.fixture
def twins(tmp_path: Path) -> Path:
    """Two runs both named ``train`` (in folders a/ and b/); b's loss is NaN at one step."""
    root = tmp_path / "root"
    write_run(root, "a/train", [loss_a(s) for s in range(STEPS)])
    write_run(root, "b/train", [loss_b(s) for s in range(STEPS)])
    return root


async def open_compare(pilot) -> CompareScreen:
    app = pilot.app
    await loaded(pilot, runs=2)
    await pilot.press("a", "c")  # mark every run, compare them
    await wait_for(pilot, lambda: isinstance(app.screen, CompareScreen))
    screen = app.screen
    await wait_for(pilot, lambda: bool(screen.charts) and screen.focused is screen.charts[0])
    return screen


def loss_chart(screen: CompareScreen) -> MetricChart:
    return screen.charts[screen.chart_metrics.index("loss")]


def expected(step: int) -> str:
    """What the readout says at ``step``: the step, then each run's name and value."""
    return (
        f"step {step}  ● a/train {short_number(loss_a(step))}"
        f"  ● b/train {short_number(loss_b(step))}"
    )


async def test_cursor_reads_each_run_at_its_step_and_moves_by_keys(twins: Path) -> None:
    app = fake_app(twins)
    async with app.run_test(size=(160, 45)) as pilot:
        screen = await open_compare(pilot)
        chart = loss_chart(screen)
        assert chart.cursor_x is None and not chart.readout().plain
        await pilot.press("c")
        await wait_for(pilot, lambda: chart.cursor_x is not None)
        assert chart.cursor_x == STEPS - 1  # the last point
        assert chart.readout().plain == expected(STEPS - 1)
        # Every chart stands at the same step, reading its own metric.
        acc = screen.charts[screen.chart_metrics.index("acc")]
        assert acc.readout().plain.startswith(f"step {STEPS - 1}  ● a/train 0.99")
        await pilot.press("comma", "comma")
        assert chart.readout().plain == expected(STEPS - 3)
        await pilot.press("home")
        assert chart.readout().plain == expected(0)
        await pilot.press("full_stop")
        assert chart.readout().plain == expected(1)
        await pilot.press("comma", "greater_than_sign")  # a tenth of the 99 steps shown
        assert chart.cursor_x == 10 and chart.readout().plain == expected(10)
        for _ in range(5):
            await pilot.press("greater_than_sign")
        assert chart.cursor_x == NAN_STEP
        readout = chart.readout()
        assert readout.plain == expected(NAN_STEP) and readout.plain.endswith("b/train NaN")
        nan_style = readout.get_style_at_offset(app.console, len(readout.plain) - 1)
        assert nan_style.color is not None and nan_style.color.number == 9  # NaN in red
        await pilot.press("end")
        assert chart.cursor_x == STEPS - 1
        # The readout is drawn under the plot, in place of the axis name.
        await pilot.pause()
        assert expected(STEPS - 1) in chart.render().plain
        await pilot.press("c")
        await pilot.pause()
        assert chart.cursor_x is None and expected(STEPS - 1) not in chart.render().plain


async def test_zoom_narrows_the_x_range_and_the_y_range_follows(twins: Path) -> None:
    app = fake_app(twins)
    async with app.run_test(size=(160, 45)) as pilot:
        screen = await open_compare(pilot)
        chart = loss_chart(screen)
        await pilot.pause()
        chart.render()
        whole_x, whole_y = chart.x_range, chart.y_ranges["left"]
        assert whole_x is not None and whole_x[1] - whole_x[0] >= STEPS - 1
        await pilot.press("c", "right_parenthesis", "right_parenthesis")
        await wait_for(pilot, lambda: chart.x_window is not None)
        chart.render()
        assert chart.x_range is not None
        low, high = chart.x_range
        # Twice narrower, twice, around the cursor on the last step.
        assert (low, high) == pytest.approx((STEPS - 1 - (STEPS - 1) / 4, STEPS - 1))
        assert chart.x_window == chart.x_range
        y_low, y_high = chart.y_ranges["left"]
        visible = [y for t in chart.traces for x, y in zip(t.x, t.y) if low <= x <= high and y == y]
        assert y_high - y_low < (whole_y[1] - whole_y[0]) / 10
        assert y_low <= min(visible) and y_high >= max(visible)
        assert y_high < 0.05  # the first steps' 1.0 no longer sets the scale
        # Every chart shows the same x-range; the line above them says which.
        assert all(c.x_window == chart.x_window for c in screen.charts)
        assert "x 74.25–99 ({ } pan, 0: all)" in str(
            screen.query_one("#charts-info", Static).content
        )
        # The cursor pushes the window along; pan moves it; 0 shows everything again.
        await pilot.press("home")
        assert chart.x_window is not None and chart.x_window[0] == 0 and chart.cursor_x == 0
        await pilot.press("right_curly_bracket")
        assert chart.x_window[0] == pytest.approx((STEPS - 1) / 16)
        await pilot.press("left_parenthesis", "left_parenthesis")
        assert chart.x_window is None
        await pilot.press("right_parenthesis", "0")
        assert chart.x_window is None
        chart.render()
        assert chart.x_range == whole_x and chart.y_ranges["left"] == whole_y


async def test_run_view_cursor_reads_every_series_of_a_chart(twins: Path) -> None:
    app = fake_app(twins)
    async with app.run_test(size=(160, 45)) as pilot:
        await loaded(pilot, runs=2)
        screen = await open_run(pilot, "b/train")
        board = screen.query_one(ChartBoard)
        await pilot.press("c")
        await wait_for(pilot, lambda: all(c.cursor_x == STEPS - 1 for c in board.charts))
        await pilot.press("home", *["greater_than_sign"] * 6)  # pages of a tenth: step 60
        by_title = {c.traces[0].label: c for c in board.charts}
        assert by_title["loss"].cursor_x == NAN_STEP
        assert by_title["loss"].readout().plain == f"step {NAN_STEP}  ● loss NaN"
        assert by_title["acc"].readout().plain == f"step {NAN_STEP}  ● acc 0.6"
        # Home and end scroll the grid again once the cursor is hidden.
        await pilot.press("c")
        assert all(c.cursor_x is None for c in board.charts)
        assert not board.check_action("cursor_jump", (1,))


async def test_run_view_smoothing_and_x_axis_survive_a_restart(
    twins: Path, state_home: Path
) -> None:
    app = fake_app(twins)
    async with app.run_test(size=(160, 45)) as pilot:
        await loaded(pilot, runs=2)
        screen = await open_run(pilot, "a/train")
        board = screen.query_one(ChartBoard)
        await pilot.press("plus", "plus", "x")  # 0.8, wall time
        assert (board.smoothing, board.x_axis) == (0.8, "time")
        assert (app.view.chart_smoothing, app.view.x_axis) == (0.8, "time")
        # The next run view starts with them.
        await pilot.press("escape")
        await wait_for(pilot, lambda: isinstance(app.screen, RunsScreen))
        other = (await open_run(pilot, "b/train")).query_one(ChartBoard)
        assert (other.smoothing, other.x_axis) == (0.8, "time")
        assert all(c.clock_x and c.smoothing == 0.8 for c in other.charts)
    assert list((state_home / "tracktui" / "views").glob("*.json"))

    again = fake_app(twins)
    async with again.run_test(size=(160, 45)) as pilot:
        await loaded(pilot, runs=2)
        board = (await open_run(pilot, "a/train")).query_one(ChartBoard)
        assert (board.smoothing, board.x_axis) == (0.8, "time")
        assert all(c.clock_x and c.smoothing == 0.8 for c in board.charts)
        await pilot.press("minus", "x")  # 0.6, time since start
        assert (again.view.chart_smoothing, again.view.x_axis) == (0.6, "relative")
        await pilot.press("escape")
        await wait_for(pilot, lambda: isinstance(again.screen, RunsScreen))
        await pilot.press("a", "c")  # compare takes them too
        await wait_for(pilot, lambda: isinstance(again.screen, CompareScreen))
        compare = again.screen
        assert isinstance(compare, CompareScreen)
        assert (compare.smoothing, compare.x_axis) == (0.6, "relative")


async def test_strip_and_compare_name_twins_as_the_table_does(twins: Path) -> None:
    app = fake_app(twins)
    async with app.run_test(size=(160, 45)) as pilot:
        await loaded(pilot, runs=2)
        screen = app.screen
        assert isinstance(screen, RunsScreen)
        assert sorted(screen.names.values()) == ["a/train", "b/train"]
        await pilot.press("a")
        strip = screen.query_one(ChartStrip)
        await wait_for(pilot, lambda: len(strip.keys) == 2)
        legend = strip.render()
        assert not isinstance(legend, str)
        first_line = str(legend).partition("\n")[0]
        assert "a/train" in first_line and "b/train" in first_line
        await pilot.press("c")
        await wait_for(pilot, lambda: isinstance(app.screen, CompareScreen))
        compare = app.screen
        header = str(compare.query_one("#legend", Static).content)
        assert "a/train" in header and "b/train" in header


def test_readout_against_a_metric_axis_reads_the_nearest_x_below() -> None:
    # Against another metric (lr, say), x goes back and forth and repeats.
    chart = MetricChart()
    chart.set_traces([Trace("loss", [0.3, 0.1, 0.2, 0.1, 0.5], [3.0, 1.0, 2.0, 1.5, math.inf])])
    assert chart.extent() == (0.1, 0.5)
    assert (chart.point_after(0.1), chart.point_before(0.1)) == (0.2, None)
    chart.cursor_x = 0.25
    (reading,) = chart.readings()
    assert (reading.x, reading.value) == (0.2, 2.0)
    chart.cursor_x = 0.1  # the later of the two records at 0.1
    assert chart.readings()[0].value == 1.5
    chart.cursor_x = 0.5
    assert chart.readout(80).plain == "step 0.5  ● loss inf"
    chart.cursor_x = 0.05
    assert chart.readout(80).plain == "step 0.05  ● loss —"


async def test_help_in_the_run_view_lists_the_chart_keys(twins: Path) -> None:
    """The focused chart grid sits in the chart board: help lists the board's keys too."""
    from tui.app.screens.help import HelpScreen, bindings_of

    app = fake_app(twins)
    async with app.run_test(size=(160, 45)) as pilot:
        await loaded(pilot, runs=2)
        screen = await open_run(pilot, "a/train")
        listed = {b.key: b.description for _, b in bindings_of(screen)}
        assert listed["c"] == "Cursor" and listed["x"] == "X-axis"
        await pilot.press("question_mark")
        await wait_for(pilot, lambda: isinstance(app.screen, HelpScreen))
