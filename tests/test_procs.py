"""Safe kill on real processes: identity, whole trees, refusals, audit (DESIGN.md §6)."""

from __future__ import annotations

import argparse
import io
import json
import os
import pwd
import signal
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psutil
import pytest
from processes import TRAIN, marked, read_meta, running
from processes import wait_until as wait_for

from tui.commands import kill as killcmd
from tui.core import procs
from tui.core.procs import KillPlan, ProcessInfo, Refusal, Tree
from tui.core.rundir import current_user

SLEEPER = "import signal, time\n{ignore}print('ready', flush=True)\nwhile True: time.sleep(0.05)\n"


_started: list[subprocess.Popen[bytes]] = []


@pytest.fixture(autouse=True)
def _close_started(marker: str) -> Iterator[None]:
    """Reap the Popen objects this module started (the marker fixture kills the rest)."""
    yield
    while _started:
        popen = _started.pop()
        if popen.poll() is None:
            popen.kill()
        popen.wait(5)
        if popen.stdout is not None:
            popen.stdout.close()


def launch(root: Path, marker: str, *extra: str, name: str = "run") -> subprocess.Popen[bytes]:
    """Start train_like.py under the launcher (running until killed) and wait for it."""
    launcher = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "tui",
            "run",
            "--root",
            str(root),
            "--name",
            name,
            "--",
            sys.executable,
            str(TRAIN),
            "0",
            "--marker",
            marker,
            *extra,
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    _started.append(launcher)
    run_dir = root / name
    wait_for(lambda: "pid_create_time" in read_meta(run_dir))
    wait_for(
        lambda: (run_dir / "metrics.jsonl").exists() and (run_dir / "metrics.jsonl").stat().st_size
    )
    return launcher


def audit_lines(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []


def start(
    marker: str, *, ignore: str | None = None, new_session: bool = True
) -> tuple[subprocess.Popen[bytes], dict[str, Any]]:
    """A bare process with a hand-written run.json identity (no launcher)."""
    code = SLEEPER.format(
        ignore=f"signal.signal(signal.{ignore}, signal.SIG_IGN)\n" if ignore else ""
    )
    proc = subprocess.Popen(
        [sys.executable, "-c", code, marker], stdout=subprocess.PIPE, start_new_session=new_session
    )
    _started.append(proc)
    assert proc.stdout is not None and proc.stdout.readline() == b"ready\n"  # handlers set
    handle = psutil.Process(proc.pid)
    meta = {
        "name": "bare",
        "pid": proc.pid,
        "pid_create_time": handle.create_time(),
        "host": socket.gethostname(),
        "user": current_user(),
    }
    return proc, meta


# ---------------------------------------------------------------- the whole tree goes


def test_plan_then_execute_kills_whole_tree_and_launcher_records_killed(
    tmp_path: Path, marker: str
) -> None:
    root = tmp_path / "runs"
    launcher = launch(root, marker, "--orphan")
    run_dir = root / "run"
    meta = read_meta(run_dir)
    # the training process, two workers and one orphan reparented to init
    wait_for(lambda: len(marked(marker)) == 5)  # launcher, training, workers, orphan
    workers = [p for p in marked(marker) if {"worker", "orphan"} & set(p.cmdline())]
    orphan = [p for p in workers if "orphan" in p.cmdline()]
    assert len(workers) == 3 and orphan and orphan[0].ppid() != meta["pid"]

    plan = procs.plan_kill(run_dir, meta)
    assert isinstance(plan, KillPlan), plan
    assert plan.processes[0].pid == meta["pid"]  # the parent is signalled first
    assert {p.pid for p in plan.processes} == {meta["pid"], *(w.pid for w in workers)}
    shown = "\n".join(plan.describe())
    assert "run:  run" in shown and f"user: {current_user()}" in shown
    assert all(str(w.pid) in shown for w in workers) and "train_like.py" in shown

    audit = tmp_path / "audit.jsonl"
    report = procs.execute(plan, "term", grace=2.0, audit_path=audit, reason="test")
    assert report.ok, report.describe()
    assert set(report.signalled) == {p.pid for p in plan.processes}
    for proc in workers:
        assert not running(proc)
    assert not procs.alive(meta["pid"], meta["pid_create_time"])

    assert launcher.wait(10) == 128 + signal.SIGTERM
    final = read_meta(run_dir)
    assert final["status"] == "killed" and final["signal"] == signal.SIGTERM
    assert final["signal_name"] == "SIGTERM" and "ended_at" in final
    (line,) = audit_lines(audit)
    assert line["signal"] == "SIGTERM" and line["result"] == "all exited"
    assert (
        line["reason"] == "test" and line["run"] == str(run_dir) and line["user"] == current_user()
    )
    assert sorted(line["pids"]) == sorted(p.pid for p in plan.processes)
    assert line["host"] == socket.gethostname() and line["time"].endswith("Z")


def test_term_escalates_to_sigkill_after_grace(tmp_path: Path, marker: str) -> None:
    proc, meta = start(marker, ignore="SIGTERM")
    plan = procs.plan_kill(tmp_path, meta)
    assert isinstance(plan, KillPlan)
    audit = tmp_path / "audit.jsonl"
    report = procs.execute(plan, "term", grace=0.5, audit_path=audit)
    assert report.ok and report.escalated == (proc.pid,)
    assert proc.wait(5) == -signal.SIGKILL
    first, second = audit_lines(audit)
    assert first["signal"] == "SIGTERM" and first["result"].startswith("1 alive")
    assert second["signal"] == "SIGKILL" and second["result"] == "all exited"


def test_sigint_and_sigkill_reach_the_process(tmp_path: Path, marker: str) -> None:
    for name, expected in (("int", -signal.SIGINT), ("kill", -signal.SIGKILL)):
        proc, meta = start(marker)
        report = procs.kill_run(tmp_path, meta, signal=name, grace=2.0, audit_path=tmp_path / "a")
        assert report.ok, report.describe()
        assert proc.wait(5) in (expected, 1)  # Python may exit 1 from KeyboardInterrupt


def test_survivors_of_sigint_are_reported(tmp_path: Path, marker: str) -> None:
    proc, meta = start(marker, ignore="SIGINT")
    report = procs.kill_run(tmp_path, meta, signal="int", grace=0.3, audit_path=tmp_path / "a")
    assert not report.ok and [p.pid for p in report.survivors] == [proc.pid]
    assert report.escalated == ()  # SIGINT never escalates: the run may be checkpointing
    assert "1 process(es) still alive:" in report.describe()
    assert proc.poll() is None
    (line,) = audit_lines(tmp_path / "a")
    assert line["signal"] == "SIGINT" and line["result"] == f"1 alive after 0.3 s: {proc.pid}"


def test_headless_kill_command(
    tmp_path: Path, marker: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    root = tmp_path / "runs"
    launcher = launch(root, marker, name="sweep/lr-0.1")
    parser = argparse.ArgumentParser()
    killcmd.add_arguments(parser)

    monkeypatch.setattr(sys, "stdin", io.StringIO(""))  # not a terminal
    assert killcmd.main(parser.parse_args([str(root), "lr-0.1"])) == 1
    assert launcher.poll() is None
    assert killcmd.main(parser.parse_args([str(root), "nope", "--yes"])) == 2
    assert killcmd.main(parser.parse_args([str(root), "../x", "--yes"])) == 2
    assert killcmd.main(parser.parse_args([str(root), "lr-0.1", "--yes", "--read-only"])) == 1
    assert launcher.poll() is None

    code = killcmd.main(parser.parse_args([str(root), "sweep/lr-0.1", "--yes", "--grace", "2"]))
    assert code == 0
    assert launcher.wait(10) == 128 + signal.SIGTERM
    assert read_meta(root / "sweep" / "lr-0.1")["status"] == "killed"
    (line,) = audit_lines(root / ".tracktui" / "audit.jsonl")
    assert line["reason"] == "tracktui kill"


# ---------------------------------------------------------------- refusals signal nothing


def test_reused_pid_is_refused(tmp_path: Path, marker: str) -> None:
    root = tmp_path / "runs"
    launch(root, marker)
    run_dir = root / "run"
    meta = read_meta(run_dir)
    before = marked(marker)
    meta["pid_create_time"] += 5.0  # as if the pid now named a process started later
    (run_dir / "run.json").write_text(json.dumps(meta))
    refusal = procs.plan_kill(run_dir, read_meta(run_dir))
    assert isinstance(refusal, Refusal) and refusal.code == "pid_reused"
    report = procs.kill_run(run_dir, read_meta(run_dir), audit_path=tmp_path / "audit.jsonl")
    assert report.refusal is not None and not report.signalled
    assert all(running(p) for p in before)
    (line,) = audit_lines(tmp_path / "audit.jsonl")
    assert line["result"].startswith("refused: pid")


def test_plan_is_reverified_before_signalling(tmp_path: Path, marker: str) -> None:
    proc, meta = start(marker)
    plan = procs.plan_kill(tmp_path, meta)
    assert isinstance(plan, KillPlan)
    proc.kill()
    proc.wait()
    report = procs.execute(plan, "term", grace=1.0, audit_path=tmp_path / "audit.jsonl")
    assert report.refusal is not None and report.refusal.code == "not_running"
    assert report.signalled == ()


def test_another_users_process_is_refused_injected(tmp_path: Path, marker: str) -> None:
    root = tmp_path / "runs"
    launch(root, marker)
    meta = read_meta(root / "run")
    before = marked(marker)
    worker = next(p.pid for p in before if "worker" in p.cmdline())

    def owner_of(proc: ProcessInfo) -> set[int]:
        return {4242} if proc.pid == worker else {proc.uid}

    refusal = procs.plan_kill(root / "run", meta, owner_of=owner_of)
    assert isinstance(refusal, Refusal) and refusal.code == "other_user"
    assert f"pid {worker}" in refusal.message
    report = procs.kill_run(root / "run", meta, owner_of=owner_of, audit_path=tmp_path / "a")
    assert report.refusal is not None and not report.signalled
    assert all(running(p) for p in before)


def _other_uid() -> int | None:
    if os.getuid() != 0:
        return None
    try:
        return pwd.getpwnam("nobody").pw_uid
    except KeyError:
        return None


@pytest.mark.skipif(_other_uid() is None, reason="needs root and a 'nobody' account")
def test_another_users_process_is_refused_for_real(tmp_path: Path, marker: str) -> None:
    uid = _other_uid()
    assert uid is not None
    # A process of ours whose child runs as nobody (sleep's duration carries the marker).
    seconds = f"{60 + int(marker[-6:], 16) % 1000 / 1000:.3f}"
    code = (
        "import subprocess, sys, time\n"
        f"subprocess.Popen(['sleep', {seconds!r}], user={uid}, group={uid}, extra_groups=[])\n"
        "time.sleep(60)\n"
    )
    parent = subprocess.Popen([sys.executable, "-c", code, marker], start_new_session=True)
    child = wait_for(lambda: psutil.Process(parent.pid).children())[0]
    wait_for(lambda: child.uids().real == uid)
    try:
        meta = {
            "pid": parent.pid,
            "pid_create_time": psutil.Process(parent.pid).create_time(),
            "host": socket.gethostname(),
            "user": current_user(),
        }
        refusal = procs.plan_kill(tmp_path, meta)
        assert isinstance(refusal, Refusal) and refusal.code == "other_user"
        assert "'nobody'" in refusal.message
        # root asking to kill nobody's own process: refused too, even though root could
        alone = {**meta, "pid": child.pid, "pid_create_time": child.create_time()}
        assert procs.plan_kill(tmp_path, alone).code == "other_user"  # type: ignore[union-attr]
        assert procs.plan_kill(tmp_path, {**alone, "user": "nobody"}).code == "other_user"  # type: ignore[union-attr]
        assert running(child) and running(psutil.Process(parent.pid))
    finally:
        child.kill()
        parent.kill()
        parent.wait()


def test_tracktui_itself_is_refused(tmp_path: Path, marker: str) -> None:
    me = psutil.Process()
    mine = {"host": socket.gethostname(), "user": current_user()}
    for proc in (me, me.parent()):
        assert proc is not None
        meta = {**mine, "pid": proc.pid, "pid_create_time": proc.create_time()}
        refusal = procs.plan_kill(tmp_path, meta)
        assert isinstance(refusal, Refusal) and refusal.code == "self", refusal
    # a run sharing our process group (started without its own session)
    child, meta = start(marker, new_session=False)
    refusal = procs.plan_kill(tmp_path, meta)
    assert isinstance(refusal, Refusal) and refusal.code == "self"
    assert "process group" in refusal.message
    assert child.poll() is None


def test_other_host_missing_identity_and_read_only_are_refused(tmp_path: Path, marker: str) -> None:
    proc, meta = start(marker)
    cases = {
        "other_host": {**meta, "host": "elsewhere"},
        "no_identity": {k: v for k, v in meta.items() if k != "pid_create_time"},
        "other_user": {**meta, "user": "someone-else"},
    }
    for code, bad in cases.items():
        refusal = procs.plan_kill(tmp_path, bad)
        assert isinstance(refusal, Refusal) and refusal.code == code, (code, refusal)

    audit = tmp_path / "audit.jsonl"
    assert procs.plan_kill(tmp_path, meta, read_only=True).code == "read_only"  # type: ignore[union-attr]
    plan = procs.plan_kill(tmp_path, meta)
    assert isinstance(plan, KillPlan)
    report = procs.execute(plan, "kill", audit_path=audit, read_only=True)
    assert report.refusal is not None and report.refusal.code == "read_only"
    report = procs.kill_run(tmp_path, meta, signal="kill", audit_path=audit, read_only=True)
    assert report.refusal is not None and report.refusal.code == "read_only"
    assert proc.poll() is None and not audit.exists()  # read-only writes nothing either


def _info(
    pid: int, *, ppid: int = 1, uid: int = 1000, pgid: int = 100, sid: int = 100
) -> ProcessInfo:
    return ProcessInfo(pid, ppid, "u", uid, 50.0, "sleeping", 0.0, 0, f"cmd {pid}", pgid, sid)


def test_check_kill_decisions_without_processes() -> None:
    root = _info(100)
    tree = Tree(root, (root, _info(101, ppid=100), _info(102, ppid=101)))
    meta = {"host": "h", "pid": 100, "pid_create_time": 50.0}
    ok: dict[str, Any] = {
        "this_host": "h",
        "this_uid": 1000,
        "own_pids": {7, 8},
        "own_pgid": 9,
        "own_sid": 9,
        "owner_of": lambda p: {p.uid},
    }
    assert procs.check_kill(meta, tree, **ok) is None
    # root gets no exemption: acting as uid 0 on uid 1000's processes is refused
    assert procs.check_kill(meta, tree, **{**ok, "this_uid": 0}).code == "other_user"  # type: ignore[union-attr]
    # a setuid helper inside the tree (effective uid 0) aborts the whole kill
    setuid = {**ok, "owner_of": lambda p: {p.uid, 0} if p.pid == 102 else {p.uid}}
    assert procs.check_kill(meta, tree, **setuid).code == "other_user"  # type: ignore[union-attr]
    assert procs.check_kill(meta, tree, **{**ok, "own_pids": {102}}).code == "self"  # type: ignore[union-attr]
    assert procs.check_kill(meta, tree, **{**ok, "own_pgid": 100}).code == "self"  # type: ignore[union-attr]
    assert procs.check_kill(meta, tree, **{**ok, "own_sid": 101}).code == "self"  # type: ignore[union-attr]
    assert procs.check_kill({**meta, "host": "x"}, tree, **ok).code == "other_host"  # type: ignore[union-attr]
    assert procs.check_kill({**meta, "pid_create_time": 51.0}, tree, **ok).code == "pid_reused"  # type: ignore[union-attr]


def test_alive_needs_matching_create_time(marker: str) -> None:
    proc, meta = start(marker)
    assert procs.alive(proc.pid, meta["pid_create_time"])
    assert not procs.alive(proc.pid, meta["pid_create_time"] + 1.0)
    assert not procs.alive(proc.pid, None)
    proc.kill()
    proc.wait()
    assert not procs.alive(proc.pid, meta["pid_create_time"])


def test_snapshot_orders_parents_first_and_reports_details(tmp_path: Path, marker: str) -> None:
    root = tmp_path / "runs"
    launch(root, marker)
    meta = read_meta(root / "run")
    tree = procs.snapshot_tree(meta["pid"], meta["pid_create_time"])
    assert isinstance(tree, Tree)
    assert tree.processes[0] == tree.root and len(tree.processes) == 3
    assert all(p.ppid == tree.root.pid for p in tree.processes[1:])
    assert all(p.sid == tree.root.pid and p.user == current_user() for p in tree.processes)
    assert all(p.memory_rss > 0 and marker in p.cmdline for p in tree.processes)
    assert "\n" not in tree.processes[1].cmdline  # sanitized: the -c code had newlines
    shown = procs.tree_for_run(meta)  # what the run view shows
    assert isinstance(shown, Tree) and shown.pids == tree.pids
    assert procs.tree_for_run({**meta, "host": "other"}).code == "other_host"  # type: ignore[union-attr]


# ---------------------------------------------------------------- Slurm and the audit log


def test_slurm_runs_are_cancelled_with_scancel(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    meta = {"name": "job", "host": "node7", "user": current_user(), "slurm_job_id": "1234"}
    monkeypatch.setenv("PATH", str(tmp_path / "empty"))
    refusal = procs.plan_kill(tmp_path, meta)
    assert isinstance(refusal, Refusal) and "scancel is not on PATH" in refusal.message

    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    calls = tmp_path / "calls.txt"
    (bin_dir / "scancel").write_text(f'#!/bin/sh\necho "$@" >> {calls}\n')
    (bin_dir / "scancel").chmod(0o755)
    monkeypatch.setenv("PATH", str(bin_dir))
    assert procs.plan_kill(tmp_path, {**meta, "slurm_job_id": "--user=bob"}).code == "slurm"  # type: ignore[union-attr]
    plan = procs.plan_kill(tmp_path, meta)
    assert isinstance(plan, KillPlan) and plan.slurm_job_id == "1234"
    assert "Slurm job 1234" in "\n".join(plan.describe())
    audit = tmp_path / "audit.jsonl"
    assert procs.execute(plan, "term", audit_path=audit).ok
    assert procs.execute(plan, "int", audit_path=audit).ok
    assert calls.read_text().splitlines() == ["1234", "--signal=INT --full 1234"]
    assert [line["signal"] for line in audit_lines(audit)] == ["scancel SIGTERM", "scancel SIGINT"]


def test_audit_goes_to_state_dir_when_no_path(
    tmp_path: Path, marker: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path / "state"))
    assert procs.default_audit_path(tmp_path) == tmp_path / ".tracktui" / "audit.jsonl"
    proc, meta = start(marker)
    report = procs.kill_run(tmp_path, meta, signal="kill", audit_path=None)
    assert report.ok and report.audit_path == tmp_path / "state" / "tracktui" / "audit.jsonl"
    assert len(audit_lines(report.audit_path)) == 1
    proc.wait(5)
