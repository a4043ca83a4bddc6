"""Gymnos executions: ``executions/<HH-MM-SS__DD-MM-YYYY>/`` with metrics.json and friends.

``metrics.json`` (written when the execution ends) holds ``metrics`` (name -> list of
values, one per epoch; test metrics are one value) and ``elapsed`` (seconds per training
stage). Lists are aligned on their last element, so a single ``test_loss`` sits at the
final epoch. ``elapsed`` becomes a bar chart and ``properties["elapsed"]``;
``training_config.json`` is the config; ``execution.log`` is the log, followed as it
grows; every other file (model, ``callbacks/model_checkpoint/*``) is listed as media.
"""

from __future__ import annotations

import re
from datetime import datetime
from pathlib import Path
from typing import Any

from tui.core.formats.base import READ_BUDGET, Adapter, Claim, Source, written_at
from tui.core.formats.documents import load_file
from tui.core.formats.files import list_files, newest_mtime, relative, stamp
from tui.core.formats.meta import finish_meta
from tui.core.formats.native import log_lines
from tui.core.records import RecordBuilder
from tui.core.sanitize import decode, sanitize
from tui.core.shapes import is_number
from tui.core.store import Batch
from tui.core.tail import FileTail
from tui.core.timefmt import as_utc_iso

METRICS = "metrics.json"
CONFIG = "training_config.json"
LOG = "execution.log"
TIMESTAMP = "%H-%M-%S__%d-%m-%Y"
"""How Gymnos names an execution directory (local time)."""

_OWN = frozenset({METRICS, CONFIG, LOG})
_ERROR = re.compile(rb" - (?:ERROR|CRITICAL) - |Traceback \(most recent call last\)")


def started_at(name: str) -> str | None:
    """The start time encoded in an execution directory's name, as ISO text."""
    try:
        moment = datetime.strptime(name, TIMESTAMP)
    except ValueError:
        return None
    return as_utc_iso(moment.timestamp())


def metric_records(metrics: dict[str, Any]) -> list[dict[str, Any]]:
    """One record per epoch from Gymnos's metric lists, aligned on their last element."""
    series: dict[str, list[Any]] = {}
    values = metrics.get("metrics")
    if isinstance(values, dict):
        for name, items in values.items():
            if isinstance(items, list):
                series[str(name)] = items
            elif is_number(items):
                series[str(name)] = [items]
    length = max((len(v) for v in series.values()), default=0)
    records: list[dict[str, Any]] = [{"epoch": i} for i in range(length)]
    for name, items in series.items():
        offset = length - len(items)
        for i, item in enumerate(items):
            if is_number(item):
                records[offset + i][name] = float(item)
    elapsed = elapsed_of(metrics)
    if elapsed:
        if not records:
            records.append({"epoch": 0})
        records[-1]["elapsed"] = {"x": list(elapsed), "y": list(elapsed.values())}
    return records


def elapsed_of(metrics: dict[str, Any]) -> dict[str, float]:
    """Seconds per training stage from ``metrics.json``."""
    elapsed = metrics.get("elapsed")
    if not isinstance(elapsed, dict):
        return {}
    return {str(k): float(raw) for k, raw in elapsed.items() if is_number(raw)}


class GymnosSource(Source):
    """One Gymnos execution directory."""

    format = "gymnos"

    def __init__(self, root: Path, key: str, directory: Path, group: str | None) -> None:
        super().__init__(root, key, directory)
        self.group = group
        self.log = FileTail(directory / LOG, root)
        self._config_stamp: tuple[int, int, int] | None = None
        self._metrics_stamp: tuple[int, int, int] | None = None
        self._config: dict[str, Any] | None = None
        self._metrics: dict[str, Any] | None = None
        self._sent_records = False
        self._error: str | None = None
        self._media: tuple[str, ...] | None = None
        self._meta: dict[str, Any] | None = None

    def watched_files(self) -> list[Path]:
        return [self.directory / METRICS, self.directory / CONFIG, self.directory / LOG]

    def close(self) -> None:
        self.log.close()

    def _load(self, name: str, notes: list[str]) -> tuple[bool, dict[str, Any] | None]:
        """``(changed, value)`` for one JSON file, re-read only when its stamp moved."""
        path = self.directory / name
        current = stamp(path)
        attribute = "_metrics_stamp" if name == METRICS else "_config_stamp"
        if current == getattr(self, attribute):
            return False, None
        setattr(self, attribute, current)
        value, error = load_file(path, self.root, "json")
        if error is not None:
            notes.append(f"{error}; keeping what was read before")
            return False, None
        if value is None:
            return False, None
        if not isinstance(value, dict):
            notes.append(f"{name} is not a JSON object")
            return False, None
        return True, value

    def _build_meta(self) -> dict[str, Any]:
        config = self._config or {}
        experiment = config.get("experiment")
        properties: dict[str, Any] = {"execution": self.directory.name}
        metrics = self._metrics
        if metrics is not None:
            elapsed = elapsed_of(metrics)
            if elapsed:
                properties["elapsed"] = elapsed
                properties["elapsed_total"] = sum(elapsed.values())
            for key, value in metrics.items():
                if key not in ("metrics", "elapsed"):
                    properties[str(key)] = value
        if self._media:
            properties["files"] = list(self._media)
        status = "finished" if metrics is not None else "failed" if self._error else "running"
        return finish_meta(
            {
                "name": self.directory.name,
                "status": status,
                "config": config,
                "properties": properties,
                "experiment": experiment.get("name") if isinstance(experiment, dict) else None,
                "started_at": started_at(self.directory.name),
                "created_at": started_at(self.directory.name),
                "ended_at": as_utc_iso(newest_mtime([self.directory / METRICS]))
                if metrics
                else None,
                "error": self._error if status == "failed" else None,
            }
        )

    def read(self, budget: int = READ_BUDGET) -> Batch | None:
        notes: list[str] = []
        changed, config = self._load(CONFIG, notes)
        if changed:
            self._config = config
        replace = False
        block = None
        changed, metrics = self._load(METRICS, notes)
        if changed and metrics is not None:
            self._metrics = metrics
            builder = RecordBuilder(0, written_at(self.directory / METRICS))
            builder.add_records(metric_records(metrics))
            block = builder.build()
            if self._sent_records:
                # A rewritten metrics.json replaces the series; replacing also clears the
                # log, so it is read again from the start below.
                replace = True
                self.log.close()
                self.log = FileTail(self.directory / LOG, self.root)
            self._sent_records = True
        logs = self.log.read(budget)
        self.more = logs.more
        notes.extend(logs.notes)
        for line in logs.lines:
            if _ERROR.search(line):
                self._error = decode(line.rstrip(b"\r"), 500)
        media = tuple(
            sanitize(name, 300) for name, _, _ in list_files(self.directory) if name not in _OWN
        )
        media_changed = media != self._media
        self._media = media
        meta: dict[str, Any] | None = self._build_meta()
        if meta == self._meta:
            meta = None
        else:
            self._meta = meta
        if block is None and meta is None and not logs and not notes and not media_changed:
            return None
        return self.batch(
            records=block,
            replace=replace,
            meta=meta,
            log=log_lines(logs.lines),
            notes=tuple(sanitize(n, 300) for n in notes),
            mtime=newest_mtime(self.watched_files()),
            media=media if media_changed else None,
            group=self.group,
        )


class GymnosAdapter(Adapter):
    """Claims Gymnos execution directories."""

    format = "gymnos"

    def discover(self, root: Path, directory: Path, names: list[str]) -> Claim | None:
        if "metrics.jsonl" in names or "run.json" in names:
            return None
        found = _OWN.intersection(names)
        if len(found) < 2:
            return None
        parent = directory.parent
        group_dir = parent.parent if parent.name == "executions" else parent
        group = relative(group_dir, root) if group_dir.is_relative_to(root) else None
        source = GymnosSource(root, relative(directory, root), directory, group)
        return Claim(sources=[source], prune=True)
