"""Chart widgets mounted in a small app: what they draw for real, odd and hostile input."""

from __future__ import annotations

import math

import numpy as np
import pytest
from rich.color import Color
from rich.text import Text
from textual.app import App, ComposeResult
from textual.widget import Widget

from tui.app.widgets.confusion_heatmap import MAX_CLASSES, SHADES, ConfusionHeatmap
from tui.app.widgets.metric_chart import MetricChart
from tui.app.widgets.parallel_coordinates import ParallelCoordinates
from tui.app.widgets.plot_colors import color_for, rich_color
from tui.app.widgets.plot_titles import fit_title
from tui.app.widgets.sweep_scatter import SweepScatter
from tui.app.widgets.trace import Trace
from tui.core.shapes import Matrix, as_matrix
from tui.core.sweep import SweepPoint, axis_for, best_indices

HOSTILE = "[@click=app.quit]"


class Host(App[None]):
    """Mounts one widget filling the screen."""

    def __init__(self, widget: Widget) -> None:
        super().__init__()
        self.widget = widget

    def compose(self) -> ComposeResult:
        yield self.widget


def plain(widget: Widget) -> str:
    rendered = widget.render()
    assert isinstance(rendered, Text)
    return rendered.plain


def screen_lines(widget: ConfusionHeatmap) -> list[str]:
    return [widget.render_line(y).text for y in range(widget.size.height)]


# MetricChart


async def test_chart_shows_a_message_without_data() -> None:
    chart = MetricChart()
    async with Host(chart).run_test(size=(100, 30)) as pilot:
        await pilot.pause()
        assert "no data yet" in plain(chart)
        chart.set_traces([Trace("loss", [], [])])
        await pilot.pause()
        assert "no data yet" in plain(chart)


async def test_chart_names_the_first_nonfinite_step_and_keeps_labels_literal() -> None:
    x = np.arange(5000, dtype=float)
    y = np.exp(-x / 1000)
    y[1200] = np.nan
    y[3000:] = np.inf
    chart = MetricChart()
    async with Host(chart).run_test(size=(100, 30)) as pilot:
        chart.set_traces([Trace(f"loss {HOSTILE} [red]x[/red]", x, y, color_for(0))])
        chart.title = "loss"
        await pilot.pause()
        drawn = plain(chart)
        assert "loss · NaN from step 1200" in drawn
        assert chart.shown_title == "loss · NaN from step 1200"
        assert HOSTILE in drawn and "[red]x[/red]" in drawn
        # NaN markers sit on the top edge; the +inf run from 3000 shows as ^ markers.
        assert "^" in drawn
        assert pilot.app.is_running


async def test_chart_smoothing_draws_raw_faint_under_the_average() -> None:
    rng = np.random.default_rng(0)
    x = np.arange(20_000, dtype=float)
    chart = MetricChart([Trace("loss", x, rng.normal(size=x.size).cumsum(), "orange+")])
    async with Host(chart).run_test(size=(100, 30)) as pilot:
        chart.smoothing = 0.9
        await pilot.pause()
        rendered = chart.render()
        assert isinstance(rendered, Text)
        styles = [span.style for span in rendered.spans if not isinstance(span.style, str)]
        assert any(s.dim and s.color is not None and s.color.number == 11 for s in styles)
        assert any(not s.dim and s.color is not None and s.color.number == 11 for s in styles)
        chart.smoothing = 5.0
        assert chart.smoothing == 0.999


async def test_chart_right_axis_and_log_scale() -> None:
    x = np.arange(1, 1001, dtype=float)
    chart = MetricChart()
    async with Host(chart).run_test(size=(100, 30)) as pilot:
        chart.set_traces(
            [
                Trace("loss", x, 1000 / x - 1.5, color_for(0)),
                Trace("lr", x, np.linspace(1e-3, 1e-5, x.size), color_for(1), axis="right"),
            ]
        )
        chart.log_y = True
        await pilot.pause()
        drawn = plain(chart)
        assert "334 values <= 0 hidden" in chart.shown_title  # 1000/x - 1.5 <= 0 from x = 667
        assert "loss" in drawn and "lr" in drawn


async def test_chart_never_raises_on_odd_input() -> None:
    chart = MetricChart()
    cases = [
        ([Trace("one", [1], [2.0])], None),
        ([Trace("all nan", [1, 2, 3], [math.nan] * 3)], "NaN from step 1"),
        ([Trace("flat", [1, 2, 3], [2.0, 2.0, 2.0])], None),
        ([Trace("same x", [5, 5, 5], [1.0, 2.0, 3.0])], None),
        ([Trace("short y", [1, 2, 3], [1.0])], None),
        ([Trace("huge", [1, 2], [1e308, -1e308])], None),
        ([Trace("junk", "abc", None)], "no data yet"),  # type: ignore[arg-type]
        ([Trace("bad colour", [1, 2], [1.0, 2.0], color="chartreuse")], None),
    ]
    async with Host(chart).run_test(size=(100, 30)) as pilot:
        for traces, expected in cases:
            chart.set_traces(traces)
            await pilot.pause()
            drawn = plain(chart)
            if expected:
                assert expected in drawn
        chart.log_y = True
        chart.set_traces([Trace("negative", [1, 2, 3], [-1.0, 0.0, -3.0])])
        await pilot.pause()
        assert "no positive values" in plain(chart)
        assert pilot.app.is_running


async def test_chart_reduces_a_million_points() -> None:
    x = np.arange(1_000_000, dtype=float)
    y = np.sin(x / 5000)
    y[123_456] = 50.0
    chart = MetricChart([Trace("big", x, y)])
    async with Host(chart).run_test(size=(120, 30)) as pilot:
        chart.show_legend = False  # no legend headroom: the top tick is the data's maximum
        await pilot.pause()
        # The one spike survived the reduction: an outlier, marked on the edge...
        assert "1 beyond range" in plain(chart) and chart.clipped == 1
        chart.full_range = True
        await pilot.pause()
        # ...and in the full range it sets the top of the y-axis.
        assert "50┤" in plain(chart)


def test_fit_title_keeps_the_metric_then_the_note() -> None:
    parts = ["val_loss", "resnet-lr0.8: NaN from step 96", "3 values <= 0 hidden"]
    assert (
        fit_title(parts, 80) == "val_loss · resnet-lr0.8: NaN from step 96 · 3 values <= 0 hidden"
    )
    assert fit_title(parts, 45) == "val_loss · resnet-lr0.8: NaN from step 96 …"
    assert fit_title(parts, 30) == "val_loss · resnet-lr0.8: NaN…"
    assert fit_title(parts, 14) == "val_loss …"
    assert fit_title(parts, 6) == "val_l…"
    assert fit_title(["", "  ", "note"], 20) == "note"
    assert fit_title(parts, 0) == ""
    for width in range(1, 90):
        fitted = fit_title(parts, width)
        assert len(fitted) <= width and fitted.startswith(fit_title(parts[:1], width))


def test_rich_color_matches_plotext_colours() -> None:
    assert rich_color("cyan+") == Color.from_ansi(14)
    assert rich_color("orange+") == Color.from_ansi(11)
    assert rich_color(200) == Color.from_ansi(200)
    assert rich_color((10, 20, 30)) == Color.from_rgb(10, 20, 30)
    for odd in ("chartreuse", 300, True, (1, 2)):
        assert rich_color(odd).is_default  # type: ignore[arg-type]


async def test_chart_cuts_a_long_title_to_its_width() -> None:
    x = np.arange(200, dtype=float)
    bad = np.exp(-x / 50)
    bad[96:] = np.nan
    traces = [Trace("resnet-lr0.01", x, np.exp(-x / 80)), Trace("resnet-lr0.8", x, bad)]
    full = "val_loss · resnet-lr0.8: NaN from step 96"
    chart = MetricChart(traces)
    chart.title = "val_loss"
    chart.show_legend = False
    # 43 columns: the title fits the row but not the plot area, where plotext centres it
    # (and which it left it out of before).
    async with Host(chart).run_test(size=(43, 16)) as pilot:
        await pilot.pause()
        rendered = chart.render()
        assert isinstance(rendered, Text)
        top = rendered.plain.splitlines()[0]
        assert top.strip() == full
        assert chart.shown_title == full
        # Written in the colour of the axis labels, like a title plotext draws.
        start = top.index("val_loss")
        assert any(
            span.start <= start < span.end and getattr(span.style, "color", None) is not None
            for span in rendered.spans
        )
    chart = MetricChart(traces)
    chart.title = "val_loss"
    async with Host(chart).run_test(size=(34, 16)) as pilot:
        await pilot.pause()
        # The run's name gives way before the step does, then goes.
        assert plain(chart).splitlines()[0].strip() == "val_loss · resn…: NaN from step 96"
        assert chart.shown_title == full
        await pilot.resize_terminal(30, 16)
        await pilot.pause()
        assert plain(chart).splitlines()[0].strip() == "val_loss · NaN from step 96"
        chart.title = "a_very_long_metric_name_wider_than_the_chart"
        await pilot.pause()
        assert plain(chart).splitlines()[0] == "a_very_long_metric_name_wider…"


# ConfusionHeatmap


async def test_heatmap_shows_counts_labels_and_percentages() -> None:
    matrix = as_matrix(
        {"categories": ["cat", "dog", HOSTILE], "values": [[50, 3, 0], [2, 40, 8], [1, 0, 7]]}
    )
    heatmap = ConfusionHeatmap(matrix)
    async with Host(heatmap).run_test(size=(100, 30)) as pilot:
        heatmap.caption = "step 3 of 12"
        await pilot.pause()
        lines = screen_lines(heatmap)
        assert lines[0].startswith("step 3 of 12")
        row = {line.split()[0]: line.split()[1:] for line in lines[3:6]}
        # Shades by share of the largest cell (50): 40 -> 80% █, 8 -> 16% ░; zero has none.
        assert row["cat"] == ["█", "50", "░", "3", "0"]
        assert row["dog"] == ["░", "2", "█", "40", "░", "8"]
        assert lines[5].startswith(HOSTILE)
        assert any(line.startswith("scale") and "largest cell (50)" in line for line in lines)
        assert not any("FP" in line for line in lines)

        heatmap.normalized = True
        await pilot.pause()
        lines = screen_lines(heatmap)
        assert "% of row" in lines[1]
        assert "94%" in lines[3] and "5.7%" in lines[3]
        assert "80%" in lines[4] and "16%" in lines[4]
        assert pilot.app.is_running


async def test_heatmap_sets_fp_fn_row_and_column_apart() -> None:
    values = [[5, 1, 2], [0, 7, 1], [3, 2, 0]]
    matrix = as_matrix({"categories": ["car", "bus"], "values": values})
    assert matrix is not None and matrix.fp_fn
    heatmap = ConfusionHeatmap(matrix)
    async with Host(heatmap).run_test(size=(100, 30)) as pilot:
        await pilot.pause()
        lines = screen_lines(heatmap)
        header = lines[1]
        assert header.split() == ["car", "bus", "│", "FN"]
        # Shades by share of the largest cell (7): 5 -> 71% ▓, 1 -> 14% ░, 2 and 3 -> ▒.
        assert lines[2].split() == ["car", "▓", "5", "░", "1", "│▒", "2"]
        assert set(lines[4].strip()) == {"─"}
        assert lines[5].split() == ["FP", "▒", "3", "▒", "2", "│", "0"]


async def test_heatmap_reads_without_colour_and_scrolls_big_matrices() -> None:
    n = MAX_CLASSES + 5
    labels = tuple(f"class-{i}" for i in range(n))
    values = tuple(tuple(float(100 if r == c else r + c) for c in range(n)) for r in range(n))
    heatmap = ConfusionHeatmap(Matrix(labels, labels, values))
    async with Host(heatmap).run_test(size=(80, 24)) as pilot:
        await pilot.pause()
        text = "\n".join(heatmap.lines())
        assert f"showing {MAX_CLASSES} of {n} rows" in text
        assert all(shade in text for shade in SHADES)
        first_row = screen_lines(heatmap)[2]
        assert first_row.startswith("class-0 ")
        heatmap.scroll_to(x=30, y=10, animate=False)
        await pilot.pause()
        lines = screen_lines(heatmap)
        # The column header and row labels stay; the cells and rows move.
        assert lines[2].startswith("class-10 ")
        assert lines[1].startswith(" " * 9)


async def test_heatmap_without_a_matrix_and_with_odd_values() -> None:
    heatmap = ConfusionHeatmap()
    async with Host(heatmap).run_test(size=(80, 24)) as pilot:
        await pilot.pause()
        assert "no confusion matrix" in screen_lines(heatmap)[0]
        heatmap.matrix = Matrix(("a", "b"), ("a", "b"), ((math.nan, 1.0), (2.5e6, 0.0)))
        await pilot.pause()
        text = "\n".join(screen_lines(heatmap))
        assert "nan" in text and "2.5M" in text
        heatmap.matrix = Matrix(("a",), ("a", "b"), ((1.0,),))
        await pilot.pause()
        assert pilot.app.is_running


# Sweep plots


def sweep() -> list[SweepPoint]:
    return [
        SweepPoint("r-a", {"lr": 1e-5, "opt": "adam", "seed": 1}, 0.9),
        SweepPoint("r-b", {"lr": 1e-4, "opt": "sgd", "seed": 1}, 0.5),
        SweepPoint("r-c", {"lr": 1e-3, "opt": "adam", "seed": 1}, 0.2),
        SweepPoint(HOSTILE, {"lr": 1e-2, "opt": "rms", "seed": 1}, 0.1),
        SweepPoint("r-e", {"lr": 1e-1, "opt": "sgd", "seed": 1}, 0.7),
    ]


def canvas(drawn: str) -> str:
    """The plot area of a plotext drawing: the lines between the frame's top and bottom."""
    lines = drawn.splitlines()
    top = next(i for i, line in enumerate(lines) if "┌" in line)
    bottom = next(i for i, line in enumerate(lines) if "└" in line)
    return "\n".join(lines[top + 1 : bottom])


async def test_sweep_scatter_plots_one_point_per_run() -> None:
    scatter = SweepScatter()
    async with Host(scatter).run_test(size=(100, 30)) as pilot:
        scatter.set_points(sweep())
        scatter.param = "lr"
        scatter.metric = "val_loss"
        scatter.top_k = 0
        await pilot.pause()
        drawn = plain(scatter)
        assert scatter.plotted == 5
        assert canvas(drawn).count("•") == 5
        assert "lr (log)" in drawn
        assert "val_loss vs lr" in drawn


async def test_sweep_scatter_highlights_best_and_marks_nan() -> None:
    points = [*sweep(), SweepPoint("diverged", {"lr": 3e-3, "opt": "sgd"}, math.nan)]
    points.append(SweepPoint("no-lr", {"opt": "sgd"}, 0.3))
    scatter = SweepScatter()
    async with Host(scatter).run_test(size=(100, 30)) as pilot:
        scatter.set_points(points)
        scatter.param = "opt"
        scatter.top_k = 2
        await pilot.pause()
        drawn = plain(scatter)
        assert scatter.plotted == 7
        assert canvas(drawn).count("•") == 4
        # The best run comes first in the legend, its label shown literally.
        assert drawn.index(f"{HOSTILE} 0.1") < drawn.index("r-c 0.2")
        assert "1 NaN" in scatter.shown_title
        for category in ("adam", "rms", "sgd"):
            assert category in drawn
        scatter.param = "lr"
        await pilot.pause()
        assert "1 run without lr" in scatter.shown_title
        assert pilot.app.is_running


def rows_of(drawn: str, marker: str) -> set[int]:
    return {i for i, line in enumerate(canvas(drawn).splitlines()) if marker in line}


async def test_sweep_scatter_puts_nan_at_the_worse_end_and_can_hide_its_legend() -> None:
    points = [*sweep(), SweepPoint("diverged", {"lr": 3e-3}, math.nan)]
    points.append(SweepPoint("exploded", {"lr": 3e-5}, math.inf))
    scatter = SweepScatter()
    async with Host(scatter).run_test(size=(80, 24)) as pilot:
        scatter.set_points(points)
        scatter.param = "lr"
        scatter.top_k = 2
        await pilot.pause()
        drawn = plain(scatter)
        assert scatter.plotted == 7
        # Lower is better: the best runs lie at the bottom, the NaN row above every run
        # and below the legend (whose entries start with their marker twice).
        nan_rows = rows_of(drawn.replace("xx NaN", ""), "x")
        run_rows = rows_of(drawn, "•") | rows_of(drawn.replace("◆◆", ""), "◆")
        assert len(nan_rows) == 1 and max(nan_rows) < min(run_rows)
        assert max(rows_of(drawn, "◆◆") | rows_of(drawn, "xx NaN")) < min(nan_rows)
        assert f"{HOSTILE} 0.1" in drawn and "xx NaN" in drawn

        scatter.mode = "max"
        await pilot.pause()
        drawn = plain(scatter)
        nan_rows = rows_of(drawn.replace("xx NaN", ""), "x")
        run_rows = rows_of(drawn, "•") | rows_of(drawn.replace("◆◆", ""), "◆")
        assert len(nan_rows) == 1 and min(nan_rows) > max(run_rows)

        scatter.show_legend = False
        await pilot.pause()
        drawn = plain(scatter)
        assert "r-a" not in drawn and "NaN" not in canvas(drawn)
        assert canvas(drawn).count("◆") == 2 and canvas(drawn).count("x") == 2
        assert "2 NaN" in drawn.splitlines()[0]


async def test_sweep_scatter_leaves_the_legend_to_a_ranking_that_names_its_best_runs() -> None:
    points = [*sweep(), SweepPoint("diverged", {"lr": 3e-3, "opt": "sgd"}, math.nan)]
    points.append(SweepPoint("no-lr", {"opt": "sgd"}, 0.05))  # the best run overall
    scatter = SweepScatter()
    async with Host(scatter).run_test(size=(80, 24)) as pilot:
        scatter.set_points(points)
        scatter.top_k = 2
        scatter.param = "opt"
        await pilot.pause()
        best = tuple(scatter.highlighted)
        assert best == ("no-lr", HOSTILE)
        # Named beside the plot, in the same colours: the plot draws no legend.
        scatter.named_best = best
        await pilot.pause()
        drawn = plain(scatter)
        assert "◆◆" not in drawn and "xx NaN" not in drawn and HOSTILE not in drawn
        assert canvas(drawn).count("◆") == 2 and "1 NaN" in scatter.shown_title
        # A plot of lr lacks the best run ("no-lr" has no lr): its own best differ from
        # the ones named, so it names them itself.
        scatter.param = "lr"
        await pilot.pause()
        drawn = plain(scatter)
        assert tuple(scatter.highlighted) == (HOSTILE, "r-c")
        assert f"{HOSTILE} 0.1" in drawn and "xx NaN" in drawn


async def test_sweep_titles_fit_narrow_plots() -> None:
    points = [*sweep(), SweepPoint("diverged", {"lr": 3e-3, "opt": "sgd"}, math.nan)]
    points.append(SweepPoint("no-lr", {"opt": "sgd"}, 0.3))
    scatter = SweepScatter()
    async with Host(scatter).run_test(size=(36, 16)) as pilot:
        scatter.set_points(points)
        scatter.param = "lr"
        scatter.metric = "validation_loss_ema"
        await pilot.pause()
        # The NaN count comes right after the metric; a trailing … says more was left out.
        assert plain(scatter).splitlines()[0].strip() == "validation_loss_ema vs lr · 1 NaN …"
        assert scatter.shown_title == (
            "validation_loss_ema vs lr · 1 NaN · best 3 (min) · 1 run without lr"
        )
    plot = ParallelCoordinates()
    async with Host(plot).run_test(size=(40, 16)) as pilot:
        plot.set_points(points)
        plot.metric = "val_loss"
        await pilot.pause()
        assert plain(plot).splitlines()[0] == "val_loss · 1 NaN left out · 5 runs …"


async def test_sweep_scatter_messages() -> None:
    scatter = SweepScatter()
    async with Host(scatter).run_test(size=(100, 30)) as pilot:
        await pilot.pause()
        assert "no runs to plot" in plain(scatter)
        scatter.set_points(sweep())
        await pilot.pause()
        assert "choose a hyperparameter" in plain(scatter)
        scatter.param = "missing"
        await pilot.pause()
        assert "no run has missing" in plain(scatter)


async def test_parallel_coordinates_axes_and_best_runs() -> None:
    points = [*sweep(), SweepPoint("diverged", {"lr": 3e-3, "opt": "sgd"}, math.nan)]
    plot = ParallelCoordinates()
    async with Host(plot).run_test(size=(100, 30)) as pilot:
        plot.set_points(points)
        plot.metric = "val_loss"
        plot.top_k = 2
        await pilot.pause()
        lines = plain(plot).splitlines()
        assert plot.plotted == 5
        assert "1 NaN left out" in lines[0]
        # seed does not vary, so it gets no axis; the metric is the last axis.
        assert lines[-2].split() == ["lr", "(log)", "opt", "val_loss"]
        assert lines[-1].startswith(f"◆ {HOSTILE} 0.1  ◆ r-c 0.2")
        assert lines[1].split() == ["0.1", "sgd", "0.9"]
        assert lines[-3].split() == ["1e-05", "adam", "0.1"]
        # The inner category is named beside its axis, halfway up.
        assert any("rms" in line for line in lines[2:-3])
        assert any("│" in line for line in lines[2:-3])
        assert any(ch in line for line in lines for ch in "⠁⠂⠄⡀⣀⠉")


async def test_parallel_coordinates_small_and_empty() -> None:
    plot = ParallelCoordinates()
    async with Host(plot).run_test(size=(100, 30)) as pilot:
        await pilot.pause()
        assert "no runs to plot" in plain(plot)
        plot.set_points([SweepPoint("only", {}, 1.0)])
        await pilot.pause()
        assert plot.plotted == 1
    async with Host(ParallelCoordinates()).run_test(size=(15, 6)) as pilot:
        widget = pilot.app.query_one(ParallelCoordinates)
        widget.set_points(sweep())
        await pilot.pause()
        assert "too small" in plain(widget)


def test_axis_mapping() -> None:
    log = axis_for("lr", [1e-5, 1e-3, 1e-1])
    assert log.kind == "log"
    assert log.unit.tolist() == [0.0, 0.5, 1.0]
    linear = axis_for("bs", [32, 64, 128])
    assert linear.kind == "linear"
    categorical = axis_for("opt", ["sgd", 1, "adam", True, 1])
    assert categorical.kind == "categorical"
    assert categorical.categories == ("1", "True", "adam", "sgd")
    assert best_indices([0.5, math.nan, 0.1, 0.9], 2, "min") == [2, 0]
    assert best_indices([0.5, math.nan, 0.1, 0.9], 2, "max") == [3, 0]


class Gallery(App[None]):
    """All chart widgets on one screen, as a view would stack them."""

    def compose(self) -> ComposeResult:
        yield MetricChart([Trace("loss", [0, 1, 2, 3], [1.0, math.nan, 0.5, 0.25])], id="chart")
        yield ConfusionHeatmap(as_matrix([[3, 1], [0, 4]]), id="heatmap")
        yield SweepScatter(id="scatter")
        yield ParallelCoordinates(id="parallel")

    def on_mount(self) -> None:
        self.query_one(MetricChart).smoothing = 0.5
        self.query_one(SweepScatter).param = "lr"
        self.query_one(SweepScatter).set_points(sweep())
        self.query_one(ParallelCoordinates).set_points(sweep())


async def test_widgets_draw_under_no_color(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("NO_COLOR", "1")
    app = Gallery()
    async with app.run_test(size=(100, 80)) as pilot:
        await pilot.pause()
        assert app.no_color
        # Exporting renders every widget through Textual's monochrome filter.
        assert "svg" in app.export_screenshot()
        # Shades, markers and notes carry the meaning that colour would.
        assert "▓" in "".join(app.query_one(ConfusionHeatmap).lines())
        assert "NaN from step 1" in plain(app.query_one(MetricChart))
        assert "◆" in plain(app.query_one(SweepScatter))
        assert "◆" in plain(app.query_one(ParallelCoordinates))


async def test_escape_sequences_in_run_strings_never_reach_the_screen() -> None:
    evil = "run\x1b[2J\x1b]0;pwned\x07-x"
    app = Gallery()
    async with app.run_test(size=(100, 80)) as pilot:
        app.query_one(MetricChart).set_traces([Trace(evil, [0, 1], [1.0, 2.0])])
        app.query_one(MetricChart).title = evil
        heatmap = app.query_one(ConfusionHeatmap)
        heatmap.matrix = Matrix((evil, "b"), (evil, "b"), ((1.0, 2.0), (3.0, 4.0)))
        heatmap.caption = evil
        points = [SweepPoint(evil, {evil: 1.0, "lr": 0.1}, 1.0), SweepPoint("b", {evil: 2.0}, 0.5)]
        app.query_one(SweepScatter).set_points(points)
        app.query_one(SweepScatter).param = evil
        app.query_one(ParallelCoordinates).set_points(points)
        await pilot.pause()
        drawn = [plain(app.query_one(kind)) for kind in (MetricChart, SweepScatter)]
        drawn.append(plain(app.query_one(ParallelCoordinates)))
        drawn.append("\n".join(heatmap.lines()))
        for text in drawn:
            assert "\x1b" not in text and "\x07" not in text
            assert "run" in text
