"""``ImagePreview``: one image a run logged, drawn with half blocks in the terminal.

Each cell shows two pixels: ``▀`` with the top pixel as its foreground colour and the
bottom pixel as its background, so pixels come out roughly square. Colours are given as
truecolor; Textual downgrades them for 256- and 16-colour terminals, and under
``NO_COLOR`` the preview shows a short description instead of blocks.

The file is read in a thread (the disk may be remote), at most :data:`MAX_BYTES`, only
when it is a regular file inside the run's directory; it is decoded with Pillow (the
optional ``tracktui[images]`` extra, imported on first use) restricted to a few raster
formats and :data:`MAX_PIXELS`. Anything that goes wrong becomes a message in the
preview, never an exception.
"""

from __future__ import annotations

import importlib.util
import io
import math
import os
import threading
import warnings
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

from rich.color import Color as RichColor
from rich.segment import Segment
from rich.style import Style
from rich.text import Text
from textual import on, work
from textual.app import ComposeResult
from textual.containers import Vertical
from textual.geometry import Size
from textual.message import Message
from textual.strip import Strip
from textual.widget import Widget
from textual.widgets import Static
from textual.worker import get_current_worker

from tui.core.sanitize import sanitize
from tui.core.tail import UnsafeFile, open_regular

MAX_BYTES = 8 * 1024 * 1024
"""Largest image file read for a preview, in bytes."""

MAX_PIXELS = 16_000_000
"""Most pixels an image may declare; larger ones are refused before decoding."""

KEEP = 512
"""Decoded images are reduced to fit this many pixels a side and kept at that size."""

MAX_ROWS = 24
"""Most terminal rows (two pixels each) an image takes."""

MAX_UPSCALE = 8
"""Small images are enlarged by a whole factor up to this (nearest neighbour: crisp)."""

FORMATS = ("PNG", "JPEG", "GIF", "BMP", "WEBP", "TIFF")
"""Pillow decoders allowed: common raster formats only (EPS would run Ghostscript)."""

NO_PILLOW = "install tracktui[images] to see images here"

_READ_CHUNK = 1024 * 1024

_DECODING = threading.Lock()


@lru_cache(maxsize=1)
def pillow_available() -> bool:
    """True when Pillow can be imported (checked once, without importing it)."""
    return importlib.util.find_spec("PIL") is not None


@lru_cache(maxsize=1)
def _pillow() -> Any:
    """Pillow's ``Image`` module, or ``None`` without it (imported on first use)."""
    if not pillow_available():
        return None
    try:
        from PIL import Image
    except ImportError:
        return None
    return Image


def _guard(image_module: Any) -> None:
    """Make Pillow refuse oversized images by raising, however it was configured before.

    Pillow warns between its pixel limit and twice it, and refuses above; as an error the
    warning reaches our handler instead of being printed. Renewed on every decode, since
    anything may have reset the warning filters meanwhile; the limit is only lowered.
    """
    warnings.simplefilter("error", image_module.DecompressionBombWarning)
    limit = image_module.MAX_IMAGE_PIXELS
    if limit is None or limit > MAX_PIXELS:
        image_module.MAX_IMAGE_PIXELS = MAX_PIXELS


@dataclass(frozen=True)
class Decoded:
    """What reading one image produced, handed from the worker thread to the widget.

    Attributes:
        image: the picture as a Pillow RGBA image at most :data:`KEEP` pixels a side, or
            ``None`` when it could not be read (``message`` says why).
        description: format, size and mode, e.g. ``PNG 64×64 RGB · 1.8 KB``; empty when
            the file was not decoded.
        message: why there is no picture, or ``None``.
    """

    image: Any
    description: str = ""
    message: str | None = None


def human_size(size: int | None) -> str:
    """``1.8 KB``-style size; ``?`` when unknown."""
    if size is None:
        return "?"
    value = float(size)
    for unit in ("B", "KB", "MB", "GB"):
        if value < 1000 or unit == "GB":
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1000
    return f"{value:.1f} GB"


def _read_bytes(path: Path, base: Path, limit: int) -> bytes | str:
    """The file's bytes, or a message saying why it was not read."""
    try:
        # open_regular vets the last path component only; a directory symlink on the
        # way could still lead elsewhere, so the whole resolved path must stay inside.
        if not Path(os.path.realpath(path)).is_relative_to(os.path.realpath(base)):
            return "refused: the file lies outside the run's directory"
        fd = open_regular(path, base)
    except UnsafeFile as error:
        return "refused: " + sanitize(str(error), 300)
    except (OSError, ValueError) as error:
        return "cannot open: " + sanitize(getattr(error, "strerror", None) or str(error), 300)
    try:
        size = os.fstat(fd).st_size
        if size > limit:
            return f"too large to preview ({human_size(size)}; the limit is {human_size(limit)})"
        chunks: list[bytes] = []
        total = 0
        while total <= limit:
            chunk = os.read(fd, _READ_CHUNK)
            if not chunk:
                break
            chunks.append(chunk)
            total += len(chunk)
        if total > limit:  # it grew while being read
            return f"too large to preview (over {human_size(limit)})"
        return b"".join(chunks)
    except OSError as error:
        return "cannot read: " + sanitize(error.strerror or str(error), 300)
    finally:
        os.close(fd)


def _to_rgba(image: Any) -> Any:
    """``image`` as RGBA; high bit-depth greys are stretched to their range, not clipped."""
    if image.mode in ("I", "F") or image.mode.startswith("I;16"):
        import numpy as np

        values = np.asarray(image, dtype=np.float64)
        finite = values[np.isfinite(values)]
        low, high = (float(finite.min()), float(finite.max())) if finite.size else (0.0, 0.0)
        scaled = np.nan_to_num((values - low) * (255.0 / (high - low or 1.0)), posinf=255.0)
        from PIL import Image

        image = Image.fromarray(np.clip(scaled, 0, 255).astype(np.uint8))
    return image.convert("RGBA")


def decode_image(
    path: Path,
    run_dir: Path,
    *,
    max_bytes: int = MAX_BYTES,
    max_pixels: int = MAX_PIXELS,
) -> Decoded:
    """Read and decode one image file safely; never raises.

    Args:
        path: the image file.
        run_dir: the run's directory (a file path means its parent); ``path`` must resolve
            to a regular file inside it.
        max_bytes: larger files are not read.
        max_pixels: images declaring more pixels are not decoded.

    Returns:
        The picture reduced to at most :data:`KEEP` pixels a side, or a message.
    """
    Image = _pillow()
    if Image is None:
        return Decoded(None, message=NO_PILLOW)
    _guard(Image)
    from PIL import UnidentifiedImageError

    base = run_dir if os.path.isdir(run_dir) else run_dir.parent
    data = _read_bytes(path, base, max_bytes)
    if isinstance(data, str):
        return Decoded(None, message=data)
    try:
        with Image.open(io.BytesIO(data), formats=FORMATS) as opened:
            width, height = opened.size
            description = (
                f"{opened.format} {width}×{height} {opened.mode} · {human_size(len(data))}"
            )
            if width * height > max_pixels:
                return Decoded(None, description, f"too many pixels to decode ({width}×{height})")
            opened.draft("RGB", (KEEP, KEEP))  # JPEG: decode at a reduced scale
            opened.load()
            image = _to_rgba(opened)
        image.thumbnail((KEEP, KEEP))
        return Decoded(image, description)
    except (Image.DecompressionBombError, Image.DecompressionBombWarning):
        return Decoded(None, message="refused: the image declares too many pixels")
    except UnidentifiedImageError:
        kinds = ", ".join(FORMATS[:-1]) + " or " + FORMATS[-1]
        return Decoded(None, message=f"cannot decode this image: damaged, or not {kinds}")
    except Exception as error:
        # Damaged files make decoders raise OSError (UnidentifiedImageError included),
        # ValueError, SyntaxError, EOFError, struct.error and more; a preview must not
        # take the app down over any of them.
        reason = sanitize(str(error), 200) or type(error).__name__
        return Decoded(None, message="cannot decode this image: " + reason)


def fit_size(size: tuple[int, int], width: int, rows: int) -> tuple[int, int]:
    """Pixel size to draw ``size`` at within ``width`` cells and ``rows`` rows.

    Aspect ratio is kept; a cell is two pixels high. Larger images shrink; smaller ones
    grow by a whole factor (at most :data:`MAX_UPSCALE`) so their pixels stay sharp.
    """
    w, h = size
    if w <= 0 or h <= 0 or width <= 0 or rows <= 0:
        return (0, 0)
    scale = min(width / w, 2 * rows / h)
    if scale >= 1:
        scale = min(math.floor(scale), MAX_UPSCALE)
    return (max(1, min(width, round(w * scale))), max(1, min(2 * rows, round(h * scale))))


def half_block_strips(image: Any, background: tuple[int, int, int]) -> list[Strip]:
    """One strip per pair of pixel rows of ``image`` (already at its drawn size).

    Transparent pixels are blended over ``background``; an odd last row is paired with
    the background.
    """
    from PIL import Image

    flat = Image.new("RGB", image.size, background)
    flat.paste(image, mask=image.getchannel("A") if image.mode == "RGBA" else None)
    width, height = flat.size
    pixels = flat.load()
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
            upper = pixels[x, top]
            lower = pixels[x, top + 1] if top + 1 < height else background
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
        self.image: Any = None
        self._strips: list[Strip] = []
        self._key: tuple[object, ...] | None = None

    def set_image(self, image: Any) -> None:
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


class ImagePreview(Vertical):
    """A caption (name, format, size or a message) above the picture itself.

    Call :meth:`show_image` with a path inside the run's directory, or ``None`` to hide.
    """

    DEFAULT_CSS = """
    ImagePreview {
        height: auto;
        display: none;
    }
    ImagePreview.shown {
        display: block;
    }
    ImagePreview > .image-caption {
        height: auto;
    }
    ImagePreview > HalfBlockImage {
        display: none;
    }
    ImagePreview > HalfBlockImage.shown {
        display: block;
    }
    """

    class Loaded(Message):
        """An image was read (or failed to be) in the worker thread."""

        def __init__(self, path: Path, decoded: Decoded) -> None:
            super().__init__()
            self.path = path
            self.decoded = decoded

    def __init__(self, *, max_rows: int = MAX_ROWS, id: str | None = None) -> None:
        super().__init__(id=id)
        self.max_rows = max_rows
        self.path: Path | None = None
        self.decoded: Decoded | None = None

    def compose(self) -> ComposeResult:
        yield Static(classes="image-caption")
        yield HalfBlockImage(max_rows=self.max_rows)

    @property
    def caption(self) -> Text:
        """What the caption line says now."""
        content = self.query_one(".image-caption", Static).content
        return content if isinstance(content, Text) else Text(str(content))

    @property
    def pixels(self) -> HalfBlockImage:
        """The widget drawing the picture."""
        return self.query_one(HalfBlockImage)

    def show_image(self, path: Path | None, run_dir: Path, *, reload: bool = False) -> None:
        """Preview ``path`` (read in a thread), or hide the preview for ``None``.

        Args:
            path: the image file.
            run_dir: the run's directory; files resolving outside it are refused.
            reload: read the file again even when it is already shown.
        """
        if path is None:
            self.path, self.decoded = None, None
            self.workers.cancel_group(self, "image-preview")
            self.pixels.set_image(None)
            self.remove_class("shown")
            return
        if path == self.path and not reload:
            return
        self.path, self.decoded = path, None
        self.add_class("shown")
        self.pixels.set_class(False, "shown")
        self.pixels.set_image(None)
        self._caption(Text("loading …", style="dim"))
        self._decode(path, run_dir)

    @work(thread=True, exclusive=True, group="image-preview")
    def _decode(self, path: Path, run_dir: Path) -> None:
        worker = get_current_worker()
        # One decode at a time: holding a key down through a list of large images would
        # otherwise start a decode per row at once; the ones passed over just return.
        with _DECODING:
            if worker.is_cancelled:
                return
            decoded = decode_image(path, run_dir)
        if not worker.is_cancelled:
            self.post_message(self.Loaded(path, decoded))

    @on(Loaded)
    def loaded(self, message: Loaded) -> None:
        """Show what the worker read, unless another image was asked for meanwhile.

        The message then goes on to the parent, which may scroll the preview into view.
        """
        if message.path != self.path:
            return
        decoded = self.decoded = message.decoded
        if decoded.image is not None and not self.app.no_color:
            self._caption(None)
            self.pixels.set_image(decoded.image)
            self.pixels.add_class("shown")
        elif decoded.image is not None:
            self._caption(Text("colours are off (NO_COLOR), so the image is not drawn"))
        else:
            self._caption(Text(decoded.message or "", style="bold yellow"))

    def _caption(self, note: Text | None) -> None:
        text = Text(no_wrap=False)
        if self.path is not None:
            text.append(sanitize(self.path.name, 200), style="bold")
        if self.decoded is not None and self.decoded.description:
            text.append("  " + self.decoded.description, style="dim")
        if note is not None:
            text.append("\n")
            text.append_text(note)
        self.query_one(".image-caption", Static).update(text)
