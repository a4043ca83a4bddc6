"""Numeric bodies of delimited logs (Keras and Lightning CSV, DVCLive TSV) parsed in bulk.

A body whose rows are all numbers becomes a float64 table in one call to msgspec's C
parser, with no Python object per row: the delimiters become commas, each line end a
``,"",`` marker, and the whole is read as one JSON list. The markers prove the shape: the
body holds no quote of its own, so the list holds exactly one empty string per line; when
it is ``width + 1`` values long per line and every ``width + 1``-th value is one of them,
no row was short or long.

Anything else returns ``None`` and the reader parses the rows one by one as before: a
quoted or empty cell, text, a blank line, a number JSON spells differently from Python
(``1.``, ``01``, ``1e400``), Python's non-finite tokens other than ``nan``, ``inf`` and
``-inf``. Values are those ``float()`` gives for the same cells.
"""

from __future__ import annotations

from typing import Literal

import msgspec
import numpy as np

_Cell = float | Literal["nan", "inf", "-inf", ""]
_DECODER = msgspec.json.Decoder(list[_Cell])
_COMMA = ord(",")


def numeric_rows(body: bytes, delimiter: str, width: int) -> np.ndarray | None:
    """The rows of ``body`` as a ``(rows, width)`` float64 table, or ``None`` (see above).

    Args:
        body: complete lines, each ending with ``\\n`` (a ``\\r`` before it is allowed).
        delimiter: the one-character cell delimiter.
        width: cells per row (the header's).
    """
    if not body.endswith(b"\n") or b'"' in body or width < 1:
        return None
    sep = delimiter.encode()
    if len(sep) != 1 or sep[0] > 0x7F:
        return None
    if sep[0] != _COMMA:
        if b"," in body:
            return None  # a comma inside a cell would pass for a delimiter
        body = body.replace(sep, b",")
    text = body.replace(b"\n", b',"",')
    rows = (len(text) - len(body)) // 3  # each line end grew by three bytes
    if b"n" in text:  # Python's nan, inf and -inf, quoted into strings numpy reads
        text = text.replace(b"nan", b'"nan"').replace(b"inf", b'"inf"')
        text = text.replace(b'-"inf"', b'"-inf"')
    try:
        values = _DECODER.decode(b"".join((b"[", memoryview(text)[:-1], b"]")))
    except msgspec.DecodeError:
        return None
    if len(values) != rows * (width + 1) or values[width :: width + 1] != [""] * rows:
        return None
    del values[width :: width + 1]
    return np.fromiter(values, np.float64, rows * width).reshape(rows, width)
