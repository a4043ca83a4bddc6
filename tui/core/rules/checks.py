"""The state of one rule for one run, fed the points it has not seen yet.

The per-run rules (``nonfinite``, ``above`` / ``below``, ``no_improvement``) judge new
points as they arrive; ``stalled`` needs the clock; ``worse_than_median`` keeps only its
verdict here, its data is in :mod:`tui.core.rules.median`.
"""

from __future__ import annotations

import itertools
import math
from typing import TYPE_CHECKING

import numpy as np

from tui.core.rules.spec import Rule, step_text, value_text
from tui.core.rules.verdict import OK, TRIGGERED, WAITING, Verdict
from tui.core.sizes import human_bytes
from tui.core.store import Run, Series

if TYPE_CHECKING:
    from tui.core.gpu.attribution import GpuUse

_RUNNING = frozenset({"running", "stalled"})
_BLOCK = 256
"""``no_improvement`` tests this many points at once: a block without an improvement is a
plateau it skips in one go, a block with one is scanned point by point."""
_SMALL = 32
"""Up to this many new points are read as Python lists: numpy's cost per call would dominate
the usual update of one or a few points."""


def read_points(
    run: Run, series: Series, start: int, stop: int
) -> tuple[list[float], list[float]] | tuple[np.ndarray, np.ndarray]:
    """Steps and values of points ``start`` to ``stop`` of ``series``.

    Python lists for a few points, else float64 arrays. Always copies: a numpy view would
    keep the store's arrays from growing.
    """
    count = stop - start
    if count <= _SMALL:
        table = run.steps
        return [table[i] for i in series.index[start:stop]], series.values[start:stop].tolist()
    index = np.frombuffer(series.index, dtype=np.uint32, count=count, offset=start * 4)
    values = np.frombuffer(series.values, dtype=np.float32, count=count, offset=start * 4)
    steps = np.frombuffer(run.steps, dtype=np.float64)[index.astype(np.intp)]
    return steps, values.astype(np.float64)


def effective(steps: np.ndarray) -> np.ndarray:
    """Mask of the points still in the effective history after every resume.

    A point is dropped when a later point that went backwards (a resume) has a step at or
    below its own.
    """
    resume = np.full(len(steps), np.inf)
    if len(steps) > 1:
        back = np.flatnonzero(steps[1:] < steps[:-1]) + 1
        resume[back] = steps[back]
    later = np.append(np.minimum.accumulate(resume[::-1])[::-1][1:], np.inf)
    return ~(steps >= later)


def resumes(steps: list[float] | np.ndarray, previous: float | None) -> list[int]:
    """Positions in ``steps`` whose step is lower than the point before them."""
    back: list[int]
    if isinstance(steps, np.ndarray):
        back = (np.flatnonzero(steps[1:] < steps[:-1]) + 1).tolist()
    else:
        back = [i for i in range(1, len(steps)) if steps[i] < steps[i - 1]]
    if previous is not None and len(steps) and steps[0] < previous:
        back.insert(0, 0)
    return back


class Check:
    """State of one rule for one run; ``verdict`` is always current."""

    __slots__ = ("rule", "verdict")

    def __init__(self, rule: Rule) -> None:
        self.rule = rule
        self.reset()

    def reset(self) -> None:
        self.verdict = self.make(WAITING, reason=self.initial_reason())

    def initial_reason(self) -> str:
        return f"no {self.rule.metric} yet"

    @property
    def triggered(self) -> bool:
        return self.verdict.state == TRIGGERED

    def make(self, state: str, step: float | None = None, reason: str | None = None) -> Verdict:
        return Verdict(self.rule.name, state, step, reason, self.rule.action)

    def trigger(self, step: float | None, reason: str) -> None:
        self.verdict = self.make(TRIGGERED, None if step is None else float(step), reason)

    def update(self, run: Run) -> None:
        """Look at what changed in ``run`` (per-run rules only)."""


class SeriesCheck(Check):
    """A rule judged on one run's metric alone, fed the points it has not seen."""

    __slots__ = ("consumed", "previous", "seen", "series")

    def reset(self) -> None:
        self.series: Series | None = None
        self.consumed = 0
        self.previous: float | None = None
        self.seen = 0
        super().reset()

    def update(self, run: Run) -> None:
        series = run.series.get(self.rule.metric or "")
        if series is not self.series or (series is not None and series.count < self.consumed):
            self.reset()
            self.series = series
        if series is None or self.triggered or series.count <= self.consumed:
            return
        stop = min(series.count, len(series.values), len(series.index))
        if stop <= self.consumed:
            return  # a summary without its points (a reopen paints from the cache): judged
            # once the full read brings them
        steps, values = read_points(run, series, self.consumed, stop)
        start, self.consumed = self.consumed, stop
        self.feed(run, start, steps, values)
        self.previous = float(steps[-1])
        if not self.triggered:
            self.verdict = self.current()

    def eligible(self, steps: np.ndarray) -> np.ndarray | None:
        after = self.rule.after_step
        return None if after is None else steps >= after

    def feed(
        self,
        run: Run,
        start: int,
        steps: list[float] | np.ndarray,
        values: list[float] | np.ndarray,
    ) -> None:
        """Judge new points (``start``: position of the first in the series)."""
        raise NotImplementedError

    def current(self) -> Verdict:
        """The verdict when not triggered."""
        if not self.seen:
            after, at = step_text(self.rule.after_step), step_text(self.previous)
            return self.make(WAITING, reason=f"waiting for step {after} (at {at})")
        return self.make(OK, reason=self.ok_reason())

    def ok_reason(self) -> str:
        raise NotImplementedError


class NonfiniteCheck(SeriesCheck):
    """``nonfinite``: triggered at the first NaN or +-inf point (at or after ``after_step``)."""

    __slots__ = ()

    def feed(
        self,
        run: Run,
        start: int,
        steps: list[float] | np.ndarray,
        values: list[float] | np.ndarray,
    ) -> None:
        quiet = type(values) is list and (self.rule.after_step is None or self.seen)
        if quiet and all(map(math.isfinite, values)):  # the usual case, without numpy's overhead
            self.seen = self.seen or len(values)
            return
        steps, values = np.asarray(steps, dtype=np.float64), np.asarray(values, dtype=np.float64)
        bad = ~np.isfinite(values)
        mask = self.eligible(steps)
        if mask is not None:
            bad &= mask
        self.seen += len(steps) if mask is None else int(mask.sum())
        hits = np.flatnonzero(bad)
        if hits.size:
            i = int(hits[0])
            self.trigger(
                steps[i], f"{self.rule.metric} is {values[i]} at step {step_text(steps[i])}"
            )

    def ok_reason(self) -> str:
        return f"{self.rule.metric} finite so far"


class ThresholdCheck(SeriesCheck):
    """``above`` / ``below``: triggered at the first finite point beyond ``value``.

    ``value`` is rounded to float32 like the stored points, so a point logged as exactly
    the threshold is not beyond it.
    """

    __slots__ = ("limit",)

    def __init__(self, rule: Rule) -> None:
        with np.errstate(over="ignore"):  # a threshold beyond float32 becomes +-inf
            self.limit = float(np.float32(rule.value or 0.0))
        super().__init__(rule)

    def feed(
        self,
        run: Run,
        start: int,
        steps: list[float] | np.ndarray,
        values: list[float] | np.ndarray,
    ) -> None:
        if type(values) is list and (self.rule.after_step is None or self.seen):
            limit = self.limit
            if self.rule.when == "above":
                beyond_any = any(v > limit for v in values)
            else:
                beyond_any = any(v < limit for v in values)
            if not beyond_any:  # the usual case, without numpy's overhead
                self.seen = self.seen or len(values)
                return
        steps, values = np.asarray(steps, dtype=np.float64), np.asarray(values, dtype=np.float64)
        with np.errstate(invalid="ignore"):
            beyond = values > self.limit if self.rule.when == "above" else values < self.limit
        beyond &= np.isfinite(values)
        mask = self.eligible(steps)
        if mask is not None:
            beyond &= mask
        self.seen += len(steps) if mask is None else int(mask.sum())
        hits = np.flatnonzero(beyond)
        if hits.size:
            i = int(hits[0])
            sign = ">" if self.rule.when == "above" else "<"
            self.trigger(
                steps[i],
                f"{self.rule.metric} = {value_text(values[i])} {sign} {value_text(self.rule.value)}"
                f" at step {step_text(steps[i])}",
            )

    def ok_reason(self) -> str:
        return f"{self.rule.metric} never {self.rule.when} {value_text(self.rule.value)}"


class NoImprovementCheck(SeriesCheck):
    """``no_improvement``: Keras EarlyStopping over the run's effective history.

    ``best`` is kept with the sign flipped for ``mode = "max"`` so that lower is better.
    """

    __slots__ = ("best", "best_step", "sign", "wait")

    def reset(self) -> None:
        self.sign = -1.0 if self.rule.mode == "max" else 1.0
        self.best = math.inf
        self.best_step: float | None = None
        self.wait = 0
        super().reset()

    def feed(
        self,
        run: Run,
        start: int,
        steps: list[float] | np.ndarray,
        values: list[float] | np.ndarray,
    ) -> None:
        edges = [0, *resumes(steps, self.previous), len(steps)]
        for a, b in itertools.pairwise(edges):
            if a > 0 or (self.previous is not None and steps[0] < self.previous):
                self.rewind(run, start + a, float(steps[a]))
            self.advance(steps[a:b], values[a:b])
            if self.triggered:
                return

    def rewind(self, run: Run, position: int, step: float) -> None:
        """Restart from the state after the effective points before ``position`` below ``step``.

        Those points are a prefix of a history already evaluated without a trigger, so
        replaying them cannot trigger.
        """
        assert self.series is not None
        steps, values = read_points(run, self.series, 0, position)
        steps, values = np.asarray(steps, dtype=np.float64), np.asarray(values, dtype=np.float64)
        keep = effective(steps) & (steps < step)
        self.best, self.best_step, self.wait, self.seen = math.inf, None, 0, 0
        self.advance(steps[keep], values[keep])

    def advance(self, steps: list[float] | np.ndarray, values: list[float] | np.ndarray) -> None:
        """Evaluate points in order; long plateaus are skipped a block at a time."""
        if not isinstance(values, np.ndarray) or not isinstance(steps, np.ndarray):
            self.scan(list(steps), list(values))
            return
        if self.rule.after_step is not None:
            mask = steps >= self.rule.after_step
            steps, values = steps[mask], values[mask]
        patience, delta = self.rule.patience, self.rule.min_delta
        i, n = 0, len(values)
        while i < n and not self.triggered:
            j = min(n, i + _BLOCK)
            block = self.sign * values[i:j]
            with np.errstate(invalid="ignore"):
                improving = np.isfinite(block) & (block < self.best - delta)
            if improving.any():
                self.scan(steps[i:j].tolist(), values[i:j].tolist())
            else:  # a plateau: skip to where the counter runs out
                need = patience - self.wait
                if j - i >= need:
                    self.seen += need
                    self.wait = patience
                    self.trigger_now(float(steps[i + need - 1]))
                    return
                self.seen += j - i
                self.wait += j - i
            i = j

    def scan(self, steps: list[float], values: list[float]) -> None:
        """Keras EarlyStopping, one point at a time."""
        after, sign = self.rule.after_step, self.sign
        patience, delta = self.rule.patience, self.rule.min_delta
        for step, value in zip(steps, values):
            if after is not None and not step >= after:
                continue
            self.seen += 1
            signed = sign * value
            if math.isfinite(signed) and signed < self.best - delta:
                self.best, self.best_step, self.wait = signed, step, 0
                continue
            self.wait += 1
            if self.wait >= patience:
                self.trigger_now(step)
                return

    def trigger_now(self, step: float) -> None:
        metric, patience = self.rule.metric, self.rule.patience
        if self.best_step is None:
            reason = f"no finite {metric} in {patience} evaluations"
        else:
            reason = (
                f"no improvement of {metric} in {patience} evaluations"
                f" (best {value_text(self.sign * self.best)} at step {step_text(self.best_step)})"
            )
        self.trigger(step, reason)

    def current(self) -> Verdict:
        patience = self.rule.patience
        if self.seen < patience:
            if not self.seen and self.rule.after_step is not None:
                return super().current()
            return self.make(WAITING, reason=f"{self.seen} of {patience} evaluations so far")
        return super().current()

    def ok_reason(self) -> str:
        best = (
            f"best {value_text(self.sign * self.best)} at step {step_text(self.best_step)}"
            if self.best_step is not None
            else "no finite value"
        )
        return f"{best}; {self.wait} of {self.rule.patience} evaluations without improvement"


class ClockCheck(Check):
    """A rule judged on a run's state at a moment, not on its points: every evaluation
    looks at every run (time passes, and machine evidence changes without new records)."""

    __slots__ = ()

    def check(self, run: Run, now: float) -> None:
        """Judge ``run`` as it is at ``now``."""
        raise NotImplementedError

    def settle(self, state: str, reason: str) -> None:
        """Set a verdict that is not a trigger; built only on a change (this runs for every
        run at every evaluation)."""
        if self.verdict.state != state or self.verdict.reason != reason:
            self.verdict = self.make(state, reason=reason)


class StalledCheck(ClockCheck):
    """``stalled``: no sign of life for ``seconds`` while running. Needs the clock."""

    __slots__ = ()

    def initial_reason(self) -> str:
        return "no record yet"

    def check(self, run: Run, now: float) -> None:
        if self.triggered:
            return
        limit = self.rule.seconds or 0.0
        stamps = [t for t in (run.last_time, run.mtime) if t is not None]
        if run.status not in _RUNNING:
            state, reason = OK, f"not running ({run.status})"
        elif not stamps:
            state, reason = WAITING, "no record yet"
        elif now - max(stamps) > limit:
            idle = now - max(stamps)
            self.trigger(
                run.last_step, f"no new record for {idle:.0f} s (limit {value_text(limit)} s)"
            )
            return
        else:
            state, reason = OK, f"records within {value_text(limit)} s"
        self.settle(state, reason)


class GpuCheck(ClockCheck):
    """A rule on the GPU use of a run's process tree (``run.gpu``, from the latest GPU
    reading), held for ``seconds`` of readings: the condition must hold from one reading to
    a reading at least ``seconds`` later, with no reading in between that broke it."""

    __slots__ = ("since",)

    def reset(self) -> None:
        self.since: float | None = None
        super().reset()

    def initial_reason(self) -> str:
        return "no GPU reading yet"

    def holds(self, use: GpuUse) -> tuple[bool | None, str]:
        """Whether the condition holds in this reading (``None``: cannot tell), and why."""
        raise NotImplementedError

    def check(self, run: Run, now: float) -> None:
        if self.triggered:
            return
        use = run.gpu
        if run.status not in _RUNNING:
            self.since = None
            self.settle(OK, f"not running ({run.status})")
            return
        if use is None:
            self.since = None
            self.settle(WAITING, "no GPU reading for the run (no GPU, or its process is unknown)")
            return
        held, reason = self.holds(use)
        if not held:
            self.since = None
            self.settle(WAITING if held is None else OK, reason)
            return
        if self.since is None or use.time < self.since:
            self.since = use.time
        lasted = use.time - self.since
        limit = self.rule.seconds or 0.0
        if lasted >= limit:
            self.trigger(run.last_step, reason + (f" for {lasted:.0f} s" if limit else ""))
            return
        self.settle(OK, f"{reason} for {lasted:.0f} s of {value_text(limit)} s")


class GpuIdleCheck(GpuCheck):
    """``gpu_idle``: on a GPU, but its utilisation under ``value`` % for ``seconds``."""

    __slots__ = ()

    def holds(self, use: GpuUse) -> tuple[bool | None, str]:
        if not use.on_gpu:
            return False, "not on a GPU"
        if use.utilization is None:
            return None, "GPU utilisation unknown (no per-process samples, GPU shared)"
        limit = self.rule.value or 0.0
        held = f"GPU utilisation {use.utilization:.0f} % while holding {human_bytes(use.memory)}"
        if use.utilization < limit:
            return True, f"{held} (< {value_text(limit)} %)"
        return False, f"{held} (>= {value_text(limit)} %)"


class GpuMemoryCheck(GpuCheck):
    """``gpu_memory_above``: its processes hold more than ``value`` bytes of GPU memory."""

    __slots__ = ()

    def holds(self, use: GpuUse) -> tuple[bool | None, str]:
        limit = self.rule.value or 0.0
        text = f"GPU memory {human_bytes(use.memory)}"
        if use.memory > limit:
            return True, f"{text} > {human_bytes(limit)}"
        return False, f"{text} <= {human_bytes(limit)}"


class MedianCheck(Check):
    """``worse_than_median``: the verdict only; :class:`Curves` holds the data."""

    __slots__ = ()


CHECKS: dict[str, type[Check]] = {
    "nonfinite": NonfiniteCheck,
    "above": ThresholdCheck,
    "below": ThresholdCheck,
    "no_improvement": NoImprovementCheck,
    "worse_than_median": MedianCheck,
    "stalled": StalledCheck,
    "gpu_idle": GpuIdleCheck,
    "gpu_memory_above": GpuMemoryCheck,
}
