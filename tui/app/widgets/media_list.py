"""``MediaList``: the files a run logged, with sizes; highlighting one may preview it."""

from __future__ import annotations

import os
from pathlib import Path

from rich.text import Text
from textual import on, work
from textual.binding import Binding
from textual.events import Click
from textual.geometry import Region
from textual.message import Message
from textual.widget import Widget
from textual.widgets import Static
from textual.worker import get_current_worker

from tui.core.images import NO_PILLOW, human_size, pillow_available
from tui.core.sanitize import sanitize, unescape_path
from tui.core.store import Run

MEDIA_DIRS = {"tracktui": "media", "mlflow": "artifacts"}
"""Where each format keeps the files it lists as media, relative to the run's directory."""

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".gif", ".bmp", ".webp", ".svg", ".tif", ".tiff")


def is_image(name: str) -> bool:
    """True when ``name`` has the suffix of an image format."""
    return name.lower().endswith(IMAGE_SUFFIXES)


def media_directory(root: Path, run: Run) -> Path:
    """The directory a run's media names are relative to."""
    return root / unescape_path(run.path) / MEDIA_DIRS.get(run.format, "")


class MediaList(Static, can_focus=True):
    """The files a run logged, with sizes (read in a thread: the disk may be remote).

    Focused, it has a highlighted row: up/down (or j/k), home/end and clicks move it, and
    every move posts :class:`Highlighted` so an image can be previewed; enter asks for the
    highlighted file again (read afresh).
    """

    BINDINGS = [
        Binding("down,j", "move(1)", "Next file", show=False),
        Binding("up,k", "move(-1)", "Previous file", show=False),
        Binding("home", "move_to(0)", "First file", show=False),
        Binding("end", "move_to(-1)", "Last file", show=False),
        Binding("enter", "select", "Preview"),
    ]

    COMPONENT_CLASSES = {"media-list--cursor"}

    DEFAULT_CSS = """
    MediaList > .media-list--cursor {
        background: $block-cursor-blurred-background;
    }
    MediaList:focus > .media-list--cursor {
        background: $block-cursor-background;
        color: $block-cursor-foreground;
        text-style: bold;
    }
    """

    class Sized(Message):
        """File sizes were read."""

        def __init__(self, sizes: tuple[int | None, ...]) -> None:
            super().__init__()
            self.sizes = sizes

    class Highlighted(Message):
        """The highlighted file changed (or was selected again with ``reload``).

        ``path`` is the file when it is an image, else ``None`` (nothing to preview).
        """

        def __init__(self, path: Path | None, reload: bool = False) -> None:
            super().__init__()
            self.path = path
            self.reload = reload

    def __init__(self) -> None:
        super().__init__()
        self.directory: Path | None = None
        self.names: tuple[str, ...] = ()
        self.sizes: tuple[int | None, ...] = ()
        self.highlighted: int | None = None

    def show_media(self, directory: Path, names: tuple[str, ...]) -> None:
        """List ``names`` (relative to ``directory``), then fill in their sizes.

        The highlight stays on the same file when it is still listed.
        """
        if (directory, names) == (self.directory, self.names):
            return
        kept = self.highlighted_name if directory == self.directory else None
        self.directory, self.names, self.sizes = directory, names, ()
        self.highlighted = names.index(kept) if kept in names else None
        if kept is not None and self.highlighted is None:
            self.post_message(self.Highlighted(None))
        self._draw()
        if names:
            self._stat(directory, names)

    @property
    def highlighted_name(self) -> str | None:
        """The name of the highlighted file, if any."""
        if self.highlighted is None or not 0 <= self.highlighted < len(self.names):
            return None
        return self.names[self.highlighted]

    def highlighted_image(self) -> Path | None:
        """The highlighted file when it is an image, else ``None``."""
        name = self.highlighted_name
        if name is None or self.directory is None or not is_image(name):
            return None
        return self.directory / name

    def highlight(self, index: int | None) -> None:
        """Move the highlight to ``index`` (clamped); announce it when it changed."""
        if index is not None:
            index = max(0, min(len(self.names) - 1, index)) if self.names else None
        if index == self.highlighted:
            return
        self.highlighted = index
        self._draw()
        self.reveal_highlight()
        self.post_message(self.Highlighted(self.highlighted_image()))

    def reveal_highlight(self) -> None:
        """Scroll the container so the highlighted row is on screen."""
        if self.highlighted is not None and isinstance(self.parent, Widget):
            # Line 0 is the heading, file i is on line i + 1.
            row = self.virtual_region.y + self.highlighted + 1
            self.parent.scroll_to_region(
                Region(0, row, 1, 1), animate=False, immediate=True, x_axis=False
            )

    def action_move(self, delta: int) -> None:
        """Highlight the next (``1``) or previous (``-1``) file."""
        if self.highlighted is None:
            self.highlight(0 if delta > 0 else len(self.names) - 1)
        else:
            self.highlight(self.highlighted + delta)

    def action_move_to(self, index: int) -> None:
        """Highlight the first (``0``) or last (``-1``) file."""
        self.highlight(index if index >= 0 else len(self.names) - 1)

    def action_select(self) -> None:
        """Preview the highlighted file again, read afresh."""
        if self.highlighted is None:
            self.action_move(1)
            return
        self.post_message(self.Highlighted(self.highlighted_image(), reload=True))

    def on_focus(self) -> None:
        if self.highlighted is None and self.names:
            images = [i for i, name in enumerate(self.names) if is_image(name)]
            self.highlight(images[0] if images else 0)
        else:
            self._draw()

    def on_blur(self) -> None:
        self._draw()

    def on_click(self, event: Click) -> None:
        offset = event.get_content_offset(self)
        if offset is not None and 1 <= offset.y <= len(self.names):
            self.focus()
            self.highlight(offset.y - 1)

    @work(thread=True, exclusive=True, group="media")
    def _stat(self, directory: Path, names: tuple[str, ...]) -> None:
        sizes: list[int | None] = []
        for name in names:
            if get_current_worker().is_cancelled:
                return
            try:
                sizes.append(os.stat(directory / name, follow_symlinks=False).st_size)
            except (OSError, ValueError):
                sizes.append(None)
        self.post_message(self.Sized(tuple(sizes)))

    @on(Sized)
    def sized(self, message: Sized) -> None:
        message.stop()
        if len(message.sizes) == len(self.names):
            self.sizes = message.sizes
            self._draw()

    def _draw(self) -> None:
        # One line per file (no wrapping), so file i is always on line i + 1.
        text = Text(no_wrap=True, overflow="ellipsis")
        text.append("media", style="bold")
        if not self.names:
            text.append("  no files logged", style="dim")
            self.update(text)
            return
        text.append(f"  {len(self.names)} file(s) in ", style="dim")
        text.append(sanitize(str(self.directory), 400))
        shown = [sanitize(name, 200) for name in self.names]
        width = min(48, max(len(name) for name in shown))
        cursor = self.get_component_rich_style("media-list--cursor", partial=True)
        images = 0
        for i, name in enumerate(shown):
            size = self.sizes[i] if i < len(self.sizes) else None
            image = is_image(name)
            images += image
            text.append("\n")
            start = len(text)
            text.append("  ")
            text.append(name.ljust(width), style="bold" if image else "")
            text.append(f"  {human_size(size):>9}")
            if image:
                text.append("  image", style="magenta")
            if i == self.highlighted:
                text.stylize(cursor, start, len(text))
        if images:
            text.append("\n  ")
            if pillow_available():
                text.append("m: to this list · ↑↓ highlight an image to see it below", style="dim")
            else:
                text.append(NO_PILLOW, style="dim")
        self.update(text)
