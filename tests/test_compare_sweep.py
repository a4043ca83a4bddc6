"""The compare and sweep screens, piloted on the thread-free fake engine: what the user sees
after marking runs or pressing w, and how appends move it."""

from __future__ import annotations

import json
import math
import shutil
from pathlib import Path

import pytest
from conftest import wait_for
from fake_engine import fake_app, loaded
from textual.widgets import DataTable

from tui.app.screens.compare import CompareScreen
from tui.app.screens.sweep import SweepScreen
from tui.app.widgets.chart_options import SMOOTHING_STEPS, axis_label
from tui.app.widgets.run_table import RunTable
from tui.core.shapes import format_number

SIZE = (120, 40)

# The configs of the four runs marked below (MARKED), read from their run.json files by eye:
#                 lr     batch  optimizer model     seed dropout wd      scheduler.name/.warmup
# resnet-lr0.1    0.1    128    sgd       resnet18  1    0.0     0.0005  cosine    10
# resnet-lr0.01   0.01   128    sgd       resnet18  2    0.1     0.0005  cosine    10
# diverged        0.8    128    sgd       resnet18  6    0.0     0.0005  constant  10
# partial         0.1    128    sgd       resnet18  1    0.0     0.0005  cosine    (missing)
DIFFERING = ["dropout", "lr", "scheduler.name", "scheduler.warmup_steps", "seed"]
ALL_KEYS = [
    "batch_size",
    "dropout",
    "lr",
    "model",
    "optimizer",
    "scheduler.name",
    "scheduler.warmup_steps",
    "seed",
    "weight_decay",
]
MARKED = ["partial", "resnet-lr0.01", "resnet-lr0.1", "diverged"]  # in table (name) order


@pytest.fixture
def root(samples: Path) -> Path:
    """The five sweep runs, the diverged run, and a run whose config lacks a key."""
    root = samples / "sweep"
    shutil.move(samples / "diverged", root / "diverged")
    partial = root / "partial"
    partial.mkdir()
    config = json.loads((root / "resnet-lr0.1" / "run.json").read_text())["config"]
    del config["scheduler"]["warmup_steps"]
    (partial / "run.json").write_text(json.dumps({"name": "partial", "config": config}))
    lines = [
        {"step": s, "loss": 2.0 - s / 10, "accuracy": s / 10, "val_loss": 2.5 - s / 10}
        for s in range(5)
    ]
    (partial / "metrics.jsonl").write_text("".join(json.dumps(line) + "\n" for line in lines))
    return root


def history(path: Path, metric: str) -> list[tuple[float, float]]:
    """(step, value) of ``metric`` in a metrics.jsonl, read with the stdlib (NaN allowed)."""
    out = []
    for line in path.read_text().splitlines():
        record = json.loads(line)
        if metric in record:
            out.append((record["step"], float(record[metric])))
    return out


def best_of(path: Path, metric: str) -> tuple[float, float]:
    """The smallest finite value of ``metric`` and the step where it first occurs."""
    finite = [(v, s) for s, v in history(path, metric) if math.isfinite(v)]
    value = min(v for v, _ in finite)
    return value, next(s for v, s in finite if v == value)


async def mark(pilot, keys: list[str]) -> None:
    table = pilot.app.screen.query_one(RunTable)
    for key in keys:
        table.move_cursor(row=table.get_row_index(key))
        await pilot.press("space")


async def open_compare(pilot, keys: list[str], runs: int = 7) -> CompareScreen:
    await loaded(pilot, runs=runs)
    await mark(pilot, keys)
    await pilot.press("c")
    await wait_for(pilot, lambda: isinstance(pilot.app.screen, CompareScreen))
    await pilot.pause()
    return pilot.app.screen


async def test_compare_diff_charts_and_summary(root: Path) -> None:
    app = fake_app(root)
    async with app.run_test(size=SIZE) as pilot:
        screen = await open_compare(pilot, MARKED)
        assert screen.kill_targets() == MARKED

        # Charts: one per metric, one trace per run that has it, each run its own colour.
        # Metrics every run has come first (partial has no val_accuracy).
        assert screen.chart_metrics[:4] == ["val_loss", "accuracy", "loss", "val_accuracy"]
        names = [app.store.runs[k].name for k in MARKED]
        for chart, metric in zip(screen.charts, screen.chart_metrics):
            having = [app.store.runs[k].name for k in MARKED if metric in app.store.runs[k].series]
            assert [t.label for t in chart.traces] == having
            assert len({t.color for t in chart.traces}) == len(chart.traces)
        loss_chart = screen.charts[screen.chart_metrics.index("loss")]
        assert [t.label for t in loss_chart.traces] == names
        legend = screen.query_one("#legend").render()
        assert all(name in str(legend) for name in names)
        await pilot.press("x", "l", "plus")
        assert loss_chart.x_label == axis_label(screen.x_axes()[1])
        assert all(c.log_y and c.smoothing == SMOOTHING_STEPS[1] for c in screen.charts)

        # Config diff: exactly the keys that differ; a missing key shows as a dash.
        await pilot.press("2")
        assert screen.diff_keys == DIFFERING
        assert "5 of 9 keys differ" in str(screen.query_one("#diff-info").render())
        table = screen.query_one("#diff-table", DataTable)
        assert table.get_cell("scheduler.warmup_steps", "partial").plain == "–"
        assert table.get_cell("scheduler.name", "diverged").plain == "constant"
        await pilot.press("d")
        assert screen.diff_keys == ALL_KEYS
        await pilot.press("d")
        assert screen.diff_keys == DIFFERING

        # Summary: last, best and step of best per run; the winner starred; NaN in red.
        await pilot.press("3")
        bests = {k: best_of(root / k / "metrics.jsonl", "val_loss") for k in MARKED}
        winner = min(bests, key=lambda k: bests[k][0])
        for key, (value, step) in bests.items():
            shown = screen.summary_cell("val_loss", "best", key)
            assert shown.replace("★", "").strip() == format_number(value)
            assert ("★" in shown) == (key == winner)
            assert screen.summary_cell("val_loss", "step", key) == format_number(step)
        last = screen.query_one("#summary-table", DataTable).get_cell(
            "val_loss\x00last", "diverged"
        )
        assert last.plain == "nan" and "red" in str(last.style)
        assert screen.summary_cell("val_loss", "bad", "diverged") != "–"

        await pilot.press("3", "escape")  # the footer's update for the tab comes too late
        assert not isinstance(app.screen, CompareScreen)
        await pilot.pause(0.2)
        assert app.is_running  # compare's footer, gone, was rebuilt and the app died


async def test_compare_follows_appends_to_a_compared_run(root: Path) -> None:
    app = fake_app(root)
    async with app.run_test(size=SIZE) as pilot:
        screen = await open_compare(pilot, ["resnet-lr0.1", "resnet-lr0.01"])
        chart = screen.charts[screen.chart_metrics.index("val_loss")]
        before = {t.label: t.y.size for t in chart.traces}
        await app.engine.append(
            root / "resnet-lr0.01" / "metrics.jsonl", {"step": 400, "val_loss": 0.125}
        )
        await wait_for(
            pilot, lambda: screen.summary_cell("val_loss", "last", "resnet-lr0.01") == "0.125"
        )
        after = {t.label: t.y.size for t in chart.traces}
        assert after == {
            "resnet-lr0.1": before["resnet-lr0.1"],
            "resnet-lr0.01": before["resnet-lr0.01"] + 1,
        }
        assert "★" in screen.summary_cell("val_loss", "best", "resnet-lr0.01")


async def test_compare_renders_run_strings_as_text(samples: Path) -> None:
    root = samples / "sweep"
    shutil.move(samples / "hostile", root / "hostile")
    app = fake_app(root)
    async with app.run_test(size=SIZE) as pilot:
        screen = await open_compare(pilot, ["hostile", "resnet-lr0.1"], runs=6)
        name = app.store.runs["hostile"].name
        assert "[" in name
        legend = screen.query_one("#legend").render()
        assert name in legend.plain  # markup and escapes shown, not interpreted
        header = screen.query_one("#diff-table", DataTable).columns
        assert any(column.label.plain == f"● {name}" for column in header.values())
        assert app.is_running


async def test_sweep_plots_one_point_per_run_and_lists_diverged_runs(root: Path) -> None:
    app = fake_app(root)
    async with app.run_test(size=SIZE) as pilot:
        engine = await loaded(pilot, runs=7)
        await pilot.press("slash", *"name~resnet", "enter")
        await pilot.press("w")
        await wait_for(pilot, lambda: isinstance(app.screen, SweepScreen))
        screen = app.screen
        runs = ["diverged", "resnet-lr0.001", "resnet-lr0.01", "resnet-lr0.1"]
        assert sorted(screen.keys) == runs
        await pilot.press("m")
        assert screen.metric == "val_loss"
        await pilot.pause()

        def values() -> dict[str, float]:
            return {k: p.value for k, p in zip(screen.point_keys, screen.points)}

        lasts = {k: history(root / k / "metrics.jsonl", "val_loss")[-1][1] for k in runs}
        assert values().keys() == lasts.keys()
        for key, value in values().items():
            assert value == pytest.approx(lasts[key], rel=1e-6, nan_ok=True)
        assert math.isnan(values()["diverged"])
        assert "lr" in screen.params and len(screen.scatters) == len(screen.params)
        await wait_for(pilot, lambda: all(s.plotted == len(runs) for s in screen.scatters))
        info = str(screen.query_one("#ranking-info").render())
        assert "x 1 diverged (NaN): resnet-lr0.8" in info
        # The ranking names the best runs in the plots' colours: plots whose best runs
        # are those draw no legend of their own.
        ranked = [row.key.value for row in screen.query_one("#ranking", DataTable).ordered_rows]
        assert all(s.highlighted == ranked[:3] for s in screen.scatters)
        assert all("◆◆" not in str(s.render()) for s in screen.scatters)
        ranking = screen.query_one("#ranking", DataTable)
        assert ranking.get_cell("diverged", "_note").plain == "diverged"
        ranked = [row.key.value for row in ranking.ordered_rows]
        assert ranked == sorted(runs, key=lambda k: (math.isnan(lasts[k]), lasts[k]))

        # Arrows move between the plots, z zooms the focused one, escape restores it.
        assert app.screen.focused is screen.scatters[0]
        await pilot.press("right", "z")
        assert screen.maximized is screen.scatters[1]
        await pilot.press("escape")
        assert screen.maximized is None and isinstance(app.screen, SweepScreen)

        await pilot.press("b")
        bests = {k: best_of(root / k / "metrics.jsonl", "val_loss")[0] for k in runs}
        for key, value in values().items():
            assert value == pytest.approx(bests[key], rel=1e-6)
        assert not screen.diverged()
        assert ranking.get_cell("diverged", "_note").plain.startswith("NaN/inf from step")
        await pilot.press("2")
        await wait_for(pilot, lambda: screen.query_one("#parallel-plot").plotted == len(runs))

        # A new best logged by a run of the sweep moves its point and its rank.
        await engine.append(
            root / "resnet-lr0.001" / "metrics.jsonl", {"step": 400, "val_loss": 0.0625}
        )
        await wait_for(pilot, lambda: values()["resnet-lr0.001"] == 0.0625)
        assert ranking.ordered_rows[0].key.value == "resnet-lr0.001"
