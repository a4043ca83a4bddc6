"""The engine: discovery, watching and reading, wired together for the app and the CLI.

Data flow (DESIGN.md §2): a watchdog observer (or our own stat loop) marks runs dirty; a
periodic reconcile re-stats every run and re-walks ROOT, because file events are a hint,
not the truth; :meth:`Engine.read` turns dirty runs into immutable batches. The engine
never touches the store: the caller applies the batches on its own thread.

The watcher is watched too (:meth:`Engine.check_watch`): inotify's limits reached at start
or later (a directory the kernel would not watch), a watcher thread that died, file events
that never came for a change the reconcile found, and ROOT itself deleted, renamed or
unmounted. Each is noticed, said in :attr:`Engine.mode`, and answered by a restart, by
polling the whole of ROOT, or by waiting for ROOT to return and attaching to it again.
"""

from __future__ import annotations

import contextlib
import dataclasses
import errno
import os
import stat
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path
from types import MappingProxyType
from typing import TYPE_CHECKING

from tui.core.discover import Found, UnreadableSource, Walk, walk
from tui.core.filesystems import (
    directory_identity,
    filesystem_type,
    inotify_fds,
    is_remote,
    kernel_device,
    open_file_budget,
    probe_watch,
    watched_inodes,
)
from tui.core.formats import default_adapters
from tui.core.formats.base import READ_BUDGET, Adapter, Source
from tui.core.store import Batch
from tui.core.tail import UnsafeFile, open_regular

if TYPE_CHECKING:  # watchdog is imported when watching starts (it may be unavailable)
    from watchdog.observers.api import BaseObserver

RECONCILE_SHARE = 0.001
"""Most of a core the safety-net reconcile may use while inotify does the work."""

SLICE_SECONDS = 0.01
"""About how long one safety-net pass may take (so no moment of idle costs much)."""

POLL_SHARE = 0.02
"""Most of a core the stat loop may use in polling mode."""

CHECK_SECONDS = 1.0
"""At least this often the loop checks ROOT and the watcher (one stat, a few thread flags)."""

MISS_GRACE = 2.0
"""Seconds a file event may trail the change it reports before the change counts as missed."""

PROBES = 8
"""Unwatched directories probed for the reason (each probe opens an inotify instance)."""

MAX_RESTARTS = 3
"""Watcher restarts after a thread died; after that the engine polls."""

CACHE_PROBES = 16
"""Runs whose files are looked at to tell whether a ROOT's files are in the page cache."""

GONE = "ROOT is gone (deleted, renamed or unmounted): waiting for it to return"
""":attr:`Engine.mode` while ROOT is missing."""

_IGNORED_EVENTS = frozenset({"opened", "closed_no_write"})
_ROOT_EVENTS = frozenset({"deleted", "moved"})


def _stopped(thread: threading.Thread) -> bool:
    """Dead, or told to stop (watchdog's threads carry a ``stopped_event``)."""
    told = getattr(thread, "stopped_event", None)
    return not thread.is_alive() or (isinstance(told, threading.Event) and told.is_set())


def _dead_part(observer: BaseObserver) -> str | None:
    """Which of the watcher's threads stopped, if one did (the outermost first: stopping
    the dispatcher stops the others with it)."""
    if _stopped(observer):
        return "the file watcher's dispatch thread stopped"
    emitters = observer.emitters
    if not emitters or any(_stopped(emitter) for emitter in emitters):
        return "the file watcher's event thread stopped"
    # watchdog's inotify observer reads the descriptor in a thread of its own (private name).
    reader = getattr(observer, "_inotify_fd", None)
    if isinstance(reader, threading.Thread) and _stopped(reader):
        return "the inotify reader thread stopped"
    return None


def _directories(count: int) -> str:
    return f"{count} director{'y' if count == 1 else 'ies'}"


def _polling(reason: str) -> str:
    return f"polling ({reason})"


def _limit_reason(exc: OSError) -> str:
    if exc.errno == errno.ENOSPC:
        return "inotify watch limit reached: raise fs.inotify.max_user_watches"
    if exc.errno == errno.EMFILE:
        return "inotify instance limit reached: raise fs.inotify.max_user_instances"
    return f"inotify failed: {exc.strerror or exc}"


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

    Attributes:
        mode: how files are watched, in words: ``inotify``, ``polling (why)``, or
            :data:`GONE`; it changes while running when the watcher fails.
        root_gone: ROOT is missing (the runs read so far stay; it is attached again when
            it returns).
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
        self.root_gone = False
        self.poll_interval = poll_interval
        self.reconcile_interval = reconcile_interval
        self.walk_interval = walk_interval
        self._dirs: dict[str, set[str]] = {}
        self._dirty: set[str] = set()
        self._rescan = False
        self._lock = threading.Lock()
        self._on_dirty: Callable[[], None] | None = None
        self._observer: BaseObserver | None = None
        self._observer_fds: frozenset[int] = frozenset()
        # The observer's descriptors and the directories of the last check that found every
        # one watched: the same again, under the same observer, needs no new check.
        self._all_watched: tuple[frozenset[int], frozenset[str]] | None = None
        self._watch_lock = threading.RLock()  # observer and mode changes, from any thread
        self._restarts = 0
        self._root_id: tuple[int, int] | None = None
        self._directories: list[Path] = []  # what the last walk visited (all must be watched)
        self._unwatched: set[Path] = set()  # unwatched at the last check, for no clear reason
        self._evented: dict[str, float] = {}  # run -> when a file event last named it
        self._checked: dict[str, float] = {}  # run -> when the reconcile last stat'ed it
        self._suspects: dict[str, tuple[float, float]] = {}  # run -> (since, judge at)
        self._stop = threading.Event()
        self._nudge = threading.Event()
        self._thread: threading.Thread | None = None
        self._previewed: set[str] = set()
        self._announced: set[str] = set()
        self._open: OrderedDict[str, None] = OrderedDict()
        self.open_budget = open_file_budget()
        # Change generations: each run's last change, for readers that redo only what changed.
        self._generation = 0
        self._touched: dict[str, int] = {}  # run -> the generation of its last change
        self._files: dict[str, tuple[int, list[Path]]] = {}  # run_files(): (generation, files)
        self._files_view: tuple[int, Mapping[str, list[Path]]] | None = None  # while unchanged
        self._files_lock = threading.Lock()

    # Discovery -------------------------------------------------------------------------
    def scan(self) -> list[str]:
        """Walk ROOT; register new runs (marked dirty) and return their keys.

        A directory listed as "no permission" before is replaced by what is found in it
        once it can be read. While watching, every directory walked must be one the kernel
        watches; when inotify's limits leave some unwatched, the engine polls instead.
        """
        return self._register(walk(self.root, self.adapters, keep=self._wanted))

    def handover(self) -> tuple[Found, list[str]]:
        """What this engine's walks found and which runs it previewed, for an engine in
        another process to carry on from (:meth:`adopt_walk`; :mod:`tui.core.prefetch`)."""
        found = Found(list(self.sources.values()), list(self._directories), list(self.errors))
        return found, sorted(self._previewed)

    def adopt_walk(self, found: Found, previewed: Iterable[str]) -> list[str]:
        """Take the runs another process's engine found, as :meth:`scan` takes its own
        walk's, and its previews of some of them as if made here (their first full read
        replaces what the preview showed); returns the keys of the new runs."""
        keys = self._register(found)
        shown = set(previewed).intersection(keys)
        self._previewed |= shown
        self._announced |= shown
        return keys

    def _wanted(self, source: Source) -> bool:
        """Whether a source a walk found would be registered: a run not known yet, or one
        that takes the place of a directory listed as "no permission"."""
        known = self.sources.get(source.key)
        return known is None or (
            isinstance(known, UnreadableSource) and not isinstance(source, UnreadableSource)
        )

    def _register(self, found: Found, *, settles: bool = True) -> list[str]:
        """Take what a walk found (see :meth:`scan`); returns the keys of the new runs.

        ``settles``: the walk answers the rescan asked for so far (not one spread over
        minutes, which a rescan asked for meanwhile may concern a directory it had passed).
        """
        self.errors = found.errors
        new: list[str] = []
        with self._lock:
            for source in found.sources:
                if not self._wanted(source):
                    continue
                known = self.sources.get(source.key)
                if known is not None:
                    known.close()
                    self._announced.discard(source.key)  # its first read says its format
                self.sources[source.key] = source
                self._dirs.setdefault(str(source.directory), set()).add(source.key)
                new.append(source.key)
            if settles:
                self._rescan = False
        self._directories = found.directories
        if new:
            self.mark(new)
        if self._observer is not None:
            problem = self._check_watches(found.directories)
            if problem is not None:
                self._fall_back(problem)
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
        now = time.monotonic()
        with self._lock:
            for _ in range(4):
                keys = self._dirs.get(directory)
                if keys is not None:
                    self._generation += 1
                    for key in keys:
                        self._evented[key] = now
                        self._touched[key] = self._generation
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
            known = [k for k in keys if k in self.sources]
            self._generation += 1
            self._touched.update(dict.fromkeys(known, self._generation))
            self._dirty.update(known)
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

    def touched_since(self, generation: int) -> tuple[int, frozenset[str]]:
        """The runs whose files changed (an event, a re-check, a new or re-read source)
        after ``generation``, and the generation to ask from next time (start from 0)."""
        with self._lock:
            now, touched = self._generation, list(self._touched.items())
        return now, frozenset(key for key, seen in touched if seen > generation)

    # Reading ---------------------------------------------------------------------------
    def run_files(self) -> Mapping[str, list[Path]]:
        """Every known run's data files, by key (what a writer process would hold open).

        A run's list is asked of its source again only after the run changed (see
        :meth:`touched_since`), and while nothing changed the same mapping is returned:
        with thousands of runs, building every list each time cost more than the scan it
        feeds. Callers must not modify the mapping or its lists.
        """
        with self._lock:
            generation = self._generation
            if self._files_view is not None and self._files_view[0] == generation:
                return self._files_view[1]
            sources, touched = list(self.sources.items()), dict(self._touched)
        files: dict[str, list[Path]] = {}
        with self._files_lock:
            cache = self._files
            for key, source in sources:
                seen = touched.get(key, 0)
                cached = cache.get(key)
                if cached is None or cached[0] < seen:
                    cached = cache[key] = (seen, source.watched_files())
                files[key] = cached[1]
        view = MappingProxyType(files)
        with self._lock:
            if self._generation == generation:
                self._files_view = (generation, view)
        return view

    def read_ahead(self, keys: Iterable[str], tail_bytes: int) -> None:
        """Ask the kernel to start reading the last ``tail_bytes`` of each of these runs'
        files now, all at once, before their previews read them one after the other.

        The files of runs not opened for a while are often out of the page cache: read
        one by one, each preview waits for the disk in turn (200 runs: 80 ms against 36
        with the files cached; with the hints, 41). When a sample of the runs finds their
        ends in memory, nothing is asked (the hints cost 15 us a run, which 1,000 cached
        runs' first paint felt). Regular files only, links not followed; nothing is read
        here but a byte of each sampled file, and only from memory.
        """
        advise = getattr(os, "posix_fadvise", None)  # not on macOS
        sources = [self.sources[key] for key in keys if key in self.sources]
        if advise is None or not sources or _in_memory(sources):
            return
        for source in sources:
            for path in source.watched_files():
                fd = _open_regular(path)
                if fd is None:
                    continue
                try:
                    size = os.fstat(fd).st_size
                    advise(fd, max(0, size - tail_bytes), 0, os.POSIX_FADV_WILLNEED)
                except OSError:
                    pass
                finally:
                    os.close(fd)

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
            if isinstance(source, UnreadableSource) and source.readable():
                with self._lock:
                    self._rescan = True  # its permissions changed: look for the run in it
                self._signal()
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
        if batches:
            with self._lock:  # reading may teach a source of new files (run_files)
                self._generation += 1
                self._touched.update(dict.fromkeys((b.key for b in batches), self._generation))
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
            self._generation += 1
            self._touched[key] = self._generation
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
        self._root_id = directory_identity(self.root)
        with self._watch_lock:
            self.mode = self._attach()
        if self._observer is not None:
            # The first look at every run, now rather than at the first reconcile: from
            # here on, a change no file event reports is known for what it is.
            self.reconcile(walk_root=False, judge=False)
        thread = threading.Thread(target=self._loop, name="tracktui-reconcile", daemon=True)
        thread.start()
        self._thread = thread  # only once started: stop() from another thread may join it

    def _attach(self) -> str:
        """Watch ROOT as asked and as its filesystem allows; returns the mode."""
        request = self.watch_request
        kind = filesystem_type(self.root)
        if request == "poll":
            return _polling("requested")
        if (request == "auto" and is_remote(kind)) or (kind or "").startswith("fuse"):
            return _polling(f"{kind} is a network filesystem")
        return self._start_observer()

    def _start_observer(self) -> str:
        """Start a watchdog observer on ROOT; returns the mode (polling, and why, when the
        observer cannot be had or the kernel will not watch all of ROOT)."""
        try:
            from watchdog import events
            from watchdog.events import FileSystemEvent, FileSystemEventHandler
            from watchdog.observers import Observer
        except ImportError:
            return _polling("watchdog unavailable")
        # Only the events that mean new data. Opens and closes without writing (every read
        # of ours, every directory listing, watchdog's own walks) are not asked for: with
        # thousands of runs they overflowed the kernel's queue, and after an overflow
        # watchdog re-walks ROOT, whose opens overflowed it again (a core used while idle).
        news: list[type[FileSystemEvent]] = [
            events.FileModifiedEvent,
            events.FileClosedEvent,
            events.FileCreatedEvent,
            events.FileMovedEvent,
            events.FileDeletedEvent,
            events.DirModifiedEvent,
            events.DirCreatedEvent,
            events.DirMovedEvent,
            events.DirDeletedEvent,
        ]
        # Attribute changes (a chmod, a touch) have their own classes in newer watchdogs.
        news += [
            getattr(events, n) for n in ("FileAttribEvent", "DirAttribEvent") if hasattr(events, n)
        ]
        engine = self
        root = str(self.root)
        # A ROOT that is a symbolic link (~/runs -> /data/runs): watchdog watches the link
        # itself, and nothing made under it was reported. The directory it leads to is
        # watched, and its events are named by ROOT as given, as the runs are.
        real = os.path.realpath(root)
        inside = real.rstrip("/") + "/"

        def spelled(path: str) -> str:
            if real == root or not (path == real or path.startswith(inside)):
                return path
            return root + path[len(real) :]

        class Handler(FileSystemEventHandler):
            def on_any_event(self, event: FileSystemEvent) -> None:
                try:
                    if event.event_type in _IGNORED_EVENTS:
                        return
                    source = spelled(os.fsdecode(event.src_path))
                    engine.mark_path(source)
                    dest = getattr(event, "dest_path", "")
                    if dest:
                        engine.mark_path(spelled(os.fsdecode(dest)))
                    if source == root and event.event_type in _ROOT_EVENTS:
                        engine._nudge.set()  # ROOT itself went: check now
                except Exception:  # a handler exception would kill the observer thread
                    pass

        before = inotify_fds()
        try:
            observer = Observer()  # opens the inotify instance: the instance limit bites here
        except OSError as exc:
            return _polling(_limit_reason(exc))
        except Exception as exc:  # an unsupported libc, a missing kernel feature
            return _polling(f"inotify unavailable: {exc}")
        try:
            observer.schedule(Handler(), real, recursive=True, event_filter=news)
            observer.start()
        except OSError as exc:
            with contextlib.suppress(Exception):
                observer.stop()
            return _polling(_limit_reason(exc))
        self._observer = observer
        self._observer_fds = frozenset(inotify_fds() - before)
        self._unwatched = set()
        problem = self._check_watches([self.root, *self._directories])
        if problem is not None:
            self._stop_observer()
            return _polling(problem)
        return "inotify"

    def _stop_observer(self) -> None:
        """Let go of the observer: stopped in a thread of its own, waited for 2 s at most.

        Stopping takes the lock its dispatch thread holds while a handler runs, so a stuck
        handler (a watcher that stopped delivering) would hold this thread forever.
        """
        observer, self._observer = self._observer, None
        self._observer_fds = frozenset()
        self._all_watched = None  # a new observer may get the same descriptor numbers
        self._suspects.clear()
        self._checked.clear()
        if observer is None:
            return

        def stop() -> None:
            with contextlib.suppress(Exception):
                observer.stop()
                observer.join(timeout=2)

        stopper = threading.Thread(target=stop, name="tracktui-observer-stop", daemon=True)
        stopper.start()
        stopper.join(timeout=2)

    def _check_watches(self, directories: Sequence[Path]) -> str | None:
        """Why some of ``directories`` are not watched (inotify's limits), or ``None``.

        The kernel's own list of watches (fdinfo) is compared with the directories walked:
        watchdog ignores a watch it could not add below ROOT, so a full watch table
        otherwise leaves part of ROOT silently unwatched. A directory missing from the list
        is probed: ENOSPC or EMFILE name the limit; one that stays missing for two checks
        in a row without a reason counts as well.

        The same directories as at the last check that found them all watched, under the
        same observer, are not checked again (with 5,000 runs, the kernel's list and a stat
        of each directory took a fifth of a walk). Watches are added as directories appear,
        and a new directory makes the list differ; one deleted and made again under the
        same name between two walks is not looked at here, but the writes in it that no
        event reports are found by the reconcile (:meth:`check_watch`).
        """
        seen = (self._observer_fds, frozenset(map(str, directories)))
        if seen == self._all_watched:
            return None
        watched = watched_inodes(self._observer_fds)
        root = directory_identity(self.root)
        if not watched or root is None:
            return None
        if (kernel_device(root[0]), root[1]) not in watched:
            # Identities differ (btrfs, overlay, a ROOT that is a symbolic link): cannot tell,
            # now or later.
            self._all_watched = seen
            return None
        prefix = str(self.root).rstrip("/") + "/"
        missing: list[Path] = []
        for directory in dict.fromkeys(directories):
            if directory != self.root and not str(directory).startswith(prefix):
                continue
            try:
                info = os.lstat(directory)
            except OSError:
                continue
            if stat.S_ISDIR(info.st_mode) and (
                (kernel_device(info.st_dev), info.st_ino) not in watched
            ):
                missing.append(directory)
        if not missing:
            self._unwatched = set()
            self._all_watched = seen
            return None
        unexplained = set(missing)
        for directory in missing[:PROBES]:
            code = probe_watch(directory)
            if code in (errno.ENOSPC, errno.EMFILE):
                reason = _limit_reason(OSError(code, os.strerror(code)))
                return f"{reason}; {_directories(len(missing))} under ROOT not watched"
            if code != 0:  # unreadable or gone: nothing to watch there
                unexplained.discard(directory)
        stuck = unexplained & self._unwatched
        self._unwatched = unexplained
        if stuck:
            return f"inotify did not watch {_directories(len(stuck))} under ROOT"
        return None

    def _fall_back(self, reason: str) -> None:
        """Stop the observer and poll the whole of ROOT (it releases its watches too)."""
        with self._watch_lock:
            if self._observer is None:
                return
            self._stop_observer()
            self.mode = _polling(reason)
        self._nudge.set()
        self._signal()

    def _restart(self, reason: str) -> None:
        """A watcher thread died: start a new observer (or poll), then catch up."""
        with self._watch_lock:
            self._stop_observer()
            if self._restarts >= MAX_RESTARTS:
                self.mode = _polling(f"{reason}; the watcher failed {self._restarts + 1} times")
            else:
                self._restarts += 1
                mode = self._start_observer()
                if mode == "inotify":
                    self.mode = f"inotify (restarted: {reason})"
                else:
                    self.mode = _polling(f"{reason}; restarting it failed: {mode[9:-1]}")
        self._catch_up()

    def _catch_up(self) -> None:
        """Stat every run and walk ROOT: whatever changed while nobody watched is read."""
        try:
            self.reconcile(walk_root=True, judge=False)
        except Exception as exc:  # keep the loop alive whatever a filesystem does
            self.errors.append(f"reconcile failed: {exc!r}")
        self._nudge.set()
        self._signal()

    def _lose_root(self) -> None:
        with self._watch_lock:
            self._stop_observer()
            self.mode = GONE
            self.root_gone = True
        self._signal()

    def _reattach(self, identity: tuple[int, int]) -> None:
        with self._watch_lock:
            self._root_id = identity
            self.mode = self._attach()
            self.root_gone = False
        self._catch_up()

    def check_watch(self) -> None:
        """Notice what happened to ROOT and to the watcher since the last check.

        ROOT gone (its path leads nowhere, or to another directory than the one attached):
        the observer stops and the mode says so; when a directory is there again, the engine
        attaches to it and catches up. A watcher thread that died: the observer is started
        again (up to :data:`MAX_RESTARTS` times), else polling. A change the reconcile found
        for which no file event came within :data:`MISS_GRACE`: events cannot be trusted,
        so polling.
        """
        identity = directory_identity(self.root)
        if self.root_gone:
            if identity is not None:
                self._reattach(identity)
            return
        if identity is None:
            self._lose_root()
            return
        if self._root_id is not None and identity != self._root_id:
            self._lose_root()  # renamed away and another directory took its name
            self._reattach(identity)
            return
        observer = self._observer
        if observer is None:
            return
        dead = _dead_part(observer)
        if dead is not None:
            self._restart(dead)
            return
        missed = self._missed()
        if missed:
            self._fall_back(f"file events missed changes to {len(missed)} run(s), e.g. {missed[0]}")
            self._catch_up()

    def _missed(self) -> list[str]:
        """Runs whose change no file event reported in time (judged once each)."""
        now = time.monotonic()
        out = []
        for key, (since, judge_at) in list(self._suspects.items()):
            if now < judge_at:
                continue
            self._suspects.pop(key, None)
            source = self.sources.get(key)
            if (
                self._evented.get(key, float("-inf")) < since
                and source is not None
                and self._reachable(source)
            ):
                out.append(key)
        return out

    def _reachable(self, source: Source) -> bool:
        """Whether a file event on each of the source's files names this run: the walk up
        from the file that :meth:`mark_path` makes stops at the source's own directory (not
        at a run nested in it, as a NePS search holds its configs, nor short of it)."""
        home, root = str(source.directory), str(self.root)
        for file in source.watched_files():
            directory = str(file)
            for _ in range(4):
                if directory in self._dirs:
                    break
                parent = os.path.dirname(directory)
                if parent == directory or len(parent) < len(root):
                    return False
                directory = parent
            if directory != home:
                return False
        return True

    def _loop(self) -> None:
        """Re-stat the runs (and re-walk ROOT) on a schedule that depends on the mode, and
        check ROOT and the watcher (:meth:`check_watch`) at least every ``CHECK_SECONDS``.

        With inotify the events do the work and this is a safety net (lost events, queue
        overflows): the runs are re-checked a slice at a time, each slice costing about
        ``SLICE_SECONDS``, paced so the checks use at most ``RECONCILE_SHARE`` of a core
        and every run is seen at least every ``reconcile_interval``; ROOT is re-walked
        after each full round, in slices of the same size and pace (a walk of 5,000 runs
        in one go took over a second). When polling it is the only source of news: every
        run is re-checked every ``poll_interval`` (stretched to stay under ``POLL_SHARE``)
        and ROOT is walked whole every ``walk_interval``. While ROOT is gone nothing is
        re-checked.

        A pass costs what it took of this thread's CPU time, not its wall time: waiting
        for the GIL behind the UI thread, or for a core behind other processes, is no
        work of ours, and pacing by it would postpone the next pass by 50 (polling) or
        500 times the wait (an append once took over 20 s to show on a loaded machine).
        """
        position = 0
        per_run = 0.0  # CPU seconds to re-check one run, as last measured
        last_walk = time.monotonic()
        walking: Walk | None = None  # a walk of ROOT under way, a slice per pass
        was_polling = self.mode.startswith("polling")
        # Not at once: the first paint and the first reads need the machine more.
        next_pass = last_walk + (
            self.poll_interval if was_polling else min(5.0, self.reconcile_interval)
        )
        while True:
            self._nudge.wait(max(0.0, min(next_pass - time.monotonic(), CHECK_SECONDS)))
            if self._stop.is_set():
                return
            self._nudge.clear()
            try:
                self.check_watch()
            except Exception as exc:  # keep the loop alive whatever a filesystem does
                self.errors.append(f"watch check failed: {exc!r}")
            polling = self.mode.startswith("polling")
            if polling != was_polling or self.root_gone:
                walking = None  # ROOT is caught up with whole when it is back
            if polling != was_polling:
                was_polling, next_pass, per_run = polling, time.monotonic(), 0.0
            if self.root_gone or time.monotonic() < next_pass:
                continue
            started = time.monotonic()
            cpu_started = time.thread_time()
            keys = list(self.sources)
            chunk: list[str] = []
            stat_pass = walking is None  # else this pass goes on with the walk alone
            if stat_pass:
                if polling or not keys or per_run == 0.0:
                    chunk = keys
                else:
                    chunk = keys[position : position + max(20, int(SLICE_SECONDS / per_run))]
                position = position + len(chunk) if chunk is not keys else len(keys)
                full_round = position >= len(keys)
                if full_round:
                    position = 0
                walk_every = self.walk_interval if polling else self.reconcile_interval
                try:
                    self.reconcile(walk_root=False, keys=chunk)
                except Exception as exc:  # keep the loop alive whatever a filesystem does
                    self.errors.append(f"reconcile failed: {exc!r}")
                if chunk:
                    per_run = (time.thread_time() - cpu_started) / len(chunk)
                if full_round and started - last_walk >= walk_every:
                    walking, last_walk = Walk(self.root, self.adapters, keep=self._wanted), started
            if walking is not None:
                try:
                    if walking.step(None if polling else SLICE_SECONDS):
                        self._register(walking.found, settles=polling)
                        walking = None
                except Exception as exc:  # keep the loop alive whatever a filesystem does
                    self.errors.append(f"reconcile failed: {exc!r}")
                    walking = None
            cost = time.thread_time() - cpu_started
            if polling:
                pause = max(self.poll_interval, cost / POLL_SHARE)
            elif stat_pass:
                rounds = max(1, -(-len(keys) // max(1, len(chunk))))
                pause = max(self.reconcile_interval / rounds, cost / RECONCILE_SHARE)
            else:
                pause = cost / RECONCILE_SHARE
            next_pass = started + pause

    def reconcile(
        self, walk_root: bool = True, keys: list[str] | None = None, *, judge: bool = True
    ) -> None:
        """Stat runs (all, or ``keys``) and walk ROOT for new ones: the truth behind the
        file events.

        While watching, a run whose files moved with no file event naming it since the last
        stat is a suspect; :meth:`check_watch` judges it once an event had time to arrive
        (``judge=False`` after a restart, when events were known to be missing).
        """
        sources = self.sources
        chosen = list(sources) if keys is None else keys
        watching = judge and self._observer is not None
        changed = []
        for key in chosen:
            source = sources.get(key)
            if source is None:
                continue
            before = time.monotonic()
            if source.changed():
                changed.append(key)
                since = self._checked.get(key)
                if (
                    watching
                    and source.files_moved
                    and since is not None
                    and self._evented.get(key, float("-inf")) < since
                ):
                    self._suspects.setdefault(key, (since, before + MISS_GRACE))
            self._checked[key] = before
        if walk_root:
            changed.extend(self.scan())
        if changed:
            self.mark(changed)

    def stop(self) -> None:
        """Stop watching and close every file."""
        self._stop.set()
        self._nudge.set()
        with self._watch_lock:
            self._stop_observer()
        if self._thread is not None:
            self._thread.join(timeout=2)
        for source in self.sources.values():
            source.close()


def _open_regular(path: Path) -> int | None:
    """:func:`~tui.core.tail.open_regular` without a root (links refused), or ``None``."""
    try:
        return open_regular(path)
    except (UnsafeFile, OSError):
        return None


def _in_memory(sources: Sequence[Source]) -> bool:
    """Whether the last byte of the first file of up to ``CACHE_PROBES`` of these runs, spread
    over them, is in the page cache: each asked of the kernel with ``RWF_NOWAIT``, which
    answers from memory or not at all. ``False`` where that cannot be asked."""
    nowait = getattr(os, "RWF_NOWAIT", None)
    if nowait is None:
        return False
    byte = bytearray(1)
    for source in sources[:: max(1, len(sources) // CACHE_PROBES)][:CACHE_PROBES]:
        files = source.watched_files()
        fd = _open_regular(files[0]) if files else None
        if fd is None:
            continue
        try:
            size = os.fstat(fd).st_size
            if size:
                os.preadv(fd, [byte], size - 1, nowait)
        except BlockingIOError:  # on disk: the runs' files are worth reading ahead
            return False
        except OSError:
            pass
        finally:
            os.close(fd)
    return True
