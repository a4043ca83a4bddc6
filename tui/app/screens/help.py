"""Every key binding of the screen underneath, generated from the bindings themselves."""

from __future__ import annotations

from rich.table import Table
from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import VerticalScroll
from textual.dom import DOMNode
from textual.screen import ModalScreen, Screen
from textual.widgets import Static


def bindings_of(screen: Screen[object]) -> list[tuple[DOMNode, Binding]]:
    """(owner, binding) for the bindings a key reaches: the focused widget's and its
    containers' (a chart board around the focused chart grid) up to the screen, then the
    app's.

    Each action and each key is listed once, as Textual resolves it: the focused widget's
    binding of a key first, so the table's ``enter`` stands for the screen's.
    """
    rows: list[tuple[DOMNode, Binding]] = []
    seen: set[str] = set()
    keys_seen: set[str] = set()
    owners: list[DOMNode] = []
    node: DOMNode | None = screen.focused
    while node is not None and node is not screen:
        owners.append(node)
        node = node.parent
    owners += [screen, screen.app]
    for owner in owners:
        for binding in owner.BINDINGS:
            if (
                not isinstance(binding, Binding)
                or binding.action in seen
                or not binding.description
            ):
                continue
            keys = {k.strip() for k in binding.key.split(",")}
            if keys <= keys_seen:
                continue
            seen.add(binding.action)
            keys_seen |= keys
            rows.append((owner, binding))
    return rows


KEY_NAMES = {
    "question_mark": "?",
    "slash": "/",
    "tilde": "~",
    "plus": "+",
    "minus": "-",
    "equals_sign": "=",
    "underscore": "_",
    "left_square_bracket": "[",
    "right_square_bracket": "]",
    "comma": ",",
    "full_stop": ".",
}


def key_names(binding: Binding) -> list[str]:
    """Each key of a binding as it reads on a keyboard: ``?`` rather than ``question_mark``."""
    names = [KEY_NAMES.get(k.strip(), k.strip()) for k in binding.key.split(",")]
    if binding.key_display and binding.key_display not in names:
        names[0] = binding.key_display
    return names


def key_label(binding: Binding) -> str:
    """The keys of a binding for the help screen."""
    return ", ".join(key_names(binding))


class HelpScreen(ModalScreen[None]):
    """Keys of the current screen (escape, q or ? closes)."""

    CSS_PATH = "help.tcss"
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
        for _owner, binding in bindings_of(self.under):
            table.add_row(Text(key_label(binding)), Text(binding.description))
        table.add_row(Text("ctrl+p"), Text("command palette: every action by name"))
        with VerticalScroll(classes="dialog", id="help"):
            yield Static(table)
