"""Summaries of runs' metric files kept between sessions, so that a ROOT reopens at once.

When a run's history has been read in full, its summary (how many records and lines, the
first and last step and wall time, and per metric the count, last, min and max with their
steps, and the non-finite values) is kept with the identity of the bytes it covers: device,
inode, size, modification time, and a fingerprint (a hash of the first and the last 4 KiB
of those bytes). When the ROOT is opened again, a run whose file still holds exactly those
bytes shows its exact values in the first frame without being parsed; a file that grew
since keeps its entry when the bytes it covers are unchanged, and only what was appended is
read. Anything else (another inode, a shorter file, other bytes, an unreadable, damaged or
foreign cache file) is ignored, and the run is read as if there were no cache. The full
histories (charts, rules) are still read in the background, cached runs last.

A file that had been still for a while when its summary was taken (:data:`QUIET_NS`) is
recognised at the first paint by its status alone (device, inode, size and modification
time, as make and git's index do): no open, no read. Its fingerprint is checked right
after the first frame (:meth:`SummaryCache.settle`), so a file rewritten in place with its
time set back is caught then, and its full read replaces the summary. A file still being
written when its summary was taken could change again within the clock's tick: it is
always fingerprinted first.

The run's metadata (``run.json`` as read and sanitized) is kept beside the summary with a
hash of the bytes it was read from: when ``run.json`` still holds those bytes, the first
frame takes the metadata from the cache too, and the run's own preview (the log's end, the
files' newest time, and the engine's note that the full read replaces the preview) comes
after the first frame (:meth:`SummaryCache.settle`).

The cache lives in the user's state directory (``$XDG_STATE_HOME/tracktui/summaries/``, by
default ``~/.local/state/tracktui/summaries/``), one file per ROOT named by a hash of its
absolute path: never in ROOT. Only runs in tracktui's own format are cached.
"""

from __future__ import annotations

import dataclasses
import hashlib
import os
import stat
import time
from array import array
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import msgspec

from tui.core.formats.base import written_at
from tui.core.formats.files import read_small
from tui.core.formats.native import META_LIMIT, NativeSource, read_meta
from tui.core.records import RecordBuilder
from tui.core.rundir import METRICS
from tui.core.store import Batch, History, RunStore, Series
from tui.core.tail import UnsafeFile, open_regular
from tui.core.views import state_dir

if TYPE_CHECKING:
    from tui.core.engine import Engine
    from tui.core.formats.base import Source

VERSION = 3
MAGIC = b"tracktui summaries\n"
FINGERPRINT = 4096
"""Bytes hashed at each end of the covered part of a file."""

GROWTH_LIMIT = 4 * 1024 * 1024
"""Most bytes appended since the summary that are read at once; beyond, a plain preview."""

QUIET_NS = 2_000_000_000
"""How long a file must have been left alone when its summary is taken for its status to
identify its bytes at the next opening (more than any file system's time granularity)."""


class SeriesSummary(msgspec.Struct, array_like=True, frozen=True):
    """One metric's running summaries (see :class:`~tui.core.store.Series`)."""

    name: str
    count: int
    nonfinite: int
    first_nonfinite_step: float | None
    last: float
    last_step: float | None
    min: float
    min_step: float | None
    max: float
    max_step: float | None


class Entry(msgspec.Struct, array_like=True, frozen=True):
    """The summary of the first ``size`` bytes of one run's metrics file.

    ``mtime_ns`` is the file's modification time when it was exactly ``size`` bytes long
    (0 when it had grown further by the time the summary was taken). ``meta`` is the run's
    ``run.json`` as read (sanitized) from the bytes whose hash is ``meta_digest``; an empty
    digest when it could not be kept (unreadable, or changing while it was read).
    ``quiet``: the metrics file was exactly ``size`` bytes and unchanged for
    :data:`QUIET_NS` when the summary was taken. ``meta_stat``: run.json's device, inode,
    size, modification and change time when it was as quiet (empty when not).
    """

    dev: int
    ino: int
    size: int
    mtime_ns: int
    fingerprint: bytes
    lines: int
    records: int
    steps: tuple[float, ...]
    times: tuple[float, ...]
    series: tuple[SeriesSummary, ...]
    meta_digest: bytes = b""
    meta: dict[str, Any] | None = None
    quiet: bool = False
    meta_stat: tuple[int, ...] = ()


class _Contents(msgspec.Struct, frozen=True):
    version: int
    root: str
    entries: dict[str, Entry]


_encoder = msgspec.msgpack.Encoder()
_decoder = msgspec.msgpack.Decoder(_Contents)


def cache_path(root: Path) -> Path:
    """The file holding the summaries of ``root``'s runs."""
    digest = hashlib.sha256(os.path.abspath(root).encode()).hexdigest()[:20]
    return state_dir() / "summaries" / f"{digest}.msgpack"


def _digest(payload: bytes) -> bytes:
    return hashlib.blake2b(payload, digest_size=16).digest()


def fingerprint(fd: int, size: int) -> bytes:
    """A hash of the first and the last ``FINGERPRINT`` bytes of the file's first ``size``."""
    head = os.pread(fd, min(size, FINGERPRINT), 0)
    start = max(0, size - FINGERPRINT)
    tail = os.pread(fd, size - start, start)
    return _digest(b"%d:" % size + head + tail)


class SummaryCache:
    """The summaries of one ROOT's runs: looked up at the first paint, recorded after full
    reads, saved in the state directory. Used by one thread (the reader).

    Args:
        root: the ROOT (its absolute path names the cache file).
        path: where the cache lives (tests); default :func:`cache_path`.
    """

    def __init__(self, root: Path, path: Path | None = None) -> None:
        self.root = Path(os.path.abspath(root))
        self.path = path or cache_path(self.root)
        self.problem: str | None = None
        """Why the cache file was ignored (damaged, another version or ROOT), if it was."""
        self._entries: dict[str, Entry] = {}
        self._usable: set[str] = set()
        self._unsettled: list[str] = []
        self._unchecked: list[Source] = []  # taken by status alone: fingerprinted at settle
        self._changed = False

    def load(self) -> int:
        """Read the cache file; returns how many entries it holds (0 when ignored)."""
        try:
            data = self.path.read_bytes()
        except OSError:
            return 0
        head = len(MAGIC) + 16
        if not data.startswith(MAGIC) or _digest(data[head:]) != data[len(MAGIC) : head]:
            self.problem = "damaged (its checksum does not match)"
            return 0
        try:
            contents = _decoder.decode(data[head:])
        except msgspec.DecodeError as exc:
            self.problem = f"unreadable ({exc})"
            return 0
        if contents.version != VERSION or contents.root != str(self.root):
            self.problem = "written for another version or ROOT"
            return 0
        self._entries = dict(contents.entries)
        return len(self._entries)

    # Reopening -------------------------------------------------------------------------
    def uncached(self, keys: Iterable[str]) -> list[str]:
        """The runs of ``keys`` the cache holds nothing for: their previews read files."""
        entries = self._entries
        return [key for key in keys if key not in entries]

    def preview(self, engine: Engine, key: str, tail_bytes: int) -> list[Batch]:
        """What the first paint shows of ``key``: its cached summary (and what grew since)
        when the cache holds one for its current bytes, with its cached metadata when
        ``run.json`` is unchanged too; else the engine's usual preview."""
        source = engine.sources[key]
        known, meta = self._meta(source)
        summary = self.summary(source, meta)
        if summary is None:
            batch = engine.preview(key, tail_bytes)
            return [batch] if batch is not None else []
        if known:
            # Everything the table shows is here: the engine's preview can wait (settle).
            # The metadata was sanitized when it was read (read_meta) and is private to the
            # user since: not sanitized again, which is most of what reading run.json costs.
            self._unsettled.append(key)
            return [summary]
        # A preview of no records still brings run.json and the log's end, and tells the
        # engine that the full read, later, replaces what the first paint showed.
        envelope = engine.preview(key, 0)
        return [envelope, summary] if envelope is not None else [summary]

    def settle(self, engine: Engine) -> list[Batch]:
        """After the first paint, for the runs it showed from the cache alone: the engine's
        preview of each (so their full reads replace the summaries), as batches that add
        the log's end, the newest file time and any metadata changed since, and keep the
        summaries."""
        for source in self._unchecked:
            if not self._same_bytes(source):
                self._forget(source.key)  # its full read, coming anyway, replaces the summary
        self._unchecked = []
        batches = []
        for key in self._unsettled:
            envelope = engine.preview(key, 0)
            if envelope is None:
                continue
            shown = self._entries.get(key)
            meta = envelope.meta
            if meta is not None and shown is not None and meta == shown.meta:
                meta = None  # unchanged: no need to re-sort or redraw for it
            batches.append(dataclasses.replace(envelope, replace=False, meta=meta))
        self._unsettled = []
        return batches

    def cached(self) -> list[str]:
        """The runs whose first paint came from the cache (see :meth:`adopt_cached`)."""
        return sorted(self._usable)

    def adopt_cached(self, keys: Iterable[str]) -> None:
        """Take the runs another process's cache painted (:mod:`tui.core.prefetch`) as
        painted from this one: :meth:`holds` answers for them."""
        self._usable = set(keys).intersection(self._entries)

    def holds(self, key: str) -> bool:
        """Whether the first paint of ``key`` came from the cache."""
        return key in self._usable

    def summary(self, source: Source, meta: dict[str, Any] | None = None) -> Batch | None:
        """A batch with the run's cached summary brought up to date, or ``None``.

        ``meta``: metadata to send with it, as it is (the cache's own, already sanitized).
        """
        entry = self._entries.get(source.key)
        if entry is None or not isinstance(source, NativeSource):
            return None
        path = source.metrics_path
        if entry.quiet:
            try:
                info = os.lstat(path)
            except OSError:
                return None
            if stat.S_ISREG(info.st_mode) and _identity(info) == _identity_of(entry):
                self._usable.add(source.key)
                self._unchecked.append(source)
                return Batch(
                    key=source.key,
                    format=source.format,
                    path=source.path,
                    history=_history(entry),
                    partial=True,
                    mtime=info.st_mtime,
                    meta=meta,
                )
        try:
            fd = open_regular(path, self.root)
        except (OSError, UnsafeFile):
            return None
        try:
            info = os.fstat(fd)
            if (
                (info.st_size == entry.size and info.st_mtime_ns != entry.mtime_ns)
                or info.st_size - entry.size > GROWTH_LIMIT
                or not _covers(fd, info, entry)
            ):
                self._forget(source.key)
                return None
            grown = (
                os.pread(fd, info.st_size - entry.size, entry.size)
                if info.st_size > entry.size
                else b""
            )
        except OSError:
            return None
        finally:
            os.close(fd)
        history = _history(entry)
        bad: tuple[tuple[str, int, str], ...] = ()
        end = grown.rfind(b"\n")
        if end >= 0:  # complete lines only: the full read takes an unfinished one
            builder = RecordBuilder(entry.records, written_at(path))
            builder.add_lines(grown[:end].split(b"\n"), entry.lines + 1)
            block = builder.build()
            bad = tuple((METRICS, n, reason) for n, reason in builder.bad)
            if block is not None:
                store = RunStore()
                store.apply(Batch(source.key, history=history))
                store.apply(Batch(source.key, history=History.of([block])))
                run = store.runs[source.key]
                history = History(
                    run.steps, run.times, run.series, run.objects, tuple(run.health.notes)
                )
        self._usable.add(source.key)
        # Made here rather than by source.batch: that would sanitize the metadata again.
        return Batch(
            key=source.key,
            format=source.format,
            path=source.path,
            history=history,
            partial=True,
            bad_lines=bad,
            mtime=info.st_mtime,
            meta=meta,
        )

    def _meta(self, source: Source) -> tuple[bool, dict[str, Any] | None]:
        """Whether the cache knows the run's metadata for run.json's current bytes, and
        that metadata (``None``: there is none, as there is no run.json)."""
        entry = self._entries.get(source.key)
        if entry is None or not entry.meta_digest or not isinstance(source, NativeSource):
            return False, None
        if entry.meta_stat:
            try:
                info = os.lstat(source.meta_path)
            except OSError:
                info = None
            if info is not None and stat.S_ISREG(info.st_mode) and _whole(info) == entry.meta_stat:
                return True, entry.meta
        data, error = read_small(source.meta_path, self.root, META_LIMIT)
        if error is not None or _meta_digest(data) != entry.meta_digest:
            return False, None
        return True, entry.meta

    def _same_bytes(self, source: Source) -> bool:
        """Whether the run's metrics file still begins with the bytes its entry covers
        (the fingerprint of an entry taken by status alone at the first paint)."""
        entry = self._entries.get(source.key)
        if entry is None or not isinstance(source, NativeSource):
            return False
        try:
            fd = open_regular(source.metrics_path, self.root)
        except (OSError, UnsafeFile):
            return False
        try:
            return _covers(fd, os.fstat(fd), entry)
        except OSError:
            return False
        finally:
            os.close(fd)

    # Recording -------------------------------------------------------------------------
    def record(self, source: Source, batches: Sequence[Batch]) -> None:
        """Keep the summary of a full read of ``source`` (its batches' :class:`History`).

        Nothing is kept unless the batches hold every record the source has read (a read
        from the start) and the file at the name is still the one read.
        """
        if not isinstance(source, NativeSource):
            return
        histories = [b.history for b in batches if b.history is not None]
        records = len(histories[0].steps) if histories else 0
        tail = source.metrics
        current = tail.current
        if (
            len(histories) > 1
            or any(b.records is not None for b in batches)
            or records != source.ordinal
            or current is None
            or current.skipping
            or tail.draining
        ):
            self._forget(source.key)
            return
        size = current.offset - current.pending()
        try:
            fd = open_regular(source.metrics_path, self.root)
        except (OSError, UnsafeFile):
            self._forget(source.key)
            return
        try:
            info = os.fstat(fd)
            if (info.st_dev, info.st_ino) != current.identity or info.st_size < size:
                self._forget(source.key)
                return
            mark = fingerprint(fd, size)
        except OSError:
            self._forget(source.key)
            return
        finally:
            os.close(fd)
        history = histories[0] if histories else None
        meta_digest, meta, meta_stat = _meta_of(source.meta_path, self.root)
        quiet = info.st_size == size and _quiet(info)
        self._entries[source.key] = Entry(
            dev=info.st_dev,
            ino=info.st_ino,
            size=size,
            mtime_ns=info.st_mtime_ns if info.st_size == size else 0,
            fingerprint=mark,
            lines=current.lineno,
            records=records,
            steps=_ends(history.steps) if history else (),
            times=_ends(history.times) if history else (),
            series=tuple(_summary(s) for s in history.series.values()) if history else (),
            meta_digest=meta_digest,
            meta=meta,
            quiet=quiet,
            meta_stat=meta_stat,
        )
        self._changed = True

    def _forget(self, key: str) -> None:
        if self._entries.pop(key, None) is not None:
            self._changed = True

    def keep_only(self, keys: Iterable[str]) -> None:
        """Drop the entries of runs no longer under ROOT."""
        wanted = set(keys)
        for key in [k for k in self._entries if k not in wanted]:
            self._forget(key)

    def save(self) -> str | None:
        """Write the cache if it changed (atomically, private to the user); an error
        message, or ``None``."""
        if not self._changed:
            return None
        payload = _encoder.encode(_Contents(VERSION, str(self.root), self._entries))
        temp = self.path.with_name(f".{self.path.name}.{os.getpid()}.tmp")
        try:
            self.path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
            fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            with os.fdopen(fd, "wb") as handle:
                handle.write(MAGIC + _digest(payload) + payload)
            os.replace(temp, self.path)
        except OSError as error:
            return f"cannot save the summary cache in {self.path.parent}: {error.strerror or error}"
        self._changed = False
        return None


def _meta_digest(data: bytes | None) -> bytes:
    """A hash of run.json's bytes (``None``: there is no run.json)."""
    return _digest(b"-" if data is None else b"+" + data)


def _meta_of(path: Path, root: Path) -> tuple[bytes, dict[str, Any] | None, tuple[int, ...]]:
    """A run.json's metadata as the reader reads it, the hash of the bytes it was read
    from, and its status when it was quiet: the bytes are read before and after, and kept
    only when they were the same (an empty hash when not, or when run.json is unreadable or
    damaged)."""
    status_before = _status(path)
    before, error = read_small(path, root, META_LIMIT)
    if error is not None:
        return b"", None, ()
    meta, error = read_meta(path, root)
    after, _ = read_small(path, root, META_LIMIT)
    if error is not None or after != before:
        return b"", None, ()
    status_after = _status(path)
    if status_before is None or status_after is None or not _quiet(status_after):
        return _meta_digest(before), meta, ()
    kept = _whole(status_after)
    return _meta_digest(before), meta, kept if kept == _whole(status_before) else ()


def _covers(fd: int, info: os.stat_result, entry: Entry) -> bool:
    """Whether the open file (``info``: its status) still begins with the bytes ``entry``
    summarised: the same file, no shorter, the same fingerprint (read last: it costs)."""
    return (
        (info.st_dev, info.st_ino) == (entry.dev, entry.ino)
        and info.st_size >= entry.size
        and fingerprint(fd, entry.size) == entry.fingerprint
    )


def _status(path: Path) -> os.stat_result | None:
    """The status of a regular file at ``path`` (not followed), or ``None``."""
    try:
        info = os.lstat(path)
    except OSError:
        return None
    return info if stat.S_ISREG(info.st_mode) else None


def _quiet(info: os.stat_result) -> bool:
    """Whether the file's bytes had been left alone for :data:`QUIET_NS`."""
    return time.time_ns() - info.st_mtime_ns >= QUIET_NS


def _identity(info: os.stat_result) -> tuple[int, ...]:
    return (info.st_dev, info.st_ino, info.st_size, info.st_mtime_ns)


def _whole(info: os.stat_result) -> tuple[int, ...]:
    """:func:`_identity` and the change time (a chmod or a rename of another file over it)."""
    return (*_identity(info), info.st_ctime_ns)


def _identity_of(entry: Entry) -> tuple[int, ...]:
    return (entry.dev, entry.ino, entry.size, entry.mtime_ns)


def _ends(column: array[float]) -> tuple[float, ...]:
    """The first and last value of a record column (what the table shows of it)."""
    return tuple(column[:1]) + tuple(column[1:][-1:])


def _summary(series: Series) -> SeriesSummary:
    return SeriesSummary(
        series.name,
        series.count,
        series.nonfinite,
        series.first_nonfinite_step,
        series.last,
        series.last_step,
        series.min,
        series.min_step,
        series.max,
        series.max_step,
    )


def _history(entry: Entry) -> History:
    """A run's records as the cache knows them: summaries only, no points, and the first
    and last record's step and time."""
    series = {}
    for item in entry.series:
        one = Series(item.name)
        one.count, one.nonfinite = item.count, item.nonfinite
        one.first_nonfinite_step = item.first_nonfinite_step
        one.last, one.last_step = item.last, item.last_step
        one.min, one.min_step = item.min, item.min_step
        one.max, one.max_step = item.max, item.max_step
        series[item.name] = one
    return History(array("d", entry.steps), array("d", entry.times), series, {})
