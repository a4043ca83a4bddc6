"""The face of tracktui (issue 12): the chart strip, charts that survive divergence, the run
palette, the table that scales, persisted views, export, the demo."""

from __future__ import annotations

import math
from pathlib import Path

from conftest import wait_for, wait_loaded, write_run
from rich.color import Color

from tui.app.app import TrackApp
from tui.app.screens.runs import RunsScreen
from tui.app.widgets import palette
from tui.app.widgets.axis_ticks import MAX_LABEL, log_ticks, nice_ticks, short_number
from tui.app.widgets.chart_strip import ChartStrip
from tui.app.widgets.metric_chart import MetricChart
from tui.app.widgets.plot_colors import NONFINITE_COLOR, PALETTE, PALETTE_16, rich_color
from tui.core.reduce import robust_range


# Colours ------------------------------------------------------------------------------------
def test_run_palette_is_distinct_and_never_the_nonfinite_red() -> None:
    nan = rich_color(NONFINITE_COLOR)
    for colors in (PALETTE, PALETTE_16):
        richs = [rich_color(c) for c in colors[:8]]
        assert len(set(richs)) == 8
        assert nan not in richs
    assert nan == palette.NONFINITE_RICH
    # A 16-colour terminal gets the ANSI stand-ins, still 8 distinct and none of them red.
    ansi = {Color.parse(name).number for name in palette.RUN_ANSI}
    assert len(ansi) == 8 and not ansi & {1, 9}


def test_run_colour_follows_the_terminal() -> None:
    try:
        palette.use_sixteen_colors("standard")
        assert palette.run_rich(0) == Color.parse("bright_cyan")
        palette.use_sixteen_colors("truecolor")
        assert palette.run_rich(0) == Color.from_rgb(*palette.RUN_RGB[0])
    finally:
        palette.use_sixteen_colors("truecolor")


# The chart strip ----------------------------------------------------------------------------
async def test_chart_strip_follows_cursor_and_marks(exploding: Path) -> None:
    app = TrackApp(exploding, watch="poll")
    async with app.run_test(size=(140, 40)) as pilot:
        await wait_loaded(pilot, 4)
        screen = app.screen
        assert isinstance(screen, RunsScreen)
        strip = screen.query_one(ChartStrip)
        table = screen.table
        await wait_for(pilot, lambda: strip.keys == {table.current_key})
        assert strip.metrics == ("loss",)
        first = table.current_key
        await pilot.press("space")  # marks the first run, the cursor moves on
        await wait_for(pilot, lambda: len(strip.keys) == 2)
        assert first in strip.keys and table.current_key in strip.keys
        # Colours stay with the runs: distinct, and each run's own.
        await wait_for(pilot, lambda: bool(strip.ranges))
        await pilot.press("v")
        assert not strip.display
        await pilot.press("v")
        assert strip.display


async def test_exploding_run_does_not_flatten_the_strip(exploding: Path) -> None:
    app = TrackApp(exploding, watch="poll")
    async with app.run_test(size=(140, 40)) as pilot:
        await wait_loaded(pilot, 4)
        screen = app.screen
        assert isinstance(screen, RunsScreen)
        await pilot.press("a")  # every run marked: the exploding one is overlaid too
        strip = screen.query_one(ChartStrip)
        await wait_for(pilot, lambda: len(strip.keys) == 4 and "loss" in strip.ranges)
        low, high = strip.ranges["loss"]
        assert 2.2 <= high < 3 and low < 0.2  # the healthy runs' range (to 2.2), not 3.8e24
        assert strip.clipped["loss"] > 0


# Axes ---------------------------------------------------------------------------------------
def test_tick_labels_stay_short() -> None:
    for value in (0.5, 0.031, 1e-5, 123.456, 1234.5, 12_345_678, 3.8e24, -3.8e-124, -12_345):
        assert len(short_number(value)) <= MAX_LABEL, value
    assert short_number(3.8e24) == "3.8e24"
    assert short_number(1234.5) == "1.23k"
    assert nice_ticks(0.0, 1.0) == [0.0, 0.25, 0.5, 0.75, 1.0] or 0.5 in nice_ticks(0.0, 1.0)
    assert 0.0 not in [10**e for e in log_ticks(-2.0, 24.6)]


def test_robust_range_ignores_an_explosion() -> None:
    healthy = [1.0 / (1 + i) for i in range(100)]
    exploded = healthy + [10.0 ** (i / 2) for i in range(8)] + [3.8e24]
    lo, hi = robust_range(exploded) or (math.nan, math.nan)
    assert hi < 100.0 and lo <= min(healthy)
    # Nothing to ignore: the full range.
    assert robust_range(healthy) == (min(healthy), max(healthy))
    assert robust_range([math.nan]) is None
    # A curve 2 -> 0.01 that then explodes: the range ends where the explosion starts.
    curve = [2.0 / (1 + s) for s in range(190)]
    assert robust_range(curve + [10.0**k for k in range(15, 25)]) == (min(curve), max(curve))


async def test_exploding_run_does_not_flatten_the_compare_charts(exploding: Path) -> None:
    app = TrackApp(exploding, watch="poll")
    async with app.run_test(size=(140, 40)) as pilot:
        await wait_loaded(pilot, 4)
        await pilot.press("a", "c")
        await wait_for(pilot, lambda: bool(app.screen.query(MetricChart)))
        chart = app.screen.query_one(MetricChart)
        await wait_for(pilot, lambda: "left" in chart.y_ranges)
        low, high = chart.y_ranges["left"]
        assert 2.2 <= high < 3 and low < 0.2  # the healthy runs' range (to 2.2), not 3.8e24
        assert chart.clipped > 0 and "beyond range" in chart.shown_title
        assert chart.tick_labels and all(len(t) <= MAX_LABEL for t in chart.tick_labels)
        await pilot.press("l")  # log-y: short labels, no 0 tick
        await wait_for(pilot, lambda: chart.log_y)
        chart.render()
        assert "0" not in chart.tick_labels
        assert all(len(t) <= MAX_LABEL for t in chart.tick_labels)
        await pilot.press("f")  # the full range, explosion included
        await wait_for(pilot, lambda: chart.full_range)
        chart.render()
        assert chart.y_ranges["left"][1] > 1e20


async def test_smoothed_last_keeps_nan_visible(tmp_path: Path) -> None:
    root = tmp_path / "root"
    write_run(root, "nan-run", [1.0, 0.9, 0.8, math.nan])
    app = TrackApp(root, watch="poll")
    async with app.run_test(size=(140, 40)) as pilot:
        await wait_loaded(pilot, 1)
        screen = app.screen
        assert isinstance(screen, RunsScreen)
        await pilot.press("tilde")
        await wait_for(pilot, lambda: screen.smoothing > 0)
        key = next(iter(app.store.runs))
        cell = lambda: screen.table.get_cell(key, "metric:last:loss").plain.lower()  # noqa: E731
        await wait_for(pilot, lambda: "nan" in cell())


# Fixes --------------------------------------------------------------------------------------
async def test_confusion_row_percent_is_of_the_true_row_total() -> None:
    from textual.app import App, ComposeResult

    from tui.app.widgets.confusion_heatmap import ConfusionHeatmap
    from tui.core.shapes import Matrix

    # cat: 48 right, 2 taken for a dog, 2 missed (FN); the FP row and FN column are margins.
    matrix = Matrix(
        ("cat", "dog", "FP"),
        ("cat", "dog", "FN"),
        ((48.0, 2.0, 2.0), (3.0, 40.0, 1.0), (5.0, 4.0, 0.0)),
        fp_fn=True,
    )
    heatmap = ConfusionHeatmap(matrix)

    class Host(App[None]):
        def compose(self) -> ComposeResult:
            yield heatmap

    async with Host().run_test(size=(100, 30)) as pilot:
        heatmap.normalized = True
        await pilot.pause()
        text = "\n".join(heatmap.lines())
        rows = text.splitlines()
        cat = next(line for line in rows if line.lstrip().startswith("cat") and "%" in line)
        assert "96%" in cat and "92%" not in cat
        assert cat.rstrip().endswith("2")  # the FN margin keeps its count
