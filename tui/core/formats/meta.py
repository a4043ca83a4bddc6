"""The last step of every foreign adapter's run metadata, before it leaves the adapter."""

from __future__ import annotations

from typing import Any

from tui.core.sanitize import sanitize_dict


def finish_meta(meta: dict[str, Any]) -> dict[str, Any]:
    """Drop empty fields (``None``, ``{}``) and sanitize every string, keys included."""
    cleaned = {k: v for k, v in meta.items() if v is not None and v != {}}
    return sanitize_dict(cleaned)
