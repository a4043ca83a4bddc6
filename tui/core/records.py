"""Turn JSON lines (or records from a foreign format) into an immutable columnar block.

The fast path parses a chunk with orjson, groups records by their key tuple (loggers write
the same keys over and over) and moves each all-numeric column into numpy in one call, so
the Python work per record is a handful of C-level operations. Anything else (text,
vectors, matrices, nested objects, booleans, NaN written by Python) takes the slow path,
record by record, with the same results.
"""

from __future__ import annotations

import json
import math
import time
from collections import defaultdict
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any

import numpy as np
import orjson

from tui.core.sanitize import sanitize
from tui.core.shapes import Shape, classify, flatten, is_number

X_KEYS = ("step", "_step", "epoch", "iteration")
"""Keys that give a record's x value, in order of preference (DESIGN.md §3)."""

TIME_KEY = "_time"
_NUMERIC = {float, int}
_MAX_DEPTH = 64


@dataclass(frozen=True, slots=True)
class RecordBlock:
    """New records from one source, columnar. The store takes ownership of the arrays.

    Attributes:
        steps: x value of each new record.
        times: wall time of each new record (epoch seconds).
        scalars: metric name -> (record positions in this block, float64 values).
        objects: metric name -> (record position, shape) for text, vectors, matrices,
            bars, lines and tables.
    """

    steps: np.ndarray
    times: np.ndarray
    scalars: dict[str, tuple[np.ndarray, np.ndarray]]
    objects: dict[str, list[tuple[int, Shape]]]

    def __len__(self) -> int:
        return len(self.steps)


def _nan_constant(name: str) -> float:
    return {"NaN": math.nan, "Infinity": math.inf, "-Infinity": -math.inf}[name]


def _depth_ok(line: bytes) -> bool:
    """Cheap guard before the recursive stdlib parser sees hostile nesting."""
    return max(line.count(b"["), line.count(b"{")) <= _MAX_DEPTH or (
        line.count(b"[") + line.count(b"{") <= 4 * _MAX_DEPTH
    )


def parse_line(line: bytes) -> tuple[dict[str, Any] | None, str | None]:
    """Parse one JSON line into a record, or explain why it is not one.

    orjson first; the stdlib parser as a fallback accepts Python's ``NaN``/``Infinity``.
    Returns ``(record, None)`` or ``(None, reason)``; the reason is sanitized.
    """
    try:
        value = orjson.loads(line)
    except orjson.JSONDecodeError as first:
        if b"NaN" not in line and b"Infinity" not in line:
            return None, sanitize(f"invalid JSON: {first}", 200)
        if not _depth_ok(line):
            return None, "invalid JSON: nested too deeply"
        try:
            value = json.loads(line.decode("utf-8"), parse_constant=_nan_constant)
        except (ValueError, RecursionError) as second:
            return None, sanitize(f"invalid JSON: {second}", 200)
    if not isinstance(value, dict):
        return None, f"not a JSON object ({type(value).__name__})"
    return value, None


def parse_time(value: object) -> float | None:
    """Epoch seconds from ``_time``: a number, or ISO-8601 (naive means UTC)."""
    if is_number(value):
        seconds = float(value)  # type: ignore[arg-type]
        return seconds if math.isfinite(seconds) else None
    if isinstance(value, str):
        text = value.strip()
        if text.endswith(("Z", "z")):
            text = text[:-1] + "+00:00"
        try:
            moment = datetime.fromisoformat(text)
        except ValueError:
            return None
        if moment.tzinfo is None:
            moment = moment.replace(tzinfo=timezone.utc)
        return moment.timestamp()
    return None


def _times_column(column: tuple[object, ...], now: float) -> np.ndarray:
    if all(type(v) is str for v in column):
        try:
            stamps = np.array(
                [v[:-1] if v.endswith("Z") else v for v in column],  # type: ignore[union-attr]
                dtype="datetime64[us]",
            )
            return stamps.astype(np.int64) / 1e6
        except ValueError:
            pass
    return np.array([t if (t := parse_time(v)) is not None else now for v in column])


class RecordBuilder:
    """Accumulates records from one source into a :class:`RecordBlock`.

    Args:
        ordinal: index of the next record in its file, the x value of last resort.
        now: wall time stamped on records that carry no ``_time``.
    """

    def __init__(self, ordinal: int = 0, now: float | None = None) -> None:
        self.ordinal = ordinal
        self.now = time.time() if now is None else now
        self.bad: list[tuple[int, str]] = []
        self.ignored: set[str] = set()
        self._steps: list[np.ndarray] = []
        self._times: list[np.ndarray] = []
        self._count = 0
        self._scalars: dict[str, list[tuple[np.ndarray, np.ndarray]]] = defaultdict(list)
        self._objects: dict[str, list[tuple[int, Shape]]] = defaultdict(list)
        self._key_names: dict[str, str] = {}

    def _name(self, key: str) -> str:
        name = self._key_names.get(key)
        if name is None:
            name = self._key_names[key] = sanitize(key, 200)
        return name

    def add_lines(
        self, lines: list[bytes], first_lineno: int = 1, linenos: list[int] | None = None
    ) -> None:
        """Parse complete JSON lines (blank lines are ignored, bad ones noted by number).

        Line ``i`` is numbered ``first_lineno + i``, or ``linenos[i]`` when given (lines
        picked out of a log).
        """
        loads = orjson.loads
        number = (lambda i: linenos[i]) if linenos is not None else (lambda i: first_lineno + i)
        try:
            records = [loads(line) for line in lines]
        except orjson.JSONDecodeError:
            records = []
            for i, line in enumerate(lines):
                if not line.strip():
                    continue
                record, reason = parse_line(line)
                if record is None:
                    self.bad.append((number(i), reason or "invalid"))
                else:
                    records.append(record)
        else:
            if not all(type(r) is dict for r in records):
                kept = []
                for i, record in enumerate(records):
                    if type(record) is dict:
                        kept.append(record)
                    else:
                        self.bad.append((number(i), f"not a JSON object ({type(record).__name__})"))
                records = kept
        self.add_records(records)

    def add_records(self, records: list[dict[str, Any]]) -> None:
        """Add parsed records (dicts), grouping those with the same keys for speed."""
        if not records:
            return
        base = self._count
        n = len(records)
        steps = np.arange(self.ordinal, self.ordinal + n, dtype=np.float64)
        times = np.full(n, self.now)
        groups: dict[tuple[str, ...], list[int]] = defaultdict(list)
        for i, schema in enumerate(map(tuple, records)):
            groups[schema].append(i)
        for schema, positions in groups.items():
            members = [records[i] for i in positions]
            if not self._add_group(schema, positions, members, base, steps, times):
                for i, record in zip(positions, members):
                    self._add_slow(base + i, record, steps, times, i)
        self._steps.append(steps)
        self._times.append(times)
        self._count += n
        self.ordinal += n

    def _add_group(
        self,
        schema: tuple[str, ...],
        positions: list[int],
        members: list[dict[str, Any]],
        base: int,
        steps: np.ndarray,
        times: np.ndarray,
    ) -> bool:
        """Columnar fast path; returns False to send the group down the slow path."""
        columns = list(zip(*map(dict.values, members))) if schema else []
        numeric: list[tuple[str, tuple[Any, ...]]] = []
        x_column = None
        x_rank = len(X_KEYS)
        time_column = None
        for key, column in zip(schema, columns):
            if key == TIME_KEY:
                time_column = column
                continue
            if not set(map(type, column)) <= _NUMERIC:
                return False
            if key in X_KEYS and X_KEYS.index(key) < x_rank:
                x_rank = X_KEYS.index(key)
                if x_column is not None:
                    numeric.append(x_column)
                x_column = (key, column)
                continue
            numeric.append((key, column))
        try:
            index = np.asarray(positions, dtype=np.int64)
            if x_column is not None:
                steps[index] = np.asarray(x_column[1], dtype=np.float64)
            if time_column is not None:
                times[index] = _times_column(time_column, self.now)
            arrays = [(key, np.asarray(column, dtype=np.float64)) for key, column in numeric]
        except (OverflowError, ValueError, TypeError):
            return False
        index = index + base
        for key, values in arrays:
            self._scalars[self._name(key)].append((index, values))
        return True

    def _add_slow(
        self, position: int, record: dict[str, Any], steps: np.ndarray, times: np.ndarray, i: int
    ) -> None:
        for key in X_KEYS:
            value = record.get(key)
            if is_number(value) and math.isfinite(value):
                steps[i] = value
                x_key = key
                break
        else:
            x_key = None
        stamp = record.get(TIME_KEY)
        if stamp is not None:
            seconds = parse_time(stamp)
            if seconds is not None:
                times[i] = seconds
        flat: dict[str, Any] = {}
        for key, value in record.items():
            if key in (x_key, TIME_KEY):
                continue
            if isinstance(value, dict) and classify(value) is None:
                flatten(key, value, flat)
            else:
                flat[key] = value
        where = np.array([position], dtype=np.int64)
        for key, value in flat.items():
            name = self._name(key)
            if is_number(value):
                self._scalars[name].append((where, np.array([float(value)])))
            elif value is None:
                continue
            elif type(value) is bool:
                self._objects[name].append((position, "true" if value else "false"))
            else:
                shape = classify(value)
                if shape is None:
                    self.ignored.add(name)
                else:
                    self._objects[name].append((position, shape))

    def build(self) -> RecordBlock | None:
        """Return the block of everything added, or ``None`` when nothing was."""
        if not self._count:
            return None
        scalars: dict[str, tuple[np.ndarray, np.ndarray]] = {}
        for name, pieces in self._scalars.items():
            if len(pieces) == 1:
                scalars[name] = pieces[0]
                continue
            index = np.concatenate([p[0] for p in pieces])
            values = np.concatenate([p[1] for p in pieces])
            order = np.argsort(index, kind="stable")
            scalars[name] = (index[order], values[order])
        steps = self._steps[0] if len(self._steps) == 1 else np.concatenate(self._steps)
        times = self._times[0] if len(self._times) == 1 else np.concatenate(self._times)
        return RecordBlock(steps, times, scalars, dict(self._objects))
