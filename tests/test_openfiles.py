"""Finding a run's process by the files it holds open for writing, with real writers (issue 9)."""

from __future__ import annotations

import os
import shlex
import signal
import subprocess
import sys
from pathlib import Path

import psutil
import pytest
from processes import QUIET_WRITER, Processes, running, wait_until

from tui.core import procs
from tui.core.openfiles import RunProcess, WriterScanner, index_files, is_helper
from tui.core.procs import KillPlan, Refusal

CSV_LOGGER = """
import sys, time
with open(sys.argv[2], "a", newline="") as log:  # like Keras' CSVLogger: append, flush
    log.write("epoch,loss\\n")
    log.flush()
    print("ready", flush=True)
    epoch = 0
    while True:
        log.write(f"{epoch},{1 / (epoch + 1)}\\n")
        log.flush()
        epoch += 1
        time.sleep(0.05)
"""

READER = """
import sys, time
held = open(sys.argv[2])
print("ready", flush=True)
while True:
    time.sleep(0.05)
"""

FORKING_WRITER = """
import os, sys, time
log = open(sys.argv[2], "a")
if os.fork() == 0:  # a DataLoader-style worker inherits the descriptor
    while True:
        time.sleep(0.05)
print("ready", flush=True)
while True:
    time.sleep(0.05)
"""

HELPER = """#!{python}
import sys, time
held = open(sys.argv[2], "ab")
print("ready", flush=True)
while True:
    time.sleep(0.05)
"""

HELPER_PARENT = """
import subprocess, sys, time
helper = subprocess.Popen([sys.argv[2], sys.argv[1], sys.argv[3]], stdout=subprocess.PIPE)
assert helper.stdout.readline() == b"ready\\n"
print(helper.pid, flush=True)
print("ready", flush=True)
if sys.argv[4:] == ["leave"]:
    sys.exit(0)  # the helper is adopted by a reaper
while True:
    time.sleep(0.05)
"""


def scan(run: str, *paths: Path) -> RunProcess[str] | None:
    return WriterScanner().scan(index_files({run: paths})).runs.get(run)


def found_by_pid(run: str, path: Path, pid: int) -> RunProcess[str]:
    """Scan until the run's writers include ``pid`` (a writer may still be starting)."""
    found: RunProcess[str] = wait_until(
        lambda: (f := scan(run, path)) is not None and pid in {w.pid for w in f.writers} and f
    )
    return found


def test_csv_logger_is_found_with_psutils_identity(
    tmp_path: Path, processes: Processes, marker: str
) -> None:
    run_dir = tmp_path / "keras-run"
    run_dir.mkdir()
    log = run_dir / "training.log.csv"
    logger = processes.python(CSV_LOGGER, str(log), start_new_session=True)
    # another file of the run, and a file of no run, change nothing
    (run_dir / "notes.txt").write_text("x")
    found = found_by_pid("keras", log, logger.pid)
    assert found.pid == logger.pid and not found.ambiguous
    assert found.create_time == psutil.Process(logger.pid).create_time()  # equal, not close
    (writer,) = found.writers
    assert writer.path == str(log) and writer.fd > 2 and not writer.helper
    assert writer.name == "python" or writer.name.startswith("python")
    assert found.evidence == f"open write descriptor on {log}"
    assert found.files == (str(log),)
    assert procs.alive(found.pid, found.create_time)

    # the run can be killed through the safe path, and the plan says how it was found
    plan = procs.plan_kill_found(run_dir, found)
    assert isinstance(plan, KillPlan), plan
    assert plan.processes[0].pid == logger.pid
    assert f"found by an open write descriptor on {log}" in "\n".join(plan.describe())
    report = procs.execute(plan, "term", grace=5.0, audit_path=tmp_path / "audit.jsonl")
    assert report.ok, report.describe()
    assert logger.wait(10) == -signal.SIGTERM


def test_shell_redirect_names_the_python_not_the_shell(
    tmp_path: Path, processes: Processes, marker: str
) -> None:
    run_dir = tmp_path / "valohai"
    run_dir.mkdir()
    script = tmp_path / "train.py"
    script.write_text(
        "import sys, time\nprint('{\"step\": 0}', flush=True)\nwhile True:\n    time.sleep(0.05)\n"
    )
    log = run_dir / "train.log"
    line = f"{shlex.quote(sys.executable)} {script} {marker} > {log}; echo finished"
    shell = processes.start(["sh", "-c", line, marker], stdout=subprocess.DEVNULL)
    wait_until(lambda: log.exists() and log.stat().st_size > 0)
    python = wait_until(lambda: psutil.Process(shell.pid).children())[0]
    found = found_by_pid("valohai", log, python.pid)
    # dash holds the redirect too while its child runs (bash would not): the python wins
    assert python.pid in {w.pid for w in found.writers} <= {python.pid, shell.pid}
    assert found.pid == python.pid and str(script) in psutil.Process(found.pid).cmdline()
    assert {w.fd for w in found.writers if w.pid == python.pid} == {1}  # its stdout
    if len(found.writers) == 2:
        assert found.evidence.endswith(f"(its shell, pid {shell.pid}, holds it too)")


def test_read_only_opener_is_not_a_writer(
    tmp_path: Path, processes: Processes, marker: str
) -> None:
    log = tmp_path / "metrics.csv"
    log.write_text("epoch,loss\n")
    reader = processes.python(READER, str(log))
    assert str(log) in {f.path for f in psutil.Process(reader.pid).open_files()}
    assert scan("run", log) is None


def test_two_unrelated_writers_are_listed_and_no_process_is_chosen(
    tmp_path: Path, processes: Processes, marker: str
) -> None:
    log = tmp_path / "shared.csv"
    first = processes.python(CSV_LOGGER, str(log))
    second = processes.python(CSV_LOGGER, str(log))
    found = found_by_pid("run", log, second.pid)
    assert {w.pid for w in found.writers} == {first.pid, second.pid}
    assert found.ambiguous and found.pid is None and found.create_time is None
    assert "2 unrelated processes" in found.evidence and "choose one" in found.evidence
    refusal = procs.plan_kill_found(tmp_path, found)
    assert isinstance(refusal, Refusal) and refusal.code == "ambiguous"
    assert first.poll() is None and second.poll() is None


def test_a_forked_worker_sharing_the_descriptor_names_its_parent(
    tmp_path: Path, processes: Processes, marker: str
) -> None:
    log = tmp_path / "train.log"
    parent = processes.python(FORKING_WRITER, str(log))
    worker = wait_until(lambda: psutil.Process(parent.pid).children())[0]
    found = wait_until(lambda: (f := scan("run", log)) is not None and len(f.writers) == 2 and f)
    assert {w.pid for w in found.writers} == {parent.pid, worker.pid}
    assert found.pid == parent.pid and not found.ambiguous


def test_helper_process_names_its_parent(tmp_path: Path, processes: Processes, marker: str) -> None:
    helper_exe = tmp_path / "bin" / "wandb-core"
    helper_exe.parent.mkdir()
    helper_exe.write_text(HELPER.format(python=sys.executable))
    helper_exe.chmod(0o755)
    wandb_file = tmp_path / "wandb" / "run-20260101_000000-abc" / "run-abc.wandb"
    wandb_file.parent.mkdir(parents=True)
    parent = processes.python(HELPER_PARENT, str(helper_exe), str(wandb_file), ready=False)
    assert parent.stdout is not None
    helper_pid = int(parent.stdout.readline())
    assert parent.stdout.readline() == b"ready\n"
    # executed through its shebang, the kernel names the process after the script
    assert psutil.Process(helper_pid).name() == "wandb-core"

    found = found_by_pid("wandb", wandb_file, helper_pid)
    (writer,) = found.writers
    assert writer.helper and writer.name == "wandb-core" and writer.ppid == parent.pid
    assert found.pid == parent.pid
    assert found.create_time == psutil.Process(parent.pid).create_time()
    assert f"held by its helper wandb-core (pid {helper_pid})" in found.evidence


def test_helper_whose_parent_left_names_no_process(
    tmp_path: Path, processes: Processes, marker: str
) -> None:
    helper_exe = tmp_path / "wandb-core"
    helper_exe.write_text(HELPER.format(python=sys.executable))
    helper_exe.chmod(0o755)
    wandb_file = tmp_path / "run-abc.wandb"
    parent = processes.python(HELPER_PARENT, str(helper_exe), str(wandb_file), "leave", ready=False)
    assert parent.stdout is not None
    helper_pid = int(parent.stdout.readline())
    assert parent.wait(10) == 0
    adopter = psutil.Process(psutil.Process(helper_pid).ppid())
    found = found_by_pid("wandb", wandb_file, helper_pid)
    assert found.pid is None, f"adopted by {adopter.pid} {adopter.name()}"
    assert "whose parent is gone or not yours" in found.evidence


def test_is_helper_by_name_and_command_line() -> None:
    assert is_helper("wandb-core", ())
    assert is_helper("python3", ("/usr/bin/python3", "-m", "wandb", "service", "--pid", "7"))
    assert is_helper("go", ("/opt/wandb/bin/wandb-core", "--port-filename", "x"))
    assert not is_helper("python3", ("python3", "train.py", "--wandb", "service"))


def test_writer_gone_between_scan_and_kill_is_refused(
    tmp_path: Path, processes: Processes, marker: str
) -> None:
    log = tmp_path / "training.log.csv"
    logger = processes.python(CSV_LOGGER, str(log))
    found = found_by_pid("run", log, logger.pid)
    logger.kill()
    logger.wait()
    assert found.pid is not None and not procs.alive(found.pid, found.create_time)
    refusal = procs.plan_kill_found(tmp_path, found)
    assert isinstance(refusal, Refusal) and refusal.code in ("not_running", "pid_reused")
    assert scan("run", log) is None


def test_processes_vanishing_mid_scan_are_skipped(
    tmp_path: Path, processes: Processes, marker: str
) -> None:
    log = tmp_path / "churn.log"
    log.write_text("")
    churn = (
        "import os, sys\n"
        "print('ready', flush=True)\n"
        "while True:\n"
        "    pid = os.fork()\n"
        "    if pid == 0:\n"
        "        os.open(sys.argv[2], os.O_WRONLY | os.O_APPEND)\n"
        "        os._exit(0)\n"
        "    os.waitpid(pid, 0)\n"
    )
    spawner = processes.python(churn, str(log))
    scanner = WriterScanner()
    index = index_files({"run": [log]})
    seen = 0
    for _ in range(40):
        found = scanner.scan(index).runs.get("run")
        if found is not None:
            seen += 1
            assert spawner.pid not in {w.pid for w in found.writers}
    assert spawner.poll() is None  # it churned the whole time; the scans raised nothing
    assert seen <= 40


@pytest.mark.skipif(os.getuid() != 0, reason="needs root to start a process as another user")
def test_other_users_processes_are_not_looked_at(
    tmp_path: Path, processes: Processes, marker: str
) -> None:
    log = tmp_path / "train.log"
    fd = os.open(log, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
    try:
        # nobody inherits our descriptor: it writes our file, but is not our process
        # (nobody may not run our Python: a tracked sleep, killed at teardown)
        stranger = processes.track(
            subprocess.Popen(
                ["sleep", "60"], user=65534, group=65534, extra_groups=[], pass_fds=(fd,)
            )
        )
    finally:
        os.close(fd)
    wait_until(lambda: psutil.Process(stranger.pid).uids().real == 65534)
    wait_until(lambda: str(log) in {os.readlink(f"/proc/{stranger.pid}/fd/{fd}")})
    index = index_files({"run": [log]})
    assert WriterScanner().scan(index).runs == {}
    theirs = WriterScanner(uid=65534).scan(index).runs["run"]
    assert theirs.pid == stranger.pid


def test_tensorboardx_summary_writer_is_found(
    tmp_path: Path, processes: Processes, marker: str
) -> None:
    pytest.importorskip("tensorboardX")
    logdir = tmp_path / "tb" / "run1"
    code = (
        "import sys, time\n"
        "from tensorboardX import SummaryWriter\n"
        "writer = SummaryWriter(sys.argv[2])\n"
        "writer.add_scalar('loss', 1.0, 0)\n"
        "writer.flush()\n"
        "print('ready', flush=True)\n"
        "step = 0\n"
        "while True:\n"
        "    step += 1\n"
        "    writer.add_scalar('loss', 1 / (step + 1), step)\n"
        "    writer.flush()\n"
        "    time.sleep(0.05)\n"
    )
    summary = processes.python(code, str(logdir))
    (events,) = logdir.glob("events.out.tfevents.*")
    found = found_by_pid("tb", events, summary.pid)
    assert found.pid == summary.pid and found.files == (str(events),)
    assert found.create_time == psutil.Process(summary.pid).create_time()
    assert running(psutil.Process(summary.pid))


def test_nothing_to_look_for_costs_nothing() -> None:
    result = WriterScanner().scan(index_files({"run": [Path("/nonexistent/metrics.jsonl")]}))
    assert result.runs == {} and result.processes == 0 and result.descriptors == 0
    assert result.pause() == 5.0


def test_writers_found_before_are_rechecked_without_a_scan(
    tmp_path: Path, processes: Processes
) -> None:
    log = tmp_path / "train.log"
    log.write_text("start\n")
    index = index_files({"run": [log]})
    scanner = WriterScanner()
    assert scanner.holds(scanner.scan(index), index)  # no writer: nothing to let go
    writer = processes.python(QUIET_WRITER, str(log), stdin=subprocess.PIPE)
    found = wait_until(lambda: (s := scanner.scan(index)).runs and s)
    assert found.runs["run"].pid == writer.pid
    assert scanner.holds(found, index)
    # Against an index without the writer's file, the writer found no longer counts.
    (tmp_path / "other.log").write_text("")
    assert not scanner.holds(found, index_files({"run": [tmp_path / "other.log"]}))
    assert writer.stdin is not None and writer.stdout is not None
    writer.stdin.write(b"close\n")
    writer.stdin.flush()
    assert writer.stdout.readline() == b"closed\n"
    assert not scanner.holds(found, index)  # alive, but its descriptor is gone
    assert scanner.scan(index).runs == {}
