"""CSV loggers: Keras ``CSVLogger`` files and Lightning's ``metrics.csv`` (+ ``hparams.yaml``).

Keras writes a header ``epoch,<sorted metric names>`` and one row per epoch (``NA`` for
metrics missing after an early stop, quoted ``"[a, b]"`` for list values). Lightning writes
sorted columns including ``epoch`` and ``step``, leaves cells empty in rows that log only
some metrics, and rewrites the whole file with a wider header when a new metric appears.
Both use the csv module's default ``\\r\\n`` line ends. Any other ``*.csv`` whose header
names an x column (``epoch``, ``step``, ``_step``, ``iteration``) is read the same way.

Rows become records (``step`` is preferred over ``epoch`` as x, as in the native format);
reading is incremental from a byte offset, and a changed header restarts the run.
"""

from __future__ import annotations

import csv
import os
from pathlib import Path
from typing import Any

import numpy as np

from tui.core.formats.base import READ_BUDGET, Adapter, Claim, Source, written_at
from tui.core.formats.delimited import numeric_rows
from tui.core.formats.documents import load_file
from tui.core.formats.files import newest_mtime, relative, stamp
from tui.core.formats.meta import finish_meta
from tui.core.records import TIME_KEY, X_KEYS, RecordBuilder
from tui.core.sanitize import sanitize
from tui.core.store import Batch
from tui.core.tail import FileTail, Lines, UnsafeFile, open_regular

SNIFF = 4096
"""Bytes read from the start of a candidate file to check its header."""

MAX_SNIFFS = 32
"""Candidate files checked per directory (a folder of data CSVs is not a folder of logs)."""

MAX_PENDING = 64
"""Physical lines one quoted CSV record may span before it is declared broken."""

LIGHTNING = "metrics.csv"
HPARAMS = "hparams.yaml"
_KERAS_SUFFIXES = (".log", ".txt")
_MISSING = frozenset({"", "NA", "N/A", "None", "null"})
_GENERIC_STEMS = frozenset(
    {"training", "train", "log", "logs", "history", "metrics", "results", "progress"}
)
_DELIMITERS = (",", ";", "\t", "|")


def parse_header(line: bytes) -> tuple[str, list[str]] | None:
    """``(delimiter, column names)`` when ``line`` looks like a logger's CSV header."""
    text = line.decode("utf-8", "replace").lstrip("\ufeff").rstrip("\r\n")
    if not text:
        return None
    delimiter = max(_DELIMITERS, key=text.count)
    if text.count(delimiter) == 0:
        return None
    fields = next(csv.reader([text], delimiter=delimiter))
    if len(fields) < 2 or any(not f.strip() for f in fields):
        return None
    if not set(fields) & set(X_KEYS):
        return None
    for name in fields:
        try:
            float(name)
        except ValueError:
            continue
        return None  # a number in the first line: data, not a header
    return delimiter, fields


def sniff(path: Path, root: Path) -> list[str] | None:
    """The header columns of a candidate CSV log, or ``None`` when it is not one (yet)."""
    try:
        fd = open_regular(path, root)
    except (UnsafeFile, OSError):
        return None
    try:
        data = os.read(fd, SNIFF)
    except OSError:
        return None
    finally:
        os.close(fd)
    end = data.find(b"\n")
    if end < 0:
        return None
    parsed = parse_header(data[:end])
    return parsed[1] if parsed else None


def cell_value(cell: str) -> Any:
    """One CSV cell as a record value: a number, a vector, text, or ``None`` when empty."""
    text = cell.strip()
    if text in _MISSING:
        return None
    try:
        return float(text)
    except ValueError:
        pass
    inner = text.strip('"')
    if len(inner) >= 2 and inner[0] == "[" and inner[-1] == "]":
        parts = inner[1:-1].replace(",", " ").split()
        try:
            values = [float(p) for p in parts]
        except ValueError:
            values = []
        if values:
            return values
    return text


class CsvSource(Source):
    """One CSV log file, read from a byte offset."""

    format = "csv"

    def __init__(self, root: Path, key: str, file: Path, kind: str) -> None:
        super().__init__(root, key, file.parent)
        self.file = file
        self.kind = kind
        self.tail = FileTail(file, root)
        self.ordinal = 0
        self.header: list[str] | None = None
        self.header_raw = b""
        self.delimiter = ","
        self.pending: list[bytes] = []
        self.pending_lineno = 0
        self._announced = False
        self._hparams_stamp: tuple[int, int, int] | None = None
        self._config: dict[str, Any] | None = None

    @property
    def path(self) -> str:
        return relative(self.file, self.root)

    @property
    def hparams(self) -> Path:
        """Lightning's hyperparameter file beside metrics.csv."""
        return self.file.parent / HPARAMS

    def watched_files(self) -> list[Path]:
        files = [self.file]
        if self.kind == "lightning":
            files.append(self.hparams)
        return files

    def close(self) -> None:
        self.tail.close()

    def _name(self) -> str:
        parent = self.file.parent
        if self.kind == "lightning":
            return f"{parent.parent.name}/{parent.name}" if parent != self.root else "metrics"
        stem = self.file.stem
        if stem.lower() in _GENERIC_STEMS and parent != self.root:
            return parent.name
        return stem

    def _header_changed(self) -> bool:
        """True when the file no longer starts with the header we parsed (a rewrite)."""
        try:
            fd = open_regular(self.file, self.root)
        except (UnsafeFile, OSError):
            return False
        try:
            head = os.pread(fd, len(self.header_raw) + 4, 0)
        except OSError:
            return False
        finally:
            os.close(fd)
        if head.startswith(b"\xef\xbb\xbf"):
            head = head[3:]
        # Without its line end: a chunk read line by line (one holding a progress bar's
        # lone \r) gives the header its \r\n already stripped.
        return not head.startswith((self.header_raw + b"\n", self.header_raw + b"\r\n"))

    def _reset(self) -> None:
        self.ordinal = 0
        self.header = None
        self.header_raw = b""
        self.pending = []

    def _read_hparams(self, notes: list[str]) -> bool:
        """Re-read hparams.yaml when it changed; True when the config changed."""
        if self.kind != "lightning":
            return False
        current = stamp(self.hparams)
        if current == self._hparams_stamp:
            return False
        self._hparams_stamp = current
        value, error = load_file(self.hparams, self.root, "yaml")
        if error is not None:
            notes.append(error)
            return False
        config = value if isinstance(value, dict) else None
        if config == self._config:
            return False
        self._config = config
        return True

    def _parse(
        self, lines: list[bytes], first_lineno: int, bad: list[tuple[str, int, str]]
    ) -> list[dict[str, Any]]:
        records: list[dict[str, Any]] = []
        name = sanitize(self.file.name, 200)
        for i, raw in enumerate(lines):
            lineno = first_lineno + i
            line = raw.rstrip(b"\r")
            if self.header is None:
                parsed = parse_header(line)
                if parsed is None:
                    bad.append((name, lineno, "not a CSV header with an epoch or step column"))
                    continue
                self.delimiter, self.header = parsed
                self.header_raw = line[3:] if line.startswith(b"\xef\xbb\xbf") else line
                continue
            if self.pending:
                self.pending.append(line)
                line = b"\n".join(self.pending)
                lineno = self.pending_lineno
            if not line.strip():
                continue
            text = line.decode("utf-8", "replace")
            if text.count('"') % 2:
                if not self.pending:
                    self.pending, self.pending_lineno = [line], lineno
                if len(self.pending) > MAX_PENDING:
                    bad.append((name, lineno, "unterminated quoted field"))
                    self.pending = []
                continue
            self.pending = []
            try:
                fields = next(csv.reader([text], delimiter=self.delimiter))
            except csv.Error as exc:
                bad.append((name, lineno, sanitize(f"malformed CSV row ({exc})", 200)))
                continue
            if len(fields) != len(self.header):
                bad.append(
                    (name, lineno, f"{len(fields)} fields where the header has {len(self.header)}")
                )
                continue
            record = {}
            for column, cell in zip(self.header, fields):
                value = cell_value(cell)
                if value is not None:
                    record[column] = value
            if record:
                records.append(record)
        return records

    def _add(self, chunk: Lines, builder: RecordBuilder, bad: list[tuple[str, int, str]]) -> None:
        """Add the rows of ``chunk``: all numbers in bulk, anything else row by row."""
        blob = chunk.buffer
        first = chunk.first_lineno
        if blob is None or self.pending:
            builder.add_records(self._parse(chunk.lines, first, bad))
            return
        cut = 0  # where the rows begin
        if self.header is None:
            cut = blob.find(b"\n") + 1
            self._parse([bytes(blob[: cut - 1])], first, bad)
            first += 1
        rows = self._add_table(blob, cut, builder) if self.header is not None else 0
        if rows:
            chunk.counted(rows + first - chunk.first_lineno)  # spares the tail a count
            return
        lines = bytes(memoryview(blob)[cut:]).split(b"\n")  # bytes: kept, and as typed
        lines.pop()
        chunk.counted(len(lines) + first - chunk.first_lineno)
        builder.add_records(self._parse(lines, first, bad))

    def _add_table(self, blob: bytes | bytearray, start: int, builder: RecordBuilder) -> int:
        """Add the rows of ``blob`` from ``start`` as columns when they are all numbers;
        how many (0: none added, not all numbers)."""
        header = self.header or []
        table = numeric_rows(blob, self.delimiter, len(header), start)
        if table is None:
            return 0
        columns: dict[str, tuple[np.ndarray | None, np.ndarray]] = {
            name: (None, table[:, j]) for j, name in enumerate(header)
        }
        times = columns.pop(TIME_KEY, None)
        builder.add_columns(len(table), columns, None if times is None else times[1])
        return len(table)

    def _meta_of(self, columns: list[str] | None) -> dict[str, Any]:
        return finish_meta(
            {
                "name": self._name(),
                "status": "unknown",
                "config": self._config or {},
                "properties": {
                    "logger": self.kind,
                    "file": self.path,
                    "columns": list(columns or []),
                },
            }
        )

    def preview(self, tail_bytes: int = 65536) -> Batch | None:
        """The run listed with its header's columns (and Lightning's hparams.yaml) before
        its rows are read."""
        scratch = CsvSource(self.root, self.key, self.file, self.kind)
        scratch._read_hparams([])
        return self.listing(scratch._meta_of(sniff(self.file, self.root)))

    def read(self, budget: int = READ_BUDGET) -> Batch | None:
        notes: list[str] = []
        bad: list[tuple[str, int, str]] = []
        replace = False
        header_before = self.header
        if self.header is not None and self._header_changed():
            # Lightning rewrites the file with a wider header: read it again from the top.
            self.tail.close()
            self.tail = FileTail(self.file, self.root)
            self._reset()
            replace = True
        chunk = self.tail.read(budget, scratch=True)  # used up by _add below
        self.more = chunk.more
        if chunk.restarted:
            replace = replace or self.header is not None
            self._reset()
            # A Lightning rewrite is routine; anything else truncating a log is worth a note.
            notes.extend(n for n in chunk.notes if self.kind != "lightning" or "truncated" not in n)
        else:
            notes.extend(chunk.notes)
        bad.extend((self.file.name, n, r) for n, r in chunk.skipped)
        builder = RecordBuilder(self.ordinal, written_at(self.file))
        self._add(chunk, builder, bad)
        self.ordinal = builder.ordinal
        config_changed = self._read_hparams(notes)
        meta = None
        if not self._announced or config_changed or self.header != header_before:
            self._announced = True
            meta = self._meta_of(self.header)
        block = builder.build()
        if block is None and meta is None and not notes and not bad and not replace:
            return None
        return self.batch(
            records=block,
            replace=replace,
            meta=meta,
            bad_lines=tuple(bad),
            notes=tuple(sanitize(n, 300) for n in notes),
            mtime=newest_mtime(self.watched_files()),
        )


class CsvAdapter(Adapter):
    """Claims Keras and Lightning CSV logs (and other CSV files with an x column)."""

    format = "csv"

    def __init__(self) -> None:
        self._seen: dict[Path, tuple[int, list[str] | None]] = {}

    def _header(self, path: Path, root: Path) -> list[str] | None:
        try:
            size = os.lstat(path).st_size
        except OSError:
            return None
        known = self._seen.get(path)
        if known is not None and (known[1] is not None or known[0] == size or known[0] >= SNIFF):
            return known[1]
        header = sniff(path, root)
        self._seen[path] = (size, header)
        return header

    def discover(self, root: Path, directory: Path, names: list[str]) -> Claim | None:
        if "metrics.jsonl" in names or "run.json" in names:
            return None
        sources: list[Source] = []
        checked = 0
        for name in sorted(names):
            lower = name.lower()
            is_csv = lower.endswith(".csv")
            if not is_csv and not lower.endswith(_KERAS_SUFFIXES):
                continue
            if checked >= MAX_SNIFFS and name != LIGHTNING:
                continue
            checked += 1
            path = directory / name
            header = self._header(path, root)
            if header is None:
                continue
            if name == LIGHTNING:
                kind = "lightning"
            elif header[0] == "epoch":
                kind = "keras"
            elif is_csv:
                kind = "csv"
            else:
                continue  # a .log/.txt counts only with Keras's header
            sources.append(CsvSource(root, relative(path, root), path, kind))
        return Claim(sources=sources) if sources else None
