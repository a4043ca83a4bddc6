"""Where exports go and how a table becomes CSV.

Exports (a screen as SVG, the run table as CSV) go to the current directory, where the
user started tracktui and will look; where it cannot be written, to
``$XDG_STATE_HOME/tracktui/exports``. Never to a directory that may not exist (Textual's
default, ``~/Downloads``, is missing on most servers).
"""

from __future__ import annotations

import csv
import io
import os
import time
from collections.abc import Iterable, Sequence
from pathlib import Path

from tui.core.views import state_dir


def export_dir() -> Path:
    """A directory that exists and can be written: the cwd, else tracktui's state one."""
    here = Path.cwd()
    if os.access(here, os.W_OK | os.X_OK):
        return here
    target = state_dir() / "exports"
    target.mkdir(parents=True, exist_ok=True)
    return target


def export_name(kind: str, suffix: str, now: float | None = None) -> str:
    """``tracktui-KIND-YYYYmmdd-HHMMSS.SUFFIX`` in local time."""
    stamp = time.strftime("%Y%m%d-%H%M%S", time.localtime(now))
    return f"tracktui-{kind}-{stamp}.{suffix}"


def table_csv(header: Sequence[str], rows: Iterable[Sequence[object]]) -> str:
    """The rows as CSV text with a header line (floats at full precision)."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(header)
    writer.writerows(rows)
    return out.getvalue()
