"""Names that tell runs apart: what the run table shows in its name column.

A run's own name is often not enough: every Valohai execution logs to ``train.log``, two
NePS searches both have a ``config_1``, two MLflow stores both hold an ``lr0.01``, and a
Gymnos execution is named by a timestamp. :func:`unique_names` keeps a name that is unique
and telling, names a run after its folder where the name only repeats a generic file name,
and gives repeated names the shortest suffix of the run's path that tells them apart.
"""

from __future__ import annotations

import re
from collections import defaultdict
from collections.abc import Iterable

GENERIC_STEMS = frozenset(
    {"train", "training", "output", "outputs", "metrics", "log", "logs", "events", "stdout"}
)
"""File names (without suffix) that say nothing about the run that wrote them."""

STRUCTURAL = frozenset(
    {"executions", "runs", "results", "configs", "trainings", "wandb", "mlruns", "logs"}
)
"""Folder names a tool puts between a project and its runs: skipped when naming a run."""

_TIMESTAMP = re.compile(r"[\d_:.T-]+")
_HEX_ID = re.compile(r"[0-9a-f]{16,}")
LONG_PART = 24
"""Path parts longer than this are shortened to their end in a suffix (ids live there)."""


def _parts(key: str) -> list[str]:
    """The components of a run key; an MLflow store's ``file#run-id`` counts as two."""
    return [piece for part in key.split("/") for piece in part.split("#") if piece]


def _short(part: str) -> str:
    if _HEX_ID.fullmatch(part):
        return part[:8]
    if len(part) > LONG_PART:
        return "…" + part[-(LONG_PART // 2) :]
    return part


def telling_name(key: str, name: str) -> str:
    """``name``, or a better one where it only repeats a generic file name (the run's
    folder) or is a bare timestamp (the stamp, then the nearest meaningful folder above)."""
    parts = _parts(key)
    if len(parts) < 2:
        return name
    last = parts[-1]
    stem, dot, _ = last.rpartition(".")
    if dot and stem == name and stem.lower() in GENERIC_STEMS:
        return parts[-2]
    if _TIMESTAMP.fullmatch(name) and any(c.isdigit() for c in name):
        above = next((p for p in reversed(parts[:-1]) if p.lower() not in STRUCTURAL), None)
        if above is not None:
            return f"{name} ({above})"  # the stamp first: a cut cell keeps what differs
    return name


def unique_names(runs: Iterable[tuple[str, str]]) -> dict[str, str]:
    """A distinct display name for each run, by key.

    Args:
        runs: ``(key, name)`` pairs: the run's path below ROOT and its own name.

    Returns:
        key -> name shown. Telling, unique names are kept as they are; runs sharing a name
        get the shortest suffix of their path that differs (``configs/config_1`` and
        ``results/config_1``), after the name when the path does not end with it
        (``lr0.01 (6a754863)``).
    """
    named = {key: telling_name(key, name) for key, name in runs}
    groups: dict[str, list[str]] = defaultdict(list)
    for key, name in named.items():
        groups[name].append(key)
    result: dict[str, str] = {}
    for name, keys in groups.items():
        if len(keys) == 1:
            result[keys[0]] = name
            continue
        parts = {key: [_short(p) for p in _parts(key)] for key in keys}
        longest = max(len(p) for p in parts.values())
        for depth in range(1, longest + 1):
            suffixes = {key: "/".join(p[-depth:]) for key, p in parts.items()}
            if len(set(suffixes.values())) == len(keys) or depth == longest:
                break
        for key, suffix in suffixes.items():
            if suffix == name or suffix.endswith("/" + name):
                result[key] = suffix
            else:
                result[key] = f"{name} ({suffix})" if suffix else name
    return result
