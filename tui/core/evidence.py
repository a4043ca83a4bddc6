"""Evidence of life and death beyond the run files: writer processes and our audit log.

A run's files say what it logged; whether it is still alive needs more (DESIGN.md §5).
:class:`EvidenceGatherer` collects, off the main thread, the facts the status deriver
needs for every run: the process holding its files open for writing
(:mod:`tui.core.openfiles`), tracktui's own record of having stopped it
(:mod:`tui.core.audit`) and, for a run that names a Slurm job, what Slurm says about the
job (:mod:`tui.core.slurm`, one batched call for all runs). The result is frozen;
:meth:`Evidence.apply` hands it to the runs on the thread that owns the store.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from tui.core.audit import AuditReader, Stop, logs_for
from tui.core.filesystems import is_network_filesystem
from tui.core.openfiles import (
    SCAN_INTERVAL,
    FileId,
    FileIndex,
    RunFile,
    RunProcess,
    WriterScan,
    WriterScanner,
    file_ids,
)
from tui.core.sanitize import unescape_path
from tui.core.slurm import SlurmJob, SlurmTracker
from tui.core.store import RunStore

# A gathering may use this share of a core: its pause is stretched to its CPU cost / SHARE.
SHARE = 0.002

# Every run file is stat'ed again at least this often, whatever the change tracking said.
FULL_SECONDS = 300.0

# While no run changes and every writer found still holds its file, the processes are
# looked through again at least this often (a process that opened a run file and has not
# written to it yet is found by then), and no more than REST_SHARE of a core allows (a box
# where other processes hold thousands of descriptors: another tracktui, a TensorBoard).
# A run that changed is looked for at once.
SCAN_SECONDS = 30.0
REST_SHARE = 0.0005


def _normal(path: str | Path) -> str:
    return os.path.normpath(os.path.abspath(path))


@dataclass(frozen=True, slots=True)
class Evidence:
    """What one gathering found (plain mappings, so it pickles into worker processes).

    Attributes:
        processes: runs with a writer process, by run key (absent: none found).
        stops: tracktui's newest carried-out kill per run directory (normalised path).
        scanned: how many run files the scan looked for.
        seconds: wall time of the process scan.
        cpu_seconds: CPU time of the whole gathering (files, processes, audit log, Slurm).
        pause: seconds until the next periodic gathering, stretched so that gatherings use
            at most ``SHARE`` of a core (a box with many processes, a ROOT of many runs).
        local: ROOT is on a local filesystem, so a writer of its files is a process of this
            box and the scan would have seen it.
        slurm: what Slurm says about each run's job, by run key (absent: no job named).
        slurm_commands: how many Slurm commands the gathering ran (one squeue, one sacct).
    """

    processes: Mapping[str, RunProcess[str]]
    stops: Mapping[str, Stop]
    scanned: int
    seconds: float
    cpu_seconds: float
    pause: float
    local: bool
    slurm: Mapping[str, SlurmJob] = field(default_factory=dict)
    slurm_commands: int = 0

    def apply(self, store: RunStore, root: Path) -> list[str]:
        """Give every run its process, stop and Slurm job; returns the keys that changed."""
        changed = []
        base = _normal(root)
        for run in store:
            process = self.processes.get(run.key)
            stop = (
                self.stops.get(os.path.normpath(os.path.join(base, unescape_path(run.path))))
                if self.stops
                else None
            )
            if process != run.process or stop != run.stop or run.scanned != self.local:
                run.process, run.stop, run.scanned = process, stop, self.local
                changed.append(run.key)
            job = self.slurm.get(run.key)
            if job != run.slurm:
                run.slurm = job
                if run.key not in changed[-1:]:
                    changed.append(run.key)
        return changed


class EvidenceGatherer:
    """Scans for writer processes and reads the audit log, reusing what did not change.

    Args:
        root: the directory holding the runs (its audit log is read).
        scanner: the process scanner (default: the current user's processes).
        audit: the audit reader (default: ROOT's log and the state directory's).
        local: whether ROOT is on a local filesystem (default: asked of the mount table).
        slurm: asks Slurm about the runs' jobs (default: the real squeue and sacct).
    """

    def __init__(
        self,
        root: Path,
        scanner: WriterScanner | None = None,
        audit: AuditReader | None = None,
        local: bool | None = None,
        slurm: SlurmTracker | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.root = root
        self.local = not is_network_filesystem(root) if local is None else local
        self.scanner = scanner or WriterScanner()
        self.audit = audit or AuditReader(logs_for(root))
        self.slurm = slurm or SlurmTracker()
        self.clock = clock
        self._files: dict[str, tuple[Sequence[Path], dict[FileId, RunFile[str]]]] = {}
        self._index: FileIndex[str] | None = None
        self._seen: Mapping[str, Sequence[Path]] | None = None  # the files indexed last
        self._full_at = float("-inf")
        self._full_every = FULL_SECONDS
        self._scan: WriterScan[str] | None = None  # the last look through the processes
        self._scanned: tuple[FileIndex[str], float] | None = None  # its index, and when

    def gather(
        self,
        files: Mapping[str, Sequence[Path]],
        touched: Collection[str] | None = None,
        *,
        look: bool = False,
    ) -> Evidence:
        """Look for the writers of ``files`` (run key -> its files) and read the audit log.

        ``touched``: the runs whose files may have changed since the last gathering (see
        ``Engine.touched_since``); only theirs are stat'ed again (a rotated or recreated
        file has a new inode), and the others keep the identity found before. ``None``
        stats every file, as does a gathering ``FULL_SECONDS`` (longer for many files) after
        the last full one.

        The processes are looked through (every descriptor of every process of ours) when
        a run changed or its files did, when a writer found before let go of its file, and
        ``SCAN_SECONDS`` after the last look (or longer, for ``REST_SHARE``), or when asked
        (``look``: the user opened a run and waits for its process); otherwise the writers
        found before are checked one by one and kept.
        """
        cpu = time.thread_time()
        now = self.clock()
        full = touched is None or now >= self._full_at + self._full_every
        index = self._index_of(files, None if full else touched)
        indexed = time.thread_time()
        scan = self._writers(index, now, not full and not touched and not look)
        stops = {_normal(run): stop for run, stop in self.audit.stops().items()}
        asked = time.thread_time()
        jobs = self.slurm.refresh(files, None if full else touched)
        done = time.thread_time()
        cost = done - cpu
        # Stat'ing files (for their identity, and run.json for a Slurm job) costs in
        # proportion to the runs that changed, or to all of them on a full pass: full
        # passes are spaced by that cost. The pause is paced by the rest, what every
        # gathering costs even when nothing changed (the processes, the audit log, squeue).
        per_file = (indexed - cpu) + (done - asked)
        if full:
            self._full_at, self._full_every = now, max(FULL_SECONDS, per_file / SHARE)
        recurring = cost - per_file
        return Evidence(
            processes=dict(scan.runs),
            stops=stops,
            scanned=len(index),
            seconds=scan.seconds,
            cpu_seconds=cost,
            pause=max(SCAN_INTERVAL, recurring / SHARE),
            local=self.local,
            slurm=dict(jobs.jobs),
            slurm_commands=jobs.commands,
        )

    def _writers(self, index: FileIndex[str], now: float, quiet: bool) -> WriterScan[str]:
        """The writers of ``index``'s files: those found before when nothing changed
        (``quiet``, the same index) and each still holds its file, else a new scan."""
        last, scanned = self._scan, self._scanned
        if (
            quiet
            and last is not None
            and scanned is not None
            and scanned[0] is index
            and now < scanned[1] + max(SCAN_SECONDS, last.cpu_seconds / REST_SHARE)
            and self.scanner.holds(last, index)
        ):
            return last
        scan = self.scanner.scan(index)
        self._scan, self._scanned = scan, (index, now)
        return scan

    def _index_of(
        self, files: Mapping[str, Sequence[Path]], touched: Collection[str] | None
    ) -> FileIndex[str]:
        """The files' identities: stat'ed again for the touched runs, new runs and runs whose
        list of files changed; kept for the others. The index is rebuilt only when an
        identity changed."""
        if self._index is not None and files is self._seen and touched is not None and not touched:
            return self._index  # the same files and nothing changed: nothing to stat
        self._seen = files
        cache = self._files
        dirty = self._index is None or len(cache) != len(files) or touched is None
        for key, paths in files.items():
            cached = cache.get(key)
            if (
                touched is None
                or cached is None
                or key in touched
                or (cached[0] is not paths and list(cached[0]) != list(paths))
            ):
                found = file_ids(key, paths)
                if cached is None or cached[1] != found:
                    dirty = True
                cache[key] = (paths, found)
        if len(cache) != len(files):
            for key in [k for k in cache if k not in files]:
                del cache[key]
            dirty = True
        if dirty or self._index is None:
            merged: dict[FileId, RunFile[str]] = {}
            for key in files:  # a file shared by two runs keeps the first that names it
                for file_id, run_file in cache[key][1].items():
                    merged.setdefault(file_id, run_file)
            self._index = FileIndex.of(merged)
        return self._index
