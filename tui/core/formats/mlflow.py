"""MLflow: the ``mlruns/`` file store and the SQLite store (``mlflow.db``), read only.

File store: ``<store>/<experiment id>/meta.yaml`` names an experiment;
``<store>/<experiment id>/<run id>/`` holds ``meta.yaml`` (name, status 1-5, times),
``params/<key>``, ``tags/<key>`` (one value per file; keys with ``/`` are nested folders)
and ``metrics/<key>``, an appended history of ``<timestamp ms> <value> <step>`` lines read
from a byte offset per file. Artifacts under ``artifacts/`` are listed as media.

SQLite store: tables ``runs``, ``experiments``, ``params``, ``tags`` and ``metrics``
(``key, value, timestamp, step, is_nan`` per row). The database is opened read-only
(``file:...?mode=ro``, ``query_only``) with a short busy timeout, one connection per file
and process; each run remembers the last metrics ``rowid`` it has seen, so a read costs
an indexed range scan. A locked database is retried at the next check, never waited on.

Both stores: params become the config (numeric text as numbers), user tags stay tags,
``mlflow.*`` system tags are properties, metric points logged together (same timestamp and
step) share one record. NaN is stored by the SQLite store as ``is_nan``; infinities as
the largest double, read back as infinities. Deleted runs still show, with
``properties["lifecycle_stage"] == "deleted"``.
"""

from __future__ import annotations

import math
import os
import re
import sqlite3
import threading
from pathlib import Path
from typing import Any
from urllib.parse import quote

from tui.core.formats.base import READ_BUDGET, Adapter, Claim, Source, now
from tui.core.formats.documents import load_file
from tui.core.formats.files import list_files, newest_mtime, read_small, relative, stamp
from tui.core.formats.meta import finish_meta
from tui.core.records import RecordBuilder
from tui.core.sanitize import sanitize
from tui.core.status import RunStatus
from tui.core.store import Batch
from tui.core.tail import FileTail, UnsafeFile, open_regular
from tui.core.timefmt import as_utc_iso
from tui.core.values import real_number

DB_NAMES = ("mlflow.db", "mlruns.db")
"""File names of an MLflow SQLite store (``mlflow.db`` is MLflow's default)."""

BUSY_TIMEOUT = 0.25
"""Seconds to wait for a writer's lock before giving up until the next check."""

RUN_STATUS: dict[object, RunStatus] = {
    1: "running",
    2: "pending",
    3: "finished",
    4: "failed",
    5: "killed",
    "RUNNING": "running",
    "SCHEDULED": "pending",
    "FINISHED": "finished",
    "FAILED": "failed",
    "KILLED": "killed",
}
"""MLflow run states (numbers in the file store, names in the database) as statuses."""

_MAX_DOUBLE = 1.7976931348623157e308
_RUN_ID = re.compile(r"[0-9a-f]{32}")
_KV_LIMIT = 5000
_VALUE_LIMIT = 64 * 1024
_COLLIDING = frozenset({"step", "_time"})


def status_of(value: object) -> RunStatus:
    """The tracktui status for an MLflow run state (number or name)."""
    if isinstance(value, str) and value.isdigit():
        value = int(value)
    return RUN_STATUS.get(value, "unknown")


def ms_iso(value: object) -> str | None:
    """ISO text for MLflow's epoch milliseconds (zero or less: not recorded)."""
    milliseconds = real_number(value)
    if milliseconds is None or milliseconds <= 0:
        return None
    return as_utc_iso(milliseconds / 1000.0)


def scalar_text(text: str) -> int | float | str:
    """Params stored as text: integers and floats become numbers, the rest stays text."""
    stripped = text.strip()
    try:
        return int(stripped)
    except ValueError:
        pass
    try:
        value = float(stripped)
    except ValueError:
        return text
    # "nan"/"inf" spelled as a parameter are names more often than numbers.
    return value if math.isfinite(value) else text


def merge_points(points: list[tuple[float, float, str, float]]) -> list[dict[str, Any]]:
    """Records from ``(timestamp ms, step, key, value)`` points, in time order.

    Consecutive points with the same timestamp and step (``log_metrics`` of a dict) share
    one record, so a run's record table stays as small as what was logged.
    """
    points.sort(key=lambda p: (p[0], p[1]))
    records: list[dict[str, Any]] = []
    current: dict[str, Any] | None = None
    at: tuple[float, float] | None = None
    for timestamp, step, key, value in points:
        name = f"metric/{key}" if key in _COLLIDING else key
        if current is not None and at == (timestamp, step) and name not in current:
            current[name] = value
            continue
        current = {"step": step, "_time": timestamp / 1000.0, name: value}
        at = (timestamp, step)
        records.append(current)
    return records


def run_meta(
    info: dict[str, Any], params: dict[str, str], tags: dict[str, str], experiment: str | None
) -> dict[str, Any]:
    """Run metadata from MLflow's run info, params and tags (shared by both stores)."""
    run_id = str(info.get("run_id") or "")
    status = status_of(info.get("status"))
    user_tags = {k: v for k, v in tags.items() if not k.startswith("mlflow.")}
    properties: dict[str, Any] = {
        "run_id": run_id,
        "experiment_id": info.get("experiment_id"),
        "user": info.get("user_id") or tags.get("mlflow.user"),
        "lifecycle_stage": info.get("lifecycle_stage"),
        "artifact_uri": info.get("artifact_uri"),
    }
    properties.update({k: v for k, v in tags.items() if k.startswith("mlflow.")})
    started = ms_iso(info.get("start_time"))
    return finish_meta(
        {
            "name": info.get("run_name") or tags.get("mlflow.runName") or run_id[:8],
            "status": status,
            "config": {k: scalar_text(v) for k, v in params.items()},
            "tags": user_tags,
            "properties": {k: v for k, v in properties.items() if v not in (None, "")},
            "experiment": experiment,
            "created_at": started,
            "started_at": started,
            "ended_at": (
                ms_iso(info.get("end_time")) if status in ("finished", "failed", "killed") else None
            ),
        }
    )


# File store ------------------------------------------------------------------------------
def parse_metric_line(line: bytes) -> tuple[float, float, float] | str:
    """``(timestamp ms, value, step)`` from one metric history line, or the reason it is bad."""
    parts = line.split()
    if len(parts) not in (2, 3):
        return f"expected 'timestamp value step', got {len(parts)} fields"
    try:
        timestamp = float(parts[0])
        value = float(parts[1])
        step = float(parts[2]) if len(parts) == 3 else 0.0
    except ValueError:
        return "not a number"
    return timestamp, value, step


class MlflowFileSource(Source):
    """One run of an MLflow file store."""

    format = "mlflow"

    def __init__(self, root: Path, key: str, directory: Path) -> None:
        super().__init__(root, key, directory)
        self._info: dict[str, Any] = {}
        self._info_stamp: tuple[int, int, int] | None = None
        self._experiment: str | None = None
        self._experiment_stamp: tuple[int, int, int] | None = None
        self._params: dict[str, str] = {}
        self._params_stamp: tuple[tuple[str, int, int], ...] | None = None
        self._tags: dict[str, str] = {}
        self._tags_stamp: tuple[tuple[str, int, int], ...] | None = None
        self._tails: dict[str, FileTail] = {}
        self._meta: dict[str, Any] | None = None
        self._media: tuple[str, ...] | None = None
        self._notes: set[str] = set()

    def watched_files(self) -> list[Path]:
        files = [self.directory / "meta.yaml"]
        files.extend(self.directory / name for name in ("params", "tags", "metrics"))
        files.extend(tail.path for tail in self._tails.values())
        files.extend({tail.path.parent for tail in self._tails.values()})
        return files

    def close(self) -> None:
        for tail in self._tails.values():
            tail.close()

    def _yaml(
        self, path: Path, known: tuple[int, int, int] | None, notes: list[str]
    ) -> tuple[bool, tuple[int, int, int] | None, dict[str, Any] | None]:
        current = stamp(path)
        if current == known:
            return False, known, None
        value, error = load_file(path, self.root, "yaml")
        if error is not None:
            notes.append(f"{error}; keeping what was read before")
            return False, current, None
        return isinstance(value, dict), current, value if isinstance(value, dict) else None

    def _values(
        self, folder: str, known: tuple[tuple[str, int, int], ...] | None
    ) -> tuple[tuple[tuple[str, int, int], ...], dict[str, str] | None]:
        """Read a params/ or tags/ folder when any file in it changed."""
        listing = tuple(list_files(self.directory / folder, limit=_KV_LIMIT, depth=8))
        if listing == known:
            return listing, None
        values: dict[str, str] = {}
        for name, _, _ in listing:
            data, _ = read_small(self.directory / folder / name, self.root, _VALUE_LIMIT)
            if data is not None:
                values[name] = sanitize(data.decode("utf-8", "replace"))
        return listing, values

    def _read_metrics(
        self, budget: int, bad: list[tuple[str, int, str]], notes: list[str]
    ) -> list[tuple[float, float, str, float]]:
        points: list[tuple[float, float, str, float]] = []
        metrics = self.directory / "metrics"
        for name, _, _ in list_files(metrics, limit=_KV_LIMIT, depth=8):
            if name not in self._tails:
                self._tails[name] = FileTail(metrics / name, self.root)
        remaining = budget
        for name, tail in self._tails.items():
            if remaining <= 0:
                self.more = True
                break
            before = tail.offset
            chunk = tail.read(remaining)
            tail.close()  # one descriptor per metric file would run out on large stores
            remaining -= max(tail.offset - before, 0)
            self.more = self.more or chunk.more
            notes.extend(chunk.notes)
            label = f"metrics/{name}"
            bad.extend((label, n, r) for n, r in chunk.skipped)
            key = sanitize(name, 200)
            for i, line in enumerate(chunk.lines):
                if not line.strip():
                    continue
                parsed = parse_metric_line(line)
                if isinstance(parsed, str):
                    bad.append((label, chunk.first_lineno + i, parsed))
                    continue
                timestamp, value, step = parsed
                points.append((timestamp, step, key, value))
        return points

    def _read_info(self, notes: list[str]) -> dict[str, Any]:
        """Re-read what changed of meta.yaml, the experiment's name, params and tags; the
        run's metadata from them."""
        changed, self._info_stamp, info = self._yaml(
            self.directory / "meta.yaml", self._info_stamp, notes
        )
        if changed and info is not None:
            self._info = info
        changed, self._experiment_stamp, experiment = self._yaml(
            self.directory.parent / "meta.yaml", self._experiment_stamp, notes
        )
        if changed and experiment is not None:
            self._experiment = str(experiment.get("name") or "") or None
        self._params_stamp, params = self._values("params", self._params_stamp)
        if params is not None:
            self._params = params
        self._tags_stamp, tags = self._values("tags", self._tags_stamp)
        if tags is not None:
            self._tags = tags
        info = dict(self._info)
        info.setdefault("run_id", self.directory.name)
        return run_meta(info, self._params, self._tags, self._experiment)

    def preview(self, tail_bytes: int = 65536) -> Batch | None:
        """The run listed with its status, params and tags (small files) before its metric
        files are read (one per metric, merged by step: no cheap end of the history)."""
        return self.listing(MlflowFileSource(self.root, self.key, self.directory)._read_info([]))

    def read(self, budget: int = READ_BUDGET) -> Batch | None:
        self.more = False
        notes: list[str] = []
        bad: list[tuple[str, int, str]] = []
        meta: dict[str, Any] | None = self._read_info(notes)
        points = self._read_metrics(budget, bad, notes)
        builder = RecordBuilder(0, now())
        builder.add_records(merge_points(points))
        block = builder.build()
        if meta == self._meta:
            meta = None
        else:
            self._meta = meta
        media = tuple(
            sanitize(name, 300) for name, _, _ in list_files(self.directory / "artifacts")
        )
        media_changed = media != self._media
        self._media = media
        fresh = [n for n in notes if n not in self._notes]
        self._notes = set(notes)
        if block is None and meta is None and not fresh and not bad and not media_changed:
            return None
        return self.batch(
            records=block,
            meta=meta,
            bad_lines=tuple(bad),
            notes=tuple(sanitize(n, 300) for n in fresh),
            mtime=newest_mtime(self.watched_files()),
            media=media if media_changed else None,
        )


def is_file_store(directory: Path, names: list[str]) -> bool:
    """True when ``directory`` is an MLflow file store (experiment folders with meta.yaml)."""
    if ".trash" not in names and directory.name != "mlruns":
        return False
    return any(name.isdigit() and (directory / name / "meta.yaml").exists() for name in names)


def file_store_runs(root: Path, store: Path, names: list[str]) -> list[Source]:
    """A source per run folder of every experiment in a file store."""
    sources: list[Source] = []
    for experiment in sorted(n for n in names if n.isdigit()):
        try:
            with os.scandir(store / experiment) as entries:
                runs = sorted(
                    e.name
                    for e in entries
                    if _RUN_ID.fullmatch(e.name) and e.is_dir(follow_symlinks=False)
                )
        except OSError:
            continue
        for run in runs:
            path = store / experiment / run
            sources.append(MlflowFileSource(root, relative(path, root), path))
    return sources


# SQLite store ----------------------------------------------------------------------------
class _Database:
    """One read-only connection to one store file, shared by its runs in this process."""

    def __init__(self, path: Path, identity: tuple[int, int]) -> None:
        uri = f"file:{quote(str(path))}?mode=ro"
        self.identity = identity
        self.lock = threading.Lock()
        self.conn = sqlite3.connect(
            uri, uri=True, timeout=BUSY_TIMEOUT, check_same_thread=False, isolation_level=None
        )
        try:
            self.conn.execute("PRAGMA query_only = 1")
            columns = {row[1] for row in self.conn.execute("PRAGMA table_info(metrics)")}
        except sqlite3.Error:
            self.conn.close()
            raise
        step = "step" if "step" in columns else "0"
        is_nan = "is_nan" if "is_nan" in columns else "0"
        self.metrics_sql = (
            f"SELECT rowid, key, value, timestamp, {step}, {is_nan} FROM metrics"
            " WHERE run_uuid = ? AND rowid > ? ORDER BY rowid LIMIT ?"
        )


_POOL: dict[str, _Database] = {}
_POOL_LOCK = threading.Lock()


def database(path: Path, root: Path) -> _Database:
    """The shared read-only connection to ``path`` (reopened when the file was replaced).

    Raises:
        sqlite3.Error, OSError, UnsafeFile: when the file cannot be opened as a database.
    """
    os.close(open_regular(path, root))  # refuse FIFOs and links out of ROOT before SQLite opens it
    info = os.stat(path)
    identity = (info.st_dev, info.st_ino)
    with _POOL_LOCK:
        db = _POOL.get(str(path))
        if db is not None and db.identity == identity:
            return db
        if db is not None:
            db.conn.close()
        db = _POOL[str(path)] = _Database(path, identity)
        return db


def forget(path: Path) -> None:
    """Close the shared connection to ``path`` (the next read reopens it)."""
    with _POOL_LOCK:
        db = _POOL.pop(str(path), None)
    if db is not None:
        with db.lock:
            db.conn.close()


def _problem(path: Path, exc: BaseException) -> tuple[str, bool]:
    """A note for a database error, and whether it is a lock worth retrying soon."""
    text = str(exc)
    if isinstance(exc, sqlite3.OperationalError) and ("locked" in text or "busy" in text):
        return f"{path.name} is locked by a writer; will retry", True
    return sanitize(f"{path.name} cannot be read as an MLflow database: {text}", 300), False


class MlflowSqliteSource(Source):
    """One run of an MLflow SQLite store."""

    format = "mlflow"

    def __init__(self, root: Path, key: str, db: Path, run_id: str) -> None:
        super().__init__(root, key, db.parent)
        self.db = db
        self.run_id = run_id
        self.rowid = 0
        self._retry = False
        self._error: str | None = None
        self._meta: dict[str, Any] | None = None

    @property
    def path(self) -> str:
        return relative(self.db, self.root)

    def watched_files(self) -> list[Path]:
        return [self.db, self.db.with_name(self.db.name + "-wal")]

    def changed(self) -> bool:
        changed = super().changed()
        if self._retry:
            self._retry = False
            return True
        return changed

    def close(self) -> None:
        forget(self.db)

    def _query(self, limit: int) -> tuple[Any, list[Any], list[Any], list[Any]]:
        db = database(self.db, self.root)
        with db.lock:
            conn = db.conn
            info = conn.execute(
                "SELECT r.name, r.status, r.start_time, r.end_time, r.lifecycle_stage,"
                " r.user_id, r.artifact_uri, r.experiment_id, e.name"
                " FROM runs r LEFT JOIN experiments e ON r.experiment_id = e.experiment_id"
                " WHERE r.run_uuid = ?",
                (self.run_id,),
            ).fetchone()
            params = conn.execute(
                "SELECT key, value FROM params WHERE run_uuid = ?", (self.run_id,)
            ).fetchall()
            tags = conn.execute(
                "SELECT key, value FROM tags WHERE run_uuid = ?", (self.run_id,)
            ).fetchall()
            rows = conn.execute(db.metrics_sql, (self.run_id, self.rowid, limit)).fetchall()
        return info, params, tags, rows

    def read(self, budget: int = READ_BUDGET) -> Batch | None:
        limit = max(1000, budget // 64)
        try:
            info, params, tags, rows = self._query(limit)
        except (sqlite3.Error, OSError, UnsafeFile) as exc:
            note, retry = _problem(self.db, exc)
            self._retry = retry
            self.more = False
            if not retry:
                forget(self.db)
            if note == self._error:
                return None
            self._error = note
            return self.batch(notes=(note,), mtime=newest_mtime(self.watched_files()))
        self._error = None
        self.more = len(rows) >= limit
        notes: list[str] = []
        if info is None:
            meta: dict[str, Any] | None = finish_meta(
                {
                    "name": self.run_id[:8],
                    "status": "unknown",
                    "properties": {"run_id": self.run_id},
                }
            )
            notes.append(f"run {self.run_id} is no longer in {self.db.name}")
        else:
            name, status, start, end, stage, user, artifacts, experiment_id, experiment = info
            meta = run_meta(
                {
                    "run_id": self.run_id,
                    "run_name": name,
                    "status": status,
                    "start_time": start,
                    "end_time": end,
                    "lifecycle_stage": stage,
                    "user_id": user,
                    "artifact_uri": artifacts,
                    "experiment_id": experiment_id,
                },
                {str(k): sanitize(str(v)) for k, v in params},
                {str(k): sanitize(str(v if v is not None else "")) for k, v in tags},
                experiment,
            )
        points: list[tuple[float, float, str, float]] = []
        for rowid, key, value, timestamp, step, is_nan in rows:
            self.rowid = max(self.rowid, rowid)
            if is_nan:
                value = float("nan")
            elif value >= _MAX_DOUBLE:
                value = float("inf")
            elif value <= -_MAX_DOUBLE:
                value = float("-inf")
            points.append(
                (float(timestamp or 0), float(step or 0), sanitize(str(key), 200), float(value))
            )
        builder = RecordBuilder(0, now())
        builder.add_records(merge_points(points))
        block = builder.build()
        if meta == self._meta:
            meta = None
        else:
            self._meta = meta
        if block is None and meta is None and not notes:
            return None
        return self.batch(
            records=block,
            meta=meta,
            notes=tuple(sanitize(n, 300) for n in notes),
            mtime=newest_mtime(self.watched_files()),
        )


class MlflowDbSource(Source):
    """Stands for a database whose runs could not be listed, to carry the reason."""

    format = "mlflow"

    def __init__(self, root: Path, key: str, db: Path) -> None:
        super().__init__(root, key, db.parent)
        self.db = db
        self._error: str | None = None
        self._announced = False

    @property
    def path(self) -> str:
        return relative(self.db, self.root)

    def watched_files(self) -> list[Path]:
        return [self.db, self.db.with_name(self.db.name + "-wal")]

    def read(self, budget: int = READ_BUDGET) -> Batch | None:
        note = None
        count = None
        try:
            db = database(self.db, self.root)
            with db.lock:
                count = db.conn.execute("SELECT COUNT(*) FROM runs").fetchone()[0]
        except (sqlite3.Error, OSError, UnsafeFile) as exc:
            note, retry = _problem(self.db, exc)
            if not retry:
                forget(self.db)
        meta = None
        if not self._announced or count is not None:
            self._announced = True
            meta = finish_meta(
                {
                    "name": self.db.name,
                    "status": "unknown",
                    "properties": {"store": self.path, "runs": count},
                }
            )
        notes = (note,) if note is not None and note != self._error else ()
        self._error = note
        if meta is None and not notes:
            return None
        return self.batch(meta=meta, notes=notes, mtime=newest_mtime(self.watched_files()))


class MlflowAdapter(Adapter):
    """Claims MLflow file stores (whole trees) and SQLite store files."""

    format = "mlflow"

    def __init__(self) -> None:
        self._listed: dict[Path, tuple[object, list[str]]] = {}

    def _runs(self, root: Path, path: Path) -> list[str] | None:
        """Run ids in a database, cached until the file changes; ``None`` when unreadable."""
        current = (stamp(path), stamp(path.with_name(path.name + "-wal")))
        known = self._listed.get(path)
        if known is not None and known[0] == current:
            return known[1]
        try:
            db = database(path, root)
            with db.lock:
                rows = db.conn.execute(
                    "SELECT run_uuid FROM runs ORDER BY start_time, run_uuid"
                ).fetchall()
        except (sqlite3.Error, OSError, UnsafeFile):
            return known[1] if known is not None else None
        ids = [str(row[0]) for row in rows]
        self._listed[path] = (current, ids)
        return ids

    def discover(self, root: Path, directory: Path, names: list[str]) -> Claim | None:
        if "metrics.jsonl" in names or "run.json" in names:
            return None
        if is_file_store(directory, names):
            return Claim(sources=file_store_runs(root, directory, names), prune=True)
        sources: list[Source] = []
        for name in names:
            if name not in DB_NAMES:
                continue
            path = directory / name
            rel = relative(path, root)
            ids = self._runs(root, path)
            if ids is None:
                sources.append(MlflowDbSource(root, rel, path))
            else:
                sources.extend(MlflowSqliteSource(root, f"{rel}#{i}", path, i) for i in ids)
        if not sources:
            return None
        # A database store keeps artifacts in ./mlruns or ./mlartifacts (no meta.yaml there).
        skip = {
            name
            for name in ("mlruns", "mlartifacts")
            if name in names and not any((directory / name).glob("*/meta.yaml"))
        }
        return Claim(sources=sources, skip=frozenset(skip))
