"""Make untrusted text safe to display (DESIGN.md §10).

Every string that comes from a run (keys, values, names, log lines, paths, command lines,
error messages quoting any of those) passes through :func:`sanitize` once, at ingestion.
Terminal escape sequences are removed, other C0/C1 controls become U+FFFD, and bidi
controls are made visible so they cannot reorder what the user reads.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

MAX_TEXT = 4096
"""Default cap on one sanitized string, in characters."""

_SEQUENCES = re.compile(
    r"""
      (?:\x1b\[|\x9b)[\x30-\x3f]*[\x20-\x2f]*[\x40-\x7e]?      # CSI, final byte optional
    | (?:\x1b[\]PX^_]|[\x9d\x90\x98\x9e\x9f])                  # OSC / DCS / SOS / PM / APC
          [^\x07\x1b\x9c\n]*(?:\x07|\x1b\\|\x9c)?               #   payload up to BEL or ST
    | \x1b[\x20-\x2f]*[\x30-\x7e]?                             # any other ESC sequence
    """,
    re.VERBOSE,
)
_CONTROLS = re.compile(r"[\x00-\x08\x0a-\x1f\x7f-\x9f\ufeff]")
_BIDI = re.compile(r"[\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069]")
# Surrogates cannot be encoded for the terminal: they come from lone \ud800 JSON escapes.
_SURROGATES = re.compile(r"[\ud800-\udfff]")
_FAST_SAFE = re.compile(r"[ -~]*")


def _show_bidi(match: re.Match[str]) -> str:
    return f"<U+{ord(match.group()):04X}>"


def sanitize(text: str, limit: int = MAX_TEXT, *, tabsize: int = 4) -> str:
    """Return ``text`` with escape sequences and control characters neutralised.

    Args:
        text: one line or value, already decoded (invalid UTF-8 replaced).
        limit: maximum length of the result; longer text is cut and ends with ``…``.
        tabsize: tabs are expanded to spaces so cell widths stay predictable.

    Returns:
        Text holding no C0 (except none: tabs are expanded), DEL, C1 or ESC code point,
        no lone surrogate, and bidi controls spelled out as ``<U+202E>``.
    """
    if len(text) > limit * 4:
        text = text[: limit * 4]
    if _FAST_SAFE.fullmatch(text) is None:
        text = _SEQUENCES.sub("", text)
        text = text.expandtabs(tabsize)
        text = _CONTROLS.sub("\ufffd", text)
        text = _BIDI.sub(_show_bidi, text)
        text = _SURROGATES.sub("\ufffd", text)
    if len(text) > limit:
        text = text[: limit - 1] + "…"
    return text


_NAME_UNSAFE = re.compile(
    r"[\\\x00-\x1f\x7f-\x9f\u061c\u200e\u200f\u2028\u2029\u202a-\u202e\u2066-\u2069\ufeff"
    r"\ud800-\udfff]"
)
_NAME_SHORT = {"\\": "\\\\", "\n": "\\n", "\t": "\\t", "\r": "\\r"}
_NAME_ESCAPE = re.compile(r"\\(?:x([0-9a-f]{2})|u([0-9a-f]{4})|([\\ntr]))")
_NAME_LONG = {"\\": "\\", "n": "\n", "t": "\t", "r": "\r"}


def _escape_char(match: re.Match[str]) -> str:
    char = match.group()
    short = _NAME_SHORT.get(char)
    if short is not None:
        return short
    code = ord(char)
    if code < 0x80:
        return f"\\x{code:02x}"
    if 0xDC80 <= code <= 0xDCFF:  # a byte that is not UTF-8, as os.fsdecode carries it
        return f"\\x{code - 0xDC00:02x}"
    return f"\\u{code:04x}"


def escape_path(raw: str) -> str:
    """Spell a name or path from the filesystem so it is safe to show and still exact.

    Linux allows any byte but ``/`` and NUL in a name: ESC, a newline, C1 controls, bidi
    overrides, bytes that are not UTF-8. Each such character, and the backslash itself,
    becomes a visible escape (``\\x1b``, ``\\n``, ``\\u202e``, ``\\xff`` for a raw byte,
    ``\\\\``), as ``ls -b`` spells names; every other character is kept, so ordinary names
    are unchanged. Unlike :func:`sanitize` nothing is dropped or cut: two names never
    share a spelling, and :func:`unescape_path` gives the original back for file access.
    """
    return _NAME_UNSAFE.sub(_escape_char, raw)


def _unescape_char(match: re.Match[str]) -> str:
    byte, code, short = match.groups()
    if byte is not None:
        value = int(byte, 16)
        return chr(value) if value < 0x80 else chr(0xDC00 + value)
    if code is not None:
        return chr(int(code, 16))
    return _NAME_LONG[short]


def unescape_path(shown: str) -> str:
    """The raw name or path that :func:`escape_path` spelled as ``shown`` (for file access:
    ``root / unescape_path(run.path)``; ``os.fsencode`` gives its exact bytes)."""
    return _NAME_ESCAPE.sub(_unescape_char, shown) if "\\" in shown else shown


def decode(data: bytes, limit: int = MAX_TEXT) -> str:
    """Decode bytes from a run file (invalid UTF-8 replaced) and sanitize the result."""
    return sanitize(data.decode("utf-8", "replace"), limit)


def sanitize_tree(value: object, depth: int = 0) -> object:
    """Sanitize every string (keys included) in a JSON-like value; cap nesting at 32."""
    if isinstance(value, str):
        return sanitize(value)
    if depth > 32:
        return "…"
    if isinstance(value, dict):
        return sanitize_dict(value, depth)
    if isinstance(value, (list, tuple)):
        return [sanitize_tree(v, depth + 1) for v in value]
    return value


def _clean(texts: list[Any], limit: int) -> bool:
    """Whether :func:`sanitize` would leave every one of ``texts`` as it is: all strings of
    printable ASCII, none longer than ``limit`` (one regex over them all, not one each)."""
    try:
        joined = "".join(texts)
    except TypeError:  # not all strings
        return False
    return _FAST_SAFE.fullmatch(joined) is not None and max(map(len, texts), default=0) <= limit


_LEAVES = frozenset({int, float, bool, type(None)})
_PLAIN = _LEAVES | {str}


def sanitize_dict(value: Mapping[Any, Any], depth: int = 0) -> dict[str, Any]:
    """:func:`sanitize_tree` for a mapping, typed as what it returns: string keys.

    Metadata is mostly plain already (a thousand runs' run.json at the first paint): its
    keys, and its text values, are checked at once, and pass unchanged when all are plain.
    """
    if depth >= 32:  # values here are at the cap: sanitize_tree cuts them
        return {sanitize(str(k), 200): sanitize_tree(v, depth + 1) for k, v in value.items()}
    keys = list(value)
    if not _clean(keys, 200):
        keys = [sanitize(str(k), 200) for k in keys]
    items = list(value.values())
    texts = [v for v in items if type(v) is str]
    plain = _PLAIN if _clean(texts, MAX_TEXT) else _LEAVES
    return {k: v if type(v) in plain else sanitize_tree(v, depth + 1) for k, v in zip(keys, items)}
