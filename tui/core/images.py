"""Images a run logged: read safely from its directory, decoded to a bounded picture.

A file is read (at most :data:`MAX_BYTES`) only when it is a regular file inside the run's
directory; it is decoded with Pillow (the optional ``tracktui[images]`` extra, imported on
first use) restricted to a few raster formats and :data:`MAX_PIXELS`. Anything that goes
wrong becomes a message, never an exception. The app draws the result (see
``tui.app.widgets.half_block_image``); this module only reads and decodes.
"""

from __future__ import annotations

import importlib.util
import io
import math
import os
import warnings
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from tui.core.sanitize import sanitize
from tui.core.tail import UnsafeFile, open_regular

if TYPE_CHECKING:
    from PIL import Image

MAX_BYTES = 8 * 1024 * 1024
"""Largest image file read for a preview, in bytes."""

MAX_PIXELS = 16_000_000
"""Most pixels an image may declare; larger ones are refused before decoding."""

KEEP = 512
"""Decoded images are reduced to fit this many pixels a side and kept at that size."""

MAX_UPSCALE = 8
"""Small images are enlarged by a whole factor up to this (nearest neighbour: crisp)."""

FORMATS = ("PNG", "JPEG", "GIF", "BMP", "WEBP", "TIFF")
"""Pillow decoders allowed: common raster formats only (EPS would run Ghostscript)."""

NO_PILLOW = "install tracktui[images] to see images here"

_READ_CHUNK = 1024 * 1024


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

    image: Image.Image | None
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


def _to_rgba(image: Image.Image) -> Image.Image:
    """``image`` as RGBA; high bit-depth greys are stretched to their range, not clipped."""
    if image.mode in ("I", "F") or image.mode.startswith("I;16"):
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
    pillow = _pillow()
    if pillow is None:
        return Decoded(None, message=NO_PILLOW)
    _guard(pillow)
    from PIL import UnidentifiedImageError

    base = run_dir if os.path.isdir(run_dir) else run_dir.parent
    data = _read_bytes(path, base, max_bytes)
    if isinstance(data, str):
        return Decoded(None, message=data)
    try:
        with pillow.open(io.BytesIO(data), formats=FORMATS) as opened:
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
    except (pillow.DecompressionBombError, pillow.DecompressionBombWarning):
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
