"""``Trace``: one series a chart draws, with its label, colour and y-axis."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

import numpy as np
import numpy.typing as npt

from tui.app.widgets.plot_colors import PALETTE, PlotColor


def floats(values: object) -> npt.NDArray[np.float64]:
    """``values`` (an array, a list, a range...) as a flat float64 array; empty if not numbers."""
    try:
        return np.asarray(values, dtype=np.float64).reshape(-1)
    except (TypeError, ValueError):
        return np.empty(0, dtype=np.float64)


@dataclass(frozen=True, eq=False)
class Trace:
    """One series to draw.

    Attributes:
        label: the legend text (a run and/or metric name, already sanitized).
        x: x values (steps, seconds, ...), coerced to a float64 array by :func:`floats`.
        y: y values, the same length as ``x`` (the longer one is cut when drawing).
        color: a plotext colour; see :data:`PALETTE` and :func:`color_for`.
        axis: ``"left"`` or ``"right"``: which y-axis the series is measured against.
    """

    label: str
    x: npt.NDArray[np.float64] = field(repr=False)
    y: npt.NDArray[np.float64] = field(repr=False)
    color: PlotColor = PALETTE[0]
    axis: Literal["left", "right"] = "left"

    def __post_init__(self) -> None:
        # Frozen, so coercion goes through object.__setattr__; lists and tuples are welcome.
        object.__setattr__(self, "x", floats(self.x))
        object.__setattr__(self, "y", floats(self.y))
