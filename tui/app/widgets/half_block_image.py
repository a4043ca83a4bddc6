"""``HalfBlockImage``: a picture drawn with half blocks in the terminal.

Each cell shows two pixels: ``▀`` with the top pixel as its foreground colour and the
bottom pixel as its background, so pixels come out roughly square. Colours are given as
truecolor; Textual downgrades them for 256- and 16-colour terminals.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

import numpy as np
from rich.color import Color as RichColor
from rich.segment import Segment
from rich.style import Style
from textual.geometry import Size
from textual.strip import Strip
from textual.widget import Widget

from tui.core.images import fit_size

if TYPE_CHECKING:
    from PIL import Image

MAX_ROWS = 24
"""Most terminal rows (two pixels each) an image takes."""


def half_block_strips(image: Image.Image, background: tuple[int, int, int]) -> list[Strip]:
    """One strip per pair of pixel rows of ``image`` (already at its drawn size).

    Transparent pixels are blended over ``background``; an odd last row is paired with
    the background.
    """
    from PIL import Image

    flat = Image.new("RGB", image.size, background)
    flat.paste(image, mask=image.getchannel("A") if image.mode == "RGBA" else None)
    width, height = flat.size
    rows: list[list[list[int]]] = np.asarray(flat, dtype=np.uint8).tolist()

    def pixel(x: int, y: int) -> tuple[int, int, int]:
        red, green, blue = rows[y][x]
        return (red, green, blue)

    colors: dict[tuple[int, int, int], RichColor] = {}
    styles: dict[tuple[tuple[int, int, int], tuple[int, int, int]], Style] = {}

    def color(rgb: tuple[int, int, int]) -> RichColor:
        found = colors.get(rgb)
        if found is None:
            found = colors[rgb] = RichColor.from_rgb(*rgb)
        return found

    strips: list[Strip] = []
    for top in range(0, height, 2):
        segments: list[Segment] = []
        for x in range(width):
            upper = pixel(x, top)
            lower = pixel(x, top + 1) if top + 1 < height else background
            style = styles.get((upper, lower))
            if style is None:
                style = styles[(upper, lower)] = Style(color=color(upper), bgcolor=color(lower))
            segments.append(Segment("▀", style))
        strips.append(Strip(Segment.simplify(segments), width))
    return strips


class HalfBlockImage(Widget):
    """A picture drawn with ``▀`` cells (the line API: one strip per row)."""

    DEFAULT_CSS = """
    HalfBlockImage {
        width: 1fr;
        height: auto;
    }
    """

    def __init__(self, *, max_rows: int = MAX_ROWS) -> None:
        super().__init__()
        self.max_rows = max_rows
        self.image: Image.Image | None = None
        self._strips: list[Strip] = []
        self._key: tuple[object, ...] | None = None

    def set_image(self, image: Image.Image | None) -> None:
        """Draw ``image`` (a Pillow RGBA image), or nothing for ``None``."""
        self.image = image
        self._key = None
        self.refresh(layout=True)

    def get_content_height(self, container: Size, viewport: Size, width: int) -> int:
        if self.image is None:
            return 0
        return math.ceil(fit_size(self.image.size, width, self.max_rows)[1] / 2)

    def _render_strips(self) -> list[Strip]:
        if self.image is None:
            return []
        size = fit_size(self.image.size, self.size.width, min(self.max_rows, self.size.height))
        background = self.background_colors[1].rgb
        key = (id(self.image), size, background)
        if key != self._key:
            self._key = key
            if size == (0, 0):
                self._strips = []
            else:
                from PIL import Image

                method = (
                    Image.Resampling.NEAREST
                    if size[0] >= self.image.width
                    else Image.Resampling.LANCZOS
                )
                self._strips = half_block_strips(self.image.resize(size, method), background)
        return self._strips

    def render_line(self, y: int) -> Strip:
        strips = self._render_strips()
        if y < len(strips):
            return strips[y]
        return Strip.blank(self.size.width)
