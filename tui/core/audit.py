"""What tracktui's own audit log says it did: evidence that a run was stopped by us.

Every kill appends one JSON line to ``ROOT/.tracktui/audit.jsonl`` (or to the user's state
directory when ROOT is not writable, DESIGN.md §6). A run whose process tracktui stopped
records nothing itself (run files are never rewritten), so the status deriver reads these
lines back: a run the log says we signalled, with no write after that, is ``killed``.

Only logs owned by the user running tracktui are believed: another user cannot make one of
your runs look killed by planting a log in a shared ROOT. Lines are parsed leniently (a
torn last line or a foreign line is skipped) and the read is bounded to the newest part of
each log.
"""

from __future__ import annotations

import json
import os
import stat
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path

from tui.core.timefmt import parse_time

READ_LIMIT = 4 * 1024 * 1024
"""Newest bytes of each log that are read (tens of thousands of kills)."""


@dataclass(frozen=True, slots=True)
class Stop:
    """One stop of a run that the audit log records as carried out.

    Attributes:
        time: when the kill finished (epoch seconds).
        signal: the signal sent (``SIGTERM``...) or ``scancel SIG...``.
        pids: the processes signalled.
    """

    time: float
    signal: str
    pids: tuple[int, ...]


def state_log() -> Path:
    """The audit log in the user's state directory (used when ROOT is not writable)."""
    state = os.environ.get("XDG_STATE_HOME") or str(Path.home() / ".local" / "state")
    return Path(state) / "tracktui" / "audit.jsonl"


def logs_for(root: Path) -> tuple[Path, ...]:
    """Every audit log that may record kills of runs under ``root``."""
    return (root / ".tracktui" / "audit.jsonl", state_log())


class AuditReader:
    """Reads audit logs again only when they change; maps run directories to their stops.

    Args:
        paths: the audit logs to read (see :func:`logs_for`).
        uid: whose logs to believe (default: the current user).
    """

    def __init__(self, paths: Iterable[Path], uid: int | None = None) -> None:
        self.paths = tuple(paths)
        self.uid = os.getuid() if uid is None else uid
        self._stamps: dict[Path, tuple[int, int, int, int] | None] = {}
        self._stops: dict[Path, dict[str, Stop]] = {}
        self.ignored: tuple[str, ...] = ()
        """Logs skipped because someone else owns them or others may write them."""

    def stops(self) -> Mapping[str, Stop]:
        """The newest carried-out stop per run directory (absolute path as the log names it)."""
        ignored: list[str] = []
        merged: dict[str, Stop] = {}
        for path in self.paths:
            for run, stop in self._read(path, ignored).items():
                known = merged.get(run)
                if known is None or stop.time > known.time:
                    merged[run] = stop
        self.ignored = tuple(ignored)
        return merged

    def _read(self, path: Path, ignored: list[str]) -> dict[str, Stop]:
        try:
            fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC)
        except OSError:
            self._stamps.pop(path, None)
            self._stops.pop(path, None)
            return {}
        try:
            info = os.fstat(fd)
            if not stat.S_ISREG(info.st_mode):
                return {}
            if info.st_uid != self.uid or info.st_mode & stat.S_IWOTH:
                ignored.append(f"{path}: not owned by you or writable by others")
                return {}
            stamp = (info.st_dev, info.st_ino, info.st_size, info.st_mtime_ns)
            if self._stamps.get(path) == stamp:
                return self._stops.get(path, {})
            start = max(0, info.st_size - READ_LIMIT)
            data = os.pread(fd, info.st_size - start, start)
        except OSError:
            return {}
        finally:
            os.close(fd)
        stops = _parse(data, skip_first=start > 0)
        self._stamps[path] = stamp
        self._stops[path] = stops
        return stops


def _parse(data: bytes, skip_first: bool) -> dict[str, Stop]:
    lines = data.split(b"\n")
    if skip_first:
        lines = lines[1:]  # the read began mid-line
    stops: dict[str, Stop] = {}
    for line in lines:
        try:
            entry = json.loads(line)
        except ValueError:
            continue  # a torn last line, or not ours
        if not isinstance(entry, dict):
            continue
        run, result, signal = entry.get("run"), entry.get("result"), entry.get("signal")
        when = parse_time(entry.get("time"))
        if not isinstance(run, str) or not isinstance(signal, str) or when is None:
            continue
        if not isinstance(result, str) or result.startswith("refused"):
            continue
        pids = entry.get("pids")
        numbers = tuple(p for p in pids if isinstance(p, int)) if isinstance(pids, list) else ()
        stops[run] = Stop(when, signal, numbers)
    return stops
