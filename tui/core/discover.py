"""Walk ROOT and let each format's adapter claim the runs it recognises."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

from tui.core.formats.base import Adapter, Source

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
            found.errors.append(f"{directory}: {exc.strerror or exc}")
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
