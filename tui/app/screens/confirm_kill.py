"""The kill confirmation: names every run, host, user, pid and command line first."""

from __future__ import annotations

from collections.abc import Mapping

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Button, Label, Static

from tui.core.procs import KillPlan
from tui.core.sizes import human_bytes


def gpu_freed(plan: KillPlan, gpu: Mapping[int, tuple[int, int]]) -> str | None:
    """``frees 12.0 GiB of GPU memory (GPU 0: 8.0 GiB, GPU 1: 4.0 GiB)``, or ``None`` when
    no GPU was read or the kill signals no process here (a Slurm job)."""
    if not gpu or plan.tree is None:
        return None
    per_device: dict[int, int] = {}
    for process in plan.processes:
        held = gpu.get(process.pid)
        if held is not None:
            per_device[held[1]] = per_device.get(held[1], 0) + held[0]
    if not per_device:
        return "holds no GPU memory"
    parts = ", ".join(f"GPU {i}: {human_bytes(b)}" for i, b in sorted(per_device.items()))
    return f"frees {human_bytes(sum(per_device.values()))} of GPU memory ({parts})"


class ConfirmKill(ModalScreen[bool]):
    """Answer True to signal the planned processes; anything else cancels.

    ``gpu`` (``pid -> (bytes, GPU)``, read just before asking) adds the GPU memory each
    run's kill frees.
    """

    CSS_PATH = "confirm_kill.tcss"
    BINDINGS = [
        Binding("y", "answer(True)", "Yes, signal"),
        Binding("n", "answer(False)", "No"),
        Binding("escape", "answer(False)", "Cancel"),
        Binding("q", "answer(False)", "Cancel", show=False),  # not the app's quit
    ]

    def __init__(
        self,
        plans: list[KillPlan],
        signal: str,
        grace: float,
        gpu: Mapping[int, tuple[int, int]] | None = None,
    ) -> None:
        super().__init__()
        self.plans = plans
        self.signal = signal
        self.grace = grace
        self.gpu = gpu or {}

    def compose(self) -> ComposeResult:
        count = sum(len(p.processes) for p in self.plans)
        what = f"Send {self.signal} to {count} process{'es' if count != 1 else ''} of {len(self.plans)} run{'s' if len(self.plans) != 1 else ''}?"
        if self.signal == "SIGTERM":
            what += f"  Survivors get SIGKILL after {self.grace:g} s."
        with Vertical(classes="dialog", id="confirm-kill"):
            yield Label(Text(what, style="bold red"))
            with VerticalScroll(id="plans"):
                for plan in self.plans:
                    lines = plan.describe()  # sanitized by procs; plain text
                    freed = gpu_freed(plan, self.gpu)
                    if freed is not None:
                        lines.insert(2, freed)
                    yield Static(Text("\n".join(lines)))
            with Horizontal(classes="buttons"):
                yield Button("Yes, signal (y)", variant="error", id="yes")
                yield Button("No (n)", variant="primary", id="no")

    def on_mount(self) -> None:
        self.query_one("#no", Button).focus()

    def on_button_pressed(self, event: Button.Pressed) -> None:
        self.dismiss(event.button.id == "yes")

    def action_answer(self, yes: bool) -> None:
        self.dismiss(yes)
