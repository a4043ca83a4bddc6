"""DVCLive output directories (``dvclive/`` by default).

DVCLive writes ``params.yaml`` (the logged parameters), ``metrics.json`` (the latest value
of every metric and the ``step``) and, for each metric, an appended tab-separated history
``plots/metrics/<name>.tsv`` whose header is ``step`` and the metric's last name part
(``timestamp`` first when asked for, in epoch milliseconds); ``nan`` and ``inf`` are
written as Python spells them. Images are files under ``plots/images/``.

One run per directory: each ``.tsv`` is a series named by its path under
``plots/metrics`` (``train/loss``), read from a byte offset; the parameters are the
config; images are listed as media. DVCLive records no end of a run.

The rows of one read that share a step make one record when their files have no
timestamp column (see ``by_step``).
"""

from __future__ import annotations

import math
import os
from pathlib import Path
from typing import Any

import numpy as np

from tui.core.formats.base import READ_BUDGET, Adapter, Claim, Source, written_at
from tui.core.formats.delimited import numeric_rows
from tui.core.formats.documents import load_file
from tui.core.formats.files import list_files, newest_mtime, relative, stamp
from tui.core.formats.meta import finish_meta
from tui.core.records import RecordBuilder
from tui.core.sanitize import sanitize
from tui.core.store import Batch
from tui.core.tail import FileTail, Lines

Columns = tuple[int, dict[str, tuple[np.ndarray | None, np.ndarray]], np.ndarray | None]
"""Records given column by column: how many, the metric and step columns, and the times."""

Bulk = tuple[str, np.ndarray, np.ndarray, np.ndarray | None]
"""One file's rows parsed in bulk: the metric, its steps (finite), values and times."""

Rows = list[dict[str, Any]]
"""One file's rows parsed one by one, as records."""

METRICS_DIR = Path("plots") / "metrics"
IMAGES_DIR = Path("plots") / "images"
MAX_METRIC_FILES = 1000


def by_step(parts: list[Rows | Bulk]) -> list[Rows | Columns]:
    """The rows of each file's part as records, those parsed in bulk from untimed files
    merged by step.

    DVCLive writes a file per metric, most often every metric at every step: a record per
    step rather than per row of each file makes a tenth of the records, and a tenth of the
    store's work for them (a step, a time, a position per point). Only files without a
    timestamp column merge, all of whose rows carry the read's time, so every point keeps
    exactly the time it had; a file with times, or whose steps do not strictly increase (a
    step logged again), keeps a record per row. The records come in the order of the files,
    the merged ones at the place of the first file merged.
    """
    out: list[Rows | Columns] = []
    merging: list[tuple[str, np.ndarray, np.ndarray]] = []
    at = -1
    for part in parts:
        if isinstance(part, list):
            out.append(part)
            continue
        metric, steps, values, times = part
        if times is None and bool((steps[1:] > steps[:-1]).all()):
            at = len(out) if at < 0 else at
            merging.append((metric, steps, values))
        else:
            out.append((len(steps), {"step": (None, steps), metric: (None, values)}, times))
    if not merging:
        return out
    # Files growing side by side hold the same steps, or a run of the longest one's (a read
    # cut short by its budget goes on from the middle of a file): no sort then.
    union = max((steps for _, steps, _ in merging), key=len)
    starts = [_start_in(union, steps) for _, steps, _ in merging]
    if min(starts) < 0:
        # Sorted runs, one per file: numpy's stable sort (timsort) merges runs rather than
        # sorting afresh (eight times faster than its default sort here).
        ordered = np.sort(np.concatenate([steps for _, steps, _ in merging]), kind="stable")
        union = ordered[np.concatenate(([True], ordered[1:] != ordered[:-1]))]
        starts = [-1] * len(merging)
    merged: dict[str, tuple[np.ndarray | None, np.ndarray]] = {"step": (None, union)}
    for (metric, steps, values), start in zip(merging, starts):
        if len(steps) == len(union):
            merged[metric] = (None, values)
        elif start >= 0:
            merged[metric] = (np.arange(start, start + len(steps)), values)
        else:
            merged[metric] = (np.searchsorted(union, steps), values)
    out.insert(at, (len(union), merged, None))
    return out


def _start_in(longest: np.ndarray, steps: np.ndarray) -> int:
    """Where ``steps`` begin in ``longest`` when they are a run of its steps, else -1."""
    start = int(np.searchsorted(longest, steps[0]))
    return start if np.array_equal(longest[start : start + len(steps)], steps) else -1


def number(cell: str) -> float | None:
    """A TSV cell as a number (``nan``/``inf`` included), else ``None``."""
    try:
        return float(cell)
    except ValueError:
        return None


class DvcliveSource(Source):
    """One DVCLive directory."""

    format = "dvclive"

    def __init__(self, root: Path, key: str, directory: Path) -> None:
        super().__init__(root, key, directory)
        self._tails: dict[str, FileTail] = {}
        self._headers: dict[str, list[str]] = {}
        self._params_stamp: tuple[int, int, int] | None = None
        self._config: dict[str, Any] = {}
        self._meta: dict[str, Any] | None = None
        self._media: tuple[str, ...] | None = None

    def _metric_files(self) -> list[str]:
        files = list_files(self.directory / METRICS_DIR, limit=MAX_METRIC_FILES, depth=6)
        return [name for name, _, _ in files if name.endswith(".tsv")]

    def watched_files(self) -> list[Path]:
        return self._watched(self._metric_files())

    def _watched(self, metric_files: list[str]) -> list[Path]:
        base = self.directory / METRICS_DIR
        files = [self.directory / "params.yaml", self.directory / "metrics.json"]
        files.extend(base / name for name in metric_files)
        return files

    def close(self) -> None:
        for tail in self._tails.values():
            tail.close()

    def _rows(
        self, name: str, lines: list[bytes], first: int, bad: list[tuple[str, int, str]]
    ) -> Rows:
        metric = name[: -len(".tsv")]
        records: Rows = []
        label = sanitize(f"{METRICS_DIR.as_posix()}/{name}", 200)
        for i, raw in enumerate(lines):
            text = raw.decode("utf-8", "replace").rstrip("\r")
            if not text.strip():
                continue
            cells = text.split("\t")
            header = self._headers.get(name)
            if header is None:
                if "step" not in cells:
                    bad.append((label, first + i, "not a DVCLive header (no step column)"))
                    continue
                self._headers[name] = cells
                continue
            if len(cells) != len(header):
                bad.append(
                    (label, first + i, f"{len(cells)} fields where the header has {len(header)}")
                )
                continue
            record: dict[str, Any] = {}
            for column, cell in zip(header, cells):
                value = number(cell)
                if column == "step":
                    if value is None or not math.isfinite(value):
                        break
                    record["step"] = value
                elif column == "timestamp":
                    if value is not None and math.isfinite(value):
                        record["_time"] = value / 1000.0
                elif value is not None:
                    record[metric] = value
            else:
                if metric in record and "step" in record:
                    records.append(record)
                    continue
            bad.append((label, first + i, "a row without a step and a number"))
        return records

    def _chunk(
        self,
        name: str,
        chunk: Lines,
        bad: list[tuple[str, int, str]],
        steps_before: np.ndarray | None = None,
    ) -> Rows | Bulk:
        """The rows of one file's chunk: all numbers in bulk, anything else row by row.

        ``steps_before``: the steps of the file parsed in bulk before it in this read,
        which its steps become when they are the same (the files of one run most often
        hold every step): one array for them all.
        """
        blob = chunk.buffer
        first = chunk.first_lineno
        if blob is None:
            return self._rows(name, chunk.lines, first, bad)
        cut = 0  # where the rows begin
        if name not in self._headers:
            cut = blob.find(b"\n") + 1
            self._rows(name, [bytes(blob[: cut - 1])], first, bad)
            first += 1
        header = self._headers.get(name)
        # The table is the thread's scratch memory, which the next file's overwrites: what
        # is kept of it is copied (a column, not the whole table, is fresh memory).
        table = numeric_rows(blob, "\t", len(header), cut, scratch=True) if header else None
        if header is not None and table is not None:
            columns = dict(zip(header, table.T))
            steps = columns.pop("step")
            stamps = columns.pop("timestamp", None)
            if steps_before is not None and np.array_equal(steps, steps_before):
                steps = steps_before  # finite, as every steps kept are
            elif np.isfinite(steps).all():
                steps = steps.copy()
            else:
                columns = {}
            if columns:
                chunk.counted(len(table) + first - chunk.first_lineno)
                values = list(columns.values())[-1]  # the last value cell wins, as row by row
                times = None if stamps is None else stamps / 1000.0
                return name[: -len(".tsv")], steps, values.copy(), times
        lines = bytes(memoryview(blob)[cut:]).split(b"\n")  # bytes: kept, and as typed
        lines.pop()
        chunk.counted(len(lines) + first - chunk.first_lineno)
        return self._rows(name, lines, first, bad)

    def _read_params(self, notes: list[str]) -> bool:
        path = self.directory / "params.yaml"
        current = stamp(path)
        if current == self._params_stamp:
            return False
        self._params_stamp = current
        value, error = load_file(path, self.root, "yaml")
        if error is not None:
            notes.append(error)
            return False
        self._config = value if isinstance(value, dict) else {}
        return True

    def _read_media(self) -> tuple[str, ...] | None:
        files = list_files(self.directory / IMAGES_DIR, limit=500, depth=4)
        media = tuple(sanitize(f"{IMAGES_DIR.as_posix()}/{n}", 300) for n, _, _ in files)
        if media == self._media:
            return None
        self._media = media
        return media

    def _meta_of(self) -> dict[str, Any]:
        name = self.directory.name
        if name == "dvclive" and self.directory != self.root:
            name = self.directory.parent.name
        return finish_meta(
            {
                "name": name,
                "status": "unknown",
                "config": self._config,
                "properties": {"logger": "dvclive"},
            }
        )

    def preview(self, tail_bytes: int = 65536) -> Batch | None:
        """The run listed with params.yaml's config before its metric files are read."""
        scratch = DvcliveSource(self.root, self.key, self.directory)
        scratch._read_params([])
        return self.listing(scratch._meta_of())

    def read(self, budget: int = READ_BUDGET) -> Batch | None:
        self.more = False
        notes: list[str] = []
        bad: list[tuple[str, int, str]] = []
        parts: list[Rows | Bulk] = []
        replace = False
        remaining = budget
        steps_before: np.ndarray | None = None
        listed = self._metric_files()  # once a read: its files' times are the run's mtime
        for name in listed:
            tail = self._tails.get(name)
            if tail is None:
                tail = self._tails[name] = FileTail(self.directory / METRICS_DIR / name, self.root)
            chunk = tail.read(max(1, remaining), scratch=True)  # used up by _chunk below
            if chunk.restarted:
                replace = True
                self._headers.pop(name, None)
            notes.extend(chunk.notes)
            blob = chunk.buffer
            remaining -= len(blob) if blob is not None else sum(len(n) + 1 for n in chunk.lines)
            parsed = self._chunk(name, chunk, bad, steps_before)
            if not isinstance(parsed, list):
                steps_before = parsed[1]
            parts.append(parsed)
            self.more = self.more or chunk.more
            if remaining <= 0:
                self.more = True
                break
        if replace:
            # A history file was rewritten: read every file again from its start.
            for tail in self._tails.values():
                tail.close()
            self._tails.clear()
            self._headers.clear()
            self.more = True
            parts = []
        config_changed = self._read_params(notes)
        media = self._read_media()
        builder = RecordBuilder(0, written_at(self.directory / "metrics.json"))
        for part in by_step(parts):
            if isinstance(part, list):
                builder.add_records(part)
            else:
                builder.add_columns(*part)
        block = builder.build()
        meta = None
        if config_changed or self._meta is None:
            meta = self._meta_of()
            if meta == self._meta:
                meta = None
            else:
                self._meta = meta
        if (
            block is None
            and meta is None
            and not notes
            and not bad
            and media is None
            and not replace
        ):
            return None
        return self.batch(
            records=block,
            replace=replace,
            meta=meta,
            bad_lines=tuple(bad),
            notes=tuple(sanitize(n, 300) for n in notes),
            mtime=newest_mtime(self._watched(listed)),
            media=media,
        )


class DvcliveAdapter(Adapter):
    """Claims DVCLive directories: ``plots/`` beside ``metrics.json`` or ``params.yaml``."""

    format = "dvclive"

    def discover(self, root: Path, directory: Path, names: list[str]) -> Claim | None:
        if "plots" not in names or not ({"metrics.json", "params.yaml", "dvc.yaml"} & set(names)):
            return None
        if "metrics.jsonl" in names or "run.json" in names:
            return None
        if not os.path.isdir(directory / METRICS_DIR) and not os.path.isdir(directory / IMAGES_DIR):
            return None
        return Claim(
            sources=[DvcliveSource(root, relative(directory, root), directory)], prune=True
        )
