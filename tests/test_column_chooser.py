"""Issue 12 item 4: the run table's column chooser (``m``). Show, hide and order every column
the table can show; the choice applies at once and persists per ROOT."""

from __future__ import annotations

import json
from pathlib import Path

from conftest import table_of, wait_for
from fake_engine import fake_app, loaded
from textual import events

from tui.app.screens.column_chooser import ColumnChooser
from tui.app.screens.runs import RunsScreen
from tui.app.widgets.choice_list import ChoiceList
from tui.core.views import View, load_view, view_path

SIZE = (140, 40)
HOSTILE = "[bold]x[/bold]"


def keys(app) -> list[str]:
    """The table's column keys, in order."""
    return [c.key for c in table_of(app).columns_spec]


def metric_columns(app) -> list[str]:
    return [k.removeprefix("metric:last:") for k in keys(app) if k.startswith("metric:last:")]


def listed_text(listing: ChoiceList) -> list[str]:
    """The chooser's lines as drawn on screen."""
    return [listing.render_line(y).text for y in range(listing.size.height)]


async def open_chooser(pilot) -> ChoiceList:
    await pilot.press("m")
    await wait_for(pilot, lambda: isinstance(pilot.app.screen, ColumnChooser))
    await pilot.pause()
    return pilot.app.screen.query_one(ChoiceList)


async def choose(pilot, *keys: str) -> None:
    """Open the chooser, press ``keys`` in it, and wait until it is gone."""
    await open_chooser(pilot)
    await pilot.press(*keys)
    await wait_for(pilot, lambda: isinstance(pilot.app.screen, RunsScreen))
    await pilot.pause()


async def typed_at_once(pilot, *keys: str) -> None:
    """Send ``keys`` as a fast typist (or a paste) does: all before the app handles any."""
    driver = pilot.app._driver
    for key in keys:
        character = " " if key == "space" else key if len(key) == 1 else None
        event = events.Key(key, character)
        event.set_sender(pilot.app)
        driver.send_message(event)
    await pilot.pause()


def sweep(samples: Path) -> Path:
    """The five runs of the sweep sample; one logs a metric named like markup."""
    root = samples / "sweep"
    with open(root / "vit-lr0.001" / "metrics.jsonl", "a") as handle:
        handle.write(json.dumps({"step": 999, HOSTILE: 0.5}) + "\n")
    return root


async def test_hide_and_show_apply_at_once(samples: Path) -> None:
    app = fake_app(sweep(samples))
    async with app.run_test(size=SIZE) as pilot:
        await loaded(pilot)
        screen = app.screen
        assert isinstance(screen, RunsScreen)
        screen.sort_by("path", descending=True)
        await pilot.pause()
        order = list(table_of(app).shown)
        assert "path" in keys(app) and "metric:best:val_loss" in keys(app)
        assert "metric:last:epoch" not in keys(app)

        await choose(pilot, *"path", "space", "enter")
        assert "path" not in keys(app)
        assert table_of(app).shown == order  # still sorted by the hidden column
        assert app.view.hidden == ("path",)

        await choose(pilot, *"best", "space", "enter")
        assert not [k for k in keys(app) if k.startswith("metric:best:")]

        await choose(pilot, *"epoch", "space", "enter")
        assert metric_columns(app) == ["val_accuracy", "val_loss", "epoch"]
        assert screen.chosen_metrics == ("val_accuracy", "val_loss", "epoch")


async def test_reordering_metrics_and_hyperparameters_orders_the_table(samples: Path) -> None:
    app = fake_app(sweep(samples))
    async with app.run_test(size=SIZE) as pilot:
        await loaded(pilot)
        assert metric_columns(app) == ["val_accuracy", "val_loss"]
        params = [k for k in keys(app) if k.startswith("config:")]
        assert params[:2] == ["config:lr", "config:batch_size"]
        # The cursor starts on the first metric: move it below the second.
        await choose(pilot, "shift+down", "enter")
        assert metric_columns(app) == ["val_loss", "val_accuracy"]
        assert (
            keys(app).index("metric:best:val_loss") == keys(app).index("metric:last:val_loss") + 1
        )
        # Found by a filter, then the filter cleared (ctrl+u), the cursor stays on it; ctrl+up
        # moves it before the one above it. Filtered to itself alone, it could not move.
        await choose(pilot, *"batch_size", "ctrl+up", "ctrl+u", "ctrl+up", "enter")
        params = [k for k in keys(app) if k.startswith("config:")]
        assert params[:2] == ["config:batch_size", "config:lr"]


async def test_the_choice_is_restored_after_a_restart_and_fresh_ignores_it(
    samples: Path,
) -> None:
    root = sweep(samples)
    app = fake_app(root)
    async with app.run_test(size=SIZE) as pilot:
        await loaded(pilot)
        await choose(pilot, "shift+down", *"age", "space", "enter")
        chosen = keys(app)
    assert "age" not in chosen
    assert load_view(root).hidden == ("age",)

    again = fake_app(root)
    async with again.run_test(size=SIZE) as pilot:
        await loaded(pilot)
        assert keys(again) == chosen

    fresh = fake_app(root, fresh=True)
    async with fresh.run_test(size=SIZE) as pilot:
        await loaded(pilot)
        assert "age" in keys(fresh)
        assert metric_columns(fresh) == ["val_accuracy", "val_loss"]


async def test_keys_typed_faster_than_the_app_handles_them_act_in_order(
    samples: Path,
) -> None:
    app = fake_app(sweep(samples))
    async with app.run_test(size=SIZE) as pilot:
        await loaded(pilot)
        listing = await open_chooser(pilot)
        await typed_at_once(pilot, *"loss", "down", "space", "ctrl+up", "q")
        await wait_for(pilot, lambda: listing.filter_text == "lossq")
        await pilot.press("backspace")
        assert [(c.label, c.shown) for c in listing.listed] == [("loss", True), ("val_loss", True)]
        assert isinstance(app.screen, ColumnChooser)  # q was typed, not quit


async def test_escape_changes_nothing(samples: Path, state_home: Path) -> None:
    root = sweep(samples)
    app = fake_app(root)
    async with app.run_test(size=SIZE) as pilot:
        await loaded(pilot)
        before = keys(app)
        listing = await open_chooser(pilot)
        await pilot.press("space", "shift+down", *"rate", "space")
        assert not listing.listed[0].shown  # ticks and order changed in the dialog ...
        await pilot.press("escape")
        await wait_for(pilot, lambda: isinstance(app.screen, RunsScreen))
        await pilot.pause()
        assert keys(app) == before  # ... and nowhere else
        assert app.view == View()
        assert not view_path(root).exists()


async def test_a_metric_named_like_markup_is_shown_as_it_is(samples: Path) -> None:
    app = fake_app(sweep(samples))
    async with app.run_test(size=SIZE) as pilot:
        await loaded(pilot)
        listing = await open_chooser(pilot)
        await pilot.press(*"bold")
        await pilot.pause()
        assert [c.label for c in listing.listed] == [HOSTILE]
        assert any(f"[ ] {HOSTILE}" in line for line in listed_text(listing))
        await pilot.press("space", "shift+up", "enter")  # the only one listed: it stays put
        await wait_for(pilot, lambda: isinstance(app.screen, RunsScreen))
        await pilot.pause()
        assert metric_columns(app)[-1] == HOSTILE
        assert HOSTILE in table_of(app).render_line(0).text


async def test_every_metric_is_listed_and_a_filter_finds_one_among_hundreds(
    samples: Path,
) -> None:
    root = samples / "sweep"
    names = [f"layer{i:03d}/grad_norm" for i in range(600)]
    with open(root / "resnet-lr0.1" / "metrics.jsonl", "a") as handle:
        handle.write(json.dumps({"step": 999, **dict.fromkeys(names, 1.0)}) + "\n")
    app = fake_app(root)
    async with app.run_test(size=SIZE) as pilot:
        await loaded(pilot)
        listing = await open_chooser(pilot)
        metrics = [c.label for c in listing.choices if c.group == "Metrics"]
        assert len(metrics) == 6 + 600 and metrics[:2] == ["val_accuracy", "val_loss"]
        assert "Metrics  2 of 606 shown" in listed_text(listing)[0]
        await pilot.press("pagedown", "pagedown")
        assert listing.current is not None and listing.current > 2
        listing.post_message(events.Paste("layer512\n(a second line is dropped)"))
        await wait_for(pilot, lambda: listing.filter_text == "layer512")
        assert [c.label for c in listing.listed] == ["layer512/grad_norm"]
        await pilot.press("space", "enter")
        await wait_for(pilot, lambda: isinstance(app.screen, RunsScreen))
        await pilot.pause()
        assert metric_columns(app) == ["val_accuracy", "val_loss", "layer512/grad_norm"]


def test_a_view_saved_before_hyperparameters_could_be_chosen_still_loads(
    tmp_path: Path,
) -> None:
    root = tmp_path / "runs"
    path = view_path(root)
    path.parent.mkdir(parents=True)
    old = {"metrics": ["val_loss"], "sort_key": "age", "hidden": ["path"], "strip": False}
    path.write_text(json.dumps({**old, "root": str(root)}))
    view = load_view(root)
    assert view.config is None
    assert (view.metrics, view.sort_key, view.hidden, view.strip) == (
        ("val_loss",),
        "age",
        ("path",),
        False,
    )
    path.write_text(json.dumps({"config": ["lr", 3], "metrics": None}))
    assert load_view(root) == View()  # a hand-edited list that is not all names is dropped
    path.write_text(json.dumps({"config": ["model", "lr"]}))
    assert load_view(root).config == ("model", "lr")
