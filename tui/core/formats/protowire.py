"""A minimal reader of the protocol buffers wire format, for the few messages we decode.

TensorBoard events and W&B transaction-log records are protocol buffers. Decoding the
handful of fields tracktui shows needs only the wire format (varints, fixed 32/64-bit
values and length-delimited bytes), so no protobuf runtime and no generated classes are
needed: the default install stays light. Field numbers come from the formats' published
``.proto`` definitions and are named where they are used.

Every function checks bounds: a damaged message raises :class:`ProtoError`, never reads
past its buffer and never loops forever.
"""

from __future__ import annotations

import struct
from collections.abc import Iterator

VARINT = 0
FIXED64 = 1
LENGTH = 2
FIXED32 = 5

_DOUBLE = struct.Struct("<d")
_FLOAT = struct.Struct("<f")
_MAX_VARINT_BYTES = 10


class ProtoError(ValueError):
    """The bytes are not a well-formed protocol buffer message."""


def varint(buf: bytes, pos: int) -> tuple[int, int]:
    """Decode the unsigned varint at ``pos``: ``(value, position after it)``."""
    try:
        byte = buf[pos]
    except IndexError:
        raise ProtoError("varint past the end") from None
    if byte < 0x80:
        return byte, pos + 1
    result = byte & 0x7F
    shift = 7
    end = min(len(buf), pos + _MAX_VARINT_BYTES)
    pos += 1
    while pos < end:
        byte = buf[pos]
        pos += 1
        result |= (byte & 0x7F) << shift
        if byte < 0x80:
            return result & 0xFFFFFFFFFFFFFFFF, pos
        shift += 7
    raise ProtoError("varint too long or cut short")


def signed(value: int) -> int:
    """An ``int64``/``int32`` varint as a signed number (two's complement)."""
    return value - (1 << 64) if value >= 1 << 63 else value


def zigzag(value: int) -> int:
    """A ``sint64``/``sint32`` varint as a signed number."""
    return (value >> 1) ^ -(value & 1)


def fields(buf: bytes) -> Iterator[tuple[int, int, int | bytes]]:
    """Each field of one message as ``(number, wire type, value)``.

    ``value`` is the integer of a varint, or the raw bytes of a length-delimited (sub-
    message, string, packed list), 64-bit or 32-bit field. Group wire types (deprecated,
    unused by these formats) are an error.
    """
    pos = 0
    end = len(buf)
    while pos < end:
        key, pos = varint(buf, pos)
        number, wire = key >> 3, key & 7
        if number == 0:
            raise ProtoError("field number 0")
        if wire == VARINT:
            value, pos = varint(buf, pos)
            yield number, wire, value
        elif wire == LENGTH:
            size, pos = varint(buf, pos)
            stop = pos + size
            if stop > end:
                raise ProtoError("length-delimited field past the end")
            yield number, wire, buf[pos:stop]
            pos = stop
        elif wire == FIXED64:
            if pos + 8 > end:
                raise ProtoError("64-bit field past the end")
            yield number, wire, buf[pos : pos + 8]
            pos += 8
        elif wire == FIXED32:
            if pos + 4 > end:
                raise ProtoError("32-bit field past the end")
            yield number, wire, buf[pos : pos + 4]
            pos += 4
        else:
            raise ProtoError(f"unsupported wire type {wire}")


def as_double(raw: int | bytes) -> float:
    """A ``double`` field's value."""
    if not isinstance(raw, bytes) or len(raw) != 8:
        raise ProtoError("not a double")
    return float(_DOUBLE.unpack(raw)[0])


def as_float(raw: int | bytes) -> float:
    """A ``float`` field's value."""
    if not isinstance(raw, bytes) or len(raw) != 4:
        raise ProtoError("not a float")
    return float(_FLOAT.unpack(raw)[0])


def as_bytes(raw: int | bytes) -> bytes:
    """A length-delimited field's bytes."""
    if not isinstance(raw, bytes):
        raise ProtoError("not a length-delimited field")
    return raw


def as_int(raw: int | bytes) -> int:
    """A varint field's value."""
    if not isinstance(raw, int):
        raise ProtoError("not a varint field")
    return raw


def as_text(raw: int | bytes) -> str:
    """A ``string`` field's value (invalid UTF-8 replaced, never an error)."""
    return as_bytes(raw).decode("utf-8", "replace")


def packed_doubles(wire: int, raw: int | bytes) -> list[float]:
    """A ``repeated double`` field: packed (a list) or one unpacked element."""
    if wire == FIXED64:
        return [as_double(raw)]
    data = as_bytes(raw)
    if len(data) % 8:
        raise ProtoError("packed doubles of a ragged length")
    return list(struct.unpack(f"<{len(data) // 8}d", data))


def packed_floats(wire: int, raw: int | bytes) -> list[float]:
    """A ``repeated float`` field: packed (a list) or one unpacked element."""
    if wire == FIXED32:
        return [as_float(raw)]
    data = as_bytes(raw)
    if len(data) % 4:
        raise ProtoError("packed floats of a ragged length")
    return list(struct.unpack(f"<{len(data) // 4}f", data))


def packed_varints(wire: int, raw: int | bytes) -> list[int]:
    """A ``repeated`` varint field (``int32``, ``int64``, ``bool``...): packed or one element."""
    if wire == VARINT:
        return [as_int(raw)]
    data = as_bytes(raw)
    values = []
    pos = 0
    while pos < len(data):
        value, pos = varint(data, pos)
        values.append(value)
    return values


def skip(buf: bytes, pos: int, wire: int) -> int:
    """The position after a field's value of wire type ``wire`` that starts at ``pos``."""
    if wire == VARINT:
        return varint(buf, pos)[1]
    if wire == LENGTH:
        size, pos = varint(buf, pos)
        end = pos + size
    elif wire == FIXED64:
        end = pos + 8
    elif wire == FIXED32:
        end = pos + 4
    else:
        raise ProtoError(f"unsupported wire type {wire}")
    if end > len(buf):
        raise ProtoError("field past the end")
    return end


def timestamp(data: bytes) -> float:
    """A ``google.protobuf.Timestamp`` (seconds 1, nanos 2) as epoch seconds."""
    seconds = nanos = 0
    for number, _, raw in fields(data):
        if number == 1:
            seconds = signed(as_int(raw))
        elif number == 2:
            nanos = signed(as_int(raw))
    return seconds + nanos / 1e9
