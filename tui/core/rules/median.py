"""The median stopping rule: best-so-far curves of every run, compared at the same step."""

from __future__ import annotations

import itertools
import math

import numpy as np

from tui.core.rules.checks import Check, read_points, resumes
from tui.core.rules.spec import Rule, step_text, value_text
from tui.core.rules.verdict import OK, WAITING
from tui.core.store import Run, RunStore, Series


class Curve:
    """One run's best-so-far of a metric along its effective history (steps non-decreasing).

    ``best`` holds signed values (lower is better); +inf where no finite point exists yet.
    """

    __slots__ = ("best", "consumed", "n", "partial", "series", "steps")

    def __init__(self) -> None:
        self.series: Series | None = None
        self.consumed = 0
        self.steps = np.empty(16)
        self.best = np.empty(16)
        self.n = 0
        self.partial = False

    @property
    def last(self) -> float:
        return float(self.steps[self.n - 1])

    def sync(self, run: Run, metric: str, sign: float) -> tuple[float | None, bool]:
        """Take in new points. Returns the lowest step whose best or reach changed (or
        ``None``) and whether the run's history was replaced."""
        series = run.series.get(metric)
        changed: float | None = None
        replaced = series is not self.series or (
            series is not None and series.count < self.consumed
        )
        if replaced:
            self.series, self.consumed, self.n = series, 0, 0
            changed = -math.inf
        if run.partial != self.partial:
            self.partial = run.partial
            changed = -math.inf
        if series is None or series.count <= self.consumed:
            return changed, replaced
        stop = min(series.count, len(series.values), len(series.index))
        steps, values = read_points(run, series, self.consumed, stop)
        self.consumed = stop
        low = self.last if self.n else -math.inf
        if isinstance(steps, np.ndarray) and isinstance(values, np.ndarray):
            usable = np.isfinite(steps)
            steps, values = steps[usable], values[usable]
            signed = sign * values
            signed[~np.isfinite(signed)] = np.inf
            edges = [0, *resumes(steps, None), len(steps)]
            for a, b in itertools.pairwise(edges):
                if a < b:
                    low = min(low, self.cut(float(steps[a])))
                    self.append(steps[a:b], signed[a:b])
        else:
            for step, value in zip(steps, values):
                if math.isfinite(step):
                    low = min(low, self.cut(step))
                    self.push(step, sign * value)
        return (low if changed is None else changed), replaced

    def cut(self, step: float) -> float:
        """Drop the points that a resume at ``step`` supersedes; returns ``step``."""
        if self.n and step < self.last:
            self.n = int(np.searchsorted(self.steps[: self.n], step, side="left"))
        return step

    def reserve(self, need: int) -> None:
        """Grow the buffers (doubling) to hold ``need`` points."""
        if need > len(self.steps):
            size = max(need, 2 * len(self.steps))
            self.steps = np.resize(self.steps, size)
            self.best = np.resize(self.best, size)

    def push(self, step: float, signed: float) -> None:
        """Append one point (the common live update), without numpy's per-call overhead."""
        self.reserve(self.n + 1)
        previous = float(self.best[self.n - 1]) if self.n else math.inf
        self.steps[self.n] = step
        self.best[self.n] = min(previous, signed) if math.isfinite(signed) else previous
        self.n += 1

    def append(self, steps: np.ndarray, signed: np.ndarray) -> None:
        need = self.n + len(steps)
        self.reserve(need)
        previous = self.best[self.n - 1] if self.n else np.inf
        self.steps[self.n : need] = steps
        self.best[self.n : need] = np.minimum(np.minimum.accumulate(signed), previous)
        self.n = need

    def best_at(self, query: np.ndarray) -> np.ndarray:
        """Best-so-far at each query step; +inf where not reached or undefined."""
        if not self.n or self.partial:
            return np.full(len(query), np.inf)
        steps = self.steps[: self.n]
        index = np.searchsorted(steps, query, side="right") - 1
        out = self.best[np.maximum(index, 0)]
        out[(index < 0) | (query > steps[-1])] = np.inf
        return out


class Curves:
    """Best-so-far curves of every run for one (metric, mode), shared by median rules."""

    def __init__(self, metric: str, mode: str) -> None:
        self.metric = metric
        self.mode = mode
        self.sign = -1.0 if mode == "max" else 1.0
        self.curves: dict[str, Curve] = {}

    def sync(self, store: RunStore) -> tuple[float, set[str], set[str]]:
        """Update from every run. Returns the lowest changed step (+inf: none), the runs
        that changed and the runs whose history was replaced."""
        low = math.inf
        changed: set[str] = set()
        replaced: set[str] = set()
        for key in [k for k in self.curves if k not in store.runs]:
            del self.curves[key]
            low = -math.inf
        for key, run in store.runs.items():
            curve = self.curves.get(key)
            if curve is None:
                if self.metric not in run.series:
                    continue
                curve = self.curves[key] = Curve()
            step, was_replaced = curve.sync(run, self.metric, self.sign)
            if was_replaced:
                replaced.add(key)
            if step is not None:
                changed.add(key)
                low = min(low, step)
        return low, changed, replaced

    def judge(self, rule: Rule, checks: dict[str, Check], runs: dict[str, Run]) -> None:
        """Set the verdict of each given run not yet triggered."""
        metric, sign = rule.metric, self.sign
        pending: list[tuple[Check, float, float]] = []
        for key, check in checks.items():
            curve = self.curves.get(key)
            if curve is None or not curve.n:
                check.verdict = check.make(WAITING, reason=f"no {metric} yet")
            elif runs[key].partial:
                check.verdict = check.make(WAITING, reason="history still loading")
            elif rule.after_step is not None and curve.last < rule.after_step:
                check.verdict = check.make(
                    WAITING,
                    reason=f"waiting for step {step_text(rule.after_step)} (at {step_text(curve.last)})",
                )
            elif not math.isfinite(curve.best[curve.n - 1]):
                check.verdict = check.make(WAITING, reason=f"no finite {metric} yet")
            else:
                pending.append((check, curve.last, float(curve.best[curve.n - 1])))
        if not pending:
            return
        query = np.unique(np.array([s for _, s, _ in pending]))
        comparable = [c for c in self.curves.values() if c.n and not c.partial]
        table = np.empty((len(query), len(comparable)))
        for j, curve in enumerate(comparable):
            table[:, j] = curve.best_at(query)
        table.sort(axis=1)
        counts = np.isfinite(table).sum(axis=1)
        for check, step, own in pending:
            row = int(np.searchsorted(query, step))
            others = int(counts[row]) - 1
            if others < rule.min_runs:
                check.verdict = check.make(
                    WAITING,
                    reason=f"needs {rule.min_runs} other runs at step {step_text(step)}, has {others}",
                )
                continue
            median = median_without(table[row, : others + 1], own)
            text = (
                f"best {metric} {value_text(sign * own)} at step {step_text(step)}"
                f" vs median {value_text(sign * median)} of {others} other runs"
            )
            if own > median:
                check.trigger(step, text)
            else:
                check.verdict = check.make(OK, reason=text)


def median_without(ordered: np.ndarray, value: float) -> float:
    """Median of sorted ``ordered`` after removing one occurrence of ``value`` (in it)."""
    at = int(np.searchsorted(ordered, value, side="left"))
    size = len(ordered) - 1

    def rank(i: int) -> float:
        return float(ordered[i] if i < at else ordered[i + 1])

    return (rank((size - 1) // 2) + rank(size // 2)) / 2
