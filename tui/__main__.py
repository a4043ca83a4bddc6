"""``python -m tui`` is the ``tracktui`` command."""

from __future__ import annotations

import sys

from tui.cli import main

sys.exit(main())
