"""The UI-free engine: discovery, tailing, parsing, storage, rules, process control.

Nothing under ``tui.core`` may import textual or rich (ruff TID251 and
``tests/test_import_hygiene.py`` enforce it).
"""
