"""Read whole run histories in worker processes while the engine keeps following files.

Parsing is CPU-bound, so in one process it holds the GIL against the UI. Worker processes
read runs to their end in parallel and put each run's records into the store's columns
there, with the store's own code (:class:`~tui.core.store.History`). The columns come back
over a pipe straight into the arrays the store then keeps: no pickled copy of them, and no
second copy of the parsed records on the way. The source objects come back too (their file
positions), and the engine adopts them to carry on tailing.

The workers are plain child processes talking over their stdin and stdout (no
multiprocessing: no resource tracker, no semaphores, nothing left behind), and they exit as
soon as the backfill is done. Small histories are read in the calling thread: starting
processes would cost more.
"""

from __future__ import annotations

import dataclasses
import io
import os
import pickle
import queue
import struct
import subprocess
import sys
import threading
from array import array
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any, TypeAlias

import numpy as np

from tui.core.store import Batch, History

if TYPE_CHECKING:
    from tui.core.cache import SummaryCache
    from tui.core.engine import Engine
    from tui.core.formats.base import Source

PARALLEL_BYTES = 64 * 1024 * 1024
"""Below this much history in total, one thread reads it all (no processes)."""

CHUNK = 8
"""Runs per unit of work."""

QUEUED = 2
"""Units of work given to a worker at once (the next is ready when one is answered)."""

_HEADER = struct.Struct("<QI")  # pickle bytes, then how many arrays follow it
_ARRAY = struct.Struct("<BBQ")  # numpy or not, an array's type code and item count; bytes
_TYPECODES = frozenset("dfI")  # the store's columns: float64, float32, uint32
_DTYPES = frozenset("?bBhHiIlLqQefd")  # numpy's plain numbers (records' columns)
# The worker imports this module from where the app imported it.
_BOOT = "import sys; sys.path.insert(0, {!r}); from tui.core.backfill import serve; serve()"

Results: TypeAlias = "list[tuple[Source, list[Batch]]]"
Column: TypeAlias = "array[Any] | np.ndarray[Any, Any]"
"""What travels raw after a message's pickle: the store's columns and record blocks'."""


def read_sources(
    sources: Sequence[Source], budget: int = 64 * 1024 * 1024
) -> list[tuple[Source, list[Batch]]]:
    """Read each source to its current end, its records as one :class:`History`.

    Each source's files are closed afterwards (descriptors do not travel between
    processes). The first batch of a run carries the columns of all its records; the
    batches keep everything else (metadata, log, bad lines, notes) as read.
    """
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
        source.close()
        out.append((source, in_columns(batches)))
    return out


def in_columns(batches: list[Batch]) -> list[Batch]:
    """``batches`` with their records moved into one :class:`History` on the first."""
    blocks = [b.records for b in batches if b.records is not None and len(b.records)]
    if not blocks:
        return batches
    history = History.of(blocks)
    slim = [dataclasses.replace(b, records=None) for b in batches]
    slim[0] = dataclasses.replace(slim[0], history=history)
    return slim


# The pipe: a pickle whose arrays travel after it, raw ------------------------------------
class _Pickler(pickle.Pickler):
    def __init__(self, file: IO[bytes], arrays: list[Column]) -> None:
        super().__init__(file, protocol=pickle.HIGHEST_PROTOCOL)
        self.arrays = arrays

    def persistent_id(self, obj: object) -> int | None:
        if type(obj) is array and obj.typecode in _TYPECODES:
            self.arrays.append(obj)
            return len(self.arrays) - 1
        # A record block's columns: pickled, each took ~20 us to rebuild (a few per run,
        # thousands of runs in a first paint handed over by the prefetch child).
        if type(obj) is np.ndarray and _plain(obj):
            self.arrays.append(obj)
            return len(self.arrays) - 1
        return None


def _plain(column: np.ndarray[Any, Any]) -> bool:
    """Whether a numpy array travels raw: one dimension of plain numbers, in order."""
    return (
        column.ndim == 1
        and column.dtype.char in _DTYPES
        and column.dtype.isnative
        and column.flags.c_contiguous
    )


def _bytes(column: Column) -> memoryview:
    """A column's memory, as bytes."""
    view = column.data if isinstance(column, np.ndarray) else memoryview(column)
    return view.cast("B")


class _Unpickler(pickle.Unpickler):
    def __init__(self, file: IO[bytes], arrays: list[Column]) -> None:
        super().__init__(file)
        self.arrays = arrays

    def persistent_load(self, pid: object) -> Column:
        if type(pid) is not int or not 0 <= pid < len(self.arrays):
            raise pickle.UnpicklingError("unknown array")
        return self.arrays[pid]


def send(stream: IO[bytes], value: object) -> None:
    """Write ``value`` to ``stream``: its pickle, then its columns' bytes as they are."""
    arrays: list[Column] = []
    body = io.BytesIO()
    _Pickler(body, arrays).dump(value)
    stream.write(_HEADER.pack(body.tell(), len(arrays)))
    stream.write(body.getbuffer())
    for column in arrays:
        if isinstance(column, np.ndarray):
            stream.write(_ARRAY.pack(1, ord(column.dtype.char), len(column)))
        else:
            stream.write(_ARRAY.pack(0, ord(column.typecode), len(column)))
        stream.write(_bytes(column))
    stream.flush()


def receive(stream: IO[bytes]) -> Any:
    """Read what :func:`send` wrote, each column read into the array that will keep it.

    Raises:
        EOFError: the stream ended (at a message's start, or inside one).
    """
    length, count = _HEADER.unpack(_read(stream, _HEADER.size))
    body = _read(stream, length)
    arrays: list[Column] = []
    for _ in range(count):
        numpy, code, items = _ARRAY.unpack(_read(stream, _ARRAY.size))
        typecode = chr(code)
        column: Column
        if numpy == 1 and typecode in _DTYPES:
            column = np.empty(items, dtype=np.dtype(typecode))
        elif numpy == 0 and typecode in _TYPECODES:
            column = array(typecode, [0]) * items
        else:
            raise pickle.UnpicklingError(f"unexpected array type {typecode!r}")
        _read_into(stream, _bytes(column))
        arrays.append(column)
    return _Unpickler(io.BytesIO(body), arrays).load()


def _read(stream: IO[bytes], size: int) -> bytes:
    buffer = bytearray(size)
    _read_into(stream, memoryview(buffer))
    return bytes(buffer)


def _read_into(stream: IO[bytes], view: memoryview) -> None:
    done = 0
    while done < len(view):
        got = stream.readinto(view[done:])  # type: ignore[attr-defined]
        if not got:
            raise EOFError("the worker's pipe closed")
        done += got


# The worker process ------------------------------------------------------------------
def serve() -> None:
    """A worker's loop: read the sources asked for and answer, until stdin closes."""
    answers = os.fdopen(os.dup(1), "wb")
    quiet()
    requests = os.fdopen(0, "rb")
    while True:
        try:
            sources = receive(requests)
        except EOFError:
            return
        send(answers, read_sources(sources))


def quiet() -> None:
    """Nothing a child process of the app prints may reach the terminal the app draws on
    (its stdout and stderr go to /dev/null; a descriptor it answers on was taken before)."""
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, 1)
    os.dup2(devnull, 2)
    os.close(devnull)


_Answer: TypeAlias = "tuple[_Worker, int, Results | BaseException]"


class _Worker:
    """One worker process, and the thread that hands it work and reads its answers."""

    def __init__(self, answers: queue.Queue[_Answer]) -> None:
        package_root = str(Path(__file__).resolve().parents[2])
        self.process = subprocess.Popen(
            [sys.executable, "-c", _BOOT.format(package_root)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
        )
        self.queued: list[int] = []
        """Units of work given and not answered yet."""
        self.alive = True
        self._requests: queue.Queue[tuple[int, list[Source]] | None] = queue.Queue()
        self._answers = answers
        self._thread = threading.Thread(target=self._talk, name="tracktui-backfill", daemon=True)
        self._thread.start()

    def give(self, unit: int, sources: list[Source]) -> None:
        """Queue a unit of work (answered, in order, through the shared answer queue)."""
        self.queued.append(unit)
        self._requests.put((unit, sources))

    def _talk(self) -> None:
        stdin, stdout = self.process.stdin, self.process.stdout
        assert stdin is not None and stdout is not None
        while (request := self._requests.get()) is not None:
            unit, sources = request
            try:
                send(stdin, sources)
                results: Results | BaseException = receive(stdout)
            except Exception as exc:  # the worker died or broke: its units go back
                self._answers.put((self, unit, exc))
                return
            self._answers.put((self, unit, results))

    def stop(self) -> None:
        """End the worker: at once if it is working, else by closing its stdin."""
        self.alive = False
        self._requests.put(None)
        if self.queued:
            self.process.kill()
        for stream in (self.process.stdin, self.process.stdout):
            if stream is not None:
                try:
                    stream.close()
                except OSError:
                    pass
        try:
            self.process.wait(2.0)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()


class Backfill:
    """Full reads of ``keys``, most wanted first, in processes when the data is large.

    Call :meth:`step` repeatedly until :attr:`busy` is false; each call returns the
    batches of the runs finished since the last one (possibly none). The worker processes
    exit when the last run is read (or at :meth:`close`). With a ``cache``, runs it showed
    at the first paint are read last, and every full read is recorded in it (saved when
    the last run is in).
    """

    def __init__(
        self,
        engine: Engine,
        keys: Iterable[str],
        workers: int | None = None,
        cache: SummaryCache | None = None,
    ) -> None:
        self.engine = engine
        self.pending = list(keys)
        self.cache = cache
        if cache is not None:
            cache.keep_only(self.pending)
            self.pending.sort(key=cache.holds)  # stable: the cached ones go last
        self.done = 0
        self._in_flight: dict[int, list[str]] = {}
        self._units = 0
        self._redo: set[str] = set()
        self._answers: queue.Queue[_Answer] = queue.Queue()
        self._workers: list[_Worker] = []
        count = workers if workers is not None else min(4, os.cpu_count() or 1)
        large = count > 1 and sum(engine.sources[k].size() for k in self.pending) >= PARALLEL_BYTES
        if large:
            try:
                for _ in range(count):
                    self._workers.append(_Worker(self._answers))
            except OSError:  # no processes to be had: this thread reads everything
                self._stop_workers()

    @property
    def busy(self) -> bool:
        """Whether runs remain to be read in full."""
        return bool(self.pending or self._in_flight)

    @property
    def parallel(self) -> bool:
        """Whether worker processes do the reading."""
        return bool(self._workers)

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
        workers = [w for w in self._workers if w.alive]
        if not workers:
            chosen = self._take(priority)
            batches: list[Batch] = []
            for key in chosen:
                read = in_columns(self.engine.read_all(key))
                self._record(self.engine.sources[key], read)
                batches.extend(read)
            self.done += len(chosen)
            self._finish()
            return batches
        for worker in workers:
            while self.pending and len(worker.queued) < QUEUED:
                chosen = self._take(priority)
                self._units += 1
                self._in_flight[self._units] = chosen
                worker.give(self._units, [self.engine.sources[k] for k in chosen])
        batches = []
        try:
            answers = [self._answers.get(timeout=timeout)]
        except queue.Empty:
            return batches
        while True:
            try:
                answers.append(self._answers.get_nowait())
            except queue.Empty:
                break
        for worker, unit, results in answers:
            chosen = self._in_flight.pop(unit)
            worker.queued.remove(unit)
            if isinstance(results, BaseException):
                # The worker died: what it was given goes back to the front of the line.
                for other in worker.queued:
                    self.pending[:0] = self._in_flight.pop(other)
                worker.queued.clear()
                worker.stop()
                self.pending[:0] = chosen
                continue
            for source, read in results:
                self._record(source, read)
                batches.extend(self.engine.adopt(source, read))
            self.done += len(chosen)
            again = [k for k in chosen if k in self._redo]
            if again:
                self._redo.difference_update(again)
                self.engine.mark(again)
        self._finish()
        return batches

    def _record(self, source: Source, read: list[Batch]) -> None:
        if self.cache is not None:
            self.cache.record(source, read)

    def _finish(self) -> None:
        """Once the last run is in: the workers and their memory go, the cache is saved."""
        if self.busy:
            return
        self._stop_workers()
        if self.cache is not None:
            self.cache.save()

    def _stop_workers(self) -> None:
        for worker in self._workers:
            worker.stop()
        self._workers = []

    def close(self) -> None:
        """Stop the workers (the runs not read yet are simply not read)."""
        self._stop_workers()
