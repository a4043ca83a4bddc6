"""The run table's columns: how each draws a run's cell and what it sorts by.

A :class:`Column` pairs a cell renderer with a sort value; the functions below build the
columns the main screen chooses from, and :func:`order_runs` sorts runs by one of them.
Every cell is a :class:`~rich.text.Text` built from sanitized strings.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from rich.text import Text

from tui.app.status_badges import STATUS_BADGES, status_text
from tui.app.widgets.cells import number_text
from tui.core.rules import Verdict
from tui.core.sizes import short_bytes
from tui.core.store import Run
from tui.core.summary import (
    duration,
    human_duration,
    metric_mode,
    smoothed_last,
    throughput,
)

SortValue = tuple[int, float | str]


def _num_key(value: float | None) -> SortValue | None:
    if value is None or not math.isfinite(value):
        return None
    return (0, value)


@dataclass(frozen=True)
class Column:
    """One table column: how to draw a run's cell and what to sort it by.

    ``value`` returns ``None`` for a missing or non-finite value, which always sorts last;
    ``about`` says what the column holds where its label alone may not (the column chooser);
    ``clock`` marks a cell that changes with the clock alone (an age), so a clock tick
    recomputes only those cells.
    """

    key: str
    label: str
    cell: Callable[[Run], Text]
    value: Callable[[Run], SortValue | None]
    width: int | None = None
    about: str = ""
    clock: bool = False


def status_column() -> Column:
    order = {name: i for i, name in enumerate(STATUS_BADGES)}
    return Column("status", "status", status_text, lambda r: (0, order.get(r.status, 99)), 11)


def text_column(
    key: str, label: str, get: Callable[[Run], str], width: int | None = None, about: str = ""
) -> Column:
    return Column(key, label, lambda r: Text(get(r)), lambda r: (1, get(r).lower()), width, about)


def step_column() -> Column:
    def value(run: Run) -> float | None:
        return run.last_step

    return Column(
        "step",
        "step",
        lambda r: number_text(value(r), 9),
        lambda r: _num_key(value(r)),
        8,
        "the last step logged",
    )


def duration_column(clock: Callable[[], float]) -> Column:
    def cell(run: Run) -> Text:
        return Text(human_duration(duration(run, clock())), justify="right")

    return Column(
        "duration",
        "time",
        cell,
        lambda r: _num_key(duration(r, clock())),
        7,
        "how long it ran",
        clock=True,
    )


def rate_column() -> Column:
    def cell(run: Run) -> Text:
        rate = throughput(run)
        return Text("" if rate is None else f"{rate:.3g}", justify="right")

    return Column("rate", "step/s", cell, lambda r: _num_key(throughput(r)), 7, "steps per second")


def age_column(clock: Callable[[], float]) -> Column:
    def age(run: Run) -> float | None:
        last = run.last_time if run.last_time is not None else run.mtime
        return None if last is None else max(0.0, clock() - last)

    return Column(
        "age",
        "age",
        lambda r: Text(human_duration(age(r)), justify="right"),
        lambda r: _num_key(age(r)),
        7,
        "since its last record",
        clock=True,
    )


def gpu_memory_column() -> Column:
    """GPU memory held by the run's process tree (``–``: on no GPU, or not known)."""

    def value(run: Run) -> float | None:
        use = run.gpu
        return None if use is None or not use.on_gpu else float(use.memory)

    def cell(run: Run) -> Text:
        found = value(run)
        if found is None:
            return Text("–", style="dim", justify="right")
        return Text(short_bytes(found), justify="right")

    return Column(
        "gpu_mem", "gpu mem", cell, lambda r: _num_key(value(r)), 8, "GPU memory its processes hold"
    )


def gpu_util_column() -> Column:
    """SM utilisation of the run's GPU processes, averaged over its GPUs."""

    def value(run: Run) -> float | None:
        use = run.gpu
        return None if use is None or not use.on_gpu else use.utilization

    def cell(run: Run) -> Text:
        found = value(run)
        if found is None:
            return Text("–", style="dim", justify="right")
        return Text(f"{found:.0f}%", style="yellow" if found < 10 else "", justify="right")

    return Column(
        "gpu_util", "gpu %", cell, lambda r: _num_key(value(r)), 6, "utilisation of its GPUs"
    )


def metric_column(name: str, kind: str, smoothing: Callable[[], float]) -> Column:
    """``kind``: ``last`` (or the smoothed last value while smoothing is on) or ``best``."""
    mode = metric_mode(name)  # once per column, not once per cell

    def value(run: Run) -> float | None:
        series = run.series.get(name)
        if series is None or not series.count:
            return None
        if kind == "best":
            found, _ = series.best(mode)
            return None if math.isnan(found) else found
        strength = smoothing()
        # A NaN or inf last value is news the average would hide: it is shown as it is.
        if strength > 0 and math.isfinite(series.last):
            return smoothed_last(series, strength)
        return series.last

    # The best column sits right after its metric's last value: a short label will do.
    label = name if kind == "last" else ("best↓" if mode == "min" else "best↑")

    def cell(run: Run) -> Text:
        series = run.series.get(name)
        text = number_text(value(run))
        if (
            series is not None
            and series.nonfinite
            and kind == "last"
            and math.isfinite(series.last)
        ):
            text.append(" !", style="bold red")  # was non-finite earlier
        return text

    return Column(f"metric:{kind}:{name}", label, cell, lambda r: _num_key(value(r)), 14)


def rules_column(verdicts: Callable[[str], Sequence[Verdict]]) -> Column:
    """The rules a run triggered, as flags; quiet otherwise (a rule that is fine or still
    waiting for data is not news, and the run view lists every verdict)."""

    def cell(run: Run) -> Text:
        fired = [v for v in verdicts(run.key) if v.state == "triggered"]
        return Text(" ".join(f"⚑{v.rule}" for v in fired), style="bold red")

    def value(run: Run) -> SortValue:
        return (0, -float(sum(v.state == "triggered" for v in verdicts(run.key))))

    return Column("rules", "rules", cell, value, about="the rules it triggered")


def config_column(key: str) -> Column:
    parts = key.split(".")

    def get(run: Run) -> object:
        node: object = run.config
        for part in parts:
            if not isinstance(node, dict) or part not in node:
                return None
            node = node[part]
        return node

    def cell(run: Run) -> Text:
        value = get(run)
        if value is None:
            return Text("–", style="dim")
        if isinstance(value, bool):
            return Text(str(value).lower())
        if isinstance(value, (int, float)):
            return number_text(float(value), 4)
        return Text(str(value)[:40])

    def value(run: Run) -> SortValue | None:
        found = get(run)
        if found is None:
            return None
        if isinstance(found, (int, float)) and not isinstance(found, bool):
            return _num_key(float(found))
        return (1, str(found).lower())

    return Column(f"config:{key}", key, cell, value)


def order_runs(
    runs: list[Run], column: Column | None, descending: bool, baseline: str | None
) -> list[Run]:
    """Sort ``runs`` by ``column``: missing and non-finite values last in either direction,
    ties in name order, the baseline run pinned first."""
    if column is None:
        ordered = sorted(runs, key=lambda r: (r.name.lower(), r.key))
    else:
        present: list[tuple[SortValue, str, Run]] = []
        absent: list[Run] = []
        for run in runs:
            value = column.value(run)
            if value is None:
                absent.append(run)
            else:
                present.append((value, run.name.lower(), run))
        present.sort(key=lambda item: (item[0], item[1]), reverse=descending)
        absent.sort(key=lambda r: r.name.lower())
        ordered = [r for _, _, r in present] + absent
    if baseline is not None:
        pinned = [r for r in ordered if r.key == baseline]
        ordered = pinned + [r for r in ordered if r.key != baseline]
    return ordered
