"""The native run directory (DESIGN.md §3): run.json, metrics.jsonl, output.log, media/."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import orjson

from tui.core.formats.base import READ_BUDGET, Adapter, Claim, Source, written_at
from tui.core.formats.files import Stamp, newest_mtime, read_small, relative, stamp_of
from tui.core.records import RecordBuilder, count_byte
from tui.core.rundir import METRICS, OUTPUT, RUN_JSON
from tui.core.sanitize import decode, sanitize, sanitize_dict
from tui.core.store import Batch
from tui.core.tail import FileTail, Lines, UnsafeFile, open_regular

MEDIA = "media"
META_LIMIT = 1024 * 1024
LOG_PREVIEW = 32 * 1024


def read_meta(path: Path, root: Path) -> tuple[dict[str, Any] | None, str | None]:
    """Read and sanitize a run.json; ``(None, reason)`` when it is unreadable."""
    data, error = read_small(path, root, META_LIMIT)
    if data is None or not data.strip():
        return None, error
    try:
        value = orjson.loads(data)
    except orjson.JSONDecodeError as exc:
        return None, sanitize(
            f"{path.name} is not valid JSON ({exc}); keeping what was read before", 300
        )
    if not isinstance(value, dict):
        return None, f"{path.name} is not a JSON object"
    return sanitize_dict(value), None


def log_lines(lines: list[bytes]) -> tuple[str, ...]:
    """Decode and sanitize log lines (``\\r`` endings dropped)."""
    return tuple(decode(line.rstrip(b"\r"), 2000) for line in lines)


def tail_blob(path: Path, root: Path, tail_bytes: int) -> tuple[bytes, os.stat_result | None]:
    """The complete lines in the last ``tail_bytes`` of a file, as one newline-terminated
    buffer, and the file's status as it was read (``None`` when it could not be opened:
    missing, or not a regular file)."""
    try:
        fd = open_regular(path, root)
    except (FileNotFoundError, UnsafeFile, OSError):
        return b"", None
    try:
        info = os.fstat(fd)
        start = max(0, info.st_size - tail_bytes)
        data = os.pread(fd, info.st_size - start, start) if tail_bytes else b""
    finally:
        os.close(fd)
    end = data.rfind(b"\n")
    if end < 0:
        return b"", info
    first = data.find(b"\n") + 1 if start > 0 else 0  # a line cut by the window's start
    return data[first : end + 1], info


def tail_preview(
    path: Path, root: Path, tail_bytes: int
) -> tuple[list[bytes], os.stat_result | None]:
    """:func:`tail_blob`'s lines, split."""
    blob, info = tail_blob(path, root, tail_bytes)
    lines = blob.split(b"\n")
    lines.pop()
    return lines, info


class NativeSource(Source):
    """A run directory written by ``tracktui run``, the client, or any JSONL logger."""

    format = "tracktui"

    def __init__(self, root: Path, key: str, directory: Path) -> None:
        super().__init__(root, key, directory)
        # Paths made once: a first paint or a reconcile asks for them for every run.
        self.metrics_path = directory / METRICS
        self.meta_path = directory / RUN_JSON
        self.log_path = directory / OUTPUT
        self.metrics = FileTail(self.metrics_path, root)
        self.log = FileTail(self.log_path, root)
        self.ordinal = 0
        self._meta_stamp: Stamp | None = None
        self._media_stamp: float | None = None
        self._meta_error: str | None = None
        self._meta_mtime: float | None = None  # run.json's, as _read_meta last saw it

    def watched_files(self) -> list[Path]:
        return [self.metrics_path, self.meta_path, self.log_path]

    def close(self) -> None:
        self.metrics.close()
        self.log.close()

    def _read_meta(self, notes: list[str]) -> dict[str, Any] | None:
        path = self.meta_path
        try:
            info = os.stat(path)
        except OSError:
            self._meta_mtime = None
            return None
        self._meta_mtime = info.st_mtime
        current = stamp_of(info)
        if current == self._meta_stamp:
            return None
        meta, error = read_meta(path, self.root)
        if error is not None:
            if error != self._meta_error:
                notes.append(error)
            self._meta_error = error
            return None
        self._meta_stamp, self._meta_error = current, None
        return meta

    def _read_media(self) -> tuple[str, ...] | None:
        media = self.directory / MEDIA
        try:
            mtime = os.stat(media).st_mtime
        except OSError:
            return None
        if mtime == self._media_stamp:
            return None
        self._media_stamp = mtime
        try:
            names = sorted(
                entry.name for entry in os.scandir(media) if entry.is_file(follow_symlinks=False)
            )
        except OSError:
            return None
        return tuple(sanitize(name, 200) for name in names[:500])

    def read(self, budget: int = READ_BUDGET) -> Batch | None:
        notes: list[str] = []
        meta = self._read_meta(notes)
        chunk = self.metrics.read(budget)
        builder = RecordBuilder(self.ordinal, written_at(self.metrics_path))
        bad: list[tuple[str, int, str]] = []
        if chunk.count:
            builder.add_chunk(chunk)
            self.ordinal = builder.ordinal
        bad.extend((METRICS, n, r) for n, r in builder.bad)
        bad.extend((METRICS, n, r) for n, r in chunk.skipped)
        notes.extend(chunk.notes)
        notes.extend(
            f"{name}: values of an unsupported shape ignored" for name in sorted(builder.ignored)
        )
        logs = self.log.read(budget)
        notes.extend(logs.notes)
        media = self._read_media()
        self.more = chunk.more or logs.more
        records = builder.build()
        if (
            records is None
            and meta is None
            and not logs
            and not notes
            and not bad
            and media is None
        ):
            return None
        return self.batch(
            records=records,
            meta=meta,
            log=log_lines(logs.lines),
            bad_lines=tuple(bad),
            notes=tuple(notes),
            mtime=newest_mtime(self.watched_files()),
            media=media,
        )

    def preview(self, tail_bytes: int = 65536) -> Batch | None:
        notes: list[str] = []
        meta = self._read_meta(notes)
        self._meta_stamp = None  # the full read must deliver the metadata again
        blob, info = tail_blob(self.metrics_path, self.root, tail_bytes)
        size = info.st_size if info is not None else 0
        chunk = Lines()  # split only if the bulk decoder cannot take it whole
        chunk.add_blob(blob, count_byte(blob, b"\n"))
        average = (tail_bytes / chunk.count) if chunk.count else 1.0
        ordinal = max(0, int(size / average) - chunk.count) if size > tail_bytes else 0
        builder = RecordBuilder(ordinal, written_at(self.metrics_path, info))
        builder.add_chunk(chunk)
        log, log_info = tail_preview(self.log_path, self.root, LOG_PREVIEW)
        # The newest of the watched files' times, from the looks just taken: a thousand
        # runs' first paint would stat each file once more.
        times = [i.st_mtime for i in (info, log_info) if i is not None]
        if self._meta_mtime is not None:
            times.append(self._meta_mtime)
        return self.batch(
            records=builder.build(),
            replace=True,
            partial=size > tail_bytes,
            head=size <= tail_bytes,
            meta=meta,
            log=log_lines(log),
            mtime=max(times, default=None),
        )


class NativeAdapter(Adapter):
    """Claims directories holding metrics.jsonl or run.json."""

    format = "tracktui"

    def discover(self, root: Path, directory: Path, names: list[str]) -> Claim | None:
        if METRICS not in names and RUN_JSON not in names:
            return None
        return Claim(sources=[NativeSource(root, relative(directory, root), directory)], prune=True)
