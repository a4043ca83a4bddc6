"""Which run holds which GPU: each GPU process joined to a run through its process tree.

Two steps, so the slow one stays off the thread that owns the runs:

1. :func:`look` (any thread): read the GPUs through a provider, then, for every process on
   a GPU, its ancestry from ``/proc`` (pid, parent, create time, uid, session) up to init,
   and the leader of its session. The cost grows with the number of GPU processes and
   their depth, never with the number of runs.
2. :func:`attribute` (the store's thread): match those ancestries against the runs'
   identities, ``(pid, create time)`` from ``run.json`` or from the process found writing
   the run's files. A GPU process belongs to a run when the run's process is the process
   itself or one of its ancestors (the nearest such run wins), or when it sits in a
   session the run's process leads and has its uid (a DataLoader worker whose parent died
   is reparented to init but keeps the session): the same tree a kill would take
   (:func:`tui.core.procs.snapshot_tree`). The create time must match, so a reused pid
   never claims a GPU.

NVML reports pids in the driver's pid namespace, the host's. When tracktui runs in another
pid namespace (a container without ``--pid=host``), those pids mean other processes here,
so attribution is declared unavailable rather than guessed.
"""

from __future__ import annotations

import os
import shlex
from collections import defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import psutil

from tui.core.gpu.reading import GpuProcess, GpuProvider, GpuReading
from tui.core.rundir import user_name
from tui.core.sanitize import sanitize
from tui.core.values import real_number

if TYPE_CHECKING:
    from tui.core.store import RunStore

INIT_PID_NAMESPACE = "pid:[4026531836]"
"""``/proc/self/ns/pid`` in the initial pid namespace (the kernel's fixed inode)."""

OTHER_NAMESPACE = (
    "GPU use per run is unavailable: tracktui runs in a pid namespace other than the "
    "driver's (a container without --pid=host), so the driver's pids name other processes here"
)

CREATE_TIME_TOLERANCE = 0.01
"""Seconds two create times may differ and still name the same process (as procs.py)."""

_ALIVE = frozenset({"running", "stalled"})
_DEPTH = 256
_COMMAND = 200


@dataclass(frozen=True, slots=True)
class Ancestor:
    """One process of an ancestry, as ``/proc`` showed it."""

    pid: int
    ppid: int
    create_time: float
    uid: int
    sid: int


@dataclass(frozen=True, slots=True)
class Owner:
    """What ``/proc`` says about the process behind one GPU pid.

    Attributes:
        pid: the pid.
        user: its owner's name (sanitized).
        uid: its real uid.
        command: its command line, shell-quoted, sanitized and cut short.
        chain: the process, then its parent, and so on up to init.
        leader: the leader of its session, when that is alive and not in ``chain``.
    """

    pid: int
    user: str
    uid: int
    command: str
    chain: tuple[Ancestor, ...]
    leader: Ancestor | None = None


@dataclass(frozen=True, slots=True)
class HostGpu:
    """A GPU reading with the ancestry of each GPU process: all attribution needs.

    Attributes:
        reading: what the provider saw.
        owners: by pid, the GPU processes visible in ``/proc`` (absent: gone, or hidden).
        note: why attribution is unavailable (another pid namespace), else ``None``.
    """

    reading: GpuReading
    owners: Mapping[int, Owner] = field(default_factory=dict)
    note: str | None = None


@dataclass(frozen=True, slots=True)
class Identity:
    """A run's process as evidence names it."""

    key: str
    pid: int
    create_time: float


@dataclass(frozen=True, slots=True)
class DeviceUse:
    """A run's share of one GPU.

    Attributes:
        index: the GPU.
        memory: bytes its processes hold there.
        utilization: percent of the GPU's SMs its processes kept busy, or ``None`` when
            the driver gives no per-process samples and other processes share the GPU.
    """

    index: int
    memory: int
    utilization: float | None


@dataclass(frozen=True, slots=True)
class GpuUse:
    """A run's GPU use in one reading (equal when the figures are, whatever the time).

    Attributes:
        time: the reading's wall time.
        memory: bytes held by the run's processes, over every GPU.
        utilization: mean over its GPUs of :attr:`DeviceUse.utilization`; ``None`` when
            any of them is unknown or the run is on no GPU.
        devices: its share of each GPU it is on, by index.
        processes: its GPU processes.
    """

    time: float = field(compare=False)
    memory: int = 0
    utilization: float | None = None
    devices: tuple[DeviceUse, ...] = ()
    processes: tuple[GpuProcess, ...] = ()

    @property
    def on_gpu(self) -> bool:
        """True when a process of the run is on a GPU."""
        return bool(self.processes)


@dataclass(frozen=True, slots=True)
class Holder:
    """A GPU process and whom it belongs to.

    Attributes:
        process: what the driver said about it.
        runs: keys of the runs it belongs to (empty: no run; one process may back
            several runs, e.g. one NePS worker for several configs).
        user: its owner, or ``"?"`` when ``/proc`` does not show it.
        command: its command line, or ``""``.
        ours: owned by the user tracktui runs as.
    """

    process: GpuProcess
    runs: tuple[str, ...] = ()
    user: str = "?"
    command: str = ""
    ours: bool = False


@dataclass(frozen=True, slots=True)
class GpuState:
    """One reading attributed to runs.

    Attributes:
        reading: the GPUs and their processes.
        runs: the GPU use of every run whose process is known and alive, by key.
        holders: every GPU process with its runs, in device and pid order.
        note: why GPU use per run is unavailable (no GPU, another pid namespace), or
            ``None`` when it was attributed.
    """

    reading: GpuReading
    runs: Mapping[str, GpuUse] = field(default_factory=dict)
    holders: tuple[Holder, ...] = ()
    note: str | None = None

    @property
    def attributed(self) -> bool:
        """True when GPUs were read and their processes matched to runs."""
        return self.reading.available and self.note is None

    def apply(self, store: RunStore) -> list[str]:
        """Give every run its :class:`GpuUse` (``None``: unknown); returns the keys whose
        figures changed. Each run gets the new reading's time even when they did not."""
        changed = []
        for run in store:
            use = self.runs.get(run.key)
            if use != run.gpu:
                changed.append(run.key)
            run.gpu = use
        return changed

    def memory_by_pid(self) -> dict[int, tuple[int, int]]:
        """``pid -> (bytes, device)`` for every GPU process with a known memory figure."""
        return {
            h.process.pid: (h.process.memory, h.process.device)
            for h in self.holders
            if h.process.memory is not None
        }

    def on_device(self, index: int) -> list[Holder]:
        """The processes on GPU ``index``."""
        return [h for h in self.holders if h.process.device == index]


# Step 1: the ancestry of GPU processes (any thread) ---------------------------------------
def namespace_note(path: str = "/proc/self/ns/pid") -> str | None:
    """:data:`OTHER_NAMESPACE` when this process is not in the initial pid namespace."""
    try:
        link = os.readlink(path)
    except OSError:  # no procfs, or no permission: nothing says we are elsewhere
        return None
    return None if link == INIT_PID_NAMESPACE else OTHER_NAMESPACE


class _Proc:
    """Reads ancestors from ``/proc`` through psutil, each pid once per look."""

    def __init__(self) -> None:
        self.seen: dict[int, Ancestor | None] = {}

    def get(self, pid: int) -> Ancestor | None:
        if pid in self.seen:
            return self.seen[pid]
        found: Ancestor | None = None
        try:
            proc = psutil.Process(pid)
            with proc.oneshot():
                found = Ancestor(
                    pid, proc.ppid(), proc.create_time(), proc.uids().real, os.getsid(pid)
                )
        except (psutil.Error, OSError):
            found = None
        self.seen[pid] = found
        return found

    def chain(self, pid: int) -> tuple[Ancestor, ...]:
        out: list[Ancestor] = []
        node = self.get(pid)
        while node is not None and len(out) < _DEPTH:
            out.append(node)
            if node.ppid <= 0 or node.ppid == node.pid:
                break
            node = self.get(node.ppid)
        return tuple(out)


def _command(pid: int) -> str:
    try:
        proc = psutil.Process(pid)
        argv = proc.cmdline()
        text = shlex.join(argv) if argv else f"[{proc.name()}]"
    except (psutil.Error, OSError):
        return ""
    return sanitize(text, _COMMAND)


def owners(pids: Iterable[int]) -> dict[int, Owner]:
    """The ancestry of each pid still visible in ``/proc``."""
    reader = _Proc()
    found: dict[int, Owner] = {}
    for pid in sorted(set(pids)):
        chain = reader.chain(pid)
        if not chain:
            continue
        me = chain[0]
        leader = None
        if me.sid > 0 and all(node.pid != me.sid for node in chain):
            leader = reader.get(me.sid)
        found[pid] = Owner(
            pid=pid,
            user=sanitize(user_name(me.uid), 64),
            uid=me.uid,
            command=_command(pid),
            chain=chain,
            leader=leader,
        )
    return found


def look(provider: GpuProvider, namespace: str = "/proc/self/ns/pid") -> HostGpu:
    """Read the GPUs and the ancestry of every process on them (see the module docstring).

    Args:
        provider: reads the GPUs.
        namespace: this process's pid-namespace link (tests point it elsewhere).
    """
    reading = provider.read()
    if not reading.available:
        return HostGpu(reading)
    note = namespace_note(namespace)  # also with no process listed: a container may see none
    if note is not None:
        return HostGpu(reading, note=note)
    return HostGpu(reading, owners(p.pid for p in reading.processes))


# Step 2: matching (the store's thread) ----------------------------------------------------
def identities(store: RunStore, host: str | None = None) -> list[Identity]:
    """The process of every alive run, when evidence names one.

    A recorded pid (with its create time) counts when run.json names this host or none;
    otherwise the process found writing the run's files.
    """
    out = []
    for run in store:
        if run.status not in _ALIVE:
            continue
        meta = run.meta
        pid, created = meta.get("pid"), real_number(meta.get("pid_create_time"))
        where = meta.get("host")
        here = host is None or not isinstance(where, str) or not where or where == host
        if type(pid) is int and pid > 0 and created is not None and here:
            out.append(Identity(run.key, pid, created))
            continue
        found = run.process
        if found is not None and found.pid is not None and found.create_time is not None:
            out.append(Identity(run.key, found.pid, found.create_time))
    return out


def _same(a: float, b: float) -> bool:
    return abs(a - b) <= CREATE_TIME_TOLERANCE


def _runs_of(owner: Owner | None, roots: Mapping[int, list[Identity]]) -> tuple[str, ...]:
    if owner is None:
        return ()
    for node in owner.chain:
        candidates = roots.get(node.pid)
        if candidates:
            keys = tuple(c.key for c in candidates if _same(c.create_time, node.create_time))
            if keys:
                return keys
    leader = owner.leader
    if leader is not None and leader.uid == owner.uid:
        candidates = roots.get(leader.pid, [])
        return tuple(c.key for c in candidates if _same(c.create_time, leader.create_time))
    return ()


def _use(reading: GpuReading, mine: list[GpuProcess], sole: Mapping[int, bool]) -> GpuUse:
    by_device: dict[int, list[GpuProcess]] = defaultdict(list)
    for process in mine:
        by_device[process.device].append(process)
    devices = []
    for index in sorted(by_device):
        procs = by_device[index]
        device = reading.device(index)
        util: float | None = None
        if device is not None and device.process_samples:
            util = min(100.0, sum(p.sm_utilization or 0.0 for p in procs))
        elif device is not None and sole.get(index, False):
            util = device.utilization  # the run is alone on the GPU: its figure is the run's
        devices.append(DeviceUse(index, sum(p.memory or 0 for p in procs), util))
    known = [d.utilization for d in devices if d.utilization is not None]
    utilization = sum(known) / len(known) if devices and len(known) == len(devices) else None
    return GpuUse(
        reading.time, sum(d.memory for d in devices), utilization, tuple(devices), tuple(mine)
    )


def attribute(host: HostGpu, runs: Iterable[Identity], uid: int | None = None) -> GpuState:
    """Match the GPU processes of ``host`` to ``runs`` (see the module docstring).

    Args:
        host: what :func:`look` found.
        runs: the identities of the alive runs (:func:`identities`).
        uid: the user tracktui runs as (default: this process's real uid).
    """
    reading = host.reading
    me = os.getuid() if uid is None else uid
    if not reading.available:
        return GpuState(reading, note=reading.note or "no GPU was read")
    if host.note is not None:
        return GpuState(
            reading, holders=tuple(Holder(p) for p in reading.processes), note=host.note
        )
    identified = list(runs)
    roots: dict[int, list[Identity]] = defaultdict(list)
    for identity in identified:
        roots[identity.pid].append(identity)
    holders: list[Holder] = []
    per_run: dict[str, list[GpuProcess]] = defaultdict(list)
    for process in reading.processes:
        owner = host.owners.get(process.pid)
        keys = _runs_of(owner, roots)
        for key in keys:
            per_run[key].append(process)
        if owner is None:
            holders.append(Holder(process, keys))
        else:
            holders.append(Holder(process, keys, owner.user, owner.command, owner.uid == me))
    on_device: dict[int, list[tuple[str, ...]]] = defaultdict(list)
    for holder in holders:
        on_device[holder.process.device].append(holder.runs)
    nothing = GpuUse(reading.time)
    uses = {}
    for identity in identified:
        key = identity.key
        mine = per_run.get(key)
        if not mine:
            uses[key] = nothing
            continue
        sole = {d: all(key in keys for keys in owned) for d, owned in on_device.items()}
        uses[key] = _use(reading, mine, sole)
    holders.sort(key=lambda h: (h.process.device, h.process.pid))
    return GpuState(reading, uses, tuple(holders))
