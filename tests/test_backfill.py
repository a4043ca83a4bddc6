"""Full histories read in worker processes, then followed by the engine as usual."""

from __future__ import annotations

import json
import math
from pathlib import Path

import psutil
import pytest

import tui.core.backfill as backfill_module
from tui.core.backfill import Backfill
from tui.core.engine import Engine
from tui.core.records import RecordBuilder
from tui.core.store import Batch, History, RunStore


def make_runs(root: Path, runs: int, lines: int) -> None:
    for r in range(runs):
        run = root / f"run-{r}"
        run.mkdir()
        rows = (json.dumps({"step": s, "loss": 1.0 / (1 + s + r)}) for s in range(lines))
        (run / "metrics.jsonl").write_text("\n".join(rows) + "\n")


@pytest.mark.parametrize("workers", [1, 2])
def test_backfill_reads_everything_then_tailing_continues(
    tmp_path: Path, workers: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(backfill_module, "PARALLEL_BYTES", 1)
    make_runs(tmp_path, runs=12, lines=500)
    engine = Engine(tmp_path, watch="poll")
    keys = engine.scan()
    engine.take_dirty()
    store = RunStore()
    for key in keys:  # the first paint: previews of the last lines only
        store.apply(engine.preview(key, 512))
    assert all(run.partial for run in store)
    backfill = Backfill(engine, keys, workers=workers)
    assert backfill.parallel == (workers > 1)
    try:
        backfill.touched(["run-3"])  # changed while its full read was out
        while backfill.busy:
            for batch in backfill.step(priority=["run-7"], timeout=5):
                store.apply(batch)
    finally:
        backfill.close()
    assert backfill.done == 12
    for r in range(12):
        run = store.runs[f"run-{r}"]
        loss = run.series["loss"]
        assert not run.partial and loss.count == 500 and loss.max == 1.0 / (1 + r)
    with open(tmp_path / "run-3" / "metrics.jsonl", "a") as handle:
        handle.write(json.dumps({"step": 500, "loss": 0.0}) + "\n")
    engine.mark(["run-3"])
    keys, _ = engine.take_dirty()
    for batch in engine.read(keys):
        store.apply(batch)
    loss = store.runs["run-3"].series["loss"]
    assert loss.count == 501 and loss.last == 0.0  # the adopted source kept its position


def varied_runs(root: Path) -> None:
    """Runs with text values, non-finite numbers, a duplicate key, bad lines and a log."""
    for r in range(6):
        run = root / f"run-{r}"
        run.mkdir()
        lines = []
        for s in range(300):
            if s % 50 == 7:
                lines.append("not json")
            elif s % 40 == 3:
                lines.append(f'{{"step": {s}, "loss": NaN, "note": "s{s}", "loss": {s}}}')
            else:
                loss = "Infinity" if s == 100 + r else str(1.0 / (1 + s + r))
                lines.append(f'{{"step": {s}, "_time": {1e9 + s}, "loss": {loss}, "acc": {s % 7}}}')
        (run / "metrics.jsonl").write_text("\n".join(lines) + "\n")
        (run / "run.json").write_text(json.dumps({"name": f"n{r}", "config": {"lr": r}}))


def load(root: Path, workers: int) -> RunStore:
    engine = Engine(root, watch="poll")
    keys = engine.scan()
    engine.take_dirty()
    store = RunStore()
    for key in keys:
        if (batch := engine.preview(key, 256)) is not None:
            store.apply(batch)
    backfill = Backfill(engine, keys, workers=workers)
    try:
        while backfill.busy:
            for batch in backfill.step(timeout=5):
                store.apply(batch)
    finally:
        backfill.close()
    return store


def assert_same_runs(a: RunStore, b: RunStore) -> None:
    assert set(a.runs) == set(b.runs)
    for key, one in a.runs.items():
        two = b.runs[key]
        assert list(one.steps) == list(two.steps) and list(one.times) == list(two.times)
        assert one.meta == two.meta and one.partial == two.partial == False  # noqa: E712
        assert list(one.log) == list(two.log) and one.health.notes == two.health.notes
        assert one.health.bad_lines == two.health.bad_lines
        assert {n: list(h) for n, h in one.objects.items()} == {
            n: list(h) for n, h in two.objects.items()
        }
        assert set(one.series) == set(two.series)
        for name, s in one.series.items():
            t = two.series[name]
            assert (
                s.index.tobytes() == t.index.tobytes() and s.values.tobytes() == t.values.tobytes()
            )
            for field in ("count", "nonfinite", "first_nonfinite_step", "last_step"):
                assert getattr(s, field) == getattr(t, field), field
            assert (s.min, s.min_step, s.max, s.max_step) == (t.min, t.min_step, t.max, t.max_step)
            assert s.last == t.last or (s.last != s.last and t.last != t.last)


def test_columns_built_in_workers_equal_a_read_in_this_process(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(backfill_module, "PARALLEL_BYTES", 1)
    varied_runs(tmp_path)
    in_thread, in_workers = load(tmp_path, workers=1), load(tmp_path, workers=2)
    assert_same_runs(in_thread, in_workers)
    run = in_workers.runs["run-2"]
    assert run.series["loss"].nonfinite == 1 and run.latest("note") == "s283"
    assert any("duplicate keys" in note for note in run.health.notes)


def test_workers_exit_when_the_backfill_is_done_and_leave_nothing_behind(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(backfill_module, "PARALLEL_BYTES", 1)
    make_runs(tmp_path, runs=20, lines=200)
    me = psutil.Process()
    before = {p.pid for p in me.children(recursive=True)}
    engine = Engine(tmp_path, watch="poll")
    keys = engine.scan()
    backfill = Backfill(engine, keys, workers=2)
    assert backfill.parallel
    started = {p.pid for p in me.children(recursive=True)} - before
    assert len(started) == 2  # the two workers, and no resource tracker
    store = RunStore()
    while backfill.busy:  # no close(): finishing is what ends them
        for batch in backfill.step(timeout=5):
            store.apply(batch)
    assert not backfill.parallel
    assert {p.pid for p in me.children(recursive=True)} - before == set()
    assert all(not psutil.pid_exists(pid) for pid in started)  # reaped, not zombies
    assert sum(run.series["loss"].count for run in store) == 20 * 200


def test_runs_of_a_dead_worker_are_read_here(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(backfill_module, "PARALLEL_BYTES", 1)
    monkeypatch.setattr(backfill_module, "_BOOT", "import sys; sys.exit(3)  # {}")
    make_runs(tmp_path, runs=12, lines=100)
    engine = Engine(tmp_path, watch="poll")
    backfill = Backfill(engine, engine.scan(), workers=2)
    store = RunStore()
    try:
        while backfill.busy:
            for batch in backfill.step(timeout=5):
                store.apply(batch)
    finally:
        backfill.close()
    assert backfill.done == 12 and len(store) == 12
    assert all(run.series["loss"].count == 100 for run in store)


def test_a_history_added_to_records_equals_the_records_added() -> None:
    lines = [
        b'{"step": %d, "loss": %s, "t": "x%d"}' % (i, b"NaN" if i == 5 else b"%d" % (i % 9), i)
        for i in range(40)
    ]
    direct, merged = RunStore(), RunStore()
    for part in (lines[:15], lines[15:]):
        builder = RecordBuilder(now=1.0)
        builder.add_lines(part)
        block = builder.build()
        assert block is not None
        direct.apply(Batch("r", records=block))
        merged.apply(Batch("r", history=History.of([block])))
    assert_same_runs(direct, merged)


def test_columns_cross_the_pipe_raw_and_exact() -> None:
    """What the workers and the prefetch child send: the store's columns and record
    blocks' numpy columns travel as raw bytes after the pickle, come back equal (NaN and
    infinities included), writable and owning their memory; any other array is pickled."""
    import io
    from array import array

    import numpy as np

    from tui.core.backfill import receive, send

    plain = {
        "f8": np.array([1.5, math.nan, -math.inf, 1e300]),
        "f4": np.array([0.25, math.nan], dtype=np.float32),
        "u4": np.arange(5, dtype=np.uint32),
        "i8": np.array([-3, 2**40], dtype=np.int64),
        "bool": np.array([True, False]),
        "empty": np.zeros(0),
    }
    other = {
        "2-d": np.arange(6.0).reshape(2, 3),
        "strided": np.arange(10.0)[::2],
        "big-endian": np.array([1.0, 2.0], dtype=">f8"),
        "objects": np.array(["a", None], dtype=object),
    }
    columns = {"d": array("d", [1.0, math.nan]), "I": array("I", [7, 8])}
    stream = io.BytesIO()
    send(stream, (plain, other, columns))
    stream.seek(0)
    got_plain, got_other, got_columns = receive(stream)
    for name, column in {**plain, **other}.items():
        got = {**got_plain, **got_other}[name]
        assert got.dtype == column.dtype and got.shape == column.shape, name
        if column.dtype != object:
            assert np.array_equal(got, column, equal_nan=column.dtype.kind == "f"), name
    assert list(got_other["objects"]) == ["a", None]
    assert all(c.flags.writeable and c.flags.owndata for c in got_plain.values())
    assert got_columns["I"] == columns["I"] and math.isnan(got_columns["d"][1])
