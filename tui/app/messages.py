"""What crosses from the reader thread to the app, and from the app to its screens.

Frozen data only: the reader thread posts :class:`BatchesRead`; the app applies it on the
main thread and hands every screen the same :class:`RunsUpdated` by a direct call.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from functools import cached_property
from typing import TYPE_CHECKING

from textual.message import Message

from tui.core.records import RecordBlock
from tui.core.store import Batch, Delta

if TYPE_CHECKING:
    from tui.core.evidence import Evidence
    from tui.core.gpu import HostGpu


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


class TelemetryPolled(Message):
    """The telemetry thread read the GPUs and the open runs' machine use (a fact).

    Attributes:
        host: the GPUs and their processes' ancestry (``None``: not read this time).
        watched: the runs open in a run view when it was taken.
        files: records appended to a watched run's ``system.jsonl`` since the last poll.
        samples: ``(time, sample)`` of a watched run without such a file, taken by us.
        with_file: watched runs that have a ``system.jsonl``.
    """

    def __init__(
        self,
        host: HostGpu | None,
        watched: tuple[str, ...] = (),
        files: Mapping[str, RecordBlock] | None = None,
        samples: Mapping[str, tuple[float, Mapping[str, float]]] | None = None,
        with_file: frozenset[str] = frozenset(),
    ) -> None:
        super().__init__()
        self.host = host
        self.watched = watched
        self.files = files or {}
        self.samples = samples or {}
        self.with_file = with_file


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
