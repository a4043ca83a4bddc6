"""``tracktui watch ROOT``: the rules enforced without the app (a tmux pane, a systemd unit).

Follows every run under ROOT with the app's engine and rules and prints one JSON line on
stdout per verdict change and per action (DESIGN.md §8): ``time``, ``run`` (id, name,
path), ``rule``, ``state``, ``step``, ``reason``, ``action`` (``flag``, ``signal`` or
``scancel``) and ``result``. With ``--auto-kill`` a triggered kill-rule terminates its run
(alive runs only, once per run and rule) through the safe kill path. ``--notify CMD`` runs
CMD through the shell once per trigger with the trigger's line on stdin, in a thread of its
own. Everything for people (the rules reloaded, a broken edit, a notify failure) goes to
stderr. SIGTERM and SIGINT stop it cleanly with exit status 0.
"""

from __future__ import annotations

import argparse
import os
import queue
import signal
import subprocess
import sys
import threading
from pathlib import Path
from typing import Any, BinaryIO

import orjson

from tui.core.follow import (
    ActionTaken,
    Event,
    Follower,
    Notice,
    RulesReloaded,
    VerdictChanged,
    stopped_by_signals,
)
from tui.core.headless import _number, jsonable
from tui.core.rules import RULES_FILE, RulesFile
from tui.core.sanitize import sanitize
from tui.core.timefmt import utc_iso

NOTIFY_TIMEOUT = 30.0
"""Seconds a notify command may run before its process group is killed."""

NOTIFY_DRAIN = 35.0
"""Seconds to wait at exit for notify commands still queued or running."""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Options of ``tracktui watch``."""
    parser.add_argument("root", type=Path, metavar="ROOT", help="directory holding the runs")
    parser.add_argument(
        "--rules", type=Path, metavar="FILE", help=f"rules file (default ROOT/{RULES_FILE})"
    )
    parser.add_argument(
        "--auto-kill", action="store_true", help="let triggered kill-rules terminate their runs"
    )
    parser.add_argument(
        "--grace",
        type=float,
        default=10.0,
        metavar="S",
        help="seconds between SIGTERM and SIGKILL (default 10)",
    )
    parser.add_argument(
        "--notify",
        metavar="CMD",
        help="shell command run once per trigger, the event's JSON line on its stdin",
    )
    parser.add_argument("--poll", action="store_true", help="poll files instead of using inotify")


def event_line(event: VerdictChanged | ActionTaken) -> dict[str, Any]:
    """The DESIGN.md §8 object for a verdict change or an action."""
    verdict = event.verdict
    return {
        "time": utc_iso(event.time),
        "run": event.run.json(),
        "rule": verdict.rule,
        "state": verdict.state,
        "step": _number(verdict.step),
        "reason": verdict.reason,
        "action": event.action,
        "result": event.result,
    }


def json_line(value: Any) -> bytes:
    """One line of JSON (non-finite numbers as ``"nan"``, ``"inf"``, ``"-inf"``)."""
    return orjson.dumps(jsonable(value)) + b"\n"


class LineWriter:
    """Writes lines to a stream and flushes each; a reader that went away ends the output.

    Attributes:
        closed: True once the reader is gone (later lines are dropped).
    """

    def __init__(self, stream: BinaryIO) -> None:
        self.stream = stream
        self.closed = False

    def write(self, line: bytes) -> bool:
        """Write ``line``; False when the reader is gone."""
        if self.closed:
            return False
        try:
            self.stream.write(line)
            self.stream.flush()
        except (BrokenPipeError, ValueError):
            self.closed = True
            # Python flushes stdout again at exit: point it at /dev/null so that is silent.
            devnull = os.open(os.devnull, os.O_WRONLY)
            try:
                os.dup2(devnull, self.stream.fileno())
            except (OSError, ValueError):
                pass
            finally:
                os.close(devnull)
            return False
        return True


def say(text: str) -> None:
    """A message for people, on stderr."""
    print(f"tracktui watch: {text}", file=sys.stderr, flush=True)


class Notifier:
    """Runs a shell command once per event, the event's line on stdin, one at a time.

    Commands run in a thread of their own, so a slow webhook never holds up the engine;
    their output goes to stderr (stdout carries only event lines); a failure, a non-zero
    exit or a timeout (:data:`NOTIFY_TIMEOUT`, then the command's process group is killed)
    is reported on stderr.
    """

    def __init__(self, command: str) -> None:
        self.command = command
        self._queue: queue.SimpleQueue[bytes | None] = queue.SimpleQueue()
        self._thread = threading.Thread(target=self._run, name="tracktui-notify", daemon=True)
        self._thread.start()

    def send(self, line: bytes) -> None:
        """Queue one run of the command with ``line`` on its stdin."""
        self._queue.put(line)

    def close(self, wait: float = NOTIFY_DRAIN) -> None:
        """Let the queued commands run, waiting at most ``wait`` seconds."""
        self._queue.put(None)
        self._thread.join(wait)
        if self._thread.is_alive():
            say(f"notify commands still running after {wait:g} s were left behind")

    def _run(self) -> None:
        while (line := self._queue.get()) is not None:
            try:
                self._notify(line)
            except Exception as exc:  # the thread must outlive any one command
                say(f"notify command failed: {sanitize(repr(exc), 300)}")

    def _notify(self, line: bytes) -> None:
        try:
            child = subprocess.Popen(
                self.command,
                shell=True,
                stdin=subprocess.PIPE,
                stdout=sys.stderr.fileno(),
                stderr=sys.stderr.fileno(),
                start_new_session=True,  # a timeout kills its whole group (curl under sh)
            )
        except OSError as error:
            say(f"notify command could not start: {sanitize(str(error), 300)}")
            return
        try:
            child.communicate(line, timeout=NOTIFY_TIMEOUT)
        except subprocess.TimeoutExpired:
            try:
                os.killpg(child.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            child.wait()
            say(f"notify command killed after {NOTIFY_TIMEOUT:g} s")
            return
        if child.returncode != 0:
            say(f"notify command exited with status {child.returncode}")


def report_rules(event: RulesReloaded) -> None:
    """Say on stderr what a reload of the rules file gave."""
    load = event.load
    if load.problem is not None:
        say(load.problem)
        return
    count = len(load.engine.rules) if load.engine is not None else 0
    say(f"rules reloaded from {sanitize(str(load.path), 300)}: {count} rule(s)")
    if load.downgraded:
        say(load.downgraded)


def main(args: argparse.Namespace) -> int:
    """Run ``tracktui watch``; exit 0 when stopped, 2 on a usage error or a bad rules file."""
    root: Path = args.root
    if not root.is_dir():
        say(f"{sanitize(str(root), 300)} is not a readable directory")
        return 2
    if args.grace < 0:
        say("--grace must be >= 0")
        return 2
    rules_path = args.rules if args.rules is not None else root / RULES_FILE
    rules = RulesFile(rules_path, required=args.rules is not None)
    load = rules.load()
    if load.problem is not None:
        say(load.problem)
        return 2
    if load.downgraded:
        say(load.downgraded)
    follower = Follower(
        root,
        rules,
        watch="poll" if args.poll else "auto",
        auto_kill=args.auto_kill,
        grace=args.grace,
    )
    out = LineWriter(sys.stdout.buffer)
    notifier = Notifier(args.notify) if args.notify else None
    try:
        with stopped_by_signals(follower):
            first = True
            for events in follower.passes():
                for event in events:
                    handle(event, out, notifier)
                if first:
                    first = False
                    _started(follower, rules)
                if out.closed:
                    follower.request_stop()
    finally:
        if notifier is not None:
            notifier.close()
    return 0


def handle(event: Event, out: LineWriter, notifier: Notifier | None) -> None:
    """Print (and notify) one event of the follower."""
    if isinstance(event, (VerdictChanged, ActionTaken)):
        line = json_line(event_line(event))
        out.write(line)
        if notifier is not None and isinstance(event, VerdictChanged) and event.news:
            notifier.send(line)
    elif isinstance(event, RulesReloaded):
        report_rules(event)
    elif isinstance(event, Notice):
        say(event.message)


def _started(follower: Follower, rules: RulesFile) -> None:
    count = len(rules.engine.rules) if rules.engine is not None else 0
    kills = "on" if follower.auto_kill else "off"
    say(
        f"following {len(follower.store)} run(s) under {sanitize(str(follower.root), 300)} "
        f"({follower.engine.mode}); {count} rule(s) from {sanitize(str(rules.path), 300)}; "
        f"auto-kill {kills}"
    )
