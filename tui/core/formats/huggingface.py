"""Hugging Face ``Trainer`` output directories, with their TensorBoard events, as one run.

The Trainer writes ``trainer_state.json`` into each ``checkpoint-N/`` it saves and, when
``save_state()`` is called, into the output directory itself: ``log_history`` (one entry
per log call, with ``step``, ``epoch``, ``loss``, ``learning_rate``, ``grad_norm``,
``eval_*``...; the last one of a finished training has ``train_runtime``), ``global_step``,
``max_steps`` and a few settings. The newest state wins (highest ``global_step``; the
output directory's on a tie). Its ``TensorBoardCallback`` logs the same values as they
happen under ``runs/<Mon DD_HH-MM-SS>_<host>/`` with tags renamed (``loss`` ->
``train/loss``, ``eval_loss`` -> ``eval/loss``), plus the training arguments and the model
config as JSON text summaries.

One run per output directory: the series are ``log_history`` under its own names, then
the TensorBoard values of steps past the state's last step (renamed back), so a training
that has not saved a checkpoint yet is followed live and nothing is counted twice. Wall
times come from the events when there are any. The config is the training arguments (the
JSON text summary, never ``training_args.bin``: that is a pickle and is not opened), the
Trainer's own settings from the state and, under ``model``, the plain values of the
model's ``config.json``. A state with ``train_runtime`` in its last entry is finished.

``trainer_state.json`` is rewritten in place (not atomically): one that does not parse is
read again at the next look, and noted only when it stays broken while the file is quiet.
"""

from __future__ import annotations

import math
import os
import re
from itertools import chain, repeat
from operator import itemgetter
from pathlib import Path
from typing import Any

import numpy as np
import orjson

from tui.core.formats.base import READ_BUDGET, Adapter, Claim, Source, now, written_at
from tui.core.formats.documents import load_file, parse_json
from tui.core.formats.files import newest_mtime, read_small, relative, stamp
from tui.core.formats.meta import finish_meta
from tui.core.formats.tfevents import EventReader
from tui.core.records import TIME_KEY, RecordBuilder, quote_tokens
from tui.core.sanitize import sanitize
from tui.core.shapes import is_number
from tui.core.store import Batch
from tui.core.tail import INCOMPLETE_AFTER
from tui.core.timefmt import as_utc_iso

STATE = "trainer_state.json"
STATE_LIMIT = 256 * 1024 * 1024
"""Largest ``trainer_state.json`` read (its ``log_history`` holds every logged step)."""
CHECKPOINT = re.compile(r"checkpoint-(\d+)")
LOG_DIR = re.compile(r"[A-Z][a-z]{2}\d{2}_\d{2}-\d{2}-\d{2}_.+")
"""The Trainer's default TensorBoard directory name under ``runs/``."""

SETTINGS = (
    "max_steps",
    "num_train_epochs",
    "train_batch_size",
    "logging_steps",
    "eval_steps",
    "save_steps",
)
"""Fields of ``trainer_state.json`` that are part of the config."""

FACTS = (
    "global_step",
    "epoch",
    "best_metric",
    "best_global_step",
    "best_model_checkpoint",
    "total_flos",
    "num_input_tokens_seen",
    "is_hyper_param_search",
    "trial_name",
)
"""Fields of ``trainer_state.json`` shown as properties."""

_TEXTS = {"args/text_summary": "args", "model_config/text_summary": "model_config"}
_TOKEN_VALUES = {"NaN": math.nan, "Infinity": math.inf, "-Infinity": -math.inf}
_NUMBERS = {int, float}


def tensorboard_name(tag: str) -> str:
    """The ``log_history`` key a TensorBoardCallback tag was made from."""
    if tag.startswith("train/"):
        return tag[6:]
    if tag.startswith(("eval/", "test/")):
        head, _, rest = tag.partition("/")
        return f"{head}_{rest}"
    return tag


def parse_state(data: bytes, name: str) -> tuple[Any, str | None]:
    """Parse a ``trainer_state.json``: ``(value, None)`` or ``(None, reason)``.

    ``json.dumps`` writes a diverged loss or an overflowing ``grad_norm`` as the bare
    tokens ``NaN`` and ``Infinity``, which orjson refuses: quoted, they parse with orjson
    all the same and are turned back into floats (the stdlib parser, four times slower,
    reads only what that cannot: a damaged file, a text holding those letters).
    """
    value, error, left = _parse_state(data, name)
    if left:
        restore_tokens(value["log_history"])
    return value, error


def _parse_state(data: bytes, name: str) -> tuple[Any, str | None, bool]:
    """``parse_state``, but the texts the tokens became are left in ``log_history``'s
    entries when the third item is True: :func:`history_columns` reads them as numbers in
    bulk, and ``restore_tokens`` turns them back only when the entries are taken as
    records."""
    quoted = quote_tokens(data)
    if quoted is not None:
        try:
            value = orjson.loads(quoted)
        except orjson.JSONDecodeError:
            pass
        else:
            history = value.get("log_history") if isinstance(value, dict) else None
            if isinstance(history, list):
                value["log_history"] = []
                restore_tokens(value)
                value["log_history"] = history
                return value, None, True
            if isinstance(value, (dict, list)):
                restore_tokens(value)
                return value, None, False
    value, error = parse_json(data, name)
    return value, error, False


def restore_tokens(value: dict[str, Any] | list[Any]) -> None:
    """Turn the texts ``quote_tokens`` made of NaN/Infinity tokens back into floats, in place.

    In a document that parsed after quoting, a text equal to a token can only be one: a
    string that held those letters would have been cut by the quotes and failed to parse.
    """
    items = value.items() if type(value) is dict else enumerate(value)
    for key, item in items:
        kind = type(item)
        if kind is str:
            number = _TOKEN_VALUES.get(item)
            if number is not None:
                value[key] = number  # type: ignore[index]
        elif kind is list or (kind is dict and not _NUMBERS.issuperset(map(type, item.values()))):
            restore_tokens(item)  # (a log entry of numbers alone is passed over in C)


def _grouped(
    history: list[dict[str, Any]], codes: list[Any]
) -> list[tuple[tuple[str, ...], np.ndarray, list[Any]]] | None:
    """The entries grouped by ``codes``: each group's keys, positions and value rows.

    ``None`` when two entries with one code have different keys (codes that are sizes) or
    an entry is empty.
    """
    index = {code: i for i, code in enumerate(dict.fromkeys(codes))}
    ids = np.fromiter(map(index.__getitem__, codes), np.intp, len(codes))
    order = np.argsort(ids, kind="stable")  # each group's positions, ascending
    groups = []
    start = 0
    for end in np.cumsum(np.bincount(ids)).tolist():
        where = order[start:end]
        start = end
        members = list(map(history.__getitem__, where.tolist()))
        keys = tuple(members[0])
        if not keys:
            return None
        try:
            # One size and every key of the first found: the same keys (perhaps reordered).
            rows = list(map(itemgetter(*keys), members))
        except KeyError:
            return None
        groups.append((keys, where, rows))
    return groups


def history_columns(
    history: list[dict[str, Any]], tokens: bool = False
) -> dict[str, tuple[np.ndarray | None, np.ndarray]] | None:
    """``log_history`` as columns for :meth:`RecordBuilder.add_columns`.

    A Trainer logs a few kinds of entries (training, evaluation, the final summary), each
    with its own keys: grouped by size, or by keys where sizes do not tell them apart, each
    group's values go into numpy at once, with no Python step per value.

    ``None`` when an entry has no finite ``step``, or a ``_time``, or a value that is not
    a number (``null``, a bool, a text, a list): ``add_records`` then takes the entries as
    they are, with the same results for what both can take. ``tokens``: the texts
    ``NaN``, ``Infinity`` and ``-Infinity`` are the tokens ``quote_tokens`` quoted (see
    ``_parse_state``), and read as the floats they stand for.
    """
    count = len(history)
    if not count:
        return None
    groups = _grouped(history, list(map(len, history)))
    if groups is None:
        groups = _grouped(history, list(map(tuple, history)))
        if groups is None:
            return None
    pieces: dict[str, list[tuple[np.ndarray, np.ndarray]]] = {}
    for keys, where, rows in groups:
        width = len(keys)
        flat = list(chain.from_iterable(rows)) if width > 1 else rows
        kinds = set(map(type, flat))
        if tokens and str in kinds:
            try:
                flat = list(map(_TOKEN_VALUES.get, flat, flat))
            except TypeError:  # a list or an object among them: not numbers either
                return None
            kinds = set(map(type, flat))
        if not kinds <= _NUMBERS:
            return None
        try:
            table = np.fromiter(flat, np.float64, len(flat)).reshape(len(rows), width)
        except OverflowError:  # an integer beyond float64: add_records makes it infinite
            return None
        for j, key in enumerate(keys):
            pieces.setdefault(key, []).append((where, table[:, j]))
    if TIME_KEY in pieces:
        return None
    columns: dict[str, tuple[np.ndarray | None, np.ndarray]] = {}
    for key, found in pieces.items():
        if len(found) == 1:
            where, values = found[0]
            # A key is in an entry once at most: as many values as entries means all of them.
            columns[key] = (None if len(where) == count else where, values)
        else:
            where = np.concatenate([w for w, _ in found])
            values = np.concatenate([v for _, v in found])
            order = np.argsort(where, kind="stable")
            columns[key] = (None if len(where) == count else where[order], values[order])
    steps = columns.get("step")
    if steps is None or steps[0] is not None or not np.isfinite(steps[1]).all():
        return None
    return columns


def checkpoints(directory: Path) -> list[tuple[int, Path]]:
    """``checkpoint-N`` directories, highest ``N`` first."""
    found = []
    try:
        with os.scandir(directory) as entries:
            for entry in entries:
                match = CHECKPOINT.fullmatch(entry.name)
                if match and entry.is_dir(follow_symlinks=False):
                    found.append((int(match.group(1)), Path(entry.path)))
    except OSError:
        return []
    return sorted(found, reverse=True)


def log_dirs(directory: Path) -> list[Path]:
    """The Trainer's TensorBoard directories under ``runs/``, oldest name first."""
    runs = directory / "runs"
    try:
        with os.scandir(runs) as entries:
            return sorted(
                Path(e.path)
                for e in entries
                if LOG_DIR.fullmatch(e.name) and e.is_dir(follow_symlinks=False)
            )
    except OSError:
        return []


class TrainerSource(Source):
    """One ``Trainer`` output directory."""

    format = "huggingface"

    def __init__(self, root: Path, key: str, directory: Path) -> None:
        super().__init__(root, key, directory)
        self._readers: dict[Path, EventReader] = {}
        self._state_file: Path | None = None
        self._state_stamp: tuple[tuple[Path, tuple[int, int, int]], ...] | None = None
        self._state: dict[str, Any] = {}
        self._history: list[dict[str, Any]] = []
        self._columns: dict[str, tuple[np.ndarray | None, np.ndarray]] | None = None
        self._last_step = -1.0
        self._late: list[dict[str, Any]] = []
        self._times: dict[float, float] = {}
        self._texts: dict[str, dict[str, Any]] = {}
        self._model: dict[str, Any] = {}
        self._model_stamp: tuple[int, int, int] | None = None
        self._meta: dict[str, Any] | None = None
        self._retry = False
        self._broken_noted: tuple[int, int, int] | None = None
        self.emitted = 0

    def _state_files(self) -> list[Path]:
        files = [self.directory / STATE]
        files.extend(path / STATE for _, path in checkpoints(self.directory)[:1])
        return files

    def watched_files(self) -> list[Path]:
        files = [*self._state_files(), self.directory]
        for reader in self._readers.values():
            files.extend(reader.paths())
        return files

    def changed(self) -> bool:
        changed = super().changed()
        if self._retry:
            return True
        if any(r.recheck for r in self._readers.values()):
            for reader in self._readers.values():
                reader.recheck = False
            return True
        return changed

    # trainer_state.json ---------------------------------------------------------------------------
    def _load_state(self, path: Path, notes: list[str]) -> tuple[dict[str, Any], bool] | None:
        """The state in ``path``, and whether its history still holds token texts (see
        ``_parse_state``)."""
        data, error = read_small(path, self.root, STATE_LIMIT)
        if data is None:
            if error is not None:
                notes.append(error)
            return None
        value, error, left = _parse_state(data, f"{path.parent.name}/{STATE}")
        if isinstance(value, dict) and isinstance(value.get("log_history"), list):
            return value, left
        # Rewritten in place by the Trainer: a half-written file is read again next time.
        self._retry = True
        current = stamp(path)
        quiet = current is not None and now() - current[2] / 1e9 > INCOMPLETE_AFTER
        if quiet and current != self._broken_noted:
            self._broken_noted = current
            notes.append(error or f"{STATE} is not a Trainer state")
        return None

    def _newest_state(self, notes: list[str]) -> bool:
        """Load the newest trainer_state.json when it changed; True when it did."""
        present = [(p, s) for p in self._state_files() if (s := stamp(p)) is not None]
        key = tuple(present)
        if key == self._state_stamp and not self._retry:
            return False
        self._retry = False
        best: tuple[float, int, Path, tuple[dict[str, Any], bool]] | None = None
        for rank, (path, _) in enumerate(present):
            loaded = self._load_state(path, notes)
            if loaded is None:
                continue
            step = loaded[0].get("global_step")
            order = (float(step) if is_number(step) else -1.0, -rank)
            if best is None or order > (best[0], best[1]):
                best = (order[0], order[1], path, loaded)
        if self._retry:
            return False  # keep what we have until every candidate parses
        self._state_stamp = key
        if best is None:
            return False
        _, _, path, (state, tokens) = best
        self._state_file = path
        self._state = state
        # The parsed entries are ours alone and never changed: kept as they are, not copied.
        history: list[Any] = state["log_history"]
        if set(map(type, history)) - {dict}:
            history = [e for e in history if isinstance(e, dict)]
        self._history = history
        self._columns = history_columns(history, tokens)
        if self._columns is None and tokens:
            restore_tokens(state["log_history"])  # the entries are taken as records
        if self._columns is not None:
            self._last_step = float(self._columns["step"][1].max())
        else:
            steps = (e.get("step") for e in history)
            self._last_step = max((float(s) for s in steps if is_number(s)), default=-1.0)
        self._late = [r for r in self._late if r["step"] > self._last_step]
        self._read_model(path.parent, notes)
        return True

    def _read_model(self, directory: Path, notes: list[str]) -> None:
        path = directory / "config.json"
        current = stamp(path)
        if current is None or current == self._model_stamp:
            return
        self._model_stamp = current
        value, error = load_file(path, self.root, "json")
        if error is not None:
            notes.append(error)
        if isinstance(value, dict):
            self._model = {
                k: v
                for k, v in value.items()
                if isinstance(v, (str, int, float, bool)) or (isinstance(v, list) and len(v) <= 8)
            }

    # TensorBoard ----------------------------------------------------------------------------------
    def _read_events(self, budget: int, notes: list[str]) -> tuple[list[dict[str, Any]], bool]:
        """New TensorBoard records (renamed), and whether a rewritten event file reset them."""
        fresh: list[dict[str, Any]] = []
        reset = False
        for log_dir in log_dirs(self.directory):
            reader = self._readers.get(log_dir)
            if reader is None:
                reader = self._readers[log_dir] = EventReader(self.root, log_dir)
            decoded, replaced = reader.read(budget)
            self.more = self.more or reader.more
            notes.extend(decoded.notes)
            reset = reset or replaced
            for record in decoded.records:
                renamed: dict[str, Any] = {}
                for tag, value in record.items():
                    target = _TEXTS.get(tag)
                    if target is not None:
                        parsed, _ = parse_json(str(value).encode(), tag)
                        if isinstance(parsed, dict):
                            self._texts[target] = parsed
                        continue
                    renamed[tag if tag in ("step", "_time") else tensorboard_name(tag)] = value
                self._times.setdefault(float(renamed["step"]), float(renamed["_time"]))
                if len(renamed) > 2:
                    fresh.append(renamed)
        return fresh, reset

    # The run --------------------------------------------------------------------------------------
    def _meta_now(self) -> dict[str, Any] | None:
        state = self._state
        config: dict[str, Any] = dict(self._texts.get("args", {}))
        for key in SETTINGS:
            if key in state and key not in config:
                config[key] = state[key]
        model = self._texts.get("model_config") or self._model
        if model:
            config["model"] = {
                k: v for k, v in model.items() if isinstance(v, (str, int, float, bool, list))
            }
        properties: dict[str, Any] = {k: state[k] for k in FACTS if state.get(k) is not None}
        if self._state_file is not None:
            properties["state_file"] = relative(self._state_file, self.directory)
        properties["event_dirs"] = len(self._readers)
        meta: dict[str, Any] = {
            "name": self.directory.name if self.directory != self.root else self.root.name,
            "config": config,
            "properties": properties,
        }
        last = self._history[-1] if self._history else {}
        if "train_runtime" in last:
            meta["status"] = "finished"
            step = last.get("step")
            ended = self._times.get(float(step)) if is_number(step) else None
            if ended is not None:
                meta["ended_at"] = as_utc_iso(ended)
        if self._times:
            meta["started_at"] = as_utc_iso(min(self._times.values()))
        meta = finish_meta(meta)
        if meta == self._meta:
            return None
        self._meta = meta
        return meta

    def _history_times(self) -> np.ndarray | None:
        """Each history entry's wall time from the events (NaN: none, or a ``_time`` of
        its own); ``None`` when there are no events."""
        if not self._times:
            return None
        moment = self._times.get
        if self._columns is not None:  # every entry has a step, none a _time
            steps = self._columns["step"][1].tolist()
            return np.fromiter(map(moment, steps, repeat(math.nan)), np.float64, len(steps))
        stamps = []
        for entry in self._history:
            step = entry.get("step")
            if TIME_KEY not in entry and is_number(step):
                stamps.append(moment(float(step), math.nan))
            else:
                stamps.append(math.nan)
        return np.array(stamps, dtype=np.float64)

    def _add_history(self, builder: RecordBuilder) -> None:
        """The state's history, as columns when it can be (see :func:`history_columns`),
        with the events' wall times for entries that have none of their own."""
        times = self._history_times()
        if self._columns is not None:
            # Copies: the store owns what it is given, and a later replace adds these again.
            columns = {
                key: (None if where is None else where.copy(), values.copy())
                for key, (where, values) in self._columns.items()
            }
            builder.add_columns(len(self._history), columns, times)
            return
        rows = self._history
        if times is not None:
            rows = [
                entry if math.isnan(moment) else {**entry, TIME_KEY: moment}
                for entry, moment in zip(rows, times.tolist())
            ]
        builder.add_records(rows)

    def preview(self, tail_bytes: int = 65536) -> Batch | None:
        """The run listed with its model's config.json: trainer_state.json holds the whole
        history in one JSON document, and the event files have no findable end."""
        scratch = TrainerSource(self.root, self.key, self.directory)
        scratch._read_model(self.directory, [])
        return self.listing(scratch._meta_now())

    def read(self, budget: int = READ_BUDGET) -> Batch | None:
        self.more = False
        notes: list[str] = []
        fresh, reset = self._read_events(budget, notes)
        if reset:
            self._late = []
            self._times = {}
        state_changed = self._newest_state(notes)
        late = [r for r in fresh if r["step"] > self._last_step]
        self._late.extend(late)
        replace = state_changed or reset
        when = written_at(self._state_file) if self._state_file is not None else now()
        builder = RecordBuilder(0, when)
        if replace:
            self._add_history(builder)
        builder.add_records(self._late if replace else late)
        block = builder.build()
        meta = self._meta_now()
        if block is None and meta is None and not notes and not replace:
            return None
        return self.batch(
            records=block,
            replace=replace,
            meta=meta,
            notes=tuple(sanitize(n, 300) for n in notes),
            mtime=newest_mtime(self.watched_files()),
        )


class TrainerAdapter(Adapter):
    """Claims ``Trainer`` output directories (a state file, checkpoints, or its ``runs/``)."""

    format = "huggingface"

    def discover(self, root: Path, directory: Path, names: list[str]) -> Claim | None:
        if "metrics.jsonl" in names or "run.json" in names:
            return None
        found = STATE in names
        if not found and any(CHECKPOINT.fullmatch(n) for n in names):
            found = any((path / STATE).is_file() for _, path in checkpoints(directory)[:3])
        if not found and "runs" in names:
            found = bool(log_dirs(directory))
        if not found:
            return None
        source = TrainerSource(root, relative(directory, root), directory)
        skip = frozenset(n for n in names if n == "runs" or CHECKPOINT.fullmatch(n))
        return Claim(sources=[source], skip=skip)
