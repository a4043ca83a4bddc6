"""Axis ticks: a few round values and labels of at most seven characters.

Charts label their own axes so that a run exploding to 3.8e24 cannot widen the tick
labels until the plot is a third of its width: every label is SI-prefixed (``12.5k``),
plain (``0.031``) or scientific (``3.8e24``), and a log axis has no 0 tick.
"""

from __future__ import annotations

import math
import time

MAX_LABEL = 7
"""The widest tick label, in characters."""

_SI = ((1e12, "T"), (1e9, "G"), (1e6, "M"), (1e3, "k"))


def _trim(text: str) -> str:
    if "." in text and "e" not in text:
        text = text.rstrip("0").rstrip(".")
    return text


def short_number(value: float) -> str:
    """``value`` in at most :data:`MAX_LABEL` characters (``1.5k``, ``0.031``, ``3.8e24``)."""
    if math.isnan(value):
        return "NaN"
    if math.isinf(value):
        return "inf" if value > 0 else "-inf"
    if value == 0:
        return "0"
    size = abs(value)
    sign = "-" if value < 0 else ""
    if 1e-2 <= size < 1e3:
        for digits in (3, 2, 1, 0):
            text = _trim(f"{size:.{digits}f}")
            if len(sign + text) <= MAX_LABEL and (digits == 0 or len(text) <= 5):
                return sign + text
    if 1e3 <= size < 1e15:
        for threshold, prefix in _SI:
            if size >= threshold:
                return sign + _trim(f"{size / threshold:.3g}") + prefix
    mantissa, exponent = f"{size:.1e}".split("e")
    text = f"{_trim(mantissa)}e{int(exponent)}"
    if len(sign + text) > MAX_LABEL:
        text = f"{mantissa[0]}e{int(exponent)}"
    return sign + text


def nice_ticks(low: float, high: float, count: int = 4) -> list[float]:
    """About ``count`` round values (steps of 1, 2 or 5 times a power of ten) in the range."""
    if not (math.isfinite(low) and math.isfinite(high)) or high <= low:
        return [low] if math.isfinite(low) else []
    raw = (high - low) / max(1, count)
    power = 10 ** math.floor(math.log10(raw))
    step = next(m * power for m in (1, 2, 5, 10) if m * power >= raw)
    first = math.ceil(low / step - 1e-9) * step
    ticks = []
    value = first
    while value <= high + step * 1e-9:
        ticks.append(0.0 if abs(value) < step * 1e-9 else value)
        value += step
    return ticks


def log_ticks(low: float, high: float, count: int = 4) -> list[float]:
    """Powers of ten (exponents) between ``low`` and ``high`` given as log10 values."""
    first, last = math.ceil(low - 1e-9), math.floor(high + 1e-9)
    if last < first:
        return [low, high] if high > low else [low]
    stride = max(1, math.ceil((last - first + 1) / max(1, count)))
    return [float(e) for e in range(first, last + 1, stride)]


def clock_label(epoch: float, span: float) -> str:
    """Wall time as the local clock: ``14:05`` (or ``14:05:09`` within minutes, ``03-17``
    across days)."""
    moment = time.localtime(epoch)
    if span > 2 * 86400:
        return time.strftime("%m-%d", moment)
    if span < 600:
        return time.strftime("%H:%M:%S", moment)
    return time.strftime("%H:%M", moment)
