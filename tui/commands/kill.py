"""``tracktui kill ROOT RUN``: the headless kill, through the same checks as the app.

RUN is a run's path relative to ROOT or its name. A run whose run.json records a pid (or a
Slurm job) is stopped through that; any other run of any format through the process of
yours found holding its files open for writing (:mod:`tui.core.openfiles`).

Prints the plan (run, host, user, every pid with its owner and command line), asks y/N on
a terminal unless ``--yes`` (and refuses without ``--yes`` when stdin is no terminal),
executes, and prints the report. Exit status: 0 done, 1 refused or processes survived,
2 usage error (unknown run, unreadable run.json).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from tui.core.engine import Engine
from tui.core.evidence import EvidenceGatherer
from tui.core.procs import (
    SIGNALS,
    KillPlan,
    Refusal,
    SignalName,
    default_audit_path,
    execute,
    plan_kill,
    plan_kill_found,
)
from tui.core.rundir import RUN_JSON, read_run_json
from tui.core.sanitize import escape_path, sanitize, unescape_path

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
    spellings = tuple(dict.fromkeys((run, unescape_path(run))))  # as typed, or as shown
    for spelling in spellings:
        direct = (base / spelling).resolve()
        if direct.is_relative_to(base) and (direct / RUN_JSON).is_file():
            return direct
    matches = []
    for meta_path in _run_files(base):
        folder = meta_path.parent
        if folder.name in spellings or read_run_json(folder).get("name") == run:
            matches.append(folder)
    if not matches:
        raise UsageError(f"no run {sanitize(run)!r} under {sanitize(str(root))}")
    if len(matches) > 1:
        names = ", ".join(sanitize(str(m.relative_to(base))) for m in matches[:10])
        raise UsageError(f"{sanitize(run)!r} names {len(matches)} runs ({names}); give its path")
    return matches[0]


def find_foreign(root: Path, run: str) -> tuple[str, Path, list[Path]]:
    """A run of any format that ``run`` names: its key, its path and its data files.

    Raises:
        UsageError: not found or ambiguous.
    """
    engine = Engine(root, watch="poll")
    engine.scan()
    wanted = {run.strip("/"), escape_path(run.strip("/"))}  # as shown, or as typed
    matches = [
        source
        for source in engine.sources.values()
        if wanted & {source.key, source.path, Path(source.path).name}
    ]
    if not matches:
        raise UsageError(f"no run {sanitize(run)!r} under {sanitize(str(root))}")
    if len(matches) > 1:
        names = ", ".join(sanitize(m.path) for m in matches[:10])
        raise UsageError(f"{sanitize(run)!r} names {len(matches)} runs ({names}); give its path")
    source = matches[0]
    return source.key, engine.root / unescape_path(source.path), source.watched_files()


def plan_for(root: Path, run: str, read_only: bool) -> KillPlan | Refusal:
    """The kill plan of the run ``run`` names (see the module docstring).

    Raises:
        UsageError: the run cannot be found, or its run.json cannot be read.
    """
    try:
        run_dir = find_run(root, run)
    except UsageError:
        key, path, files = find_foreign(root, run)
        found = EvidenceGatherer(root.resolve()).gather({key: files}).processes.get(key)
        if found is None:
            return Refusal(
                "it records no pid and no process of yours holds its files open for "
                "writing: there is no process to signal",
                "no_identity",
            )
        return plan_kill_found(path, found, read_only=read_only)
    meta = read_run_json(run_dir)
    if not meta:
        raise UsageError(f"cannot read {sanitize(str(run_dir / RUN_JSON))}")
    return plan_kill(run_dir, meta, read_only=read_only)


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
    if not Path(args.root).is_dir():
        print(
            f"tracktui kill: ROOT {sanitize(str(args.root))!r} is not a directory", file=sys.stderr
        )
        return 2
    try:
        plan = plan_for(Path(args.root), args.run, args.read_only)
    except UsageError as error:
        print(f"tracktui kill: {error}", file=sys.stderr)
        return 2
    signal: SignalName = args.signal
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
