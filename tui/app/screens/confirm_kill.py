"""The kill confirmation: names every run, host, user, pid and command line first."""

from __future__ import annotations

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Button, Label, Static

from tui.core.procs import KillPlan


class ConfirmKill(ModalScreen[bool]):
    """Answer True to signal the planned processes; anything else cancels."""

    CSS_PATH = "confirm_kill.tcss"
    BINDINGS = [
        Binding("y", "answer(True)", "Yes, signal"),
        Binding("n", "answer(False)", "No"),
        Binding("escape", "answer(False)", "Cancel"),
        Binding("q", "answer(False)", "Cancel", show=False),  # not the app's quit
    ]

    def __init__(self, plans: list[KillPlan], signal: str, grace: float) -> None:
        super().__init__()
        self.plans = plans
        self.signal = signal
        self.grace = grace

    def compose(self) -> ComposeResult:
        count = sum(len(p.processes) for p in self.plans)
        what = f"Send {self.signal} to {count} process{'es' if count != 1 else ''} of {len(self.plans)} run{'s' if len(self.plans) != 1 else ''}?"
        if self.signal == "SIGTERM":
            what += f"  Survivors get SIGKILL after {self.grace:g} s."
        with Vertical(classes="dialog", id="confirm-kill"):
            yield Label(Text(what, style="bold red"))
            with VerticalScroll(id="plans"):
                for plan in self.plans:
                    yield Static(Text("\n".join(plan.describe())))  # sanitized by procs; plain text
            with Horizontal(classes="buttons"):
                yield Button("Yes, signal (y)", variant="error", id="yes")
                yield Button("No (n)", variant="primary", id="no")

    def on_mount(self) -> None:
        self.query_one("#no", Button).focus()

    def on_button_pressed(self, event: Button.Pressed) -> None:
        self.dismiss(event.button.id == "yes")

    def action_answer(self, yes: bool) -> None:
        self.dismiss(yes)
