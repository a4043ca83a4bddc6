"""The engine: discovery, watching and reading, wired together for the app and the CLI.

Data flow (DESIGN.md §2): a watchdog observer (or our own stat loop) marks runs dirty; a
periodic reconcile re-stats every run and re-walks ROOT, because file events are a hint,
not the truth; :meth:`Engine.read` turns dirty runs into immutable batches. The engine
never touches the store: the caller applies the batches on its own thread.
"""

from __future__ import annotations

import contextlib
import dataclasses
import errno
import os
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import TYPE_CHECKING

from tui.core.discover import walk
from tui.core.formats import default_adapters
from tui.core.formats.base import READ_BUDGET, Adapter, Source
from tui.core.store import Batch

if TYPE_CHECKING:  # watchdog is imported when watching starts (it may be unavailable)
    from watchdog.observers.api import BaseObserver

NETWORK_FS = frozenset(
    {
        "nfs",
        "nfs4",
        "cifs",
        "smb3",
        "smbfs",
        "9p",
        "lustre",
        "gpfs",
        "beegfs",
        "ceph",
        "glusterfs",
        "afs",
        "fuse.sshfs",
        "fuse.s3fs",
        "fuse.gcsfuse",
        "virtiofs",
    }
)
RECONCILE_SHARE = 0.002
"""Most of a core the safety-net reconcile may use while inotify does the work."""

SLICE_SECONDS = 0.01
"""About how long one safety-net pass may take (so no moment of idle costs much)."""

POLL_SHARE = 0.02
"""Most of a core the stat loop may use in polling mode."""

_IGNORED_EVENTS = frozenset({"opened", "closed_no_write"})


def open_file_budget() -> int:
    """How many runs may keep their files open, after raising the soft descriptor limit.

    A run holds up to two descriptors (metrics and log). The soft limit is often 1,024
    while the hard one is far higher, so it is raised first; what remains beyond a
    reserve for everything else is shared out, and the least recently read runs close
    their files when it is exceeded (they reopen, and re-verify identity, when read).
    """
    try:
        import resource
    except ImportError:  # not POSIX
        return 256
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    wanted = 65536 if hard == resource.RLIM_INFINITY else min(hard, 65536)
    if soft != resource.RLIM_INFINITY and soft < wanted:
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (wanted, hard))
            soft = wanted
        except (ValueError, OSError):
            pass
    limit = 65536 if soft == resource.RLIM_INFINITY else soft
    return max(8, (limit - 256) // 3)


def is_network_filesystem(path: Path) -> bool:
    """True when ``path`` is on a filesystem other machines may write (NFS, Lustre, FUSE...)."""
    kind = filesystem_type(path) or ""
    return kind in NETWORK_FS or kind.startswith("fuse")


def filesystem_type(path: Path) -> str | None:
    """The type of the filesystem holding ``path`` (from /proc/self/mountinfo), if known."""
    try:
        text = Path("/proc/self/mountinfo").read_text(errors="replace")
    except OSError:
        return None
    target = os.path.realpath(path)
    best, kind = "", None
    for line in text.splitlines():
        left, _, right = line.partition(" - ")
        fields = left.split()
        if len(fields) < 5 or not right:
            continue
        mount = fields[4].encode().decode("unicode_escape")
        if (target == mount or target.startswith(mount.rstrip("/") + "/")) and len(mount) > len(
            best
        ):
            best, kind = mount, right.split()[0]
    return kind


class Engine:
    """Finds the runs under ROOT and reads what is new in them.

    Args:
        root: the directory to watch.
        adapters: format adapters (default: all).
        watch: ``auto`` (inotify unless ROOT is on a network filesystem), ``native`` or
            ``poll``.
        poll_interval: seconds between stat passes in polling mode.
        reconcile_interval: seconds between full re-checks (stat and walk) with inotify.
        walk_interval: seconds between walks of ROOT (new runs) in polling mode.
    """

    def __init__(
        self,
        root: Path,
        adapters: list[Adapter] | None = None,
        *,
        watch: str = "auto",
        poll_interval: float = 1.0,
        reconcile_interval: float = 30.0,
        walk_interval: float = 10.0,
    ) -> None:
        self.root = Path(os.path.abspath(root))
        self.adapters = adapters if adapters is not None else default_adapters()
        self.sources: dict[str, Source] = {}
        self.errors: list[str] = []
        self.watch_request = watch
        self.mode = "not watching"
        self.poll_interval = poll_interval
        self.reconcile_interval = reconcile_interval
        self.walk_interval = walk_interval
        self._dirs: dict[str, set[str]] = {}
        self._dirty: set[str] = set()
        self._rescan = False
        self._lock = threading.Lock()
        self._on_dirty: Callable[[], None] | None = None
        self._observer: BaseObserver | None = None
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._previewed: set[str] = set()
        self._announced: set[str] = set()
        self._open: OrderedDict[str, None] = OrderedDict()
        self.open_budget = open_file_budget()

    # Discovery -------------------------------------------------------------------------
    def scan(self) -> list[str]:
        """Walk ROOT; register new runs (marked dirty) and return their keys."""
        found = walk(self.root, self.adapters)
        self.errors = found.errors
        new: list[str] = []
        with self._lock:
            for source in found.sources:
                if source.key in self.sources:
                    continue
                self.sources[source.key] = source
                self._dirs.setdefault(str(source.directory), set()).add(source.key)
                new.append(source.key)
            self._rescan = False
        if new:
            self.mark(new)
        return new

    # Dirty tracking --------------------------------------------------------------------
    def _signal(self) -> None:
        callback = self._on_dirty
        if callback is not None:
            with contextlib.suppress(Exception):  # the UI's callback must not kill our thread
                callback()

    def mark_path(self, path: str) -> None:
        """Note that something changed at ``path`` (called from watcher threads)."""
        directory = path
        became_dirty = False
        with self._lock:
            for _ in range(4):
                keys = self._dirs.get(directory)
                if keys is not None:
                    if not keys <= self._dirty:
                        became_dirty = not self._dirty
                        self._dirty |= keys
                    break
                parent = os.path.dirname(directory)
                if parent == directory or len(parent) < len(str(self.root)):
                    break
                directory = parent
            else:
                keys = None
            if keys is None and not self._rescan:
                self._rescan = True
                became_dirty = not self._dirty
        if became_dirty:
            self._signal()

    def mark(self, keys: Iterable[str]) -> None:
        """Mark runs dirty by key."""
        with self._lock:
            was_empty = not self._dirty and not self._rescan
            self._dirty.update(k for k in keys if k in self.sources)
            fire = was_empty and bool(self._dirty)
        if fire:
            self._signal()

    def take_dirty(self) -> tuple[list[str], bool]:
        """Return and clear the dirty runs, and whether ROOT needs a new walk."""
        with self._lock:
            keys, rescan = sorted(self._dirty), self._rescan
            self._dirty.clear()
            self._rescan = False
        return keys, rescan

    @property
    def dirty(self) -> bool:
        """Whether anything waits to be read."""
        return bool(self._dirty) or self._rescan

    # Reading ---------------------------------------------------------------------------
    def run_files(self) -> dict[str, list[Path]]:
        """Every known run's data files, by key (what a writer process would hold open)."""
        return {key: source.watched_files() for key, source in list(self.sources.items())}

    def preview(self, key: str, tail_bytes: int = 65536) -> Batch | None:
        """The end of a run's history for the first paint (see ``Source.preview``)."""
        source = self.sources[key]
        batch = source.preview(tail_bytes)
        if batch is not None:
            self._previewed.add(key)
            self._announced.add(key)
        return batch

    def read(self, keys: Iterable[str], budget: int = READ_BUDGET) -> list[Batch]:
        """Read what is new in ``keys``; runs that hit the budget stay dirty."""
        batches: list[Batch] = []
        again: list[str] = []
        for key in keys:
            source = self.sources.get(key)
            if source is None:
                continue
            try:
                batch = source.read(budget)
            except Exception as exc:  # one broken run must not stop the others
                batch = source.batch(notes=(f"reading failed: {exc!r}"[:300],))
            if batch is None and key not in self._announced:
                batch = source.batch()  # an empty run still shows up in the table
            self._announced.add(key)
            if key in self._previewed:
                self._previewed.discard(key)
                batch = (
                    dataclasses.replace(batch, replace=True)
                    if batch
                    else source.batch(replace=True)
                )
            if batch is not None:
                batches.append(batch)
            if source.more:
                again.append(key)
            self._opened(key)
        if again:
            self.mark(again)
        return batches

    def _opened(self, key: str) -> None:
        """Note that ``key`` was just read; close the files of the runs read longest ago."""
        self._open[key] = None
        self._open.move_to_end(key)
        while len(self._open) > self.open_budget:
            oldest, _ = self._open.popitem(last=False)
            source = self.sources.get(oldest)
            if source is not None:
                source.close()

    def adopt(self, source: Source, batches: list[Batch]) -> list[Batch]:
        """Take back a source read in another process, with its file positions.

        Returns its batches, the first marked as replacing the preview shown so far.
        """
        key = source.key
        with self._lock:
            self.sources[key] = source
        self._open.pop(key, None)  # read (and closed) in another process
        out = list(batches)
        if key in self._previewed:
            self._previewed.discard(key)
            out = (
                [dataclasses.replace(out[0], replace=True), *out[1:]]
                if out
                else [source.batch(replace=True)]
            )
        elif key not in self._announced and not out:
            out = [source.batch()]
        self._announced.add(key)
        return out

    def read_all(self, key: str, budget: int = 64 * 1024 * 1024) -> list[Batch]:
        """Read a run to its current end."""
        batches = []
        while True:
            batches.extend(self.read([key], budget))
            source = self.sources[key]
            if not source.more:
                with self._lock:
                    self._dirty.discard(key)
                return batches

    # Watching --------------------------------------------------------------------------
    def start(self, on_dirty: Callable[[], None] | None = None) -> None:
        """Start watching (watchdog or polling) and the reconcile loop."""
        self._on_dirty = on_dirty
        request = self.watch_request
        kind = filesystem_type(self.root)
        if request == "poll":
            self.mode = "polling (requested)"
        elif (request == "auto" and kind in NETWORK_FS) or (kind or "").startswith("fuse"):
            self.mode = f"polling ({kind} is a network filesystem)"
        else:
            self.mode = self._start_observer()
        self._thread = threading.Thread(target=self._loop, name="tracktui-reconcile", daemon=True)
        self._thread.start()

    def _start_observer(self) -> str:
        try:
            from watchdog.events import FileSystemEvent, FileSystemEventHandler
            from watchdog.observers import Observer
        except ImportError:
            return "polling (watchdog unavailable)"
        engine = self

        class Handler(FileSystemEventHandler):
            def on_any_event(self, event: FileSystemEvent) -> None:
                try:
                    if event.event_type in _IGNORED_EVENTS:
                        return
                    engine.mark_path(os.fsdecode(event.src_path))
                    dest = getattr(event, "dest_path", "")
                    if dest:
                        engine.mark_path(os.fsdecode(dest))
                except Exception:  # a handler exception would kill the observer thread
                    pass

        observer = Observer()
        try:
            observer.schedule(Handler(), str(self.root), recursive=True)
            observer.start()
        except OSError as exc:
            with contextlib.suppress(Exception):
                observer.stop()
            if exc.errno == errno.ENOSPC:
                return "polling (inotify watch limit reached: raise fs.inotify.max_user_watches)"
            if exc.errno == errno.EMFILE:
                return "polling (inotify instance limit reached: fs.inotify.max_user_instances)"
            return f"polling (inotify failed: {exc.strerror or exc})"
        self._observer = observer
        return "inotify"

    def _loop(self) -> None:
        """Re-stat the runs (and re-walk ROOT) on a schedule that depends on the mode.

        With inotify the events do the work and this is a safety net (lost events, queue
        overflows): the runs are re-checked a slice at a time, each slice costing about
        ``SLICE_SECONDS``, paced so the checks use at most ``RECONCILE_SHARE`` of a core
        and every run is seen at least every ``reconcile_interval``; ROOT is re-walked
        after each full round. When polling it is the only source of news: every run is
        re-checked every ``poll_interval`` (stretched to stay under ``POLL_SHARE``) and
        ROOT is walked every ``walk_interval``.

        A pass costs what it took of this thread's CPU time, not its wall time: waiting
        for the GIL behind the UI thread, or for a core behind other processes, is no
        work of ours, and pacing by it would postpone the next pass by 50 (polling) or
        500 times the wait (an append once took over 20 s to show on a loaded machine).
        """
        position = 0
        per_run = 0.0  # CPU seconds to re-check one run, as last measured
        last_walk = time.monotonic()
        # Not at once: the first paint and the first reads need the machine more.
        pause = (
            self.poll_interval
            if self.mode.startswith("polling")
            else min(5.0, self.reconcile_interval)
        )
        while not self._stop.wait(pause):
            started = time.monotonic()
            cpu_started = time.thread_time()
            keys = list(self.sources)
            polling = self.mode.startswith("polling")
            if polling or not keys or per_run == 0.0:
                chunk = keys
            else:
                chunk = keys[position : position + max(20, int(SLICE_SECONDS / per_run))]
            position = position + len(chunk) if chunk is not keys else len(keys)
            full_round = position >= len(keys)
            if full_round:
                position = 0
            walk_every = self.walk_interval if polling else self.reconcile_interval
            walk = full_round and started - last_walk >= walk_every
            try:
                self.reconcile(walk_root=walk, keys=chunk)
            except Exception as exc:  # keep the loop alive whatever a filesystem does
                self.errors.append(f"reconcile failed: {exc!r}")
            cost = time.thread_time() - cpu_started
            if walk:
                last_walk = started
            elif chunk:
                per_run = cost / len(chunk)
            if polling:
                pause = max(self.poll_interval, cost / POLL_SHARE)
            else:
                rounds = max(1, -(-len(keys) // max(1, len(chunk))))
                pause = max(self.reconcile_interval / rounds, cost / RECONCILE_SHARE)
            pause = max(0.0, pause - (time.monotonic() - started))

    def reconcile(self, walk_root: bool = True, keys: list[str] | None = None) -> None:
        """Stat runs (all, or ``keys``) and walk ROOT for new ones: the truth behind the
        file events."""
        observer = self._observer
        if observer is not None and not observer.is_alive():
            self._observer = None
            self.mode = "polling (file watcher stopped unexpectedly)"
        sources = self.sources
        chosen = list(sources) if keys is None else keys
        changed = [key for key in chosen if (source := sources.get(key)) and source.changed()]
        if walk_root:
            changed.extend(self.scan())
        if changed:
            self.mark(changed)

    def stop(self) -> None:
        """Stop watching and close every file."""
        self._stop.set()
        observer = self._observer
        if observer is not None:
            observer.stop()
            observer.join(timeout=2)
        if self._thread is not None:
            self._thread.join(timeout=2)
        for source in self.sources.values():
            source.close()
