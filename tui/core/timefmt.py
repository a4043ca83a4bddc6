"""Wall times as text: one way to write them, one way to read them back.

Written times are ISO-8601 in UTC with microseconds and a ``Z``
(``2026-01-01T09:00:05.000000Z``): one spelling everywhere tracktui writes a time (run.json,
records, the audit log, ``status --json``), fixed-width so the text sorts as the time does.

Read times are whatever the formats produce: epoch seconds (int or float), or ISO-8601 text
with ``Z``, an offset (``+01:00``, ``+0100``, ``+01``) or none (naive means UTC), a ``T`` or
a space between date and time, and any number of fraction digits. The parser is a regular
expression rather than ``datetime.fromisoformat``, which on Python 3.10 rejects ``Z`` and
fractions that are not 3 or 6 digits long.
"""

from __future__ import annotations

import math
import re
import time
from datetime import datetime, timedelta, timezone

from tui.core.values import real_number

_ISO = re.compile(
    r"""
    (?P<year>\d{4})-(?P<month>\d\d)-(?P<day>\d\d)
    (?:[Tt\ ]
        (?P<hour>\d\d):(?P<minute>\d\d)
        (?::(?P<second>\d\d)(?:[.,](?P<fraction>\d+))?)?
    )?
    \s*
    (?P<zone>[Zz]|[+-]\d\d(?::?\d\d(?::?\d\d)?)?)?
    """,
    re.VERBOSE,
)
_EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)
# A day inside datetime's range on both ends, so that rounding never overflows.
_FIRST = datetime(1, 1, 2, tzinfo=timezone.utc).timestamp()
_LAST = datetime(9999, 12, 30, tzinfo=timezone.utc).timestamp()


def utc_iso(seconds: float | None = None) -> str:
    """ISO-8601 UTC text with microseconds and ``Z`` for epoch ``seconds`` (now by default).

    Raises:
        ValueError: ``seconds`` is not finite or outside the years 1 to 9999.
    """
    if seconds is None:
        seconds = time.time()
    if not _FIRST <= seconds <= _LAST:  # NaN fails this too
        raise ValueError(f"no calendar time for {seconds!r} epoch seconds")
    moment = _EPOCH + timedelta(seconds=seconds)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def parse_time(value: object) -> float | None:
    """Epoch seconds from a time as the formats write it; ``None`` when it is not one.

    Accepts real numbers (epoch seconds) and ISO-8601 text (see the module docstring).
    Bools, non-finite numbers, impossible dates and times outside the years 1 to 9999 are
    not times.
    """
    number = real_number(value)
    if number is not None:
        return number if _FIRST <= number <= _LAST else None
    if not isinstance(value, str):
        return None
    found = _ISO.fullmatch(value.strip())
    if found is None:
        return None
    part = found.groupdict()
    fraction = part["fraction"] or ""
    try:
        moment = datetime(
            int(part["year"]),
            int(part["month"]),
            int(part["day"]),
            int(part["hour"] or 0),
            int(part["minute"] or 0),
            int(part["second"] or 0),
            tzinfo=timezone.utc,
        )
    except ValueError:  # month 13, February 30, hour 24, ...
        return None
    seconds = (moment - _EPOCH).total_seconds()
    if fraction:
        seconds += int(fraction) / 10 ** len(fraction)
    zone = part["zone"]
    if zone and zone not in ("Z", "z"):
        digits = zone[1:].replace(":", "")
        offset = int(digits[:2]) * 3600 + int(digits[2:4] or 0) * 60 + int(digits[4:6] or 0)
        seconds += -offset if zone[0] == "+" else offset
    return seconds if math.isfinite(seconds) and _FIRST <= seconds <= _LAST else None


def as_utc_iso(value: object) -> str | None:
    """Any time :func:`parse_time` reads, rewritten by :func:`utc_iso`; else ``None``."""
    seconds = parse_time(value)
    return None if seconds is None else utc_iso(seconds)
