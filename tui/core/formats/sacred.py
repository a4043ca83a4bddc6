"""Sacred ``FileStorageObserver`` run folders: ``<base>/<run id>/``.

Each run folder holds ``run.json`` (status, host, experiment, command, ``start_time``,
``heartbeat``, ``stop_time``, ``result``, ``fail_trace``; rewritten on every heartbeat),
``config.json``, ``metrics.json`` (``{name: {"steps", "timestamps", "values"}}``, the whole
history rewritten on every heartbeat) and ``cout.txt`` (captured output, appended). Times
are naive ISO-8601 in UTC. Both JSON files are written in place, so one that does not parse
is read again at the next look and noted only if it stays broken while quiet.

Statuses: ``COMPLETED`` -> finished, ``FAILED`` -> failed, ``INTERRUPTED`` -> killed,
``TIMEOUT`` -> failed, ``QUEUED`` -> pending; ``RUNNING`` proves nothing by itself, but each
new heartbeat of a running run is evidence of life: it is recorded as a record without
values at the run's current step and the heartbeat's time, so a live run whose metrics come
rarely is still seen as running, and one whose heartbeats stopped falls quiet.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import msgspec
import numpy as np

from tui.core.formats.base import READ_BUDGET, Adapter, Claim, Source, now, written_at
from tui.core.formats.documents import parse_json
from tui.core.formats.files import SMALL_LIMIT, newest_mtime, read_small, relative, stamp
from tui.core.formats.meta import finish_meta
from tui.core.formats.native import log_lines
from tui.core.records import TIME_KEY, X_KEYS, RecordBuilder, parse_time, times_column
from tui.core.sanitize import sanitize
from tui.core.shapes import is_number
from tui.core.status import RunStatus
from tui.core.store import Batch
from tui.core.tail import INCOMPLETE_AFTER, FileTail
from tui.core.timefmt import as_utc_iso

STATUSES: dict[str, RunStatus] = {
    "COMPLETED": "finished",
    "FAILED": "failed",
    "INTERRUPTED": "killed",
    "TIMEOUT": "failed",
    "QUEUED": "pending",
    "RUNNING": "running",
}
"""Sacred's run states and the statuses they claim."""

METRICS_LIMIT = 256 * 1024 * 1024
"""Largest ``metrics.json`` read (it holds every point of the run)."""

MARKERS = frozenset({"run.json", "config.json", "cout.txt"})
"""Files every FileStorageObserver run folder has."""


def iso_utc(value: object) -> str | None:
    """Sacred's naive UTC time text in our one spelling."""
    seconds = parse_time(value) if isinstance(value, str) else None
    return as_utc_iso(seconds) if seconds is not None else None


def _mapping(value: object) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


Columns = tuple[int, dict[str, tuple[np.ndarray | None, np.ndarray]], np.ndarray]
"""Records in bulk: how many, their step and metric columns, and their times."""

_NUMBERS = frozenset({int, float})


class _Metric(msgspec.Struct):
    """One metric of ``metrics.json`` whose steps and values are all numbers (ints read as
    floats, as numpy would make them; a bool, a null or a text is refused)."""

    steps: list[float]
    values: list[float]
    timestamps: list[str] = []


_METRICS = msgspec.json.Decoder(dict[str, _Metric])
"""Decodes the usual ``metrics.json`` with its numbers checked in C; anything else (Python's
bare ``NaN``, a value that is not a number) is parsed as plain JSON and checked here."""

_STAMP_WIDTH = 26
"""Characters of Sacred's timestamps: ``datetime.isoformat()``, ``YYYY-MM-DDTHH:MM:SS.ffffff``."""

_STAMP_DIGITS = np.array([i for i in range(_STAMP_WIDTH) if i not in (4, 7, 10, 13, 16, 19)])
_STAMP_MARKS = np.frombuffer(b"--T::.", np.uint8)
_DAYS_IN_MONTH = np.array([0, 31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31])


def _numbers(values: list[Any] | np.ndarray) -> np.ndarray | None:
    """``values`` as float64 when every one is an int or a float (never a bool), else None.

    An array is taken as it is (made from a list ``_METRICS`` checked).
    """
    if isinstance(values, np.ndarray):
        return values
    if not set(map(type, values)) <= _NUMBERS:
        return None
    try:
        return np.array(values, dtype=np.float64)
    except OverflowError:  # an int beyond float64: the point by point path makes it infinite
        return None


def stamp_seconds(stamps: list[Any]) -> np.ndarray:
    """Epoch seconds of Sacred's timestamps, as :func:`times_column` gives them (infinite
    where there is none).

    Every one in ``datetime.isoformat()``'s fixed width (the usual case) is computed in
    numpy from its digits, the same microseconds as numpy's own parser; any other column
    goes to ``times_column``.
    """
    count = len(stamps)
    try:
        text = "\n".join(stamps).encode("ascii")
    except (TypeError, UnicodeEncodeError):
        text = b""
    if not count or len(text) != (_STAMP_WIDTH + 1) * count - 1:
        return times_column(stamps, math.inf)
    codes = np.frombuffer(text, np.uint8)
    rows = np.lib.stride_tricks.as_strided(
        codes, (count, _STAMP_WIDTH), (_STAMP_WIDTH + 1, 1), writeable=False
    )
    digits = rows[:, _STAMP_DIGITS] - np.uint8(ord("0"))
    # One newline between each two (so each is exactly as wide), the marks where they go
    # and digits elsewhere.
    if (
        not (codes[_STAMP_WIDTH :: _STAMP_WIDTH + 1] == ord("\n")).all()
        or not (rows[:, [4, 7, 10, 13, 16, 19]] == _STAMP_MARKS).all()
        or (digits > 9).any()
    ):
        return times_column(stamps, math.inf)
    d = digits.astype(np.int64)
    year = d[:, 0] * 1000 + d[:, 1] * 100 + d[:, 2] * 10 + d[:, 3]
    month, day = d[:, 4] * 10 + d[:, 5], d[:, 6] * 10 + d[:, 7]
    hour, minute, second = (
        d[:, 8] * 10 + d[:, 9],
        d[:, 10] * 10 + d[:, 11],
        d[:, 12] * 10 + d[:, 13],
    )
    micros = d[:, 14:20] @ np.array([100000, 10000, 1000, 100, 10, 1])
    leap = (year % 4 == 0) & ((year % 100 != 0) | (year % 400 == 0))
    month_days = _DAYS_IN_MONTH[np.clip(month, 0, 12)] + ((month == 2) & leap)
    if not (
        (year >= 1).all()
        and ((month >= 1) & (month <= 12)).all()
        and ((day >= 1) & (day <= month_days)).all()
        and (hour <= 23).all()
        and (minute <= 59).all()
        and (second <= 59).all()
    ):
        return times_column(stamps, math.inf)
    # Days since 1970-01-01 in the proleptic Gregorian calendar, years counted from March.
    shifted = year - (month <= 2)
    era = shifted // 400
    of_era = shifted - era * 400
    of_year = (153 * ((month + 9) % 12) + 2) // 5 + day - 1
    days = era * 146097 + of_era * 365 + of_era // 4 - of_era // 100 + of_year - 719468
    seconds = ((days * 24 + hour) * 60 + minute) * 60 + second
    result: np.ndarray = (seconds * 1_000_000 + micros) / 1e6  # as times_column divides
    return result


def bulk_records(points: list[tuple[str, Any, Any, list[Any]]]) -> Columns | None:
    """New points ``(metric, steps, values, times)`` merged into records by step, as columns.

    The same records as merging point by point: sorted by step then time, one record per
    step holding each metric's point and the earliest time. ``None`` (the caller merges
    point by point) when a step is not a finite number, a value not a number, a metric logs
    twice at one step, or a metric is named like the step or time key. Steps and values
    are lists, or float64 arrays of numbers known to be numbers.

    Sacred logs each metric in step order, most often every metric at the same steps: then
    nothing is sorted. A metric out of order is sorted on its own, and metrics logged at
    different steps are merged over their sorted union.
    """
    names: list[str] = []
    steps, values, moments = [], [], []
    for name, raw_steps, raw_values, raw_times in points:
        step, value = _numbers(raw_steps), _numbers(raw_values)
        if name in X_KEYS or name == TIME_KEY or step is None or value is None:
            return None
        if not np.isfinite(step).all():
            return None
        moment = np.full(len(step), math.inf)
        if raw_times:
            moment[: len(raw_times)] = stamp_seconds(raw_times)
        if not (step[1:] > step[:-1]).all():
            order = np.lexsort((moment, step))
            step, value, moment = step[order], value[order], moment[order]
            if (step[1:] == step[:-1]).any():
                return None
        names.append(name)
        steps.append(step)
        values.append(value)
        moments.append(moment)
    if not names:
        return None
    wheres: list[np.ndarray | None]
    if all(np.array_equal(s, steps[0]) for s in steps[1:]):
        step = steps[0]
        wheres = [None] * len(names)
        moment = moments[0]
        for other in moments[1:]:
            moment = np.minimum(moment, other)
    else:
        step = np.unique(np.concatenate(steps))
        wheres = [np.searchsorted(step, s) for s in steps]
        moment = np.full(len(step), math.inf)
        for where, other in zip(wheres, moments):
            moment[where] = np.minimum(moment[where], other)
    columns: dict[str, tuple[np.ndarray | None, np.ndarray]] = {"step": (None, step)}
    for name, where, value in zip(names, wheres, values):
        columns[name] = (where, value)
    return len(step), columns, moment


def _metrics_of(data: bytes) -> tuple[dict[str, dict[str, list[Any]]] | None, None]:
    """``metrics.json`` through ``_METRICS`` as plain entries, or ``None`` (then parsed as
    plain JSON)."""
    try:
        metrics = _METRICS.decode(data)
    except msgspec.DecodeError:  # validation errors included
        return None, None
    return {
        name: {"steps": m.steps, "values": m.values, "timestamps": m.timestamps}
        for name, m in metrics.items()
    }, None


class SacredSource(Source):
    """One FileStorageObserver run folder."""

    format = "sacred"

    def __init__(self, root: Path, key: str, directory: Path) -> None:
        super().__init__(root, key, directory)
        self.cout = FileTail(directory / "cout.txt", root)
        self._stamps: dict[str, tuple[int, int, int] | None] = {}
        self._documents: dict[str, dict[str, Any]] = {}
        self._counts: dict[str, int] = {}
        self._step = 0.0
        self._heartbeat: float | None = None
        self._meta: dict[str, Any] | None = None
        self._retry: set[str] = set()
        self._noted: dict[str, tuple[int, int, int]] = {}
        self._checked = False  # the metrics.json in _documents came through _METRICS

    def watched_files(self) -> list[Path]:
        return [self.directory / n for n in ("run.json", "metrics.json", "config.json", "cout.txt")]

    def changed(self) -> bool:
        return super().changed() or bool(self._retry)

    def close(self) -> None:
        self.cout.close()

    def _document(self, name: str, notes: list[str]) -> bool:
        """Re-read one JSON file when it changed; True when a new version was read."""
        path = self.directory / name
        current = stamp(path)
        if current == self._stamps.get(name) and name not in self._retry:
            return False
        data, error = read_small(
            path, self.root, METRICS_LIMIT if name == "metrics.json" else SMALL_LIMIT
        )
        if data is None:
            self._stamps[name] = current
            if error is not None:
                notes.append(error)
            return False
        value, error = _metrics_of(data) if name == "metrics.json" else (None, None)
        self._checked = value is not None
        if value is None:
            value, error = parse_json(data, name)
        if not isinstance(value, dict):
            # Sacred rewrites these files in place: try again at the next look.
            self._retry.add(name)
            quiet = current is not None and now() - current[2] / 1e9 > INCOMPLETE_AFTER
            if quiet and self._noted.get(name) != current and current is not None:
                self._noted[name] = current
                notes.append(error or f"{name} is not a JSON object")
            return False
        self._retry.discard(name)
        self._stamps[name] = current
        self._documents[name] = value
        return True

    def _points(self, replace: bool) -> tuple[list[dict[str, Any]] | Columns, bool]:
        """Records of the metric points not read yet; True when the history was rewritten."""
        # Every point of the run as Python objects: not kept once its new points are taken.
        metrics = self._documents.pop("metrics.json", {})
        rewritten = replace
        lengths: dict[str, int] = {}
        for name, entry in metrics.items():
            if not isinstance(entry, dict):
                continue
            values, steps = entry.get("values"), entry.get("steps")
            if not isinstance(values, list) or not isinstance(steps, list):
                continue
            count = min(len(values), len(steps))
            lengths[name] = count
            if count < self._counts.get(name, 0):
                rewritten = True
        if rewritten:
            self._counts = {}
        points = []
        for name, count in lengths.items():
            entry = metrics[name]
            times = entry.get("timestamps") if isinstance(entry.get("timestamps"), list) else []
            start = self._counts.get(name, 0)
            if count > start:
                points.append(
                    (
                        name,
                        entry["steps"][start:count],
                        entry["values"][start:count],
                        times[start:count],
                    )
                )
            self._counts[name] = count
        if self._checked:  # numbers alone: made arrays without a look at each one
            bulk = bulk_records(
                [
                    (name, np.array(steps, np.float64), np.array(values, np.float64), times)
                    for name, steps, values, times in points
                ]
            )
        else:
            bulk = bulk_records(points)
        if bulk is not None:
            self._step = max(self._step, float(bulk[1]["step"][1].max()))
            return bulk, rewritten
        return self._merge(points), rewritten

    def _merge(
        self, points: list[tuple[str, list[Any], list[Any], list[Any]]]
    ) -> list[dict[str, Any]]:
        """Points merged into records by step, one by one (what ``bulk_records`` cannot take)."""
        fresh: list[tuple[float, float, str, float]] = []
        for name, steps, values, times in points:
            for i, (step, value) in enumerate(zip(steps, values)):
                if not is_number(step):
                    continue
                moment = parse_time(times[i]) if i < len(times) else None
                number = float(value) if is_number(value) else math.nan
                fresh.append(
                    (moment if moment is not None else math.inf, float(step), name, number)
                )
        fresh.sort(key=lambda p: (p[1], p[0]))
        records: list[dict[str, Any]] = []
        by_step: dict[float, dict[str, Any]] = {}
        for moment, step, name, value in fresh:
            record = by_step.get(step)
            if record is None or name in record:
                record = by_step[step] = {"step": step}
                if math.isfinite(moment):
                    record["_time"] = moment
                records.append(record)
            record[name] = value
            self._step = max(self._step, step)
        return records

    def _meta_now(self) -> dict[str, Any] | None:
        run = self._documents.get("run.json", {})
        config = dict(self._documents.get("config.json", {}))
        host = _mapping(run.get("host"))
        experiment = _mapping(run.get("experiment"))
        state = run.get("status")
        status = STATUSES.get(state, "unknown") if isinstance(state, str) else "unknown"
        properties: dict[str, Any] = {
            "run_id": self.directory.name,
            "experiment": experiment.get("name"),
            "command": run.get("command"),
            "mainfile": experiment.get("mainfile"),
            "state": state,
            "heartbeat": iso_utc(run.get("heartbeat")),
            "result": run.get("result"),
            "python": host.get("python_version"),
            "cpu": host.get("cpu"),
        }
        trace = run.get("fail_trace")
        if isinstance(trace, list) and trace:
            properties["error"] = str(trace[-1]).strip()
        meta: dict[str, Any] = {
            "id": self.directory.name,
            "name": f"{experiment.get('name') or 'sacred'}/{self.directory.name}",
            "status": status,
            "host": host.get("hostname"),
            "config": config,
            "created_at": iso_utc(run.get("start_time")),
            "started_at": iso_utc(run.get("start_time")),
            "properties": {k: v for k, v in properties.items() if v is not None},
        }
        if status in ("finished", "failed", "killed"):
            meta["ended_at"] = iso_utc(run.get("stop_time")) or iso_utc(run.get("heartbeat"))
        meta = finish_meta(meta)
        if meta == self._meta:
            return None
        self._meta = meta
        return meta

    def preview(self, tail_bytes: int = 65536) -> Batch | None:
        """The run listed from run.json and config.json (status, host, config): metrics.json
        is one JSON document, parsed whole or not at all."""
        scratch = SacredSource(self.root, self.key, self.directory)
        for name in ("run.json", "config.json"):
            scratch._document(name, [])
        return self.listing(scratch._meta_now())

    def read(self, budget: int = READ_BUDGET) -> Batch | None:
        notes: list[str] = []
        changed = [self._document(n, notes) for n in ("run.json", "config.json", "metrics.json")]
        found, rewritten = self._points(False) if changed[2] else ([], False)
        builder = RecordBuilder(0, written_at(self.directory / "metrics.json"))
        if isinstance(found, list):
            records = found
        else:
            builder.add_columns(*found)
            records = []
        run = self._documents.get("run.json", {})
        beat = parse_time(run.get("heartbeat")) if changed[0] else None
        if (
            beat is not None
            and run.get("status") == "RUNNING"
            and (self._heartbeat is None or beat > self._heartbeat)
        ):
            records.append({"step": self._step, "_time": beat})
        if beat is not None:
            self._heartbeat = beat
        logs = self.cout.read(budget)
        notes.extend(logs.notes)
        self.more = logs.more
        builder.add_records(records)
        block = builder.build()
        meta = self._meta_now()
        if block is None and meta is None and not logs and not notes and not rewritten:
            return None
        return self.batch(
            records=block,
            replace=rewritten,
            meta=meta,
            log=log_lines(logs.lines),
            notes=tuple(sanitize(n, 300) for n in notes),
            mtime=newest_mtime(self.watched_files()),
        )


class SacredAdapter(Adapter):
    """Claims FileStorageObserver run folders (``run.json``, ``config.json``, ``cout.txt``)."""

    format = "sacred"

    def discover(self, root: Path, directory: Path, names: list[str]) -> Claim | None:
        if "metrics.jsonl" in names or not set(names) >= MARKERS:
            return None
        return Claim(sources=[SacredSource(root, relative(directory, root), directory)], prune=True)
