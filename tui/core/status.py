"""Run status from evidence (DESIGN.md §5), never from a stale "running" field alone."""

from __future__ import annotations

import math
import socket
from collections.abc import Callable
from typing import Literal, get_args

from tui.core import procs
from tui.core.store import Run
from tui.core.values import real_number

RunStatus = Literal[
    "running", "stalled", "pending", "finished", "failed", "killed", "crashed", "unknown"
]
"""A run's status (DESIGN.md §5; ``pending``: a NePS config not yet evaluated)."""

STATUSES: tuple[RunStatus, ...] = get_args(RunStatus)
"""Every status a run can have, in the order above."""

RECENT = 120.0
"""Seconds since the last write for a run without a pid to count as running."""

STALL_MIN = 300.0
"""A live run is stalled after max(this, 10 x its usual interval) without a record."""

_ENDED: dict[str, RunStatus] = {"finished": "finished", "failed": "failed", "killed": "killed"}

Alive = Callable[[int, "float | None"], bool]


def usual_interval(run: Run) -> float | None:
    """Median-free estimate of the seconds between records (mean over the history)."""
    if len(run.times) < 2:
        return None
    span = run.times[-1] - run.times[0]
    return span / (len(run.times) - 1) if span > 0 else None


def last_activity(run: Run) -> float | None:
    """Wall time of the newest evidence of life: last record or file modification."""
    candidates = [t for t in (run.last_time, run.mtime) if t is not None and math.isfinite(t)]
    return max(candidates) if candidates else None


def derive_status(
    run: Run, now: float, alive: Alive | None = None, host: str | None = None
) -> RunStatus:
    """The status of ``run`` at wall time ``now``.

    Order of evidence: an end recorded in run.json (exit code, signal, ended_at); a pid
    whose process is alive with the recorded create time (running, or stalled when no
    record came for much longer than usual); a pid that is gone (crashed); a foreign
    format's own state; recent writes.
    """
    meta = run.meta
    claimed = meta.get("status")
    signal = meta.get("signal")
    exit_code = meta.get("exit_code")
    if signal not in (None, 0, ""):
        return "killed"
    if isinstance(exit_code, int) and not isinstance(exit_code, bool):
        return "finished" if exit_code == 0 else "failed"
    if isinstance(claimed, str) and claimed in _ENDED:
        return _ENDED[claimed]
    if meta.get("ended_at"):
        return "finished"
    activity = last_activity(run)
    quiet = None if activity is None else now - activity
    pid = meta.get("pid")
    if isinstance(pid, int) and not isinstance(pid, bool) and pid > 0:
        run_host = meta.get("host")
        if run_host and run_host != (host or socket.gethostname()):
            # Another machine's process: we can only judge by writes.
            return "running" if quiet is not None and quiet < RECENT else "unknown"
        create_time = real_number(meta.get("pid_create_time"))
        if (alive or procs.alive)(pid, create_time):
            interval = usual_interval(run) or 0.0
            if quiet is not None and quiet > max(STALL_MIN, 10 * interval):
                return "stalled"
            return "running"
        return "crashed"
    if claimed == "pending":
        return "pending"
    if quiet is not None and quiet < RECENT:
        return "running"
    return "unknown"  # a "running" claim with no live pid and no recent write proves nothing
