"""The logging client: ``run = tui.init(...)``, ``run.log({...})`` (DESIGN.md §3).

Importing it loads neither textual, rich nor numpy. Each record is one line written with a
single ``os.write`` on a file opened with ``O_APPEND``, so a reader never sees half a record
and several processes (DataLoader workers, threads) can log into one run. Non-finite floats
are written as ``NaN``/``Infinity``/``-Infinity``, which tracktui reads back as numbers.

Under ``tracktui run`` the client attaches to the launcher's run (``$TRACKTUI_RUN_DIR``): it
logs into it and may add config and tags, but the launcher records pid, exit and status.
Started alone, the client creates the run and records those itself.
"""

from __future__ import annotations

import atexit
import json
import os
import sys
import threading
from collections.abc import Mapping, Sequence
from pathlib import Path
from types import TracebackType
from typing import Any

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
        self._lock = threading.Lock()

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

    def tag(self, key: str, value: Any) -> None:
        """Set a mutable label on the run (rewrites run.json atomically)."""
        with self._lock:
            meta = read_run_json(self.dir)
            tags = meta.get("tags") if isinstance(meta.get("tags"), dict) else {}
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
            update_run_json(self.dir, fields)

    def _at_exit(self) -> None:
        if self._finished or os.getpid() != self._pid:
            return
        # Set by the interpreter when an uncaught exception ended the script.
        error = getattr(sys, "last_value", None)
        if isinstance(error, KeyboardInterrupt):
            self._finish_killed()
        else:
            self.finish("failed" if error is not None else "finished")

    def _finish_killed(self) -> None:
        self.finish("killed")
        if not self.attached:
            update_run_json(self.dir, {"signal": 2, "signal_name": "SIGINT"})

    def __enter__(self) -> Run:
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        if isinstance(error, KeyboardInterrupt):
            self._finish_killed()
        else:
            self.finish("failed" if error is not None else "finished")


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
        run is finished when the interpreter exits (``failed`` after an uncaught
        exception).
    """
    attached_dir = os.environ.get(RUN_DIR_ENV)
    if attached_dir and Path(attached_dir).is_dir():
        run_dir = Path(attached_dir)
        if config or tags:
            meta = read_run_json(run_dir)
            old_config = meta.get("config") if isinstance(meta.get("config"), dict) else {}
            old_tags = meta.get("tags") if isinstance(meta.get("tags"), dict) else {}
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
    atexit.register(run._at_exit)
    return run
