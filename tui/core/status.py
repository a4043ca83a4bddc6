"""Run status from evidence (DESIGN.md §5), never from a stale "running" field alone."""

from __future__ import annotations

import math
import socket
from collections.abc import Callable
from typing import Literal, get_args

from tui.core.store import Run
from tui.core.values import real_number

RunStatus = Literal[
    "running",
    "stalled",
    "completing",
    "queued",
    "pending",
    "finished",
    "failed",
    "killed",
    "cancelled",
    "timeout",
    "out_of_memory",
    "node_fail",
    "crashed",
    "ended",
    "unknown",
]
"""A run's status (DESIGN.md §5).

``pending``: a NePS config not yet evaluated. ``crashed``: a recorded process is gone with
no end recorded. ``ended``: no live process and quiet files, without an end marker (what a
finished foreign run looks like). ``queued``, ``completing``, ``cancelled``, ``timeout``,
``out_of_memory`` and ``node_fail`` are a scheduler's word (:mod:`tui.core.slurm`).
"""

STATUSES: tuple[RunStatus, ...] = get_args(RunStatus)
"""Every status a run can have, in the order above."""

ALIVE: frozenset[RunStatus] = frozenset({"running", "stalled"})
"""Statuses of a run whose process (or writes) say it is still going."""

ENDED_BY_EVIDENCE: frozenset[RunStatus] = frozenset(
    {"killed", "crashed", "ended", "cancelled", "timeout", "out_of_memory", "node_fail"}
)
"""Statuses that may be reached with no end time recorded: it is then the last activity."""

RECENT = 120.0
"""Least seconds since the last write for a run with no known process to count as running."""

RECENT_MAX = 3600.0
"""Most seconds a run's own cadence may stretch that window (an epoch-a-while logger)."""

STALL_MIN = 300.0
"""A live run is stalled after max(this, 10 x its usual interval) without a record."""

END_GRACE = 3.0
"""Seconds after its last write that a gone process is not yet called crashed: its end
record (the launcher writes it when the command exits) may be on its way."""

STOP_SLACK = 2.0
"""Seconds a write may follow the audit log's kill entry and still be the dying run's."""

_ENDED: dict[str, RunStatus] = {"finished": "finished", "failed": "failed", "killed": "killed"}

SCHEDULER_ENDS: frozenset[RunStatus] = frozenset(
    {"cancelled", "timeout", "out_of_memory", "node_fail"}
)
"""A scheduler's reasons for a run's signal: more precise than ``killed`` when it gives one."""

Alive = Callable[[int, "float | None"], bool]


def usual_interval(run: Run) -> float | None:
    """Median-free estimate of the seconds between records (mean over the history)."""
    if len(run.times) < 2:
        return None
    span = run.times[-1] - run.times[0]
    return span / (len(run.times) - 1) if span > 0 else None


def recent_window(run: Run) -> float:
    """Seconds of quiet after which writes alone no longer say a run is alive."""
    interval = usual_interval(run) or 0.0
    return min(RECENT_MAX, max(RECENT, 3 * interval))


HELD_OPEN = frozenset({"valohai", "tensorboard"})
"""Formats whose writers hold their files open while they run (stdout redirects, TensorBoard's
SummaryWriter; Keras' CSVLogger is told apart by its ``logger`` property)."""


def last_activity(run: Run) -> float | None:
    """Wall time of the newest evidence of life: the last record's time, else the files'.

    Records carry their own time or, without one, their file's modification time when they
    were read; a file copied or touched later does not make an old run look recent.
    """
    for moment in (run.last_time, run.mtime):
        if moment is not None and math.isfinite(moment):
            return moment
    return None


def writer_would_show(run: Run) -> bool:
    """True when a live writer of ``run`` would have been seen holding its files open."""
    if not run.scanned:
        return False
    return run.format in HELD_OPEN or run.properties.get("logger") == "keras"


def _live(
    run: Run, quiet: float | None, pid: int, created: float | None, alive: Alive
) -> RunStatus | None:
    if not alive(pid, created):
        return None
    interval = usual_interval(run) or 0.0
    if quiet is not None and quiet > max(STALL_MIN, 10 * interval):
        return "stalled"
    return "running"


def _scheduler_status(run: Run, quiet: float | None) -> RunStatus | None:
    """What Slurm says about the run's job (``run.slurm``), or ``None`` when it says nothing.

    A run submitted with ``--sbatch`` that never started (``queued``, no pid) and that Slurm
    cannot describe (not reachable, or the job long forgotten) is ``unknown``: its claim
    alone proves nothing.
    """
    job = run.slurm
    status = job.status if job is not None else None
    if status not in STATUSES:
        unstarted = run.meta.get("status") == "queued" and run.meta.get("pid") is None
        return "unknown" if unstarted else None
    if status == "running":
        interval = usual_interval(run) or 0.0
        if quiet is not None and quiet > max(STALL_MIN, 10 * interval):
            return "stalled"
    return status


def _alive(pid: object, create_time: object) -> bool:
    """:func:`tui.core.procs.alive`, imported on first use: most runs at a first paint have
    no pid to check, and psutil with the process machinery can wait for the first frame."""
    from tui.core.procs import alive

    return alive(pid, create_time)


def derive_status(
    run: Run, now: float, alive: Alive | None = None, host: str | None = None
) -> RunStatus:
    """The status of ``run`` at wall time ``now``, from evidence only (DESIGN.md §5).

    In order: an end the run recorded (run.json's signal, exit code or ended_at, or a
    format's own end marker such as MLflow's status or NePS' state; a signal is refined
    by the scheduler's reason: cancelled, timeout...); what Slurm says about the run's job
    (queued, running on a node, finished...); a recorded pid on
    this host (alive with its create time: running or stalled; gone: killed when our
    audit log stopped it, else crashed); a process found holding the run's files open for
    writing (``run.process``); a NePS config's pending state; writes within the run's own
    cadence; and otherwise ``ended`` when there is any data, ``unknown`` when there is none.
    A claim of "running" with nothing behind it proves nothing.
    """
    check = alive or _alive
    meta = run.meta
    claimed = meta.get("status")
    signal = meta.get("signal")
    exit_code = meta.get("exit_code")
    if signal not in (None, 0, ""):
        scheduler = _scheduler_status(run, None)
        return scheduler if scheduler in SCHEDULER_ENDS else "killed"
    if isinstance(exit_code, int) and not isinstance(exit_code, bool):
        return "finished" if exit_code == 0 else "failed"
    if isinstance(claimed, str) and claimed in _ENDED:
        return _ENDED[claimed]
    if meta.get("ended_at"):
        return "finished"
    activity = last_activity(run)
    quiet = None if activity is None else now - activity
    stopped = run.stop is not None and (activity is None or activity <= run.stop.time + STOP_SLACK)
    scheduler = _scheduler_status(run, quiet)
    if scheduler is not None:
        return scheduler
    pid = meta.get("pid")
    if isinstance(pid, int) and not isinstance(pid, bool) and pid > 0:
        run_host = meta.get("host")
        if run_host and run_host != (host or socket.gethostname()):
            # Another machine's process: we can only judge by writes.
            if quiet is not None and quiet < recent_window(run):
                return "running"
            return "ended" if activity is not None else "unknown"
        status = _live(run, quiet, pid, real_number(meta.get("pid_create_time")), check)
        if status is not None:
            return status
        if stopped:
            return "killed"
        if quiet is not None and quiet < END_GRACE:
            return "running"  # exited a moment ago: the end record is being written
        return "crashed"
    found = run.process
    if found is not None and found.pid is not None:
        status = _live(run, quiet, found.pid, found.create_time, check)
        if status is not None:
            return status
    if stopped:
        return "killed"
    if claimed == "pending":
        return "pending"
    if found is not None and found.pid is None:
        return "running"  # several writers hold its files open: alive, but whose is unclear
    if quiet is not None and quiet < recent_window(run) and not writer_would_show(run):
        return "running"  # open-append-close writers (MLflow, Lightning) and other hosts
    return "ended" if activity is not None else "unknown"
