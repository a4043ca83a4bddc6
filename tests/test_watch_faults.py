"""The watcher's own failures, each brought about for real (issue 10 items 6, 7 and 8).

- inotify's limits: reached for real in a user namespace of our own, whose limits
  (``/proc/sys/user/max_inotify_instances`` and ``max_inotify_watches``) the kernel applies
  to everything in it, and nothing outside it: no other process of the machine (nor another
  test running at the same time) is starved, and nothing is left to restore.
- a watcher that dies or goes deaf: watchdog's threads stopped, its dispatch thread stuck
  in a handler.
- a FUSE mount with no subtype: a real one, served by a minimal FUSE server below, in a
  mount namespace of its own (stacked on a tmpfs, at a path with a space and an accent,
  as mountinfo escapes them).
- ROOT renamed away and back, deleted and made again.
- a run directory we may not read, and a file made readable later: as a real second uid
  (``nobody``), in a forked child that drops root before reading anything.

No test waits a fixed time: each waits for a condition, with a deadline that only guards
against a hang.
"""

from __future__ import annotations

import contextlib
import json
import os
import pwd
import select
import shutil
import subprocess
import sys
import tempfile
import threading
import time
import traceback
from collections.abc import Callable
from pathlib import Path
from typing import IO, Any

import pytest
from conftest import table_of, wait_for

from tui.core.engine import GONE, Engine
from tui.core.store import RunStore

SIZE = (140, 40)


def pump(engine: Engine, store: RunStore, until: Callable[[], bool], timeout: float = 20) -> None:
    """Apply what the engine reads, as the app's reader does, until ``until()`` holds."""
    deadline = time.monotonic() + timeout
    while not until():
        if time.monotonic() > deadline:
            raise AssertionError(f"condition not reached in time (mode: {engine.mode})")
        keys, rescan = engine.take_dirty()
        if rescan:
            keys = sorted(set(keys) | set(engine.scan()))
        for batch in engine.read(keys):
            store.apply(batch)
        time.sleep(0.02)


def make_run(directory: Path, steps: int = 1) -> Path:
    directory.mkdir(parents=True)
    path = directory / "metrics.jsonl"
    path.write_text("".join(f'{{"step": {i}, "loss": 1.0}}\n' for i in range(steps)))
    return path


def append(path: Path, step: int) -> None:
    with path.open("a") as handle:
        handle.write(f'{{"step": {step}, "loss": 0.5}}\n')


def steps(store: RunStore, key: str) -> int:
    run = store.runs.get(key)
    series = run.series.get("loss") if run is not None else None
    return 0 if series is None else series.count


# inotify's limits, in a user namespace of our own ---------------------------------------


def _user_namespaces() -> str | None:
    """Why limits cannot be set in a user namespace here, or ``None`` when they can."""
    if shutil.which("unshare") is None:
        return "needs unshare(1)"
    probe = subprocess.run(
        ["unshare", "-U", "-r", "sh", "-c", "echo 5 > /proc/sys/user/max_inotify_watches"],
        capture_output=True,
        timeout=30,
    )
    if probe.returncode != 0:
        return f"user namespaces or their inotify limits unavailable: {probe.stderr!r}"
    return None


needs_userns = pytest.mark.skipif(_user_namespaces() is not None, reason=str(_user_namespaces()))

PRELUDE = """
import json, os, sys, time
from pathlib import Path
from tui.core.engine import Engine
from tui.core.store import RunStore

def limit(name, value):
    with open(f"/proc/sys/user/max_inotify_{name}", "w") as handle:
        handle.write(str(value))

def pump(engine, store, until, timeout=20):
    deadline = time.monotonic() + timeout
    while not until():
        if time.monotonic() > deadline:
            raise SystemExit(f"condition not reached in time (mode: {engine.mode})")
        keys, rescan = engine.take_dirty()
        if rescan:
            keys = sorted(set(keys) | set(engine.scan()))
        for batch in engine.read(keys):
            store.apply(batch)
        time.sleep(0.02)

def count(store, key):
    run = store.runs.get(key)
    return 0 if run is None or "loss" not in run.series else run.series["loss"].count

def append(path, step):
    with open(path, "a") as handle:
        handle.write(json.dumps({"step": step, "loss": 0.5}) + "\\n")

root = Path(sys.argv[1])
"""


def in_namespace(script: str, root: Path) -> dict[str, Any]:
    """Run ``script`` (after :data:`PRELUDE`) in a new user namespace; its last output line
    is a JSON object, returned."""
    done = subprocess.run(
        ["unshare", "-U", "-r", sys.executable, "-c", PRELUDE + script, str(root)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr + done.stdout
    return dict(json.loads(done.stdout.strip().splitlines()[-1]))


@needs_userns
def test_instance_limit_at_start_falls_back_to_polling(tmp_path: Path) -> None:
    # watchdog's Observer() opens the inotify instance; reaching the limit there crashed
    # the app (it was outside the error handling).
    metrics = make_run(tmp_path / "run")
    result = in_namespace(
        """
limit("instances", 0)
engine = Engine(root, watch="native", poll_interval=0.1)
engine.scan()
store = RunStore()
engine.start()
pump(engine, store, lambda: count(store, "run") == 1)
append(sys.argv[2], 1)
pump(engine, store, lambda: count(store, "run") == 2)
print(json.dumps({"mode": engine.mode}))
engine.stop()
""".replace("sys.argv[2]", repr(str(metrics))),
        tmp_path,
    )
    assert result["mode"] == (
        "polling (inotify instance limit reached: raise fs.inotify.max_user_instances)"
    )


@needs_userns
def test_watch_limit_at_start_falls_back_to_polling(tmp_path: Path) -> None:
    # ROOT itself can be watched, one run directory cannot: watchdog ignores that failure.
    for name in ("a", "b", "c"):
        make_run(tmp_path / name)
    result = in_namespace(
        """
limit("watches", 2)
engine = Engine(root, watch="native", poll_interval=0.1)
engine.scan()
store = RunStore()
engine.start()
pump(engine, store, lambda: all(count(store, k) == 1 for k in "abc"))
for key in "abc":
    append(root / key / "metrics.jsonl", 1)
pump(engine, store, lambda: all(count(store, k) == 2 for k in "abc"))
print(json.dumps({"mode": engine.mode}))
engine.stop()
""",
        tmp_path,
    )
    assert result["mode"].startswith(
        "polling (inotify watch limit reached: raise fs.inotify.max_user_watches; "
    )
    assert "2 directories under ROOT not watched" in result["mode"]


@needs_userns
def test_watch_limit_reached_while_running_falls_back_to_polling(tmp_path: Path) -> None:
    make_run(tmp_path / "first")
    result = in_namespace(
        """
limit("watches", 2)  # ROOT and the first run: every watch is taken
engine = Engine(root, watch="native", poll_interval=0.1)
engine.scan()
store = RunStore()
engine.start()
started = engine.mode
pump(engine, store, lambda: count(store, "first") == 1)
late = root / "late"
late.mkdir()
append(late / "metrics.jsonl", 0)
pump(engine, store, lambda: engine.mode != "inotify")
append(late / "metrics.jsonl", 1)
pump(engine, store, lambda: count(store, "late") == 2)
print(json.dumps({"started": started, "mode": engine.mode}))
engine.stop()
""",
        tmp_path,
    )
    assert result["started"] == "inotify"
    assert result["mode"] == (
        "polling (inotify watch limit reached: raise fs.inotify.max_user_watches; "
        "1 directory under ROOT not watched)"
    )


@needs_userns
def test_instance_limit_when_the_watcher_restarts_falls_back_to_polling(tmp_path: Path) -> None:
    metrics = make_run(tmp_path / "run")
    result = in_namespace(
        f"""
engine = Engine(root, watch="native", poll_interval=0.1)
engine.scan()
store = RunStore()
engine.start()
pump(engine, store, lambda: count(store, "run") == 1)
limit("instances", 0)  # the one in use stays; a new one cannot be had
for emitter in list(engine._observer.emitters):
    emitter.stop()
append({str(metrics)!r}, 1)
pump(engine, store, lambda: count(store, "run") == 2 and engine.mode != "inotify")
print(json.dumps({{"mode": engine.mode}}))
engine.stop()
""",
        tmp_path,
    )
    assert result["mode"] == (
        "polling (the file watcher's event thread stopped; restarting it failed: "
        "inotify instance limit reached: raise fs.inotify.max_user_instances)"
    )


@needs_userns
def test_app_starts_under_the_instance_limit_and_says_it_polls(tmp_path: Path) -> None:
    make_run(tmp_path / "run")
    result = in_namespace(
        """
import asyncio
from tui.app.app import TrackApp

async def main():
    limit("instances", 0)
    app = TrackApp(root, watch="native")
    async with app.run_test(size=(140, 40)) as pilot:
        deadline = time.monotonic() + 30
        while app.watch_mode == "not watching" or "run" not in app.store.runs:
            assert time.monotonic() < deadline, "the app never started watching"
            await pilot.pause(0.05)
        app.screen.update_bars()
        await pilot.pause()
        top = app.screen.query_one("#topbar")
        text = "".join(s.text for s in top.render_lines(top.region.reset_offset))
        told = [n.message for n in app._notifications]
        return {"top": text, "told": told}

print(json.dumps(asyncio.run(main())))
""",
        tmp_path,
    )
    assert "watch: polling (inotify instance limit reached" in result["top"]
    assert any("inotify instance limit reached" in message for message in result["told"])


# A watcher that dies or stops delivering ------------------------------------------------


def _stop_emitters(engine: Engine) -> None:
    assert engine._observer is not None
    for emitter in list(engine._observer.emitters):
        emitter.stop()


def _stop_reader(engine: Engine) -> None:
    # watchdog's inotify observer reads its descriptor in a thread of its own
    reader = engine._observer._inotify_fd  # type: ignore[union-attr]
    reader.stop()


def _stop_dispatcher(engine: Engine) -> None:
    assert engine._observer is not None
    engine._observer.stop()


@pytest.mark.parametrize(
    ("kill", "said"),
    [
        (_stop_emitters, "the file watcher's event thread stopped"),
        (_stop_reader, "the inotify reader thread stopped"),
        (_stop_dispatcher, "the file watcher's dispatch thread stopped"),
    ],
    ids=["emitter", "inotify-reader", "dispatcher"],
)
def test_a_dead_watcher_thread_is_restarted_and_the_append_arrives(
    tmp_path: Path, kill: Callable[[Engine], None], said: str
) -> None:
    metrics = make_run(tmp_path / "run")
    engine = Engine(tmp_path, watch="native")  # the reconcile would take 30 s
    engine.scan()
    store = RunStore()
    engine.start()
    try:
        pump(engine, store, lambda: steps(store, "run") == 1)
        assert engine.mode == "inotify"
        kill(engine)
        append(metrics, 1)
        pump(engine, store, lambda: steps(store, "run") == 2)
        assert engine.mode == f"inotify (restarted: {said})"
        append(metrics, 2)  # and the new observer delivers
        pump(engine, store, lambda: steps(store, "run") == 3)
    finally:
        engine.stop()


def test_a_watcher_that_stops_delivering_falls_back_to_polling(tmp_path: Path) -> None:
    # Every thread stays alive, but the dispatch thread is stuck in a handler: no event
    # reaches the engine. The reconcile finds the append no event reported.
    from watchdog.events import FileSystemEvent, FileSystemEventHandler

    metrics = make_run(tmp_path / "run")
    engine = Engine(tmp_path, watch="native", reconcile_interval=0.5)
    engine.scan()
    store = RunStore()
    engine.start()
    stuck, release = threading.Event(), threading.Event()

    class Stuck(FileSystemEventHandler):
        def on_any_event(self, event: FileSystemEvent) -> None:
            if os.path.basename(os.fsdecode(event.src_path)) == "trigger":
                stuck.set()
                release.wait(60)

    try:
        pump(engine, store, lambda: steps(store, "run") == 1)
        assert engine._observer is not None
        engine._observer.schedule(Stuck(), str(tmp_path), recursive=True)
        (tmp_path / "trigger").write_text("")
        assert stuck.wait(10)
        append(metrics, 1)
        pump(engine, store, lambda: engine.mode.startswith("polling"))
        assert engine.mode == "polling (file events missed changes to 1 run(s), e.g. run)"
        pump(engine, store, lambda: steps(store, "run") == 2)
        append(metrics, 2)
        pump(engine, store, lambda: steps(store, "run") == 3)
    finally:
        release.set()
        engine.stop()


def test_events_for_every_format_keep_inotify_trusted(samples: Path) -> None:
    # The other side of the check above: a change the events did report is never taken
    # for a miss, whatever the layout (NePS searches hold their configs' directories,
    # MLflow stores metric files a level down, CSV and Valohai runs are single files).
    root = samples / "foreign"
    engine = Engine(root, watch="native", reconcile_interval=0.3)
    engine.scan()
    store = RunStore()
    pump(engine, store, lambda: not engine.dirty)
    engine.start()
    try:
        assert engine.mode == "inotify"
        sources = list(engine.sources.values())

        def settled(since: float) -> None:  # every run stat'ed since, every suspect judged
            pump(engine, store, lambda: all(engine._checked.get(s.key, 0) > since for s in sources))
            pump(engine, store, lambda: not engine._suspects)

        touched = time.monotonic()
        for source in sources:
            for file in source.watched_files():
                with contextlib.suppress(FileNotFoundError):
                    os.utime(file)  # size kept; times moved: the stat check sees it
        settled(touched)
        assert engine.mode == "inotify"
        touched = time.monotonic()
        homes = {s.directory for s in sources}
        nested = [s for s in sources if homes & set(s.directory.parents)]
        assert nested  # NePS configs, inside their searches
        for source in nested:  # a new file in a config moves its search's files too
            (source.directory / "touched.tmp").write_text("")
        settled(touched)
        assert engine.mode == "inotify"
    finally:
        engine.stop()


# FUSE without a subtype -----------------------------------------------------------------

FUSE_SERVER = r"""
import ctypes, errno, json, os, stat, struct, sys, threading

from tui.core.engine import Engine
from tui.core.filesystems import filesystem_type, is_network_filesystem

base = sys.argv[1]
point = os.path.join(base, "données x")  # mountinfo spells the space \040, the accent raw
os.mkdir(point)
libc = ctypes.CDLL(None, use_errno=True)

def mount(source, target, kind, data):
    if libc.mount(source, target.encode(), kind, 0, data) != 0:
        raise OSError(ctypes.get_errno(), "mount " + kind.decode())

mount(b"under", point, b"tmpfs", b"size=1m")  # the FUSE mount hides this one
fuse = os.open("/dev/fuse", os.O_RDWR)
mount(b"bare", point, b"fuse", b"fd=%d,rootmode=40000,user_id=0,group_id=0" % fuse)

def reply(unique, error=0, body=b""):
    os.write(fuse, struct.pack("<IiQ", 16 + len(body), -error, unique) + body)

def root_attr():
    now = 1700000000
    return struct.pack(
        "<QIIQQQQQQIIIIIIIIII", 1, 0, 0, 1, 0, 0, now, now, now, 0, 0, 0,
        stat.S_IFDIR | 0o755, 2, 0, 0, 0, 4096, 0,
    )

def serve():
    while True:
        try:
            message = os.read(fuse, 1 << 20 | 4096)
        except OSError:
            return  # unmounted
        length, opcode, unique = struct.unpack_from("<IIQ", message)
        if opcode == 26:  # INIT
            major, minor, readahead = struct.unpack_from("<III", message, 40)
            reply(unique, 0, struct.pack("<IIIIHHIIHHII", 7, 31, readahead, 0, 16, 12,
                                         65536, 1, 0, 0, 0, 0) + bytes(24))
        elif opcode == 3:  # GETATTR
            reply(unique, 0, root_attr())
        elif opcode == 27:  # OPENDIR
            reply(unique, 0, struct.pack("<QII", 1, 0, 0))
        elif opcode in (28, 29):  # READDIR (empty), RELEASEDIR
            reply(unique)
        elif opcode == 1:  # LOOKUP
            reply(unique, errno.ENOENT)
        elif opcode in (2, 42, 36):  # FORGET, BATCH_FORGET, INTERRUPT: no reply
            continue
        elif opcode == 38:  # DESTROY
            reply(unique)
            return
        else:
            reply(unique, errno.ENOSYS)

threading.Thread(target=serve, daemon=True).start()
kind = filesystem_type(point)
engine = Engine(point, watch="auto", poll_interval=30)
engine.start()
mode = engine.mode
engine.stop()
print(json.dumps([kind, is_network_filesystem(point), mode, sorted(os.listdir(point))]))
libc.umount2(point.encode(), 2)  # MNT_DETACH
"""


def test_fuse_mount_without_a_subtype_is_polled(tmp_path: Path) -> None:
    if not os.path.exists("/dev/fuse") or os.getuid() != 0 or shutil.which("unshare") is None:
        pytest.skip("needs root, /dev/fuse and unshare(1)")
    unshare = ["unshare", "-m", "--propagation", "private"]
    done = subprocess.run(
        [*unshare, sys.executable, "-c", FUSE_SERVER, str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    kind, remote, mode, listing = json.loads(done.stdout.strip().splitlines()[-1])
    assert (kind, remote, listing) == ("fuse", True, [])
    assert mode == "polling (fuse is a network filesystem)"


# ROOT deleted or renamed ----------------------------------------------------------------


@pytest.mark.parametrize("watch", ["native", "poll"])
def test_root_renamed_away_and_back_is_reattached(tmp_path: Path, watch: str) -> None:
    root = tmp_path / "root"
    metrics = make_run(root / "run")
    engine = Engine(root, watch=watch, poll_interval=0.1)
    engine.scan()
    store = RunStore()
    engine.start()
    try:
        pump(engine, store, lambda: steps(store, "run") == 1)
        wanted = engine.mode
        root.rename(tmp_path / "away")
        pump(engine, store, lambda: engine.root_gone)
        assert engine.mode == GONE
        (tmp_path / "away").rename(root)
        pump(engine, store, lambda: not engine.root_gone)
        assert engine.mode == wanted
        append(metrics, 1)
        pump(engine, store, lambda: steps(store, "run") == 2)
    finally:
        engine.stop()


def test_root_deleted_and_made_again_is_reattached(tmp_path: Path) -> None:
    root = tmp_path / "root"
    make_run(root / "run")
    engine = Engine(root, watch="native")
    engine.scan()
    store = RunStore()
    engine.start()
    try:
        pump(engine, store, lambda: steps(store, "run") == 1)
        shutil.rmtree(root)
        pump(engine, store, lambda: engine.root_gone)
        metrics = make_run(root / "run", steps=3)  # a new ROOT: new inodes
        pump(engine, store, lambda: not engine.root_gone and engine.mode == "inotify")
        pump(engine, store, lambda: steps(store, "run") >= 3)
        append(metrics, 3)  # the new ROOT is watched
        pump(engine, store, lambda: store.runs["run"].series["loss"].last_step == 3)
    finally:
        engine.stop()


async def test_app_says_root_is_gone_and_reattaches_when_it_returns(tmp_path: Path) -> None:
    from tui.app.app import TrackApp

    root = tmp_path / "root"
    metrics = make_run(root / "run")
    app = TrackApp(root, watch="poll")
    async with app.run_test(size=SIZE) as pilot:
        await wait_for(pilot, lambda: "run" in table_of(app).shown)
        await wait_for(pilot, lambda: app.watch_mode == "polling (requested)")
        top = app.screen.query_one("#topbar")

        def bar() -> str:
            return "".join(s.text for s in top.render_lines(top.region.reset_offset))

        root.rename(tmp_path / "away")
        await wait_for(pilot, lambda: "ROOT is gone" in bar())
        assert any("ROOT is gone" in n.message for n in app._notifications)
        assert "run" in table_of(app).shown  # what was read stays browsable
        (tmp_path / "away").rename(root)
        await wait_for(pilot, lambda: "watch: polling (requested)" in bar())
        assert any("ROOT is back" in n.message for n in app._notifications)
        append(metrics, 1)
        await wait_for(pilot, lambda: steps(app.store, "run") == 2)


# Permissions, as a real second uid --------------------------------------------------------


def _nobody() -> int | None:
    if os.getuid() != 0:
        return None
    try:
        return pwd.getpwnam("nobody").pw_uid
    except KeyError:
        return None


needs_nobody = pytest.mark.skipif(_nobody() is None, reason="needs root and a 'nobody' account")


@contextlib.contextmanager
def shared_root() -> Any:
    """A ROOT that nobody may enter (pytest's tmp_path is private to root)."""
    root = Path(tempfile.mkdtemp(prefix="tracktui-perm-", dir="/tmp"))
    root.chmod(0o755)
    try:
        yield root
    finally:
        shutil.rmtree(root, ignore_errors=True)


def as_nobody(work: Callable[[IO[str]], None]) -> IO[str]:
    """Run ``work`` in a forked child that has become ``nobody`` (uid, gid, no groups);
    returns the read end of what it writes. Everything it imports must be imported already:
    our interpreter's own files are under /root, which nobody cannot read."""
    uid = _nobody()
    assert uid is not None
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: never returns into pytest
        code = 1
        try:
            os.close(read)
            os.setgroups([])
            os.setgid(uid)
            os.setuid(uid)
            with os.fdopen(write, "w", buffering=1) as out:
                work(out)
            code = 0
        except BaseException:
            traceback.print_exc()
        finally:
            os._exit(code)
    os.close(write)
    reader = os.fdopen(read)
    _children.append(pid)
    return reader


_children: list[int] = []


def line_from(stream: IO[str], timeout: float = 30) -> str:
    """The child's next line (a hang guard, not a timing assertion)."""
    ready, _, _ = select.select([stream], [], [], timeout)
    assert ready, "the child said nothing in time"
    return stream.readline()


def reap() -> int:
    pid = _children.pop()
    _, status = os.waitpid(pid, 0)
    return os.waitstatus_to_exitcode(status)


@needs_nobody
def test_unreadable_run_directory_is_listed_as_no_permission(tmp_path: Path) -> None:
    import argparse

    from rich.console import Console  # noqa: F401 (imported before dropping root)

    from tui.commands import status

    with shared_root() as root:
        make_run(root / "open")
        make_run(root / "closed")
        (root / "closed").chmod(0o000)

        def run(args: list[str], out: IO[str]) -> None:
            parsed = argparse.Namespace(
                root=root,
                json="--json" in args,
                csv=False,
                sort=None,
                filter=None,
                rules=None,
                follow=False,
                workers=None,
            )
            saved = sys.stdout
            sys.stdout = out  # status writes JSON to sys.stdout.buffer
            try:
                status.main(parsed)
            finally:
                sys.stdout = saved

        # Once as root: every module status needs is then imported (and all can be read).
        with open(os.devnull, "w") as sink:
            run(["--json"], sink)

        def work(out: IO[str]) -> None:
            buffer = _Capture()
            run(["--json"], buffer)  # type: ignore[arg-type]
            out.write(buffer.getvalue().replace("\n", " ") + "\n")
            table = _Capture()
            run([], table)  # type: ignore[arg-type]
            out.write(json.dumps(table.getvalue()) + "\n")

        stream = as_nobody(work)
        document = json.loads(line_from(stream))
        table = json.loads(line_from(stream))
        assert reap() == 0
    runs = {run["path"]: run for run in document["runs"]}
    assert set(runs) == {"open", "closed"}
    assert runs["open"]["format"] == "tracktui" and runs["open"]["metrics"]["loss"]["count"] == 1
    closed = runs["closed"]
    assert closed["format"] == "no permission"
    assert closed["health"]["notes"] == [
        "no permission: closed cannot be listed (Permission denied); "
        "looked at again each time ROOT is walked"
    ]
    assert "no permission" in table and "closed" in table


class _Capture:
    """A text stream with a ``buffer`` (what ``status --json`` writes bytes to)."""

    def __init__(self) -> None:
        import io

        self.buffer = io.BytesIO()
        self._text = io.StringIO()

    def write(self, text: str) -> int:
        return self._text.write(text)

    def flush(self) -> None:
        pass

    def isatty(self) -> bool:
        return False

    def getvalue(self) -> str:
        return self.buffer.getvalue().decode() + self._text.getvalue()


@needs_nobody
def test_a_file_made_readable_later_is_read_again_when_polling(tmp_path: Path) -> None:
    with shared_root() as root:
        metrics = make_run(root / "run", steps=2)
        (root / "run").chmod(0o755)
        metrics.chmod(0o600)  # root's, and private: nobody cannot read it yet

        def work(out: IO[str]) -> None:
            engine = Engine(root, watch="poll", poll_interval=0.1)
            engine.scan()
            store = RunStore()
            engine.start()
            try:
                pump(engine, store, lambda: "run" in store.runs)
                out.write(json.dumps(store.runs["run"].health.notes) + "\n")
                pump(engine, store, lambda: steps(store, "run") == 2, timeout=60)
                out.write(json.dumps(engine.mode) + "\n")
            finally:
                engine.stop()

        stream = as_nobody(work)
        notes = json.loads(line_from(stream))
        assert notes == ["metrics.jsonl: Permission denied"]
        metrics.chmod(0o644)  # size and mtime stay: only the change time moves
        assert json.loads(line_from(stream, 60)) == "polling (requested)"
        assert reap() == 0


@needs_nobody
def test_a_directory_made_readable_later_shows_its_run(tmp_path: Path) -> None:
    with shared_root() as root:
        make_run(root / "closed", steps=2)
        (root / "closed").chmod(0o000)

        def work(out: IO[str]) -> None:
            engine = Engine(root, watch="poll", poll_interval=0.1, walk_interval=0.2)
            engine.scan()
            store = RunStore()
            engine.start()
            try:
                pump(engine, store, lambda: "closed" in store.runs)
                out.write(json.dumps(store.runs["closed"].format) + "\n")
                pump(engine, store, lambda: steps(store, "closed") == 2, timeout=60)
                out.write(json.dumps(store.runs["closed"].format) + "\n")
            finally:
                engine.stop()

        stream = as_nobody(work)
        assert json.loads(line_from(stream)) == "no permission"
        (root / "closed").chmod(0o755)
        assert json.loads(line_from(stream, 60)) == "tracktui"
        assert reap() == 0
