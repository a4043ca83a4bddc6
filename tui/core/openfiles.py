"""Find the process behind a run from the files it holds open for writing (DESIGN.md §5).

A run written by a tool tracktui did not launch (a Keras CSV, a TensorBoard events file, a
``python train.py > train.log`` redirect) records no pid, but its writer holds the file
open: ``/proc/PID/fd/N`` names the file and ``/proc/PID/fdinfo/N`` says whether it was
opened for writing. :class:`WriterScanner` looks through the current user's processes for
descriptors on the run files it is given, matched by device and inode (a path may go
through a symlink, a bind mount or another mount namespace; the inode does not), and names
one process per run with the identity a launched run records: pid and psutil's create time.

Cost of one scan: a ``stat`` per process to skip other users' processes (only when we are
privileged: otherwise the kernel refuses the others' descriptors), a listing and a
``readlink`` per descriptor of ours, then, only when the target's file name is one a run
uses, an ``lstat`` of the link (its mode shows a write descriptor) and a ``stat`` of the
target (which also keeps the scan away from unrelated files on a hung network mount).
``/proc/PID/fdinfo``, ``stat`` and ``status`` are read only for processes that write a run
file. Nothing here imports psutil.

Limits: a writer that opens, appends and closes (MLflow's file store, Lightning's CSV
logger) is seen only while it holds the file; a run file reached through a hard link under
another name is not seen; processes of other users are never looked at.
"""

from __future__ import annotations

import os
import time
from collections.abc import Hashable, Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from types import MappingProxyType
from typing import Generic, TypeVar

from tui.core.sanitize import sanitize

K = TypeVar("K", bound=Hashable)

SCAN_INTERVAL = 5.0
"""Seconds between periodic scans on a box with few processes."""

SCAN_SHARE = 0.005
"""Most of a core periodic scans may use on average (see :meth:`WriterScan.pause`)."""

FileId = tuple[int, int]
"""``(st_dev, st_ino)`` of a file: what a descriptor is matched by."""

HELPER_NAMES = frozenset({"wandb-core", "wandb-service"})
"""Process names of helpers that write a run's file on behalf of their parent."""

_HELPER_ARGV = ("-m", "wandb", "service")  # older W&B: ``python -m wandb service``
_ACCESS_MODE = 0o3  # O_ACCMODE: the low two bits of the open flags
_WRITE_MODES = (os.O_WRONLY, os.O_RDWR)
_LINK_WRITE = 0o200  # S_IWUSR on a /proc/PID/fd link: the file is open for writing
# A helper whose parent died is adopted by a reaper (``systemd --user``, a container's
# init): that is not the run's process, and a kill must never be aimed at it.
_REAPERS = frozenset(
    {"systemd", "init", "tini", "dumb-init", "catatonit", "s6-svscan", "runsvdir", "supervisord"}
)
_SHELLS = frozenset({"sh", "dash", "bash", "zsh", "ksh", "mksh", "busybox"})
_ANCESTRY_LIMIT = 256
_CAP_SYS_PTRACE = 19
_READ_LIMIT = 65536
_O_DIR = os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC


@dataclass(frozen=True, slots=True)
class RunFile(Generic[K]):
    """A file of a run, as the caller knows it.

    Attributes:
        key: the run it belongs to (whatever the caller keys runs by).
        path: its path, shown in evidence text.
    """

    key: K
    path: str


@dataclass(frozen=True, slots=True)
class Writer:
    """A process holding a run file open for writing.

    Attributes:
        pid: process id.
        create_time: psutil's create time of the process (seconds since the epoch).
        ppid: parent's pid at the time of the scan.
        name: the process name (``comm``), sanitized.
        path: the run file, as the caller named it.
        fd: the descriptor number.
        helper: True when the process is a known helper writing for its parent.
    """

    pid: int
    create_time: float
    ppid: int
    name: str
    path: str
    fd: int
    helper: bool


@dataclass(frozen=True, slots=True)
class RunProcess(Generic[K]):
    """What a scan found for one run.

    Attributes:
        key: the run.
        writers: every process of ours holding one of its files open for writing, by pid.
        pid: the run's process: the writer, or a helper's parent; ``None`` when the writers
            are unrelated processes (see :attr:`ambiguous`) or a helper's parent is gone.
        create_time: psutil's create time of ``pid``.
        evidence: how it was found, for the user (sanitized).
        files: the run files that name ``pid`` (the evidence whose ownership a kill checks).
    """

    key: K
    writers: tuple[Writer, ...]
    pid: int | None
    create_time: float | None
    evidence: str
    files: tuple[str, ...]

    @property
    def ambiguous(self) -> bool:
        """True when writers were found but no single process can be named: refuse a kill."""
        return self.pid is None


@dataclass(frozen=True, slots=True)
class WriterScan(Generic[K]):
    """The result of one scan.

    Attributes:
        runs: runs with at least one writer, by key; runs without one are absent.
        processes: processes of ours that were looked at.
        descriptors: their descriptors that were read.
        seconds: wall time the scan took.
        cpu_seconds: CPU time the scanning thread spent on it.
    """

    runs: Mapping[K, RunProcess[K]]
    processes: int
    descriptors: int
    seconds: float
    cpu_seconds: float

    def pause(self, interval: float = SCAN_INTERVAL, share: float = SCAN_SHARE) -> float:
        """Seconds until the next periodic scan: ``interval``, stretched so that scans
        use at most ``share`` of a core on a box with many processes."""
        return max(interval, self.cpu_seconds / share)


@dataclass(frozen=True, slots=True)
class _Stat:
    pid: int
    ppid: int
    name: str
    starttime: int


@dataclass(frozen=True, slots=True)
class FileIndex(Generic[K]):
    """The run files a scan looks for, keyed by device and inode.

    Attributes:
        files: each file's run and path, by ``(st_dev, st_ino)``.
        names: the files' base names: a descriptor whose target has none of them is not
            stat'ed (the scan's cheap filter).
    """

    files: Mapping[FileId, RunFile[K]]
    names: frozenset[str]

    @classmethod
    def of(cls, files: Mapping[FileId, RunFile[K]]) -> FileIndex[K]:
        """An index from files whose device and inode the caller already knows."""
        names = frozenset(os.path.basename(f.path) for f in files.values())
        return cls(MappingProxyType(dict(files)), names)

    def __len__(self) -> int:
        return len(self.files)


def index_files(runs: Mapping[K, Iterable[str | Path]]) -> FileIndex[K]:
    """Stat each run's files and key them by device and inode, for :meth:`WriterScanner.scan`.

    Missing files and anything that is not a regular file are left out. A file shared by
    two runs keeps the first run that names it.
    """
    index: dict[FileId, RunFile[K]] = {}
    for key, paths in runs.items():
        for file_id, run_file in file_ids(key, paths).items():
            index.setdefault(file_id, run_file)
    return FileIndex.of(index)


def file_ids(key: K, paths: Iterable[str | Path]) -> dict[FileId, RunFile[K]]:
    """One run's regular files by device and inode (see :func:`index_files`)."""
    found: dict[FileId, RunFile[K]] = {}
    for path in paths:
        try:
            st = os.stat(path)
        except OSError:
            continue
        if (st.st_mode & 0o170000) != 0o100000:  # S_ISREG, without importing stat
            continue
        found.setdefault((st.st_dev, st.st_ino), RunFile(key, str(path)))
    return found


def is_helper(name: str, argv: tuple[str, ...]) -> bool:
    """True for a process that writes a run's file for its parent (W&B's service)."""
    if name in HELPER_NAMES or (argv and os.path.basename(argv[0]) in HELPER_NAMES):
        return True
    size = len(_HELPER_ARGV)
    return any(argv[i : i + size] == _HELPER_ARGV for i in range(len(argv) - size + 1))


class WriterScanner:
    """Finds the processes writing known run files; call :meth:`scan` every few seconds.

    The scanner holds no state between scans beyond its settings, so it can be called on
    demand (a run is opened) as well as on a timer, from a worker thread.

    Args:
        uid: whose processes to look at (default: our real uid).
        proc: where procfs is mounted.
    """

    def __init__(self, *, uid: int | None = None, proc: str = "/proc") -> None:
        self.uid = os.getuid() if uid is None else uid
        self.proc = proc
        self._ticks = os.sysconf("SC_CLK_TCK")
        # Unprivileged, the kernel lets us list only the descriptors of processes whose
        # real, effective and saved uids are all ours: the owner check would be redundant.
        self._check_owner = self.uid != os.getuid() or _privileged(proc)

    def scan(self, index: FileIndex[K]) -> WriterScan[K]:
        """Look for open write descriptors on the files of ``index`` (see :func:`index_files`).

        Processes and descriptors that vanish mid-scan, or cannot be read, are skipped.
        """
        started, cpu = time.perf_counter(), time.thread_time()
        runs: dict[K, RunProcess[K]] = {}
        processes = descriptors = 0
        if index.files:
            hits, processes, descriptors = self._find(index.files, index.names)
            if hits:
                proc_fd = os.open(self.proc, _O_DIR)
                try:
                    runs = self._resolve(proc_fd, index.files, hits)
                finally:
                    os.close(proc_fd)
        return WriterScan(
            MappingProxyType(runs),
            processes,
            descriptors,
            time.perf_counter() - started,
            time.thread_time() - cpu,
        )

    def holds(self, scan: WriterScan[K], index: FileIndex[K]) -> bool:
        """Whether every writer ``scan`` found still holds its run file open for writing:
        the same process (pid, start time and parent), the same descriptor, on a file of
        ``index`` under the same path.

        A few reads per writer, where :meth:`scan` lists every descriptor of every process
        of ours: what changed is known to need a scan, what did not change may still hide
        a new writer (see ``tui.core.evidence.SCAN_SECONDS``).
        """
        writers = [writer for run in scan.runs.values() for writer in run.writers]
        if not writers:
            return True
        try:
            proc_fd = os.open(self.proc, _O_DIR)
        except OSError:
            return False
        try:
            boot = self._boot_time(proc_fd)
            for writer in writers:
                stat = self._read_stat(proc_fd, writer.pid)
                if (
                    stat is None
                    or stat.ppid != writer.ppid
                    or self._create_time(stat, boot) != writer.create_time
                    or not self._writes(proc_fd, writer.pid, writer.fd)
                ):
                    return False
                try:
                    st = os.stat(f"{writer.pid}/fd/{writer.fd}", dir_fd=proc_fd)
                except OSError:
                    return False
                held = index.files.get((st.st_dev, st.st_ino))
                if held is None or held.path != writer.path:
                    return False
            return True
        except OSError:
            return False
        finally:
            os.close(proc_fd)

    def _find(
        self, files: Mapping[FileId, object], names: frozenset[str]
    ) -> tuple[dict[int, list[tuple[int, FileId]]], int, int]:
        """Descriptors of our processes on the files, by pid: the cheap pass over /proc."""
        hits: dict[int, list[tuple[int, FileId]]] = {}
        processes = descriptors = 0
        readlink, stat, listdir = os.readlink, os.stat, os.listdir  # hot loop
        check_owner, uid = self._check_owner, self.uid
        me = str(os.getpid())  # holds the run files open to read them, and writes none
        for entry in listdir(self.proc):
            if not entry.isdigit() or entry == me:
                continue
            base = f"{self.proc}/{entry}"
            try:
                # /proc/PID belongs to the process's effective uid: skip others unopened.
                if check_owner and stat(base, follow_symlinks=False).st_uid != uid:
                    continue
                base += "/fd/"
                fds = listdir(base)
            except OSError:
                continue
            processes += 1
            descriptors += len(fds)
            for fd in fds:
                try:
                    # The link's own mode mirrors the open mode (l-wx for a writer): readers
                    # (``tail -f``, TensorBoard, another tracktui holding thousands of run
                    # files) stop here, at one lstat each. fdinfo confirms writers later.
                    if not stat(base + fd, follow_symlinks=False).st_mode & _LINK_WRITE:
                        continue
                    target = readlink(base + fd)
                    if target[:1] != "/" or target.rpartition("/")[2] not in names:
                        continue
                    st = stat(base + fd)  # follows the link to the open file itself
                except OSError:
                    continue
                file_id = (st.st_dev, st.st_ino)
                if file_id in files:
                    hits.setdefault(int(entry), []).append((int(fd), file_id))
        return hits, processes, descriptors

    def _resolve(
        self,
        proc_fd: int,
        files: Mapping[FileId, RunFile[K]],
        hits: Mapping[int, list[tuple[int, FileId]]],
    ) -> dict[K, RunProcess[K]]:
        """Writers from the descriptors found, then one process per run where one fits."""
        boot = self._boot_time(proc_fd)
        stats: dict[int, _Stat | None] = {}
        by_run: dict[K, list[Writer]] = {}
        for pid, found in hits.items():
            writing = [(fd, file_id) for fd, file_id in found if self._writes(proc_fd, pid, fd)]
            if not writing:
                continue  # readers (``tail -f``, tracktui itself) cost one fdinfo read each
            stat = self._stat(proc_fd, pid, stats)
            if stat is None or not self._ours(proc_fd, pid):
                continue
            # Only an interpreter needs its command line read (``python -m wandb service``).
            argv = self._argv(proc_fd, pid) if stat.name.startswith("python") else ()
            helper = is_helper(stat.name, argv)
            for fd, file_id in writing:
                if not self._still(proc_fd, pid, fd, file_id):
                    continue
                run_file = files[file_id]
                writer = Writer(
                    pid,
                    self._create_time(stat, boot),
                    stat.ppid,
                    sanitize(stat.name, 64),
                    run_file.path,
                    fd,
                    helper,
                )
                by_run.setdefault(run_file.key, []).append(writer)
        return {
            key: self._choose(proc_fd, key, tuple(sorted(writers, key=_order)), stats, boot)
            for key, writers in by_run.items()
        }

    def _choose(
        self,
        proc_fd: int,
        key: K,
        writers: tuple[Writer, ...],
        stats: dict[int, _Stat | None],
        boot: float,
    ) -> RunProcess[K]:
        """The writer, or a helper's parent; the topmost when writers are one family."""
        candidates: dict[int, tuple[float, list[Writer]]] = {}
        for writer in writers:
            pid, create_time = writer.pid, writer.create_time
            if writer.helper:
                parent = self._parent(proc_fd, writer, stats)
                if parent is None:
                    path = _shown(writer.path)
                    return RunProcess(
                        key,
                        writers,
                        None,
                        None,
                        f"open write descriptor on {path} held by helper {writer.name} "
                        f"(pid {writer.pid}) whose parent is gone or not yours",
                        (),
                    )
                pid, create_time = parent.pid, self._create_time(parent, boot)
            candidates.setdefault(pid, (create_time, []))[1].append(writer)
        tops = self._tops(proc_fd, candidates, stats)
        shell: int | None = None
        if len(tops) == 1 and len(candidates) > 1 and candidates[tops[0]][1][0].name in _SHELLS:
            # ``python train.py > log`` under dash: the shell holds the redirect while its
            # child runs, but the child is the run. A child of a shell wrapper wins.
            inner = self._tops(
                proc_fd, {p: c for p, c in candidates.items() if p != tops[0]}, stats
            )
            if len(inner) == 1:
                shell, tops = tops[0], inner
        if len(tops) != 1:
            pids = ", ".join(str(pid) for pid in sorted(tops))
            return RunProcess(
                key,
                writers,
                None,
                None,
                f"open write descriptors on {_shown(writers[0].path)} from {len(tops)} "
                f"unrelated processes ({pids}): choose one before a kill",
                (),
            )
        (chosen,) = tops
        create_time, own = candidates[chosen]
        evidence = f"open write descriptor on {_shown(own[0].path)}"
        if own[0].helper:
            evidence += f" held by its helper {own[0].name} (pid {own[0].pid})"
        if shell is not None:
            evidence += f" (its shell, pid {shell}, holds it too)"
        files = tuple(dict.fromkeys(w.path for w in writers))
        return RunProcess(key, writers, chosen, create_time, evidence, files)

    def _tops(
        self, proc_fd: int, candidates: Mapping[int, object], stats: dict[int, _Stat | None]
    ) -> list[int]:
        """The candidates no other candidate is an ancestor of."""
        return [
            pid
            for pid in candidates
            if not any(
                other != pid and self._descends(proc_fd, pid, other, stats) for other in candidates
            )
        ]

    def _parent(self, proc_fd: int, writer: Writer, stats: dict[int, _Stat | None]) -> _Stat | None:
        """A helper's parent, when it is ours and still the helper's parent."""
        if writer.ppid <= 1:
            return None
        parent = self._stat(proc_fd, writer.ppid, stats)
        if parent is None or parent.name in _REAPERS or not self._ours(proc_fd, parent.pid):
            return None
        # Reparented since? Then the parent we read may be a newcomer on a reused pid.
        again = self._read_stat(proc_fd, writer.pid)
        if again is None or again.ppid != writer.ppid:
            return None
        return parent

    def _descends(
        self, proc_fd: int, pid: int, ancestor: int, stats: dict[int, _Stat | None]
    ) -> bool:
        seen = 0
        stat = self._stat(proc_fd, pid, stats)
        while stat is not None and stat.ppid > 1 and seen < _ANCESTRY_LIMIT:
            if stat.ppid == ancestor:
                return True
            stat = self._stat(proc_fd, stat.ppid, stats)
            seen += 1
        return False

    def _create_time(self, stat: _Stat, boot: float) -> float:
        # The same arithmetic as psutil's Process.create_time(), so identities compare equal.
        return float(stat.starttime) / self._ticks + boot

    def _stat(self, proc_fd: int, pid: int, stats: dict[int, _Stat | None]) -> _Stat | None:
        if pid not in stats:
            stats[pid] = self._read_stat(proc_fd, pid)
        return stats[pid]

    def _read_stat(self, proc_fd: int, pid: int) -> _Stat | None:
        data = _read(proc_fd, f"{pid}/stat")
        if data is None:
            return None
        # comm may hold spaces and parentheses: it ends at the last ')'.
        open_at, close_at = data.find(b"("), data.rfind(b")")
        fields = data[close_at + 2 :].split()
        if open_at < 0 or close_at < 0 or len(fields) < 20:
            return None
        name = data[open_at + 1 : close_at].decode("utf-8", "replace")
        return _Stat(pid, int(fields[1]), name, int(fields[19]))

    def _ours(self, proc_fd: int, pid: int) -> bool:
        """Real, effective and saved uid are all ours (a setuid helper is not ours)."""
        data = _read(proc_fd, f"{pid}/status")
        if data is None:
            return False
        for line in data.splitlines():
            if line.startswith(b"Uid:"):
                return all(int(uid) == self.uid for uid in line.split()[1:4])
        return False

    def _argv(self, proc_fd: int, pid: int) -> tuple[str, ...]:
        data = _read(proc_fd, f"{pid}/cmdline")
        if not data:
            return ()
        return tuple(part.decode("utf-8", "replace") for part in data.rstrip(b"\0").split(b"\0"))

    def _writes(self, proc_fd: int, pid: int, fd: int) -> bool:
        data = _read(proc_fd, f"{pid}/fdinfo/{fd}")
        if data is None:
            return False
        for line in data.splitlines():
            if line.startswith(b"flags:"):
                return int(line.split()[1], 8) & _ACCESS_MODE in _WRITE_MODES
        return False

    def _still(self, proc_fd: int, pid: int, fd: int, file_id: FileId) -> bool:
        """The descriptor still names the file after we read the process's start time.

        A pid reused between the descriptor match and the start time read would need the
        newcomer to hold the same file at the same descriptor: then it is a writer itself.
        """
        try:
            st = os.stat(f"{pid}/fd/{fd}", dir_fd=proc_fd)
        except OSError:
            return False
        return (st.st_dev, st.st_ino) == file_id

    def _boot_time(self, proc_fd: int) -> float:
        # /proc/stat's interrupt counters can run past 64 KiB on a large box: read it all.
        data = _read(proc_fd, "stat", whole=True) or b""
        for line in data.splitlines():
            if line.startswith(b"btime"):
                return float(line.split()[1])
        raise OSError(f"no btime line in {self.proc}/stat")


def _privileged(proc: str) -> bool:
    """Root, or allowed to read any process's descriptors (CAP_SYS_PTRACE)."""
    if os.getuid() == 0 or os.geteuid() == 0:
        return True
    try:
        with open(f"{proc}/self/status", "rb") as status:
            for line in status:
                if line.startswith(b"CapEff:"):
                    return bool(int(line.split()[1], 16) & (1 << _CAP_SYS_PTRACE))
    except OSError:
        pass
    return True


def _read(proc_fd: int, path: str, *, whole: bool = False) -> bytes | None:
    """A procfs file (its first 64 KiB unless ``whole``), or ``None`` when it vanished."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC, dir_fd=proc_fd)
    except OSError:
        return None
    try:
        chunks = [os.read(fd, _READ_LIMIT)]
        while whole and chunks[-1]:
            chunks.append(os.read(fd, _READ_LIMIT))
        return b"".join(chunks)
    except OSError:
        return None
    finally:
        os.close(fd)


def _order(writer: Writer) -> tuple[int, int, str]:
    return writer.pid, writer.fd, writer.path


def _shown(path: str) -> str:
    return sanitize(path, 300)
