"""Numeric bodies of delimited logs (Keras and Lightning CSV, DVCLive TSV) parsed in bulk.

A body whose rows are all numbers becomes a float64 table through simdjson, with no Python
object per row or per value: the delimiters become commas, each line end a marker number
``,M,``, the whole is framed as ``[M,`` ... ``]`` and read as one flat JSON array straight
into a float64 buffer (a piece of whole lines at a time, ``_PIECE`` bytes or so).

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
* The right shape. Framing puts exactly ``rows + 1`` markers among the values, one before
  each line and one after the last, at positions ``P0 < P1 < ... < Prows``. The body is
  accepted only when the array is ``rows * (width + 1) + 1`` values long, exactly
  ``rows + 1`` of them equal ``M``, and so does every ``(width + 1)``-th value from the
  first. The count says no cell equals ``M``, so the values equal to ``M`` are exactly the
  ``P``; the ``rows + 1`` grid positions are among them, hence are them, in order:
  ``Pk = k * (width + 1)``, and every line has ``width`` cells. Short and long rows that
  make up for each other move a marker off the grid; a cell that happens to equal ``M``
  raises the count: either refuses the body.
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
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    import simdjson

_MARKER = b"6e301"
"""The line marker: a number no log writes, short, and without a minus sign (the search
for ``-0`` cells then meets only the data's own)."""

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

_PREFIX_ROWS = 64
"""Rows found one by one by their line markers before a ``-0`` search takes the whole body."""


def numeric_rows(body: bytes, delimiter: str, width: int) -> np.ndarray | None:
    """The rows of ``body`` as a ``(rows, width)`` float64 table, or ``None`` (see above).

    Args:
        body: complete lines, each ending with ``\\n``.
        delimiter: the one-character cell delimiter.
        width: cells per row (the header's).
    """
    import simdjson  # here: its C extension adds 7 ms to startup, and few runs are CSV

    sep = delimiter.encode()
    if width < 1 or not body.endswith(b"\n") or len(sep) != 1 or sep in b'"\r\n':
        return None
    if not sep.isascii():
        return None
    # Piece by piece: simdjson's buffers for a whole read (4 MiB) are fresh memory each time,
    # and its page faults cost more than the parse; a piece's fit in what malloc keeps.
    parser = simdjson.Parser()
    tables = []
    start = 0
    while start < len(body):
        end = body.rfind(b"\n", start, start + _PIECE) + 1
        if end <= start:  # a line longer than a piece
            end = body.find(b"\n", start) + 1
        piece = body if end - start == len(body) else body[start:end]
        table = _piece_rows(parser, piece, sep, width)
        if table is None:
            return None
        tables.append(table)
        start = end
    return tables[0] if len(tables) == 1 else np.concatenate(tables)


def _piece_rows(parser: simdjson.Parser, body: bytes, sep: bytes, width: int) -> np.ndarray | None:
    """``numeric_rows`` of one piece of the body, parsed by ``parser``."""
    if sep != b",":
        if b"," in body:
            return None  # a comma inside a cell would pass for a delimiter
        body = body.replace(sep, b",")
    if any(refused in body for refused in _REFUSED):
        return None
    line_end = b"," + _MARKER + b","
    text = b"".join((b"[", _MARKER, b",", body.replace(b"\n", line_end)))
    rows = (len(text) - len(body) - len(_MARKER) - 2) // (len(line_end) - 1)
    replaced = []
    if b"n" in text:  # nan and inf both have one; a search for either costs a whole pass
        ends = (b",", b"\r,") if b"\r" in text else (b",",)  # the last cell of a \r\n line
        for token, sentinel, _ in _NON_FINITE:
            before = len(text)
            for end in ends:
                cell, stand_in = b"," + token + end, b"," + sentinel + end
                # Twice: a match ends on the comma that begins the next cell, which the
                # first pass therefore skips.
                text = text.replace(cell, stand_in).replace(cell, stand_in)
            replaced.append((len(text) - before) // (len(sentinel) - len(token)))
    flat = _parse(parser, b"".join((memoryview(text)[:-1], b"]")))
    if flat is None:
        return None
    stride = width + 1
    markers = flat == float(_MARKER)
    if len(flat) != rows * stride + 1 or np.count_nonzero(markers) != rows + 1:
        return None
    if not markers[::stride].all():
        return None
    for (_, sentinel, value), count in zip(_NON_FINITE, replaced):
        if count:
            hits = flat == float(sentinel)
            if np.count_nonzero(hits) != count:
                return None  # a cell of the body equals the sentinel
            flat[hits] = value
    zeros = np.flatnonzero(flat == 0)
    if len(zeros) and _has_negative_zero(text, line_end, int(zeros[-1] - 1) // stride):
        return None
    return flat[1:].reshape(rows, stride)[:, :width]


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


def _has_negative_zero(text: bytes, line_end: bytes, last_row: int) -> bool:
    """Whether a cell of framed ``text`` up to row ``last_row`` (from 0) spells ``-0``.

    Asked only when some value is zero, mostly in the first rows (epoch and step 0): their
    end is found by the line markers, a pattern long enough for ``bytes.find`` to skip
    ahead. numpy then compares four-byte words at the four alignments, in a fraction of
    the time ``bytes.find`` takes over a short pattern: ``-0`` with a comma or ``\\r`` on
    each side, compared under ``_SIDES`` (which lets ``-`` and a form feed through as well:
    a body with those there is not JSON, and refusing it costs nothing).
    """
    end = len(text)
    if last_row < _PREFIX_ROWS:
        end = 0
        for _ in range(last_row + 1):
            end = text.find(line_end, end + 1)
        end += 1  # the marker's comma closes the last cell
    return any(
        (np.frombuffer(text, "<u4", (end - offset) // 4, offset) & _SIDES == _NEGATIVE_ZERO).any()
        for offset in range(4)
    )
