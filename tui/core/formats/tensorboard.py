"""TensorBoard event files (``events.out.tfevents.*``): one run per log directory.

Read on the default install by :mod:`tui.core.formats.tfevents` (TFRecord framing and
the few ``Event`` fields shown, decoded from the wire format; no TensorFlow, TensorBoard
or protobuf runtime). Every event file of a directory belongs to its one run, read in name
order (a restarted writer adds a newer file); ``add_hparams`` subdirectories (named
``str(time.time())``) are read into their parent run, their hyperparameters becoming its
config, instead of being runs of their own.

Scalars become series per tag with the event's step and wall time; text summaries are
text values; histograms are bar charts per step; images and audio are listed as media;
the hparams plugin's session start is the config and its session end (success or
failure) the status.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from tui.core.formats.base import READ_BUDGET, Adapter, Claim, Source, now
from tui.core.formats.files import newest_mtime, relative
from tui.core.formats.meta import finish_meta
from tui.core.formats.tfevents import (
    HPARAMS_DIR,
    PREFIX,
    SKIP_SUFFIXES,
    Decoded,
    EventReader,
    event_files,
)
from tui.core.records import RecordBuilder
from tui.core.sanitize import sanitize
from tui.core.store import Batch

MEDIA_LIMIT = 500
"""Most media entries (images, audio) listed per run."""

__all__ = ["PREFIX", "TensorBoardAdapter", "TensorBoardSource", "event_files"]


class TensorBoardSource(Source):
    """The event files of one TensorBoard log directory."""

    format = "tensorboard"

    def __init__(self, root: Path, key: str, directory: Path) -> None:
        super().__init__(root, key, directory)
        self.reader = EventReader(root, directory)
        self._config: dict[str, Any] = {}
        self._status: str | None = None
        self._media: list[str] = []
        self._meta: dict[str, Any] | None = None

    def watched_files(self) -> list[Path]:
        return self.reader.paths()

    def changed(self) -> bool:
        changed = super().changed()
        if self.reader.recheck:
            self.reader.recheck = False
            return True
        return changed

    def _meta_now(self) -> dict[str, Any] | None:
        name = self.directory.name if self.directory != self.root else self.root.name
        meta = finish_meta(
            {
                "name": name,
                "status": self._status or "unknown",
                "config": self._config,
                "properties": {"event_files": len(self.reader.names())},
            }
        )
        if meta == self._meta:
            return None
        self._meta = meta
        return meta

    def absorb(self, decoded: Decoded, replaced: bool) -> tuple[str, ...] | None:
        """Keep the config, status and media of ``decoded``; the media list when it changed."""
        if replaced:
            self._config, self._status, self._media = {}, None, []
        self._config.update(decoded.config)
        self._status = decoded.status or self._status
        if not decoded.media and not replaced:
            return None
        room = MEDIA_LIMIT - len(self._media)
        self._media.extend(sanitize(m, 200) for m in decoded.media[: max(0, room)])
        return tuple(self._media)

    def preview(self, tail_bytes: int = 65536) -> Batch | None:
        """The run listed by its name and event files: TFRecord framing cannot be found from a
        file's end (no block boundaries), and the hyperparameters are events like the rest."""
        return self.listing(TensorBoardSource(self.root, self.key, self.directory)._meta_now())

    def read(self, budget: int = READ_BUDGET) -> Batch | None:
        decoded, replaced = self.reader.read(budget)
        self.more = self.reader.more
        media = self.absorb(decoded, replaced)
        builder = RecordBuilder(0, now())
        builder.add_records(decoded.records)
        block = builder.build()
        meta = self._meta_now()
        if block is None and meta is None and not decoded.notes and not replaced and media is None:
            return None
        return self.batch(
            records=block,
            replace=replaced,
            meta=meta,
            notes=tuple(decoded.notes),
            mtime=newest_mtime(self.watched_files()),
            media=media,
        )


class TensorBoardAdapter(Adapter):
    """Claims directories holding TensorBoard event files (checks names only)."""

    format = "tensorboard"

    def discover(self, root: Path, directory: Path, names: list[str]) -> Claim | None:
        if "metrics.jsonl" in names or "run.json" in names:
            return None
        if not any(n.startswith(PREFIX) and not n.endswith(SKIP_SUFFIXES) for n in names):
            return None
        hparams = frozenset(n for n in names if HPARAMS_DIR.fullmatch(n))
        source = TensorBoardSource(root, relative(directory, root), directory)
        return Claim(sources=[source], skip=hparams)
