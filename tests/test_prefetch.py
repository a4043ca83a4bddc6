"""The first paint read by a child process while the app loads (tui.core.prefetch): the
same runs, values and metadata as the app's own reader gives, the summary cache used the
same way, and a child that dies, talks nonsense or hangs never costs the user a run or a
quit (real child processes, real files)."""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path

import pytest
from conftest import wait_for, wait_loaded

import tui.core.prefetch as prefetch_module
from tui.app.app import TrackApp
from tui.app.widgets.run_table import RunTable
from tui.core.engine import Engine
from tui.core.prefetch import PREVIEW_BYTES, Forked, Prefetch, start
from tui.core.store import Run, RunStore


def shown(store: RunStore) -> dict[str, object]:
    """What the app shows of every run: format, metadata, and each series' count, last,
    min and max with their steps (NaN spelled out, so that equal means equal)."""

    def plain(value: object) -> object:
        return "nan" if isinstance(value, float) and math.isnan(value) else value

    out: dict[str, object] = {}
    for run in store:
        series = {
            name: tuple(plain(v) for v in (s.count, s.nonfinite, s.last, s.last_step, s.min, s.max))
            for name, s in run.series.items()
        }
        out[run.key] = (run.format, series, json.dumps(run.meta, sort_keys=True, default=str))
    return out


async def loaded(root: Path, prefetch: Prefetch | None) -> TrackApp:
    app = TrackApp(root, watch="poll", prefetch=prefetch)
    async with app.run_test(size=(160, 45)) as pilot:
        await wait_loaded(pilot, runs=len(Engine(root).scan()), timeout=60)
    return app


@pytest.mark.parametrize("fork", [True, False], ids=["forked", "fresh interpreter"])
async def test_the_childs_first_paint_leads_to_what_the_apps_own_reader_shows(
    samples: Path, fork: bool
) -> None:
    """Every format of the samples (and the hostile fixtures): the runs the app ends up
    with are the same, whichever process read the first paint, and however it began."""
    own = await loaded(samples, None)
    prefetch = Prefetch(samples, PREVIEW_BYTES, fork=fork)
    assert isinstance(prefetch.process, Forked) == fork
    child = await loaded(samples, prefetch)
    assert not child.prefetch_failed
    assert shown(child.store) == shown(own.store)
    assert prefetch.process.returncode is not None  # the child is gone, and waited for


# What the command line does: the child first, from a process with no thread and no numpy.
CLI_START = """
import os, sys
from pathlib import Path
from tui.core.prefetch import PREVIEW_BYTES, Forked, Prefetch
prefetch = Prefetch(Path(sys.argv[1]), PREVIEW_BYTES)
from tui.cli import load_numpy
load_numpy()
kinds = [m[0] for m in prefetch.messages()]
prefetch.close()
print(type(prefetch.process).__name__, prefetch.process.returncode, prefetch.total, kinds[-1])
try:
    os.waitpid(prefetch.process.pid, os.WNOHANG)
except ChildProcessError:
    print("reaped")
"""


def test_the_command_lines_child_is_a_fork_that_prints_nothing(tmp_path: Path) -> None:
    """In a process with no other thread (the command line's, before Textual loads) the
    child is a fork: it says everything, prints nothing on the streams it shares with the
    app's terminal, and is waited for (no zombie left)."""
    for name in ("a", "b"):
        write_run(tmp_path, name, 50)
    (tmp_path / "bad").mkdir()
    (tmp_path / "bad" / "metrics.jsonl").write_bytes(b'{"step": 1, "loss": \xff}\n{oops\n')
    done = subprocess.run(
        [sys.executable, "-c", CLI_START, str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=Path(__file__).resolve().parents[1],
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout == "Forked 0 3 found\nreaped\n"
    assert done.stderr == ""


def test_a_forked_child_ended_early_is_waited_for(tmp_path: Path) -> None:
    """Closed at once (the user quit as the app started): the fork is killed and reaped."""
    for name in ("a", "b"):
        write_run(tmp_path, name, 50)
    prefetch = Prefetch(tmp_path, PREVIEW_BYTES, fork=True)
    prefetch.close()
    assert prefetch.process.returncode is not None
    with pytest.raises(ChildProcessError):  # nothing left to wait for: no zombie
        os.waitpid(prefetch.process.pid, os.WNOHANG)


def write_run(root: Path, name: str, steps: int) -> None:
    run = root / name
    run.mkdir()
    lines = (json.dumps({"step": s, "loss": 1.0 / (s + 1), "acc": s % 7}) for s in range(steps))
    (run / "metrics.jsonl").write_text("\n".join(lines) + "\n")
    (run / "run.json").write_text(json.dumps({"name": name, "config": {"lr": 0.1}}))


async def test_a_reopened_root_is_painted_from_the_cache_by_the_child(tmp_path: Path) -> None:
    """The second opening: the child's previews are the cached summaries (every record
    counted, not the tail's), and the app is told which runs they were."""
    for name in ("a", "b", "c"):
        write_run(tmp_path, name, 3000)
    first = await loaded(tmp_path, None)  # leaves the summary cache behind as it quits
    prefetch = Prefetch(tmp_path, 512)
    messages = list(prefetch.messages())
    prefetch.close()
    assert [m[0] for m in messages] == ["total", "previews", "settled", "found"]
    assert messages[0][1] == 3
    assert messages[1][2] == 3  # every run previewed
    previews = {b.key: b for b in messages[1][1]}
    assert set(previews) == {"a", "b", "c"}
    assert all(b.partial and b.history.series["loss"].count == 3000 for b in previews.values())
    found, previewed, cached = messages[3][1:]
    assert sorted(s.key for s in found.sources) == ["a", "b", "c"]
    assert previewed == cached == ["a", "b", "c"]
    again = await loaded(tmp_path, Prefetch(tmp_path, PREVIEW_BYTES))
    assert not again.prefetch_failed
    assert shown(again.store) == shown(first.store)


async def test_the_first_table_drawn_lists_the_runs_the_child_has_read(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A child that has read every run by the time the screen mounts: the first table the
    screen draws lists them all (not an empty table and the rows a frame later), with
    their values."""
    for name in ("a", "b", "c"):
        write_run(tmp_path, name, 30)
    prefetch = Prefetch(tmp_path, PREVIEW_BYTES)
    prefetch.listen()
    deadline = time.monotonic() + 30
    while not prefetch.previews_soon(0):  # until every preview has come
        assert time.monotonic() < deadline
        time.sleep(0.01)
    drawn: list[list[tuple[str, int]]] = []
    show = RunTable.show

    def recorded(table: RunTable, runs: Sequence[Run]) -> None:
        drawn.append([(run.key, run.series["loss"].count) for run in runs])
        show(table, runs)

    monkeypatch.setattr(RunTable, "show", recorded)
    app = await loaded(tmp_path, prefetch)
    assert not app.prefetch_failed
    assert drawn[0] == [("a", 30), ("b", 30), ("c", 30)]


def stand_in(root: Path, command: list[str]) -> Prefetch:
    """A prefetch whose child is ``command`` instead (a child that misbehaves)."""
    return Prefetch(root, PREVIEW_BYTES, command)


@pytest.mark.parametrize(
    "child",
    [
        "killed at once",
        "killed at once, forked",
        "says nonsense",
        "stops half way",
    ],
)
async def test_a_child_that_fails_leaves_the_app_to_read_it_all(samples: Path, child: str) -> None:
    expected = shown((await loaded(samples, None)).store)
    if child.startswith("killed at once"):
        prefetch = Prefetch(samples, PREVIEW_BYTES, fork="fork" in child)
        prefetch.process.kill()
    elif child == "says nonsense":
        prefetch = stand_in(samples, [sys.executable, "-c", "print('x' * 100000)"])
    else:  # the real protocol, cut after the first previews
        code = (
            "import sys, subprocess\n"
            "from tui.core.prefetch import _BOOT\n"
            "out = subprocess.run([sys.executable, '-c', _BOOT.format(sys.argv[1]), "
            "sys.argv[2], '8192'], capture_output=True).stdout\n"
            "sys.stdout.buffer.write(out[: len(out) // 3])\n"
        )
        package = str(Path(__file__).resolve().parents[1])
        prefetch = stand_in(samples, [sys.executable, "-c", code, package, str(samples)])
    app = await loaded(samples, prefetch)
    assert app.prefetch_failed
    assert shown(app.store) == expected
    assert prefetch.process.returncode is not None


async def test_quitting_while_the_child_still_works_ends_it(tmp_path: Path) -> None:
    write_run(tmp_path, "a", 10)
    prefetch = stand_in(tmp_path, [sys.executable, "-c", "import time; time.sleep(60)"])
    app = TrackApp(tmp_path, watch="poll", prefetch=prefetch)
    async with app.run_test(size=(120, 30)) as pilot:
        await pilot.pause(0.3)
        assert prefetch.process.poll() is None  # still at work: the reader waits on it
        await pilot.press("q")
    assert prefetch.process.returncode is not None  # ended with the app, not left behind


@pytest.mark.parametrize(
    ("cores", "running", "started"),
    [({0, 1}, 1, True), ({0, 1}, 2, False), ({0}, 1, False), (set(range(16)), 15, True)],
)
def test_the_child_is_started_only_when_a_core_is_likely_free(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, cores: set[int], running: int, started: bool
) -> None:
    """On a busy machine (or one core) the child would only add its own start to the load:
    the app's reader reads the first paint itself. ``running``: the tasks the kernel counts
    as running at the start, this one included."""
    loadavg = tmp_path / "loadavg"
    loadavg.write_text(f"1.50 0.80 0.40 {running}/345 12345\n")
    monkeypatch.setattr("os.sched_getaffinity", lambda pid: cores)
    monkeypatch.setattr(prefetch_module, "LOADAVG", str(loadavg))
    prefetch = start(tmp_path, PREVIEW_BYTES)
    try:
        assert (prefetch is not None) == started
    finally:
        if prefetch is not None:
            prefetch.close()


def test_a_task_passing_at_the_start_is_not_taken_for_a_busy_core(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The count of running tasks is of one instant: busy counts followed by a free one
    start the child; only counts that stay busy keep it from starting."""
    monkeypatch.setattr("os.sched_getaffinity", lambda pid: {0, 1})
    for counts, free in (([3, 2, 1], True), ([2] * prefetch_module.SAMPLES, False)):
        said = iter(counts)
        monkeypatch.setattr(prefetch_module, "running_tasks", said.__next__)
        assert prefetch_module.core_free() == free
        assert next(said, None) is None  # every count was looked at


async def test_an_empty_root_read_by_the_child_still_shows_the_runs_that_come(
    tmp_path: Path,
) -> None:
    """Nothing to preview: the app waits for runs, and one made later is found and read."""
    app = TrackApp(tmp_path, watch="native", prefetch=Prefetch(tmp_path, PREVIEW_BYTES))
    async with app.run_test(size=(120, 30)) as pilot:
        await wait_for(pilot, lambda: app.engine.mode == "inotify")
        assert not app.prefetch_failed and not app.store.runs
        write_run(tmp_path, "late", 5)
        await wait_loaded(pilot, runs=1)
        assert app.store.runs["late"].series["loss"].count == 5
