"""``tracktui watch`` and ``status --follow`` end to end, with real runs and real signals.

Also the core pieces behind them: the rules file's trust rule and reloads
(``tui.core.rules.source``) and the follower (``tui.core.follow``). No timing is asserted:
every wait is on a condition with a generous deadline.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psutil
import pytest
from processes import Processes, read_meta, running, wait_until

from tui.core.follow import Follower, VerdictChanged
from tui.core.rules import RulesFile
from tui.core.timefmt import parse_time

DEADLINE = 60.0
"""Seconds any one condition may take (a loaded CI box is slow, never this slow)."""

DIVERGED = """\
[[rule]]
name = "diverged"
metric = "loss"
when = "nonfinite"
action = "kill"
"""

BROKEN = """\
[[rule]]
name = "diverged"
metric = "loss"
when = "sometimes"
action = "kill"
"""

LOW = """
[[rule]]
name = "low"
metric = "loss"
when = "below"
value = 0.05
"""


def write_rules(path: Path, text: str, mode: int = 0o600) -> None:
    """Replace the rules file atomically (a reload never sees half an edit)."""
    temp = path.with_name(path.name + ".tmp")
    temp.write_text(text)
    os.chmod(temp, mode)
    os.replace(temp, path)


def json_lines(path: Path) -> list[dict[str, Any]]:
    """The complete JSON lines written to ``path`` so far."""
    text = path.read_text() if path.exists() else ""
    return [json.loads(line) for line in text.splitlines(keepends=True) if line.endswith("\n")]


def start_watch(
    processes: Processes, tmp: Path, *args: str
) -> tuple[subprocess.Popen[bytes], Path, Path]:
    """``tracktui watch ARGS`` with stdout and stderr in files; waits until it follows ROOT."""
    out, err = tmp / "watch.out", tmp / "watch.err"
    with open(out, "wb") as stdout, open(err, "wb") as stderr:
        watch = processes.track(
            subprocess.Popen(
                [sys.executable, "-m", "tui", "watch", *args], stdout=stdout, stderr=stderr
            )
        )
    wait_until(lambda: "following" in err.read_text() or watch.poll() is not None, DEADLINE)
    assert watch.poll() is None, err.read_text()
    return watch, out, err


def stop(child: subprocess.Popen[bytes], how: signal.Signals = signal.SIGTERM) -> int:
    """Send ``how`` and wait for the exit status."""
    child.send_signal(how)
    return child.wait(DEADLINE)


def lines_for(path: Path, run: str, rule: str) -> list[dict[str, Any]]:
    return [e for e in json_lines(path) if e["run"]["name"] == run and e["rule"] == rule]


def test_watch_kills_the_nan_run_notifies_once_follows_rule_edits_and_stops_on_sigterm(
    tmp_path: Path, processes: Processes
) -> None:
    root = tmp_path / "runs"
    root.mkdir()
    rules = tmp_path / "rules.toml"
    write_rules(rules, DIVERGED)
    notified = tmp_path / "notified.jsonl"
    watch, out, err = start_watch(
        processes,
        tmp_path,
        str(root),
        "--rules",
        str(rules),
        "--auto-kill",
        "--grace",
        "5",
        "--notify",
        f"cat >> {notified}",
    )
    steady = [processes.launch(root, name, steps=150) for name in ("steady-1", "steady-2")]

    # A broken edit is reported with its line, and the rules in force stay...
    write_rules(rules, BROKEN)
    wait_until(lambda: "line 4" in err.read_text(), DEADLINE)
    assert "previous rules stay" in err.read_text()

    # ...so the run that goes NaN now is still killed by them.
    processes.launch(root, "diverging", "--nan-at", "30", steps=0)
    diverging = root / "diverging"
    pid = read_meta(diverging)["pid"]
    wait_until(lambda: read_meta(diverging).get("status") == "killed", DEADLINE)
    assert not psutil.pid_exists(pid) or not running(psutil.Process(pid))
    first_nan = next(
        json.loads(line)
        for line in (diverging / "metrics.jsonl").read_text().splitlines()
        if "NaN" in line
    )
    killed_at = parse_time(read_meta(diverging)["ended_at"])
    nan_at = parse_time(first_nan["_time"])
    assert killed_at is not None and nan_at is not None
    print(f"NaN written at step {first_nan['step']} -> run ended {killed_at - nan_at:.3f} s later")

    wait_until(
        lambda: [
            e
            for e in lines_for(out, "diverging", "diverged")
            if e["result"] and "no process of the run is left" in e["result"]
        ],
        DEADLINE,
    )
    events = lines_for(out, "diverging", "diverged")
    trigger = next(e for e in events if e["state"] == "triggered")
    assert trigger["action"] == "signal" and trigger["step"] == first_nan["step"]
    assert trigger["reason"] == f"loss is nan at step {first_nan['step']}"
    assert parse_time(trigger["time"]) is not None and trigger["time"].endswith("Z")
    assert set(trigger["run"]) == {"id", "name", "path"} and trigger["run"]["path"] == "diverging"
    assert set(trigger) == {"time", "run", "rule", "state", "step", "reason", "action", "result"}
    audit = (root / ".tracktui" / "audit.jsonl").read_text()
    assert "rule diverged: loss is nan" in audit

    # The notify command got the trigger, once.
    wait_until(lambda: json_lines(notified), DEADLINE)
    (told,) = json_lines(notified)
    assert told == trigger

    # A valid edit takes effect: the new rule judges the runs still going.
    write_rules(rules, DIVERGED + LOW)
    wait_until(lambda: "rules reloaded" in err.read_text(), DEADLINE)
    for name in ("steady-1", "steady-2"):
        wait_until(
            lambda name=name: [e for e in lines_for(out, name, "low") if e["state"] == "triggered"],
            DEADLINE,
        )
    for launcher in steady:
        assert launcher.wait(DEADLINE) == 0
    for name in ("steady-1", "steady-2"):
        meta = read_meta(root / name)
        assert meta["status"] == "finished" and meta["exit_code"] == 0
        assert not [e for e in lines_for(out, name, "diverged") if e["state"] == "triggered"]

    assert stop(watch) == 0
    assert "Traceback" not in err.read_text()
    told_diverged = [e for e in json_lines(notified) if e["rule"] == "diverged"]
    assert len(told_diverged) == 1 and told_diverged[0]["run"]["name"] == "diverging"


@pytest.mark.parametrize("how", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
def test_watch_stops_cleanly_on_a_signal(
    tmp_path: Path, processes: Processes, how: signal.Signals
) -> None:
    root = tmp_path / "runs"
    root.mkdir()
    watch, _, err = start_watch(processes, tmp_path, str(root))
    assert stop(watch, how) == 0
    assert "Traceback" not in err.read_text() and "KeyboardInterrupt" not in err.read_text()


def test_watch_only_flags_for_a_rules_file_others_can_write(
    tmp_path: Path, processes: Processes
) -> None:
    root = tmp_path / "runs"
    root.mkdir()
    rules = tmp_path / "rules.toml"
    write_rules(rules, DIVERGED, mode=0o602)
    processes.launch(root, "diverging", "--nan-at", "0", steps=0)
    watch, out, err = start_watch(
        processes,
        tmp_path,
        str(root),
        "--rules",
        str(rules),
        "--auto-kill",
        "--notify",
        "cat > /dev/null; exit 3",
    )
    assert "others can write it (mode 0602)" in err.read_text()
    (trigger,) = wait_until(lambda: lines_for(out, "diverging", "diverged"), DEADLINE)
    assert trigger["state"] == "triggered" and trigger["action"] == "flag"
    assert "not trusted" in trigger["result"]
    wait_until(lambda: "notify command exited with status 3" in err.read_text(), DEADLINE)
    meta = read_meta(root / "diverging")
    assert running(psutil.Process(meta["pid"])) and meta.get("status") in (None, "running")
    assert not (root / ".tracktui" / "audit.jsonl").exists()
    assert stop(watch) == 0


@pytest.mark.parametrize("who", ["another user", "others can write"])
def test_kill_actions_of_an_untrusted_rules_file_only_flag(tmp_path: Path, who: str) -> None:
    path = tmp_path / "rules.toml"
    write_rules(path, DIVERGED + LOW)
    trusted = RulesFile(path).load()
    assert trusted.downgraded is None and trusted.engine is not None
    assert [r.action for r in trusted.engine.rules] == ["kill", "flag"]
    if who == "another user":
        if os.geteuid() != 0:
            pytest.skip("needs root to give the file to another user")
        os.chown(path, 65534, 65534)
        expected = "owned by"
    else:
        os.chmod(path, 0o602)
        expected = "others can write it (mode 0602)"
    rules = RulesFile(path)
    load = rules.load()
    assert load.engine is not None and load.problem is None
    assert [r.action for r in load.engine.rules] == ["flag", "flag"]
    assert load.demoted == ("diverged",) and rules.demoted == ("diverged",)
    assert load.downgraded is not None and str(path) in load.downgraded
    assert expected in load.downgraded and "diverged" in load.downgraded
    if who == "another user":
        assert "uid 65534" in load.downgraded and f"uid {os.getuid()}" in load.downgraded

    # A file fixed in place is noticed (chmod and chown change its ctime) and trusted again.
    if who == "another user":
        os.chown(path, os.getuid(), os.getgid())
    else:
        os.chmod(path, 0o600)
    again = rules.reload_if_changed()
    assert again is not None and again.downgraded is None and rules.downgraded is None
    assert rules.engine is again.engine and [r.action for r in rules.engine.rules] == [
        "kill",
        "flag",
    ]
    assert rules.reload_if_changed() is None


def test_a_broken_edit_keeps_the_previous_rules_and_names_the_line(tmp_path: Path) -> None:
    path = tmp_path / "rules.toml"
    write_rules(path, DIVERGED)
    rules = RulesFile(path)
    engine = rules.load().engine
    write_rules(path, BROKEN)
    load = rules.reload_if_changed()
    assert load is not None and load.engine is None and load.line == 4
    assert rules.engine is engine and rules.problem == load.problem
    assert load.problem is not None and f"{path} line 4" in load.problem
    path.unlink()
    gone = rules.reload_if_changed()
    assert gone is not None and gone.problem is not None and rules.engine is engine
    os.mkfifo(path)  # a FIFO under the name never blocks the reader
    fifo = rules.reload_if_changed()
    assert fifo is not None and fifo.problem is not None and "not a regular file" in fifo.problem


def test_a_missing_default_rules_file_means_no_rules_until_it_appears(tmp_path: Path) -> None:
    path = tmp_path / "tracktui.toml"
    rules = RulesFile(path, required=False)
    load = rules.load()
    assert load.problem is None and rules.engine is not None and not rules.engine.rules
    assert rules.reload_if_changed() is None
    write_rules(path, DIVERGED)
    assert rules.reload_if_changed() is not None and len(rules.engine.rules) == 1
    required = RulesFile(tmp_path / "absent.toml").load()
    assert required.engine is None and required.problem is not None


def follow_until(follower: Follower, condition: Any) -> list[Any]:
    """Run passes of ``follower`` until ``condition(events so far)`` holds."""
    seen: list[Any] = list(follower.start())
    deadline = time.monotonic() + DEADLINE
    while not condition(seen):
        assert time.monotonic() < deadline, "condition not met in time"
        seen.extend(follower.poll(0.2))
    return seen


@pytest.fixture
def stopping() -> Iterator[list[Follower]]:
    followers: list[Follower] = []
    yield followers
    for follower in followers:
        follower.finish()


def test_stalled_applies_only_to_runs_that_are_alive(
    tmp_path: Path, processes: Processes, stopping: list[Follower]
) -> None:
    root = tmp_path / "runs"
    root.mkdir()
    rules = tmp_path / "rules.toml"
    write_rules(rules, '[[rule]]\nname = "quiet"\nwhen = "stalled"\nseconds = 0.5\n')
    finished = processes.launch(root, "finished", steps=3)
    assert finished.wait(DEADLINE) == 0
    # A foreign run (a stdout log) whose writer is gone, last written an hour ago.
    old = root / "old-log"
    old.mkdir()
    (old / "train.log").write_text('{"step": 0, "loss": 1.0}\n{"step": 1, "loss": 0.5}\n')
    past = time.time() - 3600
    os.utime(old / "train.log", (past, past))
    # Alive and quiet: one record, then a long sleep.
    processes.launch(root, "quiet", "--interval", "600", steps=0)

    loaded = RulesFile(rules)
    loaded.load()
    follower = Follower(root, loaded, tick=0.2)
    stopping.append(follower)

    def verdict(events: list[Any], run: str) -> str | None:
        states = [
            e.verdict.state
            for e in events
            if isinstance(e, VerdictChanged) and e.run.key.split("/")[0] == run
        ]
        return states[-1] if states else None

    events = follow_until(follower, lambda seen: verdict(seen, "quiet") == "triggered")
    runs = {run.key.split("/")[0]: run for run in follower.store}
    assert runs["quiet"].status == "running"
    assert runs["finished"].status == "finished" and runs["old-log"].status == "ended"
    assert verdict(events, "finished") == "ok" and verdict(events, "old-log") == "ok"
    reasons = {
        name: follower.verdicts[runs[name].key][0].reason for name in ("finished", "old-log")
    }
    assert reasons == {"finished": "not running (finished)", "old-log": "not running (ended)"}


def test_status_follow_piped_prints_a_line_per_change(tmp_path: Path, processes: Processes) -> None:
    root = tmp_path / "runs"
    root.mkdir()
    write_rules(root / "tracktui.toml", DIVERGED.replace('action = "kill"', 'action = "flag"'))
    processes.launch(root, "steady", steps=0)
    out = tmp_path / "follow.out"
    with open(out, "wb") as stdout:
        follow = processes.track(
            subprocess.Popen(
                [sys.executable, "-m", "tui", "status", str(root), "--follow"],
                stdout=stdout,
                stderr=subprocess.PIPE,
            )
        )

    def lines(name: str) -> list[dict[str, Any]]:
        return [e for e in json_lines(out) if e["run"]["name"] == name]

    first = wait_until(lambda: lines("steady"), DEADLINE)[0]
    assert first["changed"] == ["new", "rules"] and first["status"] == "running"
    assert first["rules"][0]["name"] == "diverged" and first["rules"][0]["state"] == "ok"
    assert set(first) == {"time", "run", "status", "step", "rules", "changed"}
    # The step moves: said again (at most every 2 s per run).
    wait_until(lambda: [e for e in lines("steady") if e["changed"] == ["step"]], DEADLINE)

    # A new run appears, goes NaN (its verdict changes) and ends (its status changes).
    processes.launch(root, "diverging", "--nan-at", "5", steps=20)
    wait_until(
        lambda: [
            e
            for e in lines("diverging")
            if "rules" in e["changed"] and e["rules"][0]["state"] == "triggered"
        ],
        DEADLINE,
    )
    # (Between the process's exit and the launcher's end record it may show "crashed".)
    ended = wait_until(
        lambda: [
            e for e in lines("diverging") if "status" in e["changed"] and e["status"] == "finished"
        ],
        DEADLINE,
    )
    assert ended[-1]["step"] == 19

    assert stop(follow) == 0
    assert follow.stderr is not None and b"Traceback" not in follow.stderr.read()
