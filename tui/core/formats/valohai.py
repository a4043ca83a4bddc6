"""Valohai-style logs: a ``*.log``/``*.txt`` file whose JSON-object lines are the records.

Real loggers print a blank line before each JSON line and write Python's ``NaN``; every
other line is the run's log. A directory with metrics.jsonl is native, not Valohai.
"""

from __future__ import annotations

import os
from pathlib import Path

from tui.core.formats.base import READ_BUDGET, Adapter, Claim, Source, written_at
from tui.core.formats.files import relative
from tui.core.formats.native import log_lines, tail_preview
from tui.core.records import RecordBuilder, parse_line
from tui.core.rundir import METRICS
from tui.core.store import Batch
from tui.core.tail import FileTail, Lines, UnsafeFile, open_regular

SUFFIXES = (".log", ".txt")
SNIFF = 64 * 1024


def split_log(lines: list[bytes], first_lineno: int) -> tuple[list[bytes], list[int], list[bytes]]:
    """Separate JSON-object candidates (with their line numbers) from plain log lines."""
    records: list[bytes] = []
    numbers: list[int] = []
    log: list[bytes] = []
    for i, line in enumerate(lines):
        stripped = line.strip()
        if stripped[:1] == b"{":
            records.append(stripped)
            numbers.append(first_lineno + i)
        elif stripped:
            log.append(line)
    return records, numbers, log


def sniff(path: Path, root: Path) -> bool:
    """True when the first 64 KiB of a log hold a JSON-object line."""
    try:
        fd = open_regular(path, root)
    except (UnsafeFile, OSError):
        return False
    try:
        data = os.read(fd, SNIFF)
    finally:
        os.close(fd)
    for line in data.split(b"\n")[:-1] if len(data) == SNIFF else data.split(b"\n"):
        stripped = line.strip()
        if stripped[:1] == b"{" and parse_line(stripped)[0] is not None:
            return True
    return False


class ValohaiSource(Source):
    """One Valohai-style log file."""

    format = "valohai"

    def __init__(self, root: Path, key: str, file: Path) -> None:
        super().__init__(root, key, file.parent)
        self.file = file
        self.tail = FileTail(file, root)
        self.ordinal = 0

    @property
    def path(self) -> str:
        return relative(self.file, self.root)

    def watched_files(self) -> list[Path]:
        return [self.file]

    def close(self) -> None:
        self.tail.close()

    def _batch(
        self,
        chunk: Lines,
        builder: RecordBuilder,
        info: os.stat_result | None = None,
        **fields: object,
    ) -> Batch:
        """The batch of ``chunk``; ``info``: the file's status when it was read, if taken."""
        records, numbers, log = split_log(chunk.lines, chunk.first_lineno)
        builder.add_lines(records, linenos=numbers)
        self.ordinal = builder.ordinal
        name = self.file.name
        bad = [(name, n, r) for n, r in builder.bad] + [(name, n, r) for n, r in chunk.skipped]
        mtime: float | None = None
        if info is not None:
            mtime = info.st_mtime
        else:
            try:
                mtime = os.stat(self.file).st_mtime
            except OSError:
                pass
        return self.batch(
            records=builder.build(),
            log=log_lines(log),
            bad_lines=tuple(bad),
            notes=tuple(chunk.notes),
            mtime=mtime,
            **fields,
        )

    def read(self, budget: int = READ_BUDGET) -> Batch | None:
        chunk = self.tail.read(budget)
        self.more = chunk.more
        if not chunk:
            return None
        meta = {"name": self.file.stem} if self.ordinal == 0 and chunk.first_lineno == 1 else None
        return self._batch(chunk, RecordBuilder(self.ordinal, written_at(self.file)), meta=meta)

    def preview(self, tail_bytes: int = 65536) -> Batch | None:
        lines, info = tail_preview(self.file, self.root, tail_bytes)
        chunk = Lines(first_lineno=1)
        chunk.add(lines)
        return self._batch(
            chunk,
            RecordBuilder(0, written_at(self.file, info)),
            info,
            replace=True,
            partial=info is not None and info.st_size > tail_bytes,
            meta={"name": self.file.stem},
        )


class ValohaiAdapter(Adapter):
    """Claims log files with JSON-object lines in directories without metrics.jsonl."""

    format = "valohai"

    def __init__(self) -> None:
        self._seen: dict[Path, tuple[int, bool]] = {}

    def discover(self, root: Path, directory: Path, names: list[str]) -> Claim | None:
        if METRICS in names:
            return None
        sources: list[Source] = []
        for name in names:
            if not name.endswith(SUFFIXES):
                continue
            path = directory / name
            try:
                size = os.lstat(path).st_size
            except OSError:
                continue
            known = self._seen.get(path)
            if known is not None and (
                known[1] or known[0] == size or (size > SNIFF and known[0] >= SNIFF)
            ):
                found = known[1]
            else:
                found = sniff(path, root)
                self._seen[path] = (size, found)
            if found:
                sources.append(ValohaiSource(root, relative(path, root), path))
        return Claim(sources=sources) if sources else None
