"""Numeric bodies of delimited logs (Keras and Lightning CSV, DVCLive TSV) parsed in bulk.

A body whose rows are all numbers becomes a float64 table through simdjson, with no Python
object per row or per value: the delimiters and line ends become commas (with a marker
number at each line end of a wide body, see below), the whole is framed as ``[0,`` ...
``0]`` and read as one flat JSON array straight into a float64 buffer (a piece at a time,
``_PIECE`` bytes or so).

The table holds exactly ``float()`` of each cell (the text between delimiters and line
ends), for these reasons:

* One number per cell. The body holds no ``[``, space or tab (it is refused otherwise),
  so a value cannot be an array (simdjson would flatten it) nor hide a ``-0`` behind
  whitespace. A quote, a brace or a ``]`` is not searched for: with no ``[`` each makes
  the JSON invalid, or a string or an object, which is no number and refuses the body
  when the array is read as numbers. An empty cell, text or two numbers in a cell make
  the JSON invalid, and ``true``, ``false`` and ``null`` are not numbers: all refuse the
  body. A ``\\r`` (the csv module ends lines with ``\\r\\n``) is whitespace that JSON
  and ``float()`` both skip beside a number.
* The same number. JSON's numbers are a subset of the spellings ``float()`` accepts, and
  both round correctly (subnormals included). JSON rejects ``1.``, ``.5``, ``01``,
  ``+1``, ``1e400`` (out of range) and integers beyond 64 bits, which refuse the body. One
  spelling reads differently: simdjson reads a cell ``-0`` as the integer 0 where
  ``float()`` gives -0.0, so such a cell refuses the body (``-0.0``, ``-0e0`` are exact).
* The right shape. Every line must hold exactly ``width`` cells. In a narrow body, read
  in order, its delimiters and line ends must be ``width - 1`` delimiters then a line end,
  over and over (numpy checks: for two cells a line, that they alternate, on packed bits;
  otherwise where they are): the array is then ``rows * width`` values between the two
  framing zeros, row after row; its length is checked all the same. In a wide body
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
from typing import TYPE_CHECKING, TypeVar

import numpy as np

if TYPE_CHECKING:
    import simdjson

_NON_FINITE = (
    (b"nan", b"5e302", math.nan),
    (b"inf", b"4e303", math.inf),
    (b"-inf", b"3e304", -math.inf),
)
"""Python's non-finite cells, the sentinel numbers that stand in for them, their values."""

_REFUSED = (b"[", b" ", b"\t")
"""Bytes a body may not hold besides its delimiter, searched for (see above)."""

_SIDES = int(np.frombuffer(b"\xde\xff\xff\xde", "<u4")[0])
"""Clears the bits in which ``,`` and ``\\r`` differ, in the first and last byte of a word."""

_NEGATIVE_ZERO = int(np.frombuffer(b",-0,", "<u4")[0]) & _SIDES

_MARKED_WIDTH = 4
"""Lines this wide or wider end with a marker number (see ``_marked_rows``); narrower
ones are checked by numpy (see ``_frame``), which costs less than one more number per
line to parse."""

_MARKER_VALUE = -7654321.0
_MARKER = b",-7654321,"
"""What a line end becomes in a marked body: an integer (simdjson's quickest number) that
no logger is likely to write; a cell equal to it refuses the body (see ``_marked_rows``)."""

_NEAR = 64
"""Lines found one by one from a piece's start (see ``_line_end``)."""

_PIECE = 128 * 1024
"""Bytes of text parsed by simdjson at a time (see ``numeric_rows``)."""

_BLOCK = 512 * 1024
"""Bytes of a narrow body checked and framed by numpy at a time (see ``_frame``): its
masks stay in cache, and a thread keeps 1.6 MiB of them (1 MiB blocks were no faster). A
multiple of 64, so that a block's bits pack into whole words."""

_KEEP = 1024 * 1024
"""Largest framing buffer, and largest table, a thread keeps for its next body (see
``_buffers``): a bigger body (a read of a long file's history) gets fresh memory, given
back once it is parsed, so that an idle reader thread holds little."""

_Text = TypeVar("_Text", bytes, bytearray)

_LOCAL = threading.local()
"""Each thread's simdjson parser and numpy buffers, kept: new ones are fresh memory, whose
page faults cost more than parsing a small file."""


def numeric_rows(
    body: bytes | bytearray,
    delimiter: str,
    width: int,
    start: int = 0,
    *,
    scratch: bool = False,
) -> np.ndarray | None:
    """The rows of ``body[start:]`` as a ``(rows, width)`` float64 table, or ``None``.

    See above for when the body is refused.

    Args:
        body: complete lines from ``start`` on, each ending with ``\\n``.
        delimiter: the one-character cell delimiter.
        width: cells per row (the header's).
        start: where the rows begin (past a header line, say), saving a copy of the rest.
        scratch: the table may be a view of this thread's kept memory, which the next
            such call on the thread overwrites: the caller copies what it keeps (no fresh
            memory for the whole table, of which it may keep a column).
    """
    import simdjson  # here: its C extension adds 7 ms to startup, and few runs are CSV

    sep = delimiter.encode()
    if width < 1 or len(sep) != 1 or sep in b'"\r\n' or not sep.isascii():
        return None
    if start >= len(body) or not body.endswith(b"\n"):
        return None
    if sep != b"," and body.find(b",", start) >= 0:
        return None  # a comma inside a cell would pass for a delimiter
    if any(body.find(refused, start) >= 0 for refused in _REFUSED if refused != sep):
        return None
    parser = getattr(_LOCAL, "parser", None)
    if parser is None:
        parser = _LOCAL.parser = simdjson.Parser()
    if width < _MARKED_WIDTH:
        return _narrow_rows(parser, body, start, sep[0], width, scratch)
    return _marked_rows(parser, body, start, sep, width)


def _narrow_rows(
    parser: simdjson.Parser,
    body: bytes | bytearray,
    start: int,
    sep: int,
    width: int,
    scratch: bool,
) -> np.ndarray | None:
    """``numeric_rows`` of a body narrower than ``_MARKED_WIDTH``: framed whole in a kept
    buffer by numpy (which checks its shape), then parsed a piece at a time.

    A piece may end at any comma of the framed text, every one of which ends a cell: the
    comma becomes ``]`` for this piece and ``[`` for the next, and a comma again after.
    """
    size = len(body) - start + 5
    framed = _buffers(size)[0]
    cells = _frame(body, start, sep, width, framed)
    if cells < 0:
        return None
    text, replaced = _stand_in(body, start, len(body), framed, size)
    length = size if text is framed else len(text)
    flat = _table(cells + 2) if scratch else np.empty(cells + 2)
    view = memoryview(text)
    found = begin = 0
    while begin < length - 1:
        stop = length - 1  # the frame's closing bracket
        if stop - begin > _PIECE:
            stop = text.rfind(b",", begin + 1, begin + _PIECE)
            if stop < 0:  # a cell longer than a piece
                stop = text.find(b",", begin + _PIECE, length - 1)
                stop = length - 1 if stop < 0 else stop
        ends_piece = stop != length - 1
        if begin:
            text[begin] = ord("[")
        if ends_piece:
            text[stop] = ord("]")
        values = _parse(parser, view[begin : stop + 1])
        if begin:
            text[begin] = ord(",")
        if ends_piece:
            text[stop] = ord(",")
        # A piece of no value ("[]", between the two commas of an empty cell) parses: the
        # count below refuses it.
        if values is None or found + len(values) > len(flat):
            return None
        flat[found : found + len(values)] = values
        found += len(values)
        begin = stop
    if found != len(flat):
        return None
    row = _checked(flat[1:-1], width, replaced)
    if row is None:
        return None
    if row >= 0:
        line_end = _line_end(body, start, row)
        stop = size if line_end < 0 else line_end + 4
        if _has_negative_zero(framed, stop):
            return None
    return flat[1:-1].reshape(-1, width)


def _frame(body: bytes | bytearray, start: int, sep: int, width: int, out: bytearray) -> int:
    """Write ``body[start:]`` framed as ``[0,`` ... ``0]`` into ``out``, its delimiters and
    line ends made commas; its number of cells, or -1 when its delimiters and line ends, in
    order, are not ``width - 1`` delimiters then a line end, over and over.

    Block by block, through kept buffers: temporaries the size of the body would be fresh
    memory on every read, and their page faults cost more than the work.
    """
    codes = np.frombuffer(body, np.uint8, len(body) - start, start)
    framed = np.frombuffer(out, np.uint8, len(codes), 3)
    out[:3], out[3 + len(codes) : 5 + len(codes)] = b"[0,", b"0]"
    _, seps, marks, commas, _ = _buffers(0)
    cells = parity = 0
    for at in range(0, len(codes), _BLOCK):
        block = codes[at : at + _BLOCK]
        size = len(block)
        here = np.equal(block, sep, out=seps[:size])
        ends = np.equal(block, 10, out=marks[:size])
        ends |= here
        # The marked bytes made commas: raised to one (a line end, a tab), then brought
        # down to one (a delimiter above the comma).
        into = framed[at : at + size]
        np.maximum(block, np.multiply(ends.view(np.uint8), ord(","), out=commas[:size]), out=into)
        if sep > ord(","):
            lowered = np.multiply(here.view(np.uint8), 255 - ord(","), out=commas[:size])
            np.minimum(into, np.subtract(255, lowered, out=lowered), out=into)
        if width == 2:
            padded = -size % 64
            seps[size : size + padded] = marks[size : size + padded] = False
            parity, count = _alternate(seps[: size + padded], marks[: size + padded], parity)
        else:
            count = _in_order(block, ends, sep, width, cells % width)
        if count < 0:
            return -1
        cells += count
    return cells if parity == 0 else -1


def _in_order(block: np.ndarray, marks: np.ndarray, sep: int, width: int, phase: int) -> int:
    """How many ``marks`` (delimiters and line ends) the bytes ``block`` hold, or -1 unless,
    read in order from the ``phase``-th of a line's, they are ``width - 1`` delimiters and a
    line end, over and over (numpy finds where they are)."""
    found = block[np.flatnonzero(marks)].tobytes()
    line = bytes((sep,)) * (width - 1) + b"\n"
    pattern = line * ((phase + len(found)) // width + 1)
    return len(found) if pattern[phase : phase + len(found)] == found else -1


def _alternate(seps: np.ndarray, marks: np.ndarray, parity: int) -> tuple[int, int]:
    """Whether the marks (delimiters and line ends) of a block alternate delimiter, line
    end, delimiter... given the parity of the marks before it: the parity after it, and
    how many marks there are (-1 when they do not alternate).

    On packed bits, 64 bytes to a word: each bit of a word's running XOR of the marks is
    the parity of the marks up to that byte; the first of each pair (parity 1) must be a
    delimiter and the second (parity 0) a line end.
    """
    tabs = np.packbits(seps, bitorder="little").view("<u8")
    running = np.packbits(marks, bitorder="little").view("<u8")
    count = int(np.bitwise_count(running).sum())
    ends = running.copy()
    spare = _buffers(0)[4][: len(running)]
    for shift in (1, 2, 4, 8, 16, 32):
        running ^= np.left_shift(running, shift, out=spare)
    # Each word's parity (its top bit), carried into the words after it: all ones or none.
    carried = np.right_shift(running, 63, out=spare)
    np.bitwise_xor.accumulate(carried, out=carried)
    after = parity ^ int(carried[-1])
    carried[1:] = carried[:-1]
    carried[0] = 0
    if parity:
        carried ^= 1
    running ^= np.subtract(0, carried, out=carried)
    running ^= tabs
    running &= ends
    return (parity, -1) if running.any() else (after, count)


def _buffers(size: int) -> tuple[bytearray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """This thread's kept buffers: one of at least ``size`` bytes for a framed text (kept
    up to ``_KEEP`` bytes); two masks and a byte buffer of ``_BLOCK`` for ``_frame``, and
    words for its packed bits."""
    kept = getattr(_LOCAL, "buffers", None)
    if kept is None:
        kept = _LOCAL.buffers = (
            bytearray(),
            np.empty(_BLOCK, np.bool_),
            np.empty(_BLOCK, np.bool_),
            np.empty(_BLOCK, np.uint8),
            np.empty(_BLOCK // 64, np.uint64),
        )
    if len(kept[0]) >= size:
        return kept
    framed = bytearray(size)
    if size <= _KEEP:
        kept = _LOCAL.buffers = (framed, *kept[1:])
    return (framed, *kept[1:])


def _table(size: int) -> np.ndarray:
    """``size`` float64 values of this thread's kept table (kept up to ``_KEEP`` bytes)."""
    kept: np.ndarray | None = getattr(_LOCAL, "table", None)
    if kept is not None and len(kept) >= size:
        return kept[:size]
    table = np.empty(size)
    if size * table.itemsize <= _KEEP:
        _LOCAL.table = table
    return table


def _marked_rows(
    parser: simdjson.Parser, body: bytes | bytearray, start: int, sep: bytes, width: int
) -> np.ndarray | None:
    """``numeric_rows`` of a body ``_MARKED_WIDTH`` cells wide or wider: each line end
    becomes a marker number, and the lines are parsed a piece at a time (see
    ``_marked_piece``) into a table held column by column.

    Piece by piece: simdjson copies what it parses into a buffer of its size, which for a
    whole read (4 MiB) would be fresh memory each time, and its page faults cost more than
    the parse; a piece's fits in memory malloc keeps. Column by column: each column is
    then contiguous, which the store's passes over a column (extremes, float32) read
    several times faster than every ``width``-th value of rows.
    """
    stride = width + 1
    columns = np.empty((stride, 0))  # the marker last: a row of the columns
    rows = 0
    replaced = [0] * len(_NON_FINITE)
    while start < len(body):
        end = body.rfind(b"\n", start, start + _PIECE) + 1
        if end <= start:  # a line longer than a piece
            end = body.find(b"\n", start) + 1
        piece = _marked_piece(parser, body, start, end, sep, stride)
        if piece is None:
            return None
        values, counts = piece
        lines = len(values) // stride
        if rows + lines > columns.shape[1]:
            # Room for the lines still to come at this piece's bytes per line, and a tenth
            # more: a long body fills it once, without a copy.
            more = lines * (len(body) - end) // (end - start)
            grown = np.empty((stride, rows + lines + more + more // 10))
            grown[:, :rows] = columns[:, :rows]
            columns = grown
        columns[:, rows : rows + lines] = values.reshape(lines, stride).T
        rows += lines
        if counts:  # none: the piece holds no ``n``, and so no nan or inf
            replaced = [total + count for total, count in zip(replaced, counts)]
        start = end
    # Every line's marker where a line of ``width`` cells puts it, and no cell equal to it:
    # then each marker ends a line, and every line holds ``width`` numbers.
    cells = columns[:width, :rows]
    if not (columns[width, :rows] == _MARKER_VALUE).all() or (cells == _MARKER_VALUE).any():
        return None
    if not _restored(cells, replaced):
        return None
    return np.transpose(cells)


def _marked_piece(
    parser: simdjson.Parser,
    body: bytes | bytearray,
    start: int,
    end: int,
    sep: bytes,
    stride: int,
) -> tuple[np.ndarray, list[int]] | None:
    """The values of the lines ``body[start:end]`` of a wide body, parsed by ``parser``,
    each line's followed by its marker (``stride`` values a line unless refused), and how
    many cells of each non-finite spelling were replaced by their sentinels; ``None``
    when refused.

    The piece is searched in place, and copied only into the text parsed. A cell read as
    0 may be spelled ``-0``: looked for in the text up to the last line holding one.
    """
    piece = body if start == 0 and end == len(body) else body[start:end]
    cells = piece if sep == b"," else piece.replace(sep, b",")
    plain = b"".join((b"[0,", cells.replace(b"\n", _MARKER), b"0]"))
    text, replaced = _stand_in(body, start, end, plain, len(plain))
    framed = _parse(parser, text)
    if framed is None:
        return None
    values = framed[1:-1]
    if len(values) % stride:
        return None
    if np.count_nonzero(values) < len(values):
        row = int(np.flatnonzero(values == 0)[-1]) // stride
        line_end = _line_end(body, start, row)
        stop = len(plain) if line_end < 0 else line_end + 4 + (len(_MARKER) - 1) * row
        if _has_negative_zero(plain, stop):
            return None
    return values, replaced


def _stand_in(
    body: bytes | bytearray, start: int, end: int, text: _Text, size: int
) -> tuple[_Text, list[int]]:
    """The framed ``text`` (its first ``size`` bytes) of ``body[start:end]`` with each
    non-finite cell replaced by its sentinel, and how many of each were replaced.

    ``text`` itself (and no counts) when the body holds no ``n``, as nan and inf both do
    (a pass over it for each to find).
    """
    if body.find(b"n", start, end) < 0:
        return text, []
    if len(text) != size:
        text = text[:size]
    ends_with = (b",", b"\r,") if b"\r" in text else (b",",)  # a \r\n line's last cell
    replaced = []
    for token, sentinel, _ in _NON_FINITE:
        before = len(text)
        for after in ends_with:
            cell, stand_in = b"," + token + after, b"," + sentinel + after
            # Twice: a match ends on the comma that begins the next cell, which the first
            # pass therefore skips.
            text = text.replace(cell, stand_in).replace(cell, stand_in)
        replaced.append((len(text) - before) // (len(sentinel) - len(token)))
    return text, replaced


def _checked(flat: np.ndarray, stride: int, replaced: list[int]) -> int | None:
    """Put the non-finite values back where their sentinels were read into the cells
    ``flat`` (``stride`` values a line); ``None`` when a cell equals a sentinel used.

    Returns the line of the last cell read as 0 (whose text may spell ``-0``), or -1.
    """
    if not _restored(flat, replaced):
        return None
    zero = flat == 0
    if not zero.any():
        return -1
    return (len(flat) - 1 - int(zero[::-1].argmax())) // stride


def _restored(cells: np.ndarray, replaced: list[int]) -> bool:
    """Put the non-finite values back where their sentinels were read into ``cells``
    (``replaced``: how many cells each sentinel replaced); False when a cell equals a
    sentinel used."""
    for (_, sentinel, value), count in zip(_NON_FINITE, replaced):
        if count:
            hits = cells == float(sentinel)
            if np.count_nonzero(hits) != count:
                return False  # a cell of the body equals the sentinel
            cells[hits] = value
    return True


def _line_end(body: bytes | bytearray, start: int, row: int) -> int:
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


def _has_negative_zero(text: bytes | bytearray, end: int) -> bool:
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
