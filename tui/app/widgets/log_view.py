"""``LogView``: the tail of a run's log, followed live and searchable.

Lines arrive sanitized from the store; they are still drawn only as plain ``Text`` (never
markup), so a line such as ``[@click=app.quit]`` shows literally and carries no action.
Lines are numbered from the start of the log, so a search keeps its place while old lines
fall off the front of the kept tail.
"""

from __future__ import annotations

from collections.abc import Sequence

from rich.text import Text
from textual import on
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.widgets import Input, Static

from tui.app.widgets.log_lines import LogLines
from tui.core.sanitize import sanitize


class LogView(Vertical):
    """A log tail with follow mode (``f``) and search (``/``, ``n``, ``N``)."""

    BINDINGS = [
        Binding("f", "toggle_follow", "Follow"),
        Binding("slash", "search", "Search", key_display="/"),
        Binding("n", "next_match(1)", "Next"),
        Binding("N", "next_match(-1)", "Previous", key_display="N"),
        Binding("escape", "close_search", "Close search", show=False),
    ]

    DEFAULT_CSS = """
    LogView {
        height: 1fr;
    }
    LogView > #log-search {
        height: 3;
        display: none;
    }
    LogView > #log-search.open {
        display: block;
    }
    LogView > #log-status {
        height: 1;
        color: $text-muted;
        padding: 0 1;
    }
    """

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self.follow = True
        self.total = 0
        self.match_numbers: list[int] = []

    def compose(self) -> ComposeResult:
        yield LogLines()
        yield Input(
            placeholder="search the log (plain text, any case); enter jumps", id="log-search"
        )
        yield Static(id="log-status")

    @property
    def lines_view(self) -> LogLines:
        """The scrolling lines."""
        return self.query_one(LogLines)

    def show_lines(self, lines: Sequence[str], total: int) -> None:
        """Show the kept tail ``lines`` of a log that has had ``total`` lines in all."""
        view = self.lines_view
        self.total = total
        view.set_lines(lines, max(0, total - len(lines)))
        if view.query_text:
            self.match_numbers = view.matches()
        if self.follow:
            view.follow_end()
        self._show_status()

    def _show_status(self) -> None:
        view = self.lines_view
        status = Text(no_wrap=True, overflow="ellipsis")
        if not self.total:
            status.append("no log lines yet")
        else:
            status.append(f"{self.total} lines")
            if self.total > len(view.lines):
                status.append(f" (the last {len(view.lines)} kept)")
        status.append(" · follow " + ("on" if self.follow else "off") + " (f)")
        if view.query_text:
            status.append(" · search ")
            status.append(view.query_text, style="bold")
            if self.match_numbers:
                if view.current in self.match_numbers:
                    place = self.match_numbers.index(view.current) + 1
                    status.append(f": match {place} of {len(self.match_numbers)} (n/N)")
                else:
                    status.append(f": {len(self.match_numbers)} matches (n/N)")
            else:
                status.append(": no match", style="bold red")
        else:
            status.append(" · / search")
        self.query_one("#log-status", Static).update(status)

    # Follow -----------------------------------------------------------------------------
    @on(LogLines.FollowChanged)
    def follow_changed(self, message: LogLines.FollowChanged) -> None:
        """Scrolling up stops following; end (or G) starts it again."""
        message.stop()
        if message.follow != self.follow:
            self.follow = message.follow
            self._show_status()

    def action_toggle_follow(self) -> None:
        """Keep the newest line in view as lines arrive (or stop doing so)."""
        self.follow = not self.follow
        if self.follow:
            self.lines_view.follow_end()
        self._show_status()

    # Search -----------------------------------------------------------------------------
    def action_search(self) -> None:
        """Open the search field."""
        field = self.query_one("#log-search", Input)
        field.add_class("open")
        field.value = self.lines_view.query_text
        field.focus()

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        if action == "close_search":
            # Otherwise escape goes on to the screen (back to the run table).
            return self.query_one("#log-search", Input).has_class("open")
        if action == "next_match":
            return True if self.lines_view.query_text else None
        return True

    def action_close_search(self) -> None:
        """Close the search field (the matches stay highlighted)."""
        self.query_one("#log-search", Input).remove_class("open")
        self.lines_view.focus()

    @on(Input.Submitted, "#log-search")
    def search_submitted(self, event: Input.Submitted) -> None:
        """Search for the text and jump to the first match at or below the view's top."""
        event.stop()
        self.search(event.value)
        self.action_close_search()

    def search(self, text: str) -> None:
        """Highlight ``text`` and jump to its first match from the top of the view down."""
        view = self.lines_view
        view.query_text = sanitize(text.strip(), 200)
        view.current = None
        self.match_numbers = view.matches()
        if self.match_numbers:
            top = view.first + int(view.scroll_y)
            after = [n for n in self.match_numbers if n >= top]
            self._jump(after[0] if after else self.match_numbers[0])
        else:
            view.refresh()
            self._show_status()

    def action_next_match(self, direction: int) -> None:
        """Jump to the next (1) or previous (-1) match, wrapping around."""
        numbers = self.match_numbers
        if not numbers:
            return
        current = self.lines_view.current
        if current is None:
            target = numbers[0] if direction > 0 else numbers[-1]
        elif direction > 0:
            later = [n for n in numbers if n > current]
            target = later[0] if later else numbers[0]
        else:
            earlier = [n for n in numbers if n < current]
            target = earlier[-1] if earlier else numbers[-1]
        self._jump(target)

    def _jump(self, number: int) -> None:
        view = self.lines_view
        # Jumping means reading: stop following so new lines do not pull the view away.
        self.follow = False
        view.current = number
        view.scroll_to_number(number)
        view.refresh()
        self._show_status()
