"""The engine on real files: watchdog events, the polling fallback, discovery, health."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from tui.core import engine as engine_module
from tui.core.discover import Walk, walk
from tui.core.engine import Engine
from tui.core.formats import default_adapters
from tui.core.store import RunStore

WRITER = """
import os, sys, time
path, count = sys.argv[1], int(sys.argv[2])
fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
for step in range(count):
    os.write(fd, ('{"step": %d, "loss": %s}\\n' % (step, 1.0 / (step + 1))).encode())
    time.sleep(0.01)
os.close(fd)
"""


def pump(engine: Engine, store: RunStore, until, timeout: float = 10.0) -> None:
    """Apply batches as the app does, whenever the engine reports dirty runs."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        keys, rescan = engine.take_dirty()
        if rescan:
            keys = sorted(set(keys) | set(engine.scan()))
        for batch in engine.read(keys):
            store.apply(batch)
        if until():
            return
        time.sleep(0.02)
    raise AssertionError("condition not reached in time")


@pytest.mark.parametrize("watch", ["native", "poll"])
def test_appends_from_another_process_arrive(tmp_path: Path, watch: str) -> None:
    run = tmp_path / "exp" / "run1"
    run.mkdir(parents=True)
    (run / "metrics.jsonl").write_bytes(b"")
    engine = Engine(tmp_path, watch=watch, poll_interval=0.1)
    engine.scan()
    woke = threading.Event()
    engine.start(woke.set)
    try:
        assert engine.mode == ("inotify" if watch == "native" else "polling (requested)")
        store = RunStore()
        pump(engine, store, lambda: "exp/run1" in store.runs)
        woke.clear()
        subprocess.run([sys.executable, "-c", WRITER, str(run / "metrics.jsonl"), "50"], check=True)
        assert woke.wait(5), "the watcher never reported the writes"
        pump(
            engine,
            store,
            lambda: (
                store.runs["exp/run1"].series.get("loss") is not None
                and store.runs["exp/run1"].series["loss"].count == 50
            ),
        )
        loss = store.runs["exp/run1"].series["loss"]
        assert loss.last_step == 49 and loss.min == pytest.approx(1 / 50)
    finally:
        engine.stop()


def test_new_runs_are_discovered_while_watching(tmp_path: Path) -> None:
    engine = Engine(tmp_path, watch="native", reconcile_interval=0.2)
    engine.scan()
    engine.start()
    try:
        store = RunStore()
        deep = tmp_path / "a" / "b" / "c"
        deep.mkdir(parents=True)
        (deep / "metrics.jsonl").write_text('{"step": 1, "acc": 0.5}\n')
        pump(engine, store, lambda: "a/b/c" in store.runs and "acc" in store.runs["a/b/c"].series)
    finally:
        engine.stop()


@pytest.mark.parametrize("linked", [False, True])
def test_a_root_reached_through_a_symbolic_link_is_watched_all_the_same(
    tmp_path: Path, linked: bool
) -> None:
    """``tracktui ~/runs`` where ~/runs leads to /data/runs: the runs made and written
    there are reported by inotify, as under a ROOT given by its own name (the safety-net
    walk, which found them before, is put out of reach here)."""
    real = tmp_path / "data" / "runs"
    (real / "old").mkdir(parents=True)
    (real / "old" / "metrics.jsonl").write_text('{"step": 0, "loss": 1.0}\n')
    root = real
    if linked:
        root = tmp_path / "runs"
        root.symlink_to(real, target_is_directory=True)
    engine = Engine(root, watch="native", reconcile_interval=3600)
    engine.scan()
    engine.start()
    try:
        assert engine.mode == "inotify"
        store = RunStore()
        pump(engine, store, lambda: "old" in store.runs)
        (real / "new").mkdir()
        (real / "new" / "metrics.jsonl").write_text('{"step": 0, "loss": 0.5}\n')
        keys, rescan = reported(engine, lambda keys, rescan: rescan or "new" in keys)
        for batch in engine.read(sorted(set(keys) | set(engine.scan() if rescan else ()))):
            store.apply(batch)
        assert store.runs["new"].series["loss"].last == 0.5
        time.sleep(0.2)  # the last events of the new run's file
        engine.take_dirty()
        with open(real / "old" / "metrics.jsonl", "a") as handle:
            handle.write('{"step": 1, "loss": 0.25}\n')
        keys, _ = reported(engine, lambda keys, rescan: "old" in keys)
        for batch in engine.read(keys):
            store.apply(batch)
        assert store.runs["old"].series["loss"].last == 0.25
        assert set(store.runs) == {"old", "new"}  # keys as under ROOT, never the link's target
    finally:
        engine.stop()


def reported(engine: Engine, what, timeout: float = 5.0) -> tuple[list[str], bool]:
    """The engine's dirty runs and rescan flag, once they match ``what`` (keys, rescan);
    what did not match is gathered too, so nothing taken is lost."""
    deadline = time.monotonic() + timeout
    keys: set[str] = set()
    rescan = False
    while time.monotonic() < deadline:
        more, again = engine.take_dirty()
        keys |= set(more)
        rescan = rescan or again
        if what(keys, rescan):
            return sorted(keys), rescan
        time.sleep(0.02)
    raise AssertionError("the change was not reported in time")


def test_inotify_failure_falls_back_to_polling(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import errno

    from watchdog.observers import Observer

    def exhausted(self, *args, **kwargs):
        raise OSError(errno.ENOSPC, "inotify watch limit reached")

    monkeypatch.setattr(Observer, "schedule", exhausted)
    run = tmp_path / "r"
    run.mkdir()
    (run / "metrics.jsonl").write_text('{"step": 1, "acc": 0.5}\n')
    engine = Engine(tmp_path, poll_interval=0.1)
    engine.scan()
    engine.start()
    try:
        assert engine.mode.startswith("polling (inotify watch limit")
        store = RunStore()
        pump(engine, store, lambda: "r" in store.runs)
        with open(run / "metrics.jsonl", "a") as handle:
            handle.write('{"step": 2, "acc": 0.7}\n')
        pump(engine, store, lambda: store.runs["r"].series["acc"].count == 2)
    finally:
        engine.stop()


def test_health_collects_bad_lines_and_truncation(tmp_path: Path) -> None:
    run = tmp_path / "r"
    run.mkdir()
    path = run / "metrics.jsonl"
    path.write_bytes(b'{"step": 1, "loss": 1}\nnot json\n\xff\xfe\n{"step": 2, "loss": NaN}\n')
    engine = Engine(tmp_path, watch="poll")
    engine.scan()
    store = RunStore()
    for batch in engine.read(engine.take_dirty()[0]):
        store.apply(batch)
    health = store.runs["r"].health
    assert health.bad_lines == 2 and [s[1] for s in health.samples] == [2, 3]
    path.write_bytes(b'{"step": 0, "loss": 5}\n')
    engine.mark(["r"])
    for batch in engine.read(engine.take_dirty()[0]):
        store.apply(batch)
    assert health.truncations == 1 and any("truncated" in n for n in health.notes)
    loss = store.runs["r"].series["loss"]
    assert loss.count == 3 and loss.last == 5  # the history read before is kept


def test_preview_then_full_read_replaces_history(tmp_path: Path) -> None:
    run = tmp_path / "r"
    run.mkdir()
    lines = "".join(f'{{"step": {i}, "loss": {1 / (i + 1)}}}\n' for i in range(20_000))
    (run / "metrics.jsonl").write_text(lines)
    engine = Engine(tmp_path, watch="poll")
    engine.scan()
    store = RunStore()
    store.apply(engine.preview("r", tail_bytes=4096))
    run_state = store.runs["r"]
    assert run_state.partial and run_state.series["loss"].last_step == 19_999
    assert run_state.series["loss"].count < 200
    for batch in engine.read_all("r"):
        store.apply(batch)
    assert not run_state.partial and run_state.series["loss"].count == 20_000


def test_network_filesystem_selects_polling(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import tui.core.engine as engine_module

    monkeypatch.setattr(engine_module, "filesystem_type", lambda path: "nfs4")
    engine = Engine(tmp_path, poll_interval=0.1)
    engine.start()
    try:
        assert engine.mode == "polling (nfs4 is a network filesystem)"
    finally:
        engine.stop()


def test_filesystem_type_reads_the_mount_table() -> None:
    from tui.core.filesystems import filesystem_type

    kind = filesystem_type(Path("/proc"))
    assert kind == "proc"


def test_reconcile_finds_writes_the_events_missed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # An observer that reports nothing stands for a queue overflow or a lost event.
    monkeypatch.setattr(Engine, "_start_observer", lambda self: "inotify")
    for r in range(30):
        (tmp_path / f"run-{r}").mkdir()
        (tmp_path / f"run-{r}" / "metrics.jsonl").write_text('{"step": 0, "loss": 1}\n')
    engine = Engine(tmp_path, reconcile_interval=0.3)
    engine.scan()
    store = RunStore()
    for batch in engine.read(engine.take_dirty()[0]):
        store.apply(batch)
    engine.start()
    try:
        with open(tmp_path / "run-29" / "metrics.jsonl", "a") as handle:
            handle.write('{"step": 1, "loss": 0.5}\n')
        pump(engine, store, lambda: store.runs["run-29"].series["loss"].count == 2)
    finally:
        engine.stop()


def test_runs_beyond_the_descriptor_budget_close_and_reopen(tmp_path: Path) -> None:
    for r in range(6):
        (tmp_path / f"run-{r}").mkdir()
        (tmp_path / f"run-{r}" / "metrics.jsonl").write_text('{"step": 0, "loss": 1}\n')
    engine = Engine(tmp_path, watch="poll")
    engine.open_budget = 2
    engine.scan()
    store = RunStore()
    for batch in engine.read(engine.take_dirty()[0]):
        store.apply(batch)
    held = [k for k, s in engine.sources.items() if s.metrics.fd is not None]
    assert held == ["run-4", "run-5"]  # only the two read last keep their files open
    for r in range(6):
        with open(tmp_path / f"run-{r}" / "metrics.jsonl", "a") as handle:
            handle.write('{"step": 1, "loss": 0.5}\n')
    engine.mark(engine.sources)
    for batch in engine.read(engine.take_dirty()[0]):
        store.apply(batch)
    assert all(run.series["loss"].count == 2 for run in store)  # nothing lost or repeated


def test_a_poll_pass_that_waits_does_not_postpone_the_next(tmp_path: Path) -> None:
    # The stat loop stays under its share of a core by what a pass costs it. A pass that
    # mostly waited (for the GIL behind the UI thread, for a core behind other processes)
    # cost nothing: pacing by its wall time once postponed the next poll by 50 times the
    # wait, and an append did not reach the app for over 20 s on a loaded machine.
    run = tmp_path / "run"
    run.mkdir()
    (run / "metrics.jsonl").write_text('{"step": 0, "loss": 1}\n')
    engine = Engine(tmp_path, watch="poll", poll_interval=0.05)
    engine.scan()
    store = RunStore()
    for batch in engine.read(engine.take_dirty()[0]):
        store.apply(batch)
    source = engine.sources["run"]
    check = source.changed
    waited = threading.Event()

    def changed_after_a_wait() -> bool:
        if not waited.is_set():
            time.sleep(0.5)  # descheduled mid-pass: half a second of wall time, no work
            waited.set()
        return check()

    source.changed = changed_after_a_wait  # type: ignore[method-assign]
    passed = threading.Event()
    engine.start(passed.set)
    try:
        assert passed.wait(5)  # the slow first pass is over (it found the file unseen)
        engine.take_dirty()
        with open(run / "metrics.jsonl", "a") as handle:
            handle.write('{"step": 1, "loss": 0.5}\n')
        pump(engine, store, lambda: store.runs["run"].series["loss"].count == 2)
    finally:
        engine.stop()


def test_a_reader_learning_of_more_files_is_not_a_missed_event(samples, monkeypatch) -> None:
    """MLflow's metric files and a Trainer's event files are listed only once read: the
    watched list grows with nothing written, and must not look like a change no event told."""
    import tui.core.engine as engine_module

    monkeypatch.setattr(engine_module, "MISS_GRACE", 0.0)  # judge at once, not after 2 s
    engine = Engine(samples, watch="native")
    keys = engine.scan()
    engine.take_dirty()
    engine.start()
    try:
        assert engine.mode.startswith("inotify")
        for key in keys:
            engine.read_all(key)  # the readers learn of every file of their runs
        engine.reconcile(walk_root=False)
        engine.check_watch()
        assert engine.mode.startswith("inotify"), engine.mode  # real misses: test_watch_faults
    finally:
        engine.stop()


def test_a_walk_in_slices_finds_what_a_whole_walk_finds(tmp_path: Path) -> None:
    for name in ("a/r1", "a/b/r2", "c/r3", "d"):
        (tmp_path / name).mkdir(parents=True)
    for name in ("a/r1", "a/b/r2", "c/r3"):
        (tmp_path / name / "metrics.jsonl").write_text('{"step": 0, "loss": 1}\n')
    (tmp_path / "d" / "train.csv").write_text("epoch,loss\n0,1.0\n")
    adapters = default_adapters()
    whole = walk(tmp_path, adapters)
    sliced = Walk(tmp_path, adapters)
    steps = 0
    while not sliced.step(0.0):  # no time at all: one directory a step
        steps += 1
    assert steps >= 5
    assert sorted(s.key for s in sliced.found.sources) == sorted(s.key for s in whole.sources)
    assert sorted(s.key for s in whole.sources) == ["a/b/r2", "a/r1", "c/r3", "d/train.csv"]
    assert sorted(sliced.found.directories) == sorted(whole.directories)
    # What the caller already holds is left out as it is found.
    known = Walk(tmp_path, adapters, keep=lambda source: source.key != "a/r1")
    known.step()
    assert sorted(s.key for s in known.found.sources) == ["a/b/r2", "c/r3", "d/train.csv"]


def test_a_run_no_event_reported_is_found_by_the_walk_in_slices(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # An observer that reports nothing: only the safety net's walk, a directory per slice
    # here, can find the new run.
    monkeypatch.setattr(Engine, "_start_observer", lambda self: "inotify")
    monkeypatch.setattr(engine_module, "SLICE_SECONDS", 0.0)
    for r in range(10):
        (tmp_path / f"old/run-{r}").mkdir(parents=True)
        (tmp_path / f"old/run-{r}" / "metrics.jsonl").write_text('{"step": 0, "loss": 1}\n')
    engine = Engine(tmp_path, reconcile_interval=0.2)
    engine.scan()
    store = RunStore()
    for batch in engine.read(engine.take_dirty()[0]):
        store.apply(batch)
    engine.start()
    try:
        (tmp_path / "new" / "deep").mkdir(parents=True)
        (tmp_path / "new" / "deep" / "metrics.jsonl").write_text('{"step": 3, "acc": 0.5}\n')
        pump(
            engine,
            store,
            lambda: "new/deep" in store.runs and "acc" in store.runs["new/deep"].series,
        )
        assert len(store.runs) == 11 and engine.mode == "inotify"
    finally:
        engine.stop()


def resident_pages(path: Path) -> int | None:
    """Pages of ``path`` in the page cache (util-linux's fincore), or ``None``."""
    try:
        out = subprocess.run(
            ["fincore", "--raw", "--noheadings", "--output", "PAGES", str(path)],
            capture_output=True,
            text=True,
            check=True,
        ).stdout
    except (OSError, subprocess.CalledProcessError):
        return None
    return int(out.split()[0])


def test_reading_ahead_brings_the_ends_of_runs_files_into_memory(tmp_path: Path) -> None:
    """Before the first paint previews runs one by one, the kernel is asked to read the
    ends of all their files at once: a file out of the page cache has its end back in it,
    and only its end, without a byte read by us."""
    run = tmp_path / "old"
    run.mkdir()
    (run / "run.json").write_text('{"name": "old", "status": "finished"}')
    metrics = run / "metrics.jsonl"
    line = '{"step": %d, "loss": 0.5}\n'
    metrics.write_text("".join(line % step for step in range(100_000)))  # 2.7 MB
    fd = os.open(metrics, os.O_RDONLY)
    try:
        os.fsync(fd)  # written back: its pages can leave the cache
        os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
    finally:
        os.close(fd)
    if resident_pages(metrics) != 0:
        pytest.skip("fincore missing, or this filesystem keeps files in memory")
    engine = Engine(tmp_path, watch="poll")
    assert engine.scan() == ["old"]
    engine.read_ahead(["old"], 8192)
    deadline = time.monotonic() + 10
    while not resident_pages(metrics) and time.monotonic() < deadline:
        time.sleep(0.01)  # the kernel reads it in the background
    pages = resident_pages(metrics)
    assert pages is not None and 2 <= pages < metrics.stat().st_size // 4096 // 2


def test_reading_ahead_opens_no_link_pipe_or_missing_file(tmp_path: Path) -> None:
    """Hints only: a metrics file that is a named pipe (no writer: opening it to read
    would wait for ever), a link to a file elsewhere, or a file gone since the walk are
    passed over."""
    outside = tmp_path / "outside.jsonl"
    outside.write_text('{"step": 0, "loss": 1.0}\n')
    root = tmp_path / "root"
    for name in ("pipe", "link", "gone"):
        run = root / name
        run.mkdir(parents=True)
        (run / "run.json").write_text(f'{{"name": "{name}"}}')
        (run / "metrics.jsonl").write_text('{"step": 0, "loss": 1.0}\n')
    engine = Engine(root, watch="poll")
    keys = engine.scan()
    assert keys == ["gone", "link", "pipe"]
    os.remove(root / "pipe" / "metrics.jsonl")
    os.mkfifo(root / "pipe" / "metrics.jsonl")
    os.remove(root / "link" / "metrics.jsonl")
    os.symlink(outside, root / "link" / "metrics.jsonl")
    os.remove(root / "gone" / "metrics.jsonl")
    done = threading.Event()
    worker = threading.Thread(target=lambda: (engine.read_ahead(keys, 8192), done.set()))
    worker.daemon = True
    worker.start()
    assert done.wait(10)  # it returned: nothing waited on the pipe


def test_runs_whose_files_are_in_memory_are_not_read_ahead(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Files just written are in the page cache: the sample of them says so, and no hint
    is asked for (they would cost a few microseconds a file for nothing)."""
    for name in ("a", "b", "c"):
        run = tmp_path / name
        run.mkdir()
        (run / "run.json").write_text(f'{{"name": "{name}"}}')
        (run / "metrics.jsonl").write_text('{"step": 0, "loss": 1.0}\n' * 1000)
    engine = Engine(tmp_path, watch="poll")
    keys = engine.scan()
    hints: list[int] = []
    monkeypatch.setattr(os, "posix_fadvise", lambda fd, start, length, advice: hints.append(fd))
    engine.read_ahead(keys, 8192)
    assert hints == []
