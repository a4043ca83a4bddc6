"""TensorBoard event files (``events.out.tfevents.*``): one run per directory holding them.

Reading needs the optional extra ``pip install tracktui[tensorboard]``: the records are
read by TensorBoard's own ``RawEventFileLoader`` (which keeps its place in each file and
waits at a half-written record), decoded with its ``Event`` protobuf and normalised by its
``data_compat``/``dataclass_compat`` layers, as ``EventFileLoader`` does. Without the
extra the runs still appear, with a note saying what to install.

Scalars become series per tag with the event's step and wall time (values logged at the
same step by consecutive events share a record); text summaries become text values; the
hparams plugin's session-start hyperparameters become the config. Event files of one
directory are read in name order (a restarted writer adds a newer file).

A record whose header says it is complete but which fails its checksum stops that file
with a note; a record cut short stays pending and is reported once the file has not
changed for a while.
"""

from __future__ import annotations

import os
import struct
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tui.core.formats.base import READ_BUDGET, Adapter, Claim, Source, now
from tui.core.formats.files import newest_mtime, relative
from tui.core.formats.meta import finish_meta
from tui.core.records import RecordBuilder
from tui.core.sanitize import sanitize
from tui.core.store import Batch
from tui.core.tail import INCOMPLETE_AFTER, UnsafeFile, open_regular

PREFIX = "events.out.tfevents."
INSTALL_NOTE = "install tracktui[tensorboard] to read TensorBoard event files"
_SKIP_SUFFIXES = (".profile-empty",)
_RECORD_OVERHEAD = 16  # length (8) + its checksum (4) + the data's checksum (4)


def event_files(directory: Path) -> list[str]:
    """Names of the event files in ``directory``, oldest first."""
    try:
        with os.scandir(directory) as entries:
            names = [
                e.name
                for e in entries
                if e.name.startswith(PREFIX)
                and not e.name.endswith(_SKIP_SUFFIXES)
                and e.is_file(follow_symlinks=False)
            ]
    except OSError:
        return []
    return sorted(names)


def reader_available() -> bool:
    """True when TensorBoard's event reader can be imported."""
    try:
        from tensorboard.backend.event_processing import event_file_loader  # noqa: F401
    except ImportError:
        return False
    return True


@dataclass(slots=True)
class _File:
    """Reading state of one event file."""

    loader: Any = None
    offset: int = 0
    broken: bool = False
    suspect: int = -1
    stalled_noted: bool = False
    metadata: dict[str, Any] = field(default_factory=dict)


class TensorBoardSource(Source):
    """The event files of one TensorBoard run directory."""

    format = "tensorboard"

    def __init__(self, root: Path, key: str, directory: Path) -> None:
        super().__init__(root, key, directory)
        self._files: dict[str, _File] = {}
        self._plugins: dict[str, str] = {}
        self._config: dict[str, Any] = {}
        self._meta: dict[str, Any] | None = None
        self._missing_noted = False
        self._recheck = False

    def watched_files(self) -> list[Path]:
        return [self.directory, *(self.directory / name for name in event_files(self.directory))]

    def changed(self) -> bool:
        changed = super().changed()
        if self._recheck:
            self._recheck = False
            return True
        return changed

    def close(self) -> None:
        for state in self._files.values():
            state.loader = None  # offsets stay: a new loader skips what was read

    def _meta_now(self, names: list[str]) -> dict[str, Any] | None:
        name = self.directory.name if self.directory != self.root else self.root.name
        meta = finish_meta(
            {
                "name": name,
                "status": "unknown",
                "config": self._config,
                "properties": {"event_files": len(names)},
            }
        )
        if meta == self._meta:
            return None
        self._meta = meta
        return meta

    def _events(self, path: Path, state: _File, budget: int) -> Iterator[Any]:
        """Decoded events of one file from its stored position, within ``budget`` bytes."""
        from tensorboard import data_compat, dataclass_compat
        from tensorboard.backend.event_processing.event_file_loader import RawEventFileLoader
        from tensorboard.compat.proto import event_pb2

        if state.loader is None:
            os.close(open_regular(path, self.root))  # refuse FIFOs and links out of ROOT
            state.loader = RawEventFileLoader(str(path))
            skipped = 0
            while skipped < state.offset:
                raw = next(state.loader.Load(), None)
                if raw is None:
                    return
                skipped += len(raw) + _RECORD_OVERHEAD
        start = state.offset
        for raw in state.loader.Load():
            state.offset += len(raw) + _RECORD_OVERHEAD
            try:
                event = event_pb2.Event.FromString(raw)
            except Exception:  # a record with a valid checksum but not an Event: skip it
                continue
            event = data_compat.migrate_event(event)
            yield from dataclass_compat.migrate_event(event, state.metadata)
            if state.offset - start >= budget:
                self.more = True
                return

    def _values(self, event: Any, record: dict[str, Any]) -> None:
        from tensorboard.plugins.hparams import plugin_data_pb2
        from tensorboard.util import tensor_util

        for value in event.summary.value:
            tag = value.tag
            plugin = value.metadata.plugin_data.plugin_name
            if plugin:
                self._plugins[tag] = plugin
            plugin = self._plugins.get(tag, "")
            if plugin == "hparams":
                content = value.metadata.plugin_data.content
                try:
                    data = plugin_data_pb2.HParamsPluginData.FromString(content)
                except Exception:  # damaged plugin payload: ignore this summary only
                    continue
                if data.HasField("session_start_info"):
                    hparams = data.session_start_info.hparams
                    self._config.update({k: _hparam(hparams[k]) for k in hparams})
                continue
            if plugin not in ("scalars", "text") or not value.HasField("tensor"):
                continue
            try:
                array = tensor_util.make_ndarray(value.tensor)
            except Exception:  # an unreadable tensor: skip this value
                continue
            if array.size != 1:
                continue
            item = array.reshape(-1)[0]
            if plugin == "scalars":
                record[tag] = float(item)
            elif isinstance(item, bytes):
                record[tag] = item.decode("utf-8", "replace")

    def _check_tail(self, path: Path, state: _File, notes: list[str]) -> None:
        """After the loader stopped short of the end: corrupt record, or one cut short?"""
        try:
            fd = open_regular(path, self.root)
        except (UnsafeFile, OSError):
            return
        try:
            info = os.fstat(fd)
            header = os.pread(fd, 8, state.offset)
        finally:
            os.close(fd)
        left = info.st_size - state.offset
        if left <= 0:
            return
        name = sanitize(path.name, 200)
        if len(header) == 8:
            (length,) = struct.unpack("<Q", header)
            if info.st_size >= state.offset + length + _RECORD_OVERHEAD:
                # A writer may have completed the record just after the loader stopped:
                # only a record still unread on a later read is declared damaged.
                if state.suspect != state.offset:
                    state.suspect = state.offset
                    self._recheck = True
                    return
                state.broken = True
                notes.append(
                    f"{name}: damaged record at byte {state.offset:,} (checksum mismatch); "
                    "the rest of this file is not read"
                )
                return
        if not state.stalled_noted and now() - info.st_mtime > INCOMPLETE_AFTER:
            state.stalled_noted = True
            notes.append(
                f"{name}: incomplete final record at byte {state.offset:,} "
                "(writer stopped mid-record?)"
            )

    def read(self, budget: int = READ_BUDGET) -> Batch | None:
        self.more = False
        names = event_files(self.directory)
        if not reader_available():
            meta = self._meta_now(names)
            notes: tuple[str, ...] = ()
            if not self._missing_noted:
                self._missing_noted = True
                notes = (INSTALL_NOTE,)
            if meta is None and not notes:
                return None
            return self.batch(meta=meta, notes=notes, mtime=newest_mtime(self.watched_files()))
        notes_list: list[str] = []
        records: list[dict[str, Any]] = []
        sizes: dict[str, int] = {}
        for name in names:
            try:
                sizes[name] = os.stat(self.directory / name).st_size
            except OSError:
                continue
        shrunk = [
            n for n, size in sizes.items() if n in self._files and size < self._files[n].offset
        ]
        replace = bool(shrunk)
        if shrunk:
            # Event files only grow; a shorter one was rewritten: start the run over.
            notes_list.append(
                sanitize(f"{shrunk[0]} was truncated; re-reading this run from the start", 300)
            )
            self._files.clear()
            self._plugins.clear()
            self._config = {}
        remaining = budget
        for name, size in sizes.items():
            state = self._files.setdefault(name, _File())
            if state.broken or remaining <= 0 or size == state.offset:
                continue
            path = self.directory / name
            before = state.offset
            try:
                for event in self._events(path, state, remaining):
                    record: dict[str, Any] = {}
                    self._values(event, record)
                    if not record:
                        continue
                    last = records[-1] if records else None
                    if (
                        last is not None
                        and last["step"] == event.step
                        and not record.keys() & last.keys()
                    ):
                        last.update(record)
                    else:
                        records.append({"step": event.step, "_time": event.wall_time, **record})
            except (UnsafeFile, OSError) as exc:
                state.broken = True
                notes_list.append(sanitize(f"{name}: {exc}", 300))
                continue
            except Exception as exc:  # TensorBoard's own errors (file vanished...): retry later
                state.loader = None
                notes_list.append(sanitize(f"{name}: {exc!r}", 300))
                continue
            remaining -= state.offset - before
            if not self.more:
                self._check_tail(path, state, notes_list)
        builder = RecordBuilder(0, now())
        builder.add_records(records)
        block = builder.build()
        meta = self._meta_now(names)
        if block is None and meta is None and not notes_list and not replace:
            return None
        return self.batch(
            records=block,
            replace=replace,
            meta=meta,
            notes=tuple(notes_list),
            mtime=newest_mtime(self.watched_files()),
        )


def _hparam(value: Any) -> Any:
    """A ``google.protobuf.Value`` from the hparams plugin as plain Python."""
    kind = value.WhichOneof("kind")
    if kind == "number_value":
        number = value.number_value
        return int(number) if number.is_integer() and abs(number) < 2**53 else number
    if kind == "string_value":
        return value.string_value
    if kind == "bool_value":
        return value.bool_value
    return None


class TensorBoardAdapter(Adapter):
    """Claims directories holding TensorBoard event files (checks names only)."""

    format = "tensorboard"

    def discover(self, root: Path, directory: Path, names: list[str]) -> Claim | None:
        if "metrics.jsonl" in names or "run.json" in names:
            return None
        if not any(n.startswith(PREFIX) and not n.endswith(_SKIP_SUFFIXES) for n in names):
            return None
        return Claim(sources=[TensorBoardSource(root, relative(directory, root), directory)])
