"""Numeric bodies of delimited logs (Keras and Lightning CSV, DVCLive TSV) parsed in bulk.

A body whose rows are all numbers becomes a float64 table through simdjson, with no Python
object per row or per value: the delimiters and line ends become commas, the whole is
framed as ``[0,`` ... ``0]`` and read as one flat JSON array straight into a float64
buffer (a piece of whole lines at a time, ``_PIECE`` bytes or so). numpy finds where the
line ends and delimiters were, in the body itself.

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
* The right shape. Read in order, the delimiters and line ends of the body must be
  ``width - 1`` delimiters then a line end, over and over: every line holds exactly
  ``width`` cells. The array is then ``rows * width`` values between the two framing
  zeros, row after row; its length is checked all the same.
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
"""Bytes a body may not hold once its delimiters are commas (see above)."""

_SIDES = int(np.frombuffer(b"\xde\xff\xff\xde", "<u4")[0])
"""Clears the bits in which ``,`` and ``\\r`` differ, in the first and last byte of a word."""

_NEGATIVE_ZERO = int(np.frombuffer(b",-0,", "<u4")[0]) & _SIDES

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
        piece = body if start == 0 and end == len(body) else body[start:end]
        table = _piece_rows(parser, piece, sep, width)
        if table is None:
            return None
        tables.append(table)
        start = end
    return tables[0] if len(tables) == 1 else np.concatenate(tables)


def _piece_rows(parser: simdjson.Parser, body: bytes, sep: bytes, width: int) -> np.ndarray | None:
    """``numeric_rows`` of one piece of the body, parsed by ``parser``."""
    grid = _delimiters(body, sep[0], width)
    if grid is None:
        return None
    rows = len(grid)
    if sep != b",":
        if b"," in body:
            return None  # a comma inside a cell would pass for a delimiter
        body = body.replace(sep, b",")
    if any(refused in body for refused in _REFUSED):
        return None
    plain = text = b"".join((b"[0,", body.replace(b"\n", b","), b"0]"))
    replaced = []
    if b"n" in text:  # nan and inf both have one; a search for either costs a whole pass
        ends_with = (b",", b"\r,") if b"\r" in text else (b",",)  # a \r\n line's last cell
        for token, sentinel, _ in _NON_FINITE:
            before = len(text)
            for end in ends_with:
                cell, stand_in = b"," + token + end, b"," + sentinel + end
                # Twice: a match ends on the comma that begins the next cell, which the
                # first pass therefore skips.
                text = text.replace(cell, stand_in).replace(cell, stand_in)
            replaced.append((len(text) - before) // (len(sentinel) - len(token)))
    framed = _parse(parser, text)
    if framed is None or len(framed) != rows * width + 2:
        return None
    flat = framed[1:-1]
    for (_, sentinel, value), count in zip(_NON_FINITE, replaced):
        if count:
            hits = flat == float(sentinel)
            if np.count_nonzero(hits) != count:
                return None  # a cell of the body equals the sentinel
            flat[hits] = value
    zeros = np.flatnonzero(flat == 0)
    # The text before any sentinel, up to the end of the last row holding a zero.
    if len(zeros) and _has_negative_zero(plain, int(grid[zeros[-1] // width, -1]) + 4):
        return None
    return flat.reshape(rows, width)


def _delimiters(body: bytes, sep: int, width: int) -> np.ndarray | None:
    """Where the delimiters and line ends of ``body`` are, a row of ``width`` per line
    (the line end last); ``None`` unless every line holds ``width - 1`` delimiters.

    Read in order, they must be ``width - 1`` delimiters and a line end, over and over.
    """
    codes = np.frombuffer(body, np.uint8)
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
    if len(marks) % width:
        return None
    grid = marks.reshape(-1, width)
    kinds = codes[grid]
    if not (kinds[:, -1] == 10).all() or not (kinds[:, :-1] == sep).all():
        return None  # short and long rows that make up for each other, or control bytes
    return grid


def _parse(parser: simdjson.Parser, text: bytes) -> np.ndarray | None:
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


def _has_negative_zero(text: bytes, end: int) -> bool:
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
