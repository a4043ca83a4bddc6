"""Every key binding of the screen underneath, generated from the bindings themselves."""

from __future__ import annotations

from rich.table import Table
from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import VerticalScroll
from textual.screen import ModalScreen, Screen
from textual.widgets import Static


def bindings_of(screen: Screen[object]) -> list[tuple[str, str]]:
    """(keys, description) for the screen's and the app's bindings, in declaration order."""
    rows: list[tuple[str, str]] = []
    seen: set[str] = set()
    for owner in (screen, screen.app):
        for binding in owner.BINDINGS:
            if not isinstance(binding, Binding) or binding.action in seen:
                continue
            seen.add(binding.action)
            key = binding.key_display or binding.key
            rows.append(
                (key.replace("question_mark", "?").replace("slash", "/"), binding.description)
            )
    return rows


class HelpScreen(ModalScreen[None]):
    """Keys of the current screen (escape, q or ? closes)."""

    BINDINGS = [
        Binding("escape", "dismiss", "Close"),
        Binding("q", "dismiss", "Close", show=False),
        Binding("question_mark", "dismiss", "Close", show=False),
    ]

    def __init__(self, under: Screen[object]) -> None:
        super().__init__()
        self.under = under

    def compose(self) -> ComposeResult:
        table = Table(
            title=Text(f"Keys — {type(self.under).__name__.removesuffix('Screen') or 'main'}"),
            expand=True,
        )
        table.add_column("key", style="bold cyan", no_wrap=True)
        table.add_column("action")
        for key, description in bindings_of(self.under):
            table.add_row(Text(key), Text(description))
        table.add_row(Text("ctrl+p"), Text("command palette: every action by name"))
        with VerticalScroll(classes="dialog", id="help"):
            yield Static(table)
