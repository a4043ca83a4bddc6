"""Shared fixtures: sample runs copied into tmp_path, never used in place."""

from __future__ import annotations

import json
import math
import shutil
import signal
from pathlib import Path

import pytest

SAMPLES = Path(__file__).resolve().parent.parent / "sample_runs"
FIXTURES = Path(__file__).resolve().parent / "fixtures"


def pytest_configure(config: pytest.Config) -> None:
    """Give the processes the tests start a default SIGINT and SIGHUP.

    A shell starts a background job (``.ci/run &``) with SIGINT ignored, ``nohup`` ignores
    SIGHUP, every child inherits that, and a Python child then installs no
    KeyboardInterrupt handler and outlives a hangup: the tests that interrupt or hang up a
    run would find it deaf. A handler here is reset to the default in every child at exec.
    """
    if signal.getsignal(signal.SIGINT) is signal.SIG_IGN:
        signal.signal(signal.SIGINT, signal.default_int_handler)
    if signal.getsignal(signal.SIGHUP) is signal.SIG_IGN:
        signal.signal(signal.SIGHUP, signal.SIG_DFL)


@pytest.hookimpl(tryfirst=True)  # before xdist reads the groups
def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Tests of the one-node Slurm cluster run on one worker, one after another: a job of
    one test would otherwise fill the node that another test expects to be free."""
    for item in items:
        if item.get_closest_marker("slurm") is not None:
            item.add_marker(pytest.mark.xdist_group("slurm"))


def load(root: Path):
    """Every run under ``root``, read to its end through a polling Engine, in a RunStore."""
    from tui.core.engine import Engine
    from tui.core.store import RunStore

    engine = Engine(root, watch="poll")
    engine.scan()
    store = RunStore()
    keys, _ = engine.take_dirty()
    for key in keys:
        for batch in engine.read_all(key):
            store.apply(batch)
    engine.stop()
    assert not engine.errors
    return store


def read_to_end(source):
    """One source read to its end into a fresh store (the bulk paths take whole chunks)."""
    from tui.core.store import RunStore

    store = RunStore()
    while True:
        batch = source.read()
        if batch is not None:
            store.apply(batch)
        if not source.more:
            break
    (run,) = store
    return run


@pytest.fixture
def samples(tmp_path: Path) -> Path:
    """A private copy of sample_runs/ with the test fixtures (the hostile run) beside the
    samples: the showcase stays friendly, the tests still read every kind of input."""
    target = tmp_path / "sample_runs"
    shutil.copytree(SAMPLES, target, ignore=shutil.ignore_patterns("*.py", "__pycache__"))
    shutil.copytree(FIXTURES, target, dirs_exist_ok=True)
    return target


async def wait_for(pilot, condition, timeout: float = 20.0) -> None:
    """Let the app run until ``condition()`` holds (no fixed sleeps in tests)."""
    import asyncio
    import time

    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError("condition not met in time")
        await pilot.pause(0.02)
        await asyncio.sleep(0)


async def wait_loaded(pilot, runs: int = 1, timeout: float = 15.0) -> None:
    """Wait until the app has read at least ``runs`` runs in full (backfill finished)."""
    app = pilot.app
    await wait_for(
        pilot,
        lambda: (
            len(app.store.runs) >= runs
            and app.progress is None
            and not any(r.partial for r in app.store.runs.values())
        ),
        timeout,
    )
    await pilot.pause()


@pytest.fixture
def processes():
    """Start real processes for a test; every one of them is gone after it."""
    from processes import processes_fixture

    yield from processes_fixture()


@pytest.fixture
def marker(processes) -> str:
    """A token for the command line of every process a test starts; leftovers are killed."""
    return processes.marker


def table_of(app):
    """The run table of the app's current screen."""
    from tui.app.widgets.run_table import RunTable

    return app.screen.query_one(RunTable)


async def open_run(pilot, key: str):
    """Put the table's cursor on ``key`` and press enter, as a user would; the run view."""
    from tui.app.screens.run_view import RunScreen

    app = pilot.app
    table = table_of(app)
    table.move_cursor(row=table.get_row_index(key))
    await pilot.press("enter")
    await wait_for(pilot, lambda: isinstance(app.screen, RunScreen))
    await pilot.pause()
    return app.screen


def plain(screen, selector: str) -> str:
    """The text of a Static; run data must reach the screen as Text, never as markup."""
    from rich.text import Text
    from textual.widgets import Static

    content = screen.query_one(selector, Static).content
    assert isinstance(content, Text), "run data must reach the screen as Text"
    return content.plain


@pytest.fixture(autouse=True)
def state_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The user's state directory (saved views) under tmp_path: no test reads or writes
    the real one."""
    target = tmp_path / "state"
    monkeypatch.setenv("XDG_STATE_HOME", str(target))
    return target


def write_run(root: Path, name: str, losses: list[float]) -> Path:
    """A finished native run named ``name`` with one ``loss`` per step."""
    run = root / name
    run.mkdir(parents=True)
    (run / "run.json").write_text(json.dumps({"name": name, "status": "finished"}))
    lines = [
        json.dumps({"step": step, "loss": loss})
        if math.isfinite(loss)
        else f'{{"step": {step}, "loss": NaN}}'
        for step, loss in enumerate(losses)
    ]
    (run / "metrics.jsonl").write_text("\n".join(lines) + "\n")
    return run


@pytest.fixture
def exploding(tmp_path: Path) -> Path:
    """Three healthy runs and one that explodes to 3.8e24 in its last steps."""
    root = tmp_path / "root"
    for i in range(3):
        write_run(root, f"healthy-{i}", [2.0 / (1 + s) + 0.1 * i for s in range(200)])
    write_run(
        root, "exploding", [2.0 / (1 + s) for s in range(190)] + [10.0**k for k in range(15, 25)]
    )
    return root


def sweep_root(samples: Path) -> Path:
    """The five sweep runs and the diverged one."""
    root = samples / "sweep"
    shutil.move(samples / "diverged", root / "diverged")
    return root


async def compare_marked(pilot, keys) -> None:
    """Mark ``keys`` in the run table, as a user would, and open compare on them."""
    from tui.app.screens.compare import CompareScreen

    app = pilot.app
    table = table_of(app)
    for key in keys:
        table.move_cursor(row=table.get_row_index(key))
        await pilot.press("space")
    await pilot.press("c")
    await wait_for(pilot, lambda: isinstance(app.screen, CompareScreen))
