"""Foreign formats: the adapters in discovery order, and helpers they share.

Each foreign adapter only ever reads. Order matters where one directory could match
several formats: MLflow claims whole stores (and prunes), NePS claims its search tree,
Gymnos claims execution directories, then TensorBoard event directories and CSV logs.

Shared here: bounded, symlink- and FIFO-safe reads of small files, a YAML loader that
tolerates Python-object tags, ISO timestamps and the metadata finishing step that
sanitizes every string.
"""

from __future__ import annotations

import json
import math
import os
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import orjson
import yaml

from tui.core.formats.base import Adapter, read_small
from tui.core.sanitize import sanitize, sanitize_tree

"""Largest metadata file (YAML, JSON) read whole; larger ones are refused with a note."""

STATUSES = ("running", "finished", "failed", "killed", "pending", "unknown")
"""The states a foreign adapter may claim in ``meta["status"]``."""

INCOMPLETE_AFTER = 30.0
"""Seconds a half-written record may sit unchanged before it is reported."""


def adapters() -> list[Adapter]:
    """Every foreign adapter, in the order the discovery walk should consult them."""
    from tui.core.formats.csvlog import CsvAdapter
    from tui.core.formats.gymnos import GymnosAdapter
    from tui.core.formats.mlflow import MlflowAdapter
    from tui.core.formats.neps import NepsAdapter
    from tui.core.formats.tensorboard import TensorBoardAdapter

    return [MlflowAdapter(), NepsAdapter(), GymnosAdapter(), TensorBoardAdapter(), CsvAdapter()]


def stamp(path: Path) -> tuple[int, int, int] | None:
    """``(inode, size, mtime_ns)`` of ``path``, or ``None`` when it does not exist."""
    try:
        info = os.stat(path)
    except OSError:
        return None
    return (info.st_ino, info.st_size, info.st_mtime_ns)


class _TolerantLoader(yaml.SafeLoader):
    """SafeLoader that turns unknown tags (``!!python/object``...) into plain data."""


def _untagged(loader: yaml.SafeLoader, suffix: str, node: yaml.Node) -> Any:
    if isinstance(node, yaml.MappingNode):
        return loader.construct_mapping(node, deep=True)
    if isinstance(node, yaml.SequenceNode):
        return loader.construct_sequence(node, deep=True)
    return loader.construct_scalar(node)  # type: ignore[arg-type]


_TolerantLoader.add_multi_constructor("", _untagged)


def parse_yaml(data: bytes, name: str) -> tuple[Any, str | None]:
    """Parse YAML with a safe loader; ``(value, None)`` or ``(None, reason)``."""
    try:
        # _TolerantLoader is a SafeLoader: no Python object is ever constructed.
        return yaml.load(data, Loader=_TolerantLoader), None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}" if mark is not None else ""
        problem = getattr(exc, "problem", None) or "unreadable"
        return None, sanitize(f"{name}: invalid YAML{where} ({problem})", 300)
    except (RecursionError, ValueError, TypeError) as exc:
        return None, sanitize(f"{name}: invalid YAML ({exc})", 300)


def _nan_constant(name: str) -> float:
    return {"NaN": math.nan, "Infinity": math.inf, "-Infinity": -math.inf}[name]


def parse_json(data: bytes, name: str) -> tuple[Any, str | None]:
    """Parse JSON (Python's ``NaN``/``Infinity`` accepted); ``(value, None)`` or ``(None, reason)``."""
    try:
        return orjson.loads(data), None
    except orjson.JSONDecodeError as first:
        try:
            return json.loads(data.decode("utf-8", "replace"), parse_constant=_nan_constant), None
        except (ValueError, RecursionError):
            return None, sanitize(f"{name}: invalid JSON ({first})", 300)


def load_file(path: Path, root: Path, kind: str) -> tuple[Any, str | None]:
    """Read and parse one YAML or JSON file (``kind``): ``(value, error)``; missing gives ``(None, None)``."""
    data, error = read_small(path, root)
    if data is None:
        return None, error
    if not data.strip():
        return None, None
    name = path.name
    return parse_yaml(data, name) if kind == "yaml" else parse_json(data, name)


def iso(seconds: object) -> str | None:
    """ISO-8601 UTC text for epoch seconds (``None`` for anything that is not a finite number)."""
    if isinstance(seconds, bool) or not isinstance(seconds, (int, float)):
        return None
    if not math.isfinite(seconds) or seconds <= 0:
        return None
    try:
        return datetime.fromtimestamp(seconds, timezone.utc).isoformat()
    except (OverflowError, OSError, ValueError):
        return None


def number(value: object) -> float | None:
    """``value`` as a float when it is a real number (bools and text are not)."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    return float(value)


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


def finish_meta(meta: dict[str, Any]) -> dict[str, Any]:
    """Drop empty fields and sanitize every string, keys included."""
    cleaned = {k: v for k, v in meta.items() if v is not None and v != {}}
    return sanitize_tree(cleaned)  # type: ignore[return-value]


def relative(path: Path, root: Path) -> str:
    """``path`` relative to ``root`` in POSIX form (``.`` for the root itself)."""
    try:
        return path.relative_to(root).as_posix() or "."
    except ValueError:
        return path.as_posix()


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
