"""The summary cache: a reopened ROOT paints exact values at once, and only what is
trustworthy is used (real files, real appends, truncations and rewrites, a damaged file)."""

from __future__ import annotations

import json
import math
import os
from pathlib import Path

import pytest
from conftest import wait_for

import tui.core.backfill as backfill_module
from tui.app.app import TrackApp
from tui.core.backfill import Backfill
from tui.core.cache import Entry, SummaryCache, cache_path, fingerprint
from tui.core.engine import Engine
from tui.core.store import RunStore


def write_run(root: Path, name: str, steps: range, *, lossy: bool = False) -> Path:
    run = root / name
    run.mkdir(exist_ok=True)
    lines = []
    for s in steps:
        loss = "NaN" if lossy and s % 97 == 5 else repr(1.0 / (1 + s) + (s % 7) / 100)
        lines.append(f'{{"step": {s}, "_time": {1.7e9 + s}, "loss": {loss}, "acc": {s % 11}}}')
    with open(run / "metrics.jsonl", "a") as handle:
        handle.write("\n".join(lines) + "\n")
    (run / "run.json").write_text(json.dumps({"name": name, "config": {"lr": len(name)}}))
    return run / "metrics.jsonl"


def make_root(root: Path) -> None:
    write_run(root, "a", range(2000), lossy=True)
    write_run(root, "b", range(500))
    write_run(root, "c", range(3))


def age(root: Path, seconds: float = 3600) -> None:
    """Set every file's modification time back: runs that finished a while ago."""
    for path in root.rglob("*"):
        info = path.stat()
        os.utime(path, ns=(info.st_atime_ns, info.st_mtime_ns - int(seconds * 1e9)))


class Session:
    """One opening of ROOT as the app's reader does it: first paint, then full reads."""

    def __init__(self, root: Path) -> None:
        self.engine = Engine(root, watch="poll")
        self.keys = self.engine.scan()
        self.engine.take_dirty()
        self.cache = SummaryCache(root)
        self.loaded = self.cache.load()
        self.store = RunStore()
        for key in self.keys:
            for batch in self.cache.preview(self.engine, key, 512):
                self.store.apply(batch)
        self.first_paint = summaries(self.store)

    def finish(self, workers: int = 1) -> RunStore:
        for batch in self.cache.settle(self.engine):  # after the first paint
            self.store.apply(batch)
        backfill = Backfill(self.engine, self.keys, workers, cache=self.cache)
        try:
            while backfill.busy:
                for batch in backfill.step(timeout=5):
                    self.store.apply(batch)
        finally:
            backfill.close()
        return self.store


def summaries(store: RunStore) -> dict[str, object]:
    """What the table shows of each run: counts, last/min/max with steps, first/last time."""
    out: dict[str, object] = {}
    for run in store:
        metrics = {}
        for name, s in run.series.items():
            last = "nan" if math.isnan(s.last) else s.last
            metrics[name] = (s.count, s.nonfinite, s.first_nonfinite_step, last, s.last_step)
            metrics[name] += (s.min, s.min_step, s.max, s.max_step)
        out[run.key] = (metrics, run.first_time, run.last_time, run.last_step, run.meta)
    return out


def full_read(root: Path) -> dict[str, object]:
    engine = Engine(root, watch="poll")
    store = RunStore()
    for key in engine.scan():
        for batch in engine.read_all(key):
            store.apply(batch)
    return summaries(store)


@pytest.mark.parametrize("aged", [False, True])  # files just written, or still for an hour
@pytest.mark.parametrize("workers", [1, 2])  # read here, or in worker processes
def test_a_reopened_root_paints_exact_values_from_the_cache(
    tmp_path: Path, state_home: Path, workers: int, aged: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(backfill_module, "PARALLEL_BYTES", 1)
    root = tmp_path / "root"
    root.mkdir()
    make_root(root)
    if aged:
        age(root)
    before = sorted(p for p in root.rglob("*"))
    first = Session(root)
    assert first.loaded == 0 and first.store.runs["a"].series["loss"].count < 2000  # a preview
    first.finish(workers)
    path = cache_path(root)
    assert path.is_file() and path.is_relative_to(state_home)  # never in ROOT
    assert sorted(p for p in root.rglob("*")) == before
    assert oct(path.stat().st_mode & 0o777) == "0o600"

    taken_by_status = {e.quiet and bool(e.meta_stat) for e in again_entries(root)}
    assert taken_by_status == {aged}  # files still for an hour need no read to be known
    again = Session(root)
    assert again.loaded == 3 and all(again.cache.holds(k) for k in "abc")
    assert summaries(again.store) == full_read(root)  # before any full read
    assert all(run.partial for run in again.store)  # the histories are still to come
    assert summaries(again.finish(workers)) == full_read(root)
    assert not any(run.partial for run in again.store)
    assert len(again.store.runs["a"].series["loss"].values) == 2000


def test_an_append_since_is_read_on_top_of_the_cached_summary(tmp_path: Path) -> None:
    make_root(tmp_path)
    Session(tmp_path).finish()
    write_run(tmp_path, "a", range(2000, 2300), lossy=True)  # stale entry: the file grew
    with open(tmp_path / "b" / "metrics.jsonl", "a") as handle:
        handle.write('{"step": 500, "loss": -1.0, "acc": 0}\n{"step": 501, "loss": -2')  # cut
    again = Session(tmp_path)
    assert again.cache.holds("a") and again.cache.holds("b")
    expected = full_read(tmp_path)
    assert summaries(again.store) == expected
    loss = again.store.runs["b"].series["loss"]
    assert loss.count == 501 and loss.min == -1.0 and loss.min_step == 500
    assert summaries(again.finish()) == full_read(tmp_path)


def again_entries(root: Path) -> list[Entry]:
    cache = SummaryCache(root)
    cache.load()
    return list(cache._entries.values())


@pytest.mark.parametrize("aged", [False, True])
@pytest.mark.parametrize("change", ["truncated", "rewritten", "replaced"])
def test_an_entry_for_other_bytes_is_ignored(tmp_path: Path, change: str, aged: bool) -> None:
    make_root(tmp_path)
    if aged:
        age(tmp_path)
    Session(tmp_path).finish()
    path = tmp_path / "b" / "metrics.jsonl"
    data = path.read_bytes()
    if change == "truncated":  # shorter than what the entry covers
        path.write_bytes(data[: len(data) // 2])
    elif change == "rewritten":  # same size, same inode, other values (and mtime)
        with open(path, "r+b") as handle:
            handle.seek(len(data) - 30)
            handle.write(data[-30:].replace(b"1", b"2"))
    else:  # a new file under the name (another inode), same bytes
        os.unlink(path)
        path.write_bytes(data)
    again = Session(tmp_path)
    assert not again.cache.holds("b") and again.cache.holds("a")
    assert again.store.runs["b"].series["loss"].count < 500  # the ordinary preview
    assert summaries(again.finish()) == full_read(tmp_path)
    assert Session(tmp_path).cache.holds("b")  # recorded afresh


def test_a_rewrite_with_its_time_set_back_is_caught_after_the_first_frame(
    tmp_path: Path,
) -> None:
    """A still file is known by its status at the first paint; its fingerprint, checked
    right after, catches bytes changed in place behind an unchanged size and time."""
    make_root(tmp_path)
    age(tmp_path)
    Session(tmp_path).finish()
    path = tmp_path / "b" / "metrics.jsonl"
    info = path.stat()
    data = path.read_bytes()
    forged = data[:-30] + data[-30:].replace(b'"loss": 0.022', b'"loss": 0.033')  # last step
    assert forged != data and len(forged) == len(data)
    with open(path, "r+b") as handle:
        handle.write(forged)
    os.utime(path, ns=(info.st_atime_ns, info.st_mtime_ns))
    again = Session(tmp_path)
    assert again.cache.holds("b")  # the status alone cannot tell
    assert again.store.runs["b"].series["loss"].last == 0.022  # the first frame: stale
    for batch in again.cache.settle(again.engine):  # right after the first frame
        again.store.apply(batch)
    assert set(again.cache._entries) == {"a", "c"}  # b's fingerprint did not match
    assert summaries(again.finish()) == full_read(tmp_path)  # the full read puts it right
    assert again.store.runs["b"].series["loss"].last == 0.033
    entry = {e.ino: e for e in again_entries(tmp_path)}[info.st_ino]
    assert entry.fingerprint == fingerprint_of(path)  # recorded afresh, for the new bytes


def fingerprint_of(path: Path) -> bytes:
    fd = os.open(path, os.O_RDONLY)
    try:
        return fingerprint(fd, os.fstat(fd).st_size)
    finally:
        os.close(fd)


@pytest.mark.parametrize("damage", ["flipped byte", "cut short", "garbage", "other root"])
def test_a_damaged_cache_file_is_ignored(tmp_path: Path, damage: str) -> None:
    root = tmp_path / "root"
    root.mkdir()
    make_root(root)
    Session(root).finish()
    path = cache_path(root)
    data = bytearray(path.read_bytes())
    if damage == "flipped byte":
        data[len(data) // 2] ^= 0x40
    elif damage == "cut short":
        del data[-10:]
    elif damage == "garbage":
        data = bytearray(os.urandom(len(data)))
    else:  # a valid file of another ROOT at this ROOT's name
        other = tmp_path / "other"
        other.mkdir()
        make_root(other)
        Session(other).finish()
        data = bytearray(cache_path(other).read_bytes())
    path.write_bytes(bytes(data))
    again = Session(root)
    assert again.loaded == 0 and again.cache.problem
    assert not any(again.cache.holds(k) for k in "abc")
    assert summaries(again.finish()) == full_read(root)
    assert Session(root).loaded == 3  # rewritten whole


def test_run_json_comes_from_the_cache_while_its_bytes_are_the_same(tmp_path: Path) -> None:
    make_root(tmp_path)
    (tmp_path / "a" / "output.log").write_text("epoch 1\nepoch 2\n")
    Session(tmp_path).finish()
    meta = tmp_path / "b" / "run.json"
    meta.write_text(json.dumps({"name": "b", "config": {"lr": 0.5}}))  # changed since
    again = Session(tmp_path)
    assert again.first_paint == full_read(tmp_path)  # metadata too, the new one for b
    assert not again.store.runs["a"].log  # the log's end comes after the first paint
    again.finish()
    assert list(again.store.runs["a"].log) == ["epoch 1", "epoch 2"]
    assert summaries(again.store) == full_read(tmp_path)


def loaded(app: TrackApp, runs: int) -> bool:
    """Every run found and read in full."""
    store = app.store
    return len(store.runs) == runs and app.progress is None and not any(r.partial for r in store)


async def test_a_reopened_app_shows_every_history_once(tmp_path: Path, state_home: Path) -> None:
    make_root(tmp_path)
    (tmp_path / "a" / "output.log").write_text("epoch 1\n")
    for session in ("first", "reopened"):
        app = TrackApp(tmp_path, watch="poll")
        async with app.run_test(size=(120, 30)) as pilot:
            await wait_for(pilot, lambda app=app: loaded(app, 3))
            assert summaries(app.store) == full_read(tmp_path), session
            run = app.store.runs["a"]
            assert len(run.series["loss"].values) == 2000 and list(run.log) == ["epoch 1"]
    assert cache_path(tmp_path).is_file()


async def test_rules_judge_a_reopened_root_once_its_points_come(
    tmp_path: Path, state_home: Path
) -> None:
    """A reopen paints rows from the cache's summaries, whose series hold no points yet: the
    rules wait for the full read (they raised an IndexError on every run, each told in a
    notification) and then give the verdicts of the first opening."""
    make_root(tmp_path)
    (tmp_path / "tracktui.toml").write_text(
        '[[rule]]\nname = "diverged"\nmetric = "loss"\nwhen = "nonfinite"\n'
        '[[rule]]\nname = "high"\nmetric = "loss"\nwhen = "above"\nvalue = 0.5\n'
    )
    age(tmp_path)  # still files: known from the cache by their status alone
    verdicts = []
    for session in ("first", "reopened"):
        app = TrackApp(tmp_path, watch="poll")
        told: list[str] = []
        app.notify = lambda message, told=told, **_: told.append(str(message))  # type: ignore[method-assign]
        async with app.run_test(size=(120, 30)) as pilot:
            await wait_for(pilot, lambda app=app: loaded(app, 3))
            await pilot.pause(0.2)
            verdicts.append(
                {key: sorted((v.rule, v.state) for v in app.verdicts[key]) for key in "abc"}
            )
        assert not [t for t in told if "rule evaluation failed" in t], (session, told)
    assert verdicts[1] == verdicts[0]
    assert ("diverged", "triggered") in verdicts[0]["a"]
    assert ("high", "triggered") in verdicts[0]["c"]
