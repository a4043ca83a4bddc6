"""A braille rasterizer: polylines drawn as dots, two by four to a character cell.

Layers of dots (one style each) are packed into braille patterns and overlaid, later
layers on top, with vertical axis lines where no dot is drawn.
"""

from __future__ import annotations

import itertools

import numpy as np
import numpy.typing as npt
from rich.style import Style
from rich.text import Text

AXIS_STYLE = Style(dim=True)
"""Style of the axis lines."""

# Bit of each dot in a braille cell, indexed [row 0-3][column 0-1] (Unicode's numbering).
_BRAILLE_BITS = ((0x01, 0x08), (0x02, 0x10), (0x04, 0x20), (0x40, 0x80))


def pack_braille(dots: npt.NDArray[np.bool_]) -> npt.NDArray[np.int64]:
    """Turn a (4*rows, 2*cols) dot grid into (rows, cols) braille bit patterns."""
    bits = np.zeros((dots.shape[0] // 4, dots.shape[1] // 2), dtype=np.int64)
    for row, pair in enumerate(_BRAILLE_BITS):
        for col, bit in enumerate(pair):
            bits |= dots[row::4, col::2].astype(np.int64) * bit
    return bits


def draw_polylines(
    dots: npt.NDArray[np.bool_], xs: npt.NDArray[np.int64], ys: npt.NDArray[np.float64]
) -> None:
    """Set the dots of polylines through ``(xs[j], ys[r, j])`` for every row ``r``.

    ``ys`` are dot rows (floats, 0 at the top); segments are sampled densely enough that
    steep ones stay connected.
    """
    if ys.size == 0:
        return
    if xs.size == 1:
        dots[np.rint(ys[:, 0]).astype(np.int64), xs[0]] = True
        return
    for j in range(xs.size - 1):
        x0, x1 = int(xs[j]), int(xs[j + 1])
        y0, y1 = ys[:, j], ys[:, j + 1]
        steps = max(x1 - x0, int(np.ceil(np.max(np.abs(y1 - y0)))), 1) + 1
        t = np.linspace(0.0, 1.0, steps)
        col = np.rint(x0 + (x1 - x0) * t).astype(np.int64)
        row = np.rint(y0[:, None] + (y1 - y0)[:, None] * t[None, :]).astype(np.int64)
        dots[row, np.broadcast_to(col, row.shape)] = True


def compose_layers(
    layers: list[tuple[npt.NDArray[np.int64], Style]],
    columns: list[int],
    rows: int,
    width: int,
) -> list[Text]:
    """Overlay braille layers (later ones on top) and axis lines into lines of text."""
    stack = np.stack([bits for bits, _ in layers])
    present = stack > 0
    drawn = present.any(axis=0)
    top = len(layers) - 1 - present[::-1].argmax(axis=0)
    codes = np.where(drawn, 0x2800 + np.take_along_axis(stack, top[None], 0)[0], ord(" "))
    styles = np.where(drawn, top, -2)
    axis = np.zeros(width, dtype=bool)
    axis[[c for c in columns if 0 <= c < width]] = True
    bare_axis = ~drawn & axis[None, :]
    codes[bare_axis] = ord("│")
    styles[bare_axis] = -1
    by_index = {i: style for i, (_, style) in enumerate(layers)} | {-1: AXIS_STYLE}
    lines = []
    for row in range(rows):
        text = Text("".join(map(chr, codes[row].tolist())), no_wrap=True)
        row_styles = styles[row]
        cuts = [0, *(np.flatnonzero(np.diff(row_styles)) + 1).tolist(), width]
        for start, end in itertools.pairwise(cuts):
            style = by_index.get(int(row_styles[start]))
            if style is not None:
                text.stylize(style, start, end)
        lines.append(text)
    return lines
