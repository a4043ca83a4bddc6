"""Command-line entry point: ``tracktui [ROOT]``, ``status``, ``run``, ``kill``."""

from __future__ import annotations

import sys


def main(argv: list[str] | None = None) -> int:
    """Dispatch to a subcommand (filled in as the subcommands land)."""
    raise SystemExit("not wired yet")


if __name__ == "__main__":
    sys.exit(main())
