"""Messages between the reader thread, the app and its screens (frozen data only)."""

from __future__ import annotations

from textual.message import Message

from tui.core.store import Batch, Delta


class BatchesRead(Message):
    """The reader thread read new data (a fact, posted from the thread)."""

    def __init__(self, batches: tuple[Batch, ...], progress: tuple[int, int] | None = None) -> None:
        super().__init__()
        self.batches = batches
        self.progress = progress


class RunsUpdated(Message):
    """Runs changed in the store: screens refresh what shows them."""

    def __init__(self, deltas: tuple[Delta, ...], statuses: frozenset[str] = frozenset()) -> None:
        super().__init__()
        self.deltas = deltas
        self.keys = frozenset(d.key for d in deltas) | statuses
        self.statuses = statuses

    def can_replace(self, message: Message) -> bool:  # never drop: each carries distinct runs
        return False
