"""Numeric bodies of delimited logs (Keras and Lightning CSV, DVCLive TSV) parsed in bulk.

A body whose rows are all numbers becomes a float64 table through simdjson, with no Python
object per row or per value: the delimiters and line ends become commas (with a marker
number at each line end of a wide body, see below), the whole is framed as ``[0,`` ...
``0]`` and read as one flat JSON array straight into a float64 buffer (a piece of whole
lines at a time, ``_PIECE`` bytes or so).

The table holds exactly ``float()`` of each cell (the text between delimiters and line
ends), for these reasons:

* One number per cell. The body holds no quote, bracket, brace, space or tab (it is
  refused otherwise), so a value cannot be a string, an array (simdjson would flatten it)
  or an object; an empty cell, text or two numbers in a cell make the JSON invalid, and
  ``true``, ``false`` and ``null`` are not numbers: all refuse the body. A ``\\r`` (the
  csv module ends lines with ``\\r\\n``) is whitespace that JSON and ``float()`` both
  skip beside a number.
* The same number. JSON's numbers are a subset of the spellings ``float()`` accepts, and
  both round correctly (subnormals included). JSON rejects ``1.``, ``.5``, ``01``,
  ``+1``, ``1e400`` (out of range) and integers beyond 64 bits, which refuse the body. One
  spelling reads differently: simdjson reads a cell ``-0`` as the integer 0 where
  ``float()`` gives -0.0, so such a cell refuses the body (``-0.0``, ``-0e0`` are exact).
* The right shape. Every line must hold exactly ``width`` cells. In a narrow body, read
  in order, its delimiters and line ends must be ``width - 1`` delimiters then a line end,
  over and over (numpy finds them): the array is then ``rows * width`` values between the
  two framing zeros, row after row; its length is checked all the same. In a wide body
  (``_MARKED_WIDTH`` cells or more, where one more number per line costs simdjson less
  than numpy's pass over the bytes), each line end becomes a marker number as well: the
  markers must be every ``width + 1``-th value, and no cell may equal one (such a body is
  refused).
* Non-finite cells. Python writes ``nan``, ``inf`` and ``-inf`` (Keras' CSVLogger and
  DVCLive do), which JSON lacks: each such whole cell (a comma on each side, a ``\\r``
  allowed before the second) becomes a sentinel number, and its positions become NaN or
  an infinity after parsing. A replaced cell reads back as exactly its sentinel, so when
  as many values equal a sentinel as cells were replaced by it, no other cell equals it;
  otherwise the body is refused. Any other spelling (``NaN``, ``Infinity``, ``nan5``) is
  left alone, is not JSON, and refuses the body.

A refused body returns ``None``, and the reader parses its rows one by one.
"""

from __future__ import annotations

import math
import threading
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    import simdjson

_NON_FINITE = (
    (b"nan", b"5e302", math.nan),
    (b"inf", b"4e303", math.inf),
    (b"-inf", b"3e304", -math.inf),
)
"""Python's non-finite cells, the sentinel numbers that stand in for them, their values."""

_REFUSED = (b'"', b"[", b"]", b"{", b" ", b"\t")
"""Bytes a body may not hold besides its delimiter (see above)."""

_SIDES = int(np.frombuffer(b"\xde\xff\xff\xde", "<u4")[0])
"""Clears the bits in which ``,`` and ``\\r`` differ, in the first and last byte of a word."""

_NEGATIVE_ZERO = int(np.frombuffer(b",-0,", "<u4")[0]) & _SIDES

_MARKED_WIDTH = 4
"""Lines this wide or wider end with a marker number (see ``_piece_rows``); narrower
ones are checked by numpy, which costs less than one more number per line to parse."""

_MARKER_VALUE = -7654321.0
_MARKER = b",-7654321,"
"""What a line end becomes in a marked body: an integer (simdjson's quickest number) that
no logger is likely to write; a cell equal to it refuses the body (see ``_piece_rows``)."""

_OPEN, _CLOSE = np.frombuffer(b"[0,", np.uint8), np.frombuffer(b"0]", np.uint8)
"""The framing of a body (see above)."""

_NEAR = 64
"""Lines found one by one from a piece's start (see ``_line_end``)."""

_PIECE = 128 * 1024
"""Bytes of body parsed at a time (see ``numeric_rows``)."""

_PARSERS = threading.local()
"""Each thread's simdjson parser, kept: a new one allocates its buffers afresh, and their
page faults cost more than parsing a small file."""


def numeric_rows(body: bytes, delimiter: str, width: int, start: int = 0) -> np.ndarray | None:
    """The rows of ``body[start:]`` as a ``(rows, width)`` float64 table, or ``None``.

    See above for when the body is refused.

    Args:
        body: complete lines from ``start`` on, each ending with ``\\n``.
        delimiter: the one-character cell delimiter.
        width: cells per row (the header's).
        start: where the rows begin (past a header line, say), saving a copy of the rest.
    """
    import simdjson  # here: its C extension adds 7 ms to startup, and few runs are CSV

    sep = delimiter.encode()
    if width < 1 or len(sep) != 1 or sep in b'"\r\n' or not sep.isascii():
        return None
    if start >= len(body) or not body.endswith(b"\n"):
        return None
    parser = getattr(_PARSERS, "parser", None)
    if parser is None:
        parser = _PARSERS.parser = simdjson.Parser()
    # Piece by piece: simdjson's buffers for a whole read (4 MiB) would be fresh memory each
    # time, and their page faults cost more than the parse; a piece's fit in what it keeps.
    tables = []
    while start < len(body):
        end = body.rfind(b"\n", start, start + _PIECE) + 1
        if end <= start:  # a line longer than a piece
            end = body.find(b"\n", start) + 1
        table = _piece_rows(parser, body, start, end, sep, width)
        if table is None:
            return None
        tables.append(table)
        start = end
    return tables[0] if len(tables) == 1 else np.concatenate(tables)


def _piece_rows(
    parser: simdjson.Parser, body: bytes, start: int, end: int, sep: bytes, width: int
) -> np.ndarray | None:
    """``numeric_rows`` of the lines ``body[start:end]``, parsed by ``parser``.

    The piece is searched in place, and copied only into the text parsed.
    """
    if sep != b"," and body.find(b",", start, end) >= 0:
        return None  # a comma inside a cell would pass for a delimiter
    if any(body.find(refused, start, end) >= 0 for refused in _REFUSED if refused != sep):
        return None
    marks = None
    text: bytes | memoryview
    if width >= _MARKED_WIDTH:
        piece = body if start == 0 and end == len(body) else body[start:end]
        cells = piece if sep == b"," else piece.replace(sep, b",")
        text = b"".join((b"[0,", cells.replace(b"\n", _MARKER), b"0]"))
        stride = width + 1
    else:
        codes = np.frombuffer(body, np.uint8, end - start, start)
        marks = _delimiters(codes, sep[0], width)
        if marks is None:
            return None
        # The piece framed, its delimiters and line ends made commas where numpy found them.
        buffer = np.empty(len(codes) + 5, np.uint8)
        buffer[:3], buffer[-2:] = _OPEN, _CLOSE
        framed_body = buffer[3:-2]
        framed_body[:] = codes
        framed_body[marks] = ord(",")
        text = buffer.data
        stride = width
    plain = text
    replaced = []
    if body.find(b"n", start, end) >= 0:  # nan and inf both have one (a pass each to find)
        text = bytes(text)
        ends_with = (b",", b"\r,") if b"\r" in text else (b",",)  # a \r\n line's last cell
        for token, sentinel, _ in _NON_FINITE:
            before = len(text)
            for after in ends_with:
                cell, stand_in = b"," + token + after, b"," + sentinel + after
                # Twice: a match ends on the comma that begins the next cell, which the
                # first pass therefore skips.
                text = text.replace(cell, stand_in).replace(cell, stand_in)
            replaced.append((len(text) - before) // (len(sentinel) - len(token)))
    framed = _parse(parser, text)
    if framed is None:
        return None
    flat = framed[1:-1]
    if len(flat) % stride:
        return None
    table = flat.reshape(-1, stride)
    if marks is None:
        # Every line's marker where a line of ``width`` cells puts it, and no cell equal
        # to it: then each marker ends a line, and every line holds ``width`` numbers.
        ends = np.count_nonzero(flat == _MARKER_VALUE)
        if ends != len(table) or not (table[:, width] == _MARKER_VALUE).all():
            return None
        table = table[:, :width]
    elif len(flat) != len(marks):
        return None
    for (_, sentinel, value), count in zip(_NON_FINITE, replaced):
        if count:
            hits = flat == float(sentinel)
            if np.count_nonzero(hits) != count:
                return None  # a cell of the body equals the sentinel
            flat[hits] = value
    zero = flat == 0
    if zero.any():
        # The text before any sentinel, up to the end of the line holding the last zero.
        row = (len(flat) - 1 - int(zero[::-1].argmax())) // stride
        if marks is not None:
            stop = int(marks[(row + 1) * width - 1]) + 4
        else:
            line_end = _line_end(body, start, row)
            stop = len(plain) if line_end < 0 else line_end + 4 + (len(_MARKER) - 1) * row
        if _has_negative_zero(plain, stop):
            return None
    return table


def _delimiters(codes: np.ndarray, sep: int, width: int) -> np.ndarray | None:
    """Where the delimiters and line ends of the lines ``codes`` (bytes) are, in order;
    ``None`` unless every line holds ``width - 1`` delimiters.

    Read in order, they must be ``width - 1`` delimiters and a line end, over and over.
    """
    if sep < 10:
        # A tab: one comparison finds it and the line ends (and control bytes, which break
        # the pattern, and are not JSON either).
        marks = np.flatnonzero(codes <= 10)
    elif sep <= ord(","):
        # Below the digits, the sign and the point: only a few other bytes are found (a
        # \r, the + of an exponent), and dropped.
        marks = np.flatnonzero(codes <= sep)
        found = codes[marks]
        marks = marks[(found == sep) | (found == 10)]
    else:
        marks = np.flatnonzero((codes == sep) | (codes == 10))
    rows, rest = divmod(len(marks), width)
    if rest or codes[marks].tobytes() != (bytes((sep,)) * (width - 1) + b"\n") * rows:
        return None  # short and long rows that make up for each other, or control bytes
    return marks


def _line_end(body: bytes, start: int, row: int) -> int:
    """Where the line end of line ``row`` of the lines from ``start`` is, counted from
    ``start``; -1 when that is far down (a search line by line would cost more than looking
    at the whole piece)."""
    if row >= _NEAR:
        return -1
    end = start - 1
    for _ in range(row + 1):
        end = body.find(b"\n", end + 1)
    return end - start


def _parse(parser: simdjson.Parser, text: bytes | memoryview) -> np.ndarray | None:
    """The flat JSON array of numbers ``text`` as float64, or ``None``.

    The parsed document must be gone before ``parser`` parses again: it dies here.
    """
    import simdjson

    try:
        parsed = parser.parse(text)
        if not isinstance(parsed, simdjson.Array):
            return None
        return np.frombuffer(parsed.as_buffer(of_type="d"), np.float64)
    except (ValueError, TypeError, RuntimeError):  # not JSON, not a number, over 64 bits
        return None


def _has_negative_zero(text: bytes | memoryview, end: int) -> bool:
    """Whether a cell of framed ``text`` before byte ``end`` spells ``-0``.

    numpy compares four-byte words at the four alignments, in a fraction of the time
    ``bytes.find`` takes over a short pattern: ``-0`` with a comma or ``\\r`` on each side,
    compared under ``_SIDES`` (which lets ``-`` and a form feed through as well: a body
    with those there is not JSON, and refusing it costs nothing).
    """
    return any(
        (np.frombuffer(text, "<u4", (end - offset) // 4, offset) & _SIDES == _NEGATIVE_ZERO).any()
        for offset in range(4)
    )
