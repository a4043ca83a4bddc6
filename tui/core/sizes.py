"""Sizes in bytes: read with a unit (``20GB``, ``512MiB``), shown with one (``1.5 GiB``).

GPU makers count memory in binary units and call them GB (an "80GB" card has 81,920 MiB),
and so does ``nvidia-smi``; tracktui follows them: ``KB``, ``MB``, ``GB`` and ``TB`` are
1024-based, the same as ``KiB``, ``MiB``, ``GiB`` and ``TiB``.
"""

from __future__ import annotations

import math
import re

UNITS = {"b": 1, "k": 1 << 10, "m": 1 << 20, "g": 1 << 30, "t": 1 << 40}
"""Bytes per unit, by the unit's first letter."""

_SIZE = re.compile(
    r"\s*([+-]?(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?)\s*([kKmMgGtT](?:i?[bB])?|[bB])\s*"
)


def parse_size(text: str) -> float | None:
    """Bytes in ``text``, a number with a unit: ``20GB``, ``1.5 GiB``, ``512M``, ``100B``.

    Returns ``None`` when ``text`` is not a number followed by one of the units (a bare
    number has no unit, so it is not a size).
    """
    found = _SIZE.fullmatch(text)
    if found is None:
        return None
    value = float(found.group(1)) * UNITS[found.group(2)[0].lower()]
    return value if math.isfinite(value) else None


def human_bytes(count: float) -> str:
    """``512 B``, ``3.4 KiB``, ``120.0 MiB``, ``2.0 GiB``."""
    value = float(count)
    for unit in ("B", "KiB", "MiB", "GiB"):
        if abs(value) < 1024:
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    return f"{value:.1f} TiB"


def short_bytes(count: float) -> str:
    """A table cell's size, four characters or so: ``512M``, ``3.4G``, ``40G``, ``1.2T``."""
    value = float(count)
    unit = "T"
    for candidate in ("B", "K", "M", "G"):
        if abs(value) < 1000:
            unit = candidate
            break
        value /= 1024
    if unit == "B":
        return f"{value:.0f}B"
    return f"{value:.1f}{unit}" if abs(value) < 10 else f"{value:.0f}{unit}"
