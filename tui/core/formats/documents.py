"""Small YAML and JSON documents (configs, reports, metadata), read whole and parsed safely.

YAML goes through a ``SafeLoader`` that turns tags it does not know (``!!python/object``
and friends, which NePS and Lightning write) into plain data instead of failing; JSON
accepts Python's ``NaN``/``Infinity`` tokens. Problems come back as sanitized reasons,
never as exceptions.
"""

from __future__ import annotations

import functools
import json
import math
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import orjson

from tui.core.formats.files import read_small
from tui.core.sanitize import sanitize

if TYPE_CHECKING:
    import yaml


@functools.cache
def _loader() -> type[yaml.SafeLoader]:
    """A SafeLoader that turns unknown tags (``!!python/object``...) into plain data.

    Built on first use: PyYAML costs 12 ms to import, and most ROOTs hold no YAML.
    """
    import yaml

    def untagged(loader: yaml.SafeLoader, suffix: str, node: yaml.Node) -> Any:
        if isinstance(node, yaml.MappingNode):
            return loader.construct_mapping(node, deep=True)
        if isinstance(node, yaml.SequenceNode):
            return loader.construct_sequence(node, deep=True)
        assert isinstance(node, yaml.ScalarNode)
        return loader.construct_scalar(node)

    class TolerantLoader(yaml.SafeLoader):
        pass

    TolerantLoader.add_multi_constructor("", untagged)
    return TolerantLoader


def parse_yaml(data: bytes, name: str) -> tuple[Any, str | None]:
    """Parse YAML with a safe loader; ``(value, None)`` or ``(None, reason)``."""
    loader = _loader()
    import yaml  # already imported by _loader: a dictionary lookup

    try:
        # The loader is a SafeLoader: no Python object is ever constructed.
        return yaml.load(data, Loader=loader), None
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


def load_file(path: Path, root: Path, kind: Literal["yaml", "json"]) -> tuple[Any, str | None]:
    """Read and parse one YAML or JSON file (``kind``): ``(value, error)``; missing gives ``(None, None)``."""
    data, error = read_small(path, root)
    if data is None:
        return None, error
    if not data.strip():
        return None, None
    name = path.name
    return parse_yaml(data, name) if kind == "yaml" else parse_json(data, name)
