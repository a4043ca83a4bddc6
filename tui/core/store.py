"""The run store: columnar series with incrementally kept summaries.

The store is owned by one thread (the app's main thread, or the headless command). It
applies immutable :class:`Batch` objects produced by readers on other threads and returns
a :class:`Delta` naming what changed, so the UI updates only what it must.

Storage per run: a record table (x value and wall time per record, float64) shared by all
metrics of the run, and per metric the record positions (uint32) and values (float32) of
its points. Summaries (last, min, max with their steps, counts, first non-finite step) are
float64 and exact; they never need a pass over the history.
"""

from __future__ import annotations

import math
from array import array
from collections import deque
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np
import numpy.typing as npt

from tui.core.audit import Stop
from tui.core.records import MAX_METRICS, RecordBlock
from tui.core.shapes import Shape

if TYPE_CHECKING:  # tui.core.status derives statuses from runs: it imports this module
    from tui.core.gpu.attribution import GpuUse
    from tui.core.openfiles import RunProcess
    from tui.core.slurm import SlurmJob
    from tui.core.status import RunStatus

LOG_LINES = 5000
"""Log lines kept per run (the tail the UI can show and search)."""

OBJECT_HISTORY = 2000
"""Values kept per text/vector/matrix metric (latest always kept)."""

BAD_SAMPLES = 50
"""Bad-line examples kept per run (the count is exact)."""


def _raw(values: np.ndarray, dtype: type[np.generic]) -> memoryview:
    """``values`` as ``dtype``, as bytes for ``array.frombytes``: no copy when they already
    are (``astype(...).tobytes()`` made two, and fresh memory faults in page by page)."""
    return np.ascontiguousarray(values, dtype=dtype).data.cast("B")


@dataclass(frozen=True, slots=True)
class History:
    """Records already in the store's columns, built where they were read.

    A backfill worker process applies the records it parsed to an empty run with the
    store's own code and sends the result; the arrays then become the store's own, with
    no copy. Summaries stay exact: they were kept in float64 while the records were added.

    Attributes:
        steps: x value of each record.
        times: wall time of each record.
        series: scalar metrics, positions into ``steps``.
        objects: non-scalar metrics' histories.
        notes: what the records raised in the run's health (duplicate keys, the cap).
        capped: the metrics cap was reached.
    """

    steps: array[float]
    times: array[float]
    series: dict[str, Series]
    objects: dict[str, deque[tuple[float, Shape]]]
    notes: tuple[str, ...] = ()
    capped: bool = False

    @classmethod
    def of(cls, blocks: Iterable[RecordBlock]) -> History:
        """The columns of ``blocks``, one after the other, as a fresh run holds them."""
        run = Run("", "", "")
        for block in blocks:
            RunStore._apply_records(run, block, set(), set())
        health = run.health
        return cls(
            run.steps,
            run.times,
            run.series,
            run.objects,
            tuple(health.notes),
            health.metrics_capped,
        )


@dataclass(frozen=True, slots=True)
class Batch:
    """Everything new about one run since its reader last looked. Immutable by contract.

    Attributes:
        key: the run's identity, its path relative to ROOT (plus a suffix for runs that
            share a directory, e.g. one NePS config).
        format: ``tracktui``, ``valohai``, ``neps``, ``gymnos``, ``csv``, ``mlflow``,
            ``tensorboard``.
        path: the run's directory or file relative to ROOT.
        records: new records, or ``None``.
        replace: drop the run's series before applying (a full history replaces the
            preview read from the end of the file).
        meta: the run's metadata (run.json fields) when it changed, else ``None``.
        log: new log lines, sanitized.
        bad_lines: ``(file, line number, reason)`` for lines that are not records.
        notes: events worth showing in the run's health (truncation, rotation...).
        mtime: newest modification time seen among the run's files.
        media: files the run logged under ``media/`` (names), when they changed.
        group: a group the run belongs to (a NePS search), if any.
        partial: the records are only the end of the history (phase-one preview).
        history: records already in columns (from a backfill worker), applied as
            ``records`` would be; a batch carries one or the other.
        head: the records begin with the history's first record (``False``: a preview
            of its end only, whose first record says nothing of when the run began).
    """

    key: str
    format: str = "tracktui"
    path: str = ""
    records: RecordBlock | None = None
    replace: bool = False
    meta: dict[str, Any] | None = None
    log: tuple[str, ...] = ()
    bad_lines: tuple[tuple[str, int, str], ...] = ()
    notes: tuple[str, ...] = ()
    mtime: float | None = None
    media: tuple[str, ...] | None = None
    group: str | None = None
    partial: bool = False
    history: History | None = None
    head: bool = True


@dataclass(frozen=True, slots=True)
class Delta:
    """What one applied batch changed."""

    key: str
    created: bool = False
    metrics: frozenset[str] = frozenset()
    objects: frozenset[str] = frozenset()
    meta: bool = False
    log: int = 0
    health: bool = False
    replaced: bool = False


class Series:
    """One scalar metric of one run: record positions, values, and running summaries."""

    __slots__ = (
        "count",
        "first_nonfinite_step",
        "index",
        "last",
        "last_step",
        "max",
        "max_step",
        "min",
        "min_step",
        "name",
        "nonfinite",
        "values",
    )

    def __init__(self, name: str) -> None:
        self.name = name
        self.index = array("I")
        self.values = array("f")
        self.count = 0
        self.nonfinite = 0
        self.first_nonfinite_step: float | None = None
        self.last = math.nan
        self.last_step: float | None = None
        self.min = math.inf
        self.min_step: float | None = None
        self.max = -math.inf
        self.max_step: float | None = None

    def extend(self, index: np.ndarray, values: np.ndarray, steps: np.ndarray) -> None:
        """Append points (``index`` into the run's records, ``steps`` their x values)."""
        n = len(values)
        if not n:
            return
        self.index.frombytes(_raw(index, np.uint32))
        self.values.frombytes(_raw(values, np.float32))
        self.count += n
        if n <= 64:  # below this, a Python loop beats numpy's per-call overhead
            self._summarise_small(values.tolist(), steps.tolist())
        else:
            self._summarise(values, steps)

    def merge(self, other: Series, base: int) -> None:
        """Append ``other``'s points, their positions shifted by ``base``, and summaries."""
        if not other.count:
            return
        if base:
            shifted = np.frombuffer(other.index, dtype=np.uint32) + np.uint32(base)
            self.index.frombytes(_raw(shifted, np.uint32))
        else:
            self.index.extend(other.index)
        self.values.extend(other.values)
        self.count += other.count
        self.nonfinite += other.nonfinite
        if self.first_nonfinite_step is None:
            self.first_nonfinite_step = other.first_nonfinite_step
        if other.min < self.min:  # ties keep the earlier point, as extend does
            self.min, self.min_step = other.min, other.min_step
        if other.max > self.max:
            self.max, self.max_step = other.max, other.max_step
        self.last, self.last_step = other.last, other.last_step

    def _summarise_small(self, values: list[float], steps: list[float]) -> None:
        for value, step in zip(values, steps):
            if math.isfinite(value):
                if value < self.min:
                    self.min, self.min_step = value, step
                if value > self.max:
                    self.max, self.max_step = value, step
            else:
                self.nonfinite += 1
                if self.first_nonfinite_step is None:
                    self.first_nonfinite_step = step
        self.last, self.last_step = values[-1], steps[-1]

    def _summarise(self, values: np.ndarray, steps: np.ndarray) -> None:
        # The extremes first: when both are finite, so is every value (argmin and argmax
        # point at a NaN or an infinity if there is one), and no mask is needed.
        low, high = int(values.argmin()), int(values.argmax())
        if not (math.isfinite(values[low]) and math.isfinite(values[high])):
            finite = np.isfinite(values)
            bad = np.flatnonzero(~finite)
            self.nonfinite += len(bad)
            if self.first_nonfinite_step is None:
                self.first_nonfinite_step = float(steps[bad[0]])
            if len(bad) == len(values):
                low = high = -1
            else:
                low = int(np.where(finite, values, np.inf).argmin())
                high = int(np.where(finite, values, -np.inf).argmax())
        if low >= 0 and values[low] < self.min:
            self.min, self.min_step = float(values[low]), float(steps[low])
        if high >= 0 and values[high] > self.max:
            self.max, self.max_step = float(values[high]), float(steps[high])
        self.last, self.last_step = float(values[-1]), float(steps[-1])

    def best(self, mode: str) -> tuple[float, float | None]:
        """``(value, step)`` of the best finite point: ``mode`` is ``"min"`` or ``"max"``."""
        if mode == "max":
            return (self.max, self.max_step) if self.max_step is not None else (math.nan, None)
        return (self.min, self.min_step) if self.min_step is not None else (math.nan, None)

    def array(self) -> npt.NDArray[np.float64]:
        """The values as float64 (a copy: the store keeps appending to its own buffer)."""
        return np.frombuffer(self.values, dtype=np.float32).astype(np.float64)

    def positions(self) -> npt.NDArray[np.int64]:
        """Record positions of the points (a copy)."""
        return np.frombuffer(self.index, dtype=np.uint32).astype(np.int64)

    def nbytes(self) -> int:
        """Bytes held by the point buffers."""
        return self.index.buffer_info()[1] * 4 + self.values.buffer_info()[1] * 4


@dataclass(slots=True)
class Health:
    """Problems met while reading a run; never fatal."""

    bad_lines: int = 0
    samples: deque[tuple[str, int, str]] = field(default_factory=lambda: deque(maxlen=BAD_SAMPLES))
    notes: list[str] = field(default_factory=list)
    truncations: int = 0
    metrics_capped: bool = False

    def note(self, text: str) -> None:
        """Record an event, collapsing immediate repeats."""
        if not self.notes or self.notes[-1] != text:
            self.notes.append(text)
            del self.notes[:-200]


class Run:
    """Everything known about one run. Mutated only by :meth:`RunStore.apply`."""

    def __init__(self, key: str, format: str, path: str) -> None:
        self.key = key
        self.format = format
        self.path = path
        self.meta: dict[str, Any] = {}
        self.steps = array("d")
        self.times = array("d")
        self.series: dict[str, Series] = {}
        self.objects: dict[str, deque[tuple[float, Shape]]] = {}
        self.log: deque[str] = deque(maxlen=LOG_LINES)
        self.log_total = 0
        self.health = Health()
        self.mtime: float | None = None
        self.media: tuple[str, ...] = ()
        self.group: str | None = None
        self.partial = False
        self.head = True
        """The records begin with the history's first (not a preview of its end)."""
        self.status: RunStatus = "unknown"
        self.process: RunProcess[str] | None = None
        """The process found holding the run's files open for writing (latest scan)."""
        self.stop: Stop | None = None
        """tracktui's newest carried-out kill of this run, from its audit log."""
        self.scanned = False
        """True when a scan of this box's processes covered the run (local files)."""
        self.slurm: SlurmJob | None = None
        """What Slurm says about the job run.json names (latest refresh; ``None``: no job)."""
        self.gpu: GpuUse | None = None
        """GPU memory and utilisation of the run's process tree (latest reading; ``None``:
        no GPU was read, or no alive process of the run is known)."""

    # Metadata views -------------------------------------------------------------------
    @property
    def name(self) -> str:
        """Display name: run.json's ``name``, else the last part of the path."""
        name = self.meta.get("name")
        if isinstance(name, str) and name:
            return name
        return self.key.rstrip("/").rsplit("/", 1)[-1] or self.key

    @property
    def config(self) -> dict[str, Any]:
        """Hyperparameters (nested allowed)."""
        value = self.meta.get("config")
        return value if isinstance(value, dict) else {}

    @property
    def tags(self) -> dict[str, Any]:
        """Mutable labels."""
        value = self.meta.get("tags")
        if isinstance(value, list):
            return {str(v): True for v in value}
        return value if isinstance(value, dict) else {}

    @property
    def properties(self) -> dict[str, Any]:
        """Immutable facts."""
        value = self.meta.get("properties")
        return value if isinstance(value, dict) else {}

    @property
    def first_time(self) -> float | None:
        """Wall time of the first record read."""
        return self.times[0] if self.times else None

    @property
    def last_time(self) -> float | None:
        """Wall time of the last record read."""
        return self.times[-1] if self.times else None

    @property
    def last_step(self) -> float | None:
        """The run's progress: the largest last step of its metrics (else of its records)."""
        steps = [s.last_step for s in self.series.values() if s.last_step is not None]
        if steps:
            return max(steps)
        return self.steps[-1] if self.steps else None

    def x_values(self, series: Series, axis: str = "step") -> npt.NDArray[np.float64]:
        """The x value of each point of ``series``.

        ``axis`` is ``step``, ``time`` (epoch seconds), ``relative`` (seconds since the
        run's first record) or the name of another scalar metric, matched by record.
        """
        positions = series.positions()
        if axis == "step":
            return np.frombuffer(self.steps, dtype=np.float64)[positions]
        times = np.frombuffer(self.times, dtype=np.float64)[positions]
        if axis == "time":
            return np.copy(times)
        if axis == "relative":
            return times - (self.times[0] if self.times else 0.0)
        other = self.series.get(axis)
        if other is None:
            return np.full(len(positions), np.nan)
        lookup = np.full(len(self.steps), np.nan)
        lookup[other.positions()] = other.array()
        return lookup[positions]

    def latest(self, name: str) -> Shape | None:
        """The latest value of a non-scalar metric."""
        history = self.objects.get(name)
        return history[-1][1] if history else None

    def objects_of(self, kind: type | tuple[type, ...]) -> list[str]:
        """Names of object metrics whose latest value is of ``kind``."""
        return [n for n, h in self.objects.items() if h and isinstance(h[-1][1], kind)]

    def nbytes(self) -> int:
        """Bytes held by the record table and the series buffers."""
        own = (self.steps.buffer_info()[1] + self.times.buffer_info()[1]) * 8
        return own + sum(s.nbytes() for s in self.series.values())


class RunStore:
    """All runs under one ROOT, keyed by run key."""

    def __init__(self) -> None:
        self.runs: dict[str, Run] = {}

    def __len__(self) -> int:
        return len(self.runs)

    def __iter__(self) -> Iterator[Run]:
        return iter(self.runs.values())

    def get(self, key: str) -> Run | None:
        """The run with ``key``, if known."""
        return self.runs.get(key)

    def apply(self, batch: Batch) -> Delta:
        """Apply one batch and report what changed."""
        run = self.runs.get(batch.key)
        created = run is None
        if run is None:
            run = self.runs[batch.key] = Run(batch.key, batch.format, batch.path)
        run.format = batch.format
        if batch.path:
            run.path = batch.path
        if batch.group is not None:
            run.group = batch.group
        if batch.replace:
            run.steps, run.times, run.series, run.objects = array("d"), array("d"), {}, {}
            run.log.clear()
            run.log_total = 0
        if batch.records is not None or batch.history is not None or batch.replace:
            run.partial = batch.partial
        if created or batch.replace:
            run.head = batch.head
        metrics: set[str] = set()
        objects: set[str] = set()
        capped = run.health.metrics_capped
        if batch.records is not None and len(batch.records):
            self._apply_records(run, batch.records, metrics, objects)
        if batch.history is not None:
            self._apply_history(run, batch.history, metrics, objects)
        if batch.meta is not None:
            run.meta = batch.meta
        if batch.log:
            run.log.extend(batch.log)
            run.log_total += len(batch.log)
        health = bool(
            batch.bad_lines
            or batch.notes
            or (batch.records is not None and batch.records.notes)
            or (batch.history is not None and batch.history.notes)
            or run.health.metrics_capped != capped
        )
        if batch.bad_lines:
            run.health.bad_lines += len(batch.bad_lines)
            run.health.samples.extend(batch.bad_lines)
        for note in batch.notes:
            run.health.note(note)
            if "truncated" in note:
                run.health.truncations += 1
        if batch.mtime is not None and (run.mtime is None or batch.mtime > run.mtime):
            run.mtime = batch.mtime
        if batch.media is not None:
            run.media = batch.media
        return Delta(
            key=batch.key,
            created=created,
            metrics=frozenset(metrics),
            objects=frozenset(objects),
            meta=batch.meta is not None,
            log=len(batch.log),
            health=health,
            replaced=batch.replace,
        )

    @staticmethod
    def _apply_records(run: Run, block: RecordBlock, metrics: set[str], objects: set[str]) -> None:
        base = len(run.steps)
        run.steps.frombytes(_raw(block.steps, np.float64))
        run.times.frombytes(_raw(block.times, np.float64))
        for note in block.notes:
            run.health.note(note)
        # A block's metrics most often hold the same records (every one): the positions are
        # shifted and their steps gathered once per positions array, not once per metric.
        shared: dict[int, tuple[np.ndarray, np.ndarray]] = {}
        for name, (index, values) in block.scalars.items():
            series = run.series.get(name)
            if series is None:
                if not RunStore._room_for_metric(run):
                    continue
                series = run.series[name] = Series(name)
            known = shared.get(id(index))
            if known is None:
                known = shared[id(index)] = ((index + base).astype(np.uint32), block.steps[index])
            series.extend(known[0], values, known[1])
            metrics.add(name)
        for name, items in block.objects.items():
            history = run.objects.get(name)
            if history is None:
                if not RunStore._room_for_metric(run):
                    continue
                history = run.objects[name] = deque(maxlen=OBJECT_HISTORY)
            for position, shape in items:
                history.append((float(block.steps[position]), shape))
            objects.add(name)

    @staticmethod
    def _apply_history(run: Run, history: History, metrics: set[str], objects: set[str]) -> None:
        for note in history.notes:
            run.health.note(note)
        run.health.metrics_capped |= history.capped
        metrics.update(history.series)
        objects.update(history.objects)
        if not run.steps and not run.series and not run.objects:
            # Nothing to add to (a full read replacing a preview): the columns become the
            # run's own, uncopied.
            run.steps, run.times = history.steps, history.times
            run.series, run.objects = dict(history.series), dict(history.objects)
            return
        base = len(run.steps)
        run.steps.extend(history.steps)
        run.times.extend(history.times)
        for name, other in history.series.items():
            series = run.series.get(name)
            if series is None:
                if not RunStore._room_for_metric(run):
                    metrics.discard(name)
                    continue
                series = run.series[name] = Series(name)
            series.merge(other, base)
        for name, items in history.objects.items():
            kept = run.objects.get(name)
            if kept is None:
                if not RunStore._room_for_metric(run):
                    objects.discard(name)
                    continue
                kept = run.objects[name] = deque(maxlen=OBJECT_HISTORY)
            kept.extend(items)

    @staticmethod
    def _room_for_metric(run: Run) -> bool:
        """Whether ``run`` may gain another metric name (``MAX_METRICS``); noted once."""
        if len(run.series) + len(run.objects) < MAX_METRICS:
            return True
        if not run.health.metrics_capped:
            run.health.metrics_capped = True
            run.health.note(
                f"more than {MAX_METRICS:,} distinct metrics: further new metric names are ignored"
            )
        return False
