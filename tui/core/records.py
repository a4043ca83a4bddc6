"""Turn JSON lines (or records from a foreign format) into an immutable columnar block.

The fast path decodes a chunk of all-numeric records with a typed msgspec decoder, or
parses it with orjson, groups records by their key tuple (loggers write the same keys over
and over) and moves each column into numpy in one call, so the Python work per record is a
handful of C-level operations. Python's ``NaN``/``Infinity`` tokens (what a diverged run
writes) keep the bulk decoder: quoted, they decode as strings that stand for those floats
(a chunk where quoting touched a string fails the decoder instead). Anything else
(text, vectors, matrices, nested objects, booleans) takes the slow path, record by record,
with the same results.

Numbers beyond float64's range (``1e400``, a 400-digit integer) are infinite, with or
without other special tokens on the line. What cannot be stored faithfully is noted in the
block's ``notes`` rather than dropped silently: records with duplicate keys (the last value
wins, as in every JSON parser we use), steps beyond 2**53 (float64 cannot tell neighbours
apart there), and metric names past ``MAX_METRICS`` per block. Duplicates are found by
counting colons: a JSON object has one per key plus those inside strings, so a chunk whose
colons outnumber what was parsed is checked line by line.
"""

from __future__ import annotations

import json
import math
import re
import struct
import time
import warnings
from collections import defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timezone
from itertools import chain
from operator import attrgetter, itemgetter
from typing import Any, Literal, TypeAlias

import msgspec
import numpy as np
import orjson

from tui.core.sanitize import sanitize
from tui.core.shapes import Shape, classify, flatten, is_number
from tui.core.tail import Lines
from tui.core.values import real_number

X_KEYS = ("step", "_step", "epoch", "iteration")
"""Keys that give a record's x value, in order of preference (DESIGN.md §3)."""

MAX_METRICS = 10_000
"""Most distinct metric names kept per run; later new names are dropped with a note."""

EXACT_STEPS = 2**53
"""From here on float64 cannot hold every integer step (such steps are noted)."""

TIME_KEY = "_time"
_NUMERIC = {float, int}
_NESTED = frozenset({str, dict, list})
BULK_MIN = 64
"""Chunks with at least this many lines try the typed bulk decoder first."""

_UNSAFE_KEY = re.compile(r'["\\\x00-\x1f\x7f-\x9f]')
# Numbers orjson refuses as infinite ("1e400", 400 digits): the stdlib parser takes them.
_HUGE_NUMBER = re.compile(rb"[0-9]{300}|[eE]\+?0*[1-9][0-9]{2}")
_ERROR_INDEX = re.compile(r"at `\$\[(\d+)\]")
_ERROR_BYTE = re.compile(r"invalid character \(byte (\d+)\)")
_TOKENS = (b"NaN", b"Infinity")  # where msgspec stops ("-Infinity": after the minus)
# Texts that decode to a quoted token through \u escapes of its characters ("\u004eaN"):
# with one in a chunk, a string value of the run could pass for a number.
_TOKEN_ESCAPE = re.compile(rb"\\u00(?:2[dD]|4[9eE]|6[169eE]|7[49])")
_TokenText: TypeAlias = Literal["NaN", "Infinity", "-Infinity"]
_MISSING_BITS = 0x7FF8_6D69_7373_696E
"""A NaN payload no parser produces: what the bulk decoder gives a record without a key."""
_MISSING = struct.unpack("<d", struct.pack("<Q", _MISSING_BITS))[0]
_Decoder: TypeAlias = msgspec.json.Decoder[Any]
_decoders: dict[tuple[tuple[str, ...], bool], tuple[_Decoder, tuple[str, ...]]] = {}


def _decoder(keys: tuple[str, ...], tokens: bool) -> tuple[_Decoder, tuple[str, ...]]:
    """A typed decoder for records whose keys are a subset of ``keys``, all numbers.

    msgspec checks in C what the slow path checks in Python: every value a number and
    never a bool, no unknown key, valid JSON. A missing key decodes as a NaN with a payload
    of its own (``_MISSING``), told apart from a logged NaN by its bits. With ``tokens``,
    a value may also be one of the quoted tokens ``quote_tokens`` makes (numpy turns them
    into floats). ``_time`` may be a string or a number.

    Raises:
        ValueError: more than ``MAX_METRICS`` keys, or a key msgspec cannot rename to.
    """
    found = _decoders.get((keys, tokens))
    if found is not None:
        return found
    if len(keys) > MAX_METRICS or any(_UNSAFE_KEY.search(key) for key in keys):
        raise ValueError("keys a typed decoder cannot hold")
    number: object = float | _TokenText if tokens else float
    fields: list[tuple[str, object, object]] = []
    rename = {}
    for i, key in enumerate(keys):
        name = f"f{i}"
        rename[name] = key
        if key == TIME_KEY:
            fields.append((name, str | float | None, None))
        else:
            fields.append((name, number, _MISSING))
    record = msgspec.defstruct(
        "Record", fields, rename=rename, forbid_unknown_fields=True, gc=False, frozen=True
    )
    if len(_decoders) > 256:
        _decoders.clear()
    found = _decoders[(keys, tokens)] = (msgspec.json.Decoder(record), tuple(rename))
    return found


def quote_tokens(blob: bytes) -> bytes | None:
    """``blob`` with its NaN/Infinity tokens quoted: strings the bulk decoder takes.

    Every occurrence is quoted, which is safe: outside strings these letters are only ever
    the tokens, and inside a string (a key, a text value, even ``"NaN"`` itself) the quote
    inserted ends the string before a letter or a minus, which JSON forbids, so such a chunk
    fails the decoder and takes the slow path. ``None`` when nothing was quoted, or when a
    ``\\u`` escape could spell a token in a string (it would pass for a number).
    """
    # One-byte searches first: memchr is ten times faster than a search for a longer text.
    if b"\\" in blob and _TOKEN_ESCAPE.search(blob):
        return None
    quoted = blob.replace(b"NaN", b'"NaN"') if b"N" in blob else blob
    if b"I" in quoted and b"Infinity" in quoted:
        quoted = quoted.replace(b"Infinity", b'"Infinity"').replace(b'-"Infinity"', b'"-Infinity"')
    return quoted if len(quoted) != len(blob) else None


@dataclass(frozen=True, slots=True)
class RecordBlock:
    """New records from one source, columnar. The store takes ownership of the arrays.

    Attributes:
        steps: x value of each new record.
        times: wall time of each new record (epoch seconds).
        scalars: metric name -> (record positions in this block, float64 values).
        objects: metric name -> (record position, shape) for text, vectors, matrices,
            bars, lines and tables.
        notes: what could not be stored faithfully (duplicate keys, inexact steps,
            metric names beyond the cap), for the run's health.
    """

    steps: np.ndarray
    times: np.ndarray
    scalars: dict[str, tuple[np.ndarray, np.ndarray]]
    objects: dict[str, list[tuple[int, Shape]]]
    notes: tuple[str, ...] = ()

    def __len__(self) -> int:
        return len(self.steps)


def _nan_constant(name: str) -> float:
    return {"NaN": math.nan, "Infinity": math.inf, "-Infinity": -math.inf}[name]


def _integer(text: str) -> int | float:
    """A JSON integer; beyond float64's range it is infinite, as ``1e400`` is.

    Long digit strings go to ``float`` directly: ``int`` refuses more than 4,300 digits.
    """
    return int(text) if len(text) < 300 else float(text)


def _python_loads(line: bytes, pairs: Any = None) -> Any:
    """The stdlib parser, with Python's ``NaN``/``Infinity`` and huge numbers as floats.

    Raises:
        ValueError: not JSON (or not UTF-8).
        RecursionError: nested too deeply.
    """
    return json.loads(
        line.decode("utf-8"),
        parse_constant=_nan_constant,
        parse_int=_integer,
        object_pairs_hook=pairs,
    )


def parse_line(line: bytes) -> tuple[dict[str, Any] | None, str | None]:
    """Parse one JSON line into a record, or explain why it is not one.

    orjson first; the stdlib parser as a fallback accepts Python's ``NaN``/``Infinity``
    and numbers beyond float64 (infinite). Returns ``(record, None)`` or
    ``(None, reason)``; the reason is sanitized.
    """
    try:
        value = orjson.loads(line)
    except orjson.JSONDecodeError as first:
        if b"NaN" not in line and b"Infinity" not in line and not _HUGE_NUMBER.search(line):
            return None, sanitize(f"invalid JSON: {first}", 200)
        try:
            value = _python_loads(line)
        except RecursionError:  # the stdlib parser recurses: hostile nesting ends here
            return None, "invalid JSON: nested too deeply"
        except ValueError as second:
            return None, sanitize(f"invalid JSON: {second}", 200)
    if not isinstance(value, dict):
        return None, f"not a JSON object ({type(value).__name__})"
    return value, None


def duplicate_keys(line: bytes) -> list[str]:
    """Keys that appear twice in one object of the JSON ``line`` (any depth), in order."""
    found: list[str] = []

    def pairs(items: list[tuple[str, Any]]) -> dict[str, Any]:
        value = dict(items)
        if len(value) != len(items):
            seen: set[str] = set()
            for key, _ in items:
                if key in seen and key not in found:
                    found.append(key)
                seen.add(key)
        return value

    try:
        _python_loads(line, pairs)
    except (ValueError, RecursionError):
        return []
    return found


def _colons(value: object) -> int:
    """Colons in the JSON text of ``value``: one per key, plus those inside strings.

    A line holding more colons than its parsed value accounts for had keys that parsing
    merged (duplicates); an escaped colon (``\\u003a``) can make it fewer.
    """
    if type(value) is str:
        return value.count(":")
    if type(value) is dict:
        total = len(value)
        for key, item in value.items():
            if ":" in key:
                total += key.count(":")
            if type(item) in _NESTED:
                total += _colons(item)
        return total
    if type(value) is list:
        return sum(_colons(item) for item in value if type(item) in _NESTED)
    return 0


def parse_time(value: object) -> float | None:
    """Epoch seconds from ``_time``: a number, or ISO-8601 (naive means UTC)."""
    if is_number(value):
        seconds = float(value)
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


def count_byte(blob: bytes, byte: bytes) -> int:
    """``blob.count(byte)`` for one byte, vectorised by numpy in slices past 8 KiB (where
    its calls cost less than ``bytes.count`` going byte by byte): five times faster on MBs."""
    if len(blob) <= 8192:
        return blob.count(byte)
    data = np.frombuffer(blob, dtype=np.uint8)
    value = ord(byte)
    step = 1 << 20
    if len(data) <= step:
        return int(np.count_nonzero(data == value))
    return sum(
        int(np.count_nonzero(data[i : i + step] == value)) for i in range(0, len(data), step)
    )


def _as_float(value: float) -> float:
    """``value`` as a float; an int beyond float64's range is infinite."""
    try:
        return float(value)
    except OverflowError:
        return math.inf if value > 0 else -math.inf


def times_column(column: Sequence[object], now: float) -> np.ndarray:
    """Epoch seconds for a column of ``_time`` values (vectorised for ISO strings)."""
    try:
        text = "\n".join(column)  # type: ignore[arg-type]
    except TypeError:  # a number, or no time: the careful per-value path below
        text = None
    if text is not None:
        # numpy parses naive ISO-8601 in C; "Z" (UTC) must go, and an explicit offset
        # (a warning in numpy) takes the careful per-value path below.
        parts = text.replace("Z", "").split("\n")
        if len(parts) == len(column):
            with warnings.catch_warnings():
                warnings.simplefilter("error")
                try:
                    stamps = np.array(parts, dtype="datetime64[us]")
                except (ValueError, Warning):
                    pass
                else:
                    if not np.isnat(stamps).any():  # numpy reads "NaT" as a time; we do not
                        return stamps.astype(np.int64) / 1e6
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
        self._duplicates = 0
        self._first_duplicate: tuple[int, list[str]] | None = None
        self._dropped = 0

    def _name(self, key: str) -> str | None:
        """The sanitized metric name for ``key``; ``None`` beyond ``MAX_METRICS`` names."""
        name = self._key_names.get(key)
        if name is None:
            if len(self._key_names) >= MAX_METRICS:
                self._dropped += 1
                return None
            name = self._key_names[key] = sanitize(key, 200)
        return name

    def _check_duplicates(self, line: bytes, lineno: int) -> None:
        """Note the line's duplicate keys, if it has any (it is parsed again to see)."""
        keys = duplicate_keys(line)
        if keys:
            self._duplicates += 1
            if self._first_duplicate is None:
                self._first_duplicate = (lineno, keys)

    def add_chunk(self, chunk: Lines) -> None:
        """Parse what a :class:`~tui.core.tail.FileTail` read (bulk-decoded when possible)."""
        blob = chunk.blob
        first = chunk.first_lineno
        if (
            blob is not None
            and chunk.count >= BULK_MIN
            and self._add_bulk(blob, lambda i: first + i)
        ):
            return
        self.add_lines(chunk.lines, first)

    def add_lines(
        self, lines: list[bytes], first_lineno: int = 1, linenos: list[int] | None = None
    ) -> None:
        """Parse complete JSON lines (blank lines are ignored, bad ones noted by number).

        Line ``i`` is numbered ``first_lineno + i``, or ``linenos[i]`` when given (lines
        picked out of a log).
        """
        number = (lambda i: linenos[i]) if linenos is not None else (lambda i: first_lineno + i)
        blob = b"\n".join(lines)
        if len(lines) >= BULK_MIN and self._add_bulk(blob, number):
            return
        loads = orjson.loads
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
                    continue
                if line.count(b":") != _colons(record):
                    self._check_duplicates(line, number(i))
                records.append(record)
        else:
            if count_byte(blob, b":") != sum(map(_colons, records)):
                for i, (line, record) in enumerate(zip(lines, records)):
                    if line.count(b":") != _colons(record):
                        self._check_duplicates(line, number(i))
            if set(map(type, records)) != {dict}:
                kept = []
                for i, record in enumerate(records):
                    if type(record) is dict:
                        kept.append(record)
                    else:
                        self.bad.append((number(i), f"not a JSON object ({type(record).__name__})"))
                records = kept
        # Booleans and nulls are the only values numpy would silently take for numbers;
        # when no line holds those tokens, dtype inference alone validates a column.
        strict = b"true" in blob or b"false" in blob or b"null" in blob
        self.add_records(records, strict=strict)

    def _add_bulk(self, blob: bytes, number: Callable[[int], int]) -> bool:
        """Decode many all-numeric records at once; False (nothing added) if they are not.

        ``number`` gives the file line number of line ``i`` of ``blob``.
        """
        end = blob.find(b"\n", 0, 1_000_000)
        first = blob[:end] if end >= 0 else blob
        if not first.strip():
            return False
        sample, _ = parse_line(first)
        if sample is None:
            return False
        keys = tuple(sample)
        tokens = False
        for _ in range(8):  # each retry learns one more record shape, or quotes the tokens
            try:
                decoder, names = _decoder(keys, tokens)
            except (TypeError, ValueError):
                return False  # such keys msgspec cannot rename to; the slow path can
            try:
                records = decoder.decode_lines(blob)
            except msgspec.ValidationError as exc:
                where = _ERROR_INDEX.search(str(exc))
                if where is None or "unknown field" not in str(exc):
                    return False
                other = self._nth_record(blob, int(where.group(1)))
                if other is None:
                    return False
                keys = keys + tuple(k for k in other if k not in keys)
                continue
            except msgspec.DecodeError as exc:
                # A NaN/Infinity token where the decoder stopped: quote them all, once.
                at = _ERROR_BYTE.search(str(exc))
                if tokens or at is None or not blob.startswith(_TOKENS, int(at.group(1))):
                    return False
                quoted = quote_tokens(blob)
                if quoted is None:
                    return False
                blob, tokens = quoted, True
                continue
            break
        else:
            return False
        if self._add_columns(records, names, keys) != count_byte(blob, b":"):
            self._find_duplicates(blob, number)
        return True

    def _find_duplicates(self, blob: bytes, number: Callable[[int], int]) -> None:
        """Check each line of a bulk-decoded blob whose colons its record does not explain."""
        for i, line in enumerate(blob.split(b"\n")):
            if b":" not in line:
                continue
            try:
                record = orjson.loads(line)
            except orjson.JSONDecodeError:
                continue
            if line.count(b":") != _colons(record):
                self._check_duplicates(line, number(i))

    @staticmethod
    def _nth_record(blob: bytes, n: int) -> dict[str, Any] | None:
        """The ``n``-th non-blank line parsed (msgspec counts records, not lines)."""
        for line in blob.split(b"\n"):
            if line.strip():
                if n == 0:
                    return parse_line(line)[0]
                n -= 1
        return None

    def _add_columns(
        self, records: list[Any], names: tuple[str, ...], keys: tuple[str, ...]
    ) -> int:
        """Add decoded records column by column; returns the colons their JSON holds.

        The numbers go into numpy as one table in one call, and a column every record holds
        (the usual case) stays a view of it: a few numpy calls per chunk rather than a few
        per column, which is most of the cost of a first paint's small previews.
        """
        n = len(records)
        if not n:
            return 0
        colons = 0
        times: np.ndarray | None = None
        numeric = [(name, key) for name, key in zip(names, keys) if key != TIME_KEY]
        if len(numeric) < len(keys):
            stamps = list(map(attrgetter(names[keys.index(TIME_KEY)]), records))
            # The usual case, every record with an ISO time, joins at once; str() of a
            # number or of None holds no colon.
            try:
                text, missing = "".join(stamps), 0
            except TypeError:
                text, missing = "".join(map(str, stamps)), stamps.count(None)
            colons += n - missing + text.count(":")
            if not missing:
                times = times_column(stamps, self.now)
            else:
                times = np.full(n, self.now)
                present = [i for i, v in enumerate(stamps) if v is not None]
                if present:
                    where = np.asarray(present, dtype=np.int64)
                    times[where] = times_column([stamps[i] for i in present], self.now)
        points: dict[str, tuple[np.ndarray | None, np.ndarray]] = {}
        if numeric:
            width = len(numeric)
            getter = attrgetter(*(name for name, _ in numeric))
            rows = map(getter, records)
            # numpy reads the quoted tokens ("NaN", "-Infinity") as the floats they name.
            table = np.fromiter(
                rows if width == 1 else chain.from_iterable(rows), np.float64, n * width
            ).reshape(n, width)
            absent = table.view(np.uint64) == _MISSING_BITS
            if not absent.any():
                colons += n * sum(1 + key.count(":") for _, key in numeric)
                points = {key: (None, table[:, j]) for j, (_, key) in enumerate(numeric)}
            else:
                found = (n - np.count_nonzero(absent, axis=0)).tolist()
                for j, (_, key) in enumerate(numeric):
                    colons += (1 + key.count(":")) * found[j]
                    if found[j] == n:
                        points[key] = (None, table[:, j])
                    elif found[j]:
                        present = ~absent[:, j]
                        points[key] = (np.flatnonzero(present), table[present, j])
        self.add_columns(n, points, times)
        return colons

    def add_columns(
        self,
        count: int,
        columns: dict[str, tuple[np.ndarray | None, np.ndarray]],
        times: np.ndarray | None = None,
    ) -> None:
        """Add ``count`` records given column by column, every value a number.

        The bulk path of readers that parse a whole chunk at once (CSV bodies, W&B history,
        Sacred's metric lists): no Python object per point. The most preferred finite x
        value of a record gives its step (its position in the file when it has none); an
        x key is a metric where it did not give the step.

        Args:
            count: how many records.
            columns: key -> (the records holding the key, as positions among these
                ``count``, ascending; ``None``: every record, in order) and their float64
                values.
            times: wall time of each record; a non-finite one (or ``None`` for all) is
                the builder's ``now``.
        """
        if not count:
            return
        base = self._count
        if times is None:
            times = np.full(count, self.now)
        elif not np.isfinite(times).all():
            times = np.where(np.isfinite(times), times, self.now)
        index = np.arange(base, base + count, dtype=np.int64)
        steps: np.ndarray | None = None  # None: each record's position in its file
        given: np.ndarray | None = None  # None: no record's x given yet
        columns = dict(columns)
        for key in X_KEYS:  # the most preferred finite x value of each record wins
            found = columns.get(key)
            if found is None:
                continue
            where, values = found
            if given is None and where is None and np.isfinite(values).all():
                # Every record's x, the most preferred there is (a CSV's step column): no
                # position needs choosing, and later x keys are metrics as they stand.
                steps = values.astype(np.float64)
                del columns[key]
                break
            if steps is None:
                steps = np.arange(self.ordinal, self.ordinal + count, dtype=np.float64)
            if given is None:
                given = np.zeros(count, dtype=bool)
            rows = index - base if where is None else where
            gives = np.isfinite(values) & ~given[rows]
            if gives.any():
                steps[rows[gives]] = values[gives]
                given[rows[gives]] = True
                columns[key] = (rows[~gives], values[~gives])
        if steps is None:
            steps = np.arange(self.ordinal, self.ordinal + count, dtype=np.float64)
        for key, (where, values) in columns.items():
            if not len(values):
                continue
            metric = self._name(key)
            if metric is not None:
                self._scalars[metric].append((index if where is None else where + base, values))
        self._steps.append(steps)
        self._times.append(times)
        self._count += count
        self.ordinal += count

    def add_records(self, records: list[dict[str, Any]], *, strict: bool = True) -> None:
        """Add parsed records (dicts), grouping those with the same keys for speed.

        ``strict=False`` promises that no value is a bool or None (see ``add_lines``).
        """
        if not records:
            return
        base = self._count
        n = len(records)
        steps = np.arange(self.ordinal, self.ordinal + n, dtype=np.float64)
        times = np.full(n, self.now)
        schema = tuple(records[0])
        if not self._add_group(schema, None, records, base, steps, times, strict):
            groups: dict[tuple[str, ...], list[int]] = defaultdict(list)
            for i, keys in enumerate(map(tuple, records)):
                groups[keys].append(i)
            slow: list[int] = []
            for keys, positions in groups.items():
                members = [records[i] for i in positions]
                if not self._add_group(keys, positions, members, base, steps, times, strict):
                    slow.extend(positions)
            # In file order: a metric's objects (text, booleans) are listed as they came.
            for i in sorted(slow):
                self._add_slow(base + i, records[i], steps, times, i)
        self._steps.append(steps)
        self._times.append(times)
        self._count += n
        self.ordinal += n

    def _add_group(
        self,
        schema: tuple[str, ...],
        positions: list[int] | None,
        members: list[dict[str, Any]],
        base: int,
        steps: np.ndarray,
        times: np.ndarray,
        strict: bool,
    ) -> bool:
        """Columnar fast path for records with the keys ``schema`` (in any order).

        ``positions`` are the members' places in the batch (``None``: all, in order).
        Returns False, having added nothing, when the members do not all have exactly
        these keys or a column is not numeric; the caller then takes a slower path.
        """
        keys = [k for k in schema if k != TIME_KEY]
        if not keys or len(keys) + 1 < len(schema):
            return False
        try:
            rows = list(map(itemgetter(*keys), members))
            stamps = list(map(itemgetter(TIME_KEY), members)) if len(keys) < len(schema) else None
        except (KeyError, TypeError):
            return False
        if sum(map(len, members)) != len(schema) * len(members):
            return False  # some record has keys beyond the schema
        if strict:
            flat = rows if len(keys) == 1 else chain.from_iterable(rows)
            if not set(map(type, flat)) <= _NUMERIC:
                return False
        try:
            table = np.array(rows)
        except (OverflowError, ValueError, TypeError):
            return False
        if table.dtype.kind not in "fiu" or table.ndim != (1 if len(keys) == 1 else 2):
            return False  # text, vectors, objects, huge integers: the slow path
        table = table.astype(np.float64, copy=False).reshape(len(members), len(keys))
        if positions is None:
            index = np.arange(base, base + len(members), dtype=np.int64)
            local: slice | np.ndarray = slice(None)
        else:
            local = np.asarray(positions, dtype=np.int64)
            index = local + base
        x_at = min(
            (j for j, key in enumerate(keys) if key in X_KEYS),
            key=lambda j: X_KEYS.index(keys[j]),
            default=-1,
        )
        if x_at >= 0 and not np.isfinite(table[:, x_at]).all():
            # Where the preferred x is not finite, a record's step comes from another key
            # or its position: record by record.
            return False
        if x_at >= 0:
            steps[local] = table[:, x_at]
        if stamps is not None:
            times[local] = times_column(tuple(stamps), self.now)
        for j, key in enumerate(keys):
            if j != x_at and (name := self._name(key)) is not None:
                self._scalars[name].append((index, table[:, j]))
        return True

    def _add_slow(
        self, position: int, record: dict[str, Any], steps: np.ndarray, times: np.ndarray, i: int
    ) -> None:
        for key in X_KEYS:
            x = real_number(record.get(key))
            if x is not None:
                steps[i] = x
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
            if name is None:
                continue
            if is_number(value):
                self._scalars[name].append((where, np.array([_as_float(value)])))
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
        return RecordBlock(steps, times, scalars, dict(self._objects), self._notes(steps))

    def _notes(self, steps: np.ndarray) -> tuple[str, ...]:
        notes = []
        if self._first_duplicate is not None:
            lineno, keys = self._first_duplicate
            shown = ", ".join(f'"{sanitize(key, 60)}"' for key in keys[:5])
            notes.append(
                f"{self._duplicates} record(s) with duplicate keys (first at line {lineno}: "
                f"{shown}); the last value of each was kept"
            )
        # Two reductions first (NaN fails both): the careful path copies the steps thrice.
        if steps.size and not -EXACT_STEPS < steps.min() <= steps.max() < EXACT_STEPS:
            finite = np.abs(steps[np.isfinite(steps)])
            if finite.size and finite.max() >= EXACT_STEPS:  # 2**53 + 1 arrives as 2**53
                notes.append(
                    f"steps beyond 2**53 (up to {finite.max():.6g}) are not exact in float64: "
                    "neighbouring steps may share a value"
                )
        if self._dropped:
            notes.append(
                f"more than {MAX_METRICS:,} metric names: {self._dropped:,} values of further "
                "names were dropped"
            )
        return tuple(notes)
