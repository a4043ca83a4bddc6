"""The logging client: ``run = tui.init(...)``, ``run.log({...})`` (DESIGN.md §3).

Importing it loads neither textual, rich nor numpy. Each record is one line written with a
single ``os.write`` on a file opened with ``O_APPEND``, so a reader never sees half a record
and several processes (DataLoader workers, threads) can log into one run. Non-finite floats
are written as ``NaN``/``Infinity``/``-Infinity``, which tracktui reads back as numbers.

Under ``tracktui run`` the client attaches to the launcher's run (``$TRACKTUI_RUN_DIR``): it
logs into it and may add config and tags, but the launcher records pid, exit and status.
Started alone, the client creates the run and records those itself, truthfully:

- a normal end or ``sys.exit(0)``: ``finished``, exit code 0;
- ``sys.exit(n)`` with n != 0: ``failed`` with exit code n (a non-integer message: 1);
- an uncaught exception: ``failed``, exit code 1;
- SIGTERM, SIGINT or SIGHUP: ``killed`` with the signal's number and name. A signal whose
  handler was the default is recorded, then re-sent with the default restored, so the
  process still dies of it (its exit status is the signal's); a handler of the script's
  own (or Python's ``KeyboardInterrupt``) is called as before and the run is recorded
  ``killed`` when the process ends. An ignored signal (``nohup``) stays ignored.

Limits: ``sys.exit`` is watched by wrapping it, so ``raise SystemExit(n)`` written out ends
as ``finished``, and a ``sys.exit(n)`` whose ``SystemExit`` the script catches still counts;
signal handlers can only be installed from the main thread; a main thread stuck inside C
code runs the SIGTERM handler (and dies) only when it returns to Python (SIGKILL always
works); ``os._exit`` records nothing (the run shows ``crashed``).
"""

from __future__ import annotations

import atexit
import json
import os
import re
import shutil
import signal
import sys
import threading
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from types import FrameType, TracebackType
from typing import Any, NoReturn

from tui.core.rundir import (
    DEFAULT_ROOT,
    METRICS,
    RUN_DIR_ENV,
    base_meta,
    default_name,
    make_run_dir,
    process_identity,
    read_run_json,
    update_run_json,
    write_json_atomic,
)
from tui.core.timefmt import utc_iso

__all__ = ["Run", "init"]


def _plain(value: Any) -> Any:
    """JSON fallback for array-likes (numpy, torch) without importing them."""
    tolist = getattr(value, "tolist", None)
    if callable(tolist):
        return tolist()
    item = getattr(value, "item", None)
    if callable(item):
        return item()
    raise TypeError(f"cannot log a value of type {type(value).__name__}")


class Run:
    """A run being logged to. Create it with :func:`init`.

    Attributes:
        dir: the run directory.
        attached: True when the run belongs to a ``tracktui run`` launcher.
    """

    def __init__(self, run_dir: Path, *, attached: bool) -> None:
        self.dir = run_dir
        self.attached = attached
        self._fd = os.open(run_dir / METRICS, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        self._pid = os.getpid()
        self._finished = False
        self._lock = threading.RLock()  # a signal handler may end the run mid-tag()
        self._tables: dict[str, dict[str, list[Any]]] = {}

    @property
    def finished(self) -> bool:
        """True once :meth:`finish` ran."""
        return self._finished

    def _write(self, record: Mapping[str, Any]) -> None:
        if self._finished:
            raise RuntimeError(f"run {self.dir} is finished; start a new one to log more")
        if "_time" not in record:
            record = {**record, "_time": utc_iso()}
        line = (json.dumps(record, default=_plain) + "\n").encode("utf-8")
        os.write(self._fd, line)  # one write per record: readers never see half a line

    def log(self, data: Mapping[str, Any], step: int | float | None = None) -> None:
        """Append one record. ``step`` becomes the record's ``step`` (its x value).

        Values may be numbers (NaN and infinities included), strings, lists, nested
        objects, or array-likes with ``tolist()`` (numpy, torch).
        """
        record = dict(data)
        if step is not None:
            record["step"] = step
        self._write(record)

    def log_confusion(
        self,
        name: str,
        matrix: Any,
        labels: Sequence[str] | None = None,
        step: int | float | None = None,
    ) -> None:
        """Log a confusion matrix (rows are actual classes, columns predicted).

        Without labels it is written as Valohai's header-row shape (class indices as the
        header); with labels as ``{"categories": labels, "values": matrix}``, which also
        accepts an (N+1)x(N+1) matrix whose last row and column count false positives and
        false negatives.
        """
        rows = [list(row) for row in _rows(matrix)]
        if labels is None:
            value: Any = [[str(i) for i in range(len(rows))], *rows]
        else:
            value = {"categories": [str(label) for label in labels], "values": rows}
        self.log({name: value}, step=step)

    def log_table(self, name: str, columns: Mapping[str, Sequence[Any]]) -> None:
        """Log a table of equal-length named columns (numeric columns chart as lines)."""
        lengths = {len(c) for c in columns.values()}
        if len(lengths) > 1:
            raise ValueError(f"table {name!r}: columns differ in length {sorted(lengths)}")
        self.log({name: {str(k): list(v) for k, v in columns.items()}})

    def log_list(self, name: str, values: Sequence[Any], step: int | float | None = None) -> None:
        """Log a list of numbers (Azure ML ``log_list``): a vector, shown as bars."""
        self.log({name: list(_rows(values))}, step=step)

    def log_row(self, name: str, step: int | float | None = None, **columns: Any) -> None:
        """Append one row to the table ``name`` (Azure ML ``log_row``).

        The table so far is logged whole each time, so the run view shows every row; a
        table with numeric columns is charted as lines. A row whose columns differ from
        the table's first row is refused.
        """
        with self._lock:
            table = self._tables.setdefault(name, {key: [] for key in columns})
            if set(columns) != set(table):
                raise ValueError(
                    f"table {name!r} has columns {sorted(table)}, not {sorted(columns)}"
                )
            for key, value in columns.items():
                table[key].append(value)
            self.log({name: {key: list(values) for key, values in table.items()}}, step=step)

    def log_image(
        self, name: str, path: str | os.PathLike[str], step: int | float | None = None
    ) -> Path:
        """Copy an image file into the run's ``media/`` and log its name at ``step``.

        The copy is named after ``name`` and the step (``media/<name>_step<N>.<ext>``), so
        images of every step are kept; the record ``{name: "media/..."}`` ties it to its
        step. Returns the copy's path.
        """
        source = Path(path)
        suffix = "".join(source.suffixes[-1:]).lower()
        stem = _file_name(name) + (f"_step{step:g}" if step is not None else "")
        target = self._copy(source, stem + suffix)
        self.log({name: f"media/{target.name}"}, step=step)
        return target

    def upload_file(self, path: str | os.PathLike[str], name: str | None = None) -> Path:
        """Copy any file into the run's ``media/`` (Azure ML ``upload_file``); returns the copy."""
        source = Path(path)
        return self._copy(source, _file_name(name) if name else source.name)

    def _copy(self, source: Path, file_name: str) -> Path:
        media = self.dir / MEDIA
        media.mkdir(exist_ok=True)
        target = media / file_name
        partial = media / f".{file_name}.partial"
        shutil.copyfile(source, partial)
        os.replace(partial, target)  # readers never list half a file
        return target

    def set_property(self, key: str, value: Any) -> None:
        """Record an immutable fact about the run (``properties`` in run.json).

        Unlike a tag, a property is set once: setting it again to another value raises
        ``ValueError`` (setting the same value again does nothing).
        """
        with self._lock:
            properties = _mapping(read_run_json(self.dir).get("properties"))
            if key in properties:
                if properties[key] != value:
                    raise ValueError(f"property {key!r} is already {properties[key]!r}")
                return
            update_run_json(self.dir, {"properties": {**properties, key: value}})

    def tag(self, key: str, value: Any) -> None:
        """Set a mutable label on the run (rewrites run.json atomically)."""
        with self._lock:
            tags = _mapping(read_run_json(self.dir).get("tags"))
            update_run_json(self.dir, {"tags": {**tags, key: value}})

    def finish(self, status: str | None = None, exit_code: int | None = None) -> None:
        """End the run: record ``ended_at`` and the status, and close the metrics file.

        Args:
            status: ``finished``, ``failed`` or ``killed``; by default ``finished``, or
                ``failed`` when ``exit_code`` is non-zero.
            exit_code: the process's exit code, if known.

        Attached to a launcher, only the file is closed: the launcher records the exit.
        Calling it again does nothing.
        """
        self._end(status, exit_code, None)

    def _end(self, status: str | None, exit_code: int | None, signum: int | None) -> None:
        # Re-entrant: a signal may arrive while this thread is inside tag() or finish().
        with self._lock:
            if self._finished:
                return
            self._finished = True
            os.close(self._fd)
            if self.attached or os.getpid() != self._pid:
                return
            if status is None:
                status = "failed" if exit_code else "finished"
            fields: dict[str, Any] = {"status": status, "ended_at": utc_iso()}
            if exit_code is not None:
                fields["exit_code"] = exit_code
            if signum is not None:
                fields["signal"] = signum
                fields["signal_name"] = _signal_name(signum)
            update_run_json(self.dir, fields)

    def _at_exit(self) -> None:
        if self._finished or os.getpid() != self._pid:
            return
        self._end(*_WATCH.outcome())

    def __enter__(self) -> Run:
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        if _WATCH.signum is not None or isinstance(error, KeyboardInterrupt):
            self._end("killed", None, _WATCH.signum or signal.SIGINT)
        elif isinstance(error, SystemExit):
            code = _exit_code(error.code)
            self._end(None, code, None)
        else:
            self._end("failed" if error is not None else "finished", None, None)


MEDIA = "media"
"""The run's folder of logged files (images, uploads)."""

_UNSAFE_NAME = re.compile(r"[^A-Za-z0-9._=-]+")


def _file_name(name: str) -> str:
    """A metric or file name made safe as one file name (no separators, no leading dot)."""
    cleaned = _UNSAFE_NAME.sub("_", name).strip("._") or "file"
    return cleaned[:120]


def _mapping(value: object) -> dict[str, Any]:
    return dict(value) if isinstance(value, dict) else {}


def _signal_name(signum: int) -> str:
    try:
        return signal.Signals(signum).name
    except ValueError:
        return f"SIG{signum}"


def _exit_code(status: object) -> int:
    """The exit status ``sys.exit(status)`` gives the process."""
    if status is None:
        return 0
    if isinstance(status, int):
        return status & 0xFF
    return 1  # a message: printed to stderr, exit status 1


_Handler = Callable[[int, FrameType | None], Any] | int | None

_WATCHED_SIGNALS = (signal.SIGTERM, signal.SIGINT, signal.SIGHUP)


class _ExitWatch:
    """How this process is ending, for the runs it started (one per process).

    Wraps ``sys.exit`` and ``sys.excepthook`` (chaining to what was there) and handles
    SIGTERM, SIGINT and SIGHUP (chaining to the previous handler) to learn the exit code,
    an uncaught exception or a signal before the interpreter exits.
    """

    def __init__(self) -> None:
        self.pid: int | None = None
        self.exit_status: int | None = None
        self.error: BaseException | None = None
        self.signum: int | None = None
        self.runs: list[Run] = []
        self.previous: dict[int, _Handler] = {}
        self._exit: Callable[..., NoReturn] = sys.exit
        self._excepthook = sys.excepthook

    def watch(self, run: Run) -> None:
        """Record ``run``'s end truthfully; installs the hooks on the first call in a process."""
        if self.pid != os.getpid():  # first run here, or a forked child: start afresh
            self.pid = os.getpid()
            self.exit_status, self.error, self.signum = None, None, None
            self.runs = []
            self._install()
        self.runs.append(run)

    def _install(self) -> None:
        if sys.exit is not self._on_exit:
            self._exit = sys.exit
            sys.exit = self._on_exit
        if sys.excepthook is not self._on_uncaught:
            self._excepthook = sys.excepthook
            sys.excepthook = self._on_uncaught
        if threading.current_thread() is not threading.main_thread():
            return  # Python installs signal handlers from the main thread only
        for signum in _WATCHED_SIGNALS:
            previous = signal.getsignal(signum)
            if previous == signal.SIG_IGN or previous is None or previous == self._on_signal:
                continue  # ignored on purpose (nohup), set outside Python, or ours already
            self.previous[signum] = previous
            signal.signal(signum, self._on_signal)

    def _on_exit(self, status: object = None) -> NoReturn:
        if os.getpid() == self.pid:
            self.exit_status = _exit_code(status)
        self._exit(status)

    def _on_uncaught(
        self, kind: type[BaseException], error: BaseException, tb: TracebackType | None
    ) -> None:
        if os.getpid() == self.pid:
            self.error = error
        self._excepthook(kind, error, tb)

    def _on_signal(self, signum: int, frame: FrameType | None) -> None:
        previous = self.previous.get(signum, signal.SIG_DFL)
        ours = os.getpid() == self.pid
        if ours:
            self.signum = signum
        if callable(previous):
            previous(signum, frame)  # the script's own handler, or KeyboardInterrupt
            return
        # The default action would end the process without atexit: record the end now,
        # then let the signal do what it would have done, exit status included.
        if ours:
            for run in self.runs:
                run._end("killed", None, signum)
        signal.signal(signum, signal.SIG_DFL)
        os.kill(os.getpid(), signum)

    def outcome(self) -> tuple[str, int | None, int | None]:
        """``(status, exit_code, signal)`` of the process as it exits."""
        error = self.error if self.error is not None else getattr(sys, "last_value", None)
        if self.signum is not None:
            return "killed", None, self.signum
        if isinstance(error, KeyboardInterrupt):
            return "killed", None, signal.SIGINT
        if error is not None:
            return "failed", 1, None
        code = self.exit_status or 0
        return ("failed" if code else "finished"), code, None


_WATCH = _ExitWatch()


def _rows(matrix: Any) -> list[Any]:
    if hasattr(matrix, "tolist"):
        matrix = matrix.tolist()
    return list(matrix)


def init(
    root: str | Path | None = None,
    name: str | None = None,
    config: Mapping[str, Any] | None = None,
    tags: Mapping[str, Any] | None = None,
) -> Run:
    """Start a run, or attach to the one ``tracktui run`` made for this process.

    Args:
        root: where to create the run directory (default ``./runs``); ignored when
            ``$TRACKTUI_RUN_DIR`` names an existing directory.
        name: the run's name and directory (``<script>-<time>-<hex>`` by default); ignored
            when attaching (the launcher named the run).
        config: hyperparameters, merged into run.json's ``config``.
        tags: labels, merged into run.json's ``tags``.

    Returns:
        The run. Use it as a context manager, or call :meth:`Run.finish`; otherwise the
        run ends when the process does, recorded as the module docstring says
        (``finished``, ``failed`` with the exit code, or ``killed`` by a signal).
    """
    attached_dir = os.environ.get(RUN_DIR_ENV)
    if attached_dir and Path(attached_dir).is_dir():
        run_dir = Path(attached_dir)
        if config or tags:
            meta = read_run_json(run_dir)
            old_config = _mapping(meta.get("config"))
            old_tags = _mapping(meta.get("tags"))
            update_run_json(
                run_dir,
                {
                    "config": {**old_config, **(config or {})},
                    "tags": {**old_tags, **(tags or {})},
                },
            )
        run = Run(run_dir, attached=True)
    else:
        argv = list(getattr(sys, "orig_argv", None) or [sys.executable, *sys.argv])
        run_dir = make_run_dir(
            Path(root) if root is not None else DEFAULT_ROOT, name, default_name(argv)
        ).resolve()
        meta = base_meta(run_dir, name, argv, config, tags)
        meta.update(process_identity(os.getpid()))
        write_json_atomic(run_dir / "run.json", meta)
        run = Run(run_dir, attached=False)
        _WATCH.watch(run)
    atexit.register(run._at_exit)
    return run
