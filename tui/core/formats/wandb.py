"""Weights & Biases run folders on local disk: ``wandb/run-*/`` and ``wandb/offline-run-*/``.

Everything a run logged is in its transaction log ``run-<id>.wandb`` (``files/config.yaml``
and ``wandb-summary.json`` appear only once a run is synced, so they are not read). The
log's framing (LevelDB's log format after a 7-byte header) and the decoding of the records'
items are :mod:`tui.core.formats.wandb_log`'s. Each logical record is a
``wandb_internal.Record`` protocol buffer, decoded from the wire format
(:mod:`tui.core.formats.protowire`) for the fields shown, with field numbers from
wandb's ``wandb_internal.proto``:

* ``history`` (2): items (``key``/``nested_key``, a value as ``value_json`` or typed
  fields) and the step: series with their ``_step`` and ``_timestamp``; histograms are bar
  charts, logged media files (images, tables...) are listed;
* ``summary`` (3) and ``config`` (5) updates and removals, ``run`` (17: display name, tags,
  project, group, notes, start time, git), ``environment`` (26: host, user, program);
* ``output_raw`` (13) and ``output`` (4): console output, fragments joined into lines;
* ``stats`` (7): system metrics (GPU, CPU, memory...) as ``system/<name>`` series at the
  step reached when they were sampled;
* ``exit`` (18): the exit code, hence finished or failed, and with the run time the end.

The log is read from a byte offset like wandb's own reader: a record cut short (wandb's
process is mid-write) waits for the rest; a physical record failing its checksum, or a
header that cannot be right, makes the rest of its block skipped with a note, and reading
resumes at the next block.
"""

from __future__ import annotations

import dataclasses
import math
import os
import re
import struct
from itertools import pairwise
from pathlib import Path
from typing import Any

import numpy as np

from tui.core.formats.base import READ_BUDGET, Adapter, Claim, Source, now
from tui.core.formats.files import newest_mtime, relative
from tui.core.formats.meta import finish_meta
from tui.core.formats.native import log_lines
from tui.core.formats.protowire import (
    ProtoError,
    as_bytes,
    as_int,
    as_text,
    fields,
    signed,
    timestamp,
)
from tui.core.formats.tfevents import histogram_bars
from tui.core.formats.wandb_log import (
    BLOCK,
    FILE_HEADER,
    Gathered,
    Key,
    history,
    json_numbers,
    json_value,
    key_of,
    latest_updates,
    merge,
    nest,
    record_number,
    record_type,
    simple_items,
    split,
    updates,
)
from tui.core.records import TIME_KEY, RecordBuilder
from tui.core.sanitize import sanitize
from tui.core.shapes import flatten
from tui.core.store import Batch
from tui.core.tail import INCOMPLETE_AFTER, UnsafeFile, open_regular
from tui.core.timefmt import as_utc_iso

RUN_DIR = re.compile(r"(?:offline-)?run-\d{8}_\d{6}-([A-Za-z0-9_-]+)")
"""A run folder's name; the group is the run id (``run-<id>.wandb`` inside)."""

WANDB_LINKS = frozenset({"latest-run", "debug.log", "debug-internal.log"})
"""What wandb links in its folder to the newest run (and its logs)."""
RUN_PARTS = frozenset({"files", "logs", "tmp"})
"""What wandb makes in a run folder before (or besides) its transaction log."""

MEDIA_LIMIT = 500
MAX_RECORD = 256 * 1024 * 1024
"""The longest logical record read (a larger one waits, unread)."""
LOG_LINE_LIMIT = 64 * 1024
"""A console line longer than this is cut (wandb may write progress bars without newlines)."""

_SKIPPED_KEYS = frozenset({"_runtime", "_wandb"})
PREVIEW_HEAD = 16 * 1024
"""Bytes at the start of a log a preview decodes for the run's metadata (written first)."""
_META_RECORDS = frozenset({3, 5, 17, 18, 23, 26})
"""Records of the head a preview keeps: summary, config, run, exit, preempting, environment."""


def folder_name(directory: Path) -> str:
    """A folder's name, or its target's for a link (a ROOT that is ``wandb/latest-run``)."""
    return (
        os.path.basename(os.path.realpath(directory)) if directory.is_symlink() else directory.name
    )


def in_run_logs(directory: Path) -> bool:
    """Whether ``directory`` is, or is in, a run folder's ``logs/`` or ``tmp/`` (links resolved)."""
    parts = Path(os.path.realpath(directory)).parts
    return any(
        RUN_DIR.fullmatch(parent) and part in ("logs", "tmp") for parent, part in pairwise(parts)
    )


def transaction_log(
    directory: Path, names: list[str] | None = None, folder: str | None = None
) -> str | None:
    """The name of the ``run-<id>.wandb`` file of a run folder, if it holds one (``folder``:
    the folder's name when it is not ``directory``'s own, see :func:`folder_name`)."""
    match = RUN_DIR.fullmatch(folder or directory.name)
    if match is None:
        return None
    name = f"run-{match.group(1)}.wandb"
    if names is not None:
        return name if name in names else None
    return (
        name if os.path.isfile(directory / name) and not os.path.islink(directory / name) else None
    )


def _media(value: dict[str, Any]) -> list[str]:
    """Files a media value names (``path``, or ``filenames`` of an image list)."""
    found = []
    path = value.get("path")
    if isinstance(path, str):
        found.append(path)
    names = value.get("filenames")
    if isinstance(names, list):
        found.extend(n for n in names if isinstance(n, str))
    return [f"files/{p}" for p in found if not p.startswith("/") and ".." not in p.split("/")]


# The run ----------------------------------------------------------------------------------------
class WandbSource(Source):
    """One W&B run folder, read from its transaction log."""

    format = "wandb"

    def __init__(self, root: Path, key: str, directory: Path, log_name: str) -> None:
        super().__init__(root, key, directory)
        self.log_name = log_name
        self.offset = 0
        self.step = 0
        self._header_checked = False
        self._keys: dict[bytes, Key] = {}
        self._config: dict[str, Any] = {}
        self._summary: dict[str, Any] = {}
        self._run: dict[str, Any] = {}
        self._properties: dict[str, Any] = {}
        self._exit: tuple[int, float] | None = None
        self._started: float | None = None
        self._meta: dict[str, Any] | None = None
        self._media: list[str] = []
        self._partial: dict[int, bytes] = {}
        self._waiting_damage: int | None = None
        self._stalled_noted = False
        self._broken = False

    @property
    def log_path(self) -> Path:
        """The transaction log."""
        return self.directory / self.log_name

    def watched_files(self) -> list[Path]:
        return [self.log_path]

    # Reading the log ----------------------------------------------------------------------------
    def _read_bytes(self, budget: int, notes: list[str]) -> tuple[bytes, int, float] | None:
        try:
            fd = open_regular(self.log_path, self.root)
        except FileNotFoundError:
            return None
        except (UnsafeFile, OSError) as exc:
            self._broken = True
            notes.append(sanitize(f"{self.log_name}: {exc}", 300))
            return None
        try:
            info = os.fstat(fd)
            if not self._header_checked:
                head = os.pread(fd, len(FILE_HEADER), 0)
                if len(head) < len(FILE_HEADER):
                    return None
                if head != FILE_HEADER:
                    self._broken = True
                    notes.append(f"{self.log_name}: not a W&B transaction log (unknown header)")
                    return None
                self._header_checked = True
                self.offset = max(self.offset, len(FILE_HEADER))
            want = min(info.st_size - self.offset, budget)
            data = os.pread(fd, want, self.offset) if want > 0 else b""
        except OSError as exc:
            notes.append(sanitize(f"{self.log_name}: {exc.strerror or exc}", 300))
            return None
        finally:
            os.close(fd)
        return data, info.st_size, info.st_mtime

    def _records(self, budget: int, notes: list[str]) -> list[bytes]:
        want = max(budget, BLOCK)
        while True:
            got = self._read_bytes(want, notes)
            if got is None:
                return []
            data, size, mtime = got
            if size < self.offset:
                notes.append(f"{self.log_name} shrank; it is not read any further")
                self._broken = True
                return []
            records, used, damaged, waiting = split(data, self.offset)
            if used or self.offset + len(data) >= size or want >= MAX_RECORD:
                break
            want *= 4  # one record longer than the budget: read enough to hold it
        for at in damaged:
            if at != self._waiting_damage:
                notes.append(
                    f"{self.log_name}: damaged block at byte {at:,} (checksum mismatch); "
                    "the rest of that block was skipped"
                )
        if waiting is not None and waiting != self._waiting_damage:
            notes.append(
                f"{self.log_name}: damaged block at byte {waiting:,} (checksum mismatch); "
                "the rest of that block will be skipped"
            )
        self._waiting_damage = waiting if waiting is not None else self._waiting_damage
        start = self.offset
        self.offset += used
        read_to = start + len(data)
        if read_to < size:
            self.more = True
        elif (
            self.offset < size
            and waiting is None
            and not records
            and not self._stalled_noted
            and now() - mtime > INCOMPLETE_AFTER
        ):
            self._stalled_noted = True
            notes.append(
                f"{self.log_name}: incomplete final record at byte {self.offset:,} "
                "(writer stopped mid-record?)"
            )
        if records:
            self._stalled_noted = False
        return records

    # Decoding records ---------------------------------------------------------------------------
    def _history(self, payload: bytes, rows: list[dict[str, Any]], media: list[str]) -> None:
        items, step = history(payload, self._keys)
        record: dict[str, Any] = {}
        for key, value in nest(items).items():
            if key in _SKIPPED_KEYS:
                continue
            if key == "_timestamp":
                if isinstance(value, (int, float)):
                    record["_time"] = value
            elif isinstance(value, dict):
                kind = value.get("_type")
                if kind == "histogram":
                    bars = _wandb_histogram(value)
                    if bars is not None:
                        record[key] = bars
                elif kind is not None:
                    media.extend(_media(value))
                else:
                    flatten(key, value, record)
            else:
                record[key] = value
        if "_step" not in record:
            record["_step"] = step if step is not None else self.step
        x = record["_step"]
        if isinstance(x, (int, float)) and not isinstance(x, bool) and math.isfinite(x):
            self.step = int(x)
        rows.append(record)

    def _stats(self, payload: bytes, rows: list[dict[str, Any]]) -> None:
        record: dict[str, Any] = {"_step": self.step}
        for number, _, raw in fields(payload):
            if number == 2:
                record["_time"] = timestamp(as_bytes(raw))
            elif number == 3:
                key = ""
                value: Any = None
                for item_number, _, item in fields(as_bytes(raw)):
                    if item_number == 1:
                        key = as_text(item)
                    elif item_number == 16:
                        value = json_value(as_bytes(item))
                if key and isinstance(value, (int, float)) and not isinstance(value, bool):
                    record[f"system/{key}"] = value
        if len(record) > 2:
            rows.append(record)

    def _output(self, payload: bytes, lines: list[bytes]) -> None:
        stream = 0
        text = b""
        for number, _, raw in fields(payload):
            if number == 1:
                stream = as_int(raw)
            elif number == 3:
                text = as_bytes(raw)
        pending = self._partial.get(stream, b"") + text
        pieces = pending.split(b"\n")
        rest = pieces.pop()
        for piece in pieces:
            lines.append(piece.rsplit(b"\r", 1)[-1] if b"\r" in piece.rstrip(b"\r") else piece)
        self._partial[stream] = rest[-LOG_LINE_LIMIT:]

    def _run_record(self, payload: bytes) -> None:
        run: dict[str, Any] = {}
        tags: list[str] = []
        for number, _, raw in fields(payload):
            if number in (1, 2, 3, 6, 7, 8, 9, 12, 13):
                name = {
                    1: "run_id",
                    2: "entity",
                    3: "project",
                    6: "group",
                    7: "job_type",
                    8: "display_name",
                    9: "notes",
                    12: "sweep_id",
                    13: "host",
                }[number]
                run[name] = as_text(raw)
            elif number == 4:
                merge(self._config, *updates(as_bytes(raw)))
            elif number == 10:
                tags.append(as_text(raw))
            elif number == 17:
                self._started = timestamp(as_bytes(raw))
            elif number == 21:
                for git_number, _, git in fields(as_bytes(raw)):
                    if git_number == 1:
                        run["git_remote"] = as_text(git)
                    elif git_number == 2:
                        run["git_commit"] = as_text(git)
        run["tags"] = tags
        self._run.update(run)

    def _environment(self, payload: bytes) -> None:
        names = {
            1: "os",
            2: "python",
            6: "program",
            12: "host",
            13: "user",
            18: "gpu",
            19: "gpu_count",
        }
        args: list[str] = []
        for number, wire, raw in fields(payload):
            if number == 5:
                args.append(as_text(raw))
            elif number in names:
                self._properties[names[number]] = as_int(raw) if wire == 0 else as_text(raw)
        if args:
            self._properties["args"] = args

    def _exit_record(self, payload: bytes) -> None:
        code = 0
        runtime = 0.0
        for number, _, raw in fields(payload):
            if number == 1:
                code = signed(as_int(raw))
                code = code - (1 << 32) if code >= 1 << 31 else code
            elif number == 2:
                runtime = float(as_int(raw))
        self._exit = (code, runtime)

    def _decode(
        self, records: list[bytes], builder: RecordBuilder, lines: list[bytes], notes: list[str]
    ) -> tuple[bool, list[str]]:
        """Apply records; returns whether the run's metadata may have changed, and new media.

        History records in wandb's usual layout, all numbers, are gathered and added in
        bulk (:meth:`_add_histories`); others become rows one by one, in file order.
        """
        meta_changed = False
        media: list[str] = []
        summaries: list[bytes] = []
        rows: list[dict[str, Any]] = []
        gathered = Gathered()
        damaged = 0
        for data in records:
            try:
                number, payload = record_type(data)
                if number == 2:
                    before = len(gathered.keys)
                    items = simple_items(payload, gathered.keys, gathered.raws)
                    if items is None or items[2]:
                        del gathered.keys[before:], gathered.raws[before:]
                        damaged += self._add_histories(gathered, builder, media)
                        self._history(payload, rows, media)
                    else:
                        if rows:
                            builder.add_records(rows)
                            rows = []
                        gathered.payloads.append(payload)
                        gathered.counts.append(items[0])
                    continue
                if number == 7:
                    damaged += self._add_histories(gathered, builder, media)
                    self._stats(payload, rows)
                elif number in (13, 4):
                    self._output(payload, lines)
                elif number == 3:
                    summaries.append(payload)
                elif number == 5:
                    merge(self._config, *updates(payload, self._keys))
                    meta_changed = True
                elif number == 17:
                    self._run_record(payload)
                    meta_changed = True
                elif number == 26:
                    self._environment(payload)
                    meta_changed = True
                elif number == 18:
                    self._exit_record(payload)
                    meta_changed = True
                elif number == 23:
                    self._properties["preempting"] = True
                    meta_changed = True
            except (ProtoError, ValueError, struct.error, IndexError):
                damaged += 1
        damaged += self._add_histories(gathered, builder, media)
        builder.add_records(rows)
        try:
            for changed, removed in latest_updates(summaries, self._keys):
                merge(self._summary, changed, removed)
                meta_changed = True
        except (ProtoError, ValueError, struct.error, IndexError):
            damaged += 1
        if damaged:
            notes.append(f"{self.log_name}: {damaged} record(s) that are not W&B records skipped")
        return meta_changed, media

    def _add_histories(
        self,
        gathered: Gathered,
        builder: RecordBuilder,
        media: list[str],
    ) -> int:
        """Add history records scanned by :func:`simple_items` as columns, and empty
        ``gathered``; the damaged count.

        The same records as :meth:`_history` makes one by one: ``_runtime`` and ``_wandb``
        left out, ``_timestamp`` as the time, ``_step`` as x. Falls back to that method for
        the lot when a record has no ``_step`` item or a key twice, or a value is not a number.
        """
        if not gathered.payloads:
            return 0
        payloads, counts, keys = gathered.payloads, gathered.counts, gathered.keys
        values = json_numbers(gathered.raws)
        gathered.payloads, gathered.counts, gathered.keys, gathered.raws = [], [], [], []
        index = {k: i for i, k in enumerate(dict.fromkeys(keys))}
        names = [self._key_name(k) for k in index]
        count = len(payloads)
        columns: dict[str, tuple[np.ndarray | None, np.ndarray]] = {}
        if values is not None and b"_step" in index and TIME_KEY not in names:
            ids = np.fromiter(map(index.__getitem__, keys), np.int64, len(keys))
            rows = np.repeat(np.arange(count), counts)
            for i, name in enumerate(names):
                mine = ids == i
                where = rows[mine]
                if len(where) > 1 and not (where[1:] > where[:-1]).all():
                    columns = {}  # a key twice in one record: the last value wins, one by one
                    break
                columns[name] = (where, values[mine])
        steps = columns.get("_step")
        if steps is None or len(steps[1]) != count:
            rows_out: list[dict[str, Any]] = []
            damaged = 0
            for payload in payloads:
                try:
                    self._history(payload, rows_out, media)
                except (ProtoError, ValueError, struct.error, IndexError):
                    damaged += 1
            builder.add_records(rows_out)
            return damaged
        stamps = columns.pop("_timestamp", None)
        times = None
        if stamps is not None:
            times = np.full(count, np.nan)
            times[stamps[0]] = stamps[1]
        for skipped in _SKIPPED_KEYS:
            columns.pop(skipped, None)
        columns["_step"] = (None, steps[1])
        finite = steps[1][np.isfinite(steps[1])]
        if len(finite):
            self.step = int(finite[-1])
        builder.add_columns(count, columns, times)
        return 0

    def _key_name(self, key: bytes) -> str:
        return key_of([key], self._keys)[0]

    def _meta_now(self) -> dict[str, Any] | None:
        run = self._run
        props = self._properties
        folder = folder_name(self.directory)
        named = RUN_DIR.fullmatch(folder)
        run_id = run.get("run_id") or (named.group(1) if named else folder)
        properties: dict[str, Any] = {
            "run_id": run_id,
            "mode": "offline" if folder.startswith("offline-") else "online",
            **{
                k: run.get(k)
                for k in ("project", "entity", "group", "job_type", "notes", "sweep_id")
            },
            **{k: props.get(k) for k in ("program", "args", "python", "os", "gpu", "gpu_count")},
        }
        summary: dict[str, Any] = {}
        for key, value in self._summary.items():
            if key.startswith("_") or (isinstance(value, dict) and "_type" in value):
                continue
            if isinstance(value, dict):
                flatten(key, value, summary)
            else:
                summary[key] = value
        if summary:
            properties["summary"] = summary
        if props.get("preempting"):
            properties["preempting"] = True
        config = {k: v for k, v in self._config.items() if k != "_wandb"}
        started = self._started
        meta: dict[str, Any] = {
            "id": run_id,
            "name": run.get("display_name") or run_id,
            "config": config,
            "tags": run.get("tags") or None,
            "host": props.get("host") or run.get("host") or None,
            "user": props.get("user") or None,
            "created_at": as_utc_iso(started) if started else None,
            "started_at": as_utc_iso(started) if started else None,
            "properties": {k: v for k, v in properties.items() if v not in (None, "", [])},
        }
        if run.get("git_commit"):
            meta["git"] = {"commit": run["git_commit"], "remote": run.get("git_remote")}
        if self._exit is not None:
            code, runtime = self._exit
            meta["exit_code"] = code
            meta["status"] = "finished" if code == 0 else "failed"
            if started:
                meta["ended_at"] = as_utc_iso(started + runtime)
        meta = finish_meta(meta)
        if meta == self._meta:
            return None
        self._meta = meta
        return meta

    def read(self, budget: int = READ_BUDGET) -> Batch | None:
        self.more = False
        notes: list[str] = []
        if self._broken:
            return None
        return self._batch_of([self._records(budget, notes)], notes)

    def preview(self, tail_bytes: int = 65536) -> Batch | None:
        """The run from the start and the end of its log, decoded by a fresh copy of this source.

        wandb writes the run, its config and environment first: the first ``PREVIEW_HEAD``
        bytes give the name, config, tags and host. The blocks holding the last
        ``tail_bytes`` give the newest history rows, the summary and the exit (framing is
        found again at a block's start). A log that short is decoded whole. This source's
        position and state are left as they were; the full read replaces the preview.
        """
        found = self._preview_records(tail_bytes)
        if found is None:
            return None
        chunks, whole = found
        scratch = WandbSource(self.root, self.key, self.directory, self.log_name)
        batch = scratch._batch_of(chunks, [], replace=True, partial=not whole, head=whole)
        # Damage is the full read's to report (a note given twice would be kept twice).
        return None if batch is None else dataclasses.replace(batch, notes=())

    def _preview_records(self, tail_bytes: int) -> tuple[list[list[bytes]], bool] | None:
        """The head's metadata records and the tail's records, and whether that is all."""
        try:
            fd = open_regular(self.log_path, self.root)
        except (UnsafeFile, OSError):
            return None
        try:
            size = os.fstat(fd).st_size
            head_end = min(size, len(FILE_HEADER) + PREVIEW_HEAD)
            head = os.pread(fd, head_end, 0)
            start = max(0, size - tail_bytes) // BLOCK * BLOCK
            whole = tail_bytes > 0 and start <= head_end
            if whole:
                head += os.pread(fd, size - head_end, head_end)
            tail = os.pread(fd, size - start, start) if tail_bytes > 0 and not whole else b""
        except OSError:
            return None
        finally:
            os.close(fd)
        if not head.startswith(FILE_HEADER):
            return None
        first = split(head[len(FILE_HEADER) :], len(FILE_HEADER))[0]
        if whole:
            return [first], True
        meta = [data for data in first if record_number(data) in _META_RECORDS]
        return [meta, split(tail, start)[0] if tail else []], False

    def _batch_of(self, chunks: list[list[bytes]], notes: list[str], **fields: Any) -> Batch | None:
        """Decode records read in one or more stretches of the log into one batch."""
        builder = RecordBuilder(0, now())
        lines: list[bytes] = []
        meta_changed = False
        media: list[str] = []
        for records in chunks:
            changed, found = self._decode(records, builder, lines, notes)
            meta_changed |= changed
            media += found
        media_out = None
        if media and len(self._media) < MEDIA_LIMIT:
            known = set(self._media)
            self._media.extend(m for m in dict.fromkeys(media) if m not in known)
            del self._media[MEDIA_LIMIT:]
            media_out = tuple(sanitize(m, 300) for m in self._media)
        block = builder.build()
        meta = self._meta_now() if meta_changed or self._meta is None else None
        if block is None and meta is None and not lines and not notes and media_out is None:
            return None
        return self.batch(
            records=block,
            meta=meta,
            log=log_lines(lines),
            notes=tuple(sanitize(n, 300) for n in notes),
            mtime=newest_mtime(self.watched_files()),
            media=media_out,
            **fields,
        )


def _wandb_histogram(value: dict[str, Any]) -> dict[str, list[Any]] | None:
    """``{"_type": "histogram", "bins": [edges], "values": [counts]}`` as a bar chart."""
    bins, counts = value.get("bins"), value.get("values")
    if not (isinstance(bins, list) and isinstance(counts, list)) or len(bins) != len(counts) + 1:
        return None
    try:
        edges = [float(b) for b in bins]
        numbers = [float(c) for c in counts]
    except (TypeError, ValueError):
        return None
    return histogram_bars(edges[:-1], edges[1:], numbers)


def run_folders(directory: Path) -> list[tuple[Path, str]]:
    """W&B run folders directly in ``directory`` (symbolic links not followed), with their logs."""
    found = []
    try:
        with os.scandir(directory) as entries:
            for entry in entries:
                if not RUN_DIR.fullmatch(entry.name) or not entry.is_dir(follow_symlinks=False):
                    continue
                path = Path(entry.path)
                name = transaction_log(path)
                if name is not None:
                    found.append((path, name))
    except OSError:
        return []
    return sorted(found)


class WandbAdapter(Adapter):
    """Claims W&B run folders: those in a ``wandb/`` directory, or a run folder itself.

    Discovery does not descend into ``wandb/`` (its ``latest-run`` and debug-log links may
    point anywhere), so the folder holding it lists the runs. A W&B folder reached by the
    walk (a ROOT that is a ``wandb/`` directory, or a run folder) is claimed whole, pruned,
    even where it holds no transaction log yet: its debug logs (JSON lines), console output
    and saved files are W&B's, never runs of another format.
    """

    format = "wandb"

    def discover(self, root: Path, directory: Path, names: list[str]) -> Claim | None:
        # Only ROOT may be a link: the walk follows none.
        folder = folder_name(directory) if directory == root else directory.name
        name = transaction_log(directory, names, folder)
        if name is not None:
            source = WandbSource(root, relative(directory, root), directory, name)
            return Claim(sources=[source], prune=True)
        if directory == root and in_run_logs(directory):
            return Claim(prune=True)  # wandb's debug logs are JSON lines, not a run's records
        if RUN_DIR.fullmatch(folder) and not RUN_PARTS.isdisjoint(names):
            return Claim(prune=True)  # a run folder whose log is not written yet
        if "latest-run" in names or any(RUN_DIR.fullmatch(n) for n in names):
            runs = run_folders(directory)
            if runs or WANDB_LINKS.issubset(names):
                return Claim(sources=self._sources(root, runs), prune=True)
        if "wandb" not in names:
            return None
        inside = directory / "wandb"
        if os.path.islink(inside) or not inside.is_dir():
            return None
        runs = run_folders(inside)
        if not runs:
            return None
        return Claim(sources=self._sources(root, runs), watch=[inside])

    @staticmethod
    def _sources(root: Path, runs: list[tuple[Path, str]]) -> list[Source]:
        return [WandbSource(root, relative(path, root), path, log) for path, log in runs]
