"""The interface every format implements: detect runs under ROOT, then read incrementally.

An :class:`Adapter` looks at one directory during the discovery walk and claims the runs
it recognises there, as :class:`Source` objects. A source remembers its position in its
files and, on each :meth:`Source.read`, returns a :class:`~tui.core.store.Batch` with only
what is new. Sources never write, and must be picklable before their first read (the
headless command reads runs in worker processes).
"""

from __future__ import annotations

import os
import time
from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tui.core.formats.files import newest_mtime, relative
from tui.core.sanitize import sanitize, sanitize_dict
from tui.core.store import Batch

READ_BUDGET = 4 * 1024 * 1024
"""Default bytes a source may read in one call before yielding (it stays dirty)."""


@dataclass(slots=True)
class Claim:
    """What an adapter found in one directory.

    Attributes:
        sources: the runs found (keys must be unique under ROOT).
        prune: do not descend into this directory's subdirectories.
        skip: names of subdirectories not to descend into (their content was claimed).
        watch: extra directories whose changes concern these sources.
    """

    sources: list[Source] = field(default_factory=list)
    prune: bool = False
    skip: frozenset[str] = frozenset()
    watch: list[Path] = field(default_factory=list)


class Source(ABC):
    """One run's files, read incrementally and only ever read.

    Attributes:
        key: identity of the run under ROOT (relative path, plus a suffix when several
            runs share a directory), spelled safe to show by ``relative``.
        format: the format name shown in the table and in ``status --json``.
        root: absolute ROOT.
        directory: absolute directory whose changes make this source dirty.
        more: set by :meth:`read` when it stopped early because of its budget.
        files_moved: whether the last :meth:`changed` saw a watched file's size, times or
            presence move (not a reader's own wish to be read again).
    """

    format = "unknown"

    def __init__(self, root: Path, key: str, directory: Path) -> None:
        self.root = root
        self.key = key
        self.directory = directory
        self.more = False
        self.files_moved = False
        self._stamp: dict[str, tuple[int, int, int]] | None = None
        self._checked_ns = 0
        self._path: str | None = None

    @property
    def path(self) -> str:
        """The run's location relative to ROOT, safe to show (``escape_path``); file access
        uses :attr:`directory`, or ``root / unescape_path(path)``."""
        if self._path is None:  # directory and root never change: computed once
            self._path = relative(self.directory, self.root)
        return self._path

    def watched_files(self) -> list[Path]:
        """Files whose size or mtime reveal new data (used by polling and reconcile)."""
        return []

    def size(self) -> int:
        """Bytes in the watched files (how much a full read has to parse)."""
        total = 0
        for path in self.watched_files():
            try:
                total += os.stat(path).st_size
            except OSError:
                pass
        return total

    def changed(self) -> bool:
        """Cheap stat check: did any watched file change since the last call?

        The change time counts too: a file made readable (``chmod``) or replaced keeps its
        size and modification time, and must be read again all the same.

        Sets :attr:`files_moved` only for what happened on disk since the last call: a file
        already listed whose stamp moved, or a newly listed one changed since then. A list
        that grows because reading taught the reader of more files (MLflow's metric files,
        a Trainer's event files) is not a change anyone wrote.
        """
        stamp: dict[str, tuple[int, int, int]] = {}
        for file in self.watched_files():
            try:
                info = os.stat(file)
            except OSError:
                continue
            stamp[str(file)] = (info.st_size, info.st_mtime_ns, info.st_ctime_ns)
        previous, checked = self._stamp, self._checked_ns
        self._checked_ns = time.time_ns()
        if previous is None:
            self.files_moved = True
        else:
            self.files_moved = any(
                previous[path] != value if path in previous else value[2] >= checked
                for path, value in stamp.items()
            )
        self._stamp = stamp
        return stamp != previous

    @abstractmethod
    def read(self, budget: int = READ_BUDGET) -> Batch | None:
        """Return what is new since the last call, or ``None`` when nothing is."""

    def preview(self, tail_bytes: int = 65536) -> Batch | None:
        """A quick look at the end of the history for the first paint (``partial=True``).

        Must not move the reading position. Formats without a cheap tail return ``None``
        and are read in full by the backfill, or :meth:`listing`.
        """
        return None

    def listing(self, meta: dict[str, Any] | None) -> Batch:
        """A preview of no records: the run listed with ``meta`` (read from its small files,
        by a fresh copy of the source) before its history is read, which then replaces it."""
        return self.batch(
            meta=meta, replace=True, partial=True, mtime=newest_mtime(self.watched_files())
        )

    def close(self) -> None:
        """Release open files (the source may be read again later)."""

    def batch(self, **fields: Any) -> Batch:
        """A batch for this source with key, format and path filled in (``fields``: the rest).

        Metadata and notes are sanitized here once more, whatever the reader did: readers
        build names from directory names (``<dir> (search)``) and notes quote file names.
        """
        meta = fields.get("meta")
        if meta is not None:
            fields["meta"] = sanitize_dict(meta)
        notes = fields.get("notes")
        if notes:
            fields["notes"] = tuple(sanitize(note) for note in notes)
        return Batch(key=self.key, format=self.format, path=self.path, **fields)


class Adapter(ABC):
    """Finds runs of one format during the discovery walk."""

    format = "unknown"

    @abstractmethod
    def discover(self, root: Path, directory: Path, names: list[str]) -> Claim | None:
        """Claim runs in ``directory`` (``names``: its entries), or return ``None``."""


def now() -> float:
    """Wall clock (one place to patch in tests)."""
    return time.time()


def written_at(path: Path, info: os.stat_result | None = None) -> float:
    """The time stamped on records read from ``path`` that carry no ``_time`` of their own.

    Every line just read was written at or before the file's modification time, and the
    newest one at exactly that time: for a live run this is the write time of what was
    appended, and a three-day-old file reads as three days old, never as "now" (DESIGN.md
    §5: times come from the data, not from reading it). Never later than the clock (a
    network filesystem's clock may run ahead); the clock when the file cannot be stat'ed.
    ``info``: the file's status as the reader took it when it read (no second look).
    """
    clock = now()
    if info is not None:
        return min(clock, info.st_mtime)
    try:
        return min(clock, os.stat(path).st_mtime)
    except OSError:
        return clock
