"""Views that persist: the layout a user chose for a ROOT, restored the next time.

A :class:`View` holds the table's metric and hyperparameter columns, sort, filter and hidden
columns, whether the chart strip shows, the smoothing and the charts' x-axis. It is stored
as JSON in the user's state directory (``$XDG_STATE_HOME/tracktui/views/``, by default
``~/.local/state/tracktui/views/``), one file per ROOT named by a hash of its absolute
path: never in ROOT, which may be shared, read-only or someone else's.
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import Any


@dataclass(frozen=True)
class View:
    """What the user chose for one ROOT.

    Attributes:
        metrics: the metric columns picked, in order (``None``: the key metrics of the runs).
        config: the hyperparameter columns picked, in order (``None``: those that vary).
        sort_key: the column sorted by (``None``: by name).
        descending: sort from the largest value down.
        filter: the filter text.
        hidden: keys of the other columns hidden from the table (``best``: every metric's
            best-value column).
        strip: the chart strip under the table shows.
        smoothing: EMA strength of the table's last values.
        chart_smoothing: EMA strength of the charts.
        x_axis: the charts' x-axis.
    """

    metrics: tuple[str, ...] | None = None
    config: tuple[str, ...] | None = None
    sort_key: str | None = None
    descending: bool = False
    filter: str = ""
    hidden: tuple[str, ...] = ()
    strip: bool = True
    smoothing: float = 0.0
    chart_smoothing: float = 0.0
    x_axis: str = "step"


def state_dir() -> Path:
    """tracktui's directory under ``$XDG_STATE_HOME`` (default ``~/.local/state``)."""
    base = os.environ.get("XDG_STATE_HOME") or os.path.join(
        os.path.expanduser("~"), ".local", "state"
    )
    return Path(base) / "tracktui"


def view_path(root: Path) -> Path:
    """The file holding the view of ``root``."""
    digest = hashlib.sha256(os.path.abspath(root).encode()).hexdigest()[:20]
    return state_dir() / "views" / f"{digest}.json"


def _checked(name: str, value: Any, default: Any) -> Any:
    """``value`` if it has the type of the field's default (lists as tuples), else the
    default: a hand-edited or older file restores what it can."""
    if name in ("metrics", "config") and value is None:
        return None
    if name in ("metrics", "config", "hidden"):
        ok = isinstance(value, list) and all(isinstance(v, str) for v in value)
        return tuple(value) if ok else default
    if name == "sort_key":
        return value if value is None or isinstance(value, str) else default
    if isinstance(default, bool):
        return value if isinstance(value, bool) else default
    if isinstance(default, float):
        ok = isinstance(value, (int, float)) and not isinstance(value, bool)
        return float(value) if ok and 0.0 <= value < 1.0 else default
    return value if isinstance(value, type(default)) else default


def load_view(root: Path) -> View:
    """The saved view of ``root``; the defaults where there is none or it is unreadable."""
    try:
        data = json.loads(view_path(root).read_text())
    except (OSError, ValueError):
        return View()
    if not isinstance(data, dict):
        return View()
    default = View()
    return View(
        **{
            f.name: _checked(f.name, data[f.name], getattr(default, f.name))
            for f in fields(View)
            if f.name in data
        }
    )


def save_view(root: Path, view: View) -> str | None:
    """Store ``view`` for ``root`` (replaced atomically); an error message, or ``None``."""
    path = view_path(root)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        temp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
        temp.write_text(json.dumps({**asdict(view), "root": os.path.abspath(root)}, indent=1))
        os.replace(temp, path)
    except OSError as error:
        return f"cannot save the view in {path.parent}: {error.strerror or error}"
    return None
