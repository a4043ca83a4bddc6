"""tracktui: watch, compare and stop machine-learning training runs from the terminal.

Importing ``tui`` is cheap: the logging client (``tui.init``) lives in ``tui.client`` and is
loaded on first use, so a training script pays for neither Textual nor Rich.
"""

from __future__ import annotations

from typing import Any

__version__ = "0.1.0"

__all__ = ["__version__", "init"]


def init(*args: Any, **kwargs: Any) -> Any:
    """Start (or attach to) a run and return its logging handle; see ``tui.client.init``."""
    from tui.client import init as _init

    return _init(*args, **kwargs)
