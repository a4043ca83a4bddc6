"""``ChoiceList``: a long list of options to show or hide and put in order, in sections.

Drawn line by line (only the rows on screen are rendered), so hundreds or thousands of
options stay quick to scroll, filter, toggle and move. Labels come from runs: each is drawn
as a :class:`~rich.text.Text`, never parsed as markup.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import ClassVar

from rich.cells import cell_len
from rich.text import Text
from textual import events
from textual.binding import Binding, BindingType
from textual.geometry import Size
from textual.message import Message
from textual.reactive import reactive
from textual.scroll_view import ScrollView
from textual.strip import Strip

from tui.core.sanitize import sanitize


@dataclass(frozen=True)
class Choice:
    """One option of a :class:`ChoiceList`.

    Attributes:
        key: what the option stands for (unique in the list).
        label: what it is called on screen (untrusted text, drawn as it is).
        group: the title of its section; options of one section are listed together.
        shown: ticked.
        note: a dim remark after the label.
    """

    key: str
    label: str
    group: str
    shown: bool
    note: str = ""


class ChoiceList(ScrollView, can_focus=True):
    """Options in sections, each ticked or not, in an order the user can change.

    The list owns its state: :attr:`choices` is the current order and ticks. Typing filters:
    printable keys (but space, which ticks) go to :attr:`filter_text`, which narrows the
    rows to options whose label or key holds it. Moving an option swaps it with the option
    listed next to it in its section, so options the filter hides keep their places. The
    list runs its keys as they reach it, in the order typed (a fast ``down space`` ticks the
    option below).
    """

    DEFAULT_CSS = """
    ChoiceList {
        height: auto;
        overflow-x: hidden;
        background: $surface;
    }
    ChoiceList > .choice-list--cursor {
        background: $block-cursor-blurred-background;
    }
    ChoiceList:focus > .choice-list--cursor {
        background: $block-cursor-background;
        color: $block-cursor-foreground;
        text-style: bold;
    }
    ChoiceList > .choice-list--group {
        color: $accent;
        text-style: bold;
    }
    ChoiceList > .choice-list--note {
        color: $text-muted;
    }
    """

    COMPONENT_CLASSES: ClassVar[set[str]] = {
        "choice-list--cursor",
        "choice-list--group",
        "choice-list--note",
    }

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("space", "toggle_choice", "Show/hide"),
        Binding("shift+up,ctrl+up", "move(-1)", "Move up", key_display="shift+↑"),
        Binding("shift+down,ctrl+down", "move(1)", "Move down", key_display="shift+↓"),
        Binding("up", "step(-1)", "Up", show=False),
        Binding("down", "step(1)", "Down", show=False),
        Binding("pageup", "page(-1)", "Page up", show=False),
        Binding("pagedown", "page(1)", "Page down", show=False),
        Binding("home", "first", "First", show=False),
        Binding("end", "last", "Last", show=False),
        Binding("backspace", "erase(1)", "Erase a letter of the filter", show=False),
        Binding("ctrl+u", "erase(-1)", "Clear the filter", show=False),
    ]

    cursor: reactive[int] = reactive(0, always_update=True, repaint=False)
    """Index of the highlighted row (always an option's row while any is listed)."""
    filter_text: reactive[str] = reactive("", repaint=False)
    """Only options whose label or key holds this text (any case) are listed."""

    class Filtered(Message):
        """The filter text changed (to ``text``)."""

        def __init__(self, text: str) -> None:
            super().__init__()
            self.text = text

    def __init__(self, choices: Sequence[Choice], *, id: str | None = None) -> None:
        super().__init__(id=id)
        groups: dict[str, list[Choice]] = {}
        for choice in choices:
            groups.setdefault(choice.group, []).append(choice)
        self.choices: list[Choice] = [c for members in groups.values() for c in members]
        """Every option, section by section, in the current order, with its tick."""
        self._totals = {group: len(members) for group, members in groups.items()}
        self._ticked = {group: sum(c.shown for c in members) for group, members in groups.items()}
        # Notes line up after the labels (a label longer than half the width pushes its note on).
        self._label_width = max((cell_len(c.label) for c in self.choices), default=0)
        self._rows: list[int | str] = []  # an option's index in choices, or a section title
        self._rebuild_rows()
        self._all_rows = len(self._rows)

    # State --------------------------------------------------------------------------------
    def watch_filter_text(self, text: str) -> None:
        current = self.current
        self._rebuild_rows()
        # The highlighted option stays highlighted while it is listed, else the first one.
        self.cursor = next((r for r, e in enumerate(self._rows) if e == current), 0)
        self.post_message(self.Filtered(text))

    @property
    def current(self) -> int | None:
        """Index in :attr:`choices` of the highlighted option."""
        if 0 <= self.cursor < len(self._rows):
            entry = self._rows[self.cursor]
            return entry if isinstance(entry, int) else None
        return None

    @property
    def listed(self) -> list[Choice]:
        """The options the filter lets through, in order."""
        return [self.choices[e] for e in self._rows if isinstance(e, int)]

    def _rebuild_rows(self) -> None:
        needle = self.filter_text.lower()
        rows: list[int | str] = []
        group = None
        for index, choice in enumerate(self.choices):
            if needle and needle not in choice.label.lower() and needle not in choice.key.lower():
                continue
            if choice.group != group:
                group = choice.group
                rows.append(group)
            rows.append(index)
        self._rows = rows
        self.virtual_size = Size(0, max(1, len(rows)))

    def action_toggle_choice(self) -> None:
        """Tick the highlighted option, or untick it."""
        index = self.current
        if index is None:
            return
        choice = self.choices[index]
        self.choices[index] = replace(choice, shown=not choice.shown)
        self._ticked[choice.group] += -1 if choice.shown else 1
        self.refresh()

    def action_move(self, delta: int) -> None:
        """Swap the highlighted option with the one listed above (-1) or below (+1) it in its
        section; the cursor follows it."""
        index = self.current
        row = self.cursor + delta
        if index is None or not 0 <= row < len(self._rows):
            return
        other = self._rows[row]
        if not isinstance(other, int):
            return  # the edge of its section
        choices = self.choices
        choices[index], choices[other] = choices[other], choices[index]
        self.cursor = row
        self.refresh()

    # Keys -------------------------------------------------------------------------------
    # The list runs its own bindings as each key reaches it. Left to the app, a binding runs
    # only after the key has bubbled up to it, so a letter typed after ``down`` would filter
    # before the cursor moved.
    def check_consume_key(self, key: str, character: str | None) -> bool:
        # Letters are the filter's, not the app's bindings (q, K...); space ticks.
        return character is not None and character.isprintable() and character != " "

    async def on_key(self, event: events.Key) -> None:
        if self.check_consume_key(event.key, event.character):
            assert event.character is not None
            event.stop()
            event.prevent_default()
            self.filter_text += event.character
            return
        action = _ACTIONS.get(event.key)
        if action is not None:
            event.stop()
            event.prevent_default()
            await self.run_action(action)

    def on_paste(self, event: events.Paste) -> None:
        event.stop()
        lines = event.text.splitlines()
        if lines:
            self.filter_text += sanitize(lines[0], 200)

    def action_erase(self, letters: int) -> None:
        """Erase the last ``letters`` of the filter (-1: all of it)."""
        self.filter_text = "" if letters < 0 else self.filter_text[:-letters]

    # Cursor -------------------------------------------------------------------------------
    def on_mount(self) -> None:
        self.cursor = self.cursor  # onto the first option, past its section's title

    def validate_cursor(self, row: int) -> int:
        rows = self._rows
        if not rows:
            return 0
        row = max(0, min(row, len(rows) - 1))
        if isinstance(rows[row], int):
            return row
        # A section title: the option after it, or (at the end) the one before it.
        after = next((r for r in range(row + 1, len(rows)) if isinstance(rows[r], int)), None)
        if after is not None:
            return after
        return next(r for r in range(row - 1, -1, -1) if isinstance(rows[r], int))

    def watch_cursor(self) -> None:
        height = max(1, self.size.height)
        top = int(self.scroll_y)
        target = self.cursor
        if target and not isinstance(self._rows[target - 1], int):
            target -= 1  # keep the section title in sight above its first option
        if target < top:
            self.scroll_to(y=target, animate=False)
        elif self.cursor >= top + height:
            self.scroll_to(y=self.cursor - height + 1, animate=False)
        self.refresh()

    def action_step(self, delta: int) -> None:
        """Move the cursor ``delta`` options (a section title is stepped over)."""
        row = self.cursor + delta
        while 0 <= row < len(self._rows) and not isinstance(self._rows[row], int):
            row += 1 if delta > 0 else -1
        if 0 <= row < len(self._rows):
            self.cursor = row

    def action_first(self) -> None:
        self.cursor = 0

    def action_last(self) -> None:
        self.cursor = len(self._rows) - 1

    def action_page(self, delta: int) -> None:
        """Move the cursor a screenful up (-1) or down (+1)."""
        self.cursor += delta * max(1, self.size.height - 1)

    def on_click(self, event: events.Click) -> None:
        row = int(self.scroll_y) + event.y
        if 0 <= row < len(self._rows) and isinstance(self._rows[row], int):
            self.cursor = row
            self.action_toggle_choice()

    # Rendering ----------------------------------------------------------------------------
    def get_content_height(self, container: Size, viewport: Size, width: int) -> int:
        # Every row, whatever the filter: the list keeps its size while the user types.
        return max(1, self._all_rows)

    def _group_line(self, group: str) -> Text:
        line = Text()
        line.append(group, style=self.get_component_rich_style("choice-list--group", partial=True))
        line.append(
            f"  {self._ticked[group]} of {self._totals[group]} shown",
            style=self.get_component_rich_style("choice-list--note", partial=True),
        )
        return line

    def _choice_line(self, choice: Choice) -> Text:
        line = Text(" [x] " if choice.shown else " [ ] ")
        line.append(choice.label, style="" if choice.shown else "dim")
        if choice.note:
            column = min(self._label_width, self.size.width // 2 - 5)
            line.pad_right(max(0, column - cell_len(choice.label)))
            line.append(
                f"  {choice.note}",
                style=self.get_component_rich_style("choice-list--note", partial=True),
            )
        return line

    def render_line(self, y: int) -> Strip:
        width = self.size.width
        base = self.rich_style
        row = int(self.scroll_y) + y
        if not self._rows and y == 0:
            line = Text(f" nothing matches “{self.filter_text}”", style="italic")
        elif row >= len(self._rows):
            return Strip.blank(width, base)
        else:
            entry = self._rows[row]
            if isinstance(entry, str):
                line = self._group_line(entry)
            else:
                line = self._choice_line(self.choices[entry])
        line.truncate(width, overflow="ellipsis", pad=True)
        style = base
        if row == self.cursor and self._rows:
            style = base + self.get_component_rich_style("choice-list--cursor")
        segments = list(line.render(self.app.console))
        return Strip(segments).apply_style(style).crop_extend(0, width, style)

    def notify_style_update(self) -> None:
        super().notify_style_update()
        self.refresh()


_ACTIONS = {
    key.strip(): binding.action
    for binding in ChoiceList.BINDINGS
    if isinstance(binding, Binding)
    for key in binding.key.split(",")
}
"""Key -> action of the list's own bindings."""
