"""Sweep maths: hyperparameters laid out on axes, and the best runs of a metric.

The sweep plots take :class:`SweepPoint` objects (one per run: its label, its
hyperparameters and one metric value). Hyperparameters are mapped to axes by
:func:`axis_for`: numbers on a linear or (when they span more than two decades) log scale,
anything else as evenly spaced categories. :func:`best_indices` picks the best runs (top
``k`` by the metric, ``mode`` ``"min"`` or ``"max"``); NaN values are never among them.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Literal

import numpy as np
import numpy.typing as npt

from tui.core.sanitize import sanitize
from tui.core.shapes import format_number
from tui.core.values import MISSING, Missing, real_number

LOG_DECADES = 2.0
"""A numeric axis whose values (all positive) span more than this many decades is log."""


@dataclass(frozen=True)
class SweepPoint:
    """One run in a sweep.

    Attributes:
        run_label: the run's name as shown (already sanitized).
        params: its hyperparameters (flattened config keys to values).
        value: the chosen metric for the run (last or best); NaN when it has none.
    """

    run_label: str
    params: Mapping[str, object] = field(default_factory=dict)
    value: float = math.nan


@dataclass(frozen=True)
class Axis:
    """A hyperparameter (or the metric) laid out on one axis.

    Attributes:
        name: the axis title.
        kind: ``"linear"``, ``"log"`` or ``"categorical"``.
        data: per run, the value in plot space (the number itself for linear and log axes,
            the category's index for categorical ones), NaN when missing.
        unit: per run, the position scaled to ``[0, 1]`` (log axes on log10), NaN when
            missing.
        ticks: ``(unit position, label)`` pairs: every category, or the two ends.
    """

    name: str
    kind: Literal["linear", "log", "categorical"]
    data: npt.NDArray[np.float64]
    unit: npt.NDArray[np.float64]
    ticks: tuple[tuple[float, str], ...]

    @property
    def categories(self) -> tuple[str, ...]:
        """Category labels in axis order (empty for numeric axes)."""
        return tuple(label for _, label in self.ticks) if self.kind == "categorical" else ()


def metric_value(value: object) -> float:
    """A run's metric value as a float: NaN for anything but a real, finite number."""
    number = real_number(value)
    return math.nan if number is None else number


def _category(value: object) -> str:
    number = real_number(value)
    if number is not None:
        return format_number(number)
    return sanitize(str(value), 40)


def axis_for(name: str, values: Sequence[object | Missing]) -> Axis:
    """Lay out one hyperparameter's values (one per run, :data:`MISSING` allowed).

    Args:
        name: the axis title.
        values: the runs' values; numbers (not bools) give a numeric axis, log-scaled when
            all are positive and span more than two decades; any other value (text, bool,
            NaN, a list) makes the axis categorical: numbers first in ascending order, then
            the rest sorted as text.

    Returns:
        The :class:`Axis`.
    """
    present = [v for v in values if v is not MISSING]
    numbers = [real_number(v) for v in present]
    count = len(values)
    data = np.full(count, np.nan)
    unit = np.full(count, np.nan)
    if present and all(n is not None for n in numbers):
        for i, value in enumerate(values):
            if value is not MISSING:
                data[i] = real_number(value)
        lo, hi = float(np.nanmin(data)), float(np.nanmax(data))
        log = lo > 0 and hi / lo > 10**LOG_DECADES
        scaled = np.log10(data) if log else data
        s_lo, s_hi = (math.log10(lo), math.log10(hi)) if log else (lo, hi)
        unit = (
            (scaled - s_lo) / (s_hi - s_lo)
            if s_hi > s_lo
            else np.where(np.isnan(data), np.nan, 0.5)
        )
        ticks: tuple[tuple[float, str], ...] = (
            ((0.0, format_number(lo)), (1.0, format_number(hi)))
            if hi > lo
            else ((0.5, format_number(lo)),)
        )
        return Axis(name, "log" if log else "linear", data, unit, ticks)
    labels: dict[str, tuple[int, float, str]] = {}
    for value in present:
        label = _category(value)
        number = real_number(value)
        labels.setdefault(label, (0, number, "") if number is not None else (1, 0.0, label))
    order = sorted(labels, key=lambda label: labels[label])
    index = {label: i for i, label in enumerate(order)}
    for i, value in enumerate(values):
        if value is not MISSING:
            data[i] = index[_category(value)]
    span = max(1, len(order) - 1)
    unit = data / span if len(order) > 1 else np.where(np.isnan(data), np.nan, 0.5)
    ticks = tuple(((i / span if len(order) > 1 else 0.5), label) for i, label in enumerate(order))
    return Axis(name, "categorical", data, unit, ticks)


def best_indices(values: Sequence[float], k: int, mode: str) -> list[int]:
    """Indices of the ``k`` best finite values, best first (ties keep input order).

    ``mode`` is ``"max"`` when larger is better; anything else means smaller is better.
    """
    finite = [(v, i) for i, v in enumerate(values) if math.isfinite(v)]
    finite.sort(key=lambda item: (-item[0] if mode == "max" else item[0], item[1]))
    return [i for _, i in finite[: max(0, k)]]


def varying_params(points: Sequence[SweepPoint]) -> list[str]:
    """Hyperparameter names whose value differs between runs, in first-seen order."""
    seen: dict[str, set[str]] = {}
    for point in points:
        for key, value in point.params.items():
            seen.setdefault(key, set()).add(repr(value))
    for key, values in seen.items():
        if any(key not in p.params for p in points):
            values.add("<missing>")
    return [key for key, values in seen.items() if len(values) > 1]
