"""Safe, bounded access to a run's files for the format readers.

Every read goes through :func:`~tui.core.tail.open_regular` (no FIFOs, no devices, no
symbolic link out of ROOT), whole-file reads are capped, and listings never follow links.
"""

from __future__ import annotations

import os
from pathlib import Path

from tui.core.sanitize import escape_path, sanitize
from tui.core.tail import UnsafeFile, open_regular

SMALL_LIMIT = 4 * 1024 * 1024
"""Largest metadata file (run.json, YAML, JSON summaries) read whole."""

Stamp = tuple[int, int, int]
"""``(inode, size, mtime_ns)``: a file's identity and version, compared between reads."""


def read_small(path: Path, root: Path, limit: int = SMALL_LIMIT) -> tuple[bytes | None, str | None]:
    """Read a whole small file safely: ``(data, None)``, ``(None, None)`` when missing.

    Refuses FIFOs, devices and symlinks leading out of ``root``; a file over ``limit``
    bytes is refused with a reason rather than read.
    """
    try:
        fd = open_regular(path, root)
    except FileNotFoundError:
        return None, None
    except (UnsafeFile, OSError) as exc:
        return None, sanitize(str(exc), 300)
    try:
        # Sized by the file, not the limit: a read of ``limit`` bytes allocates them all.
        asked = min(os.fstat(fd).st_size, limit) + 1
        data = os.read(fd, asked)
        if len(data) == asked <= limit:  # the file grew since fstat: read on to the limit
            data += os.read(fd, limit + 1 - asked)
    except OSError as exc:
        return None, sanitize(f"{path.name}: {exc.strerror or exc}", 300)
    finally:
        os.close(fd)
    if len(data) > limit:
        return None, f"{sanitize(path.name, 200)} is larger than {limit // 1024} KiB; ignored"
    return data, None


def stamp(path: Path) -> Stamp | None:
    """The :data:`Stamp` of ``path``, or ``None`` when it does not exist."""
    try:
        info = os.stat(path)
    except OSError:
        return None
    return stamp_of(info)


def stamp_of(info: os.stat_result) -> Stamp:
    """The :data:`Stamp` of a file from a status already taken."""
    return (info.st_ino, info.st_size, info.st_mtime_ns)


def newest_mtime(paths: list[Path]) -> float | None:
    """The newest modification time among ``paths`` that exist."""
    best = None
    for path in paths:
        try:
            mtime = os.stat(path).st_mtime
        except OSError:
            continue
        if best is None or mtime > best:
            best = mtime
    return best


def relative(path: Path, root: Path) -> str:
    """``path`` relative to ``root`` in POSIX form (``.`` for the root itself), spelled by
    :func:`~tui.core.sanitize.escape_path`: run keys and paths come from directory names,
    which may hold escape sequences, newlines or bidi controls. File access goes through the
    raw path (``Source.directory``, or ``root / unescape_path(path)``)."""
    # Lexically, as Path.relative_to, on the strings (paths here are pathlib's, so already
    # normalised): a thousand runs' paths at the first paint cost 60 ms through pathlib.
    full, base = os.fspath(path), os.fspath(root).rstrip("/")
    if full == base or (not base and full == "/"):
        return "."
    if full.startswith(base + "/"):
        return escape_path(full[len(base) + 1 :])
    return escape_path(full)


def list_files(directory: Path, limit: int = 500, depth: int = 4) -> list[tuple[str, int, int]]:
    """Regular files under ``directory`` as ``(relative path, size, mtime_ns)``, sorted, bounded.

    Symbolic links are not followed; at most ``limit`` files and ``depth`` levels.
    """
    found: list[tuple[str, int, int]] = []
    stack: list[tuple[Path, str, int]] = [(directory, "", 0)]
    while stack and len(found) < limit:
        current, prefix, level = stack.pop()
        try:
            with os.scandir(current) as entries:
                items = sorted(entries, key=lambda e: e.name)
        except OSError:
            continue
        for entry in items:
            name = f"{prefix}{entry.name}"
            try:
                if entry.is_dir(follow_symlinks=False):
                    if level + 1 < depth:
                        stack.append((Path(entry.path), f"{name}/", level + 1))
                elif entry.is_file(follow_symlinks=False):
                    info = entry.stat(follow_symlinks=False)
                    found.append((name, info.st_size, info.st_mtime_ns))
            except OSError:
                continue
            if len(found) >= limit:
                break
    found.sort()
    return found
