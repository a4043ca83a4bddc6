"""Command-line entry point: ``tracktui [ROOT]`` (the app) and the subcommands.

Thin by design: each subcommand's options and behaviour live in its module under
``tui/commands/``; the app's options are here.
"""

from __future__ import annotations

import argparse
import gc
import os
import sys
from pathlib import Path

from tui import __version__, commands
from tui.core.sanitize import escape_path


def app_parser() -> argparse.ArgumentParser:
    """Options of the interactive app, ``tracktui [ROOT]``."""
    parser = commands.Parser(
        prog="tracktui",
        description="Watch, compare and stop ML training runs. "
        f"Subcommands: {', '.join(commands.COMMANDS)} (tracktui SUBCOMMAND --help).",
    )
    parser.add_argument(
        "root", nargs="?", type=Path, default=Path("."), help="directory holding the runs"
    )
    parser.add_argument(
        "--rules", type=Path, metavar="FILE", help="rules file (default ROOT/tracktui.toml)"
    )
    parser.add_argument("--auto-kill", action="store_true", help="let kill-rules terminate runs")
    parser.add_argument(
        "--read-only", action="store_true", help="disable every action on processes"
    )
    parser.add_argument("--poll", action="store_true", help="poll files instead of using inotify")
    parser.add_argument(
        "--fresh",
        action="store_true",
        help="start from the default layout, not the one saved for ROOT",
    )
    parser.add_argument(
        "--grace", type=float, default=10.0, help="seconds between SIGTERM and SIGKILL"
    )
    parser.add_argument("--version", action="version", version=f"tracktui {__version__}")
    return parser


READERS = frozenset({"status", "kill", "watch"})
"""Subcommands that read runs (and so load numpy); ``run`` and ``demo`` do not."""


def load_numpy() -> None:
    """Load numpy with one OpenBLAS thread.

    OpenBLAS starts a thread per core as it loads, which cost 5-60 ms of a 2-core start
    (more on a busy machine), and tracktui does no linear algebra. The variable is set for
    the load only: a command launched later gets the user's environment as it was.
    """
    if "numpy" in sys.modules or "OPENBLAS_NUM_THREADS" in os.environ:
        return
    os.environ["OPENBLAS_NUM_THREADS"] = "1"
    try:
        import numpy  # noqa: F401
    finally:
        del os.environ["OPENBLAS_NUM_THREADS"]


def main(argv: list[str] | None = None) -> int:
    """Parse ``argv`` and run the command; returns the exit status."""
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv and argv[0] in commands.COMMANDS:
        name = argv.pop(0)
        if name in READERS:
            load_numpy()
        return commands.load(name).main(commands.parser(name).parse_args(argv))
    args = app_parser().parse_args(argv)
    if not args.root.is_dir():
        shown = escape_path(str(args.root))
        print(f"tracktui: {shown} does not exist or is not a directory", file=sys.stderr)
        return 2
    # The start makes ~90,000 objects that live as long as the app, and the collector
    # walked them all over again ~140 times before the first frame (50-90 ms); the app
    # freezes them and resumes collecting once its table is drawn.
    gc.disable()
    # The first paint's reading starts now, in a child process on the other core, while
    # this one loads numpy, Textual and the app (about 0.3 s of one core). The child is a
    # fork of this process while it is still small (a fork made later costs this process
    # a copy of every page it writes that the child still shares).
    from tui.core.prefetch import PREVIEW_BYTES, start

    prefetch = start(args.root, PREVIEW_BYTES)
    load_numpy()
    if prefetch is not None:
        prefetch.listen()  # what it says is unpickled while Textual and the app load
    from tui.app.app import run_app

    return run_app(args, prefetch)


if __name__ == "__main__":
    sys.exit(main())
