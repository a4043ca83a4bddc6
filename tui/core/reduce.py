"""Numeric helpers behind the charts: min/max reduction, debiased EMA, non-finite points.

Everything here is vectorised numpy and UI-free (DESIGN.md §9): a chart reduces each series
to about two points per character column before plotext sees it, smoothing runs on the full
series, and NaN/inf values are kept apart so they can be drawn as markers instead of gaps.
"""

from __future__ import annotations

import math

import numpy as np
import numpy.typing as npt

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.intp]

MAX_SMOOTHING = 0.999
"""Largest EMA strength accepted; 1.0 would freeze the average at the first value."""

# Within one chunk the EMA weights strength**-i grow up to 10**_CHUNK_DECADES; float64 keeps
# them exact enough (and far from overflow) while whole chunks are computed by one cumsum.
_CHUNK_DECADES = 100.0


def _as_floats(values: npt.ArrayLike) -> FloatArray:
    array = np.asarray(values, dtype=np.float64)
    return array.reshape(-1)


def _paired(x: npt.ArrayLike, y: npt.ArrayLike) -> tuple[FloatArray, FloatArray]:
    """Return x and y as flat float64 arrays of equal length, x finite and ascending."""
    xs, ys, _ = _placed(x, y)
    return xs, ys


def _placed(x: npt.ArrayLike, y: npt.ArrayLike) -> tuple[FloatArray, FloatArray, IntArray | None]:
    """Like :func:`_paired`, plus where each point came from (``None``: nowhere else)."""
    xs, ys = _as_floats(x), _as_floats(y)
    n = min(xs.size, ys.size)
    xs, ys = xs[:n], ys[:n]
    # Every comparison with NaN is false, so an ascending x holds no NaN, and only its
    # ends can be infinite: the common case costs one pass.
    if _ascending(xs) and (n == 0 or (math.isfinite(xs[0]) and math.isfinite(xs[-1]))):
        return xs, ys, None
    # A point without a finite x has nowhere to go on the chart.
    source = np.flatnonzero(np.isfinite(xs))
    xs = xs[source]
    if not _ascending(xs):
        order = np.argsort(xs, kind="stable")
        xs, source = xs[order], source[order]
    return xs, ys[source], source


def _ascending(xs: FloatArray) -> bool:
    return xs.size < 2 or bool((xs[1:] >= xs[:-1]).all())


def _first_in_buckets(hits: IntArray, starts: IntArray, ends: IntArray) -> IntArray:
    """Return, for every bucket ``[start, end)`` holding an index of ``hits``, the first one.

    ``hits`` must be ascending. The cost is one binary search per bucket, so a long run of
    hits (a constant series, a diverged tail of NaN) costs no more than a short one.
    """
    if hits.size == 0:
        return hits
    where = np.searchsorted(hits, starts)
    inside = where < hits.size
    firsts = hits[np.minimum(where, hits.size - 1)]
    return firsts[inside & (firsts < ends)]


def minmax_indices(x: npt.ArrayLike, y: npt.ArrayLike, buckets: int) -> IntArray:
    """Indices into ``x``/``y`` of the points :func:`minmax_reduce` keeps, in x order.

    Useful to sample another series aligned with ``y`` (its smoothed version) at the same
    points without a second reduction.
    """
    xs, ys, source = _placed(x, y)
    chosen = _extremes(xs, ys, buckets)
    return chosen if source is None else source[chosen]


def minmax_reduce(
    x: npt.ArrayLike, y: npt.ArrayLike, buckets: int
) -> tuple[FloatArray, FloatArray]:
    """Reduce a series to the extremes of ``buckets`` equal-width x intervals.

    Each bucket keeps the point of its smallest and of its largest finite y, so spikes
    survive, plus the first NaN, the first +inf and the first -inf it holds, so non-finite
    values survive for markers (and the first non-finite point of the whole series is always
    kept). A series that already has at most ``2 * buckets`` points comes back whole.

    Args:
        x: the x values (step, time, ...). Points whose x is not finite are dropped; an
            unsorted x is sorted (stably) first.
        y: the y values, same length as ``x`` (the longer one is cut).
        buckets: the number of x intervals, typically the chart's width in columns.

    Returns:
        ``(x, y)`` float64 arrays in ascending x order: at most 2 finite points per bucket
        and at most one of each non-finite kind per bucket.
    """
    xs, ys = _paired(x, y)
    chosen = _extremes(xs, ys, buckets)
    return xs[chosen], ys[chosen]


def _extremes(xs: FloatArray, ys: FloatArray, buckets: int) -> IntArray:
    """Positions of the points kept by :func:`minmax_reduce` in ascending, finite ``xs``."""
    buckets = max(1, int(buckets))
    if xs.size <= 2 * buckets:
        return np.arange(xs.size, dtype=np.intp)
    lo, hi = float(xs[0]), float(xs[-1])
    inner = np.linspace(lo, hi, buckets + 1)[1:-1]
    starts = np.unique(np.concatenate(([0], np.searchsorted(xs, inner, side="left"))))
    starts = starts[starts < xs.size].astype(np.intp)
    ends = np.append(starts[1:], xs.size).astype(np.intp)
    sizes = ends - starts

    bad = np.flatnonzero(~np.isfinite(ys))
    bad_values = ys[bad]
    low = high = ys
    if bad.size and np.isinf(bad_values).any():
        finite = np.isfinite(ys)
        low = np.where(finite, ys, np.inf)
        high = np.where(finite, ys, -np.inf)
        mins = np.minimum.reduceat(low, starts)
        maxs = np.maximum.reduceat(high, starts)
    else:
        # fmin/fmax skip NaN, the only non-finite value here, without a masked copy.
        mins = np.fmin.reduceat(ys, starts)
        maxs = np.fmax.reduceat(ys, starts)
    # Buckets without a finite value (min NaN or +inf) contribute no line point.
    has_finite = np.isfinite(mins)
    picked = [
        _first_in_buckets(np.flatnonzero(low == np.repeat(mins, sizes)), starts, ends),
        _first_in_buckets(np.flatnonzero(high == np.repeat(maxs, sizes)), starts, ends),
    ]
    if not has_finite.all():
        keep = has_finite[np.searchsorted(starts, picked[0], side="right") - 1]
        picked[0] = picked[0][keep]
        keep = has_finite[np.searchsorted(starts, picked[1], side="right") - 1]
        picked[1] = picked[1][keep]
    if bad.size:
        with np.errstate(invalid="ignore"):
            kinds = (np.isnan(bad_values), bad_values == np.inf, bad_values == -np.inf)
        picked.extend(_first_in_buckets(bad[kind], starts, ends) for kind in kinds)
    return np.unique(np.concatenate(picked))


def nonfinite_points(x: npt.ArrayLike, y: npt.ArrayLike) -> tuple[FloatArray, FloatArray]:
    """Return the points whose y is NaN or ±inf, in ascending x order.

    Args:
        x: the x values; points with a non-finite x are dropped as in :func:`minmax_reduce`.
        y: the y values.

    Returns:
        ``(x, y)`` of the non-finite points (empty arrays when there are none).
    """
    xs, ys = _paired(x, y)
    bad = ~np.isfinite(ys)
    return xs[bad], ys[bad]


def first_nonfinite(x: npt.ArrayLike, y: npt.ArrayLike) -> tuple[float, float] | None:
    """Return ``(x, y)`` of the first NaN/inf point in x order, or ``None`` if there is none.

    The output of :func:`minmax_reduce` always holds this point, so calling it on a reduced
    series gives the same answer as on the full one.
    """
    xs, ys = nonfinite_points(x, y)
    if xs.size == 0:
        return None
    return float(xs[0]), float(ys[0])


def log_safe(y: npt.ArrayLike) -> np.ma.MaskedArray:
    """Return ``y`` for a log-scaled axis: finite values ``<= 0`` are masked out.

    NaN and ±inf stay unmasked so the caller still sees them as non-finite points.
    """
    ys = _as_floats(y)
    with np.errstate(invalid="ignore"):
        hidden = np.isfinite(ys) & (ys <= 0.0)
    return np.ma.MaskedArray(ys, mask=hidden)


def clamp_strength(strength: float) -> float:
    """Clamp an EMA strength into ``[0, MAX_SMOOTHING]``; NaN counts as 0 (off)."""
    value = float(strength)
    if math.isnan(value):
        return 0.0
    return min(max(value, 0.0), MAX_SMOOTHING)


def _ema_finite(z: FloatArray, a: float) -> FloatArray:
    """Plain (biased) EMA ``s[k] = a*s[k-1] + (1-a)*z[k]``, ``s[-1] = 0``, of finite ``z``."""
    n = z.size
    span = -math.log10(a)
    # One chunk of length B is one cumsum. Within a chunk the weights a**-i grow up to
    # 10**_CHUNK_DECADES, exact enough in float64 and far from overflow.
    chunk = n if span * n <= _CHUNK_DECADES else max(1, int(_CHUNK_DECADES / span))
    rows, tail = divmod(n, chunk)
    powers = np.arange(chunk, dtype=np.float64)
    grow, shrink = a**-powers, a**powers * (1.0 - a)
    carried = a ** (powers[: min(chunk, _negligible_after(span))] + 1.0)
    out = np.empty(n)
    whole = rows * chunk
    if rows:
        body = out[:whole].reshape(rows, chunk)
        np.multiply(z[:whole].reshape(rows, chunk), grow, out=body)
        np.cumsum(body, axis=1, out=body)
        body *= shrink
        # Each chunk also inherits the state at the end of the one before (whose own
        # inheritance decayed by a**B, below float64 resolution), and only its first
        # points still feel it before a**i drops below resolution too.
        if rows > 1:
            body[1:, : carried.size] += np.outer(body[:-1, -1], carried)
    if tail:
        rest = out[whole:]
        np.multiply(z[whole:], grow[:tail], out=rest)
        np.cumsum(rest, out=rest)
        rest *= shrink[:tail]
        if rows:
            reach = min(tail, carried.size)
            rest[:reach] += out[whole - 1] * carried[:reach]
    return out


def _negligible_after(span: float) -> int:
    """Number of steps after which a factor ``10**-span`` per step is below 1e-17."""
    return math.ceil(17.0 / span) + 1


def ema(y: npt.ArrayLike, strength: float) -> FloatArray:
    """Debiased exponential moving average, as TensorBoard's smoothing slider computes it.

    With ``a = strength``, over the finite values ``z`` only::

        last = a * last + (1 - a) * z[k]        (last starts at 0)
        out  = last / (1 - a ** (k + 1))        (debiasing: early points are not pulled to 0)

    Non-finite points are skipped: they keep their own value (NaN stays NaN, inf stays inf)
    and do not disturb the average of the points after them.

    Args:
        y: the full series (not a reduced one: the average depends on every point).
        strength: smoothing in ``[0, 0.999]``; 0 returns a copy of ``y``. Values outside
            the range are clamped.

    Returns:
        A float64 array the length of ``y``.
    """
    ys = _as_floats(y)
    a = clamp_strength(strength)
    if a == 0.0 or ys.size == 0:
        return np.copy(ys)
    bad = np.flatnonzero(~np.isfinite(ys))
    # Skipped points are usually few: delete and insert them rather than mask twice.
    z = np.delete(ys, bad) if bad.size else ys
    if z.size == 0:
        return np.copy(ys)
    # Scaling keeps huge metrics (1e300) from overflowing the chunk weights.
    scale = max(float(z.max()), -float(z.min()))
    huge = scale > 1e200
    with np.errstate(over="ignore", invalid="ignore"):
        smoothed = _ema_finite(z / scale if huge else z, a)
        # The debiasing factor 1 - a**k is 1 to float64 precision after a few steps.
        head = min(z.size, _negligible_after(-math.log10(a)))
        counts = np.arange(1, head + 1, dtype=np.float64)
        smoothed[:head] /= -np.expm1(counts * math.log(a))
    if huge:
        smoothed *= scale
    if bad.size == 0:
        return smoothed
    return np.insert(smoothed, bad - np.arange(bad.size), ys[bad])


def _percentile(ordered: np.ndarray, q: float) -> float:
    """The ``q``-th percentile of sorted values, interpolated linearly (numpy's default).

    ``np.percentile`` imports ``numpy.ma`` on its first call (15 ms, in the first frame).
    """
    at = q / 100.0 * (ordered.size - 1)
    below = int(at)
    above = min(below + 1, ordered.size - 1)
    low, high = float(ordered[below]), float(ordered[above])
    return low + (high - low) * (at - below)


def robust_range(values: npt.ArrayLike, *, quantile: float = 10.0) -> tuple[float, float] | None:
    """A y-range that ignores outliers (TensorBoard's "ignore outliers in chart scaling").

    The range spans the finite values, cut at the 10th and 90th percentiles (by default)
    widened by 1.5 times their distance on each side (in decades when every value is
    positive): a run that explodes to 1e24 in its last few steps no longer flattens every
    other line, while a series with no outliers keeps its full range.

    Args:
        values: the values to cover (non-finite ones are ignored).
        quantile: the lower percentile measured from (the upper one is ``100 - quantile``);
            a handful of values (one per run of a sweep) want the quartiles, 25, as one
            explosion among five values lies past the 10th percentile.

    Returns:
        ``(low, high)``, or ``None`` when there is no finite value.
    """
    ys = _as_floats(values)
    ys = ys[np.isfinite(ys)]
    if ys.size == 0:
        return None
    lo, hi = float(ys.min()), float(ys.max())
    # Losses and other positive metrics explode by orders of magnitude: measure their
    # spread in decades, so a healthy 10 -> 0.01 curve keeps its first steps in range.
    positive = lo > 0.0
    space = np.log10(ys) if positive else ys
    ordered = np.sort(space)
    q_low, q_high = _percentile(ordered, quantile), _percentile(ordered, 100.0 - quantile)
    spread = q_high - q_low
    if spread <= 0.0:
        # Most values are equal: outliers are off by more than that value's size.
        spread = 1.0 if positive else max(abs(q_low), 1e-12)
    low, high = q_low - 1.5 * spread, q_high + 1.5 * spread
    # An explosion is a few values far beyond all the others: where such a tail starts
    # past a gap wider than the body's own spread, the range ends at the gap (a healthy
    # curve 2 -> 0.01 that explodes to 1e24 keeps the range 0.01..2, not 0.01..20).
    body = max(spread, 1.0 if positive else 0.0)
    tail = max(1, ordered.size // 20)  # at most 5 % of the values
    if ordered.size > 2 * tail:
        gaps = np.diff(ordered)
        top = gaps[-tail:]
        at = int(np.argmax(top))
        if top[at] > 2.0 * body:
            high = min(high, float(ordered[ordered.size - 1 - tail + at]))
        bottom = gaps[:tail]
        at = int(np.argmax(bottom))
        if bottom[at] > 2.0 * body:
            low = max(low, float(ordered[at + 1]))
    # A near miss is no outlier: values within a quarter of the range's width of it are
    # kept (a learning curve's first accuracy, just under the rest, stays on the chart).
    reach = 0.25 * (high - low)
    keep_low, keep_high = ordered[0] >= low - reach, ordered[-1] <= high + reach
    if positive:
        low, high = 10.0**low, 10.0**high
    return (lo if keep_low else max(lo, low), hi if keep_high else min(hi, high))
