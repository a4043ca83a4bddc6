"""Where a query's keys are found in a run: its own fields, GPU use, tags, the rules the
app says it triggered, its config, properties, metrics and run.json, and metric
summaries. A getter returns :data:`MISSING` for a key the run does not have."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any, TypeAlias

from tui.core.query.syntax import Invalid, say

LISTS = (list, tuple, set, frozenset)
"""Values that hold several (a config list, a set of rules): any element may match."""

_SPECIAL = frozenset({"name", "path", "key", "status", "format", "group", "step"})
_GPU_KEYS = frozenset({"gpu_mem", "gpu_util"})
_TAG_KEYS = frozenset({"tag", "tags"})
_RULE_KEYS = frozenset({"rule", "rules"})
_NAMESPACES = {
    "config": "config",
    "cfg": "config",
    "prop": "properties",
    "props": "properties",
    "properties": "properties",
    "metric": "metric",
    "metrics": "metric",
    "m": "metric",
    "tag": "tag",
    "tags": "tag",
}
_META_SKIP = frozenset({"config", "tags", "properties"})
BUILT_IN_KEYS = _SPECIAL | _GPU_KEYS | _TAG_KEYS | _RULE_KEYS
"""Keys every run has (a value, or an empty set of tags or rules): never unknown."""


class _Missing:
    """The value of a key a run does not have."""

    __slots__ = ()

    def __repr__(self) -> str:
        return "MISSING"


MISSING: Any = _Missing()
"""What a getter returns for a key the run does not have."""

Getter: TypeAlias = Callable[[Any, Mapping[str, object] | None], Any]


def _variants(key: str) -> tuple[str, ...]:
    """The key as typed and with its separators swapped (``a.b`` also finds ``a/b``)."""
    out = [key]
    for other in (key.replace(".", "/"), key.replace("/", ".")):
        if other not in out:
            out.append(other)
    return tuple(out)


def _lookup(node: Mapping[Any, Any], key: str, variants: tuple[str, ...]) -> Any:
    """``key`` in a nested mapping: a literal key, or a path split at ``.`` or ``/``."""
    for variant in variants:
        if variant in node:
            return node[variant]
    if len(variants) == 1 and "." not in key and "/" not in key:
        return MISSING
    for i, char in enumerate(key):
        if char == "." or char == "/":
            child = node.get(key[:i])
            if isinstance(child, Mapping):
                rest = key[i + 1 :]
                found = _lookup(child, rest, _variants(rest))
                if found is not MISSING:
                    return found
    return MISSING


def _metric(run: Any, variants: tuple[str, ...]) -> Any:
    """The last value of a scalar metric, else the latest text value."""
    series = run.series
    for name in variants:
        found = series.get(name)
        if found is not None:
            return found.last
    for name in variants:
        history = run.objects.get(name)
        if history:
            latest = history[-1][1]
            if isinstance(latest, str):
                return latest
    return MISSING


def _special(key: str) -> Getter:
    attribute: Callable[[Any], Any] = {
        "name": lambda run: run.name,
        "path": lambda run: run.path or run.key,
        "key": lambda run: run.key,
        "status": lambda run: run.status,
        "format": lambda run: run.format,
        "group": lambda run: MISSING if run.group is None else run.group,
        "step": lambda run: MISSING if run.last_step is None else run.last_step,
    }[key]

    def get(run: Any, extra: Mapping[str, object] | None) -> Any:
        if extra is not None and key in extra:
            return extra[key]
        return attribute(run)

    return get


def _gpu(key: str) -> Getter:
    """``gpu_mem`` (bytes) or ``gpu_util`` (percent) of the run's latest GPU use."""

    def get(run: Any, extra: Mapping[str, object] | None) -> Any:
        if extra is not None and key in extra:
            return extra[key]
        use = getattr(run, "gpu", None)
        if use is None:
            return MISSING
        if key == "gpu_mem":
            return float(use.memory)
        return MISSING if use.utilization is None else use.utilization

    return get


def _tags(run: Any, extra: Mapping[str, object] | None) -> Any:
    tags: Any = run.tags
    if extra is not None:
        for name in ("tags", "tag"):
            if name in extra:
                tags = extra[name]
                break
    if isinstance(tags, Mapping):
        return tags
    if isinstance(tags, LISTS):
        return {item: True for item in tags if isinstance(item, str)}
    return {tags: True} if isinstance(tags, str) else {}


def _rules(run: Any, extra: Mapping[str, object] | None) -> Any:
    if extra is None:
        return frozenset()
    names: set[object] = set()
    for name in ("rules", "rule"):
        value = extra.get(name)
        if isinstance(value, str):
            names.add(value)
        elif isinstance(value, (*LISTS, Mapping)):
            names.update(value)
    return frozenset(names)


def field_getter(key: str) -> tuple[Getter, str]:
    """The getter of a key and its kind: ``plain``, ``tags`` or ``rules``."""
    lowered = key.lower()
    if lowered in _SPECIAL:
        return _special(lowered), "plain"
    if lowered in _GPU_KEYS:
        return _gpu(lowered), "size" if lowered == "gpu_mem" else "plain"
    if lowered in _TAG_KEYS:
        return _tags, "tags"
    if lowered in _RULE_KEYS:
        return _rules, "rules"
    head, dot, rest = key.partition(".")
    space = _NAMESPACES.get(head.lower()) if dot else None
    if space is not None:
        if not rest:
            raise Invalid(f"expected a name after {say(key)}", "key")
        variants = _variants(rest)
        if space == "metric":
            return lambda run, extra: _metric(run, variants), "plain"
        if space == "tag":
            return lambda run, extra: _lookup(_tags(run, extra), rest, variants), "plain"
        if space == "config":
            return lambda run, extra: _lookup(run.config, rest, variants), "plain"
        return lambda run, extra: _lookup(run.properties, rest, variants), "plain"
    variants = _variants(key)
    in_meta = key not in _META_SKIP

    def get(run: Any, extra: Mapping[str, object] | None) -> Any:
        if extra is not None and key in extra:
            return extra[key]
        found = _lookup(run.config, key, variants)
        if found is MISSING:
            found = _lookup(run.properties, key, variants)
            if found is MISSING:
                found = _metric(run, variants)
                if found is MISSING and in_meta:
                    value = run.meta.get(key, MISSING)
                    found = MISSING if isinstance(value, Mapping) else value
        return found

    return get, "plain"


def summary_getter(func: str, key: str) -> Getter:
    """A metric summary (``func`` of FUNCTIONS), or MISSING when it has none."""
    names = list(_variants(key))
    head, dot, rest = key.partition(".")
    if dot and rest and _NAMESPACES.get(head.lower()) == "metric":
        names.extend(v for v in _variants(rest) if v not in names)
    read: Callable[[Any], Any] = {
        "last": lambda s: s.last,
        "min": lambda s: s.min if s.min_step is not None else MISSING,
        "max": lambda s: s.max if s.max_step is not None else MISSING,
        "count": lambda s: float(s.count),
        "nonfinite": lambda s: float(s.nonfinite),
    }[func]

    def get(run: Any, extra: Mapping[str, object] | None) -> Any:
        series = run.series
        for name in names:
            found = series.get(name)
            if found is not None:
                return read(found)
        return MISSING

    return get
