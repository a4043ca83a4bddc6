"""``PanelPicker``: where each metric of the run view goes among its charts."""

from __future__ import annotations

from rich.text import Text
from textual import on
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.screen import ModalScreen
from textual.widgets import Label, OptionList, Static
from textual.widgets.option_list import Option

from tui.app.widgets.panel import PLACEMENT_LABELS, PLACEMENTS, default_placements
from tui.core.sanitize import sanitize


class PanelPicker(ModalScreen[dict[str, str] | None]):
    """Place each metric: hidden, its own chart, or the shared chart's left or right axis."""

    CSS_PATH = "panel_picker.tcss"
    BINDINGS = [
        Binding("escape", "cancel", "Cancel"),
        Binding("enter", "apply", "Apply", priority=True),
        Binding("space", "cycle", "Cycle"),
        Binding("h", "place('hidden')", "Hide"),
        Binding("o", "place('own')", "Own chart"),
        Binding("l", "place('left')", "Shared, left axis"),
        Binding("r", "place('right')", "Shared, right axis"),
        Binding("d", "defaults", "Defaults"),
    ]

    def __init__(self, order: list[str], placements: dict[str, str]) -> None:
        super().__init__()
        self.order = order
        self.placements = {n: placements.get(n, "hidden") for n in order}

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog", id="panel-picker"):
            yield Label(Text("Charts: where each metric goes", style="bold"))
            yield Static(
                Text(
                    "space cycles · h hide · o own chart · l / r shared chart left / right axis"
                    " · d defaults · enter applies · esc cancels",
                    style="dim",
                )
            )
            yield OptionList(*(self._option(n) for n in self.order))

    def _option(self, name: str) -> Option:
        placement = self.placements[name]
        prompt = Text(no_wrap=True, overflow="ellipsis")
        style = "dim" if placement == "hidden" else "bold"
        prompt.append(f"{PLACEMENT_LABELS[placement]:<25}", style=style)
        prompt.append(sanitize(name, 120))
        return Option(prompt)

    def on_mount(self) -> None:
        self.query_one(OptionList).focus()

    def _set(self, index: int | None, placement: str) -> None:
        if index is None or not 0 <= index < len(self.order):
            return
        name = self.order[index]
        self.placements[name] = placement
        self.query_one(OptionList).replace_option_prompt_at_index(index, self._option(name).prompt)

    def action_place(self, placement: str) -> None:
        """Put the highlighted metric at ``placement``."""
        self._set(self.query_one(OptionList).highlighted, placement)

    def action_cycle(self, index: int | None = None) -> None:
        """Move the highlighted metric to the next placement."""
        listing = self.query_one(OptionList)
        index = listing.highlighted if index is None else index
        if index is None or not 0 <= index < len(self.order):
            return
        current = PLACEMENTS.index(self.placements[self.order[index]])
        self._set(index, PLACEMENTS[(current + 1) % len(PLACEMENTS)])

    def action_defaults(self) -> None:
        """Back to one chart per metric for the first few, the rest hidden."""
        for index, (_name, placement) in enumerate(default_placements(self.order).items()):
            self._set(index, placement)

    @on(OptionList.OptionSelected)
    def clicked(self, event: OptionList.OptionSelected) -> None:
        """A click cycles the metric's placement (enter applies)."""
        event.stop()
        self.action_cycle(event.option_index)

    def action_apply(self) -> None:
        """Use these placements."""
        self.dismiss(dict(self.placements))

    def action_cancel(self) -> None:
        """Keep the charts as they were."""
        self.dismiss(None)
