"""The first paint's reading, done by a child process on the other core while the app loads.

The app's start is one core's work: Python's imports, Textual's setup and the first frame
hold the GIL for about 0.3 s, and walking ROOT and reading the end of every run (or its
cached summary) either waited for them or shared the GIL with them. :func:`start`, called
before the app's imports, starts a child process that does that reading meanwhile, on
another core, and hands over what the first paint shows (the previews, as batches), then
what comes after it: the batches the summary cache settles, and the runs found (their
sources, as the engine left them) with the engine's record of which were previewed. The
app carries on from there as if its own reader had done it (:meth:`Prefetch.messages`,
:meth:`tui.core.engine.Engine.adopt_walk`); when the child fails in any way, the app's
reader does the same work itself.

The child is a fork of the app's process, made first thing, before any thread starts and
while the process is small: it has a started interpreter, so it walks ROOT about 0.05 s
sooner than a fresh one would. (Forked once numpy had loaded, it gained another 0.05 s,
but the app then paid for it: every page it wrote that the child still shared was copied,
1,700 of them while it loaded Textual.) Where a fork is not safe (a process with threads,
as under a test runner) it is a fresh interpreter running :func:`serve`. Either way it
talks over a pipe (the backfill's framing: a pickle, then the store's columns raw), reads
run files only, prints nothing to the terminal (its standard streams are /dev/null), and
exits when it has said everything or when the app stops listening. A thread of the app
(:meth:`Prefetch.listen`) reads and unpickles what it says as it comes, while the app is
still loading; the app applies the previews that have arrived before its first frame
(:meth:`Prefetch.arrived`), so that frame shows the runs rather than an empty table.
"""

from __future__ import annotations

import contextlib
import gc
import os
import signal
import subprocess
import sys
import threading
import time
from collections import deque
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import IO, Any

PREVIEW_BYTES = 8192
"""Bytes read from the end of each run's metrics for the first paint (about 80 records)."""

POST = 0.1
"""Seconds of previewing per message: the app unpickles one while the next is read (it
shows them in parts of its own pace, :data:`tui.app.app.PREVIEW_POST`)."""

FIRST_POST = 0.02
"""Seconds of previewing before the first message: its count tells the app the child's pace
(:meth:`Prefetch.previews_soon`)."""

LOADAVG = "/proc/loadavg"
"""Where the kernel counts the tasks running now (its fourth field, ``running/all``)."""

SAMPLES = 5
"""Looks at that count before saying no core is free (see :func:`core_free`)."""

# The child imports this module from where the app imported it.
_BOOT = "import sys; sys.path.insert(0, {!r}); from tui.core.prefetch import serve; serve()"


class Prefetch:
    """A child process reading what the first paint of ``root`` shows.

    Args:
        root: the ROOT the app opens.
        tail_bytes: how much of the end of each run's metrics a preview reads.
        command: the child's command line, when it is not this module's own child.
        fork: make the child a fork of this process (see the module's notes): only where
            no other thread runs; by default, where none does and ``command`` is not given.
    """

    def __init__(
        self,
        root: Path,
        tail_bytes: int,
        command: Sequence[str] | None = None,
        fork: bool | None = None,
    ) -> None:
        if fork is None:
            fork = command is None and may_fork()
        self.process: subprocess.Popen[bytes] | Forked
        if fork:
            self.process = Forked(root, tail_bytes)
        else:
            if command is None:
                package_root = str(Path(__file__).resolve().parents[2])
                boot = _BOOT.format(package_root)
                command = [sys.executable, "-c", boot, os.fspath(root), str(tail_bytes)]
            env = dict(os.environ, OPENBLAS_NUM_THREADS="1")  # the child's own: no algebra
            self.process = subprocess.Popen(
                command,
                stdin=subprocess.DEVNULL,
                stdout=subprocess.PIPE,
                stderr=subprocess.DEVNULL,
                env=env,
            )
        self.root = root
        self.total: int | None = None
        """Runs the child found (once it has said so)."""
        self._pace: tuple[float, float, int] | None = None  # when it said the total, last
        # said previews, and how many runs it had previewed then
        self._said: deque[tuple[Any, ...] | Exception] = deque()  # read, not yet taken
        self._heard_all = False  # it has said everything, or failed
        self._asked = threading.Event()  # the app wants what follows the previews
        self._news = threading.Condition()
        self._listener: threading.Thread | None = None

    def listen(self) -> None:
        """Read what the child says from now on, in a thread of this process (once; the
        caller loads numpy first, with the threads it wants: the messages need it)."""
        if self._listener is None:
            self._listener = threading.Thread(target=self._listen, name="prefetch", daemon=True)
            self._listener.start()

    def _listen(self) -> None:
        from tui.core.backfill import receive

        stream = self.process.stdout
        assert stream is not None
        while True:
            try:
                message: tuple[Any, ...] | Exception = receive(stream)
            except Exception as error:  # it died, was stopped, or said something unreadable
                message = error
            with self._news:
                if not isinstance(message, Exception):
                    if message[0] == "total":
                        self.total = message[1]
                        now = time.monotonic()
                        self._pace = (now, now, 0)
                    elif message[0] == "previews" and self._pace is not None:
                        self._pace = (self._pace[0], time.monotonic(), message[2])
                self._said.append(message)
                ended = isinstance(message, Exception) or message[0] == "found"
                self._heard_all = ended
                last = (
                    not isinstance(message, Exception)
                    and message[0] == "previews"
                    and message[2] == self.total
                )
                if last:
                    self._asked.clear()  # set again by a reader waiting for more
                self._news.notify_all()
            if ended:
                return
            if last:
                # What follows (the batches the cache settles, the runs found) waits until
                # the app asks for it, after its first frame: unpickled meanwhile, the runs
                # found held the GIL for 40 ms (1,000 runs) while that frame was drawn.
                self._asked.wait()

    def messages(self) -> Iterator[tuple[Any, ...]]:
        """What the child says that :meth:`arrived` did not take, in order:
        ``("total", n)``, ``("previews", batches, done)`` (``done`` runs previewed so far)
        until every run is, ``("settled", batches)``, then ``("found", found, previewed,
        cached)``.

        Raises:
            EOFError: the child ended before saying everything (it failed, or was stopped).
            Exception: what reading a damaged message raises (pickle's errors).
        """
        self.listen()
        while True:
            with self._news:
                while not self._said:
                    self._asked.set()
                    self._news.wait()
                message = self._said.popleft()
            if isinstance(message, Exception):
                raise message
            yield message
            if message[0] == "found":
                return

    def previews_soon(self, within: float) -> bool:
        """Wait for the previews of every run while the child's pace says they will all
        have come within ``within`` seconds; whether they all have.

        Its first previews come ``FIRST_POST`` after its total, which tells its pace; a
        child further behind, or one that has ended or failed, is not waited for.
        """
        deadline = time.monotonic() + within
        with self._news:
            while True:
                if self._pace is None or self.total is None:
                    return False  # still walking ROOT
                began, last, done = self._pace
                if done >= self.total:
                    return True
                now = time.monotonic()
                if done and last > began:
                    per_run = (last - began) / done
                    if last + (self.total - done) * per_run > deadline:
                        return False
                if now >= deadline or self._heard_all:
                    return False
                self._news.wait(deadline - now)

    def arrived(self) -> tuple[list[Any], int]:
        """The previews read and not yet taken (taken off :meth:`messages`), and how many
        runs have been previewed with them (0 when none has come)."""
        previews: list[Any] = []
        done = 0
        with self._news:
            while self._said:
                message = self._said[0]
                if isinstance(message, Exception) or message[0] not in ("total", "previews"):
                    break
                self._said.popleft()
                if message[0] == "previews":
                    previews.extend(message[1])
                    done = message[2]
        return previews, done

    def close(self) -> None:
        """Stop listening: the child is ended if it is still at work, and waited for."""
        self._asked.set()
        with contextlib.suppress(OSError):
            self.process.kill()
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.process.wait(timeout=5)
        if self._listener is not None:  # it reads to the end of the pipe, then stops
            self._listener.join(timeout=5)
        stream = self.process.stdout
        if stream is not None:
            with contextlib.suppress(OSError):
                stream.close()


class Forked:
    """The child as a fork of this process, with what the app asks of a child process:
    ``stdout`` (the pipe it talks on), ``poll``, ``wait``, ``kill`` and ``returncode``.

    The fork returns only in this process; the child runs :func:`_serve` and leaves with
    ``os._exit``, never through the caller's code (nor its ``atexit`` handlers, nor a
    flush of buffers this process filled).
    """

    def __init__(self, root: Path, tail_bytes: int) -> None:
        reading, writing = os.pipe()
        pid = os.fork()
        if pid == 0:  # the child
            try:
                os.close(reading)
                devnull = os.open(os.devnull, os.O_RDWR)
                for stream in (0, 1, 2):  # nothing it does reaches the terminal
                    os.dup2(devnull, stream)
                os.close(devnull)
                os.environ["OPENBLAS_NUM_THREADS"] = "1"  # numpy loads here: no algebra
                with os.fdopen(writing, "wb") as out:
                    _serve(root, tail_bytes, out)
            except BaseException:  # the app stopped listening, or a read failed: it will
                pass  # read the first paint itself
            finally:
                os._exit(0)
        os.close(writing)  # the child's end: the pipe ends when the child does
        self.pid = pid
        self.stdout: IO[bytes] | None = os.fdopen(reading, "rb")
        self.returncode: int | None = None

    def poll(self) -> int | None:
        """The child's exit status once it has ended (it is waited for then), or ``None``."""
        if self.returncode is None:
            try:
                pid, status = os.waitpid(self.pid, os.WNOHANG)
            except ChildProcessError:  # waited for elsewhere
                self.returncode = 0
            else:
                if pid:
                    self.returncode = os.waitstatus_to_exitcode(status)
        return self.returncode

    def wait(self, timeout: float | None = None) -> int:
        """Wait for the child to end; its exit status.

        Raises:
            subprocess.TimeoutExpired: it has not ended within ``timeout`` seconds.
        """
        deadline = None if timeout is None else time.monotonic() + timeout
        pause = 0.0005
        while (code := self.poll()) is None:
            if deadline is not None and time.monotonic() >= deadline:
                raise subprocess.TimeoutExpired(f"prefetch child {self.pid}", timeout or 0)
            time.sleep(pause)
            pause = min(pause * 2, 0.05)
        return code

    def kill(self) -> None:
        """End the child (SIGKILL). Not waited for yet, it keeps its pid: no other process
        can have taken it."""
        if self.returncode is None:
            os.kill(self.pid, signal.SIGKILL)


def may_fork() -> bool:
    """Whether this process may fork the child: Linux, and no thread but this one (a fork
    copies one thread, and a lock another held at that instant would stay held in the
    child)."""
    return sys.platform == "linux" and threading.active_count() == 1


def start(root: Path, tail_bytes: int) -> Prefetch | None:
    """Start reading ``root``'s first paint in a child process; ``None`` when it would not
    pay (:func:`core_free`) or cannot be started: the app's reader then does it."""
    if not core_free():
        return None
    try:
        return Prefetch(root, tail_bytes)
    except OSError:
        return None


def core_free() -> bool:
    """Whether a core is likely idle for the child: two or more allowed to this process,
    and fewer tasks running than there are of them besides this one (the kernel's count of
    runnable tasks, in /proc/loadavg; the load averages lag a minute behind a machine that
    has just gone quiet). On a busy machine the child's own start (about 0.15 s of a core)
    would only add to what runs.

    The count is of this instant, and a passing task (a shell, the terminal's own work)
    made one look in three say no on a quiet machine: it is read up to ``SAMPLES`` times,
    a millisecond apart, and one look that finds the core free is enough (a busy one stays
    busy through all of them: 5 ms lost, only then)."""
    try:
        cores = len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        return False
    if cores < 2:
        return False
    for sample in range(SAMPLES):
        if sample:
            time.sleep(0.001)
        running = running_tasks()
        if running is None:
            return False
        if running - 1 <= cores - 2:  # this process is one of them
            return True
    return False


def running_tasks() -> int | None:
    """The kernel's count of tasks running or runnable now (``None`` where unknown)."""
    try:
        with open(LOADAVG, "rb") as handle:
            return int(handle.read().split()[3].split(b"/")[0])
    except (OSError, IndexError, ValueError):
        return None


def serve() -> None:
    """The child: walk ROOT, preview every run (from the summary cache where it can), and
    say it all on stdout (see :meth:`Prefetch.messages`)."""
    from tui.core.backfill import quiet

    gc.disable()  # short-lived, and what it makes lives until it is sent
    out = os.fdopen(os.dup(1), "wb")
    quiet()
    root, tail_bytes = Path(sys.argv[1]), int(sys.argv[2])
    try:
        _serve(root, tail_bytes, out)
    except (BrokenPipeError, KeyboardInterrupt):  # the app stopped listening
        pass
    finally:
        with contextlib.suppress(OSError):
            out.close()
        os._exit(0)


def _serve(root: Path, tail_bytes: int, out: IO[bytes]) -> None:
    from tui.core.backfill import send
    from tui.core.cache import SummaryCache
    from tui.core.engine import Engine

    engine = Engine(root, watch="poll")  # never started: nothing is watched here
    keys = engine.scan()
    send(out, ("total", len(keys)))
    cache = SummaryCache(engine.root)
    cache.load()
    engine.read_ahead(cache.uncached(keys), tail_bytes)
    previews: list[Any] = []
    posted, pause = time.monotonic(), FIRST_POST
    for done, key in enumerate(keys, 1):
        previews.extend(cache.preview(engine, key, tail_bytes))
        if done == len(keys) or time.monotonic() - posted >= pause:
            send(out, ("previews", previews, done))
            previews, posted, pause = [], time.monotonic(), POST
    send(out, ("settled", cache.settle(engine)))
    found, previewed = engine.handover()
    send(out, ("found", found, previewed, cache.cached()))
