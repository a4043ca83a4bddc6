"""Process identity and safe kill of a run's process tree (DESIGN.md §5, §6).

A run's process is identified by ``(pid, pid_create_time)`` from its ``run.json``, never by
the pid alone: pids are reused within hours on a busy box. A kill is two steps so a UI can
ask in between: :func:`plan_kill` snapshots and checks the tree and returns a
:class:`KillPlan` to show; :func:`execute` re-verifies everything, signals, waits, escalates
and writes the audit log. Every check runs on the whole tree before the first signal, so a
refusal never leaves a run half killed.

Ownership rule: every process of the tree must belong to the user tracktui runs as (real,
effective and saved uid), and the run's recorded ``user`` must be that user too. Root gets
no exemption: as root, tracktui only kills root's runs. An administrator acts for someone
with ``sudo -u alice tracktui kill ...``, which keeps the audit log honest about who acted.

Evidence rule (DESIGN.md §5): what names the process must be ours too. The run directory
and its ``run.json``, or the file a process was found writing (:mod:`tui.core.openfiles`),
must belong to the user tracktui runs as; otherwise anyone who can write into a shared ROOT
could plant a ``run.json`` naming one of our processes (pids and create times are public).

Identity held from plan to signal: where the kernel has pidfds (Linux 5.3+), each process
is pinned by a pidfd right after its identity is verified, and signalled through it, so a
pid reused in between, even within the create time's resolution, is never hit. Without
pidfds the identity is re-checked just before each signal, and plan and report say that
this check is weaker.
"""

from __future__ import annotations

import json
import math
import os
import select
import shlex
import shutil
import signal as _signal
import socket
import subprocess
import threading
import time
import weakref
from collections.abc import Callable, Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import psutil

from tui.core.openfiles import RunProcess
from tui.core.rundir import current_user, user_name
from tui.core.sanitize import sanitize
from tui.core.slurm import ENDED, SlurmClient, SlurmJob, job_of
from tui.core.timefmt import utc_iso

SignalName = Literal["term", "int", "kill"]

SIGNALS: dict[str, _signal.Signals] = {
    "term": _signal.SIGTERM,
    "int": _signal.SIGINT,
    "kill": _signal.SIGKILL,
}
"""The signals a user may ask for, by their short name."""

CREATE_TIME_TOLERANCE = 0.01
"""Seconds two create times may differ and still name the same process."""

KILL_WAIT = 2.0
"""Seconds to wait for processes to vanish after SIGKILL."""

WEAK_IDENTITY = (
    "pidfd is unavailable here: each process is re-checked by pid and create time just "
    "before its signal, a weaker check (a pid reused within 10 ms of the check could be hit)"
)
"""The note a plan and a report carry when processes cannot be pinned by pidfd."""

_POLL = 0.05
_CMDLINE_LIMIT = 1000


@dataclass(frozen=True, slots=True)
class Refusal:
    """Why an action on a run is refused. Nothing was signalled.

    Attributes:
        message: sanitized sentence for the user.
        code: stable machine-readable reason (``not_running``, ``pid_reused``, ``no_identity``,
            ``other_host``, ``other_user``, ``self``, ``read_only``, ``slurm``, ``evidence``
            (what names the process is not ours), ``ambiguous`` (unrelated writers)).
    """

    message: str
    code: str

    def __str__(self) -> str:
        return self.message


@dataclass(frozen=True, slots=True)
class ProcessInfo:
    """One process as a kill would see it. Strings are sanitized.

    Attributes:
        pid: process id.
        ppid: parent's pid.
        user: owner's name (the uid as text when it has no name).
        uid: real uid.
        create_time: psutil's create time, the second half of the identity.
        state: psutil status (``running``, ``sleeping``, ``disk-sleep``, ``zombie``...).
        cpu_percent: CPU use since the previous snapshot of this process (0.0 the first time).
        memory_rss: resident memory in bytes.
        cmdline: the command line, shell-quoted and sanitized.
        pgid: process group id.
        sid: session id.
    """

    pid: int
    ppid: int
    user: str
    uid: int
    create_time: float
    state: str
    cpu_percent: float
    memory_rss: int
    cmdline: str
    pgid: int
    sid: int


@dataclass(frozen=True, slots=True)
class Tree:
    """A run's processes, ordered so parents are signalled before their children.

    Attributes:
        root: the run's own process (``run.json``'s pid).
        processes: the root first, then descendants by depth, then processes that share a
            session the tree leads (orphaned workers reparented to init).
        handles: psutil handles pinned to each process's identity, by pid.
    """

    root: ProcessInfo
    processes: tuple[ProcessInfo, ...]
    handles: Mapping[int, psutil.Process] = field(default_factory=dict, compare=False, repr=False)

    @property
    def pids(self) -> tuple[int, ...]:
        """The pids in signalling order."""
        return tuple(p.pid for p in self.processes)


@dataclass(frozen=True, slots=True)
class KillPlan:
    """What a kill will hit, for a confirmation dialog; :func:`execute` carries it out.

    Attributes:
        run_dir: the run's directory.
        run_name: sanitized run name.
        host: host recorded in run.json (sanitized).
        user: user recorded in run.json (sanitized).
        meta: run.json as read when planning.
        tree: processes to signal (``None`` for a Slurm job).
        slurm_job_id: the job to ``scancel`` instead of signalling processes.
        evidence: the files that name the process; re-checked for ownership before signals.
        notes: facts to show with the plan (how the process was found, a weaker check).
        pins: pidfds holding each process of the tree since it was verified (``None``
            without pidfd support); :func:`execute` closes them, as does dropping the plan.
    """

    run_dir: Path
    run_name: str
    host: str
    user: str
    meta: Mapping[str, Any] = field(compare=False, repr=False)
    tree: Tree | None = None
    slurm_job_id: str | None = None
    evidence: tuple[Path, ...] = ()
    notes: tuple[str, ...] = ()
    pins: Pins | None = field(default=None, compare=False, repr=False)

    @property
    def processes(self) -> tuple[ProcessInfo, ...]:
        """Processes the kill will signal, in order."""
        return self.tree.processes if self.tree is not None else ()

    def describe(self) -> list[str]:
        """Lines naming run, host, user and every target (pid, user, state, command line)."""
        lines = [f"run:  {self.run_name}", f"host: {self.host}   user: {self.user}"]
        if self.slurm_job_id is not None:
            lines.append(f"Slurm job {self.slurm_job_id}: cancelled with scancel")
        else:
            lines.append(f"{len(self.processes)} process(es):")
            lines.extend(
                f"  {p.pid:>7}  {p.user:<12} {p.state:<10} {p.cmdline}" for p in self.processes
            )
        lines.extend(self.notes)
        return lines


@dataclass(frozen=True, slots=True)
class KillReport:
    """What a kill did.

    Attributes:
        run_dir: the run's directory.
        run_name: sanitized run name.
        signal: the signal asked for (``term``, ``int``, ``kill``).
        refusal: set when nothing was signalled, and why.
        signalled: pids that received the first signal.
        escalated: pids that outlived the grace period and got SIGKILL.
        survivors: processes still alive at the end.
        notes: other facts worth showing (scancel output, audit log trouble).
        audit_path: where the audit lines went, if anywhere.
        slurm_job_id: the Slurm job asked to end instead of signalling processes.
    """

    run_dir: Path
    run_name: str
    signal: str
    refusal: Refusal | None = None
    signalled: tuple[int, ...] = ()
    escalated: tuple[int, ...] = ()
    survivors: tuple[ProcessInfo, ...] = ()
    notes: tuple[str, ...] = ()
    audit_path: Path | None = None
    slurm_job_id: str | None = None

    @property
    def ok(self) -> bool:
        """True when the action ran and nothing survived it."""
        return self.refusal is None and not self.survivors

    def describe(self) -> list[str]:
        """Lines for the user: outcome, survivors and notes."""
        if self.refusal is not None:
            return [f"refused: {self.refusal.message}", *self.notes]
        if self.slurm_job_id is not None:
            return [f"Slurm job {self.slurm_job_id}: asked Slurm to end it", *self.notes]
        lines = [f"sent SIG{self.signal.upper()} to {len(self.signalled)} process(es)"]
        if self.escalated:
            lines.append(f"SIGKILL after the grace period: {_pid_list(self.escalated)}")
        if self.survivors:
            lines.append(f"{len(self.survivors)} process(es) still alive:")
            for p in self.survivors:
                stuck = "  (D state: unkillable, GPU memory may stay allocated)"
                lines.append(
                    f"  {p.pid:>7}  {p.state:<10} {p.cmdline}"
                    + (stuck if p.state == psutil.STATUS_DISK_SLEEP else "")
                )
        else:
            lines.append("no process of the run is left")
        lines.extend(self.notes)
        return lines


def _pid_list(pids: Iterable[int]) -> str:
    return ", ".join(map(str, pids))


def pidfd_available() -> bool:
    """True when processes can be pinned by pidfd (Python 3.9+ on Linux 5.3+)."""
    if not hasattr(os, "pidfd_open") or not hasattr(_signal, "pidfd_send_signal"):
        return False
    try:
        fd = os.pidfd_open(os.getpid())
    except OSError:  # ENOSYS on an old kernel, EPERM under a seccomp filter
        return False
    os.close(fd)
    return True


def _close_fds(fds: dict[int, tuple[float, int]]) -> None:
    for _, fd in fds.values():
        os.close(fd)
    fds.clear()


class Pins:
    """pidfds that hold processes from their identity check to their signal.

    A pidfd refers to one process, not to a pid: once that process has exited, a signal
    sent through it fails with ESRCH even when the pid has been given to another process.
    """

    def __init__(self) -> None:
        self._fds: dict[int, tuple[float, int]] = {}
        self._closer = weakref.finalize(self, _close_fds, self._fds)

    def pin(self, pid: int, create_time: float) -> int | None:
        """Pin ``pid`` if it is still the process started at ``create_time``.

        The pidfd is opened first and the identity checked after: if they named different
        processes, the first would have exited and the check fails. Returns the pidfd, or
        ``None`` when the process is gone or is another one.
        """
        if pid in self._fds:
            return self.get(pid, create_time)
        try:
            fd = os.pidfd_open(pid)
        except OSError:
            return None
        try:
            now = psutil.Process(pid).create_time()
        except psutil.Error:
            now = math.nan
        if not _same_time(now, create_time):
            os.close(fd)
            return None
        self._fds[pid] = (create_time, fd)
        return fd

    def get(self, pid: int, create_time: float) -> int | None:
        """The pidfd pinned for ``pid`` when it was pinned as the same process."""
        pinned = self._fds.get(pid)
        if pinned is None or not _same_time(pinned[0], create_time):
            return None
        return pinned[1]

    @property
    def pids(self) -> frozenset[int]:
        """The pids held (empty once closed)."""
        return frozenset(self._fds)

    def close(self) -> None:
        """Close every pidfd; safe to call twice."""
        self._closer()


def _exited(pidfd: int) -> bool:
    """True once the pinned process has exited (a zombie has exited too)."""
    poller = select.poll()
    poller.register(pidfd, select.POLLIN)
    return bool(poller.poll(0))


# psutil needs the same Process object across calls to report CPU use between snapshots.
_HANDLES: dict[tuple[int, float], psutil.Process] = {}
_HANDLES_LOCK = threading.Lock()
_HANDLES_MAX = 4096


def _handle(proc: psutil.Process, create_time: float) -> psutil.Process:
    key = (proc.pid, create_time)
    with _HANDLES_LOCK:
        cached = _HANDLES.get(key)
        if cached is not None:
            return cached
        if len(_HANDLES) >= _HANDLES_MAX:
            for old_key, old in list(_HANDLES.items()):
                if not old.is_running():
                    del _HANDLES[old_key]
        _HANDLES[key] = proc
        return proc


def _same_time(a: float, b: float) -> bool:
    return abs(a - b) <= CREATE_TIME_TOLERANCE


def _info(proc: psutil.Process) -> ProcessInfo | None:
    """Read one process; ``None`` when it is gone."""
    try:
        with proc.oneshot():
            create_time = proc.create_time()
            uid = proc.uids().real
            ppid = proc.ppid()
            state = proc.status()
            try:
                argv = proc.cmdline()
            except (psutil.AccessDenied, psutil.ZombieProcess):
                argv = []
            try:
                rss = proc.memory_info().rss
            except (psutil.AccessDenied, psutil.ZombieProcess):
                rss = 0
            name = proc.name()
        try:
            pgid, sid = os.getpgid(proc.pid), os.getsid(proc.pid)
        except ProcessLookupError:
            return None
        handle = _handle(proc, create_time)
        try:
            cpu = handle.cpu_percent(None)
        except (psutil.AccessDenied, psutil.ZombieProcess):
            cpu = 0.0
    except psutil.NoSuchProcess:
        return None
    cmdline = shlex.join(argv) if argv else f"[{name}]"
    return ProcessInfo(
        pid=proc.pid,
        ppid=ppid,
        user=sanitize(user_name(uid), 64),
        uid=uid,
        create_time=create_time,
        state=sanitize(state, 32),
        cpu_percent=cpu,
        memory_rss=rss,
        cmdline=sanitize(cmdline, _CMDLINE_LIMIT),
        pgid=pgid,
        sid=sid,
    )


def _verified(pid: int, create_time: float) -> psutil.Process | Refusal:
    if pid <= 1:
        return Refusal(f"pid {pid} is not a run's process", "no_identity")
    try:
        proc = psutil.Process(pid)
        actual = proc.create_time()
    except psutil.NoSuchProcess:
        return Refusal(f"process {pid} is not running", "not_running")
    if not _same_time(actual, create_time):
        return Refusal(
            f"pid {pid} now belongs to another process (started {utc_iso(actual)}, "
            f"the run's started {utc_iso(create_time)}): the pid was reused",
            "pid_reused",
        )
    return proc


def alive(pid: object, create_time: object) -> bool:
    """True when ``pid`` runs and is still the process started at ``create_time``.

    A zombie counts as dead. Without a create time identity cannot be verified and the
    answer is False (DESIGN.md §5: status comes from evidence). The caller checks that the
    run is on this host first: a pid from another machine means nothing here.
    """
    if type(pid) is not int or not isinstance(create_time, (int, float)):
        return False
    if not math.isfinite(create_time):
        return False
    proc = _verified(pid, float(create_time))
    if isinstance(proc, Refusal):
        return False
    try:
        return proc.status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


def snapshot_tree(pid: int, create_time: float) -> Tree | Refusal:
    """Verify a run's identity and collect its process tree.

    The tree is the process, all its descendants, and every other live process owned by
    the root's uid in a session led by a member of the tree (DataLoader workers whose
    parent died are reparented to init but keep the session).

    Args:
        pid: the run's pid from run.json.
        create_time: the run's ``pid_create_time`` from run.json.

    Returns:
        The tree, parents before children, or a refusal when the process is gone or the
        pid now names another process.
    """
    root_proc = _verified(pid, create_time)
    if isinstance(root_proc, Refusal):
        return root_proc
    root = _info(root_proc)
    if root is None:
        return Refusal(f"process {pid} is not running", "not_running")
    members: dict[int, ProcessInfo] = {root.pid: root}
    handles: dict[int, psutil.Process] = {root.pid: root_proc}
    try:
        descendants = root_proc.children(recursive=True)
    except psutil.NoSuchProcess:
        descendants = []
    for child in descendants:
        info = _info(child)
        if info is not None:
            members[info.pid] = info
            handles[info.pid] = child
    led_sessions = {p.sid for p in members.values() if p.sid in members}
    extras: list[ProcessInfo] = []
    if led_sessions:
        for other in psutil.pids():
            if other in members:
                continue
            try:
                if os.getsid(other) not in led_sessions:
                    continue
            except (ProcessLookupError, PermissionError):
                continue
            try:
                proc = psutil.Process(other)
            except psutil.NoSuchProcess:
                continue
            info = _info(proc)
            if info is None or info.uid != root.uid or info.state == psutil.STATUS_ZOMBIE:
                continue
            extras.append(info)
            handles[info.pid] = proc
    ordered = sorted(members.values(), key=lambda p: (_depth(p, members), p.pid))
    return Tree(root, (*ordered, *sorted(extras, key=lambda p: p.pid)), handles)


def _depth(proc: ProcessInfo, members: Mapping[int, ProcessInfo]) -> int:
    depth = 0
    seen = {proc.pid}
    while proc.ppid in members and proc.ppid not in seen:
        seen.add(proc.ppid)
        proc = members[proc.ppid]
        depth += 1
    return depth


def process_uids(proc: ProcessInfo) -> tuple[int, ...]:
    """Real, effective and saved uid of a process (a setuid helper shows its root euid)."""
    try:
        return tuple(psutil.Process(proc.pid).uids())
    except psutil.NoSuchProcess:
        return (proc.uid,)


def our_identity() -> tuple[frozenset[int], int, int]:
    """Pids that are tracktui or its parent, and tracktui's process group and session."""
    return frozenset({os.getpid(), os.getppid()}), os.getpgrp(), os.getsid(0)


def _check_host(run_meta: Mapping[str, Any], this_host: str) -> Refusal | None:
    host = run_meta.get("host")
    if not isinstance(host, str) or not host:
        return Refusal("run.json does not record the host the run started on", "other_host")
    if host != this_host:
        return Refusal(
            f"run is on host {sanitize(host, 100)!r}, this is {sanitize(this_host, 100)!r}",
            "other_host",
        )
    return None


def check_kill(
    run_meta: Mapping[str, Any],
    tree: Tree,
    *,
    this_host: str,
    this_uid: int,
    own_pids: Collection[int],
    own_pgid: int | None = None,
    own_sid: int | None = None,
    owner_of: Callable[[ProcessInfo], Collection[int]] = process_uids,
) -> Refusal | None:
    """Decide whether the whole tree may be signalled. Signals nothing.

    Args:
        run_meta: the run's run.json.
        tree: the snapshot to judge.
        this_host: our host name (``socket.gethostname()``).
        this_uid: the uid we act for (our real uid, even when it is root).
        own_pids: tracktui's pid and its parent's.
        own_pgid: tracktui's process group; a tree member in it is refused.
        own_sid: tracktui's session; refused when a tree member leads it.
        owner_of: uids of a process (real, effective, saved); injectable for tests.

    Returns:
        ``None`` when every process may be signalled, else the first reason not to.
    """
    refusal = _check_host(run_meta, this_host)
    if refusal is not None:
        return refusal
    recorded = run_meta.get("pid_create_time")
    if not isinstance(recorded, (int, float)) or not _same_time(
        tree.root.create_time, float(recorded)
    ):
        return Refusal(
            f"pid {tree.root.pid} does not match the run's recorded start time", "pid_reused"
        )
    me = user_name(this_uid)
    run_user = run_meta.get("user")
    if isinstance(run_user, str) and run_user and run_user != me:
        return Refusal(
            f"run belongs to user {sanitize(run_user, 64)!r}, you are {sanitize(me, 64)!r}",
            "other_user",
        )
    if own_sid is not None and own_sid in set(tree.pids):
        return Refusal(f"tracktui runs inside the run's session {own_sid}", "self")
    for proc in tree.processes:
        if proc.pid in own_pids:
            return Refusal(
                f"the run's processes include tracktui itself or its parent (pid {proc.pid})",
                "self",
            )
        if own_pgid is not None and proc.pgid == own_pgid:
            return Refusal(f"pid {proc.pid} is in tracktui's own process group {own_pgid}", "self")
        foreign = sorted(set(owner_of(proc)) - {this_uid})
        if foreign:
            return Refusal(
                f"pid {proc.pid} ({proc.cmdline[:80]}) belongs to user "
                f"{sanitize(user_name(foreign[0]), 64)!r}, not {sanitize(me, 64)!r}",
                "other_user",
            )
    return None


def check_evidence(
    run_dir: Path, files: Iterable[Path] | None = None, *, this_uid: int | None = None
) -> Refusal | None:
    """Refuse a kill aimed by evidence that is not ours. Signals nothing.

    The run directory and every evidence file (``run.json`` by default, or the files a
    process was found writing) must be owned by ``this_uid``, the user tracktui runs as;
    a symlink and what it points to both. Otherwise someone who can write into a shared
    ROOT could aim a kill at any of our processes (DESIGN.md §5).

    Args:
        run_dir: the run's directory.
        files: the evidence; ``run_dir / "run.json"`` when ``None``.
        this_uid: our real uid by default.
    """
    uid = os.getuid() if this_uid is None else this_uid
    named = [run_dir / "run.json"] if files is None else list(files)
    for path, what in [(run_dir, "the run directory"), *((f, f.name) for f in named)]:
        shown = sanitize(what, 200)
        try:
            owners = {os.lstat(path).st_uid, os.stat(path).st_uid}
        except FileNotFoundError:
            return Refusal(f"{shown} is missing: nothing names the run's process", "evidence")
        except OSError as error:
            return Refusal(sanitize(f"{what} cannot be checked: {error}", 300), "evidence")
        foreign = sorted(owners - {uid})
        if foreign:
            owner = sanitize(user_name(foreign[0]), 64)
            return Refusal(
                f"{shown} is owned by uid {foreign[0]} ({owner}), not you: it cannot aim a kill",
                "evidence",
            )
    return None


def tree_for_run(meta: Mapping[str, Any]) -> Tree | Refusal:
    """The process tree of a run as a kill would see it, for display; signals nothing.

    Checks that run.json names a pid with its create time and that the run is on this
    host (a pid from another machine means nothing here), then :func:`snapshot_tree`.
    """
    pid, create_time = meta.get("pid"), meta.get("pid_create_time")
    if type(pid) is not int or not isinstance(create_time, (int, float)):
        return Refusal(
            "run.json records no pid with its create time: the process cannot be identified",
            "no_identity",
        )
    refusal = _check_host(meta, socket.gethostname())
    if refusal is not None:
        return refusal
    return snapshot_tree(pid, float(create_time))


def _run_name(run_dir: Path, meta: Mapping[str, Any]) -> str:
    name = meta.get("name")
    return sanitize(name if isinstance(name, str) and name else run_dir.name, 200)


def plan_kill(
    run_dir: Path,
    meta: Mapping[str, Any],
    *,
    read_only: bool = False,
    owner_of: Callable[[ProcessInfo], Collection[int]] = process_uids,
    evidence: Sequence[Path] | None = None,
    notes: Sequence[str] = (),
) -> KillPlan | Refusal:
    """Snapshot and check a run's processes, and pin them; signals nothing.

    Args:
        run_dir: the run's directory.
        meta: its run.json (or, for a discovered process, what :func:`plan_kill_found`
            builds).
        read_only: refuse (tracktui ``--read-only``).
        owner_of: uid lookup, injectable for tests.
        evidence: the files that name the process (``run_dir / "run.json"`` by default);
            they and the run directory must be ours (:func:`check_evidence`).
        notes: facts to show with the plan.

    Returns:
        A plan to show and then :func:`execute`, or why the run cannot be killed.
    """
    if read_only:
        return Refusal("tracktui is read-only: no process is signalled", "read_only")
    files = (run_dir / "run.json",) if evidence is None else tuple(evidence)
    refusal = check_evidence(run_dir, files)
    if refusal is not None:
        return refusal
    name = _run_name(run_dir, meta)
    host = sanitize(str(meta.get("host", "?")), 100)
    user = sanitize(str(meta.get("user", "?")), 64)
    job = meta.get("slurm_job_id")
    if job is not None:
        found = _check_slurm(meta)
        if isinstance(found, Refusal):
            return found
        said = f"Slurm says: {found.describe()}, owner {found.user}"
        return KillPlan(
            run_dir, name, host, user, dict(meta), None, str(job), files, (*notes, said)
        )
    tree = tree_for_run(meta)
    if isinstance(tree, Refusal):
        return tree
    own_pids, own_pgid, own_sid = our_identity()
    refusal = check_kill(
        meta,
        tree,
        this_host=socket.gethostname(),
        this_uid=os.getuid(),
        own_pids=own_pids,
        own_pgid=own_pgid,
        own_sid=own_sid,
        owner_of=owner_of,
    )
    if refusal is not None:
        return refusal
    if not pidfd_available():
        return KillPlan(
            run_dir, name, host, user, dict(meta), tree, None, files, (*notes, WEAK_IDENTITY)
        )
    pins = Pins()
    kept = [p for p in tree.processes if pins.pin(p.pid, p.create_time) is not None]
    if tree.root not in kept:
        pins.close()
        return Refusal(f"process {tree.root.pid} exited while the kill was planned", "not_running")
    handles = {p.pid: tree.handles[p.pid] for p in kept if p.pid in tree.handles}
    tree = Tree(tree.root, tuple(kept), handles)
    return KillPlan(run_dir, name, host, user, dict(meta), tree, None, files, (*notes,), pins)


def plan_kill_found(
    run_dir: Path,
    found: RunProcess[Any],
    *,
    name: str | None = None,
    read_only: bool = False,
    owner_of: Callable[[ProcessInfo], Collection[int]] = process_uids,
) -> KillPlan | Refusal:
    """:func:`plan_kill` for a process found holding the run's files open for writing.

    The files it writes are the evidence (they must be ours, like the run directory), and
    the plan's notes say how the process was found. Unrelated writers are refused until
    the user picks one.

    Args:
        run_dir: the run's directory.
        found: what :class:`tui.core.openfiles.WriterScanner` found for the run.
        name: the run's name to show (the directory's name by default).
        read_only: refuse (tracktui ``--read-only``).
        owner_of: uid lookup, injectable for tests.
    """
    if found.pid is None or found.create_time is None:
        return Refusal(found.evidence, "ambiguous")
    meta: dict[str, Any] = {
        "pid": found.pid,
        "pid_create_time": found.create_time,
        "host": socket.gethostname(),
        "user": current_user(),
    }
    if name:
        meta["name"] = name
    return plan_kill(
        run_dir,
        meta,
        read_only=read_only,
        owner_of=owner_of,
        evidence=[Path(f) for f in found.files],
        notes=(f"found by an {found.evidence}",),
    )


def _check_slurm(meta: Mapping[str, Any], client: SlurmClient | None = None) -> Refusal | SlurmJob:
    """The run's job as Slurm describes it, if it may be cancelled by us; else why not.

    Slurm's own record of the job's owner decides (run.json's ``user`` must agree too): as
    root, scancel would cancel anyone's job, and tracktui only cancels the caller's own
    (DESIGN.md §6). A job that already ended is not cancelled again.
    """
    job = meta.get("slurm_job_id")
    base = job_of(job)
    if base is None:
        return Refusal(f"slurm_job_id {sanitize(str(job), 40)!r} is not a job id", "slurm")
    me = current_user()
    run_user = meta.get("user")
    if isinstance(run_user, str) and run_user and run_user != me:
        return Refusal(
            f"Slurm job belongs to user {sanitize(run_user, 64)!r}, you are {sanitize(me, 64)!r}",
            "other_user",
        )
    for command in ("scancel", "squeue"):
        if shutil.which(command) is None:
            return Refusal(
                f"the run is Slurm job {job} but {command} is not on PATH here; "
                "cancel it from a Slurm node",
                "slurm",
            )
    client = client or SlurmClient()
    answer = client.squeue([base])
    found = answer.jobs.get(base)
    if found is None:
        why = answer.problem or f"Slurm does not know job {base} (it ended long ago?)"
        return Refusal(f"cannot check Slurm job {job}: {why}", "slurm")
    if found.user != me:
        return Refusal(
            f"Slurm job {base} belongs to user {found.user or '?'!r}, you are {sanitize(me, 64)!r}",
            "other_user",
        )
    if found.state in ENDED:
        return Refusal(f"Slurm job {base} already ended: {found.describe()}", "not_running")
    return found


def default_audit_path(root: Path) -> Path:
    """``ROOT/.tracktui/audit.jsonl``, or the user's state directory when ROOT is read-only."""
    folder = root / ".tracktui"
    target = folder if folder.is_dir() else root
    if os.access(target, os.W_OK | os.X_OK):
        return folder / "audit.jsonl"
    return _state_audit_path()


def _state_audit_path() -> Path:
    state = os.environ.get("XDG_STATE_HOME") or str(Path.home() / ".local" / "state")
    return Path(state) / "tracktui" / "audit.jsonl"


class _Audit:
    """Append-only audit log, opened before the first signal so its fate is known early."""

    def __init__(self, path: Path | None) -> None:
        self.fd: int | None = None
        self.path: Path | None = None
        self.problem: str | None = None
        fallback = _state_audit_path()
        candidates = [fallback] if path is None or path == fallback else [path, fallback]
        for candidate in candidates:
            try:
                candidate.parent.mkdir(parents=True, exist_ok=True)
                self.fd = os.open(candidate, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
            except OSError as error:
                self.problem = sanitize(f"audit log {candidate}: {error}", 300)
                continue
            self.path = candidate
            self.problem = None
            break

    def write(self, entry: dict[str, Any]) -> None:
        if self.fd is None:
            return
        line = (json.dumps(entry, ensure_ascii=True, default=str) + "\n").encode()
        try:
            os.write(self.fd, line)
        except OSError as error:
            self.problem = sanitize(f"audit log {self.path}: {error}", 300)

    def close(self) -> None:
        if self.fd is not None:
            os.close(self.fd)
            self.fd = None


def _entry(
    plan_dir: Path, name: str, pids: Collection[int], sig: str, result: str, reason: str | None
) -> dict[str, Any]:
    return {
        "time": utc_iso(),
        "user": current_user(),
        "host": socket.gethostname(),
        "run": str(plan_dir),
        "run_name": name,
        "pids": list(pids),
        "signal": sig,
        "result": result,
        "reason": reason,
    }


def _send(handle: psutil.Process, pidfd: int | None, sig: int) -> str:
    """Signal one process: ``sent``, ``gone`` (exited, zombies included) or ``denied``.

    Through its pidfd when it is pinned, which reaches that process or none. Otherwise
    psutil re-checks pid and create time just before ``kill(2)``, which leaves a short
    window in which a reused pid could be hit (:data:`WEAK_IDENTITY`).
    """
    try:
        if pidfd is not None:
            if _exited(pidfd):
                return "gone"
            _signal.pidfd_send_signal(pidfd, sig)
        else:
            if _gone(handle):
                return "gone"
            handle.send_signal(sig)
    except (ProcessLookupError, psutil.NoSuchProcess):
        return "gone"
    except (PermissionError, psutil.AccessDenied):
        return "denied"
    return "sent"


def _gone(handle: psutil.Process) -> bool:
    try:
        return not handle.is_running() or handle.status() == psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return True


def _wait_gone(handles: list[psutil.Process], timeout: float) -> list[psutil.Process]:
    """Wait until every process exited (zombies count as exited); return the survivors."""
    deadline = time.monotonic() + max(timeout, 0.0)
    left = [h for h in handles if not _gone(h)]
    while left and time.monotonic() < deadline:
        time.sleep(_POLL)
        left = [h for h in left if not _gone(h)]
    return left


def _merge_trees(fresh: Tree, planned: Tree) -> Tree:
    """The fresh tree plus planned processes that still run as themselves but left it."""
    processes = list(fresh.processes)
    handles = dict(fresh.handles)
    for proc in planned.processes:
        handle = planned.handles.get(proc.pid)
        if proc.pid in handles or handle is None or _gone(handle):
            continue
        info = _info(handle)
        if info is not None and _same_time(info.create_time, proc.create_time):
            processes.append(info)
            handles[proc.pid] = handle
    return Tree(fresh.root, tuple(processes), handles)


def execute(
    plan: KillPlan,
    signal: SignalName = "term",
    grace: float = 10.0,
    audit_path: Path | None = None,
    reason: str | None = None,
    *,
    read_only: bool = False,
    owner_of: Callable[[ProcessInfo], Collection[int]] = process_uids,
) -> KillReport:
    """Re-verify a plan, then signal the tree, wait, escalate and audit.

    ``term`` sends SIGTERM, waits up to ``grace`` seconds and SIGKILLs the survivors; ``int``
    sends SIGINT and waits ``grace`` (the run may be saving a checkpoint); ``kill`` sends
    SIGKILL and waits up to :data:`KILL_WAIT`. Processes that joined the tree since the plan
    (new workers) are included; if anything fails a check, nothing is signalled.

    Args:
        plan: from :func:`plan_kill`.
        signal: ``term``, ``int`` or ``kill``.
        grace: seconds to wait before escalating or giving up.
        audit_path: the audit log (see :func:`default_audit_path`); the user's state
            directory when ``None`` or not writable.
        reason: why (a rule name for auto-kill), written to the audit log.
        read_only: refuse.
        owner_of: uid lookup, injectable for tests.
    """
    if signal not in SIGNALS:
        raise ValueError(f"unknown signal {signal!r}; expected one of {sorted(SIGNALS)}")
    if read_only:
        refusal = Refusal("tracktui is read-only: no process is signalled", "read_only")
        return KillReport(plan.run_dir, plan.run_name, signal, refusal)
    audit = _Audit(audit_path)
    try:
        # Ownership may have changed since the plan (a run.json replaced by someone else).
        mine = check_evidence(plan.run_dir, plan.evidence or None)
        if mine is not None:
            return _refuse(plan, signal, mine, reason, audit)
        if plan.slurm_job_id is not None:
            return _scancel(plan, signal, reason, audit)
        return _kill_tree(plan, signal, grace, reason, audit, owner_of)
    finally:
        audit.close()
        if plan.pins is not None:
            plan.pins.close()


def _notes(audit: _Audit, *extra: str) -> tuple[str, ...]:
    return (*extra, *([audit.problem] if audit.problem else []))


def _refuse(
    plan: KillPlan, signal: str, refusal: Refusal, reason: str | None, audit: _Audit
) -> KillReport:
    pids = plan.tree.pids if plan.tree is not None else ()
    audit.write(
        _entry(
            plan.run_dir, plan.run_name, pids, SIGNALS[signal].name, f"refused: {refusal}", reason
        )
    )
    return KillReport(
        plan.run_dir, plan.run_name, signal, refusal, notes=_notes(audit), audit_path=audit.path
    )


def _kill_tree(
    plan: KillPlan,
    signal: str,
    grace: float,
    reason: str | None,
    audit: _Audit,
    owner_of: Callable[[ProcessInfo], Collection[int]],
) -> KillReport:
    fresh_pins = Pins() if pidfd_available() else None
    try:
        return _signal_tree(plan, signal, grace, reason, audit, owner_of, fresh_pins)
    finally:
        if fresh_pins is not None:
            fresh_pins.close()


def _signal_tree(
    plan: KillPlan,
    signal: str,
    grace: float,
    reason: str | None,
    audit: _Audit,
    owner_of: Callable[[ProcessInfo], Collection[int]],
    fresh_pins: Pins | None,
) -> KillReport:
    assert plan.tree is not None
    root = plan.tree.root
    pins = plan.pins if fresh_pins is not None else None
    root_fd = pins.get(root.pid, root.create_time) if pins is not None else None
    if root_fd is not None and _exited(root_fd):
        # The pinned process is gone: whatever holds its pid now is not the run's.
        exited = Refusal(f"the run's process {root.pid} already exited", "not_running")
        return _refuse(plan, signal, exited, reason, audit)
    fresh = snapshot_tree(root.pid, root.create_time)
    if isinstance(fresh, Refusal):
        if fresh.code == "not_running":
            fresh = Refusal(f"the run's process {root.pid} already exited", "not_running")
        return _refuse(plan, signal, fresh, reason, audit)
    tree = _merge_trees(fresh, plan.tree)
    own_pids, own_pgid, own_sid = our_identity()
    refusal = check_kill(
        plan.meta,
        tree,
        this_host=socket.gethostname(),
        this_uid=os.getuid(),
        own_pids=own_pids,
        own_pgid=own_pgid,
        own_sid=own_sid,
        owner_of=owner_of,
    )
    if refusal is not None:
        return _refuse(plan, signal, refusal, reason, audit)

    sig = SIGNALS[signal]
    fds: dict[int, int | None] = {}
    outcomes: dict[int, str] = {}
    for proc in tree.processes:
        fd: int | None = None
        if fresh_pins is not None:
            # Planned processes keep the pidfd taken at planning; newcomers are pinned now,
            # right after the fresh snapshot verified them.
            fd = pins.get(proc.pid, proc.create_time) if pins is not None else None
            if fd is None:
                fd = fresh_pins.pin(proc.pid, proc.create_time)
            if fd is None:
                outcomes[proc.pid] = "gone"
                continue
        fds[proc.pid] = fd
        outcomes[proc.pid] = _send(tree.handles[proc.pid], fd, sig)
    signalled = tuple(pid for pid, outcome in outcomes.items() if outcome == "sent")
    denied = [pid for pid, outcome in outcomes.items() if outcome == "denied"]
    gone = [pid for pid, outcome in outcomes.items() if outcome == "gone"]
    handles = [tree.handles[pid] for pid in signalled]
    waited = KILL_WAIT if signal == "kill" else grace
    survivors = _wait_gone(handles, waited)
    notes = [f"permission denied for pid {pid}" for pid in denied]
    if gone:
        notes.append(f"exited before the signal, not signalled: pid {_pid_list(gone)}")
    if fresh_pins is None:
        notes.append(WEAK_IDENTITY)
    audit.write(
        _entry(
            plan.run_dir,
            plan.run_name,
            tree.pids,
            sig.name,
            _result(survivors, f"{len(survivors)} alive after {waited:g} s"),
            reason,
        )
    )
    escalated: tuple[int, ...] = ()
    if survivors and signal == "term":
        escalated = tuple(h.pid for h in survivors)
        for handle in survivors:
            _send(handle, fds.get(handle.pid), _signal.SIGKILL)
        survivors = _wait_gone(survivors, KILL_WAIT)
        audit.write(
            _entry(
                plan.run_dir,
                plan.run_name,
                escalated,
                "SIGKILL",
                _result(survivors, f"{len(survivors)} still alive"),
                reason,
            )
        )
    left = tuple(info for h in survivors if (info := _info(h)) is not None)
    left += tuple(p for p in tree.processes if p.pid in denied)
    return KillReport(
        plan.run_dir,
        plan.run_name,
        signal,
        None,
        signalled,
        escalated,
        left,
        _notes(audit, *notes),
        audit.path,
    )


def _result(survivors: Collection[psutil.Process], alive_text: str) -> str:
    if not survivors:
        return "all exited"
    return f"{alive_text}: {_pid_list(h.pid for h in survivors)}"


def _scancel(plan: KillPlan, signal: str, reason: str | None, audit: _Audit) -> KillReport:
    """Cancel or signal the plan's Slurm job after checking it again with Slurm.

    ``term``: plain ``scancel`` (Slurm's cancel: SIGTERM to every step and the batch
    script, SIGKILL after KillWait; the job ends CANCELLED). ``int``: ``--signal=INT
    --full``, which reaches the batch script too and leaves the job to end by itself.
    ``kill``: ``--signal=KILL --full``, which Slurm carries out as the full cancel. A
    queued job has nothing to signal: every kind cancels it. (``--signal=TERM`` is not
    used: Slurm 22.05 records the job as a failed launch instead of cancelled.)
    """
    found = _check_slurm(plan.meta)
    if isinstance(found, Refusal):
        return _refuse(plan, signal, found, reason, audit)
    job = str(plan.slurm_job_id)
    argv = ["scancel", job]
    if signal != "term" and found.status != "queued":
        argv = ["scancel", f"--signal={SIGNALS[signal].name[3:]}", "--full", job]
    try:
        done = subprocess.run(argv, capture_output=True, timeout=60, check=False)
        output = (done.stdout + done.stderr).decode("utf-8", "replace").strip()
        code: int | None = done.returncode
    except (OSError, subprocess.TimeoutExpired) as error:
        output, code = str(error), None
    shown = sanitize(" ".join(argv) + f" -> exit {code}" + (f": {output}" if output else ""), 600)
    entry = _entry(
        plan.run_dir, plan.run_name, [], f"scancel {SIGNALS[signal].name}", shown, reason
    )
    audit.write({**entry, "slurm_job_id": job, "slurm_state": found.state})
    if code != 0:
        failed = Refusal(f"scancel failed: {shown}", "slurm")
        return KillReport(
            plan.run_dir, plan.run_name, signal, failed, notes=_notes(audit), audit_path=audit.path
        )
    return KillReport(
        plan.run_dir,
        plan.run_name,
        signal,
        notes=_notes(audit, shown),
        audit_path=audit.path,
        slurm_job_id=job,
    )


def kill_run(
    run_dir: Path,
    meta: Mapping[str, Any],
    *,
    signal: SignalName = "term",
    grace: float = 10.0,
    audit_path: Path | None = None,
    read_only: bool = False,
    reason: str | None = None,
    owner_of: Callable[[ProcessInfo], Collection[int]] = process_uids,
    evidence: Sequence[Path] | None = None,
) -> KillReport:
    """Plan and execute in one go (headless use and auto-kill); refusals are audited too."""
    name = _run_name(run_dir, meta)
    plan = plan_kill(run_dir, meta, read_only=read_only, owner_of=owner_of, evidence=evidence)
    if isinstance(plan, Refusal):
        if plan.code == "read_only":
            return KillReport(run_dir, name, signal, plan)
        audit = _Audit(audit_path)
        try:
            placeholder = KillPlan(run_dir, name, "", "", dict(meta))
            return _refuse(placeholder, signal, plan, reason, audit)
        finally:
            audit.close()
    return execute(plan, signal, grace, audit_path, reason, owner_of=owner_of)
