"""``tracktui demo``: the app on the sample runs plus a few live ones, for a first look.

Copies ``sample_runs/`` (the showcase, without its scripts) into a fresh temporary ROOT and
starts the bundled simulator (``sample_runs/simulate.py --launch``) writing live runs into
``ROOT/live``, each a real process under ``tracktui run``; the last one diverges (its loss
turns NaN and it keeps running), so the samples' ``nonfinite`` kill-rule flags it and ``X``
or ``T`` stops it. When the app exits the simulator and its runs are stopped and the
temporary ROOT is removed.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import shutil
import signal
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import psutil

from tui.core.views import View, save_view, view_path

SAMPLES = Path(__file__).resolve().parent.parent.parent / "sample_runs"
"""The bundled samples, beside the package in a checkout (``pip install -e .``)."""

SIMULATOR = SAMPLES / "simulate.py"

LIVE = "live"
"""Subdirectory of the demo ROOT the simulator writes into."""

STOP_WAIT = 10.0
"""Seconds the simulator gets to stop its runs after SIGTERM before they are killed."""


@dataclass(frozen=True)
class Plan:
    """How many live runs the demo starts and how fast they grow."""

    runs: int = 4
    steps: int = 400
    interval: float = 0.3
    diverge_at: int = 40


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Options of ``tracktui demo``."""
    default = Plan()
    parser.add_argument(
        "--runs", type=int, default=default.runs, metavar="N", help="live runs (the last diverges)"
    )
    parser.add_argument(
        "--steps", type=int, default=default.steps, metavar="S", help="steps per live run"
    )
    parser.add_argument(
        "--interval", type=float, default=default.interval, metavar="SEC", help="seconds per step"
    )
    parser.add_argument(
        "--diverge-at",
        type=int,
        default=default.diverge_at,
        metavar="STEP",
        help="step where the last run's loss turns NaN",
    )
    parser.add_argument(
        "--auto-kill", action="store_true", help="let the kill-rule stop the diverging run itself"
    )
    parser.add_argument("--poll", action="store_true", help="poll files instead of using inotify")


SAMPLES_WRITTEN = 1_714_608_000.0
"""2024-05-02 00:00 UTC, just after the samples' last record: their copies' file times."""


def populate(root: Path) -> None:
    """Copy the sample runs and their rules file into ``root``, dated as they were written.

    A checkout stamps every file with the time it was made, and a run written minutes ago
    by a writer that opens, appends and closes (MLflow, Lightning's CSV) may still be
    running: dated back, the static samples read as the finished history they are.
    """
    shutil.copytree(
        SAMPLES, root, ignore=shutil.ignore_patterns("*.py", "__pycache__"), dirs_exist_ok=True
    )
    for folder, _, files in os.walk(root):
        for name in files:
            os.utime(os.path.join(folder, name), (SAMPLES_WRITTEN, SAMPLES_WRITTEN))


def start_simulator(root: Path, plan: Plan) -> subprocess.Popen[bytes]:
    """Start the simulator launching ``plan.runs`` live runs under ``root/live``."""
    command = [sys.executable, str(SIMULATOR), str(root / LIVE), "--launch"]
    command += ["--runs", str(plan.runs), "--steps", str(plan.steps)]
    command += ["--interval", str(plan.interval), "--diverge", "1"]
    command += ["--diverge-at", str(plan.diverge_at)]
    # Its one line per run would scribble over the app's screen; a log beside the runs.
    with open(root / "simulate.log", "wb") as log:
        return subprocess.Popen(
            command, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT
        )


def stop_simulator(process: subprocess.Popen[bytes]) -> None:
    """Stop the simulator and every run it started, politely first."""
    try:
        family = psutil.Process(process.pid).children(recursive=True)
    except psutil.NoSuchProcess:
        family = []
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)  # forwarded to each run's process group
        try:
            process.wait(timeout=STOP_WAIT)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
    for member in family:
        with contextlib.suppress(psutil.Error):
            member.kill()


@contextlib.contextmanager
def demo_root(plan: Plan) -> Iterator[Path]:
    """A temporary ROOT with the samples and live runs; everything is gone after it."""
    root = Path(tempfile.mkdtemp(prefix="tracktui-demo-"))
    process: subprocess.Popen[bytes] | None = None
    try:
        populate(root)
        # The live runs first: the newest record on top.
        save_view(root, View(sort_key="age"))
        process = start_simulator(root, plan)
        yield root
    finally:
        if process is not None:
            stop_simulator(process)
        shutil.rmtree(root, ignore_errors=True)
        view_path(root).unlink(missing_ok=True)  # the layout of a ROOT that is gone


def main(args: argparse.Namespace) -> int:
    """Run the demo until the app exits."""
    if not SIMULATOR.is_file():
        print("tracktui demo: needs a checkout with sample_runs/ beside tui/", file=sys.stderr)
        return 2
    if args.runs < 1 or args.steps < 1 or args.interval < 0 or args.diverge_at < 1:
        print("tracktui demo: --runs, --steps and --diverge-at must be positive", file=sys.stderr)
        return 2
    from tui.app.app import TrackApp

    plan = Plan(args.runs, args.steps, args.interval, args.diverge_at)
    with demo_root(plan) as root:
        TrackApp(root, auto_kill=args.auto_kill, watch="poll" if args.poll else "auto").run()
    return 0
