"""How the app shows a run's status: one glyph, word and style per status, in one place."""

from __future__ import annotations

from rich.text import Text

from tui.core.status import RunStatus
from tui.core.store import Run

STATUS_BADGES: dict[RunStatus, tuple[str, str]] = {
    "running": ("▶ running", "bold green"),
    "stalled": ("‖ stalled", "bold yellow"),
    "completing": ("▷ completing", "green"),
    "queued": ("◌ queued", "cyan"),
    "pending": ("· pending", "cyan"),
    "finished": ("✓ finished", "blue"),
    "failed": ("✗ failed", "bold red"),
    "killed": ("⊘ killed", "magenta"),
    "cancelled": ("⊘ cancelled", "magenta"),
    "timeout": ("⧗ timeout", "bold red"),
    "out_of_memory": ("✗ out of memory", "bold red"),
    "node_fail": ("✗ node failure", "bold red"),
    "crashed": ("! crashed", "red"),
    "ended": ("■ ended", "blue"),
    "unknown": ("? unknown", "dim"),
}
"""Each status's badge (glyph and word) and Rich style, in the order the table sorts them."""


def status_text(run: Run) -> Text:
    """The run's status badge; ``…`` after it while only the end of its history is read.

    A queued Slurm job says why it waits (``◌ queued (Resources)``).
    """
    badge, style = STATUS_BADGES.get(run.status, (run.status, ""))
    job = run.slurm
    if run.status == "queued" and job is not None and job.reason:
        badge += f" ({job.reason})"
    return Text(badge + ("…" if run.partial else ""), style=style)
