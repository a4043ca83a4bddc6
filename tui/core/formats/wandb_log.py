"""The W&B transaction log (``run-<id>.wandb``) at the wire level: its framing, and the
decoding of the history, summary and config items of its records.

The framing is LevelDB's log format after a 7-byte header (:data:`FILE_HEADER`): 32 KiB
blocks of physical records, each a CRC-32 (IEEE, over the type byte and the data), a
2-byte length and a type (full, first, middle, last: a logical record may span blocks);
fewer than 7 bytes left in a block are zero padding. :func:`split` cuts logical records
from bytes read at any record boundary. Each record is a ``wandb_internal.Record``
protocol buffer (:func:`record_type`); the items of its ``history``, ``summary`` and
``config`` are decoded here, in bulk where they are plain numbers (:func:`simple_items`,
:func:`json_numbers`). What the records mean for a run is :mod:`tui.core.formats.wandb`'s.
"""

from __future__ import annotations

import dataclasses
import struct
import zlib
from typing import Any

import msgspec
import numpy as np
import orjson

from tui.core.formats.documents import parse_json
from tui.core.formats.protowire import (
    FIXED64,
    LENGTH,
    ProtoError,
    as_bytes,
    fields,
    signed,
    skip,
    varint,
    zigzag,
)
from tui.core.records import quote_tokens

FILE_HEADER = b":W&B\xe1\xbe\x00"
"""Ident, magic (0xBEE1, little-endian) and version 0."""

BLOCK = 32768
_PHYSICAL = 7
_FULL, _FIRST, _MIDDLE, _LAST = 1, 2, 3, 4
_CRC_SEED = {t: zlib.crc32(bytes([t])) for t in (_FULL, _FIRST, _MIDDLE, _LAST)}
_HEAD = struct.Struct("<IHB")
_DOUBLE = struct.Struct("<d")
_NUMERIC_START = frozenset(b"-0123456789NI")
_RECORD_TYPES = frozenset({*range(2, 14), 17, 18, *range(20, 28)})
"""Field numbers of ``Record.record_type`` (16 is ``control``, 19 ``uuid``, 200 ``_info``)."""


def split(data: bytes, base: int) -> tuple[list[bytes], int, list[int], int | None]:
    """Logical records from ``data``, read from file offset ``base`` (a record boundary).

    Returns the records, the bytes consumed (up to the end of the last complete logical
    record, or past a damaged block), the file offsets of damaged blocks skipped, and the
    offset of a damaged block whose end is not in ``data`` yet (``None`` if none).
    """
    records: list[bytes] = []
    damaged: list[int] = []
    parts: list[bytes] = []
    pos = 0
    committed = 0
    end = len(data)
    crc32 = zlib.crc32
    while True:
        at = base + pos
        left = BLOCK - at % BLOCK
        if left < _PHYSICAL:
            if pos + left > end:
                break
            pos += left
            if not parts:
                committed = pos
            continue
        if pos + _PHYSICAL > end:
            break
        crc, length, kind = _HEAD.unpack_from(data, pos)
        start = pos + _PHYSICAL
        stop = start + length
        if kind not in _CRC_SEED or length > left - _PHYSICAL:
            bad = True
        elif stop > end:
            break  # cut short: wait for the rest
        else:
            chunk = data[start:stop]
            bad = crc32(chunk, _CRC_SEED[kind]) != crc
        if bad:
            damaged.append(at)
            parts = []
            if pos + left > end:
                return records, committed, damaged[:-1], at
            pos += left
            committed = pos
            continue
        pos = stop
        if kind == _FULL:
            parts = []
            records.append(chunk)
            committed = pos
        elif kind == _FIRST:
            parts = [chunk]
        elif parts:
            parts.append(chunk)
            if kind == _LAST:
                records.append(b"".join(parts))
                parts = []
                committed = pos
        else:
            committed = pos  # the rest of a record whose start was damaged
    return records, committed, damaged, None


def json_value(raw: bytes) -> Any:
    """A ``value_json`` (wandb writes ``NaN`` and ``Infinity`` bare, as Python does)."""
    if raw and raw[0] in _NUMERIC_START:
        try:
            return (
                float(raw)
                if (b"." in raw or b"e" in raw or b"N" in raw or b"I" in raw)
                else int(raw)
            )
        except ValueError:
            pass
    try:
        return orjson.loads(raw)
    except orjson.JSONDecodeError:
        value, _ = parse_json(raw, "value")
        return value


Key = tuple[str, ...]
Scanned = tuple[int, bytes | None, bool]
"""What :func:`simple_items` finds besides the keys and values it appends: how many items,
a trailing field 2, whether a key has several parts."""


@dataclasses.dataclass(slots=True)
class Gathered:
    """History records scanned by :func:`simple_items`, waiting to be added in bulk.

    The keys and raw values of all of them lie in two flat lists: a list or two per record
    would be tens of thousands of containers alive until the batch is built, each walked by
    every run of the cyclic garbage collector (a third of a read's time).
    """

    payloads: list[bytes] = dataclasses.field(default_factory=list)
    counts: list[int] = dataclasses.field(default_factory=list)
    keys: list[bytes] = dataclasses.field(default_factory=list)
    raws: list[bytes] = dataclasses.field(default_factory=list)


def key_of(parts: list[bytes], cache: dict[bytes, Key]) -> Key:
    joined = parts[0] if len(parts) == 1 else b"\x00".join(parts)
    name = cache.get(joined)
    if name is None:
        name = cache[joined] = tuple(p.decode("utf-8", "replace") for p in parts)
    return name


def nest(items: list[tuple[Key, Any]]) -> dict[str, Any]:
    """Values by key path as nested objects (wandb sends a logged dict as one item per leaf)."""
    out: dict[str, Any] = {}
    for parts, value in items:
        if len(parts) == 1:
            out[parts[0]] = value
            continue
        node = out
        for part in parts[:-1]:
            child = node.get(part)
            if not isinstance(child, dict):
                child = node[part] = {}
            node = child
        node[parts[-1]] = value
    return out


def _length(buf: bytes, pos: int) -> tuple[int, int]:
    size = buf[pos]
    if size < 0x80:
        return size, pos + 1
    return varint(buf, pos)


def _items(
    payload: bytes, cache: dict[bytes, Key], decode: bool = True
) -> tuple[list[tuple[int, Key, Any]], int | None]:
    """Items of a history, summary or config record: ``(field number, key path, value)``.

    Field 1 holds items in all three; field 2 is the step (``HistoryStep.num``) of a history
    record and removed items of the others: its ``num`` is returned as the step when it
    holds one. ``decode=False`` leaves ``value_json`` undecoded (bytes).
    """
    values: list[tuple[int, Key, Any]] = []
    step: int | None = None
    pos = 0
    end = len(payload)
    while pos < end:
        key, pos = varint(payload, pos)
        number, wire = key >> 3, key & 7
        if wire != LENGTH:
            pos = skip(payload, pos, wire)
            continue
        size, pos = _length(payload, pos)
        stop = pos + size
        if stop > end:
            raise ProtoError("item past the end")
        if number in (1, 2):
            parts, value = _item(payload, pos, stop, decode)
            if parts:
                values.append((number, key_of(parts, cache), value))
            elif number == 2 and isinstance(value, int):
                step = value
        pos = stop
    return values, step


def history(payload: bytes, cache: dict[bytes, Key]) -> tuple[list[tuple[Key, Any]], int | None]:
    """A ``HistoryRecord``: ``item`` (1: HistoryItem) values by key path, and ``step.num`` (2.1)."""
    items, step = _items(payload, cache)
    return [(key, value) for _, key, value in items], step


def _item(buf: bytes, pos: int, end: int, decode: bool = True) -> tuple[list[bytes], Any]:
    """One item between ``pos`` and ``end``: key parts and value (a ``HistoryStep``: its num)."""
    parts: list[bytes] = []
    value: Any = None
    if pos == end:
        return parts, 0  # an empty HistoryStep: step 0
    while pos < end:
        key, pos = varint(buf, pos)
        number, wire = key >> 3, key & 7
        if wire == LENGTH:
            size, pos = _length(buf, pos)
            stop = pos + size
            if stop > end:
                raise ProtoError("history field past the end")
            if number in (1, 2):  # key, nested_key
                parts.append(buf[pos:stop])
            elif number in (16, 8):  # value_json, json
                value = json_value(buf[pos:stop]) if decode else buf[pos:stop]
            elif number == 7:  # text
                value = buf[pos:stop].decode("utf-8", "replace")
            pos = stop
        elif wire == FIXED64 and number == 6:  # number
            if pos + 8 > end:
                raise ProtoError("number past the end")
            value = _DOUBLE.unpack_from(buf, pos)[0]
            pos += 8
        elif number in (4, 5, 3):  # boolean, integer (sint64), none
            raw, pos = varint(buf, pos)
            value = bool(raw) if number == 4 else zigzag(raw) if number == 5 else None
        elif number == 1 and wire == 0:  # HistoryStep.num
            raw, pos = varint(buf, pos)
            value = signed(raw)
        else:
            pos = skip(buf, pos, wire)
    return parts, value


def updates(
    payload: bytes, cache: dict[bytes, Key] | None = None
) -> tuple[dict[str, Any], list[Key]]:
    """A ``ConfigRecord``/``SummaryRecord``: ``update`` (1) values (nested) and ``remove`` (2) keys."""
    items, _ = _items(payload, {} if cache is None else cache)
    changed = [(key, value) for number, key, value in items if number == 1]
    removed = [key for number, key, _ in items if number == 2]
    return nest(changed), removed


def latest_updates(
    payloads: list[bytes], cache: dict[bytes, Key]
) -> list[tuple[dict[str, Any], list[Key]]]:
    """Summary records of one read, reduced: each key's last value decoded once.

    wandb writes a summary update after every history row; only the newest value of each
    key matters, so older records are scanned for keys only. Records that remove keys keep
    their order (they are applied one by one).
    """
    if not payloads:
        return []
    keys: list[bytes] = []
    raws: list[bytes] = []
    counts: list[int] = []
    for payload in payloads:
        found = simple_items(payload, keys, raws)
        if found is None or found[1] is not None:
            break
        counts.append(found[0])
    else:
        latest = dict(zip(keys, raws))  # the last value of each key
        order: dict[bytes, None] = {}  # keys by their newest record, newest first
        end = len(keys)
        for count in reversed(counts):
            order.update(dict.fromkeys(k for k in keys[end - count : end] if k not in order))
            end -= count
            if len(order) == len(latest):
                break
        items = [(key_of(k.split(b"\x00"), cache), json_value(latest[k])) for k in reversed(order)]
        return [(nest(items), [])]
    parsed = [_items(p, cache, decode=False)[0] for p in payloads]
    if any(number == 2 for items in parsed for number, _, _ in items):
        return [updates(p, cache) for p in payloads]
    newest: dict[Key, Any] = {}
    for items in reversed(parsed):
        for _, key, raw in items:
            if key not in newest:
                newest[key] = raw
    decoded = [
        (key, json_value(raw) if isinstance(raw, bytes) else raw) for key, raw in newest.items()
    ]
    return [(nest(decoded[::-1]), [])]


def merge(target: dict[str, Any], changed: dict[str, Any], removed: list[Key]) -> None:
    """Apply config or summary updates (nested objects merged) and removals."""
    for key, value in changed.items():
        old = target.get(key)
        if isinstance(old, dict) and isinstance(value, dict) and "_type" not in value:
            merge(old, value, [])
        else:
            target[key] = value
    for parts in removed:
        node: Any = target
        for part in parts[:-1]:
            node = node.get(part) if isinstance(node, dict) else None
        if isinstance(node, dict):
            node.pop(parts[-1], None)


def simple_items(payload: bytes, keys: list[bytes], raws: list[bytes]) -> Scanned | None:
    """The items of a history or summary record in the layout wandb writes, scanned fast.

    Each item (field 1) is its key (``key``, or the parts of a ``nested_key``) then its
    ``value_json``, every length under 128. The keys (parts joined by NUL) are appended to
    ``keys`` and the raw values to ``raws``; returns how many, the bytes of a trailing
    field 2 (a history's step, a summary's removals) and whether a key has several parts.
    ``None`` (and nothing appended) for any other layout (or a NUL in a key), which
    :func:`history` and :func:`updates` read field by field.
    """
    before = len(keys)
    found = _scan_items(payload, keys, raws)
    if found is None:
        del keys[before:], raws[before:]
        return None
    tail, nested = found
    return len(keys) - before, tail, nested


def _scan_items(
    payload: bytes, keys: list[bytes], raws: list[bytes]
) -> tuple[bytes | None, bool] | None:
    """:func:`simple_items`' scan; on ``None`` it may have appended some items."""
    nested = False
    pos = 0
    end = len(payload)
    try:
        while pos < end:
            tag = payload[pos]
            size = payload[pos + 1]
            start = pos + 2
            stop = start + size
            if size >= 0x80 or stop > end:
                return None
            if tag == 0x12 and stop == end:
                return payload[start:stop], nested
            if tag != 0x0A or payload[start] not in (0x0A, 0x12):
                return None
            cut = start + 2 + payload[start + 1]
            key = payload[start + 2 : cut]
            if b"\x00" in key:
                return None
            while payload[cut] == 0x12:  # more parts of a nested key
                nested = True
                end_of_part = cut + 2 + payload[cut + 1]
                part = payload[cut + 2 : end_of_part]
                if b"\x00" in part:
                    return None
                key += b"\x00" + part
                cut = end_of_part
            if payload[cut] != 0x82 or payload[cut + 1] != 1 or cut + 3 + payload[cut + 2] != stop:
                return None
            keys.append(key)
            raws.append(payload[cut + 3 : stop])
            pos = stop
    except IndexError:
        return None
    return None, nested


_TOKEN_TEXTS = frozenset({"NaN", "Infinity", "-Infinity"})


def json_numbers(raws: list[bytes]) -> np.ndarray | None:
    """Many ``value_json`` texts decoded in one call, when every one is a number (NaN too)."""
    blob = b"[" + b",".join(raws) + b"]"
    if b"N" in blob or b"I" in blob:
        blob = quote_tokens(blob) or blob
    try:
        values = msgspec.json.decode(blob)
    except msgspec.DecodeError:
        return None
    kinds = set(map(type, values))
    if not kinds <= {int, float, str} or len(values) != len(raws):
        return None
    if str in kinds and not {v for v in values if type(v) is str} <= _TOKEN_TEXTS:
        return None
    try:
        return np.fromiter(values, np.float64, len(values))
    except OverflowError:  # an integer beyond float64: json_value makes it infinite
        return None


def record_type(data: bytes) -> tuple[int, bytes]:
    """The ``record_type`` oneof of a ``Record``: ``(field number, payload)`` or ``(0, b"")``."""
    # wandb writes the record's num (field 1) first and the oneof right after: read directly.
    pos = varint(data, 1)[1] if data[:1] == b"\x08" else 0
    if pos < len(data):
        tag = data[pos]
        if tag < 0x80 and tag & 7 == LENGTH and tag >> 3 in _RECORD_TYPES:
            size, start = _length(data, pos + 1)
            if start + size <= len(data):
                return tag >> 3, data[start : start + size]
    for number, wire, raw in fields(data):
        if wire == LENGTH and number in _RECORD_TYPES:
            return number, as_bytes(raw)
    return 0, b""


def record_number(data: bytes) -> int:
    """:func:`record_type`'s field number, 0 for a record that is not a ``Record``."""
    try:
        return record_type(data)[0]
    except (ProtoError, IndexError):
        return 0
