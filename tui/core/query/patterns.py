"""Tests of text for the query language: case-insensitive equality and substrings, and
globs and regular expressions run on RE2, whose time is linear in the text."""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import TypeAlias

import re2  # type: ignore[import-untyped]  # google-re2 ships no type information

from tui.core.query.syntax import Invalid, say
from tui.core.sanitize import sanitize

MAX_REGEX_PROGRAM = 1000
"""Largest RE2 program a regular expression or glob may compile to (``^bert-.*`` is 20)."""

_REGEX_CHARS = frozenset(".^$*+?{}[]\\|()")
_UP_TO = re.compile(r"\{,(\d*)\}")  # Python's {,n}: RE2 would read it as text
TextTest: TypeAlias = Callable[[str], bool]


def _linear(pattern: str, shown: str, *, whole: bool = False, dot_nl: bool = False) -> TextTest:
    """A case-insensitive RE2 test of text: a search, or a match of the ``whole`` text.

    RE2 runs in time linear in the text whatever the pattern, where Python's ``re``
    backtracks exponentially on patterns like ``^(a+)+$``. ``shown`` is what the user
    typed, for messages.

    Raises:
        Invalid: RE2 cannot compile the pattern, or its program is too large.
    """
    options = re2.Options()
    options.case_sensitive = False
    options.dot_nl = dot_nl
    options.log_errors = False  # RE2 would write to the terminal the app draws on
    try:
        compiled = re2.compile(pattern, options)
    except (re2.error, ValueError) as error:  # ValueError: a lone surrogate
        raise Invalid(
            f"invalid regular expression {say(shown)}", "value", _regex_problem(pattern, error)
        ) from None
    size = compiled.programsize
    if size > MAX_REGEX_PROGRAM:
        raise Invalid(
            f"pattern {say(shown)} is too complex",
            "value",
            f"it compiles to {size:,} steps, the limit is {MAX_REGEX_PROGRAM:,}: "
            "use fewer or smaller {n,m} repetitions",
        )
    find = compiled.fullmatch if whole else compiled.search
    return lambda text: find(text) is not None


def glob_test(pattern: str, *, whole: bool) -> TextTest:
    """``*`` and ``?`` wildcards over the ``whole`` text, or anywhere in it."""
    body = "".join(".*" if c == "*" else "." if c == "?" else re2.escape(c) for c in pattern)
    return _linear(body, pattern, whole=whole, dot_nl=True)


def substring_test(text: str) -> TextTest:
    """Case-insensitive substring test."""
    folded = text.casefold()
    return lambda field: folded in field.casefold()


def has_glob(text: str) -> bool:
    return "*" in text or "?" in text


def same_text_test(pattern: str, glob: bool) -> Callable[[str], bool]:
    """A case-insensitive test of text: equality, or a whole-text glob."""
    if glob and has_glob(pattern):
        return glob_test(pattern, whole=True)
    folded = pattern.casefold()
    return lambda text: text.casefold() == folded


def search_test(pattern: str) -> TextTest:
    """Case-insensitive substring test, or a regex search when ``pattern`` uses regex."""
    if not _REGEX_CHARS.intersection(pattern):
        return substring_test(pattern)
    return _linear(_python_syntax(pattern), pattern)


def _python_syntax(pattern: str) -> str:
    """Python spellings RE2 reads otherwise: ``\\Z`` (end of text), ``{,n}`` (0 to n times)."""
    if "\\Z" not in pattern and "{," not in pattern:
        return pattern
    out: list[str] = []
    i, end = 0, len(pattern)
    in_class = False
    while i < end:
        char = pattern[i]
        if char == "\\":
            pair = pattern[i : i + 2]
            out.append("\\z" if pair == "\\Z" and not in_class else pair)
            i += 2
            continue
        if in_class:
            in_class = char != "]"
        elif char == "[":
            # "]" right after "[" or "[^" is a member, not the end of the class.
            start = i + 1 + (pattern[i + 1 : i + 2] == "^")
            start += pattern[start : start + 1] == "]"
            out.append(pattern[i:start])
            i, in_class = start, True
            continue
        elif (repeat := _UP_TO.match(pattern, i)) is not None:
            out.append(f"{{0,{repeat.group(1)}}}")
            i = repeat.end()
            continue
        out.append(char)
        i += 1
    return "".join(out)


def _regex_problem(pattern: str, error: Exception) -> str:
    """What is wrong with a pattern RE2 refused, in Python's words when Python agrees."""
    try:
        re.compile(pattern)
    except (re.error, OverflowError, RecursionError, ValueError) as python_error:
        return sanitize(getattr(python_error, "msg", None) or str(python_error), 120)
    detail = error.args[0] if error.args else error
    if isinstance(detail, bytes):
        detail = detail.decode("utf-8", "replace")
    return (
        f"{sanitize(str(detail), 120)}: backreferences and lookaround are not supported "
        "(filters use a linear-time regex engine, so no pattern can hang them)"
    )
