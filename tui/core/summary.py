"""Derived facts about runs that the table, the compare view and ``status`` share."""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from typing import Any

from tui.core.store import Run, Series
from tui.core.timefmt import parse_time
from tui.core.values import MISSING

_LOWER_IS_BETTER = (
    "loss",
    "err",
    "perplexity",
    "ppl",
    "mse",
    "mae",
    "rmse",
    "cost",
    "wer",
    "cer",
    "nll",
    "minimiz",  # NePS: objective_to_minimize
)


def metric_mode(name: str) -> str:
    """``"min"`` for metrics where lower is better (losses, errors), else ``"max"``."""
    lowered = name.lower()
    return "min" if any(word in lowered for word in _LOWER_IS_BETTER) else "max"


def best(series: Series) -> tuple[float, float | None]:
    """Best finite value and its step, by :func:`metric_mode`."""
    return series.best(metric_mode(series.name))


def key_metrics(names_per_run: Iterable[Iterable[str]], limit: int = 2) -> list[str]:
    """The metrics worth a column: reported by most runs, validation losses/accuracies first.

    ``names_per_run``: each run's metric names (a run's ``series`` dict will do).
    """
    counts: dict[str, int] = {}
    for names in names_per_run:
        for name in names:
            counts[name] = counts.get(name, 0) + 1

    def rank(name: str) -> tuple[int, int, str]:
        lowered = name.lower()
        score = 0
        if "val" in lowered or "test" in lowered or "eval" in lowered:
            score -= 2
        if "loss" in lowered or "acc" in lowered or "f1" in lowered or "auc" in lowered:
            score -= 3
        if lowered in ("lr", "learning_rate", "epoch", "time", "elapsed") or lowered[-2:] == "lr":
            score += 5
        return (score, -counts[name], name)

    return sorted(counts, key=rank)[:limit]


def flatten(config: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    """Nested dictionaries as ``a.b`` keys."""
    out: dict[str, Any] = {}
    for key, value in config.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict) and value:
            out.update(flatten(value, name + "."))
        else:
            out[name] = value
    return out


def _same(a: object, b: object) -> bool:
    if isinstance(a, float) and isinstance(b, float) and math.isnan(a) and math.isnan(b):
        return True
    return a == b and type(a) is type(b)


def varying_keys(configs: Sequence[dict[str, Any]]) -> list[str]:
    """Flattened config keys whose values are not the same in every config (missing counts)."""
    if len(configs) < 2:
        return []
    keys: dict[str, None] = {}
    for config in configs:
        keys.update(dict.fromkeys(config))
    out = []
    for key in keys:
        values = [config.get(key, MISSING) for config in configs]
        if any(not _same(values[0], v) for v in values[1:]):
            out.append(key)
    return out


def config_diff(runs: Sequence[Run], show_all: bool = False) -> list[tuple[str, list[object]]]:
    """Rows of (key, value per run); only keys that differ unless ``show_all``."""
    configs = [flatten(run.config) for run in runs]
    keys: dict[str, None] = {}
    for config in configs:
        keys.update(dict.fromkeys(config))
    chosen = list(keys) if show_all else varying_keys(configs)
    return [(key, [config.get(key) for config in configs]) for key in sorted(chosen)]


RATE_SPAN = 1.0
"""Seconds the records must span before their steps per second mean anything."""


def duration(run: Run, now: float) -> float | None:
    """Seconds from the first record to the last (or to now while running).

    While only the end of the history is known (a preview), the run began at its
    metadata's ``started_at``, or at a time not known yet.
    """
    first = run.first_time if run.head else parse_time(run.meta.get("started_at"))
    if first is None:
        return None
    end = now if run.status in ("running", "stalled") else (run.last_time or first)
    return max(0.0, end - first)


def throughput(run: Run) -> float | None:
    """Steps per second over the run's records (not known from a preview of their end,
    nor from records written within a second: a script that logs five steps at once has
    no rate worth showing)."""
    if len(run.times) < 2 or not run.head:
        return None
    span = run.times[-1] - run.times[0]
    steps = run.steps[-1] - run.steps[0]
    if span < RATE_SPAN or steps <= 0:
        return None
    return steps / span


def smoothed_last(series: Series, strength: float) -> float:
    """Debiased EMA of the finite values at the last point (NaN when none)."""
    values = series.array()
    if strength <= 0:
        return float(values[-1]) if len(values) else math.nan
    tail = values[-2000:]  # weights beyond this are < strength**2000: negligible
    average, weight = 0.0, 0.0
    for value in tail.tolist():
        if math.isfinite(value):
            average = strength * average + (1 - strength) * value
            weight = strength * weight + (1 - strength)
    return average / weight if weight else math.nan


def human_duration(seconds: float | None) -> str:
    """``42s``, ``3m05s``, ``2h07m``, ``3d04h``."""
    if seconds is None or not math.isfinite(seconds):
        return ""
    s = int(seconds)
    if s < 60:
        return f"{s}s"
    if s < 3600:
        return f"{s // 60}m{s % 60:02d}s"
    if s < 86400:
        return f"{s // 3600}h{s % 3600 // 60:02d}m"
    return f"{s // 86400}d{s % 86400 // 3600:02d}h"
