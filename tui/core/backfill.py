"""Read whole run histories in worker processes while the engine keeps following files.

Parsing is CPU-bound, so in one process it holds the GIL against the UI; worker processes
read runs to their end in parallel and send back frozen batches together with the source
objects themselves (their file positions), which the engine adopts to carry on tailing.
Small histories are read in the calling thread: starting processes would cost more.
"""

from __future__ import annotations

import multiprocessing
import os
import sys
from collections.abc import Iterable, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait

from tui.core.engine import Engine
from tui.core.formats.base import Source
from tui.core.store import Batch

PARALLEL_BYTES = 64 * 1024 * 1024
"""Below this much history in total, one thread reads it all (no processes)."""

CHUNK = 8
"""Runs per unit of work."""


def read_sources(
    sources: Sequence[Source], budget: int = 64 * 1024 * 1024
) -> list[tuple[Source, list[Batch]]]:
    """Read each source to its current end (in a worker process); close its files."""
    out = []
    for source in sources:
        batches: list[Batch] = []
        while True:
            try:
                batch = source.read(budget)
            except Exception as exc:  # one broken run must not stop the others
                batch = source.batch(notes=(f"reading failed: {exc!r}"[:300],))
                source.more = False
            if batch is not None:
                batches.append(batch)
            if not source.more:
                break
        source.close()  # descriptors do not travel between processes
        out.append((source, batches))
    return out


def _quiet() -> None:
    """Worker set-up: nothing a worker prints may reach the terminal the app draws on."""
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, 1)
    os.dup2(devnull, 2)
    os.close(devnull)


def _start_tracker() -> bool:
    """Start multiprocessing's resource tracker, whose stderr must be a real descriptor.

    The tracker is launched with ``sys.stderr``'s descriptor; a UI that captures stderr
    (Textual's stand-in answers -1) has none, and the terminal must not receive the
    tracker's messages anyway, so it gets /dev/null for that moment.
    """
    from multiprocessing import resource_tracker

    saved = sys.stderr
    try:
        with open(os.devnull, "w") as devnull:
            sys.stderr = devnull
            resource_tracker.ensure_running()
    except (OSError, ValueError):
        return False
    finally:
        sys.stderr = saved
    return True


class Backfill:
    """Full reads of ``keys``, most wanted first, in processes when the data is large.

    Call :meth:`step` repeatedly until :attr:`busy` is false; each call returns the
    batches of the runs finished since the last one (possibly none).
    """

    def __init__(self, engine: Engine, keys: Iterable[str], workers: int | None = None) -> None:
        self.engine = engine
        self.pending = list(keys)
        self.done = 0
        self._in_flight: dict[Future[list[tuple[Source, list[Batch]]]], list[str]] = {}
        self._redo: set[str] = set()
        count = workers if workers is not None else min(4, os.cpu_count() or 1)
        self._pool: ProcessPoolExecutor | None = None
        large = count > 1 and sum(engine.sources[k].size() for k in self.pending) >= PARALLEL_BYTES
        if large and _start_tracker():
            # spawn: the app has threads, and forking a threaded process is unsafe.
            self._pool = ProcessPoolExecutor(
                count, mp_context=multiprocessing.get_context("spawn"), initializer=_quiet
            )
            self._slots = 2 * count

    @property
    def busy(self) -> bool:
        """Whether runs remain to be read in full."""
        return bool(self.pending or self._in_flight)

    @property
    def parallel(self) -> bool:
        """Whether worker processes do the reading."""
        return self._pool is not None

    def owns(self, key: str) -> bool:
        """Whether ``key``'s full read is still to come (its new data will be in it)."""
        return key in self._waiting

    @property
    def _waiting(self) -> set[str]:
        keys = set(self.pending)
        for chunk in self._in_flight.values():
            keys.update(chunk)
        return keys

    def touched(self, keys: Iterable[str]) -> None:
        """Runs that changed while their full read was out: read them again afterwards."""
        self._redo.update(keys)

    def _take(self, priority: Sequence[str]) -> list[str]:
        waiting = set(self.pending)
        chosen = [k for k in priority if k in waiting][:CHUNK] or self.pending[:CHUNK]
        taken = set(chosen)
        self.pending = [k for k in self.pending if k not in taken]
        return chosen

    def step(self, priority: Sequence[str] = (), timeout: float = 0.1) -> list[Batch]:
        """Advance; returns the batches of runs whose history is now complete."""
        if self._pool is None:
            chosen = self._take(priority)
            batches: list[Batch] = []
            for key in chosen:
                batches.extend(self.engine.read_all(key))
            self.done += len(chosen)
            return batches
        while self.pending and len(self._in_flight) < self._slots:
            chosen = self._take(priority)
            sources = [self.engine.sources[k] for k in chosen]
            self._in_flight[self._pool.submit(read_sources, sources)] = chosen
        finished, _ = wait(list(self._in_flight), timeout=timeout, return_when=FIRST_COMPLETED)
        batches = []
        for future in finished:
            chosen = self._in_flight.pop(future)
            try:
                results = future.result()
            except Exception:  # a worker died: read those runs here instead
                for key in chosen:
                    batches.extend(self.engine.read_all(key))
            else:
                for source, read in results:
                    batches.extend(self.engine.adopt(source, read))
            self.done += len(chosen)
            again = [k for k in chosen if k in self._redo]
            if again:
                self._redo.difference_update(again)
                self.engine.mark(again)
        return batches

    def close(self) -> None:
        """Stop the workers (the runs not read yet are simply not read)."""
        if self._pool is not None:
            self._pool.shutdown(wait=False, cancel_futures=True)
            self._pool = None
