"""Walk ROOT and let each format's adapter claim the runs it recognises."""

from __future__ import annotations

import errno
import os
import time
from collections.abc import Callable
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


class Walk:
    """A walk of ROOT that may stop and go on later, so a large ROOT is walked in slices.

    Symbolic links to directories are not followed. What a directory holds is taken when
    the walk reaches it: a walk spread over minutes sees each directory as it was then.

    Args:
        root: the directory to walk.
        adapters: the format adapters, asked in order about each directory.
        max_depth: how many levels below ``root`` are looked into.
        keep: which sources found go into :attr:`found` (default: all). A caller that
            already holds most runs drops the others here, as each directory is done:
            kept to the end of a walk of thousands of runs, the sources made again only
            to be thrown away were old enough for the collector to go through everything
            the process holds.
    """

    def __init__(
        self,
        root: Path,
        adapters: list[Adapter],
        max_depth: int = MAX_DEPTH,
        keep: Callable[[Source], bool] | None = None,
    ) -> None:
        self.root = root
        self.adapters = adapters
        self.max_depth = max_depth
        self.keep = keep
        self.found = Found()
        self._stack: list[tuple[Path, int]] = [(root, 0)]

    @property
    def done(self) -> bool:
        """Whether every directory has been visited."""
        return not self._stack

    def step(self, seconds: float | None = None) -> bool:
        """Visit directories for about ``seconds`` of this thread's CPU time (``None``: to
        the end); returns :attr:`done`."""
        stack = self._stack
        until = None if seconds is None else time.thread_time() + seconds
        while stack:
            self._visit(*stack.pop())
            if until is not None and time.thread_time() >= until:
                break
        return not stack

    def _visit(self, directory: Path, depth: int) -> None:
        root, found = self.root, self.found
        try:
            with os.scandir(directory) as entries:
                listing = [(e.name, e.is_dir(follow_symlinks=False)) for e in entries]
        except OSError as exc:
            if exc.errno in (errno.EACCES, errno.EPERM) and directory != root:
                self._add([UnreadableSource(root, directory, exc.strerror or str(exc))])
            else:
                found.errors.append(f"{relative(directory, root)}: {exc.strerror or exc}")
            return
        found.directories.append(directory)
        names = [name for name, _ in listing]
        prune = False
        skip: set[str] = set()
        for adapter in self.adapters:
            try:
                claim = adapter.discover(root, directory, names)
            except Exception as exc:  # an adapter bug must not stop discovery of others
                found.errors.append(f"{adapter.format} adapter failed in {directory}: {exc!r}")
                continue
            if claim is None:
                continue
            self._add(claim.sources)
            found.directories.extend(claim.watch)
            skip |= claim.skip
            if claim.prune:
                prune = True
                break
        if prune or depth >= self.max_depth:
            return
        for name, is_dir in sorted(listing, reverse=True):
            if is_dir and name not in SKIP_DIRS and name not in skip and not name.startswith("."):
                self._stack.append((directory / name, depth + 1))

    def _add(self, sources: list[Source]) -> None:
        keep = self.keep
        self.found.sources.extend(sources if keep is None else filter(keep, sources))


def walk(
    root: Path,
    adapters: list[Adapter],
    max_depth: int = MAX_DEPTH,
    keep: Callable[[Source], bool] | None = None,
) -> Found:
    """Find every run under ``root`` in one go (see :class:`Walk`)."""
    whole = Walk(root, adapters, max_depth, keep)
    whole.step()
    return whole.found
