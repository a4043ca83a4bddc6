"""Status from evidence for every run: writer processes, file times, our audit log.

Real files, real writer processes, the real ``tracktui status`` command.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import psutil
import pytest
from conftest import SAMPLES, load
from processes import Processes, running, wait_until

from tui.core.audit import AuditReader
from tui.core.evidence import EvidenceGatherer
from tui.core.status import derive_status
from tui.core.store import Run, RunStore
from tui.core.timefmt import parse_time

THREE_DAYS = 3 * 24 * 3600.0

# Appends JSON lines to a log it keeps open (a ``python train.py > train.log`` run).
WRITER = """
import json, sys, time
log = open(sys.argv[2], "a", buffering=1)
for step in range(3):
    log.write(json.dumps({"step": step, "loss": 1.0 / (step + 1)}) + "\\n")
print("ready", flush=True)
while True:
    time.sleep(0.2)
"""


def status_json(root: Path) -> list[dict[str, Any]]:
    out = subprocess.run(
        [sys.executable, "-m", "tui", "status", str(root), "--json"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert out.returncode == 0, out.stderr
    runs: list[dict[str, Any]] = json.loads(out.stdout)["runs"]
    return runs


def age(root: Path, seconds: float) -> None:
    """Set every file's times ``seconds`` into the past (an old copy with no writer)."""
    past = time.time() - seconds
    for folder, _, files in os.walk(root):
        for name in files:
            os.utime(Path(folder) / name, (past, past))


def test_aged_copies_with_no_writer_are_never_running(tmp_path: Path) -> None:
    begun = time.time()
    root = tmp_path / "old"
    shutil.copytree(SAMPLES, root, ignore=shutil.ignore_patterns("*.py", "__pycache__"))
    age(root, THREE_DAYS)
    runs = status_json(root)
    assert len(runs) >= 30
    by_path = {run["path"]: run for run in runs}
    assert not [r["path"] for r in runs if r["status"] in ("running", "stalled")]
    for path in ("valohai/train.log", "foreign/csv_keras/lr-0.3.csv"):
        assert by_path[path]["status"] == "ended"
        assert by_path[path]["process"] is None
    # Times come from the data or the (aged) files, never from the moment they were read.
    for run in runs:
        for field in ("started_at", "ended_at"):
            if run[field] is not None:
                moment = parse_time(run[field])
                assert moment is not None and moment < begun, (run["path"], field, run[field])


def test_a_log_held_open_is_running_with_its_writer_then_ended(
    tmp_path: Path, processes: Processes
) -> None:
    run_dir = tmp_path / "root" / "exp"
    run_dir.mkdir(parents=True)
    log = run_dir / "train.log"
    writer = processes.python(WRITER, str(log))
    runs = status_json(tmp_path / "root")
    assert [(r["path"], r["status"]) for r in runs] == [("exp/train.log", "running")]
    process = runs[0]["process"]
    assert process["found"] == "open_file"
    assert process["pid"] == runs[0]["pid"] == writer.pid
    assert "train.log" in process["evidence"]
    writer.kill()
    writer.wait(10)
    # Written a moment ago, but the writer that held it open is gone: not running.
    runs = status_json(tmp_path / "root")
    assert runs[0]["status"] == "ended"
    assert runs[0]["process"] is None and runs[0]["pid"] is None
    assert runs[0]["ended_at"] is not None


def audit_line(run_dir: Path, result: str = "all exited") -> str:
    entry = {
        "time": "2030-01-01T00:00:00.000000Z",
        "run": str(run_dir),
        "pids": [4194301],
        "signal": "SIGTERM",
        "result": result,
    }
    return json.dumps(entry) + "\n"


def one_run_and_audit(
    tmp_path: Path, name: str, line: str, audit_text: Callable[[Path], str]
) -> tuple[Path, Path, Path, RunStore, Run]:
    """ROOT with one run (``exp/NAME`` holding ``line``) and ``ROOT/.tracktui/audit.jsonl``
    holding what ``audit_text(run file)`` returns; the store read from it."""
    root = tmp_path / "root"
    run_file = root / "exp" / name
    run_file.parent.mkdir(parents=True)
    run_file.write_text(line)
    audit = root / ".tracktui" / "audit.jsonl"
    audit.parent.mkdir()
    audit.write_text(audit_text(run_file))
    store = load(root)
    (run,) = store
    return root, run_file, audit, store, run


def test_a_run_our_audit_log_stopped_is_killed_and_a_foreign_log_is_ignored(
    tmp_path: Path,
) -> None:
    # The run's path is what a kill of it writes in the log.
    root, log, audit, store, run = one_run_and_audit(
        tmp_path,
        "train.log",
        '{"step": 1, "loss": 0.5}\n',
        lambda f: audit_line(f, "refused: not yours") + audit_line(f) + "{torn",
    )
    gatherer = EvidenceGatherer(root, audit=AuditReader([audit]), local=True)
    gatherer.gather({run.key: [log]}).apply(store, root)
    assert run.stop is not None and run.stop.signal == "SIGTERM"
    assert derive_status(run, time.time()) == "killed"

    os.chmod(audit, 0o666)  # writable by anyone: no longer evidence
    gatherer.gather({run.key: [log]}).apply(store, root)
    assert run.stop is None and gatherer.audit.ignored
    assert derive_status(run, time.time()) == "ended"


@pytest.mark.skipif(os.geteuid() != 0, reason="needs root to give the log to another user")
def test_an_audit_log_owned_by_another_user_is_not_evidence(tmp_path: Path) -> None:
    root, log, audit, store, run = one_run_and_audit(
        tmp_path, "train.log", '{"step": 1, "loss": 0.5}\n', audit_line
    )
    os.chown(audit, 65534, 65534)
    EvidenceGatherer(root, audit=AuditReader([audit]), local=True).gather({run.key: [log]}).apply(
        store, root
    )
    assert run.stop is None
    assert derive_status(run, time.time()) == "ended"


def test_a_write_after_the_kill_means_the_run_came_back(tmp_path: Path) -> None:
    root = tmp_path / "root"
    run_dir = root / "exp"
    run_dir.mkdir(parents=True)
    (run_dir / "metrics.jsonl").write_text('{"step": 1, "loss": 0.5, "_time": 1900000000}\n')
    audit = root / ".tracktui" / "audit.jsonl"
    audit.parent.mkdir()
    entry = json.loads(audit_line(run_dir))
    entry["time"] = "2029-01-01T00:00:00Z"  # before the record's time (2030-03-17)
    audit.write_text(json.dumps(entry) + "\n")
    store = load(root)
    (run,) = store
    EvidenceGatherer(root, audit=AuditReader([audit]), local=True).gather({}).apply(store, root)
    assert run.stop is not None
    assert derive_status(run, 1900000000.0 + 10) == "running"  # written since: not the same run


def test_the_written_time_of_a_line_without_one_is_its_files_time(tmp_path: Path) -> None:
    root = tmp_path / "root"
    (root / "exp").mkdir(parents=True)
    log = root / "exp" / "metrics.jsonl"
    log.write_text('{"step": 1, "loss": 0.5}\n')
    past = time.time() - THREE_DAYS
    os.utime(log, (past, past))
    store = load(root)
    (run,) = store
    assert run.first_time == pytest.approx(past, abs=1)
    assert derive_status(run, time.time()) == "ended"


# Real writers of four formats, each started in its own session (as from another shell).
# ``sys.argv[1]`` is the test's marker, ``sys.argv[2]`` the run directory.
KERAS = """
import sys, time
log = open(sys.argv[2] + "/training.log", "w", buffering=1)
log.write("epoch,loss,val_loss\\n")
for epoch in range(3):
    log.write(f"{epoch},{1.0 / (epoch + 1)},{1.5 / (epoch + 1)}\\n")
print("ready", flush=True)
while True:
    time.sleep(0.2)
"""

TENSORBOARD = """
import sys, time
from tensorboardX import SummaryWriter
writer = SummaryWriter(sys.argv[2])
for step in range(3):
    writer.add_scalar("loss", 1.0 / (step + 1), step)
writer.flush()
print("ready", flush=True)
while True:
    time.sleep(0.2)
"""

# ``sh -c 'python -u -c CODE > train.log'``: the shell's child holds the redirect.
REDIRECT = """
import os, sys
code = "import json, time\\nfor s in range(3): print(json.dumps({'step': s, 'loss': 1.0}))\\nprint('ready', flush=True)\\nwhile True: time.sleep(0.2)"
log = sys.argv[2] + "/train.log"
os.execvp("sh", ["sh", "-c", f'{sys.executable} -u -c "$0" {sys.argv[1]} > {log}', code])
"""

CLIENT = """
import sys, time
import tui
run = tui.init(root=sys.argv[2], name="client")
for step in range(3):
    run.log({"step": step, "loss": 1.0 / (step + 1)})
print("ready", flush=True)
while True:
    time.sleep(0.2)
"""


def started(processes: Processes, code: str, run_dir: Path, ready_file: Path | None) -> int:
    """Start a writer; wait until it has written (its stdout, or its log, says ready)."""
    writer = processes.python(code, str(run_dir), start_new_session=True, ready=ready_file is None)
    if ready_file is not None:
        wait_until(lambda: ready_file.exists() and b"ready" in ready_file.read_bytes())
    return writer.pid


@pytest.mark.parametrize(
    ("code", "run", "found"),
    [
        (KERAS, "keras/training.log", "open_file"),
        (TENSORBOARD, "tb", "open_file"),
        (REDIRECT, "redirect/train.log", "open_file"),
        (CLIENT, "client", "recorded"),
    ],
    ids=["keras-csv", "tensorboardx", "shell-redirect", "tui-init"],
)
def test_a_live_writer_is_running_then_killed_by_tracktui_kill(
    tmp_path: Path, processes: Processes, code: str, run: str, found: str
) -> None:
    root = tmp_path / "root"
    run_dir = root / run.split("/")[0]
    run_dir.mkdir(parents=True)
    parent = root if code is CLIENT else run_dir
    ready_file = run_dir / "train.log" if code is REDIRECT else None
    started(processes, code, parent, ready_file)
    (before,) = status_json(root)
    assert before["path"].startswith(run) and before["status"] == "running"  # client: NAME-hex
    assert before["process"]["found"] == found
    pid = before["pid"]
    proc = psutil.Process(pid)
    assert processes.marker in " ".join(proc.cmdline())  # the script itself, not a shell
    out = kill_cli(root, before["path"])
    assert out.returncode == 0, out.stderr
    assert str(pid) in out.stdout
    wait_until(lambda: not running(proc), 10)
    (after,) = status_json(root)
    assert after["status"] == "killed", after


def kill_cli(root: Path, run: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "tui", "kill", str(root), run, "--yes", "--grace", "2"],
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_tracktui_kill_refuses_a_foreign_run_with_no_writer(tmp_path: Path) -> None:
    root = tmp_path / "root"
    (root / "exp").mkdir(parents=True)
    (root / "exp" / "train.log").write_text('{"step": 1, "loss": 0.5}\n')
    out = kill_cli(root, "exp/train.log")
    assert out.returncode == 1
    assert "no process of yours holds its files open" in out.stderr
    assert kill_cli(root, "nothing-here").returncode == 2
