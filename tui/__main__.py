"""``python -m tui`` is the ``tracktui`` command."""

from __future__ import annotations

import sys

from tui.cli import main

if __name__ == "__main__":  # worker processes (spawn) import this module too
    sys.exit(main())
