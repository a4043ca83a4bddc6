"""The README tells the truth: its commands are CI's, its keys table is the bindings."""

from __future__ import annotations

import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
README = (ROOT / "README.md").read_text()


def test_the_two_commands_come_first_and_ci_runs_the_second() -> None:
    blocks = re.findall(r"```bash\n(.*?)\n```", README, re.S)
    first, second = blocks[0].strip(), blocks[1].strip()
    assert "pip install -e ." in first and first.endswith("tracktui demo")
    assert "'.[test]'" in second and "pytest" in second
    assert second in (ROOT / ".ci" / "run").read_text()


def test_keys_table_matches_the_bindings() -> None:
    sys.path.insert(0, str(ROOT / "docs"))
    import keys

    found = re.search(r"<!-- keys:start[^>]*-->\n(.*?)\n<!-- keys:end -->", README, re.S)
    assert found is not None
    assert found.group(1) == keys.table(), "run: python docs/keys.py, and paste it into the README"


def test_screenshots_exist() -> None:
    for name in re.findall(r"\((docs/screenshots/[^)]+)\)", README):
        assert (ROOT / name).is_file(), name
