"""Following ROOT without a UI: the loop behind ``tracktui watch`` and ``status --follow``.

The same pieces as the app (DESIGN.md §2), on the caller's thread instead of Textual's: the
engine's watcher (or poller) and its reconcile mark runs dirty and wake the loop; each pass
reads what changed into the store, re-derives the statuses of the runs it touched (of every
run on a clock, and after each process scan), reloads the rules file when it changed,
evaluates the rules and returns what changed as frozen events. Kills ordered by rules run in
threads of their own and come back as events, so the loop never waits for a grace period.

Only the thread that calls :meth:`Follower.start` and :meth:`Follower.poll` touches the
store; :meth:`Follower.wake` and :meth:`Follower.request_stop` may be called from anywhere,
signal handlers included.
"""

from __future__ import annotations

import contextlib
import copy
import os
import queue
import signal
import socket
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from tui.core import procs
from tui.core.engine import Engine
from tui.core.evidence import EvidenceGatherer
from tui.core.gpu import GPU_INTERVAL, GpuProvider, NvmlProvider, attribute, identities, look
from tui.core.openfiles import RunProcess
from tui.core.rules import TRIGGERED, WAITING, RuleEngine, RulesFile, RulesLoad, Verdict
from tui.core.sanitize import sanitize, unescape_path
from tui.core.status import ALIVE, RunStatus, derive_status
from tui.core.store import Run, RunStore

STATUS_INTERVAL = 5.0
"""Seconds between re-derivations of every run's status (stalled, crashed, ended)."""

TICK = 1.0
"""Most seconds a pass waits for news: the rules file is checked this often."""

COALESCE = 0.02
"""Seconds to let a burst of writes land before reading it."""

FINAL = frozenset({"finished", "failed", "killed"})
"""Statuses that time alone does not change (the clock re-derives the others)."""

Action = Literal["flag", "signal", "scancel"]
"""What an event did about a run: flagged it, signalled its processes, or ran scancel."""


@dataclass(frozen=True, slots=True)
class RunRef:
    """A run as events name it (DESIGN.md §8: ``id``, ``name``, ``path``), plus its key."""

    key: str
    id: str
    name: str
    path: str

    @classmethod
    def of(cls, run: Run) -> RunRef:
        """The reference of ``run`` as it is now."""
        return cls(run.key, sanitize(str(run.meta.get("id") or run.key), 200), run.name, run.path)

    def json(self) -> dict[str, str]:
        """The ``run`` object of an event line."""
        return {"id": self.id, "name": self.name, "path": self.path}


@dataclass(frozen=True, slots=True)
class RunChanged:
    """A run appeared, or its status or last step changed.

    Attributes:
        time: wall time of the pass that saw it.
        run: the run.
        status: its status now.
        step: its last step now (``None`` before its first record).
        previous_status: its status before (``None``: the run is new).
        previous_step: its last step before.
    """

    time: float
    run: RunRef
    status: RunStatus
    step: float | None
    previous_status: RunStatus | None
    previous_step: float | None

    @property
    def new(self) -> bool:
        """True for the first event of a run."""
        return self.previous_status is None


@dataclass(frozen=True, slots=True)
class VerdictChanged:
    """A rule's verdict on a run changed state (every verdict starts ``waiting``).

    Attributes:
        time: wall time of the pass that saw it.
        run: the run.
        verdict: the verdict now.
        previous: the state before.
        news: a first trigger of this (run, rule) worth telling someone: seen while
            following, or found in existing data (at start, after a rules reload) for a run
            that is still alive. Each (run, rule) is news at most once.
        action: ``signal`` / ``scancel`` when this trigger started a kill, else ``flag``.
        result: what was done about a trigger, or why nothing was (``None`` for other states).
    """

    time: float
    run: RunRef
    verdict: Verdict
    previous: str
    news: bool = False
    action: Action = "flag"
    result: str | None = None


@dataclass(frozen=True, slots=True)
class ActionTaken:
    """A kill ordered by a rule finished (or was refused).

    Attributes:
        time: wall time it finished.
        run: the run.
        verdict: the triggered verdict that ordered it.
        action: ``signal`` (the process tree) or ``scancel`` (a Slurm job).
        result: the kill report, one line.
        ok: True when it ran and nothing of the run survived.
    """

    time: float
    run: RunRef
    verdict: Verdict
    action: Action
    result: str
    ok: bool


@dataclass(frozen=True, slots=True)
class RulesReloaded:
    """The rules file changed and was read again (``load.problem``: it was not taken)."""

    time: float
    load: RulesLoad


@dataclass(frozen=True, slots=True)
class Notice:
    """Something the user should hear about that is no run's event (a rule that failed)."""

    time: float
    message: str


Event = RunChanged | VerdictChanged | ActionTaken | RulesReloaded | Notice
"""What a pass of the follower reports."""


@dataclass(frozen=True, slots=True)
class _KillTarget:
    """A run as a kill thread sees it: copied on the store's thread."""

    run: RunRef
    verdict: Verdict
    action: Action
    run_dir: Path
    meta: Mapping[str, Any]
    found: RunProcess[str] | None


class Follower:
    """Follows every run under ROOT, derives statuses, applies rules, reports changes.

    Args:
        root: the directory holding the runs.
        rules: the rules file, already loaded (``None``: no rules).
        watch: ``auto``, ``native`` or ``poll`` (see :class:`Engine`).
        auto_kill: let triggered ``action = "kill"`` rules terminate alive runs (SIGTERM,
            then SIGKILL after ``grace``) through :func:`procs.plan_kill` and
            :func:`procs.execute`, once per (run, rule).
        grace: seconds between SIGTERM and SIGKILL.
        clock: wall clock.
        engine: an engine to use instead of a new one.
        gatherer: the evidence gatherer (writer processes, audit log) to use.
        status_interval: seconds between re-derivations of every status.
        tick: most seconds one :meth:`poll` waits.
        gpu: reads the GPUs for the GPU rules (default: NVML, created only when a rule
            judges GPU use; read every :data:`~tui.core.gpu.GPU_INTERVAL` seconds then).
    """

    def __init__(
        self,
        root: Path,
        rules: RulesFile | None = None,
        *,
        watch: str = "auto",
        auto_kill: bool = False,
        grace: float = 10.0,
        clock: Callable[[], float] = time.time,
        engine: Engine | None = None,
        gatherer: EvidenceGatherer | None = None,
        status_interval: float = STATUS_INTERVAL,
        tick: float = TICK,
        gpu: GpuProvider | None = None,
    ) -> None:
        self.root = Path(os.path.abspath(root))
        self.engine = engine or Engine(self.root, watch=watch)
        self.gatherer = gatherer or EvidenceGatherer(self.engine.root)
        self.store = RunStore()
        self.rules = rules
        self.auto_kill = auto_kill
        self.grace = grace
        self.clock = clock
        self.status_interval = status_interval
        self.tick = tick
        self.verdicts: dict[str, list[Verdict]] = {}
        """The latest verdicts of every run, in rule order."""
        self.stopping = False
        """Set by :meth:`request_stop`: :meth:`passes` ends after the pass under way."""
        self._wakeups: queue.SimpleQueue[ActionTaken | None] = queue.SimpleQueue()
        self._evaluated: RuleEngine | None = None
        self._states: dict[tuple[str, str], str] = {}
        self._triggered: set[tuple[str, str]] = set()
        self._steps: dict[str, float | None] = {}
        self._killing: dict[str, threading.Thread] = {}
        self._next_status = 0.0
        self._next_evidence = 0.0
        self._generation = 0  # of the engine's changes, when the evidence last looked
        self._touched: frozenset[str] | None = None  # runs changed since (None: all)
        self._watch_mode = self.engine.mode
        self._gpu = gpu
        self._next_gpu = 0.0
        self._gpu_note: str | None = None

    # Waking ---------------------------------------------------------------------------
    def wake(self) -> None:
        """Make the pass under way (or the next) look for news now. Safe from any thread."""
        self._wakeups.put(None)  # SimpleQueue.put is reentrant: signal handlers may call it

    def request_stop(self) -> None:
        """Stop following after the pass under way. Safe from a signal handler."""
        self.stopping = True
        self._wakeups.put(None)

    # The loop ---------------------------------------------------------------------------
    def start(self) -> list[Event]:
        """Watch ROOT, read every run to its end, and report each run and its verdicts."""
        # Watching starts first: what is written while the histories load is not missed.
        self.engine.start(self.wake)
        self._watch_mode = self.engine.mode  # said once at start by the commands
        keys = self.engine.scan()
        self.engine.take_dirty()
        for key in keys:
            for batch in self.engine.read_all(key):
                self.store.apply(batch)
        self.engine.mark(keys)  # a write between a run's read and the watch is read next pass
        now = self.clock()
        self._gather()
        events: list[Event] = list(self._derive(self.store.runs, now))
        self._next_status = time.monotonic() + self.status_interval
        self._read_gpus(now, events)
        events.extend(self._evaluate(None, now, historical=True))
        return events

    def poll(self, timeout: float | None = None) -> list[Event]:
        """One pass: wait up to ``timeout`` (default :attr:`tick`) for news, then report it."""
        wait = self.tick if timeout is None else timeout
        moment = time.monotonic()
        wait = max(0.0, min(wait, self._next_status - moment, self._next_evidence - moment))
        if self._gpu_wanted():
            wait = max(0.0, min(wait, self._next_gpu - moment))
        items: list[ActionTaken | None] = []
        try:
            items.append(self._wakeups.get(timeout=wait))
            while True:
                items.append(self._wakeups.get_nowait())
        except queue.Empty:
            pass
        if self.engine.dirty:
            time.sleep(COALESCE)
        events: list[Event] = []
        for done in items:
            if done is not None:
                events.append(done)
                self._finished_kill(done.run.key)
        now = self.clock()
        touched = self._read()
        if time.monotonic() >= self._next_evidence:
            touched |= self._gather()
        if time.monotonic() >= self._next_status:
            self._next_status = time.monotonic() + self.status_interval
            statuses = [k for k, run in self.store.runs.items() if run.status not in FINAL]
            touched |= set(statuses)
        events.extend(self._derive(touched, now))
        if self.rules is not None:
            load = self.rules.reload_if_changed()
            if load is not None:
                events.append(RulesReloaded(now, load))
        touched |= self._read_gpus(now, events)
        events.extend(self._evaluate(sorted(touched), now, historical=False))
        if self.engine.mode != self._watch_mode:  # ROOT gone or back, a fall back to polling
            self._watch_mode = self.engine.mode
            events.append(Notice(now, f"watching files: {self._watch_mode}"))
        return events

    def passes(self) -> Iterator[list[Event]]:
        """:meth:`start`, then :meth:`poll` until :meth:`request_stop`, then :meth:`finish`.

        Yields each pass's events (a list, possibly empty: the clock moved).
        """
        try:
            yield self.start()
            while not self.stopping:
                yield self.poll()
            yield self.finish()
        finally:
            self.engine.stop()

    def events(self) -> Iterator[Event]:
        """The events of :meth:`passes`, one at a time."""
        for events in self.passes():
            yield from events

    def finish(self) -> list[Event]:
        """Stop watching and wait for the kills under way (their outcomes are returned).

        A kill is bounded by its grace period plus a few seconds, and leaving one half done
        would skip its SIGKILL escalation.
        """
        self.engine.stop()
        for thread in list(self._killing.values()):
            thread.join()
        events: list[Event] = []
        while True:
            try:
                done = self._wakeups.get_nowait()
            except queue.Empty:
                return events
            if done is not None:
                events.append(done)
                self._finished_kill(done.run.key)

    # Reading and deriving -------------------------------------------------------------------
    def _read(self) -> set[str]:
        engine = self.engine
        dirty, rescan = engine.take_dirty()
        if rescan:
            # New runs stay marked as well: read now and once more next pass, which is cheap.
            dirty = sorted(set(dirty) | set(engine.scan()))
        touched = set()
        for batch in engine.read(dirty):
            self.store.apply(batch)
            touched.add(batch.key)
        return touched

    def _gather(self) -> set[str]:
        """Look for writer processes and read the audit log (every few seconds)."""
        evidence = self.gatherer.gather(self.engine.run_files(), self._touched)
        self._generation, self._touched = self.engine.touched_since(self._generation)
        self._next_evidence = time.monotonic() + evidence.pause
        return set(evidence.apply(self.store, self.engine.root))

    def _gpu_wanted(self) -> bool:
        engine = self.rules.engine if self.rules is not None else None
        return engine is not None and engine.needs_gpu

    def _read_gpus(self, now: float, events: list[Event]) -> set[str]:
        """Give every run its GPU use when a rule judges it and a reading is due."""
        if not self._gpu_wanted() or time.monotonic() < self._next_gpu:
            return set()
        self._next_gpu = time.monotonic() + GPU_INTERVAL
        if self._gpu is None:
            self._gpu = NvmlProvider()
        state = attribute(look(self._gpu), identities(self.store, socket.gethostname()))
        if state.note is not None and state.note != self._gpu_note:
            events.append(Notice(now, f"GPU rules cannot be judged: {state.note}"))
        self._gpu_note = state.note
        return set(state.apply(self.store))

    def _derive(self, keys: Iterable[str], now: float) -> Iterator[RunChanged]:
        for key in sorted(keys):
            run = self.store.runs.get(key)
            if run is None:
                continue
            known = key in self._steps
            before, step_before = (run.status, self._steps[key]) if known else (None, None)
            run.status = derive_status(run, now)
            step = run.last_step
            self._steps[key] = step
            if not known or run.status != before or step != step_before:
                yield RunChanged(now, RunRef.of(run), run.status, step, before, step_before)

    # Rules ----------------------------------------------------------------------------
    def _evaluate(self, keys: list[str] | None, now: float, *, historical: bool) -> list[Event]:
        rules = self.rules.engine if self.rules is not None else None
        if rules is None:
            return []
        if rules is not self._evaluated:
            # A new engine (a reloaded file) judges every run afresh; verdicts of rules that
            # are gone are forgotten, those of rules that stay keep their state.
            self._evaluated, keys, historical = rules, None, True
            names = {rule.name for rule in rules.rules}
            self._states = {k: v for k, v in self._states.items() if k[1] in names}
            self.verdicts.clear()
        try:
            changed = rules.evaluate(self.store, keys, now)
        except Exception as exc:  # a rule bug must not stop the watching
            return [Notice(now, sanitize(f"rule evaluation failed: {exc!r}", 500))]
        rules.take_new_triggers()  # first triggers are told apart below, across reloads
        self.verdicts.update(changed)
        events: list[Event] = []
        for key in sorted(changed):
            run = self.store.runs[key]
            for verdict in changed[key]:
                events.extend(self._verdict(run, verdict, now, historical))
        return events

    def _verdict(
        self, run: Run, verdict: Verdict, now: float, historical: bool
    ) -> Iterator[VerdictChanged]:
        pair = (run.key, verdict.rule)
        previous = self._states.get(pair, WAITING)
        if verdict.state == previous:
            return
        self._states[pair] = verdict.state
        ref = RunRef.of(run)
        if verdict.state != TRIGGERED:
            yield VerdictChanged(now, ref, verdict, previous)
            return
        first = pair not in self._triggered
        self._triggered.add(pair)
        news = first and (not historical or run.status in ALIVE)
        action, result = self._act(run, ref, verdict, first)
        yield VerdictChanged(now, ref, verdict, previous, news, action, result)

    # Killing ---------------------------------------------------------------------------
    def _act(self, run: Run, ref: RunRef, verdict: Verdict, first: bool) -> tuple[Action, str]:
        """Start the kill a triggered verdict orders, or say why there is none."""
        if verdict.action != "kill":
            demoted = self.rules is not None and verdict.rule in self.rules.demoted
            return "flag", (
                "flagged (its kill action is ignored: the rules file is not trusted)"
                if demoted
                else "flagged"
            )
        if not self.auto_kill:
            return "flag", "flagged (a kill rule; --auto-kill is off)"
        if not first:
            return "flag", "flagged (this rule already acted on this run)"
        if run.status not in ALIVE:
            return "flag", f"flagged (the run is {run.status}: nothing to stop)"
        if run.key in self._killing:
            return "flag", "flagged (a kill of this run is already under way)"
        meta = run.meta
        recorded = meta.get("pid") is not None or meta.get("slurm_job_id") is not None
        found = run.process
        if not recorded and (found is None or found.pid is None):
            why = found.evidence if found is not None else "no process of the run is known"
            return "flag", f"flagged (cannot kill: {why})"
        action: Action = "scancel" if meta.get("slurm_job_id") is not None else "signal"
        target = _KillTarget(
            ref,
            verdict,
            action,
            self.root / unescape_path(run.path),
            copy.deepcopy(dict(meta)),
            None if recorded else found,
        )
        thread = threading.Thread(
            target=self._kill, args=(target,), name=f"tracktui-kill-{run.key}", daemon=True
        )
        self._killing[run.key] = thread
        thread.start()
        if action == "scancel":
            return action, "cancelling its Slurm job"
        return action, f"terminating: SIGTERM, then SIGKILL after {self.grace:g} s"

    def _kill(self, target: _KillTarget) -> None:
        """In a thread of its own: plan (identity, ownership, tree), execute, report."""
        verdict = target.verdict
        try:
            if target.found is None:
                plan = procs.plan_kill(target.run_dir, target.meta)
            else:
                plan = procs.plan_kill_found(target.run_dir, target.found, name=target.run.name)
            if isinstance(plan, procs.Refusal):
                result, ok = f"refused: {plan.message}", False
            else:
                report = procs.execute(
                    plan,
                    "term",
                    self.grace,
                    procs.default_audit_path(self.root),
                    f"rule {verdict.rule}: {verdict.reason}",
                )
                result, ok = "; ".join(line.strip() for line in report.describe()), report.ok
        except Exception as exc:  # reported like a refusal: the follower carries on
            result, ok = f"kill failed: {exc!r}", False
        done = ActionTaken(
            self.clock(), target.run, verdict, target.action, sanitize(result, 2000), ok
        )
        self._wakeups.put(done)

    def _finished_kill(self, key: str) -> None:
        thread = self._killing.pop(key, None)
        if thread is not None:
            thread.join()
        self.engine.mark([key])  # its run.json and files say how it ended
        self._next_evidence = 0.0  # and the audit log says who stopped it


@contextlib.contextmanager
def stopped_by_signals(
    follower: Follower, signals: tuple[signal.Signals, ...] = (signal.SIGTERM, signal.SIGINT)
) -> Iterator[None]:
    """While inside, ``signals`` make ``follower`` stop cleanly (no KeyboardInterrupt).

    Call from the main thread (only it may set signal handlers).
    """

    def stop(_signum: int, _frame: object) -> None:
        follower.request_stop()

    previous = {number: signal.signal(number, stop) for number in signals}
    try:
        yield
    finally:
        for number, handler in previous.items():
            signal.signal(number, handler)
