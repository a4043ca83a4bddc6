"""A run's machine-use history as a run of its own, so the chart widgets draw it unchanged.

Three sources, one :class:`SystemHistory` per run:

* the run's ``system.jsonl`` (written by ``tracktui run``), read incrementally by a
  :class:`SystemFile` on a worker thread;
* samples the app takes itself while the run is open, for a run with no such file;
* the ``system/...`` series of a run whose own format logs machine use (W&B's system
  metrics), copied from the run.

Byte counts become GiB on the way in (``rss_bytes`` is charted as ``rss_gib``), so the
charts' axes read as sizes. The history is owned by the store's thread; :class:`SystemFile`
by the thread that reads it.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path

import numpy as np

from tui.core.gpu.sampler import SYSTEM
from tui.core.records import RecordBlock, RecordBuilder
from tui.core.store import Batch, Delta, Run, RunStore
from tui.core.tail import FileTail

FOREIGN_PREFIX = "system/"
"""Series a format logs about the machine (W&B's ``system/gpu.0.gpu``...)."""

Source = str
"""Where a history came from: ``file`` (system.jsonl), ``sampled`` (the app), ``format``."""

_GIB = float(1 << 30)


def _charted(block: RecordBlock) -> RecordBlock:
    """``*_bytes`` series as ``*_gib``; everything else as it is."""
    scalars = {}
    for name, (index, values) in block.scalars.items():
        if name.endswith("_bytes"):
            scalars[name[: -len("_bytes")] + "_gib"] = (index, values / _GIB)
        else:
            scalars[name] = (index, values)
    return RecordBlock(block.steps, block.times, scalars, {}, block.notes)


class SystemFile:
    """Reads a run's ``system.jsonl`` as it grows (one thread only).

    Args:
        root: ROOT (symbolic links are followed only inside it).
        run_dir: the run's directory.
    """

    def __init__(self, root: Path, run_dir: Path) -> None:
        self.path = run_dir / SYSTEM
        self.tail = FileTail(self.path, root)
        self.ordinal = 0

    def exists(self) -> bool:
        """Whether the run has the file (a run ``tracktui run`` launched)."""
        return os.path.isfile(self.path)

    def read(self) -> RecordBlock | None:
        """The records appended since the last call, or ``None``."""
        chunk = self.tail.read()
        if not chunk.count:
            return None
        builder = RecordBuilder(self.ordinal)
        builder.add_chunk(chunk)
        self.ordinal = builder.ordinal
        return builder.build()

    def close(self) -> None:
        """Release the file."""
        self.tail.close()


class SystemHistory:
    """One run's machine-use series, in a store of its own.

    Args:
        key: the run's key (the history's run has the same key).
    """

    def __init__(self, key: str) -> None:
        self.key = key
        self.store = RunStore()
        self.sources: set[Source] = set()
        self._copied: dict[str, int] = {}

    @property
    def run(self) -> Run | None:
        """The history as a run (``None`` before the first sample)."""
        return self.store.get(self.key)

    def add(self, block: RecordBlock | None, source: Source) -> Delta | None:
        """Append records (``system.jsonl`` lines or samples)."""
        if block is None or not len(block):
            return None
        self.sources.add(source)
        return self.store.apply(Batch(self.key, "system", records=_charted(block)))

    def add_sample(self, sample: Mapping[str, object], time: float) -> Delta | None:
        """Append one sample the app took at ``time``."""
        builder = RecordBuilder(len(self.run.steps) if self.run is not None else 0, time)
        builder.add_records([dict(sample)])
        return self.add(builder.build(), "sampled")

    def copy_from(self, run: Run) -> Delta | None:
        """Take the points of ``run``'s ``system/...`` series not copied yet."""
        steps: list[np.ndarray] = []
        scalars: dict[str, tuple[np.ndarray, np.ndarray]] = {}
        start = 0
        times = np.frombuffer(run.times, dtype=np.float64)
        for name, series in run.series.items():
            if not name.startswith(FOREIGN_PREFIX):
                continue
            done = self._copied.get(name, 0)
            if series.count < done:  # the run's history was replaced
                done = 0
            if series.count == done:
                continue
            positions = series.positions()[done:]
            steps.append(times[positions])
            scalars[name] = (np.arange(start, start + len(positions)), series.array()[done:])
            start += len(positions)
            self._copied[name] = series.count
        if not steps:
            return None
        # One record per sampling time (the metrics of one sample share it), in time order.
        at, record = np.unique(np.concatenate(steps), return_inverse=True)
        scalars = {name: (record[index], values) for name, (index, values) in scalars.items()}
        return self.add(RecordBlock(at, at.copy(), scalars, {}), "format")
