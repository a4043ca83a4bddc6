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
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from tui.core.audit import AuditReader, Stop, logs_for
from tui.core.engine import is_network_filesystem
from tui.core.openfiles import RunProcess, WriterScanner, index_files
from tui.core.sanitize import unescape_path
from tui.core.slurm import SlurmJob, SlurmTracker
from tui.core.store import RunStore


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
        cpu_seconds: CPU time of the process scan.
        pause: seconds until the next periodic gathering (stretched on a busy box).
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
            stop = self.stops.get(os.path.normpath(os.path.join(base, unescape_path(run.path))))
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
    ) -> None:
        self.root = root
        self.local = not is_network_filesystem(root) if local is None else local
        self.scanner = scanner or WriterScanner()
        self.audit = audit or AuditReader(logs_for(root))
        self.slurm = slurm or SlurmTracker()

    def gather(self, files: Mapping[str, Sequence[Path]]) -> Evidence:
        """Look for the writers of ``files`` (run key -> its files) and read the audit log.

        The files are stat'ed afresh each time: a rotated or recreated file has a new inode.
        """
        index = index_files(files)
        scan = self.scanner.scan(index)
        stops = {_normal(run): stop for run, stop in self.audit.stops().items()}
        jobs = self.slurm.refresh(files)
        return Evidence(
            processes=dict(scan.runs),
            stops=stops,
            scanned=len(index),
            seconds=scan.seconds,
            cpu_seconds=scan.cpu_seconds,
            pause=scan.pause(),
            local=self.local,
            slurm=dict(jobs.jobs),
            slurm_commands=jobs.commands,
        )
