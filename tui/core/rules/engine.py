"""The rule engine: every rule's verdict for every run, kept up to date incrementally."""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Iterable, Sequence

from tui.core.rules.checks import CHECKS, Check, ClockCheck, GpuCheck
from tui.core.rules.median import Curves
from tui.core.rules.spec import Rule
from tui.core.rules.verdict import TRIGGERED, WAITING, Verdict
from tui.core.store import Run, RunStore


class _RunState:
    __slots__ = ("checks", "run", "verdicts")

    def __init__(self, run: Run, rules: Sequence[Rule]) -> None:
        self.run = run
        self.checks = [CHECKS[rule.when](rule) for rule in rules]
        self.verdicts = [c.verdict for c in self.checks]


class RuleEngine:
    """Evaluates rules on a :class:`RunStore`, incrementally, on the store's thread.

    Args:
        rules: the rules, in the order their verdicts are listed.
        clock: the wall clock for ``stalled`` when :meth:`evaluate` gets no ``now``.
    """

    def __init__(self, rules: Sequence[Rule], clock: Callable[[], float] = time.time) -> None:
        self.rules: tuple[Rule, ...] = tuple(rules)
        self.clock = clock
        self._states: dict[str, _RunState] = {}
        self._announced: set[tuple[str, str]] = set()
        self._new: list[tuple[str, Verdict]] = []
        self._curves: dict[tuple[str, str], Curves] = {}
        self._median = [i for i, r in enumerate(self.rules) if r.when == "worse_than_median"]
        self._clocked = [
            i for i, r in enumerate(self.rules) if issubclass(CHECKS[r.when], ClockCheck)
        ]
        for i in self._median:
            rule = self.rules[i]
            key = (rule.metric or "", rule.mode)
            if key not in self._curves:
                self._curves[key] = Curves(*key)

    def evaluate(
        self, store: RunStore, keys: Iterable[str] | None = None, now: float | None = None
    ) -> dict[str, list[Verdict]]:
        """Bring verdicts up to date after the store changed.

        Args:
            store: the runs.
            keys: the runs that changed since the last call (``None``: every run). The
                per-run rules look only at these; ``stalled`` and ``worse_than_median``
                always look at every run, since time passes and runs compare with each
                other.
            now: the time for ``stalled`` (default: the engine's clock).

        Returns:
            The verdicts, in rule order, of every run in ``keys`` that is in the store and
            of every other run whose verdicts changed.
        """
        now = self.clock() if now is None else now
        for key in [k for k in self._states if k not in store.runs]:
            del self._states[key]
        wanted = list(store.runs) if keys is None else [k for k in keys if k in store.runs]
        touched: set[str] = set(wanted)
        for key in wanted:
            state = self._state(store.runs[key])
            for check in state.checks:
                check.update(state.run)
        if self._median:
            touched |= self._judge_medians(store)
        if self._clocked:
            for key, run in store.runs.items():
                state = self._state(run)
                for i in self._clocked:
                    check = state.checks[i]
                    assert isinstance(check, ClockCheck)
                    before = check.verdict
                    check.check(run, now)
                    if check.verdict != before:
                        touched.add(key)
        return self._collect(touched, wanted)

    @property
    def needs_gpu(self) -> bool:
        """True when a rule judges GPU use: someone must keep ``run.gpu`` current."""
        return any(issubclass(CHECKS[r.when], GpuCheck) for r in self.rules)

    def _state(self, run: Run) -> _RunState:
        state = self._states.get(run.key)
        if state is None or state.run is not run:
            state = self._states[run.key] = _RunState(run, self.rules)
        return state

    def _judge_medians(self, store: RunStore) -> set[str]:
        touched: set[str] = set()
        for curves in self._curves.values():
            low, changed, replaced = curves.sync(store)
            if low == math.inf:
                continue
            for key in replaced:
                state = self._state(store.runs[key])
                for i in self._median:
                    state.checks[i].reset()
            for i in self._median:
                rule = self.rules[i]
                if (rule.metric or "", rule.mode) != (curves.metric, curves.mode):
                    continue
                checks: dict[str, Check] = {}
                for key, run in store.runs.items():
                    check = self._state(run).checks[i]
                    if check.triggered:
                        continue
                    curve = curves.curves.get(key)
                    if key in changed or (curve is not None and curve.n and curve.last >= low):
                        checks[key] = check
                curves.judge(rule, checks, store.runs)
                touched.update(checks)
        return touched

    def _collect(self, touched: set[str], wanted: list[str]) -> dict[str, list[Verdict]]:
        result: dict[str, list[Verdict]] = {}
        for key in touched:
            state = self._states[key]
            verdicts = [c.verdict for c in state.checks]
            if verdicts != state.verdicts:
                state.verdicts = verdicts
                for verdict in verdicts:
                    if verdict.state == TRIGGERED and (key, verdict.rule) not in self._announced:
                        self._announced.add((key, verdict.rule))
                        self._new.append((key, verdict))
                result[key] = verdicts
        for key in wanted:
            result.setdefault(key, self._states[key].verdicts)
        return {key: list(verdicts) for key, verdicts in result.items()}

    def verdicts(self, key: str) -> list[Verdict]:
        """The latest verdicts of run ``key``, in rule order (``waiting`` if never seen)."""
        state = self._states.get(key)
        if state is None:
            return [
                Verdict(r.name, WAITING, None, "not evaluated yet", r.action) for r in self.rules
            ]
        return list(state.verdicts)

    def take_new_triggers(self) -> list[tuple[str, Verdict]]:
        """``(run key, verdict)`` of triggers not reported before, each (run, rule) once.

        The list is emptied by the call: notify or auto-kill for each item exactly once.
        """
        new, self._new = self._new, []
        return new

    def forget(self, key: str) -> None:
        """Drop the state of a run that left the store (its triggers stay reported)."""
        self._states.pop(key, None)
