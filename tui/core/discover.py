"""Walk ROOT and let each format's adapter claim the runs it recognises."""

from __future__ import annotations

import errno
import os
from dataclasses import dataclass, field
from pathlib import Path

from tui.core.formats.base import READ_BUDGET, Adapter, Source
from tui.core.formats.files import relative
from tui.core.store import Batch

SKIP_DIRS = frozenset(
    {
        ".git",
        ".hg",
        ".tracktui",
        "__pycache__",
        "node_modules",
        ".venv",
        "venv",
        "site-packages",
        ".ipynb_checkpoints",
        "checkpoints",
        "wandb",
        "media",
    }
)
"""Directories never searched for runs (large, or not runs)."""

MAX_DEPTH = 8

NO_PERMISSION = "no permission"
"""The format shown for a directory under ROOT that cannot be listed."""


class UnreadableSource(Source):
    """A directory under ROOT we may not list: shown as a run with no permission, not left out.

    It might hold a run or not; nobody can tell without reading it. Each walk of ROOT tries
    it again, and the run found there once it is readable takes its place (same key).
    """

    format = NO_PERMISSION

    def __init__(self, root: Path, directory: Path, reason: str) -> None:
        super().__init__(root, relative(directory, root), directory)
        self.reason = reason
        self._told = False

    def readable(self) -> bool:
        """Whether the directory may be listed now."""
        return os.access(self.directory, os.R_OK | os.X_OK)

    def read(self, budget: int = READ_BUDGET) -> Batch | None:
        if self._told:
            return None
        self._told = True
        return self.batch(
            notes=(
                f"no permission: {self.path} cannot be listed ({self.reason}); "
                "looked at again each time ROOT is walked",
            )
        )


@dataclass(slots=True)
class Found:
    """Result of one walk: the sources and the directories visited."""

    sources: list[Source] = field(default_factory=list)
    directories: list[Path] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)


def walk(root: Path, adapters: list[Adapter], max_depth: int = MAX_DEPTH) -> Found:
    """Find every run under ``root`` (symlinked directories are not followed)."""
    found = Found()
    stack: list[tuple[Path, int]] = [(root, 0)]
    while stack:
        directory, depth = stack.pop()
        try:
            with os.scandir(directory) as entries:
                listing = [(e.name, e.is_dir(follow_symlinks=False)) for e in entries]
        except OSError as exc:
            if exc.errno in (errno.EACCES, errno.EPERM) and directory != root:
                found.sources.append(UnreadableSource(root, directory, exc.strerror or str(exc)))
            else:
                found.errors.append(f"{relative(directory, root)}: {exc.strerror or exc}")
            continue
        found.directories.append(directory)
        names = [name for name, _ in listing]
        prune = False
        skip: set[str] = set()
        for adapter in adapters:
            try:
                claim = adapter.discover(root, directory, names)
            except Exception as exc:  # an adapter bug must not stop discovery of others
                found.errors.append(f"{adapter.format} adapter failed in {directory}: {exc!r}")
                continue
            if claim is None:
                continue
            found.sources.extend(claim.sources)
            found.directories.extend(claim.watch)
            skip |= claim.skip
            if claim.prune:
                prune = True
                break
        if prune or depth >= max_depth:
            continue
        for name, is_dir in sorted(listing, reverse=True):
            if is_dir and name not in SKIP_DIRS and name not in skip and not name.startswith("."):
                stack.append((directory / name, depth + 1))
    return found
