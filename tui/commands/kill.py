"""``tracktui kill ROOT RUN``: the headless kill, through the same checks as the app.

Prints the plan (run, host, user, every pid with its owner and command line), asks y/N on
a terminal unless ``--yes`` (and refuses without ``--yes`` when stdin is no terminal),
executes, and prints the report. Exit status: 0 done, 1 refused or processes survived,
2 usage error (unknown run, unreadable run.json).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from tui.core.procs import SIGNALS, Refusal, SignalName, default_audit_path, execute, plan_kill
from tui.core.rundir import RUN_JSON, read_run_json
from tui.core.sanitize import sanitize

_SKIP_DIRS = {".git", ".tracktui", "node_modules", "__pycache__", "media"}


class UsageError(Exception):
    """A mistake in the command line or a run that cannot be found or read."""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Add the ``tracktui kill`` arguments to ``parser``."""
    parser.add_argument("root", type=Path, metavar="ROOT", help="runs directory")
    parser.add_argument(
        "run", metavar="RUN", help="the run's path relative to ROOT, or its name if unique"
    )
    parser.add_argument(
        "--signal",
        choices=sorted(SIGNALS),
        default="term",
        help="term: SIGTERM, grace, then SIGKILL (default); int: SIGINT; kill: SIGKILL",
    )
    parser.add_argument(
        "--grace",
        type=float,
        default=10.0,
        metavar="S",
        help="seconds to wait before SIGKILL (default 10)",
    )
    parser.add_argument("--yes", action="store_true", help="do not ask for confirmation")
    parser.add_argument(
        "--read-only", action="store_true", help="refuse every action (for testing a setup)"
    )


def find_run(root: Path, run: str) -> Path:
    """The run directory that ``run`` names under ``root``: a relative path, else a name.

    Raises:
        UsageError: not found, ambiguous, or outside ROOT.
    """
    if not root.is_dir():
        raise UsageError(f"ROOT {sanitize(str(root))!r} is not a directory")
    base = root.resolve()
    direct = (base / run).resolve()
    if direct.is_relative_to(base) and (direct / RUN_JSON).is_file():
        return direct
    matches = []
    for meta_path in _run_files(base):
        folder = meta_path.parent
        if folder.name == run or read_run_json(folder).get("name") == run:
            matches.append(folder)
    if not matches:
        raise UsageError(f"no run {sanitize(run)!r} under {sanitize(str(root))}")
    if len(matches) > 1:
        names = ", ".join(sanitize(str(m.relative_to(base))) for m in matches[:10])
        raise UsageError(f"{sanitize(run)!r} names {len(matches)} runs ({names}); give its path")
    return matches[0]


def _run_files(base: Path) -> list[Path]:
    found: list[Path] = []
    stack = [base]
    while stack:
        folder = stack.pop()
        try:
            entries = list(folder.iterdir())
        except OSError:
            continue
        for entry in entries:
            if entry.name == RUN_JSON and entry.is_file():
                found.append(entry)
            elif entry.name not in _SKIP_DIRS and entry.is_dir() and not entry.is_symlink():
                stack.append(entry)
    return sorted(found)


def _confirm(question: str) -> bool:
    try:
        answer = input(question)
    except EOFError:
        return False
    return answer.strip().lower() in ("y", "yes")


def main(args: argparse.Namespace) -> int:
    """Run ``tracktui kill``; return the exit status."""
    if args.grace < 0:
        print("tracktui kill: --grace must be >= 0", file=sys.stderr)
        return 2
    try:
        run_dir = find_run(Path(args.root), args.run)
    except UsageError as error:
        print(f"tracktui kill: {error}", file=sys.stderr)
        return 2
    meta = read_run_json(run_dir)
    if not meta:
        print(f"tracktui kill: cannot read {sanitize(str(run_dir / RUN_JSON))}", file=sys.stderr)
        return 2
    signal: SignalName = args.signal
    plan = plan_kill(run_dir, meta, read_only=args.read_only)
    if isinstance(plan, Refusal):
        print(f"tracktui kill: refused: {plan.message}", file=sys.stderr)
        return 1
    print("\n".join(plan.describe()))
    if not args.yes:
        if not sys.stdin.isatty():
            print(
                "tracktui kill: refused: stdin is not a terminal; pass --yes to kill",
                file=sys.stderr,
            )
            return 1
        if not _confirm(f"Send SIG{signal.upper()} to this run? [y/N] "):
            print("not killed")
            return 1
    report = execute(
        plan,
        signal,
        args.grace,
        default_audit_path(Path(args.root)),
        reason="tracktui kill",
        read_only=args.read_only,
    )
    stream = sys.stdout if report.ok else sys.stderr
    print("\n".join(report.describe()), file=stream)
    return 0 if report.ok else 1
