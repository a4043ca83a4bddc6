"""Print the README's keys table from the bindings themselves (so it cannot drift).

    python docs/keys.py

``tests/test_readme.py`` checks that README.md holds exactly this table.
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from textual.binding import Binding

from tui.app.app import TrackApp
from tui.app.screens.column_chooser import ColumnChooser
from tui.app.screens.compare import CompareScreen
from tui.app.screens.confirm_kill import ConfirmKill
from tui.app.screens.help import key_names
from tui.app.screens.run_view import PanelPicker, RunScreen
from tui.app.screens.runs import RunsScreen
from tui.app.screens.sweep import SweepScreen
from tui.app.widgets.chart_board import ChartBoard
from tui.app.widgets.choice_list import ChoiceList
from tui.app.widgets.log_view import LogView
from tui.app.widgets.matrix_browser import MatrixBrowser
from tui.app.widgets.run_table import RunTable

SECTIONS = [
    ("Everywhere", [TrackApp]),
    ("Run table", [RunsScreen, RunTable]),
    ("Column chooser (typing filters)", [ColumnChooser, ChoiceList]),
    ("Run view", [RunScreen]),
    ("Run view: Charts tab", [ChartBoard]),
    ("Run view: chart picker", [PanelPicker]),
    ("Run view: Matrices tab", [MatrixBrowser]),
    ("Run view: Log tab", [LogView]),
    ("Compare", [CompareScreen]),
    ("Sweep", [SweepScreen]),
    ("Kill confirmation", [ConfirmKill]),
]


def rows(owners: list[type]) -> list[tuple[str, str]]:
    """(keys, description) per action, keys of one action merged, in declaration order."""
    merged: dict[str, tuple[list[str], str]] = {}
    for owner in owners:
        for binding in owner.BINDINGS:
            if not isinstance(binding, Binding) or not binding.description:
                continue
            keys, _ = merged.setdefault(binding.description, ([], binding.description))
            for label in key_names(binding):
                if label not in keys:
                    keys.append(label)
    return [
        (" ".join(f"`{k}`" for k in keys), description) for keys, description in merged.values()
    ]


def table() -> str:
    """The Markdown table of every screen's keys."""
    lines = ["| where | keys | action |", "|---|---|---|"]
    for title, owners in SECTIONS:
        for keys, description in rows(owners):
            lines.append(f"| {title} | {keys.replace('|', '&#124;')} | {description} |")
    return "\n".join(lines)


if __name__ == "__main__":
    print(table())
