"""tui.core and the logging client must load without textual or rich (DESIGN.md §2)."""

from __future__ import annotations

import pkgutil
import subprocess
import sys

import tui.core


def printed_by(code: str) -> str:
    """What ``code`` prints, run in a fresh interpreter (nothing imported beforehand)."""
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    return out.stdout.strip()


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
    assert printed_by(code) == "[]"


def test_the_app_starts_without_what_can_wait_for_its_first_frame() -> None:
    """The process machinery (psutil, evidence, GPUs, Slurm) is imported by the threads that
    start once the table is drawn, PyYAML by the first YAML document: none of them belongs
    to the time before the first frame."""
    code = (
        "import sys\n"
        "import tui.app.app\n"
        "later = ('psutil', 'yaml', 'tui.core.procs', 'tui.core.evidence', 'tui.core.gpu',\n"
        "         'tui.core.openfiles', 'tui.core.slurm', 'numpy.ma')\n"
        "print(sorted(m for m in later if m in sys.modules))\n"
    )
    assert printed_by(code) == "[]"
