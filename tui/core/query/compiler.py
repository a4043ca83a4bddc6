"""From a syntax tree to one predicate over a run: closures built once, so that matching a
run costs microseconds and never raises."""

from __future__ import annotations

import math
import numbers
import re
from collections.abc import Callable, Mapping
from typing import Any, TypeAlias

from tui.core.query.fields import LISTS, MISSING, field_getter, summary_getter
from tui.core.query.patterns import glob_test, has_glob, same_text_test, search_test, substring_test
from tui.core.query.syntax import And, Compare, Invalid, Node, Not, Word, say
from tui.core.sizes import parse_size

_ORDER_OPS = frozenset({"<", "<=", ">", ">="})
_NUMBER = re.compile(r"[+-]?(?:(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?|inf(?:inity)?|nan)", re.I)
Predicate: TypeAlias = Callable[[Any, Mapping[str, object] | None], bool]
"""Whether a run (with the fields the app computed for it) passes."""

Test = Callable[[Any], bool]  # one value against a comparison's operator and value


def _number(value: object) -> float | None:
    """The value as a float when it is a number or text spelling one; else ``None``."""
    if isinstance(value, float):
        return value
    if isinstance(value, str):
        text = value.strip()
        return float(text) if _NUMBER.fullmatch(text) else None
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        return None
    try:
        return float(value)
    except OverflowError:  # an int beyond float range
        return math.inf if isinstance(value, int) and value > 0 else -math.inf
    except (TypeError, ValueError):
        return None


def _text(value: object) -> str | None:
    """The value as text for equality, globs and regexes; ``None`` for mappings."""
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    if value is None:
        return "null"
    if isinstance(value, float):
        if math.isfinite(value) and value.is_integer() and abs(value) < 1e16:
            return str(int(value))
        return repr(float(value)).lower()  # float(): numpy's repr names its type
    if isinstance(value, Mapping):
        return None
    try:
        return str(value)
    except ValueError:  # an int too long to print
        return None


def _equals(pattern: str, glob: bool) -> Test:
    """Equality of one scalar value with ``pattern`` (``glob``: the ``:`` operator)."""
    if glob and pattern == "*":
        return lambda value: True
    target = _number(pattern) if _NUMBER.fullmatch(pattern.strip()) else None
    if target is not None and math.isnan(target):

        def is_nan(value: object) -> bool:
            number = _number(value)
            return number is not None and math.isnan(number)

        return is_nan
    text_test = same_text_test(pattern, glob)

    def equals(value: object) -> bool:
        if target is not None:
            number = _number(value)
            if number is not None:
                return number == target
        text = _text(value)
        return text is not None and text_test(text)

    return equals


def _any(test: Test) -> Test:
    """``test`` applied to a scalar, or to any element of a list or set."""

    def each(value: object) -> bool:
        if isinstance(value, LISTS):
            return any(test(item) for item in value)
        return test(value)

    return each


def _value_test(op: str, pattern: str) -> Test:
    """The test one operator applies to a field's value (already known to exist)."""
    if op == "~":
        search = search_test(pattern)

        def matches(value: object) -> bool:
            text = _text(value)
            return text is not None and search(text)

        return _any(matches)
    if op == ":":
        return _any(_equals(pattern, glob=True))
    equals = _any(_equals(pattern, glob=False))
    if op in ("=", "=="):
        return equals
    if op == "!=":

        def differs(value: object) -> bool:
            number = _number(value)
            return not (number is not None and math.isnan(number)) and not equals(value)

        return differs
    target = float(pattern.strip())  # _check_value made sure it is a number
    compare: Callable[[float], bool] = {
        "<": lambda x: x < target,
        "<=": lambda x: x <= target,
        ">": lambda x: x > target,
        ">=": lambda x: x >= target,
    }[op]

    def ordered(value: object) -> bool:
        number = _number(value)
        return number is not None and compare(number)  # NaN compares false

    return _any(ordered)


def _check_value(op: str, pattern: str, subject: str, key: str) -> None:
    """Reject values that cannot mean anything for ``op``."""
    stripped = pattern.strip()
    is_number = _NUMBER.fullmatch(stripped) is not None
    if is_number and op != ":" and op != "~" and math.isnan(float(stripped)):
        raise Invalid(
            "cannot compare with NaN",
            "value",
            f"every comparison with NaN is false: {say(subject + ':nan')} finds a NaN value,"
            f" {say('nonfinite(' + key + ')>0')} runs that ever had a NaN or infinity",
        )
    if op in _ORDER_OPS and not is_number:
        raise Invalid(
            f"expected a number after {say(subject + op)}", "value", f"got {say(pattern)}"
        )


def _size_value(op: str, pattern: str, key: str) -> str:
    """The bytes a size value names, as number text (``gpu_mem`` compares sizes)."""
    if op == ":" and pattern.strip() == "*":
        return pattern
    if op == "~":
        raise Invalid(f'"~" cannot be used with {key}', "op", f"compare a size: {key}>20GB")
    size = parse_size(pattern)
    if size is None:
        raise Invalid(
            f"{key} needs a size with a unit, e.g. {key}>20GB",
            "value",
            f"got {say(pattern)}; units B, KB, MB, GB, TB (1024-based, also KiB...TiB)",
        )
    return repr(size)


def _tag_test(op: str, pattern: str) -> Test:
    """``tag:NAME`` (a tag named NAME, or a tag valued NAME), ``tag:K=V``, ``tag~re``."""
    if op == "~":
        search = search_test(pattern)

        def found(tags: Mapping[Any, Any]) -> bool:
            for name, value in tags.items():
                if value is not False and value is not None and search(str(name)):
                    return True
                text = None if isinstance(value, bool) else _text(value)
                if text is not None and search(text):
                    return True
            return False

        return found
    glob = op == ":"
    name_test = same_text_test(pattern, glob)
    value_test = _any(_equals(pattern, glob))
    pair: tuple[Callable[[str], bool], Test] | None = None
    if "=" in pattern:
        left, right = pattern.split("=", 1)
        pair = (same_text_test(left, glob), _any(_equals(right, glob)))

    def tagged(tags: Mapping[Any, Any]) -> bool:
        for name, value in tags.items():
            label = str(name)
            if value is not False and value is not None and name_test(label):
                return True
            if not isinstance(value, bool) and value_test(value):
                return True
            if pair is not None and pair[0](label) and pair[1](value):
                return True
        return False

    if op == "!=":
        return lambda tags: not tagged(tags)
    return tagged


def compile_compare(node: Compare) -> Predicate:
    if node.func is not None:
        if node.op == "~":
            raise Invalid(
                f'"~" cannot be used with {node.func}()',
                "op",
                '"~" matches text and functions give numbers: use <, <=, >, >=, =, != or :',
            )
        getter = summary_getter(node.func, node.key)
        kind = "plain"
        subject = f"{node.func}({node.key})"
    else:
        getter, kind = field_getter(node.key)
        subject = node.key
    value = node.value
    if kind == "size":
        value, kind = _size_value(node.op, node.value, subject), "plain"
    if kind != "plain" and node.op in _ORDER_OPS:
        name = "tags" if kind == "tags" else "rules"
        raise Invalid(
            f'"{node.op}" cannot be used with {name}', "op", f"use {node.key}:NAME to match one"
        )
    _check_value(node.op, value, subject, node.key)
    test = _tag_test(node.op, value) if kind == "tags" else _value_test(node.op, value)

    def compare(run: Any, extra: Mapping[str, object] | None) -> bool:
        value = getter(run, extra)
        return value is not MISSING and test(value)

    return compare


def _compile_word(text: str) -> Predicate:
    test = glob_test(text, whole=False) if has_glob(text) else substring_test(text)

    def word(run: Any, extra: Mapping[str, object] | None) -> bool:
        return test(run.name) or test(run.path or run.key)

    return word


def compile_node(node: Node, cache: Mapping[Compare, Predicate]) -> Predicate:
    if isinstance(node, Compare):
        cached = cache.get(node)
        return cached if cached is not None else compile_compare(node)
    if isinstance(node, Word):
        return _compile_word(node.text)
    if isinstance(node, Not):
        inner = compile_node(node.item, cache)
        return lambda run, extra: not inner(run, extra)
    parts = tuple(compile_node(item, cache) for item in node.items)
    if isinstance(node, And):

        def every(run: Any, extra: Mapping[str, object] | None) -> bool:
            for part in parts:  # noqa: SIM110 - no generator per run on the hot path
                if not part(run, extra):
                    return False
            return True

        return every

    def some(run: Any, extra: Mapping[str, object] | None) -> bool:
        for part in parts:  # noqa: SIM110 - no generator per run on the hot path
            if part(run, extra):
                return True
        return False

    return some
