"""tui.core and the logging client must load without textual or rich (DESIGN.md §2)."""

from __future__ import annotations

import pkgutil
import subprocess
import sys

import tui.core


def test_core_loads_without_ui_libraries() -> None:
    modules = [m.name for m in pkgutil.walk_packages(tui.core.__path__, "tui.core.")]
    assert "tui.core.store" in modules and "tui.core.tail" in modules
    code = (
        "import importlib, sys\n"
        f"for name in {modules!r}:\n"
        "    importlib.import_module(name)\n"
        "import tui.client\n"
        "bad = sorted(m for m in sys.modules if m.split('.')[0] in ('textual', 'rich'))\n"
        "print(bad)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
