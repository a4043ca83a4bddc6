"""The chart options every chart screen shares: smoothing steps and x-axes.

The run view's charts and the compare screen's charts step smoothing with the same keys
through the same strengths, and cycle through the same x-axes; both take a metric's points
against an x-axis from :func:`points_against`.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import numpy.typing as npt

from tui.core.store import Run, Series

SMOOTHING_STEPS: tuple[float, ...] = (0.0, 0.6, 0.8, 0.9, 0.95, 0.99)
"""EMA strengths that ``+`` and ``-`` step through."""

BUILTIN_AXES: tuple[str, ...] = ("step", "time", "relative")
"""X-axes every run has; any numeric metric follows them in the cycle."""

AXIS_LABELS = {"step": "step", "time": "wall time", "relative": "s since start"}


def axis_label(axis: str) -> str:
    """The x-axis name shown under the charts."""
    return AXIS_LABELS.get(axis, axis)


def step_smoothing(strength: float, direction: int) -> float:
    """The next of :data:`SMOOTHING_STEPS` above (``direction > 0``) or below ``strength``.

    At either end the strength stays as it is.
    """
    if direction > 0:
        return next((s for s in SMOOTHING_STEPS if s > strength), strength)
    lower = [s for s in SMOOTHING_STEPS if s < strength]
    return lower[-1] if lower else strength


def next_axis(axes: Sequence[str], current: str) -> str:
    """The x-axis after ``current`` in ``axes``, wrapping around (the first if unknown)."""
    position = axes.index(current) if current in axes else -1
    return axes[(position + 1) % len(axes)]


def points_against(
    run: Run, series: Series, axis: str
) -> tuple[npt.NDArray[np.float64], npt.NDArray[np.float64]]:
    """The points of ``series`` as ``(x, y)`` with x on ``axis``.

    Against another metric, only the records that logged it have a place on the axis.
    """
    x = run.x_values(series, axis)
    y = series.array()
    if axis not in BUILTIN_AXES:
        keep = np.isfinite(x)
        x, y = x[keep], y[keep]
    return x, y
