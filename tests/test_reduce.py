"""Chart numerics: min/max reduction, debiased EMA, non-finite points, log-safe values."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tui.core.reduce import (
    clamp_strength,
    ema,
    first_nonfinite,
    log_safe,
    minmax_indices,
    minmax_reduce,
    nonfinite_points,
)


def naive_ema(values: list[float], strength: float) -> list[float]:
    """TensorBoard's smoothing loop, written out point by point."""
    out = list(values)
    last, count = 0.0, 0
    for i, value in enumerate(values):
        if not math.isfinite(value):
            continue
        last = strength * last + (1 - strength) * value
        count += 1
        out[i] = last / (1 - strength**count)
    return out


def test_spikes_survive_reduction() -> None:
    x = np.arange(100_000, dtype=float)
    y = np.zeros_like(x)
    y[31_337] = 100.0
    y[77_001] = -50.0
    rx, ry = minmax_reduce(x, y, 50)
    assert 100.0 in ry and -50.0 in ry
    assert rx[ry == 100.0][0] == 31_337
    assert rx[ry == -50.0][0] == 77_001


def test_nonfinite_points_survive_reduction() -> None:
    x = np.arange(10_000, dtype=float)
    y = np.sin(x / 100)
    y[1200] = np.nan
    y[1201:1300] = np.nan
    y[5000] = np.inf
    y[8000] = -np.inf
    rx, ry = minmax_reduce(x, y, 40)
    assert first_nonfinite(rx, ry) == pytest.approx((1200.0, math.nan), nan_ok=True)
    bad_x, bad_y = nonfinite_points(rx, ry)
    assert 5000.0 in bad_x and 8000.0 in bad_x
    assert np.isposinf(bad_y[bad_x == 5000.0]).all()
    assert np.isneginf(bad_y[bad_x == 8000.0]).all()


def test_bucket_count_bounds_output() -> None:
    rng = np.random.default_rng(1)
    x = np.sort(rng.uniform(0, 1e6, 200_000))
    y = rng.normal(size=x.size)
    rx, _ = minmax_reduce(x, y, 400)
    assert len(rx) <= 800
    assert np.all(np.diff(rx) >= 0)
    y[::3] = np.nan
    rx, _ = minmax_reduce(x, y, 400)
    # Two finite extremes plus at most one NaN per bucket.
    assert len(rx) <= 3 * 400


def test_small_series_come_back_whole_and_sorted() -> None:
    rx, ry = minmax_reduce([3, 1, 2], [30, 10, 20], 100)
    assert rx.tolist() == [1, 2, 3]
    assert ry.tolist() == [10, 20, 30]


def test_points_without_finite_x_are_dropped_and_lengths_paired() -> None:
    rx, ry = minmax_reduce([0, np.nan, 2, 3], [1, 2, 3], 10)
    assert rx.tolist() == [0, 2]
    assert ry.tolist() == [1, 3]


def test_indices_point_into_the_original_arrays() -> None:
    x = np.array([5.0, np.nan, 1.0, 3.0, 2.0])
    y = np.array([50.0, 0.0, 10.0, 30.0, 20.0])
    kept = minmax_indices(x, y, 10)
    assert kept.tolist() == [2, 4, 3, 0]
    rng = np.random.default_rng(3)
    x = rng.permutation(10_000).astype(float)
    y = rng.normal(size=x.size)
    kept = minmax_indices(x, y, 25)
    rx, ry = minmax_reduce(x, y, 25)
    assert x[kept].tolist() == rx.tolist()
    assert y[kept].tolist() == ry.tolist()


def test_empty_and_constant_series() -> None:
    rx, ry = minmax_reduce([], [], 10)
    assert rx.size == 0 and ry.size == 0
    x = np.arange(10_000, dtype=float)
    rx, ry = minmax_reduce(x, np.full(x.size, 7.0), 10)
    assert 0 < len(rx) <= 20
    assert set(ry.tolist()) == {7.0}


def test_all_nan_series_keeps_nan_markers() -> None:
    x = np.arange(5000, dtype=float)
    rx, ry = minmax_reduce(x, np.full(x.size, np.nan), 10)
    assert 0 < len(rx) <= 10
    assert np.isnan(ry).all()
    assert rx[0] == 0.0


def test_ema_matches_hand_computed_debiased_values() -> None:
    # a = 0.5: last = 0.5, 1.25, 2.125; debias by 1 - 0.5**k = 0.5, 0.75, 0.875.
    assert ema([1.0, 2.0, 3.0], 0.5).tolist() == pytest.approx([1.0, 5 / 3, 17 / 7])


def test_ema_skips_nan_without_poisoning_what_follows() -> None:
    out = ema([1.0, np.nan, 3.0, np.inf, 5.0], 0.5)
    assert out[0] == pytest.approx(1.0)
    assert math.isnan(out[1])
    # 3.0 is the second finite point: (0.5*0.5 + 0.5*3) / 0.75.
    assert out[2] == pytest.approx(1.75 / 0.75)
    assert math.isinf(out[3])
    assert out[4] == pytest.approx(naive_ema([1.0, 3.0, 5.0], 0.5)[2])


@pytest.mark.parametrize("strength", [0.0, 1e-9, 0.3, 0.6, 0.9, 0.99, 0.999])
def test_ema_matches_the_pointwise_loop(strength: float) -> None:
    rng = np.random.default_rng(7)
    # Long enough to cross the internal chunk boundary for every strength.
    y = rng.normal(size=30_000).cumsum() + 50
    y[rng.random(y.size) < 0.02] = np.nan
    expected = np.array(naive_ema(y.tolist(), strength))
    assert np.allclose(ema(y, strength), expected, rtol=1e-9, atol=1e-9, equal_nan=True)


def test_ema_edge_cases() -> None:
    assert ema([], 0.9).size == 0
    assert np.isnan(ema([np.nan, np.nan], 0.9)).all()
    assert ema([4.0] * 1000, 0.99) == pytest.approx([4.0] * 1000)
    assert ema([1e300, -1e300, 1e300], 0.5).tolist() == pytest.approx(
        naive_ema([1e300, -1e300, 1e300], 0.5)
    )
    source = np.array([1.0, 2.0, 3.0])
    ema(source, 0.9)
    assert source.tolist() == [1.0, 2.0, 3.0]


def test_strength_is_clamped() -> None:
    assert clamp_strength(-1) == 0.0
    assert clamp_strength(1.0) == 0.999
    assert clamp_strength(math.nan) == 0.0
    assert ema([1.0, 2.0], 5.0).tolist() == pytest.approx(naive_ema([1.0, 2.0], 0.999))


def test_log_safe_masks_non_positive_values_only() -> None:
    masked = log_safe([1.0, 0.0, -2.0, np.nan, 3.0])
    assert np.ma.getmaskarray(masked).tolist() == [False, True, True, False, False]


def test_nonfinite_points_and_first() -> None:
    x, y = nonfinite_points([3, 1, 2], [np.inf, 5.0, np.nan])
    assert x.tolist() == [2, 3]
    assert np.isnan(y[0]) and np.isposinf(y[1])
    assert first_nonfinite([1, 2], [1.0, 2.0]) is None
    assert first_nonfinite([5, 1, 2], [-np.inf, 1.0, 2.0]) == (5.0, -math.inf)


series = st.lists(
    st.one_of(
        st.floats(allow_nan=False, allow_infinity=False, width=32),
        st.just(math.nan),
        st.just(math.inf),
        st.just(-math.inf),
    ),
    min_size=0,
    max_size=400,
)


@settings(max_examples=200, deadline=None)
@given(values=series, buckets=st.integers(min_value=1, max_value=50), shuffle=st.booleans())
def test_reduction_keeps_extremes_and_nonfinite_kinds(
    values: list[float], buckets: int, shuffle: bool
) -> None:
    y = np.array(values, dtype=float)
    x = np.arange(y.size, dtype=float)
    if shuffle:
        x = x[::-1].copy()
    rx, ry = minmax_reduce(x, y, buckets)
    finite = y[np.isfinite(y)]
    kept = ry[np.isfinite(ry)]
    if finite.size:
        assert kept.min() == finite.min()
        assert kept.max() == finite.max()
    for kind in (np.isnan, np.isposinf, np.isneginf):
        assert kind(ry).any() == kind(y).any()
    assert np.all(np.diff(rx) >= 0)
    assert len(rx) <= max(2 * buckets, 5 * buckets)
    if y.size > 2 * buckets:
        assert np.isfinite(ry).sum() <= 2 * buckets
