"""``ColumnChooser``: which columns the run table shows, and in what order."""

from __future__ import annotations

from collections.abc import Sequence

from rich.text import Text
from textual import on
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.screen import ModalScreen
from textual.widgets import Label, Static

from tui.app.widgets.choice_list import Choice, ChoiceList

HINT = "space show/hide · shift+↑↓ move · enter apply · esc cancel"
PROMPT = "type to filter: part of a column's name"


class ColumnChooser(ModalScreen[tuple[Choice, ...] | None]):
    """Show, hide and order the table's columns; the answer is every choice in its new
    order with its new tick (``None`` when cancelled).

    The list has the focus and every key but enter and escape: typing filters it.
    """

    CSS_PATH = "column_chooser.tcss"
    BINDINGS = [
        Binding("escape", "cancel", "Cancel"),
        Binding("enter", "apply", "Apply"),
    ]

    def __init__(self, choices: Sequence[Choice]) -> None:
        super().__init__()
        self.choices = choices

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog", id="column-chooser"):
            yield Label(Text("Columns of the run table", style="bold"))
            yield Static(Text(HINT), id="column-hint")
            yield Static(Text(PROMPT, style="dim"), id="column-filter")
            yield ChoiceList(self.choices, id="column-list")

    @property
    def listing(self) -> ChoiceList:
        return self.query_one(ChoiceList)

    def on_mount(self) -> None:
        self.listing.focus()

    def on_resize(self) -> None:
        """Let the list take the lines the dialog has left, so its end is never cut off
        (the lines above it are one line each: they do not wrap)."""
        dialog = self.query_one("#column-chooser")
        listing = self.listing
        room = dialog.styles.max_height
        if room is None:
            return
        above = sum(w.styles.margin.height + 1 for w in dialog.children if w is not listing)
        chrome = dialog.styles.gutter.height + above + listing.styles.margin.height
        listing.styles.max_height = max(3, int(room.resolve(self.size, self.size)) - chrome)

    @on(ChoiceList.Filtered)
    def show_filter(self, event: ChoiceList.Filtered) -> None:
        """Echo what was typed (a column's name is untrusted: shown as Text)."""
        shown = Text(PROMPT, style="dim")
        if event.text:
            shown = Text.assemble(("filter: ", "dim"), event.text, ("▏", "dim"))
        self.query_one("#column-filter", Static).update(shown, layout=False)  # one line

    def action_apply(self) -> None:
        """Use these columns."""
        self.dismiss(tuple(self.listing.choices))

    def action_cancel(self) -> None:
        """Keep the columns as they were."""
        self.dismiss(None)
