"""Samples of a run's machine use: CPU, memory, disk IO and GPU of its process tree.

:class:`TreeSampler` measures the tree of one process (the process and its descendants):
CPU percent since the previous sample, resident memory, and bytes read and written, which
keep counting what exited children had done. :func:`gpu_fields` adds, per GPU the run is
on, its memory and utilisation (:mod:`tui.core.gpu.attribution`). :class:`SystemRecorder`
is the thread of ``tracktui run`` that appends one such sample every few seconds to the
run's ``system.jsonl``; the app uses the same pieces for runs it did not launch.

A ``system.jsonl`` line (DESIGN.md §8)::

    {"_time": "2025-05-01T12:00:00.000000Z", "cpu_percent": 312.5, "rss_bytes": 4123456,
     "read_bytes": 1048576, "write_bytes": 65536,
     "gpu/0/memory_bytes": 40265318400, "gpu/0/utilization": 97.0}

Keys a reader does not know are more series. ``read_bytes``/``write_bytes`` are absent when
the kernel does not show the tree's IO counters; a GPU's keys are present while the run has
a process on it, its utilisation only when it is known.
"""

from __future__ import annotations

import json
import os
import threading
from collections.abc import Callable
from pathlib import Path

import psutil

from tui.core.gpu.attribution import CREATE_TIME_TOLERANCE, GpuUse, Identity, attribute, look
from tui.core.gpu.reading import GpuProvider
from tui.core.timefmt import utc_iso

SYSTEM = "system.jsonl"
"""The file in a run directory that holds its machine-use samples."""

SYSTEM_INTERVAL = 5.0
"""Seconds between two samples ``tracktui run`` writes."""

FIRST_SAMPLE = 1.0
"""Seconds after the start before the first sample (so a short run has one)."""

_Key = tuple[int, float]


class TreeSampler:
    """Measures one process tree, sample after sample (CPU percent needs the previous one).

    Args:
        pid: the tree's root.
        create_time: the root's create time; a different process at ``pid`` is not measured.
    """

    def __init__(self, pid: int, create_time: float | None) -> None:
        self.pid = pid
        self.create_time = create_time
        self._handles: dict[_Key, psutil.Process] = {}
        self._io: dict[_Key, tuple[int, int]] = {}
        self._gone = (0, 0)

    def _root(self) -> psutil.Process | None:
        try:
            root = psutil.Process(self.pid)
            created = root.create_time()
            if root.status() == psutil.STATUS_ZOMBIE:
                return None
        except psutil.Error:
            return None
        if self.create_time is not None and abs(created - self.create_time) > CREATE_TIME_TOLERANCE:
            return None
        return root

    def sample(self) -> dict[str, float] | None:
        """CPU %, RSS and IO bytes of the tree now; ``None`` once its root has gone."""
        root = self._root()
        if root is None:
            return None
        try:
            members = [root, *root.children(recursive=True)]
        except psutil.Error:
            members = [root]
        cpu = 0.0
        rss = 0
        io: dict[_Key, tuple[int, int]] = {}
        counted = True
        handles: dict[_Key, psutil.Process] = {}
        for proc in members:
            try:
                key = (proc.pid, proc.create_time())
                handle = handles[key] = self._handles.get(key, proc)
                with handle.oneshot():
                    cpu += handle.cpu_percent(None)
                    rss += handle.memory_info().rss
                    try:
                        counters = handle.io_counters()
                        io[key] = (counters.read_bytes, counters.write_bytes)
                    except (psutil.AccessDenied, AttributeError):
                        counted = False
            except psutil.Error:
                continue
        read, written = self._gone
        for key, (r, w) in self._io.items():
            if key not in handles:  # exited: what it read and wrote still counts
                read, written = read + r, written + w
            elif key not in io:
                io[key] = (r, w)
        self._gone, self._handles, self._io = (read, written), handles, io
        sample: dict[str, float] = {"cpu_percent": round(cpu, 1), "rss_bytes": rss}
        if counted:
            sample["read_bytes"] = read + sum(r for r, _ in io.values())
            sample["write_bytes"] = written + sum(w for _, w in io.values())
        return sample


def gpu_fields(use: GpuUse | None) -> dict[str, float]:
    """``gpu/<i>/memory_bytes`` and ``gpu/<i>/utilization`` for each GPU the run is on."""
    fields: dict[str, float] = {}
    if use is None:
        return fields
    for device in use.devices:
        fields[f"gpu/{device.index}/memory_bytes"] = device.memory
        if device.utilization is not None:
            fields[f"gpu/{device.index}/utilization"] = round(device.utilization, 1)
    return fields


class SystemRecorder(threading.Thread):
    """Appends a sample of a process tree to ``system.jsonl`` every ``interval`` seconds.

    It must never hurt the run: any trouble stops the recording, not the command.

    Args:
        path: the ``system.jsonl`` to append to.
        pid: the run's process.
        create_time: its create time.
        interval: seconds between samples.
        provider: reads the GPUs (``None``: no GPU fields); created lazily by the caller's
            factory so a box without a driver pays one failed load, in this thread.
        clock: wall clock for ``_time``.
    """

    def __init__(
        self,
        path: Path,
        pid: int,
        create_time: float | None,
        interval: float = SYSTEM_INTERVAL,
        provider: Callable[[], GpuProvider] | None = None,
        clock: Callable[[], float] | None = None,
    ) -> None:
        super().__init__(daemon=True, name="tracktui-system")
        self.path = path
        self.identity = Identity("run", pid, create_time if create_time is not None else 0.0)
        self.sampler = TreeSampler(pid, create_time)
        self.interval = interval
        self.provider_factory = provider
        self.provider: GpuProvider | None = None
        self.clock = clock
        self.samples = 0
        self._halt = threading.Event()

    def stop(self, timeout: float = 2.0) -> None:
        """Stop after the sample under way (if any)."""
        self._halt.set()
        if self.is_alive():
            self.join(timeout)

    def sample(self) -> dict[str, object] | None:
        """One line's fields, or ``None`` once the run's process has gone."""
        tree = self.sampler.sample()
        if tree is None:
            return None
        now = self.clock() if self.clock is not None else None
        line: dict[str, object] = {"_time": utc_iso(now), **tree}
        if self.provider is not None:
            host = look(self.provider)
            if not host.reading.available:
                self.provider = None  # no GPU here: never asked again
            line.update(gpu_fields(attribute(host, [self.identity]).runs.get("run")))
        return line

    def run(self) -> None:
        try:
            fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        except OSError:
            return
        try:
            if self.provider_factory is not None:
                self.provider = self.provider_factory()
            wait = min(FIRST_SAMPLE, self.interval)
            while not self._halt.wait(wait):
                wait = self.interval
                line = self.sample()
                if line is None:
                    break
                os.write(fd, json.dumps(line).encode() + b"\n")  # one write per line
                self.samples += 1
        except Exception:  # a sampling problem must never reach the run
            pass
        finally:
            os.close(fd)
            if self.provider is not None:
                self.provider.close()
