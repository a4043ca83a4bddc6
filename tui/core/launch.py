"""Run a command as a tracked run (DESIGN.md §3): the supervisor behind ``tracktui run``.

The command starts in its own session (so a kill can take its whole tree and Ctrl-C reaches
it only through us). Its stdout and stderr are copied byte for byte to ``output.log`` and to
our own terminal (whose copy waits in memory while the terminal is not reading, so the
command never does), and every JSON-object line on stdout becomes a record of ``metrics.jsonl``
stamped with ``_time`` (Valohai's convention: an unmodified Valohai-style script works as
is). When the command ends, ``run.json`` gets ``ended_at``, the exit code or signal, and the
final status. While it runs, a thread samples its process tree (CPU, memory, IO, GPU) into
``system.jsonl`` every few seconds (:mod:`tui.core.gpu.sampler`).
"""

from __future__ import annotations

import fcntl
import json
import os
import select
import signal
import subprocess
import sys
import termios
import threading
import time
from collections import deque
from collections.abc import Callable
from pathlib import Path
from typing import Any, TextIO

from tui.core.gpu.nvml import NvmlProvider
from tui.core.gpu.sampler import SYSTEM, SYSTEM_INTERVAL, SystemRecorder
from tui.core.rundir import METRICS, OUTPUT, RUN_DIR_ENV, process_identity, update_run_json
from tui.core.timefmt import utc_iso

_CHUNK = 65536
_MAX_RECORD = 16 * 1024 * 1024  # a longer stdout "line" is kept in output.log only
_PARTIAL_LINE_WAIT = 0.2  # seconds a partial line waits for its end before it is logged
_ECHO_HELD = 8 * 1024 * 1024
"""Bytes of output held for a terminal that is not reading (Ctrl-S, a stalled SSH link, a
paused pager) while the command goes on; past that, the oldest are left out of the terminal
(output.log has every byte)."""
_DRAIN_WAIT = 3.0  # seconds a drained pipe may stay open after the command exits
_DRAIN_MOST = 60.0  # seconds the pumps may take to copy what the command left in its pipes
_FORWARDED = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)


def _write_all(fd: int, data: bytes | bytearray | memoryview) -> None:
    view = memoryview(data)
    while view:
        written = os.write(fd, view)
        view = view[written:]


def json_record(line: bytes) -> bytes | None:
    """The metrics.jsonl line for one stdout line, or ``None`` when it is no JSON object.

    The child's own bytes are kept (NaN tokens, number spelling and key order survive);
    ``"_time"`` is spliced in first when the object lacks it.
    """
    text = line.strip()
    if not text.startswith(b"{") or not text.endswith(b"}"):
        return None
    try:
        value = json.loads(text)
    except (ValueError, RecursionError):
        return None
    if not isinstance(value, dict):
        return None
    if "_time" in value:
        return text + b"\n"
    stamp = b'{"_time": "' + utc_iso().encode() + b'"'
    rest = text[1:].lstrip()
    return stamp + (b"}" if rest == b"}" else b", " + rest) + b"\n"


class _Sink:
    """An fd we copy to; after a write error (disk full, terminal gone) it drops data.

    The pipes must keep draining whatever happens here, or the command would block on a
    full pipe: a logging problem must never stall the run.
    """

    def __init__(self, fd: int | None, what: str, warn: bool) -> None:
        self.fd = fd
        self.what = what
        self.warn = warn

    def write(self, data: bytes | bytearray) -> None:
        if self.fd is None:
            return
        try:
            _write_all(self.fd, data)
        except OSError as error:
            self.fd = None
            if self.warn:
                try:
                    os.write(2, f"tracktui run: {self.what}: {error}; not logging it\n".encode())
                except OSError:
                    pass


class _Echo(threading.Thread):
    """Copies output to a terminal in a thread of its own: a terminal that stops reading
    holds back neither the pump nor, through a full pipe, the command (training stopped
    while an SSH link stalled). Up to ``_ECHO_HELD`` bytes wait for it; past that the oldest
    are dropped from the terminal, which is told how many when it reads again."""

    def __init__(self, fd: int | None, what: str) -> None:
        super().__init__(daemon=True, name=f"echo {what}")
        self.sink = _Sink(fd, what, warn=False)
        self._held: deque[bytes] = deque()
        self._size = 0
        self._dropped = 0
        self._writing = False
        self._ended = False
        self._news = threading.Condition()

    def write(self, data: bytes) -> None:
        """Hold ``data`` for the terminal; never waits for it."""
        if self.sink.fd is None:
            return
        with self._news:
            self._held.append(data)
            self._size += len(data)
            while self._size > _ECHO_HELD and len(self._held) > 1:
                oldest = self._held.popleft()
                self._size -= len(oldest)
                self._dropped += len(oldest)
            self._news.notify()

    def behind(self) -> bool:
        """Whether output waits for the terminal."""
        with self._news:
            return bool(self._held) or self._writing

    def end(self) -> None:
        """No more output: what is held is written, then the thread ends."""
        with self._news:
            self._ended = True
            self._news.notify()

    def run(self) -> None:
        while True:
            with self._news:
                while not self._held and not self._ended:
                    self._news.wait()
                if not self._held:
                    return
                held, dropped = b"".join(self._held), self._dropped
                self._held.clear()
                self._size = self._dropped = 0
                self._writing = True
            if dropped:
                self.sink.write(
                    f"\n[tracktui run: {dropped:,} bytes of output not shown while the terminal"
                    " was not reading; output.log has them]\n".encode()
                )
            self.sink.write(held)
            with self._news:
                self._writing = False


class _Pump(threading.Thread):
    """Copies one pipe to output.log and a terminal fd; on stdout, also to metrics.jsonl."""

    def __init__(
        self, source: int, log: _Sink, echo: _Echo, on_line: Callable[[bytes], None] | None
    ) -> None:
        super().__init__(daemon=True)
        self.source = source
        self.log = log
        self.echo = echo
        self.on_line = on_line
        self._lock = threading.Lock()
        self._closed = False
        self._busy = False  # a chunk read and not yet copied everywhere

    def behind(self) -> bool:
        """Whether bytes the command wrote are still to be copied: unread in the pipe, or
        read and not yet written (a terminal that does not take them, a full disk)."""
        if self.echo.behind():
            return True
        with self._lock:
            if self._closed:
                return False
            if self._busy:
                return True
            try:
                unread = bytearray(4)
                fcntl.ioctl(self.source, termios.FIONREAD, unread)
            except OSError:
                return False
            return int.from_bytes(unread, sys.byteorder) > 0

    def run(self) -> None:
        if self.echo.sink.fd is not None:
            self.echo.start()
        pending = bytearray()
        unlogged = bytearray()
        skipping = False
        poller = select.poll()
        poller.register(self.source, select.POLLIN)
        while True:
            # output.log gets whole lines, so stdout and stderr interleave by line there;
            # a partial line (a progress bar) is written once the stream pauses.
            if unlogged and not poller.poll(_PARTIAL_LINE_WAIT * 1000):
                self.log.write(unlogged)
                unlogged.clear()
            try:
                chunk = os.read(self.source, _CHUNK)
            except OSError:
                break
            if not chunk:
                break
            self._busy = True
            unlogged += chunk
            cut = unlogged.rfind(b"\n") + 1
            if len(unlogged) > _CHUNK:
                cut = len(unlogged)
            if cut:
                self.log.write(unlogged[:cut])
                del unlogged[:cut]
            if self.on_line is not None:
                # The run's own files first: a terminal that stops taking output (Ctrl-S,
                # a paused pager) must not hold back its records.
                pending += chunk
                while True:
                    cut = pending.find(b"\n")
                    if cut < 0:
                        break
                    if not skipping:
                        self.on_line(bytes(pending[:cut]))
                    skipping = False
                    del pending[: cut + 1]
                if len(pending) > _MAX_RECORD:
                    pending.clear()
                    skipping = True
            self.echo.write(chunk)
            self._busy = False
        if unlogged:
            self.log.write(unlogged)
        if pending and not skipping and self.on_line is not None:
            self.on_line(bytes(pending))
        with self._lock:
            self._closed = True
            os.close(self.source)
        self.echo.end()
        if self.echo.is_alive():
            self.echo.join()  # the pump stays alive (and waited for) until the terminal has it


def _drain(pumps: list[_Pump]) -> None:
    """Wait for the pumps to copy what the command left in its pipes.

    They may take as long as a pipe still holds its bytes (up to ``_DRAIN_MOST``: a loaded
    machine, a stalled terminal); once nothing is left to copy, a pipe that stays open (a
    process that outlived the command holds it) is left after ``_DRAIN_WAIT``.
    """
    start = quiet_since = time.monotonic()
    while True:
        alive = [pump for pump in pumps if pump.is_alive()]
        now = time.monotonic()
        if not alive or now - start >= _DRAIN_MOST:
            return
        if any(pump.behind() for pump in alive):
            quiet_since = now
        elif now - quiet_since >= _DRAIN_WAIT:
            return
        alive[0].join(0.02)


def _echo_fd(stream: TextIO, default: int) -> int | None:
    try:
        stream.flush()
        return int(stream.fileno())
    except (AttributeError, OSError, ValueError):
        return default


def _outcome(returncode: int, forwarded: int | None) -> dict[str, Any]:
    """The run.json fields that say how the command ended."""
    if returncode < 0:
        number = -returncode
    elif forwarded is not None and returncode == 128 + forwarded:
        # The command caught our forwarded signal and exited the shell way (bash does).
        number = forwarded
    else:
        return {"status": "finished" if returncode == 0 else "failed", "exit_code": returncode}
    try:
        name = signal.Signals(number).name
    except ValueError:
        name = f"SIG{number}"
    return {"status": "killed", "signal": number, "signal_name": name}


def supervise(
    run_dir: Path, command: list[str], echo: bool = True, system_interval: float = SYSTEM_INTERVAL
) -> int:
    """Run ``command`` as the run in ``run_dir`` (its run.json written) until it ends.

    With ``echo`` off its output goes to output.log only (a batch job's own output file
    would just repeat it). ``system_interval``: seconds between two samples of the process
    tree in ``system.jsonl`` (0: none). Returns its exit code, or 128+N after signal N (the
    shell's convention).
    """
    env = {**os.environ, RUN_DIR_ENV: str(run_dir), "PYTHONUNBUFFERED": "1"}
    log_fd = os.open(run_dir / OUTPUT, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    metrics_fd = os.open(run_dir / METRICS, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        return _run_child(run_dir, command, env, log_fd, metrics_fd, echo, system_interval)
    finally:
        os.close(log_fd)
        os.close(metrics_fd)


def _run_child(
    run_dir: Path,
    command: list[str],
    env: dict[str, str],
    log_fd: int,
    metrics_fd: int,
    echo: bool,
    system_interval: float,
) -> int:
    try:
        child = subprocess.Popen(
            command,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            env=env,
            start_new_session=True,
        )
    except OSError as error:
        code = 127 if isinstance(error, FileNotFoundError) else 126
        print(f"tracktui run: cannot start {command[0]!r}: {error}", file=sys.stderr)
        update_run_json(run_dir, {"status": "failed", "ended_at": utc_iso(), "exit_code": code})
        return code
    identity = process_identity(child.pid)
    update_run_json(run_dir, identity)
    recorder = None
    if system_interval > 0:
        created = identity.get("pid_create_time")
        recorder = SystemRecorder(
            run_dir / SYSTEM, child.pid, created, system_interval, NvmlProvider
        )
        recorder.start()
    assert child.stdout is not None and child.stderr is not None

    metrics = _Sink(metrics_fd, METRICS, warn=True)

    def record(line: bytes) -> None:
        data = json_record(line)
        if data is not None:
            metrics.write(data)  # one write per record: readers never see half of one

    pumps = [
        _Pump(
            os.dup(child.stdout.fileno()),
            _Sink(log_fd, OUTPUT, warn=True),
            _Echo(_echo_fd(sys.stdout, 1) if echo else None, "stdout"),
            record,
        ),
        _Pump(
            os.dup(child.stderr.fileno()),
            _Sink(log_fd, OUTPUT, warn=True),
            _Echo(_echo_fd(sys.stderr, 2) if echo else None, "stderr"),
            None,
        ),
    ]
    child.stdout.close()
    child.stderr.close()
    for pump in pumps:
        pump.start()

    forwarded: list[int] = []

    def forward(signum: int, _frame: object) -> None:
        forwarded.append(signum)
        try:
            # The group outlives a reaped leader only while its members live, so its id
            # cannot name anyone else's processes.
            os.killpg(child.pid, signum)
        except (ProcessLookupError, PermissionError):
            pass

    previous: dict[int, Any] = {}
    if threading.current_thread() is threading.main_thread():
        for signum in _FORWARDED:
            handler = signal.getsignal(signum)
            if signum == signal.SIGHUP and handler == signal.SIG_IGN:
                continue  # started under nohup: keep ignoring hangups
            previous[signum] = handler
            signal.signal(signum, forward)
    try:
        returncode = child.wait()
        if recorder is not None:
            recorder.stop()
        _drain(pumps)
    finally:
        for number, handler in previous.items():
            signal.signal(number, handler)
    outcome = _outcome(returncode, forwarded[-1] if forwarded else None)
    update_run_json(run_dir, {"ended_at": utc_iso(), **outcome})
    if outcome["status"] == "killed":
        return 128 + int(outcome["signal"])
    return int(outcome["exit_code"])
