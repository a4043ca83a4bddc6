"""``Telemetry``: the app's GPU readings and the machine-use history of open runs.

A thread worker wakes every :data:`GPU_INTERVAL` seconds and asks the main thread what is
wanted now (:meth:`Telemetry.plan`): GPU figures while a screen that shows them is on top
or a rule judges them, and the machine use of every run open in a run view. Only then does
it read: the GPUs and their processes' ancestry (:func:`tui.core.gpu.look`), each open
run's ``system.jsonl`` if ``tracktui run`` wrote one, else a sample of the run's process
tree. What it read travels as a frozen :class:`TelemetryPolled`; the main thread attributes
GPU processes to runs (:func:`tui.core.gpu.attribute`) and appends to the histories.

Without a driver the provider says so on the first read and costs nothing after that; the
reason shows once, in the top bar and the GPU panel.
"""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from textual.worker import get_current_worker

from tui.app.messages import TelemetryPolled
from tui.app.screens.base import StoreScreen
from tui.core.records import RecordBlock
from tui.core.sanitize import unescape_path
from tui.core.values import real_number

if TYPE_CHECKING:
    from tui.app.app import TrackApp
    from tui.core.gpu import GpuProvider, GpuState
    from tui.core.gpu.history import SystemFile, SystemHistory
    from tui.core.gpu.sampler import TreeSampler


@dataclass(frozen=True)
class Watched:
    """A run open in a run view, as the telemetry thread needs it."""

    key: str
    run_dir: Path
    pid: int | None
    create_time: float | None


@dataclass(frozen=True)
class Plan:
    """What the telemetry thread should read now."""

    gpu: bool
    watched: tuple[Watched, ...] = ()


class Telemetry:
    """The app's GPU state and machine-use histories (main thread), and their reader thread.

    The GPU and process modules (psutil, NVML) are imported on first use: the thread
    starts once the first table is drawn.

    Args:
        app: the app (its store, screens and rules decide what is wanted).
        provider: reads the GPUs (default: NVML, made on first use).
        interval: seconds between readings (default ``tui.core.gpu.GPU_INTERVAL``).
    """

    def __init__(
        self, app: TrackApp, provider: GpuProvider | None = None, interval: float | None = None
    ) -> None:
        self.app = app
        self._provider = provider
        self._interval = interval
        self.state: GpuState | None = None
        """The latest reading, attributed to runs (``None`` before the first)."""
        self.histories: dict[str, SystemHistory] = {}
        """Machine-use history per run opened so far (kept when the view closes)."""
        self.with_file: set[str] = set()
        """Runs whose history comes from their ``system.jsonl``."""
        self.started: dict[str, float] = {}
        """When the app began sampling a run itself (a run with no ``system.jsonl``)."""
        self.polls = 0
        """GPU readings applied so far."""
        self._attributed = False  # the last reading gave runs their GPU use
        self._wake = threading.Event()
        self._samplers: dict[str, TreeSampler] = {}  # reading side only
        self._files: dict[str, SystemFile] = {}  # reading side only
        self._host = socket.gethostname()

    @property
    def provider(self) -> GpuProvider:
        """What reads the GPUs."""
        if self._provider is None:
            from tui.core.gpu import NvmlProvider

            self._provider = NvmlProvider()
        return self._provider

    @property
    def interval(self) -> float:
        """Seconds between readings."""
        if self._interval is None:
            from tui.core.gpu import GPU_INTERVAL

            self._interval = GPU_INTERVAL
        return self._interval

    # What is known ------------------------------------------------------------------------
    @property
    def note(self) -> str | None:
        """Why there are no GPU figures per run (no GPU, another pid namespace), if so."""
        return None if self.state is None else self.state.note

    @property
    def columns(self) -> bool:
        """Whether the run table has GPU columns: GPUs were read and attributed."""
        return self.state is not None and self.state.attributed

    def memory_by_pid(self) -> dict[int, tuple[int, int]]:
        """``pid -> (GPU bytes, device)`` in the latest reading."""
        return {} if self.state is None else self.state.memory_by_pid()

    def memory_now(self) -> dict[int, tuple[int, int]]:
        """The same, read afresh (any thread: a kill confirmation names what it frees)."""
        reading = self.provider.read()
        return {p.pid: (p.memory, p.device) for p in reading.processes if p.memory is not None}

    def history(self, key: str) -> SystemHistory:
        """The machine-use history of run ``key`` (empty until a sample arrives)."""
        found = self.histories.get(key)
        if found is None:
            from tui.core.gpu.history import SystemHistory

            found = self.histories[key] = SystemHistory(key)
        return found

    # The thread ---------------------------------------------------------------------------
    def start(self) -> None:
        """Start the reader thread."""
        self.app.run_worker(self._loop, thread=True, exclusive=True, group="telemetry")

    def wake(self) -> None:
        """Read now (a run was opened, or a test asks)."""
        self._wake.set()

    def plan(self) -> Plan:
        """What is wanted now (main thread)."""
        app = self.app
        stores = [s for s in app.screen_stack if isinstance(s, StoreScreen)]
        gpu = bool(app.rules is not None and app.rules.needs_gpu)
        gpu = gpu or bool(stores and stores[-1].shows_gpu())
        watched = []
        for screen in stores:
            key = screen.watched_run()
            run = app.store.get(key) if key is not None else None
            if key is None or run is None:
                continue
            pid, created = run.meta.get("pid"), real_number(run.meta.get("pid_create_time"))
            if type(pid) is not int and run.process is not None:
                pid, created = run.process.pid, run.process.create_time
            alive = run.status in ("running", "stalled")
            watched.append(
                Watched(
                    key,
                    app.root / unescape_path(run.path),
                    pid if type(pid) is int and alive else None,
                    created,
                )
            )
        return Plan(gpu, tuple(watched))

    def poll(self) -> TelemetryPolled | None:
        """Read what is wanted now on this thread, the main one (for an app without reader
        threads: the thread-free tests); ``None`` when nothing is wanted."""
        plan = self.plan()
        return self.read(plan) if plan.gpu or plan.watched else None

    def _loop(self) -> None:
        worker = get_current_worker()
        try:
            while not worker.is_cancelled:
                try:
                    plan = self.app.call_from_thread(self.plan)
                except RuntimeError:  # the app is closing
                    return
                if plan.gpu or plan.watched:
                    message = self.read(plan)
                    if not worker.is_cancelled:
                        self.app.post_message(message)
                self._wake.wait(self.interval)
                self._wake.clear()
        finally:
            for reader in self._files.values():
                reader.close()

    def read(self, plan: Plan) -> TelemetryPolled:
        """Read the GPUs and the watched runs' machine use (the reading side: one thread)."""
        from tui.core.gpu import look
        from tui.core.gpu.history import SystemFile
        from tui.core.gpu.sampler import TreeSampler

        samplers, files = self._samplers, self._files
        host = look(self.provider)
        blocks: dict[str, RecordBlock] = {}
        samples: dict[str, tuple[float, Mapping[str, float]]] = {}
        with_file = set()
        for watched in plan.watched:
            reader = files.get(watched.key)
            if reader is None:
                reader = files[watched.key] = SystemFile(self.app.root, watched.run_dir)
            if reader.exists():
                with_file.add(watched.key)
                block = reader.read()
                if block is not None:
                    blocks[watched.key] = block
                continue
            if watched.pid is None:
                continue
            sampler = samplers.get(watched.key)
            if sampler is None or (sampler.pid, sampler.create_time) != (
                watched.pid,
                watched.create_time,
            ):
                sampler = samplers[watched.key] = TreeSampler(watched.pid, watched.create_time)
            sample = sampler.sample()
            if sample is not None:
                samples[watched.key] = (time.time(), sample)
        keys = {w.key for w in plan.watched}
        for key in [k for k in files if k not in keys]:
            files.pop(key).close()
        for key in [k for k in samplers if k not in keys]:
            del samplers[key]
        return TelemetryPolled(host, tuple(sorted(keys)), blocks, samples, frozenset(with_file))

    # Applying (main thread) ---------------------------------------------------------------
    def apply(self, message: TelemetryPolled) -> set[str]:
        """Attribute the reading and extend the histories; returns runs whose GPU use changed."""
        from tui.core.gpu import attribute, identities
        from tui.core.gpu.sampler import gpu_fields

        store = self.app.store
        changed: set[str] = set()
        if message.host is not None:
            if message.host.reading.available:
                self.state = attribute(message.host, identities(store, self._host))
            else:  # no runs to match (no driver, a failed read): skip the walk over runs
                self.state = attribute(message.host, ())
            if message.host.reading.available or self._attributed:
                changed.update(self.state.apply(store))
            self._attributed = message.host.reading.available
            self.polls += 1
        self.with_file |= message.with_file
        for key, block in message.files.items():
            self.history(key).add(block, "file")
        for key, (when, sample) in message.samples.items():
            run = store.get(key)
            self.started.setdefault(key, when)
            fields = {**sample, **gpu_fields(run.gpu if run is not None else None)}
            self.history(key).add_sample(fields, when)
        for key in message.watched:
            run = store.get(key)
            if run is not None:
                self.history(key).copy_from(run)
        return changed
