from __future__ import annotations

import re

from hypothesis import given
from hypothesis import strategies as st

from tui.core.sanitize import decode, sanitize, sanitize_tree

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
