"""``TrackApp``: owns the store, applies what the reader thread reads, hosts the screens.

Threads never touch widgets: one reader thread (a Textual thread worker) does all file IO
through the engine and posts frozen batches; the main thread applies them to the store,
derives statuses and rule verdicts, and tells the screens which runs changed.
"""

from __future__ import annotations

import argparse
import copy
import gc
import os
import threading
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, replace
from functools import partial
from pathlib import Path
from types import MappingProxyType
from typing import TYPE_CHECKING, Any, TypeVar

from textual import on, work
from textual.app import App, SystemCommand
from textual.binding import Binding
from textual.driver import Driver
from textual.screen import Screen
from textual.worker import get_current_worker

from tui.app.messages import BatchesRead, EvidenceGathered, RunsUpdated, TelemetryPolled
from tui.app.screens.base import StoreScreen
from tui.app.screens.runs import RunsScreen
from tui.app.telemetry import Telemetry
from tui.app.widgets.palette import use_sixteen_colors
from tui.core.prefetch import PREVIEW_BYTES
from tui.core.rules import RULES_FILE, RuleEngine, RulesFile, RulesLoad, Verdict
from tui.core.sanitize import escape_path, unescape_path
from tui.core.status import derive_status
from tui.core.store import Batch, Delta, Run, RunStore
from tui.core.views import View, load_view, save_view

if TYPE_CHECKING:  # the process machinery (psutil, NVML) is imported after the first frame,
    # and the engine (every format's reader) by the reader thread (see ``TrackApp.engine``)
    from tui.core import procs
    from tui.core.discover import Found
    from tui.core.engine import Engine
    from tui.core.evidence import EvidenceGatherer
    from tui.core.gpu import GpuProvider
    from tui.core.openfiles import RunProcess
    from tui.core.prefetch import Prefetch
    from tui.core.procs import SignalName

FIRST_PAINT_WAIT = 2.0
"""Seconds the readers and the collector wait for the first table before going on anyway."""
FIRST_FRAME_WAIT = 0.1
"""Seconds the first frame waits for the prefetch child to preview every run, when its pace
says it will have by then (otherwise it is not waited for)."""
PREVIEW_POST = 0.5
"""Seconds of previewing per message in the first phase: one message, so one table build,
for a thousand runs (about 0.2-0.4 s); a huge ROOT shows up twice a second meanwhile."""

COALESCE = 0.025
"""Seconds to wait after a file event so bursts of writes are read together."""

STATUS_INTERVAL = 5.0
"""Seconds between re-derivations of time-dependent status (stalled, crashed)."""

KILLS: dict[SignalName, str] = {"int": "SIGINT", "term": "SIGTERM", "kill": "SIGKILL"}
"""The kill keys' signals (as :func:`tui.core.procs.execute` names them) and their names."""

Answer = TypeVar("Answer")


@dataclass(frozen=True)
class KillTarget:
    """A run as a kill sees it, copied on the main thread for the kill worker.

    Attributes:
        key: the run's key in the store.
        name: the run's name (sanitized), for messages.
        run_dir: the run's directory.
        meta: a private, read-only copy of the run's metadata (pid, create time, host...).
        process: the process found writing the run's files, for a run with no recorded pid.
    """

    key: str
    name: str
    run_dir: Path
    meta: Mapping[str, Any]
    process: RunProcess[str] | None = None


class TrackApp(App[int]):
    """tracktui: watch, compare and stop training runs.

    Args:
        root: the directory holding the runs.
        rules_path: rules file (default: ``ROOT/tracktui.toml`` when present).
        auto_kill: let triggered ``action = "kill"`` rules terminate their runs.
        read_only: disable every action on processes.
        grace: seconds between SIGTERM and SIGKILL.
        watch: ``auto``, ``native`` or ``poll`` (see ``Engine``).
        engine: an engine to use instead of a new one (tests inject their own).
        evidence: finds runs' writer processes and reads the audit log (tests inject one).
        clock: wall clock (tests inject a fake one).
        readers: start the threads that read files and gather evidence; off, the app
            only applies the messages posted to it (how the thread-free tests drive it).
        gpu: reads the GPUs (default: NVML through nvidia-ml-py; tests inject a fake).
        fresh: start from the default view, not the one saved for ROOT.
        resume_gc: the caller paused the garbage collector for the start (see
            :func:`tui.cli.main`): freeze what exists and resume it once the table is drawn.
    """

    # The runs screen's style is the app's own: loaded at the start with the rest, not as
    # the screen is first pushed, when Textual parses every style sheet again (7-15 ms of
    # the first frame).
    CSS_PATH = ["app.tcss", "screens/runs.tcss"]
    TITLE = "tracktui"
    ENABLE_COMMAND_PALETTE = True
    BINDINGS = [
        Binding("q", "quit", "Quit"),
        Binding("question_mark", "help", "Help", key_display="?"),
        Binding("I", "kill('int')", "Interrupt (SIGINT)", show=False),
        Binding(
            "T", "kill('term')", "Terminate", tooltip="SIGTERM, then SIGKILL after the grace period"
        ),
        Binding("K", "kill('kill')", "Kill (SIGKILL)", show=False),
        Binding("X", "kill_flagged", "Terminate runs a kill-rule flagged", show=False),
        Binding("S", "screenshot", "Save screen as SVG", show=False),
    ]

    def __init__(
        self,
        root: Path,
        *,
        rules_path: Path | None = None,
        auto_kill: bool = False,
        read_only: bool = False,
        grace: float = 10.0,
        watch: str = "auto",
        engine: Engine | None = None,
        evidence: EvidenceGatherer | None = None,
        clock: Callable[[], float] = time.time,
        readers: bool = True,
        gpu: GpuProvider | None = None,
        fresh: bool = False,
        resume_gc: bool = False,
        prefetch: Prefetch | None = None,
    ) -> None:
        super().__init__()
        self._prefetch = prefetch
        if prefetch is not None:
            prefetch.listen()  # its messages are read as they come, while the app loads
        self._previewed = 0  # runs whose previews were applied before the first frame
        self.prefetch_failed = False
        """The prefetch child given failed: the reader read the first paint itself."""
        self._resume_gc = resume_gc
        self._telemetry_due = True
        self.root = Path(os.path.abspath(root))
        self.root_label = str(root)  # as the user typed it: shorter than the absolute path
        self._engine = engine
        self._engine_lock = threading.Lock()
        self._watch = watch
        self.store = RunStore()
        self._evidence = evidence
        self._evidence_seen: tuple[object, tuple[str, ...]] | None = None
        self.telemetry = Telemetry(self, gpu)
        self.clock = clock
        self.readers = readers
        self.auto_kill = auto_kill
        self.read_only = read_only
        self.grace = grace
        self.verdicts: dict[str, list[Verdict]] = {}
        self.run_colors: dict[str, int] = {}
        self.progress: tuple[int, int] | None = None
        self.rules_file = RulesFile(
            rules_path or self.root / RULES_FILE, required=rules_path is not None, clock=clock
        )
        self._first_rules = self.rules_file.load()
        self._wake = threading.Event()
        self._evidence_wake = threading.Event()
        self._first_paint = threading.Event()
        self._first_taken = threading.Event()  # the previews the first frame shows
        self._priority: list[str] = []
        self._killed_by_rule: set[tuple[str, str]] = set()
        self._killing: set[str] = set()  # runs with a kill being planned, confirmed or run
        self.view: View = View() if fresh else load_view(self.root)
        """The layout chosen for ROOT (restored from the user's state directory)."""
        self._view_error_told = False

    def get_driver_class(self) -> type[Driver]:
        """On Linux, a driver whose input thread sleeps while no key comes (idle CPU)."""
        driver = super().get_driver_class()
        if driver.__module__ == "textual.drivers.linux_driver":  # not one chosen by TEXTUAL_DRIVER
            from tui.app.idle_driver import IdleDriver

            return IdleDriver
        return driver

    def remember(self, **changes: Any) -> None:
        """Change the saved view of ROOT (a failure to save is told once, never raised)."""
        view = replace(self.view, **changes)
        if view == self.view:
            return
        self.view = view
        error = save_view(self.root, view)
        if error is not None and not self._view_error_told:
            self._view_error_told = True
            self.notify(error, title="View not saved", severity="warning", markup=False)

    # Rules ------------------------------------------------------------------------------
    @property
    def rules(self) -> RuleEngine | None:
        """The rules in force (the last good reading of the rules file); ``None`` when there
        are none (no rules file yet, or an empty one)."""
        engine = self.rules_file.engine
        return engine if engine is not None and engine.rules else None

    @property
    def rules_error(self) -> str | None:
        """Why the latest reading of the rules file failed (the previous rules stay)."""
        return self.rules_file.problem

    def _tell_rules(self, load: RulesLoad, reloaded: bool) -> None:
        if load.problem is not None:
            title = (
                "Rules file not reloaded" if reloaded and self.rules else "Rules file not loaded"
            )
            kept = " — the previous rules stay in force" if reloaded and self.rules else ""
            self.notify(
                load.problem + kept, title=title, severity="error", timeout=15, markup=False
            )
        elif reloaded:
            count = len(load.engine.rules) if load.engine is not None else 0
            self.notify(f"{count} rule(s) from {load.path}", title="Rules reloaded", markup=False)
        if load.downgraded is not None:
            self.notify(
                load.downgraded, title="Kill rules only flag", severity="warning", markup=False
            )

    def reload_rules(self) -> None:
        """Read the rules file again if it changed; re-evaluate every run with new rules."""
        load = self.rules_file.reload_if_changed()
        if load is None:
            return
        self._tell_rules(load, reloaded=True)
        if load.engine is not None:
            self.verdicts.clear()
            now = self.clock()
            self._evaluate(None, now)
            self._broadcast(RunsUpdated(statuses=frozenset(self.store.runs)))

    # Set-up ---------------------------------------------------------------------------
    def on_mount(self) -> None:
        use_sixteen_colors(self.console.color_system)
        # Pushed from the message loop, once Textual's start is over: a screen pushed here,
        # in the start, is composed and drawn while Textual holds every frame back, so its
        # first frame never reached the terminal and what changed after it came in parts
        # (the whole table 70-100 ms after the screen mounted, against 30 ms now).
        self.call_later(self.push_screen, RunsScreen())
        first = self._first_rules
        if first.problem is not None or first.downgraded is not None:
            self._tell_rules(first, reloaded=False)
        if self.readers:
            self.read_runs()
            self.gather_evidence()
        self.set_interval(STATUS_INTERVAL, self.refresh_statuses)
        self.set_timer(FIRST_PAINT_WAIT, self._after_first_paint)  # no runs: no first batch

    @property
    def evidence(self) -> EvidenceGatherer:
        """Finds runs' writer processes and reads the audit log (made on first use, in the
        evidence thread once the first table is drawn)."""
        if self._evidence is None:
            from tui.core.evidence import EvidenceGatherer

            self._evidence = EvidenceGatherer(self.root)
        return self._evidence

    @property
    def engine(self) -> Engine:
        """Finds, reads and watches the runs. Made on first use: by the reader thread, once
        the first frame is drawn where the prefetch child read what it shows, so that
        importing every format's reader (about 15 ms) is not in the way of that frame."""
        engine = self._engine
        if engine is None:
            with self._engine_lock:
                engine = self._engine
                if engine is None:
                    from tui.core.engine import Engine

                    engine = self._engine = Engine(self.root, watch=self._watch)
        return engine

    @property
    def watch_mode(self) -> str:
        """How files are watched (``inotify``, or polling and why)."""
        engine = self._engine
        return engine.mode if engine is not None else "not watching"

    @property
    def root_gone(self) -> bool:
        """ROOT was deleted, renamed or unmounted while watched (and has not come back)."""
        engine = self._engine
        return engine is not None and engine.root_gone

    def prioritize(self, keys: Iterable[str]) -> None:
        """Ask the reader to load these runs' full histories first (the visible ones)."""
        self._priority = list(keys)
        self._wake.set()

    def color_of(self, key: str) -> int:
        """A stable colour index per run, in order of first appearance."""
        index = self.run_colors.get(key)
        if index is None:
            index = self.run_colors[key] = len(self.run_colors)
        return index

    # The reader thread ----------------------------------------------------------------
    def _on_dirty(self) -> None:
        self._wake.set()

    @work(thread=True, exclusive=True, group="reader", name="reader")
    def read_runs(self) -> None:
        """Discover, preview (last lines first), backfill, then follow. All file IO is here."""
        worker = get_current_worker()
        handed = self._take_prefetch() if self._prefetch is not None else None
        if worker.is_cancelled:  # quitting (a prefetch child is ended then)
            return
        from tui.core.backfill import Backfill  # after the first frame where the child read it
        from tui.core.cache import SummaryCache

        engine = self.engine
        cache = SummaryCache(self.root)  # exact values of unchanged runs, from the last visit
        if handed is None:
            keys = engine.scan()
            engine.take_dirty()  # read below, preview first
            cache.load()
            engine.read_ahead(cache.uncached(keys), PREVIEW_BYTES)
            previews: list[Batch] = []
            posted = time.monotonic()
            for done, key in enumerate(keys, 1):
                if worker.is_cancelled:
                    return
                previews.extend(cache.preview(engine, key, PREVIEW_BYTES))
                if done == len(keys) or time.monotonic() - posted >= PREVIEW_POST:
                    self.post_message(BatchesRead(tuple(previews), (0, len(keys))))
                    previews, posted = [], time.monotonic()
            # Let the table paint before the backfill competes with it for the GIL.
            self._first_paint.wait(FIRST_PAINT_WAIT)
            settled = cache.settle(engine)  # the runs the first paint took from the cache alone
        else:
            found, previewed, cached, settled = handed
            keys = engine.adopt_walk(found, previewed)
            engine.take_dirty()  # read by the backfill, as after a scan
            cache.load()
            cache.adopt_cached(cached)
        if worker.is_cancelled:
            return
        total = len(keys)
        if settled:
            self.post_message(BatchesRead(tuple(settled)))
        engine.start(self._on_dirty)
        backfill = Backfill(engine, keys, cache=cache)
        try:
            while not worker.is_cancelled:
                if backfill.busy:
                    batches = backfill.step(self._priority)
                    if batches or not backfill.busy:
                        self.post_message(BatchesRead(tuple(batches), (backfill.done, total)))
                elif not self._wake.wait(1.0):
                    continue
                if engine.dirty:
                    time.sleep(COALESCE)
                self._wake.clear()
                dirty, rescan = engine.take_dirty()
                if rescan:
                    new = engine.scan()
                    engine.take_dirty()
                    dirty = sorted(set(dirty) | set(new))
                    total += len(new)
                    backfill.done += len(new)
                later = [k for k in dirty if backfill.owns(k)]
                if later:
                    backfill.touched(later)  # read again once their full read is in
                    dirty = [k for k in dirty if not backfill.owns(k)]
                if dirty:
                    self.post_message(BatchesRead(tuple(engine.read(dirty))))
        finally:
            backfill.close()
            cache.save()

    def take_first_previews(self) -> None:
        """Apply the previews of every run before the runs screen's first frame, when the
        prefetch child has read them or will have within ``FIRST_FRAME_WAIT``: called by
        the screen as it mounts, so that frame shows the runs rather than an empty table
        (at 200 runs, the rows came a frame and 0.1 s after it). A child further behind is
        not waited for: the reader posts its previews as they come, after an empty frame.
        Once."""
        prefetch = self._prefetch
        if prefetch is None or self._first_taken.is_set():
            return
        try:
            if not prefetch.previews_soon(FIRST_FRAME_WAIT):
                return
            previews, done = prefetch.arrived()
            total = prefetch.total
            if previews and total:
                self._previewed = done
                self._apply_read(BatchesRead(tuple(previews), (0, total)))
        finally:
            self._first_taken.set()

    def _take_prefetch(self) -> tuple[Found, list[str], list[str], list[Batch]] | None:
        """The first paint as the prefetch child read it (:mod:`tui.core.prefetch`): the
        previews not applied before the first frame are posted as they come. Once the
        table is drawn, returns what the child found for the engine to adopt (the runs,
        which were previewed, which the cache held) and the batches the cache settled, or
        ``None`` when the child failed (the caller then reads it all itself)."""
        prefetch = self._prefetch
        assert prefetch is not None
        self._first_taken.wait(FIRST_PAINT_WAIT)  # the runs screen takes the first ones
        total = prefetch.total or 0
        settled: list[Batch] = []
        previews: list[Batch] = []
        posted = time.monotonic()
        try:
            if total and self._previewed == total:  # all drawn in the first frame
                self._first_paint.wait(FIRST_PAINT_WAIT)
            for message in prefetch.messages():
                kind = message[0]
                if kind == "total":
                    total = message[1]
                elif kind == "previews":
                    previews.extend(message[1])
                    done = message[2] == total
                    if done or time.monotonic() - posted >= PREVIEW_POST:
                        self.post_message(BatchesRead(tuple(previews), (0, total)))
                        previews, posted = [], time.monotonic()
                    if done:
                        # Let the table paint before what comes next competes with it.
                        self._first_paint.wait(FIRST_PAINT_WAIT)
                elif kind == "settled":
                    settled = message[1]
                else:
                    _, found, previewed, cached = message
        except Exception:  # it died, was stopped, or said something unreadable
            self.prefetch_failed = True
            return None
        finally:
            prefetch.close()
        return found, previewed, cached, settled

    def stop_prefetch(self) -> None:
        """End the prefetch child, if it still runs (quitting: a reader waiting on it is
        let go)."""
        if self._prefetch is not None:
            self._prefetch.close()

    # Evidence: writer processes and the audit log (its own thread) ----------------------
    def request_evidence(self) -> None:
        """Look for runs' processes now (a run was opened, or a kill just ended)."""
        self._evidence_wake.set()

    @work(thread=True, exclusive=True, group="evidence", name="evidence")
    def gather_evidence(self) -> None:
        """Every few seconds (longer on a box with many processes), and on request: find
        the process writing each run's files and what our audit log says we stopped."""
        worker = get_current_worker()
        generation, touched = 0, None  # the first gathering stats every file
        asked = False
        while not worker.is_cancelled:
            self._first_paint.wait(FIRST_PAINT_WAIT)  # the first frame, then the processes
            files = self.engine.run_files()
            evidence = self.evidence.gather(files, touched, look=asked)
            generation, touched = self.engine.touched_since(generation)
            self.post_message(EvidenceGathered(evidence))
            # Woken by a request (a run opened, a kill ended): look through the processes
            # then, not only the writers found before.
            asked = self._evidence_wake.wait(evidence.pause)
            self._evidence_wake.clear()

    @on(EvidenceGathered)
    def apply_evidence(self, message: EvidenceGathered) -> None:
        """Give the runs their processes and stops; re-derive what that changes."""
        evidence = message.evidence
        # At rest every gathering finds what the last one did: comparing that (and the
        # runs it was given to) skips a walk over every run on this thread.
        seen = (evidence.processes, evidence.stops, evidence.slurm, evidence.local)
        runs = tuple(self.store.runs)
        if self._evidence_seen == (seen, runs):
            return
        self._evidence_seen = (seen, runs)
        changed = evidence.apply(self.store, self.root)
        if not changed:
            return
        now = self.clock()
        statuses = set()
        for key in changed:
            run = self.store.runs[key]
            status = derive_status(run, now)
            if status != run.status:
                run.status = status
            statuses.add(key)
        statuses |= self._evaluate(changed, now)
        self._broadcast(RunsUpdated(statuses=frozenset(statuses)))

    @on(TelemetryPolled)
    def apply_telemetry(self, message: TelemetryPolled) -> None:
        """Give the runs their GPU use, extend the open runs' histories, judge GPU rules."""
        changed = self.telemetry.apply(message)
        gpu_rules = self.rules is not None and self.rules.needs_gpu
        changed |= self._evaluate(None if gpu_rules else sorted(changed), self.clock())
        if changed:
            self._broadcast(RunsUpdated(statuses=frozenset(changed)))
        for screen in self._store_screens():
            screen.telemetry_updated()

    # Applying batches (main thread) -----------------------------------------------------
    @on(BatchesRead)
    def apply_batches(self, message: BatchesRead) -> None:
        """Apply what was read, derive status and verdicts, and tell the screens."""
        update = self._apply_read(message)
        if update is not None:
            self._broadcast(update)

    def _apply_read(self, message: BatchesRead) -> RunsUpdated | None:
        """Apply what was read and derive status and verdicts; what to tell the screens."""
        if message.progress is not None:
            done, total = message.progress
            self.progress = None if done >= total and total else message.progress
        deltas: list[Delta] = []
        for batch in message.batches:
            deltas.append(self.store.apply(batch))
        if not deltas and message.progress is None:
            return None
        now = self.clock()
        for delta in deltas:
            run = self.store.runs[delta.key]
            self.color_of(delta.key)
            run.status = derive_status(run, now)
        self._evaluate([d.key for d in deltas], now)
        if message.progress is not None and message.progress[0] == 0:
            self.call_after_refresh(self._painted)
        return RunsUpdated(tuple(deltas))

    def _painted(self) -> None:
        """The table is on screen and its rows have their cells: let the reader and
        evidence threads go on (they would slow the rows' cells down, for the GIL)."""
        screen = self.screen
        if isinstance(screen, RunsScreen) and screen.filling:
            self.call_after_refresh(self._painted)
            return
        self._first_paint.set()
        self._after_first_paint()

    def _after_first_paint(self) -> None:
        """Start what can wait for the first frame (once; also when no run came to draw)."""
        if self._telemetry_due and self.readers:
            self._telemetry_due = False
            self.telemetry.start()
        if self._resume_gc:
            # Everything made so far lives as long as the app: keep it out of every later
            # collection, and collect from here on.
            self._resume_gc = False
            gc.freeze()
            gc.enable()

    def _store_screens(self) -> list[StoreScreen]:
        """The open screens that show runs; none once the app is shutting down (their
        widgets are being removed while read batches and samples still arrive)."""
        if not self.is_running:
            return []
        return [screen for screen in self.screen_stack if isinstance(screen, StoreScreen)]

    def _broadcast(self, update: RunsUpdated) -> None:
        for screen in self._store_screens():
            screen.runs_updated(update)
            screen.refresh_kill_ready()  # statuses decide what the kill keys can act on

    def refresh_statuses(self) -> None:
        """Re-derive time-dependent statuses (stalled, crashed) and time-based rules, and
        pick up an edited rules file."""
        self.reload_rules()
        now = self.clock()
        changed: set[str] = set()
        for run in self.store:
            if run.status in ("finished", "failed", "killed"):
                continue
            status = derive_status(run, now)
            if status != run.status:
                run.status = status
                changed.add(run.key)
        changed |= self._evaluate(None, now)
        if changed:
            self._broadcast(RunsUpdated(statuses=frozenset(changed)))
        screen = self.screen
        if isinstance(screen, StoreScreen):
            screen.clock_ticked()  # ages and durations move with the clock

    def _evaluate(self, keys: list[str] | None, now: float) -> set[str]:
        """Update rule verdicts; returns runs whose verdicts changed."""
        if self.rules is None:
            return set()
        before = {k: self.verdicts.get(k) for k in (keys if keys is not None else self.store.runs)}
        try:
            self.verdicts.update(self.rules.evaluate(self.store, keys, now))
        except Exception as exc:  # a rule bug must not take the app down
            self.notify(f"rule evaluation failed: {exc!r}", severity="error", markup=False)
            return set()
        for key, verdict in self.rules.take_new_triggers():
            self._triggered(key, verdict)
        return {k for k, v in before.items() if self.verdicts.get(k) != v}

    def _triggered(self, key: str, verdict: Verdict) -> None:
        run = self.store.runs.get(key)
        name = run.name if run else key
        if run is None or run.status not in ("running", "stalled"):
            return  # history of a run that is over: shown in the table, nothing to act on
        if verdict.action == "kill" and self.auto_kill and not self.read_only:
            if (key, verdict.rule) not in self._killed_by_rule:
                self._killed_by_rule.add((key, verdict.rule))
                self.notify(
                    f"{name}: {verdict.reason} — terminating",
                    title=f"rule {verdict.rule}",
                    severity="warning",
                    markup=False,
                )
                self.kill_runs(
                    [key], "term", reason=f"rule {verdict.rule}: {verdict.reason}", confirm=False
                )
            return
        hint = " (press X to act on it)" if verdict.action == "kill" else ""
        self.notify(
            f"{name}: {verdict.reason}{hint}",
            title=f"rule {verdict.rule} triggered",
            severity="warning",
            markup=False,
        )

    # Killing ------------------------------------------------------------------------------
    def killable(self, run: Run) -> bool:
        """Whether a kill could apply to ``run`` (details are checked at plan time)."""
        if self.read_only:
            return False
        pid = run.meta.get("pid")
        has_slurm = bool(run.meta.get("slurm_job_id"))
        found = run.process is not None and not run.process.ambiguous
        return (isinstance(pid, int) or has_slurm or found) and run.status in (
            "running",
            "stalled",
            "queued",
            "unknown",
        )

    def can_kill(self, keys: Iterable[str]) -> bool:
        """Whether a kill key would act on any of the runs ``keys`` (what the footer shows)."""
        runs = self.store.runs
        return any(self.killable(runs[key]) for key in keys if key in runs)

    def kill_targets(self) -> list[str]:
        """Runs the kill keys act on: the screen's marked runs, else its current run."""
        screen = self.screen
        return screen.kill_targets() if isinstance(screen, StoreScreen) else []

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        if action == "kill":
            return True if self.can_kill(self.kill_targets()) else None
        if action == "kill_flagged":
            return True if self.flagged() and not self.read_only else None
        return True

    def flagged(self) -> list[str]:
        """Runs with a triggered kill-rule that are still killable."""
        out = []
        for key, verdicts in self.verdicts.items():
            run = self.store.runs.get(key)
            if run is None or not self.killable(run):
                continue
            if any(v.state == "triggered" and v.action == "kill" for v in verdicts):
                out.append(key)
        return out

    def action_kill(self, signal: SignalName) -> None:
        """Signal the target runs' process trees after a confirmation."""
        self.kill_runs(self.kill_targets(), signal)

    def action_kill_flagged(self) -> None:
        """Terminate every run whose kill-rule triggered (after a confirmation)."""
        self.kill_runs(self.flagged(), "term", reason="flagged by a rule")

    def kill_runs(
        self,
        keys: Iterable[str],
        signal: SignalName,
        reason: str | None = None,
        confirm: bool = True,
    ) -> None:
        """Plan, confirm (unless auto), execute and report kills of ``keys`` (in a worker).

        The runs are copied here, on the main thread: the worker never reads the store.
        """
        if self.read_only:
            self.notify("read-only mode: actions are disabled", severity="warning")
            return
        # A key pressed again while its kill is still asked or carried out adds nothing:
        # one dialog, one action, one audit line.
        keys = [key for key in dict.fromkeys(keys) if key not in self._killing]
        targets = tuple(
            KillTarget(
                run.key,
                run.name,
                self.root / unescape_path(run.path),
                MappingProxyType(copy.deepcopy(dict(run.meta))),
                run.process,
            )
            for run in (self.store.runs.get(key) for key in keys)
            if run is not None
        )
        if targets:
            self._killing.update(target.key for target in targets)
            self._kill(targets, signal, reason, confirm)

    @work(thread=True, group="kill", exclusive=False)
    def _kill(
        self,
        targets: tuple[KillTarget, ...],
        signal: SignalName,
        reason: str | None,
        confirm: bool,
    ) -> None:
        try:
            self._plan_confirm_execute(targets, signal, reason, confirm)
        finally:
            self.call_from_thread(self._kill_done, [t.key for t in targets])

    def _kill_done(self, keys: list[str]) -> None:
        """A kill request is over (done, refused or declined): its runs may be asked again."""
        self._killing.difference_update(keys)

    def _plan_confirm_execute(
        self,
        targets: tuple[KillTarget, ...],
        signal: SignalName,
        reason: str | None,
        confirm: bool,
    ) -> None:
        from tui.core import procs

        plans = []
        refusals = []
        for target in targets:
            outcome = self._plan(target)
            if isinstance(outcome, procs.Refusal):
                refusals.append(f"{target.name}: {outcome.message}")
            else:
                plans.append((target.key, outcome))
        if refusals:
            self.call_from_thread(
                self.notify,
                "\n".join(refusals),
                title="Refused",
                severity="error",
                timeout=12,
                markup=False,
            )
        if not plans:
            return
        if confirm:
            from tui.app.screens.confirm_kill import ConfirmKill

            gpu = self.telemetry.memory_now()  # what the kill frees, read now
            answer = self._ask(ConfirmKill([p for _, p in plans], KILLS[signal], self.grace, gpu))
            if not answer:
                self.call_from_thread(self.notify, "nothing was signalled", title="Kill cancelled")
                return
        audit = procs.default_audit_path(self.root)
        for _key, plan in plans:
            report = procs.execute(plan, signal, self.grace, audit, reason)
            self.call_from_thread(
                self.notify,
                "\n".join(report.describe()),
                title="Kill report",
                severity="information" if report.ok else "error",
                timeout=10,
                markup=False,
            )
        self.call_from_thread(self.engine.mark, [k for k, _ in plans])
        self._wake.set()
        self.request_evidence()  # the audit line just written says these runs were stopped

    @staticmethod
    def _plan(target: KillTarget) -> procs.KillPlan | procs.Refusal:
        """A recorded pid (or Slurm job) is the strongest evidence; else the found writer."""
        from tui.core import procs

        meta = target.meta
        if target.process is not None and not (
            isinstance(meta.get("pid"), int) or meta.get("slurm_job_id")
        ):
            return procs.plan_kill_found(target.run_dir, target.process, name=target.name)
        return procs.plan_kill(target.run_dir, meta)

    def _ask(self, screen: Screen[Answer]) -> Answer | None:
        """From a thread worker: show a modal and wait for its answer (None if cancelled)."""
        answered = threading.Event()
        result: list[Answer | None] = [None]

        def done(value: Answer | None) -> None:
            result[0] = value
            answered.set()

        self.call_from_thread(self.push_screen, screen, done)
        worker = get_current_worker()
        while not answered.wait(0.2):
            if worker.is_cancelled:
                return None
        return result[0]

    # Command palette -------------------------------------------------------------------
    def get_system_commands(self, screen: Screen[Any]) -> Iterable[SystemCommand]:
        """Textual's commands plus every key binding of the screen and the app, by name."""
        from tui.app.screens.help import bindings_of

        yield from super().get_system_commands(screen)
        seen: set[str] = set()
        for owner, binding in bindings_of(screen):
            if binding.action in seen or binding.action in ("quit", "command_palette"):
                continue
            seen.add(binding.action)
            action_name = binding.action.split("(", 1)[0]
            if owner.check_action(action_name, ()) is not True:
                continue  # unavailable now (greyed out in the footer): not offered
            key = binding.key_display or binding.key
            yield SystemCommand(
                binding.description,
                f"key: {key}",
                partial(self.run_action, binding.action, owner),
            )

    def deliver_screenshot(
        self,
        filename: str | None = None,
        path: str | None = None,
        time_format: str | None = None,
    ) -> str | None:
        """Save the screen as SVG into a directory that exists (the cwd, else the state
        directory: Textual's default ``~/Downloads`` often does not) and say where."""
        from tui.core.exports import export_dir, export_name

        try:
            directory = Path(path) if path else export_dir()
            saved = self.save_screenshot(
                filename or export_name("screen", "svg"), str(directory), time_format
            )
        except OSError as error:
            self.notify(str(error), title="Screen not saved", severity="error", markup=False)
            return None
        self.notify(escape_path(saved), title="Screen saved as SVG", markup=False)
        return saved

    # Navigation -----------------------------------------------------------------------
    def action_help(self) -> None:
        """Show every key binding of the current screen."""
        from tui.app.screens.help import HelpScreen  # dialogs load when first opened

        if not isinstance(self.screen, HelpScreen):
            self.push_screen(HelpScreen(self.screen))

    def on_unmount(self) -> None:
        # Cancelled before they are woken: a woken thread not yet cancelled would go round
        # again and sleep a full pause, and quitting waits for every thread (5 s and more).
        self.workers.cancel_all()
        self._first_paint.set()  # threads waiting for a first frame that will not come
        self._first_taken.set()
        self._wake.set()
        self._evidence_wake.set()
        self.telemetry.wake()
        self.stop_prefetch()
        if self._engine is not None:
            self._engine.stop()


def run_app(args: argparse.Namespace, prefetch: Prefetch | None = None) -> int:
    """Start the app from parsed command-line options (``prefetch``: the first paint's
    reading, started before the app's imports)."""
    app = TrackApp(
        args.root,
        rules_path=args.rules,
        auto_kill=args.auto_kill,
        read_only=args.read_only,
        grace=args.grace,
        watch="poll" if args.poll else "auto",
        fresh=args.fresh,
        resume_gc=not gc.isenabled(),
        prefetch=prefetch,
    )
    app.run()
    return 0
