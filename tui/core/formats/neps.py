"""NePS (neural pipeline search): one run per evaluated config, plus one run for the search.

Two on-disk layouts are read:

* current: ``ROOT/configs/config_N/{config.yaml, report.yaml, metadata.json}`` (older
  releases of this layout keep the state in ``state.txt``), with ``summary/``,
  ``optimizer_info.yaml`` and ``optimizer_state.pkl`` beside ``configs/``;
* legacy: ``ROOT/results/config_N/{config.yaml, result.yaml, metadata.yaml}`` with
  ``best_loss_trajectory.txt`` and ``all_losses_and_configs.txt`` beside ``results/``.

Each config is a run keyed by its directory (``search/configs/config_3``) whose group is
the search directory. Its hyperparameters are the config; the objective
(``objective_to_minimize``, or ``loss`` in the legacy layout), ``cost`` and numeric
``extra`` values are one record at the end of its learning curve, which is a series
``learning_curve`` over its index. States map to statuses: pending/submitted -> pending,
evaluating -> running, success -> finished, failed/crashed -> failed.

The search itself is a run keyed by the search directory, in its own group: series
``loss`` (each evaluated config's objective, in order of evaluation end) and
``best_loss`` (the best so far), a text series ``best_config``; its config is the best
config's hyperparameters and its properties count configs per state. The trajectory is
computed from the configs, so both layouts (and searches still running) get one.

Config files are small and rewritten in place, so they are re-read whole whenever their
stamps change; new config directories are found by the next discovery walk.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tui.core.formats.base import READ_BUDGET, Adapter, Claim, Source, now
from tui.core.formats.documents import load_file
from tui.core.formats.files import newest_mtime, relative, stamp
from tui.core.formats.meta import finish_meta
from tui.core.records import RecordBuilder
from tui.core.sanitize import sanitize
from tui.core.shapes import is_number
from tui.core.status import RunStatus
from tui.core.store import Batch
from tui.core.timefmt import as_utc_iso
from tui.core.values import real_number

STATES: dict[str, RunStatus] = {
    "pending": "pending",
    "submitted": "pending",
    "evaluating": "running",
    "success": "finished",
    "failed": "failed",
    "crashed": "failed",
    "corrupted": "unknown",
    "unknown": "unknown",
}
"""NePS trial states and the statuses they map to."""

_CURRENT_MARKERS = frozenset({"optimizer_info.yaml", "optimizer_state.pkl"})
_LEGACY_MARKERS = frozenset(
    {
        "best_loss_trajectory.txt",
        "all_losses_and_configs.txt",
        "best_loss_with_config_trajectory.txt",
    }
)
_RESERVED = frozenset({"step", "learning_curve", "cost", "_time"})


@dataclass(frozen=True, slots=True)
class Layout:
    """File names of one NePS on-disk layout."""

    name: str
    configs: str
    report: str
    metadata: str
    metadata_kind: str
    objective: str
    summaries: tuple[str, ...]

    @property
    def files(self) -> tuple[str, ...]:
        """The per-config files whose changes matter."""
        return ("config.yaml", self.report, self.metadata, "state.txt")


CURRENT = Layout(
    "current",
    "configs",
    "report.yaml",
    "metadata.json",
    "json",
    "objective_to_minimize",
    ("summary/best_config_trajectory.txt", "summary/full.csv"),
)
LEGACY = Layout(
    "legacy",
    "results",
    "result.yaml",
    "metadata.yaml",
    "yaml",
    "loss",
    ("best_loss_trajectory.txt", "all_losses_and_configs.txt"),
)


@dataclass(slots=True)
class Trial:
    """What one config directory says (all fields optional until written)."""

    id: str
    config: dict[str, Any] | None = None
    state: str = "pending"
    objective: Any = None
    cost: float | None = None
    learning_curve: list[Any] = field(default_factory=list)
    extra: dict[str, Any] = field(default_factory=dict)
    error: str | None = None
    traceback: str | None = None
    metadata: dict[str, Any] = field(default_factory=dict)
    report_ok: bool = True

    @property
    def status(self) -> RunStatus:
        """The tracktui status of this trial."""
        return STATES.get(self.state, "unknown")

    def time(self, *names: str) -> float | None:
        """The first of the metadata times ``names`` that is a positive number."""
        for name in names:
            value = real_number(self.metadata.get(name))
            if value is not None and value > 0:
                return value
        return None


def config_number(name: str) -> tuple[int, str]:
    """Sort key putting ``config_10`` after ``config_9``."""
    digits = name[len("config_") :].split("_", 1)[0]
    return (int(digits) if digits.isdigit() else 1 << 30, name)


def config_dirs(directory: Path) -> list[str]:
    """Names of the ``config_*`` directories in a configs/results directory, in order."""
    try:
        with os.scandir(directory) as entries:
            names = [
                e.name
                for e in entries
                if e.name.startswith("config_") and e.is_dir(follow_symlinks=False)
            ]
    except OSError:
        return []
    return sorted(names, key=config_number)


def _state_name(value: object) -> str | None:
    if not isinstance(value, str) or not value.strip():
        return None
    text = value.strip().lower()
    return text.removeprefix("state.")


def _read_current(trial: Trial, directory: Path, root: Path, notes: list[str]) -> None:
    metadata, error = load_file(directory / CURRENT.metadata, root, "json")
    if error is not None:
        notes.append(error)
    if isinstance(metadata, dict):
        trial.metadata = metadata
    state = _state_name(trial.metadata.get("state"))
    if state is None:
        data, _ = load_file(directory / "state.txt", root, "yaml")
        state = _state_name(data)
    report, error = load_file(directory / CURRENT.report, root, "yaml")
    if error is not None:
        notes.append(error)
        trial.report_ok = False
    if isinstance(report, dict):
        trial.objective = report.get("objective_to_minimize", report.get("loss"))
        cost = report.get("cost")
        trial.cost = float(cost) if is_number(cost) else None
        curve = report.get("learning_curve")
        trial.learning_curve = curve if isinstance(curve, list) else []
        extra = report.get("extra")
        trial.extra = extra if isinstance(extra, dict) else {}
        if report.get("err") is not None:
            trial.error = sanitize(str(report["err"]), 2000)
        if report.get("tb") is not None:
            trial.traceback = sanitize(str(report["tb"]), 4000)
        if state is None:
            state = _state_name(report.get("reported_as"))
    trial.state = state or "pending"


def _read_legacy(trial: Trial, directory: Path, root: Path, notes: list[str]) -> None:
    metadata, error = load_file(directory / LEGACY.metadata, root, "yaml")
    if error is not None:
        notes.append(error)
    if isinstance(metadata, dict):
        trial.metadata = metadata
    exists = (directory / LEGACY.report).exists()
    result, error = load_file(directory / LEGACY.report, root, "yaml")
    if error is not None:
        notes.append(error)
        trial.report_ok = False
    if isinstance(result, str) and result.strip().lower() == "error":
        trial.state = "failed"
        trial.error = "the evaluation returned an error"
    elif isinstance(result, dict):
        failure = result.get("error") or result.get("exception")
        trial.state = "failed" if failure else "success"
        if failure:
            trial.error = sanitize(str(failure), 2000)
        trial.objective = result.get("loss")
        cost = result.get("cost")
        trial.cost = float(cost) if is_number(cost) else None
        info = result.get("info_dict")
        info = info if isinstance(info, dict) else {}
        curve = info.get("learning_curve", result.get("learning_curve"))
        trial.learning_curve = curve if isinstance(curve, list) else []
        extra = {k: v for k, v in result.items() if k not in ("loss", "cost", "info_dict")}
        extra.update({k: v for k, v in info.items() if k != "learning_curve"})
        trial.extra = extra
    else:
        # metahyper evaluates a config right after sampling it: no result yet means busy.
        trial.state = "evaluating" if not exists else "unknown"


def read_trial(directory: Path, root: Path, layout: Layout) -> tuple[Trial, list[str]]:
    """Parse one config directory; problems come back as notes, never as exceptions."""
    notes: list[str] = []
    trial = Trial(id=directory.name.removeprefix("config_"))
    config, error = load_file(directory / "config.yaml", root, "yaml")
    if error is not None:
        notes.append(error)
    if isinstance(config, dict):
        trial.config = config
    if layout == CURRENT:  # by value: a source sent to another process has its own copy
        _read_current(trial, directory, root, notes)
    else:
        _read_legacy(trial, directory, root, notes)
    return trial, notes


def trial_records(trial: Trial, objective_name: str) -> list[dict[str, Any]]:
    """The learning curve as a series over its index, then objective, cost and extras."""
    stamp_time = trial.time("time_end", "time_started", "time_sampled")
    records: list[dict[str, Any]] = []
    for i, raw in enumerate(trial.learning_curve):
        if is_number(raw):
            records.append({"step": i, "learning_curve": float(raw)})
    final: dict[str, Any] = {}
    objective = trial.objective
    if is_number(objective):
        final[objective_name] = float(objective)
    elif isinstance(objective, list) and objective and all(is_number(v) for v in objective):
        final[objective_name] = [float(v) for v in objective]
    if trial.cost is not None:
        final["cost"] = trial.cost
    for key, raw in trial.extra.items():
        name = str(key)
        if is_number(raw) and name not in _RESERVED and name != objective_name:
            final[name] = float(raw)
    if final:
        if records and records[-1]["step"] == len(trial.learning_curve) - 1:
            records[-1].update(final)
        else:
            final["step"] = max(len(trial.learning_curve) - 1, 0)
            records.append(final)
    if stamp_time is not None:
        for record in records:
            record["_time"] = stamp_time
    return records


def trial_meta(trial: Trial, name: str, search: str | None) -> dict[str, Any]:
    """Run metadata for one config."""
    status = trial.status
    md = trial.metadata
    properties: dict[str, Any] = {
        "trial_id": md.get("id", trial.id),
        "state": trial.state,
        "cost": trial.cost,
        "evaluation_duration": md.get("evaluation_duration"),
        "previous_trial_id": md.get("previous_trial_id", md.get("previous_config_id")),
        "sampling_worker_id": md.get("sampling_worker_id"),
        "evaluating_worker_id": md.get("evaluating_worker_id"),
        "search": search,
        "traceback": trial.traceback,
    }
    texts = {k: v for k, v in trial.extra.items() if not is_number(v)}
    if texts:
        properties["extra"] = texts
    ended = status in ("finished", "failed")
    return finish_meta(
        {
            "name": name,
            "status": status,
            "config": trial.config or {},
            "error": trial.error,
            "experiment": search,
            "created_at": as_utc_iso(trial.time("time_sampled")),
            "started_at": as_utc_iso(trial.time("time_started", "time_sampled")),
            "ended_at": as_utc_iso(trial.time("time_end")) if ended else None,
            "properties": {k: v for k, v in properties.items() if v is not None},
        }
    )


class NepsConfigSource(Source):
    """One evaluated (or pending) NePS config."""

    format = "neps"

    def __init__(
        self, root: Path, key: str, directory: Path, layout: Layout, group: str | None
    ) -> None:
        super().__init__(root, key, directory)
        self.layout = layout
        self.group = group
        self._stamps: tuple[object, ...] | None = None
        self._config: dict[str, Any] | None = None
        self._sent_records = False
        self._meta: dict[str, Any] | None = None
        self._notes: set[str] = set()

    def watched_files(self) -> list[Path]:
        return [self.directory / name for name in self.layout.files]

    def read(self, budget: int = READ_BUDGET) -> Batch | None:
        stamps = tuple(stamp(path) for path in self.watched_files())
        if stamps == self._stamps:
            return None
        self._stamps = stamps
        trial, problems = read_trial(self.directory, self.root, self.layout)
        if trial.config is None:
            trial.config = self._config  # keep the last readable config
        self._config = trial.config
        notes = [p for p in problems if p not in self._notes]
        self._notes = set(problems)
        block = None
        replace = False
        if trial.report_ok:
            builder = RecordBuilder(0, now())
            builder.add_records(trial_records(trial, self.layout.objective))
            block = builder.build()
            replace = self._sent_records
            self._sent_records = self._sent_records or block is not None
        meta: dict[str, Any] | None = trial_meta(trial, self.directory.name, self.group)
        if meta == self._meta:
            meta = None
        else:
            self._meta = meta
        if block is None and meta is None and not notes and not replace:
            return None
        return self.batch(
            records=block,
            replace=replace,
            meta=meta,
            notes=tuple(notes),
            mtime=newest_mtime(self.watched_files()),
            group=self.group,
        )


class NepsSearchSource(Source):
    """The search as a whole: its best-so-far trajectory and counts per state."""

    format = "neps"

    def __init__(self, root: Path, key: str, directory: Path, layout: Layout) -> None:
        super().__init__(root, key, directory)
        self.layout = layout
        self._trials: dict[str, tuple[tuple[object, ...], Trial]] = {}
        self._signature: tuple[object, ...] | None = None
        self._meta: dict[str, Any] | None = None
        self._optimizer: tuple[tuple[int, int, int] | None, Any] = (None, None)

    @property
    def configs(self) -> Path:
        """The directory holding one directory per config."""
        return self.directory / self.layout.configs

    def watched_files(self) -> list[Path]:
        files = [self.configs, *(self.directory / name for name in self.layout.summaries)]
        files.extend(self.configs / name for name in config_dirs(self.configs))
        return files

    def _trial(self, name: str) -> Trial:
        directory = self.configs / name
        stamps = tuple(stamp(directory / f) for f in self.layout.files)
        known = self._trials.get(name)
        if known is not None and known[0] == stamps:
            return known[1]
        trial, _ = read_trial(directory, self.root, self.layout)
        if not trial.report_ok and known is not None:
            trial = known[1]  # a damaged report is the config's own note; keep what we had
        self._trials[name] = (stamps, trial)
        return trial

    def _optimizer_name(self) -> Any:
        path = self.directory / "optimizer_info.yaml"
        current = stamp(path)
        if current != self._optimizer[0]:
            value, _ = load_file(path, self.root, "yaml")
            name = None
            if isinstance(value, dict):
                name = value.get("name") or value.get("searcher_name") or value.get("searcher")
                info = value.get("info")
                if name is None and isinstance(info, dict):
                    name = info.get("name")
            self._optimizer = (current, name)
        return self._optimizer[1]

    def read(self, budget: int = READ_BUDGET) -> Batch | None:
        names = config_dirs(self.configs)
        trials = [(name, self._trial(name)) for name in names]
        counts: dict[str, int] = {}
        for _, trial in trials:
            counts[trial.status] = counts.get(trial.status, 0) + 1
        done = [
            (name, t) for name, t in trials if t.status == "finished" and is_number(t.objective)
        ]
        done.sort(
            key=lambda item: (
                item[1].time("time_end", "time_sampled") or math.inf,
                config_number(item[0]),
            )
        )
        records: list[dict[str, Any]] = []
        best: tuple[float, str, dict[str, Any] | None] | None = None
        for position, (name, trial) in enumerate(done, start=1):
            loss = float(trial.objective)
            if math.isfinite(loss) and (best is None or loss < best[0]):
                best = (loss, name, trial.config)
            record: dict[str, Any] = {"step": position, "loss": loss}
            if best is not None:
                record["best_loss"] = best[0]
                record["best_config"] = best[1]
            ended = trial.time("time_end")
            if ended is not None:
                record["_time"] = ended
            records.append(record)
        signature = tuple((r["step"], r["loss"], r.get("best_config")) for r in records)
        block = None
        replace = False
        if signature != self._signature:
            replace = self._signature is not None
            self._signature = signature
            builder = RecordBuilder(0, now())
            builder.add_records(records)
            block = builder.build()
        active = counts.get("running", 0) + counts.get("pending", 0)
        status = "running" if active else "finished" if trials else "unknown"
        properties: dict[str, Any] = {
            "layout": self.layout.name,
            "configs": len(trials),
            "evaluated": len(done),
            "optimizer": self._optimizer_name(),
            **{f"configs_{state}": n for state, n in sorted(counts.items())},
        }
        if best is not None:
            properties["best_config"] = best[1]
            properties["best_loss"] = best[0]
        meta: dict[str, Any] | None = finish_meta(
            {
                "name": f"{self.directory.name} (search)",
                "status": status,
                "config": (best[2] if best is not None else None) or {},
                "experiment": self.key,
                "properties": properties,
            }
        )
        if meta == self._meta:
            meta = None
        else:
            self._meta = meta
        if block is None and meta is None and not replace:
            return None
        return self.batch(
            records=block,
            replace=replace,
            meta=meta,
            mtime=newest_mtime(self.watched_files()),
            group=self.key,
        )


def _has_trials(directory: Path, layout: Layout) -> bool:
    """True when the first config directories hold this layout's files."""
    for name in config_dirs(directory)[:4]:
        trial = directory / name
        if (trial / "config.yaml").exists() and (
            (trial / layout.metadata).exists() or (trial / layout.report).exists()
        ):
            return True
    return False


class NepsAdapter(Adapter):
    """Claims NePS search directories (both layouts) and every config in them."""

    format = "neps"

    def __init__(self) -> None:
        self._checked: dict[Path, tuple[int, bool]] = {}

    def _fallback(self, directory: Path, layout: Layout) -> bool:
        """Look inside ``configs``/``results`` when no NePS-only file name is there."""
        target = directory / layout.configs
        try:
            mtime = os.stat(target).st_mtime_ns
        except OSError:
            return False
        known = self._checked.get(target)
        if known is not None and known[0] == mtime:
            return known[1]
        found = _has_trials(target, layout)
        self._checked[target] = (mtime, found)
        return found

    def detect(self, directory: Path, names: list[str]) -> Layout | None:
        """The layout of a NePS search rooted at ``directory``, if it is one."""
        have = set(names)
        if CURRENT.configs in have and (
            have & _CURRENT_MARKERS or self._fallback(directory, CURRENT)
        ):
            return CURRENT
        if LEGACY.configs in have and (have & _LEGACY_MARKERS or self._fallback(directory, LEGACY)):
            return LEGACY
        return None

    def discover(self, root: Path, directory: Path, names: list[str]) -> Claim | None:
        if "metrics.jsonl" in names or "run.json" in names:
            return None
        layout = self.detect(directory, names)
        if layout is None:
            return None
        key = relative(directory, root)
        configs = directory / layout.configs
        sources: list[Source] = [NepsSearchSource(root, key, directory, layout)]
        for name in config_dirs(configs):
            path = configs / name
            sources.append(NepsConfigSource(root, relative(path, root), path, layout, key))
        return Claim(sources=sources, skip=frozenset({layout.configs, "summary", "summary_csv"}))
