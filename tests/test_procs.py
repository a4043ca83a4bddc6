"""Safe kill on real processes: identity, whole trees, refusals, audit (DESIGN.md §6)."""

from __future__ import annotations

import argparse
import io
import json
import os
import pwd
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
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


@pytest.fixture(autouse=True)
def _run_json(tmp_path: Path) -> None:
    """Tests hand plan_kill a meta directly: the run.json it stands for lies in tmp_path (ours),
    since a kill needs evidence owned by us (DESIGN.md §5)."""
    (tmp_path / "run.json").write_text("{}")


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


def test_slurm_runs_are_refused_without_slurm_tools_or_a_job_id(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Cancelling through scancel itself is tested on a real cluster (tests/test_slurm.py)."""
    meta = {"name": "job", "host": "node7", "user": current_user(), "slurm_job_id": "1234"}
    monkeypatch.setenv("PATH", str(tmp_path / "empty"))
    refusal = procs.plan_kill(tmp_path, meta)
    assert isinstance(refusal, Refusal) and "scancel is not on PATH" in refusal.message
    assert procs.plan_kill(tmp_path, {**meta, "slurm_job_id": "--user=bob"}).code == "slurm"  # type: ignore[union-attr]

    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (bin_dir / "scancel").write_text("#!/bin/sh\nexit 0\n")
    (bin_dir / "scancel").chmod(0o755)
    monkeypatch.setenv("PATH", str(bin_dir))
    refusal = procs.plan_kill(tmp_path, meta)  # who owns the job is Slurm's to say
    assert isinstance(refusal, Refusal) and "squeue is not on PATH" in refusal.message
    other = procs.plan_kill(tmp_path, {**meta, "user": "someone-else"})
    assert isinstance(other, Refusal) and other.code == "other_user"


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


# ---------------------------------------------------------------- identity held by pidfd

needs_pidfd = pytest.mark.skipif(not procs.pidfd_available(), reason="no pidfd on this kernel")

PARENT_OF_ONE = (
    "import subprocess, sys, time\n"
    "child = subprocess.Popen([sys.executable, '-c', 'import time\\nwhile True: time.sleep(0.05)',"
    " sys.argv[1]])\n"
    "print(child.pid, flush=True)\n"
    "while True: time.sleep(0.05)\n"  # never reaps: a killed child stays a zombie
)


def pidfd_calls(monkeypatch: pytest.MonkeyPatch) -> list[tuple[int, int]]:
    """Record every signal sent through a pidfd (and still send it)."""
    calls: list[tuple[int, int]] = []
    real = signal.pidfd_send_signal

    def spy(fd: int, sig: int, *args: Any) -> None:
        calls.append((_pid_of(fd), sig))
        real(fd, sig, *args)

    monkeypatch.setattr(signal, "pidfd_send_signal", spy)
    return calls


def _pid_of(pidfd: int) -> int:
    """The process a pidfd refers to, as the kernel reports it."""
    for line in Path(f"/proc/self/fdinfo/{pidfd}").read_text().splitlines():
        if line.startswith("Pid:"):
            return int(line.split()[1])
    raise AssertionError("not a pidfd")


@needs_pidfd
def test_plan_pins_every_process_and_signals_through_the_pins(
    tmp_path: Path, marker: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    root = tmp_path / "runs"
    launch(root, marker)
    run_dir = root / "run"
    plan = procs.plan_kill(run_dir, read_meta(run_dir))
    assert isinstance(plan, KillPlan) and plan.pins is not None
    assert plan.pins.pids == set(plan.tree.pids) and len(plan.tree.pids) == 3  # type: ignore[union-attr]
    for proc in plan.processes:
        fd = plan.pins.get(proc.pid, proc.create_time)
        assert fd is not None and _pid_of(fd) == proc.pid
    assert procs.WEAK_IDENTITY not in plan.describe()

    calls = pidfd_calls(monkeypatch)
    report = procs.execute(plan, "term", grace=5.0, audit_path=tmp_path / "audit.jsonl")
    assert report.ok, report.describe()
    assert sorted(calls) == sorted((pid, signal.SIGTERM) for pid in plan.tree.pids)  # type: ignore[union-attr]
    assert procs.WEAK_IDENTITY not in report.notes
    assert plan.pins.pids == frozenset()  # closed after the kill


@needs_pidfd
def test_process_that_died_after_planning_is_reported_gone_not_signalled(
    tmp_path: Path, marker: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    parent = subprocess.Popen(
        [sys.executable, "-c", PARENT_OF_ONE, marker],
        stdout=subprocess.PIPE,
        start_new_session=True,
    )
    _started.append(parent)
    assert parent.stdout is not None
    child = int(parent.stdout.readline())
    meta = {
        "pid": parent.pid,
        "pid_create_time": psutil.Process(parent.pid).create_time(),
        "host": socket.gethostname(),
        "user": current_user(),
    }
    plan = procs.plan_kill(tmp_path, meta)
    assert isinstance(plan, KillPlan) and set(plan.tree.pids) == {parent.pid, child}  # type: ignore[union-attr]

    os.kill(child, signal.SIGKILL)
    wait_for(lambda: psutil.Process(child).status() == psutil.STATUS_ZOMBIE)
    calls = pidfd_calls(monkeypatch)
    report = procs.execute(plan, "term", grace=5.0, audit_path=tmp_path / "audit.jsonl")
    assert report.ok and report.signalled == (parent.pid,), report.describe()
    assert calls == [(parent.pid, signal.SIGTERM)]
    assert f"exited before the signal, not signalled: pid {child}" in report.notes
    assert parent.wait(5) == -signal.SIGTERM


def _take_pid(pid: int, marker: str) -> tuple[subprocess.Popen[bytes], dict[str, Any]] | None:
    """Start a process on ``pid`` (freed already) by setting the kernel's last pid; None if a
    process elsewhere on the box took it first every time."""
    for _ in range(20):
        Path("/proc/sys/kernel/ns_last_pid").write_text(str(pid - 1))
        proc, meta = start(marker)
        if proc.pid == pid:
            return proc, meta
        proc.kill()
        proc.wait()
    return None


@needs_pidfd
@pytest.mark.skipif(
    not os.access("/proc/sys/kernel/ns_last_pid", os.W_OK) or os.getuid() != 0,
    reason="needs root to steer pid allocation (ns_last_pid)",
)
def test_pid_reused_within_the_create_time_resolution_is_never_hit(
    tmp_path: Path, marker: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    old, meta = start(marker)
    plan = procs.plan_kill(tmp_path, meta)
    assert isinstance(plan, KillPlan)
    old.kill()
    old.wait()
    taken = _take_pid(old.pid, marker)
    if taken is None:
        pytest.skip("another process took the freed pid each time")
    newcomer, _ = taken
    # As if both had started within the same clock tick: the create times cannot tell them
    # apart, so only the pidfd taken at planning can.
    monkeypatch.setattr(procs, "CREATE_TIME_TOLERANCE", 1e9)
    assert procs.alive(old.pid, meta["pid_create_time"])  # the identity check is fooled

    report = procs.execute(plan, "term", grace=1.0, audit_path=tmp_path / "audit.jsonl")
    assert report.refusal is not None and report.refusal.code == "not_running"
    assert report.signalled == () and newcomer.poll() is None

    # Without a pidfd the same plan hits the newcomer: what the weaker-check note warns of.
    monkeypatch.setattr(procs, "pidfd_available", lambda: False)
    report = procs.execute(plan, "kill", audit_path=tmp_path / "audit.jsonl")
    assert report.signalled == (newcomer.pid,) and procs.WEAK_IDENTITY in report.notes
    assert newcomer.wait(5) == -signal.SIGKILL


def test_without_pidfd_plan_and_report_say_the_check_is_weaker(
    tmp_path: Path, marker: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(procs, "pidfd_available", lambda: False)
    proc, meta = start(marker)
    plan = procs.plan_kill(tmp_path, meta)
    assert isinstance(plan, KillPlan) and plan.pins is None
    assert procs.WEAK_IDENTITY in plan.notes and procs.WEAK_IDENTITY in plan.describe()
    report = procs.execute(plan, "term", grace=5.0, audit_path=tmp_path / "audit.jsonl")
    assert report.ok and report.signalled == (proc.pid,)
    assert procs.WEAK_IDENTITY in report.notes
    assert proc.wait(5) == -signal.SIGTERM


# ---------------------------------------------------------------- evidence must be ours


@pytest.fixture
def shared_root() -> Iterator[Path]:
    """A world-writable scratch directory (sticky, like /tmp), as on a shared GPU box."""
    root = Path(tempfile.mkdtemp(prefix="tracktui-shared-"))
    root.chmod(0o1777)
    try:
        yield root
    finally:
        shutil.rmtree(root, ignore_errors=True)


def as_nobody(script: str, stdin: str) -> None:
    """Run a shell script as the other user (a real second uid)."""
    uid = _other_uid()
    assert uid is not None
    done = subprocess.run(
        ["sh", "-c", script],
        input=stdin.encode(),
        user=uid,
        group=uid,
        extra_groups=[],
        capture_output=True,
        timeout=30,
        check=False,
    )
    assert done.returncode == 0, done.stderr


@pytest.mark.skipif(_other_uid() is None, reason="needs root and a 'nobody' account")
def test_run_json_planted_by_another_user_cannot_aim_a_kill(
    tmp_path: Path, marker: str, shared_root: Path
) -> None:
    proc, meta = start(marker)  # one of OUR processes: pid and create time are public
    planted = json.dumps({**meta, "name": "innocent", "status": "running"})

    # nobody makes a run directory in the shared ROOT and plants run.json naming our process
    as_nobody(f"mkdir {shared_root}/theirs && cat > {shared_root}/theirs/run.json", planted)
    theirs = shared_root / "theirs"
    assert (theirs / "run.json").stat().st_uid == _other_uid()
    refusal = procs.plan_kill(theirs, read_meta(theirs))
    assert isinstance(refusal, Refusal) and refusal.code == "evidence"
    assert refusal.message == (
        f"the run directory is owned by uid {_other_uid()} (nobody), not you: it cannot aim a kill"
    )
    audit = tmp_path / "audit.jsonl"
    report = procs.kill_run(theirs, read_meta(theirs), audit_path=audit)
    assert report.refusal is not None and report.signalled == ()

    # our own run directory, left writable by others: nobody replaces its run.json
    ours = shared_root / "ours"
    ours.mkdir()
    ours.chmod(0o777)
    (ours / "run.json").write_text(json.dumps(meta))
    assert isinstance(procs.plan_kill(ours, read_meta(ours)), KillPlan)  # ours: accepted
    as_nobody(f"cat > {ours}/run.json.new && mv -f {ours}/run.json.new {ours}/run.json", planted)
    refusal = procs.plan_kill(ours, read_meta(ours))
    assert isinstance(refusal, Refusal) and refusal.code == "evidence"
    assert refusal.message == (
        f"run.json is owned by uid {_other_uid()} (nobody), not you: it cannot aim a kill"
    )

    # a symlink of ours that points at their file does not launder it
    (ours / "run.json").unlink()
    (ours / "run.json").symlink_to(theirs / "run.json")
    assert procs.plan_kill(ours, read_meta(ours)).code == "evidence"  # type: ignore[union-attr]

    assert proc.poll() is None and running(psutil.Process(proc.pid))
    assert [line["result"] for line in audit_lines(audit)] == [f"refused: {report.refusal}"]


@pytest.mark.skipif(_other_uid() is None, reason="needs root and a 'nobody' account")
def test_evidence_is_rechecked_before_the_signal(tmp_path: Path, marker: str) -> None:
    proc, meta = start(marker)
    (tmp_path / "run.json").write_text(json.dumps(meta))
    plan = procs.plan_kill(tmp_path, meta)
    assert isinstance(plan, KillPlan)
    os.chown(tmp_path / "run.json", _other_uid() or 0, -1)  # taken over after the confirmation
    report = procs.execute(plan, "kill", audit_path=tmp_path / "audit.jsonl")
    assert report.refusal is not None and report.refusal.code == "evidence"
    assert report.signalled == () and proc.poll() is None


@pytest.mark.skipif(_other_uid() is None, reason="needs root and a 'nobody' account")
def test_open_file_evidence_must_be_ours_too(tmp_path: Path, marker: str) -> None:
    from tui.core.openfiles import WriterScanner, index_files

    log = tmp_path / "train.log"
    log.write_text("")
    code = (
        "import sys, time\nlog = open(sys.argv[2], 'a')\nprint('ready', flush=True)\n"
        "while True: time.sleep(0.05)\n"
    )
    writer = subprocess.Popen(
        [sys.executable, "-c", code, marker, str(log)],
        stdout=subprocess.PIPE,
        start_new_session=True,
    )
    _started.append(writer)
    assert writer.stdout is not None and writer.stdout.readline() == b"ready\n"
    found = WriterScanner().scan(index_files({"run": [log]})).runs["run"]
    assert found.pid == writer.pid
    assert isinstance(procs.plan_kill_found(tmp_path, found), KillPlan)
    os.chown(log, _other_uid() or 0, -1)  # our process writes a file that is not ours
    refusal = procs.plan_kill_found(tmp_path, found)
    assert isinstance(refusal, Refusal) and refusal.code == "evidence"
    assert refusal.message.startswith("train.log is owned by uid")
    assert writer.poll() is None
