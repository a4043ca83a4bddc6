"""Sweep maths: hyperparameters laid out on axes, and the best runs of a metric.

The sweep plots take :class:`SweepPoint` objects (one per run: its label, its
hyperparameters and one metric value). Hyperparameters are mapped to axes by
:func:`axis_for`: numbers on a linear or (when they span more than two decades) log scale,
anything else as evenly spaced categories; the metric by :func:`metric_axis`, over
:func:`metric_range`, which leaves an exploding run out (it is drawn clipped, on the edge)
and keeps an accuracy-like metric within ``[0, 1]``. :func:`best_indices` picks the best
runs (top ``k`` by the metric, ``mode`` ``"min"`` or ``"max"``) among those drawn; NaN
values are never among them.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Literal

import numpy as np
import numpy.typing as npt

from tui.core.reduce import robust_range
from tui.core.sanitize import sanitize
from tui.core.shapes import format_number
from tui.core.values import MISSING, Missing, real_number

LOG_DECADES = 2.0
"""A numeric axis whose values (all positive) span more than this many decades is log."""

SWEEP_QUANTILE = 25.0
"""Percentile the metric's outlier-free range is measured from (see :func:`robust_range`):
a sweep has one value per run, so one explosion among five runs must fall outside it."""

RATIO_WORDS = ("acc", "precision", "recall", "f1", "auc", "iou", "dice", "ratio", "rate", "frac")
"""Words in a metric's name that make it a ratio when its values lie within ``[0, 1]``
(see :func:`is_ratio`)."""


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
        low: the value at unit position 0 (the first category's index when categorical).
        high: the value at unit position 1.
    """

    name: str
    kind: Literal["linear", "log", "categorical"]
    data: npt.NDArray[np.float64]
    unit: npt.NDArray[np.float64]
    ticks: tuple[tuple[float, str], ...]
    low: float = math.nan
    high: float = math.nan

    @property
    def clipped(self) -> npt.NDArray[np.bool_]:
        """Per run, whether its value lies beyond the axis (drawn on its nearer end)."""
        return np.asarray((self.data < self.low) | (self.data > self.high))

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


def axis_for(
    name: str, values: Sequence[object | Missing], span: tuple[float, float] | None = None
) -> Axis:
    """Lay out one hyperparameter's values (one per run, :data:`MISSING` allowed).

    Args:
        name: the axis title.
        values: the runs' values; numbers (not bools) give a numeric axis, log-scaled when
            all are positive and span more than two decades; any other value (text, bool,
            NaN, a list) makes the axis categorical: numbers first in ascending order, then
            the rest sorted as text.
        span: the ends of a numeric axis; values beyond them are placed on the nearer end
            (see :attr:`Axis.clipped`). By default the axis spans the values exactly.

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
        lo, hi = span or (float(np.nanmin(data)), float(np.nanmax(data)))
        log = lo > 0 and hi / lo > 10**LOG_DECADES
        with np.errstate(divide="ignore", invalid="ignore"):
            scaled = np.log10(np.clip(data, lo, hi)) if log else np.clip(data, lo, hi)
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
        return Axis(name, "log" if log else "linear", data, unit, ticks, lo, hi)
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
    last = max(1, len(order) - 1)
    unit = data / last if len(order) > 1 else np.where(np.isnan(data), np.nan, 0.5)
    ticks = tuple(((i / last if len(order) > 1 else 0.5), label) for i, label in enumerate(order))
    return Axis(name, "categorical", data, unit, ticks, 0.0, float(last))


def is_ratio(name: str, values: Sequence[float]) -> bool:
    """Whether the metric ``name`` taking ``values`` (one per run) is a ratio: accuracy,
    precision, F1, IoU... whose axis never leaves ``[0, 1]``.

    The name alone is not enough, as an accuracy logged in percent runs to 100: no finite
    value may be negative, and most must lie within ``[0, 1]`` (a run beyond is a bug, drawn
    clipped).
    """
    lowered = name.lower()
    if not any(word in lowered for word in RATIO_WORDS):
        return False
    finite = [v for v in values if math.isfinite(v)]
    return bool(finite) and min(finite) >= 0.0 and float(np.median(finite)) <= 1.0


def metric_range(name: str, values: Sequence[float]) -> tuple[float, float] | None:
    """The ends of the axis of the metric ``name`` taking one value per run.

    The axis spans the finite values, no further, leaving out outliers the way the charts
    do (:func:`robust_range` over the runs' quartiles), so a run exploding to 1e24 does not
    flatten the others; runs beyond the ends are drawn clipped. A ratio's axis stays within
    ``[0, 1]`` (:func:`is_ratio`); equal values get a little room on both sides.

    Returns:
        ``(low, high)`` with ``low < high``, or ``None`` when no value is finite.
    """
    cut = robust_range(values, quantile=SWEEP_QUANTILE)
    if cut is None:
        return None
    # The ends are the extreme values within the cut, so the axis never runs past them.
    kept = [v for v in values if cut[0] <= v <= cut[1]] or list(cut)
    ratio = is_ratio(name, values)
    # The median of a ratio is within [0, 1], and so between the ends: clamped, lo <= hi.
    lo, hi = min(kept), max(kept)
    if ratio:
        lo, hi = max(0.0, lo), min(1.0, hi)
    if hi > lo:
        return lo, hi
    pad = max(abs(lo) * 0.1, 1e-9)
    lo, hi = lo - pad, hi + pad
    return (max(0.0, lo), min(1.0, hi)) if ratio else (lo, hi)


def metric_axis(name: str, values: Sequence[float]) -> Axis:
    """The metric laid out on an axis over :func:`metric_range` (NaN and inf left out)."""
    present: list[object | Missing] = [v if math.isfinite(v) else MISSING for v in values]
    return axis_for(name, present, metric_range(name, values))


def best_indices(
    values: Sequence[float], k: int, mode: str, among: Sequence[bool] | None = None
) -> list[int]:
    """Indices of the ``k`` best finite values, best first (ties keep input order).

    ``mode`` is ``"max"`` when larger is better; anything else means smaller is better.
    ``among`` (one flag per value) limits the choice to the runs a plot draws, so that a
    plot highlights its own best ``k``, not fewer.
    """
    finite = [
        (v, i) for i, v in enumerate(values) if math.isfinite(v) and (among is None or among[i])
    ]
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
