"""TensorBoard event files read without TensorBoard: TFRecord framing and ``Event`` decoding.

An event file is a sequence of TFRecords: an 8-byte little-endian length, the masked
CRC-32C of those 8 bytes, the data, and the masked CRC-32C of the data. Each data is an
``Event`` protocol buffer (``tensorboard/compat/proto/event.proto``): ``wall_time`` (1,
double), ``step`` (2, int64), ``file_version`` (3) and a ``Summary`` (5) of values, each
with a ``tag`` (1), optional ``SummaryMetadata`` (9) naming its plugin (``plugin_data``
1 -> ``plugin_name`` 1, ``content`` 2), and one of ``simple_value`` (2, float),
``image`` (4), ``histo`` (5, ``HistogramProto``), ``audio`` (6) or ``tensor`` (8,
``TensorProto``). A plugin is named only on a tag's first value, so it is remembered per
tag, per file.

What becomes what: scalars (``simple_value``, or a one-element tensor of the ``scalars``
plugin, TF2's form) are series; ``text`` tensors are text values; histograms (the old
``histo`` message or the ``histograms`` plugin's ``[k, 3]`` tensor) are bar charts of at
most :data:`HISTOGRAM_BARS` bars per step; images and audio are listed as media (they
live inside the event file); the ``hparams`` plugin's session start gives the config and
its session end a status. Values logged at the same step by consecutive events share a
record.

Reading is incremental from a byte offset per file, in bounded chunks; checksums are
verified for a whole chunk at once (:mod:`tui.core.formats.crc32c`). A record cut short
waits for the rest (and is noted once the file has been quiet for a while); a complete
record failing its checksum, seen twice at the same place, stops that file with a note.
"""

from __future__ import annotations

import math
import os
import re
import struct
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from tui.core.formats.base import now
from tui.core.formats.crc32c import crc32c_many, masked
from tui.core.formats.protowire import (
    FIXED32,
    FIXED64,
    LENGTH,
    ProtoError,
    as_bytes,
    as_double,
    as_float,
    as_int,
    as_text,
    fields,
    packed_doubles,
    packed_floats,
    packed_varints,
    signed,
)
from tui.core.sanitize import sanitize
from tui.core.tail import INCOMPLETE_AFTER, UnsafeFile, open_regular

PREFIX = "events.out.tfevents."
SKIP_SUFFIXES = (".profile-empty",)
HISTOGRAM_BARS = 30
"""Most bars a histogram is summarised into."""

HPARAMS_DIR = re.compile(r"\d{9,11}\.\d+")
"""Subdirectory names ``add_hparams`` writes into (``str(time.time())``)."""

_HEADER = 12  # length (8) + its checksum (4)
_OVERHEAD = 16  # + the data's checksum (4)
_LENGTH = struct.Struct("<QI")
_CRC = struct.Struct("<I")
_MAX_RECORD = 256 * 1024 * 1024
"""A length beyond this is damage, not a record."""

# TensorFlow DataType numbers and how their values are stored in a TensorProto.
_DT_FLOAT, _DT_DOUBLE, _DT_INT32, _DT_STRING, _DT_INT64, _DT_BOOL, _DT_HALF = 1, 2, 3, 7, 9, 10, 19
_CONTENT_DTYPES = {
    _DT_FLOAT: "<f4",
    _DT_DOUBLE: "<f8",
    _DT_INT32: "<i4",
    _DT_INT64: "<i8",
    _DT_BOOL: "?",
    _DT_HALF: "<f2",
    4: "u1",
    5: "<i2",
    6: "i1",
    17: "<u2",
    22: "<u4",
    23: "<u8",
}
_HPARAM_END = {1: "finished", 2: "failed"}


def event_files(directory: Path) -> list[str]:
    """Names of the event files in ``directory``, oldest first."""
    try:
        with os.scandir(directory) as entries:
            names = [
                e.name
                for e in entries
                if e.name.startswith(PREFIX)
                and not e.name.endswith(SKIP_SUFFIXES)
                and e.is_file(follow_symlinks=False)
            ]
    except OSError:
        return []
    return sorted(names)


def hparams_dirs(directory: Path) -> list[str]:
    """Subdirectories of ``directory`` named the way ``add_hparams`` names its own."""
    try:
        with os.scandir(directory) as entries:
            return sorted(
                e.name
                for e in entries
                if HPARAMS_DIR.fullmatch(e.name) and e.is_dir(follow_symlinks=False)
            )
    except OSError:
        return []


# Decoding -------------------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class Tensor:
    """A decoded ``TensorProto``: its values flattened, and its shape."""

    dtype: int
    shape: tuple[int, ...]
    values: list[Any]


def decode_tensor(data: bytes) -> Tensor:
    """The values of a ``TensorProto`` (``dtype`` 1, ``tensor_shape`` 2, ``tensor_content`` 4,
    typed value lists 5-17)."""
    dtype = 0
    shape: list[int] = []
    content = b""
    values: list[Any] = []
    for number, wire, raw in fields(data):
        if number == 1:
            dtype = as_int(raw)
        elif number == 2:
            for dim_number, _, dim in fields(as_bytes(raw)):
                if dim_number == 2:
                    for size_number, _, size in fields(as_bytes(dim)):
                        if size_number == 1:
                            shape.append(signed(as_int(size)))
        elif number == 4:
            content = as_bytes(raw)
        elif number == 5:
            values.extend(packed_floats(wire, raw))
        elif number == 6:
            values.extend(packed_doubles(wire, raw))
        elif number in (7, 10, 13, 16, 17):
            ints = packed_varints(wire, raw)
            if number == 13:  # half_val: the float16 bits in an int32
                values.extend(np.array(ints, dtype=np.uint16).view(np.float16).tolist())
            else:
                values.extend(signed(v) for v in ints)
        elif number == 11:
            values.extend(bool(v) for v in packed_varints(wire, raw))
        elif number == 8:
            values.append(as_bytes(raw))
    if content and dtype in _CONTENT_DTYPES:
        kind = np.dtype(_CONTENT_DTYPES[dtype])
        if len(content) % kind.itemsize:
            raise ProtoError("tensor content of a ragged length")
        values = np.frombuffer(content, dtype=kind).tolist()
    size = math.prod(shape) if shape else 1
    if values and len(values) == 1 and size > 1:
        values = values * size  # a single value fills the whole tensor
    return Tensor(dtype, tuple(shape), values)


def histogram_bars(
    lefts: list[float],
    rights: list[float],
    counts: list[float],
    low: float | None = None,
    high: float | None = None,
) -> dict[str, list[Any]] | None:
    """A histogram's buckets (edges and counts) as a bar chart value of equal-width bars.

    The range runs from the first to the last non-empty bucket, narrowed to the recorded
    ``low``/``high`` (a bucket's edge may be -DBL_MAX); each bucket's count goes to the
    bar holding its middle. At most :data:`HISTOGRAM_BARS` bars, labelled by left edge.
    """
    if not counts or not len(lefts) == len(rights) == len(counts):
        return None
    used = [i for i, c in enumerate(counts) if c and math.isfinite(c)]
    if not used:
        return None
    lo, hi = lefts[used[0]], rights[used[-1]]
    if low is not None and math.isfinite(low):
        lo = max(lo, low) if math.isfinite(lo) else low
    if high is not None and math.isfinite(high):
        hi = min(hi, high) if math.isfinite(hi) else high
    if not (math.isfinite(lo) and math.isfinite(hi)) or hi <= lo:
        return {"x": [f"{lo:.3g}"], "y": [float(sum(counts[i] for i in used))]}
    bars = min(HISTOGRAM_BARS, used[-1] - used[0] + 1)
    width = (hi - lo) / bars
    ys = [0.0] * bars
    for i in used:
        left, right = lefts[i], rights[i]
        middle = (max(left, lo) + min(right, hi)) / 2
        ys[min(bars - 1, max(0, int((middle - lo) / width)))] += counts[i]
    return {"x": [f"{lo + k * width:.3g}" for k in range(bars)], "y": ys}


@dataclass(slots=True)
class Decoded:
    """What a run's event files held since the last read."""

    records: list[dict[str, Any]] = field(default_factory=list)
    config: dict[str, Any] = field(default_factory=dict)
    media: list[str] = field(default_factory=list)
    status: str | None = None
    notes: list[str] = field(default_factory=list)


def _hparam_value(data: bytes) -> Any:
    """A ``google.protobuf.Value``: number 2, string 3, bool 4 (null 1 and structs: None)."""
    for number, _, raw in fields(data):
        if number == 2:
            value = as_double(raw)
            return int(value) if value.is_integer() and abs(value) < 2**53 else value
        if number == 3:
            return as_text(raw)
        if number == 4:
            return bool(as_int(raw))
    return None


def _hparams(content: bytes, out: Decoded) -> None:
    """``HParamsPluginData``: session_start_info (3) -> hparams map (1); session_end_info (4)."""
    for number, _, raw in fields(content):
        if number == 3:
            for info_number, _, info in fields(as_bytes(raw)):
                if info_number != 1:
                    continue
                key, value = "", None
                for entry_number, _, entry in fields(as_bytes(info)):
                    if entry_number == 1:
                        key = as_text(entry)
                    elif entry_number == 2:
                        value = _hparam_value(as_bytes(entry))
                if key:
                    out.config[key] = value
        elif number == 4:
            for end_number, _, end in fields(as_bytes(raw)):
                if end_number == 1:
                    out.status = _HPARAM_END.get(as_int(end), out.status)


def _histogram_proto(data: bytes) -> dict[str, list[Any]] | None:
    """``HistogramProto``: min (1), max (2), bucket_limit (6) and bucket (7), doubles."""
    edges: list[float] = []
    counts: list[float] = []
    low = high = None
    for number, wire, raw in fields(data):
        if number == 1:
            low = as_double(raw)
        elif number == 2:
            high = as_double(raw)
        elif number == 6:
            edges.extend(packed_doubles(wire, raw))
        elif number == 7:
            counts.extend(packed_doubles(wire, raw))
    if not edges:
        return None
    return histogram_bars([-math.inf, *edges[:-1]], edges, counts, low, high)


class EventDecoder:
    """Turns the events of one file into record values, remembering each tag's plugin."""

    def __init__(self) -> None:
        self.plugins: dict[str, str] = {}

    def summary(self, data: bytes, step: int, record: dict[str, Any], out: Decoded) -> None:
        """Decode one ``Summary`` into ``record`` (values) and ``out`` (config, media)."""
        for number, _, raw in fields(data):
            if number == 1:
                self._value(as_bytes(raw), step, record, out)

    def _value(self, data: bytes, step: int, record: dict[str, Any], out: Decoded) -> None:
        tag = ""
        plugin = ""
        content = b""
        kind = 0
        payload: int | bytes = b""
        for number, wire, raw in fields(data):
            if number == 1:
                tag = as_text(raw)
            elif number == 9:
                for meta_number, _, meta in fields(as_bytes(raw)):
                    if meta_number == 1:
                        for plugin_number, _, item in fields(as_bytes(meta)):
                            if plugin_number == 1:
                                plugin = as_text(item)
                            elif plugin_number == 2:
                                content = as_bytes(item)
            elif number in (2, 4, 5, 6, 8):
                kind, payload = number, raw
                if number == 2 and wire != FIXED32:
                    raise ProtoError("simple_value is not a float")
        if plugin:
            self.plugins[tag] = plugin
        else:
            plugin = self.plugins.get(tag, "")
        if plugin == "hparams":
            _hparams(content, out)
            return
        if kind == 2:
            record[tag] = as_float(payload)
        elif kind == 5:
            bars = _histogram_proto(as_bytes(payload))
            if bars is not None:
                record[tag] = bars
        elif kind in (4, 6):
            out.media.append(f"{'images' if kind == 4 else 'audio'}/{tag} @ step {step}")
        elif kind == 8:
            self._tensor(tag, plugin, decode_tensor(as_bytes(payload)), step, record, out)

    @staticmethod
    def _tensor(
        tag: str, plugin: str, tensor: Tensor, step: int, record: dict[str, Any], out: Decoded
    ) -> None:
        values = tensor.values
        if plugin == "text" or (tensor.dtype == _DT_STRING and plugin not in ("images", "audio")):
            texts = [v.decode("utf-8", "replace") for v in values if isinstance(v, bytes)]
            if texts:
                record[tag] = texts[0] if len(texts) == 1 else "\n".join(texts)
        elif plugin == "histograms":
            if len(tensor.shape) == 2 and tensor.shape[1] == 3 and values:
                numbers = [float(v) for v in values]
                bars = histogram_bars(numbers[0::3], numbers[1::3], numbers[2::3])
                if bars is not None:
                    record[tag] = bars
        elif plugin in ("images", "audio"):
            out.media.append(f"{plugin}/{tag} @ step {step}")
        elif plugin in ("scalars", "") and len(values) == 1:
            value = values[0]
            if isinstance(value, (int, float)) and not isinstance(value, bool):
                record[tag] = float(value)


def decode_event(
    data: bytes, decoder: EventDecoder, out: Decoded
) -> tuple[int, float, dict[str, Any]] | None:
    """``(step, wall time, values)`` of one ``Event``; ``None`` for an event without values."""
    wall = 0.0
    step = 0
    summary = b""
    for number, wire, raw in fields(data):
        if number == 1 and wire == FIXED64:
            wall = as_double(raw)
        elif number == 2:
            step = signed(as_int(raw))
        elif number == 5 and wire == LENGTH:
            summary = as_bytes(raw)
    if not summary:
        return None
    record: dict[str, Any] = {}
    decoder.summary(summary, step, record, out)
    return step, wall, record


# Reading ----------------------------------------------------------------------------------------
@dataclass(slots=True)
class _File:
    """Reading state of one event file."""

    offset: int = 0
    broken: bool = False
    suspect: int = -1
    stalled_noted: bool = False
    decoder: EventDecoder = field(default_factory=EventDecoder)


def frame(data: bytes, base: int) -> tuple[list[bytes], int, int | None]:
    """Split complete TFRecords off the front of ``data`` (read from file offset ``base``).

    Returns the records' data, the bytes they span, and the offset (relative to ``data``)
    of the first record whose checksums fail, if any (records before it are returned).
    """
    records: list[bytes] = []
    headers: list[bytes] = []
    header_crcs: list[int] = []
    data_crcs: list[int] = []
    starts: list[int] = []
    pos = 0
    end = len(data)
    while pos + _HEADER <= end:
        length, header_crc = _LENGTH.unpack_from(data, pos)
        if length > _MAX_RECORD:
            # Lengths are checked against their checksum below; an absurd one is damage.
            headers.append(data[pos : pos + 8])
            header_crcs.append(header_crc)
            records.append(b"")
            data_crcs.append(0)
            starts.append(pos)
            break
        stop = pos + _HEADER + length
        if stop + 4 > end:
            headers.append(data[pos : pos + 8])
            header_crcs.append(header_crc)
            records.append(b"")
            data_crcs.append(-1)  # incomplete: only its header can be checked
            starts.append(pos)
            break
        headers.append(data[pos : pos + 8])
        header_crcs.append(header_crc)
        records.append(data[pos + _HEADER : stop])
        data_crcs.append(_CRC.unpack_from(data, stop)[0])
        starts.append(pos)
        pos = stop + 4
    if not records:
        return [], 0, None
    expected_headers = masked(crc32c_many(headers))
    header_ok = expected_headers == np.asarray(header_crcs, dtype=np.uint32)
    complete = np.asarray([c >= 0 for c in data_crcs])
    data_ok = np.ones(len(records), dtype=bool)
    if complete.any():
        chosen = np.flatnonzero(complete)
        sums = masked(crc32c_many([records[i] for i in chosen.tolist()]))
        wanted = np.asarray([data_crcs[i] for i in chosen.tolist()], dtype=np.uint32)
        data_ok[chosen] = sums == wanted
    good = header_ok & data_ok
    failing = np.flatnonzero(~good)
    if failing.size:
        first = int(failing[0])
        return records[:first], starts[first], starts[first]
    if not complete[-1]:
        return records[:-1], starts[-1], None
    return records, pos, None


class EventReader:
    """Reads the event files of one run (a directory, plus ``add_hparams`` subdirectories).

    Args:
        root: ROOT (files are opened through :func:`open_regular` under it).
        directory: the run's log directory.
        subdirectories: also read the ``add_hparams`` subdirectories of ``directory``.
    """

    def __init__(self, root: Path, directory: Path, subdirectories: bool = True) -> None:
        self.root = root
        self.directory = directory
        self.subdirectories = subdirectories
        self.files: dict[str, _File] = {}
        self.recheck = False
        self.more = False

    def names(self) -> list[str]:
        """Event files of the run, relative to its directory, oldest first per directory."""
        found = event_files(self.directory)
        if self.subdirectories:
            for sub in hparams_dirs(self.directory):
                found.extend(f"{sub}/{name}" for name in event_files(self.directory / sub))
        return found

    def paths(self) -> list[Path]:
        """Every event file and the directories holding them (what reveals new data)."""
        names = self.names()
        dirs = {self.directory, *(self.directory / n.split("/")[0] for n in names if "/" in n)}
        return [*sorted(dirs), *(self.directory / n for n in names)]

    def reset(self) -> None:
        """Forget every position (the run is read again from the start)."""
        self.files.clear()

    def read(self, budget: int) -> tuple[Decoded, bool]:
        """What is new in every file, within ``budget`` bytes: ``(decoded, replaced)``.

        ``replaced``: a file shrank, so everything was read again from the start and the
        caller must drop what it had.
        """
        self.more = False
        out = Decoded()
        sizes: dict[str, int] = {}
        for name in self.names():
            try:
                sizes[name] = os.stat(self.directory / name).st_size
            except OSError:
                continue
        shrunk = [n for n, size in sizes.items() if n in self.files and size < self.files[n].offset]
        replaced = bool(shrunk)
        if shrunk:
            out.notes.append(
                sanitize(f"{shrunk[0]} was truncated; re-reading this run from the start", 300)
            )
            self.reset()
        remaining = budget
        for name, size in sizes.items():
            state = self.files.setdefault(name, _File())
            if state.broken or size == state.offset:
                continue
            if remaining <= 0:
                self.more = True
                break
            used = self._read_file(name, state, size, remaining, out)
            remaining -= used
        return out, replaced

    def _read_file(self, name: str, state: _File, size: int, budget: int, out: Decoded) -> int:
        path = self.directory / name
        label = sanitize(name, 200)
        try:
            fd = open_regular(path, self.root)
        except (UnsafeFile, OSError) as exc:
            state.broken = True
            out.notes.append(sanitize(f"{name}: {exc}", 300))
            return 0
        try:
            want = min(size - state.offset, budget)
            data = os.pread(fd, want, state.offset)
            if len(data) >= _HEADER:
                (length,) = struct.unpack_from("<Q", data, 0)
                needed = length + _OVERHEAD
                if needed > len(data) and needed <= _MAX_RECORD and state.offset + needed <= size:
                    data = os.pread(fd, needed, state.offset)  # one record larger than the budget
            mtime = os.fstat(fd).st_mtime
        except OSError as exc:
            out.notes.append(sanitize(f"{name}: {exc.strerror or exc}", 300))
            return 0
        finally:
            os.close(fd)
        records, used, bad = frame(data, state.offset)
        self._decode(records, state, out, label)
        start = state.offset
        state.offset += used
        if bad is not None:
            at = start + bad
            if state.suspect != at:
                # A writer may have been mid-record: only damage seen twice is declared.
                state.suspect = at
                self.recheck = True
            else:
                state.broken = True
                out.notes.append(
                    f"{label}: damaged record at byte {at:,} (checksum mismatch); "
                    "the rest of this file is not read"
                )
        elif state.offset < size:
            if start + len(data) < size:
                self.more = True  # the budget cut the read short
            elif not state.stalled_noted and now() - mtime > INCOMPLETE_AFTER:
                state.stalled_noted = True
                out.notes.append(
                    f"{label}: incomplete final record at byte {state.offset:,} "
                    "(writer stopped mid-record?)"
                )
        return len(data)

    @staticmethod
    def _decode(records: list[bytes], state: _File, out: Decoded, label: str) -> None:
        decoder = state.decoder
        rows = out.records
        for data in records:
            try:
                event = decode_event(data, decoder, out)
            except (ProtoError, ValueError, struct.error):
                out.notes.append(
                    f"{label}: an event that is not an Event protocol buffer was skipped"
                )
                continue
            if event is None:
                continue
            step, wall, values = event
            if not values:
                continue
            last = rows[-1] if rows else None
            if last is not None and last["step"] == step and not values.keys() & last.keys():
                last.update(values)
            else:
                values["step"] = step
                values["_time"] = wall
                rows.append(values)
