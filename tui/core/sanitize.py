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


def sanitize_dict(value: Mapping[Any, Any], depth: int = 0) -> dict[str, Any]:
    """:func:`sanitize_tree` for a mapping, typed as what it returns: string keys."""
    return {sanitize(str(k), 200): sanitize_tree(v, depth + 1) for k, v in value.items()}
