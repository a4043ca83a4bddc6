"""``ConfigView``: what a run is: run.json facts, hyperparameters, tags and properties.

Nested config is drawn as an indented tree. Keys and values come from the run and are
drawn as ``Text`` only.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from typing import Any

from rich.text import Text
from textual.app import ComposeResult
from textual.containers import VerticalScroll
from textual.widgets import Static

from tui.core.sanitize import sanitize
from tui.core.shapes import format_number
from tui.core.store import Run

FACTS: tuple[tuple[str, str], ...] = (
    ("id", "id"),
    ("status", "status recorded"),
    ("pid", "pid"),
    ("pid_create_time", "pid started"),
    ("pgid", "process group"),
    ("host", "host"),
    ("user", "user"),
    ("command", "command"),
    ("cwd", "cwd"),
    ("git", "git"),
    ("slurm_job_id", "Slurm job"),
    ("experiment", "experiment"),
    ("created_at", "created"),
    ("started_at", "started"),
    ("ended_at", "ended"),
    ("exit_code", "exit code"),
    ("signal", "signal"),
    ("error", "error"),
)
"""run.json fields shown under "run", in this order, with their labels."""

_SECTIONS = ("name", "config", "tags", "properties")
_KEY = "bold cyan"
_MAX_VALUE = 400


def value_text(value: object) -> Text:
    """One value as plain text: numbers compact, NaN in red, lists and objects as JSON."""
    if isinstance(value, bool) or value is None:
        return Text(json.dumps(value), style="italic")
    if isinstance(value, (int, float)):
        style = "bold red" if isinstance(value, float) and not math.isfinite(value) else ""
        return Text(
            format_number(float(value), 8) if isinstance(value, float) else str(value), style=style
        )
    if isinstance(value, str):
        return Text(sanitize(value, _MAX_VALUE))
    try:
        dumped = json.dumps(value, ensure_ascii=False, default=str)
    except (TypeError, ValueError):
        dumped = str(value)
    return Text(sanitize(dumped, _MAX_VALUE))


def tree_text(mapping: Mapping[str, Any], indent: int = 1, depth: int = 0) -> Text:
    """A nested mapping as indented ``key  value`` lines; sub-mappings open a level."""
    text = Text()
    if not mapping:
        text.append("  " * indent + "(none)\n", style="dim")
        return text
    width = min(28, max(len(sanitize(str(k), 80)) for k in mapping))
    for key, value in mapping.items():
        label = sanitize(str(key), 80)
        text.append("  " * indent)
        if isinstance(value, Mapping) and value and depth < 8:
            text.append(label, style=_KEY)
            text.append("\n")
            text.append_text(tree_text(value, indent + 1, depth + 1))
            continue
        text.append(label.ljust(width), style=_KEY)
        text.append("  ")
        text.append_text(value_text(value))
        text.append("\n")
    return text


def _fact(key: str, value: object) -> Text:
    if key == "command" and isinstance(value, list):
        return Text(sanitize(" ".join(str(v) for v in value), _MAX_VALUE))
    if key == "git" and isinstance(value, Mapping):
        text = Text(sanitize(str(value.get("commit", "?")), 80))
        if value.get("dirty"):
            text.append("  (uncommitted changes)", style="yellow")
        return text
    if key == "pid_create_time" and isinstance(value, (int, float)):
        return Text(f"{value:.2f} (epoch s; with the pid, the process identity)")
    if key == "exit_code" and isinstance(value, int) and value != 0:
        return Text(str(value), style="bold red")
    return value_text(value)


def run_facts(run: Run) -> Text:
    """The run's identity and lifecycle facts, then anything else run.json holds."""
    meta = run.meta
    text = Text()
    text.append("run\n", style="bold")
    rows: list[tuple[str, Text]] = [
        ("name", Text(sanitize(run.name, 200))),
        ("format", Text(run.format)),
        ("path", Text(sanitize(run.path, 400))),
    ]
    if run.group:
        rows.append(("group", Text(sanitize(run.group, 200))))
    rows.extend((label, _fact(key, meta[key])) for key, label in FACTS if key in meta)
    known = {key for key, _ in FACTS} | set(_SECTIONS)
    rows.extend((sanitize(str(k), 80), value_text(v)) for k, v in meta.items() if k not in known)
    width = max(len(label) for label, _ in rows)
    for label, value in rows:
        text.append("  " + label.ljust(width), style=_KEY)
        text.append("  ")
        text.append_text(value)
        text.append("\n")
    if not meta:
        text.append("  no run.json (or metadata) for this run\n", style="dim")
    return text


def config_text(run: Run) -> Text:
    """Facts, config, tags and properties of ``run`` as one ``Text``."""
    text = run_facts(run)
    for title, mapping in (
        ("config", run.config),
        ("tags", run.tags),
        ("properties", run.properties),
    ):
        text.append(f"\n{title}\n", style="bold")
        text.append_text(tree_text(mapping))
    text.rstrip()
    return text


class ConfigView(VerticalScroll, can_focus=True):
    """The run's metadata, config (as a tree), tags and properties."""

    DEFAULT_CSS = """
    ConfigView {
        height: 1fr;
        padding: 0 1;
    }
    """

    def compose(self) -> ComposeResult:
        yield Static(id="config-text")

    def show_run(self, run: Run) -> None:
        """Draw ``run``'s metadata."""
        self.query_one("#config-text", Static).update(config_text(run))
