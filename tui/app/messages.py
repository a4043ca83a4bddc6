"""What crosses from the reader thread to the app, and from the app to its screens.

Frozen data only: the reader thread posts :class:`BatchesRead`; the app applies it on the
main thread and hands every screen the same :class:`RunsUpdated` by a direct call.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property

from textual.message import Message

from tui.core.evidence import Evidence
from tui.core.store import Batch, Delta


class BatchesRead(Message):
    """The reader thread read new data (a fact, posted from the thread)."""

    def __init__(self, batches: tuple[Batch, ...], progress: tuple[int, int] | None = None) -> None:
        super().__init__()
        self.batches = batches
        self.progress = progress


class EvidenceGathered(Message):
    """The evidence thread found runs' writer processes and read the audit log (a fact)."""

    def __init__(self, evidence: Evidence) -> None:
        super().__init__()
        self.evidence = evidence


@dataclass(frozen=True)
class RunsUpdated:
    """Runs changed in the store: screens refresh what shows them.

    Not a Textual message: the app calls :meth:`StoreScreen.runs_updated` on every screen
    of its stack with one of these, so none is queued, dropped or merged.

    Attributes:
        deltas: what each applied batch changed.
        statuses: runs whose status or rule verdicts changed without new data.
    """

    deltas: tuple[Delta, ...] = ()
    statuses: frozenset[str] = frozenset()

    @cached_property
    def keys(self) -> frozenset[str]:
        """Every run this update concerns."""
        return frozenset(d.key for d in self.deltas) | self.statuses
