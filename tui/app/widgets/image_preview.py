"""``ImagePreview``: one image a run logged, with a caption, drawn with half blocks.

The file is read and decoded in a thread (the disk may be remote) by
:func:`tui.core.images.decode_image`, which refuses files outside the run's directory and
oversized ones; under ``NO_COLOR`` the preview shows a short description instead of
blocks. Anything that goes wrong becomes a message in the preview, never an exception.
"""

from __future__ import annotations

import threading
from pathlib import Path

from rich.text import Text
from textual import on, work
from textual.app import ComposeResult
from textual.containers import Vertical
from textual.message import Message
from textual.widgets import Static
from textual.worker import get_current_worker

from tui.app.widgets.half_block_image import MAX_ROWS, HalfBlockImage
from tui.core.images import Decoded, decode_image
from tui.core.sanitize import sanitize

_DECODING = threading.Lock()
"""One decode at a time, across every preview (see :meth:`ImagePreview._decode`)."""


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
