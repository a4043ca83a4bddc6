"""One writer and one reader for wall times (tui.core.timefmt), and what counts as a number."""

from __future__ import annotations

import math
import pickle
import re
import time

import numpy as np
import pytest

from tui.core.timefmt import as_utc_iso, parse_time, utc_iso
from tui.core.values import MISSING, real_number

SPELLING = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z$")
NOON = 1767268800.0  # 2026-01-01T12:00:00Z


@pytest.mark.parametrize(
    ("text", "seconds"),
    [
        ("2026-01-01T12:00:00Z", NOON),
        ("2026-01-01T12:00:00z", NOON),
        ("2026-01-01T12:00:00", NOON),
        ("2026-01-01 12:00:00", NOON),
        ("2026-01-01T12:00", NOON),
        ("2026-01-01T12:00:00+00:00", NOON),
        ("2026-01-01T13:30:00+01:30", NOON),
        ("2026-01-01T13:30:00+0130", NOON),
        ("2026-01-01T07:00:00-05", NOON),
        ("2026-01-01T12:00:00.5Z", NOON + 0.5),
        ("2026-01-01T12:00:00.25", NOON + 0.25),
        ("2026-01-01T12:00:00,125Z", NOON + 0.125),
        ("2026-01-01T12:00:00.000000001Z", NOON),
        ("  2026-01-01T12:00:00.123456Z  ", NOON + 0.123456),
        ("2026-01-01", NOON - 12 * 3600),
    ],
)
def test_parse_time_reads_every_iso_spelling(text: str, seconds: float) -> None:
    parsed = parse_time(text)
    assert parsed is not None and math.isclose(parsed, seconds, abs_tol=1e-6)


def test_parse_time_reads_epoch_numbers() -> None:
    assert parse_time(NOON) == NOON
    assert parse_time(1767268800) == NOON
    assert parse_time(np.float64(NOON)) == NOON


@pytest.mark.parametrize(
    "value",
    [None, True, math.nan, math.inf, "", "soon", "2026-13-01T00:00:00Z", "2026-02-30",
     "2026-01-01T25:00:00", "2026-01-01T12:00:00+25:00x", 1e300, [NOON]],
)  # fmt: skip
def test_parse_time_refuses_what_is_not_a_time(value: object) -> None:
    assert parse_time(value) is None


def test_utc_iso_writes_one_spelling_that_reads_back() -> None:
    for seconds in (NOON, NOON + 0.5, 0.0, 1e9 + 0.123456, -86400.25):
        text = utc_iso(seconds)
        assert SPELLING.match(text), text
        assert parse_time(text) == pytest.approx(seconds, abs=1e-6)
    assert utc_iso(NOON) == "2026-01-01T12:00:00.000000Z"


def test_utc_iso_defaults_to_now() -> None:
    before = time.time()
    stamp = parse_time(utc_iso())
    assert stamp is not None and before - 1 <= stamp <= time.time() + 1


@pytest.mark.parametrize("seconds", [math.nan, math.inf, -math.inf, 1e300])
def test_utc_iso_refuses_seconds_with_no_calendar_time(seconds: float) -> None:
    with pytest.raises(ValueError):
        utc_iso(seconds)


def test_as_utc_iso_rewrites_any_time_into_the_one_spelling() -> None:
    assert as_utc_iso("2026-01-01T13:00:00+01:00") == "2026-01-01T12:00:00.000000Z"
    assert as_utc_iso(NOON) == "2026-01-01T12:00:00.000000Z"
    assert as_utc_iso("2026-01-01T12:00:00.000Z") == "2026-01-01T12:00:00.000000Z"
    assert as_utc_iso(None) is None and as_utc_iso("never") is None


@pytest.mark.parametrize(
    ("value", "expected"),
    [(1, 1.0), (-2.5, -2.5), (np.float32(0.5), 0.5), (np.int64(7), 7.0), (True, None),
     (np.bool_(True), None), (math.nan, None), (-math.inf, None), (10**400, None),
     ("1", None), (None, None), (MISSING, None)],
)  # fmt: skip
def test_real_number_is_finite_and_never_a_bool(value: object, expected: float | None) -> None:
    result = real_number(value)
    assert result == expected and (result is None or type(result) is float)


def test_missing_is_one_value_that_survives_pickling() -> None:
    assert pickle.loads(pickle.dumps(MISSING)) is MISSING
    assert repr(MISSING) == "MISSING" and MISSING is not None
