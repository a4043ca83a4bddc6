"""Small keyboard pickers: choose one option, or toggle several."""

from __future__ import annotations

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.screen import ModalScreen
from textual.widgets import Label, OptionList, SelectionList
from textual.widgets.option_list import Option


class PickOne(ModalScreen[str | None]):
    """Pick one option (enter), or cancel (escape)."""

    BINDINGS = [Binding("escape", "cancel", "Cancel"), Binding("q", "cancel", "Cancel", show=False)]

    def __init__(
        self, title: str, options: list[tuple[str, str]], current: str | None = None
    ) -> None:
        super().__init__()
        self.title_text = title
        self.options = options
        self.current = current

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog"):
            yield Label(Text(self.title_text, style="bold"))
            yield OptionList(*(Option(Text(label), id=key) for key, label in self.options))

    def on_mount(self) -> None:
        listing = self.query_one(OptionList)
        keys = [key for key, _ in self.options]
        if self.current in keys:
            listing.highlighted = keys.index(self.current)
        listing.focus()

    def on_option_list_option_selected(self, event: OptionList.OptionSelected) -> None:
        self.dismiss(event.option.id)

    def action_cancel(self) -> None:
        self.dismiss(None)


class PickMany(ModalScreen[list[str] | None]):
    """Toggle options with space, confirm with enter, cancel with escape."""

    BINDINGS = [
        Binding("escape", "cancel", "Cancel"),
        Binding("q", "cancel", "Cancel", show=False),
        Binding("enter", "confirm", "Apply", priority=True),  # the list would take enter
    ]

    def __init__(self, title: str, options: list[str], chosen: list[str]) -> None:
        super().__init__()
        self.title_text = title
        self.options = options
        self.chosen = chosen

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog"):
            yield Label(Text(f"{self.title_text}  (space toggles, enter applies)", style="bold"))
            yield SelectionList[str](*((Text(o), o, o in self.chosen) for o in self.options))

    def on_mount(self) -> None:
        self.query_one(SelectionList).focus()

    def action_confirm(self) -> None:
        picked = set(self.query_one(SelectionList).selected)
        self.dismiss([o for o in self.options if o in picked])

    def action_cancel(self) -> None:
        self.dismiss(None)
