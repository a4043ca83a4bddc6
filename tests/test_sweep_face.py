"""The sweep screen's face: axes that span the runs' values (a ratio within [0, 1], an
exploding run left out and marked), best runs among the runs each plot draws, and ranking
cells formatted like the run table. Piloted on the thread-free fake engine."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from conftest import wait_for
from fake_engine import fake_app, loaded
from textual.widgets import DataTable

from tui.app.screens.sweep import SweepScreen
from tui.app.widgets.parallel_coordinates import ParallelCoordinates
from tui.app.widgets.run_columns import config_column, metric_column
from tui.app.widgets.sweep_scatter import SweepScatter
from tui.core.sweep import metric_range

SIZE = (120, 40)


@pytest.fixture
def root(samples: Path) -> Path:
    """The five runs of the sample sweep."""
    return samples / "sweep"


def add_run(root: Path, name: str, config: dict[str, object], val_loss: float) -> None:
    """A finished run in ``root`` logging ``val_loss`` once."""
    run = root / name
    run.mkdir()
    (run / "run.json").write_text(json.dumps({"name": name, "config": config}))
    record = {"step": 1, "val_loss": val_loss}
    (run / "metrics.jsonl").write_text(json.dumps(record) + "\n")


def lasts(root: Path, metric: str) -> dict[str, float]:
    """Each run's last value of ``metric``, read with the stdlib."""
    found = {}
    for path in sorted(root.glob("*/metrics.jsonl")):
        for line in path.read_text().splitlines():
            record = json.loads(line)
            if metric in record:
                found[path.parent.name] = float(record[metric])
    return found


async def open_sweep(pilot, runs: int, metric: str) -> SweepScreen:
    """Press w on the run table, then m until ``metric`` is plotted."""
    app = pilot.app
    await loaded(pilot, runs=runs)
    await pilot.press("w")
    await wait_for(pilot, lambda: isinstance(app.screen, SweepScreen))
    screen = app.screen
    for _ in range(20):
        if screen.metric == metric:
            break
        await pilot.press("m")
    assert screen.metric == metric
    await pilot.pause()
    return screen


def drawn(widget: SweepScatter | ParallelCoordinates) -> str:
    rendered = widget.render()
    return getattr(rendered, "plain", str(rendered))


def y_labels(scatter: SweepScatter) -> list[float]:
    """The numbers the scatter's y-axis shows, read off its drawing."""
    return [float(line.split("┤")[0]) for line in drawn(scatter).splitlines() if "┤" in line]


async def test_accuracy_axes_stay_within_one(root: Path) -> None:
    accuracies = lasts(root, "accuracy")
    assert len(accuracies) == 5 and max(accuracies.values()) <= 1.0
    app = fake_app(root)
    async with app.run_test(size=SIZE) as pilot:
        screen = await open_sweep(pilot, 5, "accuracy")
        await wait_for(pilot, lambda: all(s.plotted == 5 for s in screen.scatters))
        assert screen.scatters
        for scatter in screen.scatters:
            drawn(scatter)
            assert scatter.y_range == (min(accuracies.values()), max(accuracies.values()))
            labels = y_labels(scatter)
            assert labels and max(labels) <= 1.0
        await pilot.press("2")
        parallel = screen.query_one(ParallelCoordinates)
        await wait_for(pilot, lambda: parallel.plotted == 5)
        # The metric axis is the last: its top label is the best accuracy, not beyond.
        top = drawn(parallel).splitlines()[1].split()
        assert float(top[-1]) == max(accuracies.values())


def test_ratio_axis_range() -> None:
    assert metric_range("val_acc", [1.0, 1.0, 1.0]) == (0.9, 1.0)
    assert metric_range("f1", [0.0, 0.0]) == (0.0, 1e-9)
    # An accuracy in percent is no ratio; a loss of 1 may run past it.
    assert metric_range("accuracy", [50.0, 90.0]) == (50.0, 90.0)
    lo, hi = metric_range("loss", [1.0, 1.0]) or (0.0, 0.0)
    assert lo < 1.0 < hi


async def test_an_exploding_run_does_not_flatten_the_sweep(root: Path) -> None:
    app = fake_app(root)
    async with app.run_test(size=SIZE) as pilot:
        screen = await open_sweep(pilot, 5, "val_loss")
        healthy = {k: v for k, v in lasts(root, "val_loss").items() if k != "resnet-lr0.001"}
        await app.engine.append(
            root / "resnet-lr0.001" / "metrics.jsonl", {"step": 400, "val_loss": 1e24}
        )
        await wait_for(pilot, lambda: 1e24 in [p.value for p in screen.points])
        lr = screen.scatters[screen.params.index("lr")]
        await wait_for(pilot, lambda: "beyond range" in lr.shown_title)
        for scatter in screen.scatters:
            drawn(scatter)
            assert scatter.y_range == (min(healthy.values()), max(healthy.values()))
            assert "1 beyond range" in scatter.shown_title
            assert max(y_labels(scatter)) < 1.0
        # The exploded run lies on the top edge, marked; the healthy ones on rows of their own.
        rows = drawn(lr).splitlines()
        # The ranking names the best runs, so the plot has no legend: its title names the
        # marker.
        assert "◆◆" not in drawn(lr) and "1 beyond range" in rows[0]
        assert sum(line.count("▴") for line in rows) == 1
        points = [i for i, line in enumerate(rows) if "•" in line or "◆" in line.replace("◆◆", "")]
        assert len(points) >= 3
        ranking = screen.query_one("#ranking", DataTable)
        assert ranking.get_cell("resnet-lr0.001", "_value").plain == "1e+24"
        assert ranking.ordered_rows[-1].key.value == "resnet-lr0.001"
        await pilot.press("2")
        parallel = screen.query_one(ParallelCoordinates)
        await wait_for(pilot, lambda: parallel.plotted == 5)
        lines = drawn(parallel).splitlines()
        assert "1 beyond range" in lines[0] and "▴" in lines[2]
        assert float(lines[1].split()[-1]) == max(healthy.values())


async def test_best_runs_are_picked_among_the_runs_drawn(root: Path) -> None:
    config = json.loads((root / "resnet-lr0.1" / "run.json").read_text())["config"]
    del config["seed"]
    # The best val_loss, but no seed; named to sort last, so that the other runs decide the
    # order of the hyperparameters and seed is among those plotted.
    add_run(root, "zz-no-seed", config, 0.5)
    app = fake_app(root)
    async with app.run_test(size=SIZE) as pilot:
        screen = await open_sweep(pilot, 6, "val_loss")
        assert "seed" in screen.params
        labels = dict(zip(screen.point_keys, (p.run_label for p in screen.points)))
        with_seed = {labels[k] for k in labels if k != "zz-no-seed"}
        values = {p.run_label: p.value for p in screen.points}
        best_with_seed = sorted(with_seed, key=values.__getitem__)[:3]
        for scatter in screen.scatters:
            drawn(scatter)
            if scatter.param == "seed":
                assert scatter.highlighted == best_with_seed
            else:
                assert len(scatter.highlighted) == 3
                assert scatter.highlighted[0] == labels["zz-no-seed"]
        ranking = screen.query_one("#ranking", DataTable)
        assert ranking.ordered_rows[0].key.value == "zz-no-seed"
        await pilot.press("2")
        parallel = screen.query_one(ParallelCoordinates)
        await wait_for(pilot, lambda: parallel.plotted == 5)
        assert parallel.highlighted == best_with_seed
        assert "◆" in drawn(parallel).splitlines()[-1]


async def test_ranking_numbers_read_like_the_run_table(root: Path) -> None:
    config = json.loads((root / "resnet-lr0.1" / "run.json").read_text())["config"]
    config.update(lr=0.000123456789, batch_size=4096)
    add_run(root, "odd", config, 123456.789)
    app = fake_app(root)
    async with app.run_test(size=SIZE) as pilot:
        screen = await open_sweep(pilot, 6, "val_loss")
        run = app.store.runs["odd"]
        ranking = screen.query_one("#ranking", DataTable)
        value = ranking.get_cell("odd", "_value")
        assert value.plain == metric_column("val_loss", "last", lambda: 0.0).cell(run).plain
        assert value.plain == "1.235e+05" and value.justify == "right"
        for param in ("lr", "batch_size", "dropout"):
            cell = ranking.get_cell("odd", f"param:{param}")
            assert cell.plain == config_column(param).cell(run).plain
            assert cell.justify == "right"
        assert ranking.get_cell("odd", "param:lr").plain == "0.0001235"
        assert ranking.get_cell("odd", "param:optimizer").plain == "sgd"
