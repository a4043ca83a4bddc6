"""Values from runs: what counts as a real number, and the mark of a missing value."""

from __future__ import annotations

import enum
import math
import numbers
from typing import Final


class Missing(enum.Enum):
    """The type of :data:`MISSING`; a one-member enum, so a type checker narrows on ``is``."""

    MISSING = "MISSING"

    def __repr__(self) -> str:
        return "MISSING"


MISSING: Final = Missing.MISSING
"""A value a run does not have (a run may log ``None``; it never logs this)."""


def real_number(value: object) -> float | None:
    """``value`` as a float when it is a real, finite number; otherwise ``None``.

    Ints, floats and numpy scalars count. Bools do not (``True`` is an ``int`` in Python),
    nor text, NaN, the infinities, or an int too large for a float.
    """
    if isinstance(value, bool):
        return None
    if isinstance(value, float):  # the common case, without the ABC check below
        return float(value) if math.isfinite(value) else None
    if not isinstance(value, numbers.Real):
        return None
    try:
        number = float(value)
    except (OverflowError, TypeError, ValueError):
        return None
    return number if math.isfinite(number) else None
