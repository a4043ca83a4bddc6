"""``LogLines``: the scrolling, numbered lines of a log, with search matches highlighted.

Lines are drawn only as plain ``Text`` (never markup), so a line such as
``[@click=app.quit]`` shows literally and carries no action.
"""

from __future__ import annotations

from collections.abc import Sequence

from rich.cells import cell_len
from rich.segment import Segment
from rich.style import Style
from rich.text import Text
from textual.binding import Binding
from textual.geometry import Size
from textual.message import Message
from textual.scroll_view import ScrollView
from textual.strip import Strip

_GUTTER = Style(dim=True)
_MATCH = Style(bgcolor="yellow", color="black")
_CURRENT = Style(bgcolor="bright_yellow", color="black", bold=True)
_CURRENT_LINE = Style(reverse=True)


class LogLines(ScrollView, can_focus=True):
    """The scrolling lines of a log, with search matches highlighted."""

    BINDINGS = [
        Binding("g", "scroll_home", "Top", show=False),
        Binding("G", "scroll_end", "Bottom, follow", show=False),
    ]

    DEFAULT_CSS = """
    LogLines {
        height: 1fr;
    }
    """

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self.lines: list[str] = []
        self.first = 0
        """Number (0-based, counted from the log's start) of ``lines[0]``."""
        self.query_text = ""
        self.current: int | None = None
        """Line number of the current match."""
        self._widest = 0

    class FollowChanged(Message):
        """The user scrolled away from the end (stop following) or back to it with end/G."""

        def __init__(self, follow: bool) -> None:
            super().__init__()
            self.follow = follow

    def set_lines(self, lines: Sequence[str], first: int) -> None:
        """Show ``lines``, the first of which is line number ``first`` of the log."""
        old_end = self.first + len(self.lines)
        if self.first <= first <= old_end <= first + len(lines):
            # The usual case: lines appended (and maybe some dropped from the front).
            start = old_end - first
        else:
            start, self._widest = 0, 0
        self.lines = list(lines)
        self.first = first
        for line in self.lines[start:]:
            width = cell_len(line)
            if width > self._widest:
                self._widest = width
        self.virtual_size = Size(self.gutter_width() + self._widest, len(self.lines))
        self.refresh()

    def watch_scroll_y(self, old_value: float, new_value: float) -> None:
        super().watch_scroll_y(old_value, new_value)
        if new_value < old_value and new_value < self.max_scroll_y:
            # Scrolled up by the user (following only ever scrolls down).
            self.post_message(self.FollowChanged(False))

    def follow_end(self) -> None:
        """Bring the newest line into view (in this frame once the view has a size)."""
        if self.size.height:
            # force: the scrollbar that the new lines call for is only added at the next
            # layout, and without it a scroll would be refused.
            self.scroll_to(y=self.max_scroll_y, animate=False, force=True, immediate=True)
        else:
            self.scroll_end(animate=False, x_axis=False)

    def action_scroll_end(self) -> None:
        """Go to the newest line and follow new ones."""
        self.follow_end()
        self.post_message(self.FollowChanged(True))

    def gutter_width(self) -> int:
        """Cells taken by the line numbers."""
        return len(str(self.first + len(self.lines))) + 1

    def line_text(self, index: int) -> Text:
        """Line ``index`` (into :attr:`lines`) as plain ``Text`` with matches highlighted."""
        line = self.lines[index]
        text = Text(line, no_wrap=True, end="")
        needle = self.query_text.lower()
        if needle:
            number = self.first + index
            style = _CURRENT if number == self.current else _MATCH
            haystack = line.lower()
            start = haystack.find(needle)
            while start >= 0:
                text.stylize(style, start, start + len(needle))
                start = haystack.find(needle, start + len(needle))
        return text

    def render_line(self, y: int) -> Strip:
        """Draw screen row ``y``: a line number, then the line scrolled sideways."""
        scroll_x, scroll_y = self.scroll_offset
        index = scroll_y + y
        width = self.size.width
        base = self.rich_style
        if index >= len(self.lines):
            return Strip.blank(width, base)
        gutter = self.gutter_width()
        number = self.first + index
        head_style = _GUTTER + (_CURRENT_LINE if number == self.current else Style())
        head = Strip([Segment(str(number + 1).rjust(gutter - 1) + " ", head_style)], gutter)
        segments = list(self.line_text(index).render(self.app.console))
        body = Strip(segments).crop_extend(scroll_x, scroll_x + max(0, width - gutter), base)
        return Strip.join([head, body]).crop_extend(0, width, base).apply_style(base)

    def matches(self) -> list[int]:
        """Line numbers holding the search text (case-insensitive)."""
        needle = self.query_text.lower()
        if not needle:
            return []
        return [self.first + i for i, line in enumerate(self.lines) if needle in line.lower()]

    def scroll_to_number(self, number: int) -> None:
        """Scroll so line ``number`` is in view, a few lines below the top."""
        index = number - self.first
        self.scroll_to(y=max(0, index - 3), animate=False)
