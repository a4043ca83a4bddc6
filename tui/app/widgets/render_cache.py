"""``RenderCache``: the last drawing of a plot widget, kept while nothing it shows changed."""

from __future__ import annotations

from collections.abc import Callable

from rich.text import Text


class RenderCache:
    """The last drawing of a widget, kept until something it depends on changes.

    plotext builds are the expensive part of a chart; Textual asks for ``render`` on
    every refresh, so each plot widget keys its drawing on what it depends on.
    """

    def __init__(self) -> None:
        self._key: tuple[object, ...] | None = None
        self._drawing: Text | None = None

    def get(self, key: tuple[object, ...], draw: Callable[[], Text]) -> Text:
        """The drawing for ``key``: the kept one, or a new one from ``draw``."""
        if self._drawing is None or self._key != key:
            self._drawing, self._key = draw(), key
        return self._drawing
