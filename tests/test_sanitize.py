from __future__ import annotations

import re

from hypothesis import given
from hypothesis import strategies as st

from tui.core.sanitize import decode, sanitize, sanitize_dict, sanitize_tree

FORBIDDEN = re.compile(
    r"[\x00-\x08\x0a-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069\u200e\u200f\ud800-\udfff]"
)

hostile = st.text(
    alphabet=st.sampled_from(
        list("ab[]/\\;=@:\x07\x1b\x9b\x9d\x90\x9c\x00\r\n\t\x7fPX^_\u202e\u2066\ud800 ")
    ),
    max_size=200,
)


@given(st.one_of(hostile, st.text(max_size=300)))
def test_no_control_character_survives(text: str) -> None:
    assert FORBIDDEN.search(sanitize(text)) is None


def test_escape_sequences_are_removed() -> None:
    assert sanitize("a\x1b[31mred\x1b[0m b") == "ared b"
    assert sanitize("\x1b[31mred\x1b[0m") == "red"
    assert sanitize("x\x1b]52;c;ZXZpbA==\x07y") == "xy"  # OSC 52 clipboard write
    assert sanitize("\x1b[2Jclear") == "clear"
    assert sanitize("\x1bPdcs payload\x1b\\after") == "after"


def test_bidi_controls_become_visible() -> None:
    assert sanitize("abc\u202edef") == "abc<U+202E>def"


def test_markup_is_left_as_text_for_the_ui_to_escape() -> None:
    # The sanitizer is about bytes; markup safety comes from rendering via Text objects.
    assert sanitize("[bold red]x[/] [@click=app.quit]") == "[bold red]x[/] [@click=app.quit]"


def test_length_is_capped() -> None:
    out = sanitize("x" * 10_000, 100)
    assert len(out) == 100 and out.endswith("…")


def test_invalid_utf8_is_replaced() -> None:
    assert decode(b"ok \xff\xfe done") == "ok \ufffd\ufffd done"


def test_tree_sanitizes_keys_and_values() -> None:
    tree = sanitize_tree({"k\x1b[1m": ["v\x07", {"n": "\x9b1mx"}]})
    assert tree == {"k": ["v\ufffd", {"n": "x"}]}


def _sanitized_one_by_one(value: object, depth: int = 0) -> object:
    """What ``sanitize_tree`` gives, spelled as its contract reads: every string on its own."""
    if isinstance(value, str):
        return sanitize(value)
    if depth > 32:
        return "…"
    if isinstance(value, dict):
        return {
            sanitize(str(k), 200): _sanitized_one_by_one(v, depth + 1) for k, v in value.items()
        }
    if isinstance(value, (list, tuple)):
        return [_sanitized_one_by_one(v, depth + 1) for v in value]
    return value


_TEXT = st.one_of(hostile, st.text(max_size=20), st.text(alphabet="ab", min_size=190, max_size=210))
_JSONISH = st.recursive(
    st.one_of(_TEXT, st.integers(), st.floats(), st.booleans(), st.none()),
    lambda inner: st.one_of(
        st.lists(inner, max_size=4),
        st.dictionaries(st.one_of(_TEXT, st.integers()), inner, max_size=4),
    ),
    max_leaves=30,
)


def _nested(value: object, depth: int) -> object:
    for i in range(depth):
        value = {f"k{i}": value} if i % 2 else [value, 1]
    return value


@given(st.one_of(_JSONISH, st.builds(_nested, _JSONISH, st.integers(28, 40))))
def test_a_tree_is_sanitized_as_each_string_alone_would_be(value: object) -> None:
    """Plain metadata passes through a check of all its keys or texts at once; what it
    gives is what sanitizing every string alone gives, at any depth, and stays so."""
    tree = {"root": value}
    once = sanitize_dict(tree)
    assert once == _sanitized_one_by_one(tree)
    assert sanitize_dict(once) == once
    assert sanitize_tree(value) == _sanitized_one_by_one(value)
