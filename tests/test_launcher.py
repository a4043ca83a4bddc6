"""``tracktui run``: run.json, output capture, JSON records, signals (issue 4 part 1)."""

from __future__ import annotations

import argparse
import json
import math
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import psutil
import pytest
from processes import TRAIN, running

from tui.commands import run as run_command
from tui.core import launch, rundir
from tui.core.records import parse_line, parse_time


def run_launcher(
    root: Path, *args: str, cwd: Path | None = None, timeout: float = 30
) -> subprocess.CompletedProcess[bytes]:
    """``python -m tui run --root ROOT ARGS`` to completion, output captured."""
    return subprocess.run(
        [sys.executable, "-m", "tui", "run", "--root", str(root), *args],
        capture_output=True,
        cwd=cwd,
        timeout=timeout,
        check=False,
    )


def only_run(root: Path) -> Path:
    (run_dir,) = [p.parent for p in root.rglob("run.json")]
    return run_dir


def meta_of(run_dir: Path) -> dict[str, Any]:
    return json.loads((run_dir / "run.json").read_text())


def test_training_script_becomes_a_run(tmp_path: Path, marker: str) -> None:
    root = tmp_path / "runs"
    done = run_launcher(
        root,
        "--config", "lr=0.01", "--config", "layers=3", "--config", "amp=true",
        "--config", "opt=adam", "--tag", "team=vision",
        "--", sys.executable, str(TRAIN), "4", "--nan-at", "2", "--marker", marker,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr

    run_dir = only_run(root)
    assert run_dir.name.startswith("train_like-")
    meta = meta_of(run_dir)
    assert meta["status"] == "finished" and meta["exit_code"] == 0
    assert meta["config"] == {"lr": 0.01, "layers": 3, "amp": True, "opt": "adam"}
    assert meta["tags"] == {"team": "vision"}
    assert meta["host"] == socket.gethostname() and meta["cwd"] == os.getcwd()
    assert meta["command"] == [sys.executable, str(TRAIN), "4", "--nan-at", "2", "--marker", marker]
    assert meta["pgid"] == meta["pid"] and isinstance(meta["pid_create_time"], float)
    assert len(meta["id"]) == 32 and meta["name"] == run_dir.name
    assert parse_time(meta["created_at"]) <= parse_time(meta["ended_at"])  # type: ignore[operator]
    assert not list(run_dir.glob(".*.tmp"))

    records = [
        parse_line(line)[0] for line in (run_dir / "metrics.jsonl").read_bytes().splitlines()
    ]
    assert [r["step"] for r in records] == [0, 1, 2, 3]  # type: ignore[index]
    assert all(parse_time(r["_time"]) for r in records)  # type: ignore[index]
    assert records[1]["loss"] == 0.5 and math.isnan(records[2]["loss"])  # type: ignore[index]

    # the terminal gets the child's bytes unchanged, and output.log holds both streams
    stdout = done.stdout.decode()
    assert '\n{"step": 2, "loss": NaN, "phase": "train"}\n' in stdout
    assert stdout.endswith("training finished\n") and "step 0 done" in done.stderr.decode()
    log = (run_dir / "output.log").read_text().splitlines()
    assert '{"step": 3, "loss": NaN, "phase": "train"}' in log
    assert "step 3 done" in log and "training finished" in log and log.count("") == 4


def test_json_record_keeps_the_childs_bytes() -> None:
    stamped = launch.json_record(b'  {"loss": NaN, "big": 12345678901234567890}\r')
    assert stamped is not None and stamped.endswith(b'"loss": NaN, "big": 12345678901234567890}\n')
    record, _ = parse_line(stamped)
    assert record is not None and math.isnan(record["loss"]) and record["_time"].endswith("Z")
    assert launch.json_record(b'{"_time": 5, "a": 1}') == b'{"_time": 5, "a": 1}\n'
    empty, _ = parse_line(launch.json_record(b"{ }") or b"")
    assert empty is not None and list(empty) == ["_time"]
    for line in (b"", b"step 3", b"[1, 2]", b'{"a": 1', b'"{}"', b"{not json}", b"\xff{}"):
        assert launch.json_record(line) is None, line


def test_values_names_and_config_files(tmp_path: Path) -> None:
    texts = ("1", "-2", "0.5", "1e-3", "True", "x", "nan", "")
    assert [run_command.parse_value(v) for v in texts] == [1, -2, 0.5, 0.001, True, "x", "nan", ""]
    with pytest.raises(ValueError, match="not key=value"):
        run_command.parse_pairs(["novalue"], "--config")
    assert rundir.default_name(["python3", "-u", "dir/train.py", "--lr", "1"]) == "train"
    assert rundir.default_name(["python", "-m", "pkg.fit"]) == "pkg.fit"
    assert rundir.default_name(["/usr/bin/bash", "go.sh"]) == "bash"

    (tmp_path / "c.yaml").write_text("lr: 0.1\nmodel: {depth: 4}\n")
    (tmp_path / "c.toml").write_text("lr = 0.2\n[model]\ndepth = 5\n")
    (tmp_path / "c.json").write_text('{"lr": 0.3}')
    (tmp_path / "bad.yaml").write_text("- a list\n")
    assert run_command.load_config_file(tmp_path / "c.yaml") == {"lr": 0.1, "model": {"depth": 4}}
    assert run_command.load_config_file(tmp_path / "c.toml") == {"lr": 0.2, "model": {"depth": 5}}
    assert run_command.load_config_file(tmp_path / "c.json") == {"lr": 0.3}
    with pytest.raises(ValueError, match="mapping"):
        run_command.load_config_file(tmp_path / "bad.yaml")

    root = tmp_path / "runs"
    first = rundir.make_run_dir(root, "sweep/a", "x")
    second = rundir.make_run_dir(root, "sweep/a", "x")
    assert first == root / "sweep" / "a" and second.parent == first.parent and second != first
    for bad in ("../out", "/abs", ".."):
        with pytest.raises(ValueError):
            rundir.make_run_dir(root, bad, "x")


def test_config_file_failures_and_overrides_through_main(tmp_path: Path) -> None:
    (tmp_path / "c.yaml").write_text("lr: 0.1\nepochs: 3\n")
    root = tmp_path / "runs"
    code = [sys.executable, "-c", "print('hi')"]
    done = run_launcher(
        root, "--config-file", str(tmp_path / "c.yaml"), "--config", "lr=0.5", "--", *code
    )
    assert done.returncode == 0 and done.stdout == b"hi\n"
    assert meta_of(only_run(root))["config"] == {"lr": 0.5, "epochs": 3}
    assert (
        run_launcher(root, "--config-file", str(tmp_path / "missing.json"), "--", *code).returncode
        == 2
    )
    assert run_launcher(root, "--name", "../escape", "--", *code).returncode == 2
    assert b"no command" in run_launcher(root, "--").stderr


def test_exit_codes_and_missing_programs(tmp_path: Path) -> None:
    parser = argparse.ArgumentParser()
    run_command.add_arguments(parser)
    failing = parser.parse_args(
        ["--root", str(tmp_path / "a"), "--", sys.executable, "-c", "import sys; sys.exit(3)"]
    )
    assert run_command.main(failing) == 3  # in-process: returns the child's exit code
    meta = meta_of(only_run(tmp_path / "a"))
    assert meta["status"] == "failed" and meta["exit_code"] == 3 and "signal" not in meta

    missing = parser.parse_args(["--root", str(tmp_path / "b"), "--", str(tmp_path / "nope")])
    assert run_command.main(missing) == 127
    assert meta_of(only_run(tmp_path / "b"))["status"] == "failed"

    suicide = "import os, signal; os.kill(os.getpid(), signal.SIGKILL)"
    done = run_launcher(tmp_path / "c", "--", sys.executable, "-c", suicide)
    assert done.returncode == 128 + signal.SIGKILL
    meta = meta_of(only_run(tmp_path / "c"))
    assert meta["status"] == "killed" and meta["signal"] == 9 and meta["signal_name"] == "SIGKILL"


def test_child_sees_run_dir_and_unbuffered_output(tmp_path: Path) -> None:
    code = "import os; print(os.environ['TRACKTUI_RUN_DIR'], os.environ['PYTHONUNBUFFERED'])"
    done = run_launcher(tmp_path / "runs", "--name", "env", "--", sys.executable, "-c", code)
    run_dir = (tmp_path / "runs" / "env").resolve()
    assert done.stdout.decode().split() == [str(run_dir), "1"]
    assert (run_dir / "metrics.jsonl").read_bytes() == b""  # nothing JSON was printed


def test_sigterm_to_launcher_reaches_the_whole_run(tmp_path: Path, marker: str) -> None:
    root = tmp_path / "runs"
    proc = subprocess.Popen(
        [sys.executable, "-m", "tui", "run", "--root", str(root), "--name", "r", "--",
         sys.executable, str(TRAIN), "0", "--marker", marker],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )  # fmt: skip
    metrics = root / "r" / "metrics.jsonl"
    deadline = time.monotonic() + 10
    while not (metrics.exists() and metrics.stat().st_size) and time.monotonic() < deadline:
        time.sleep(0.02)
    pid = meta_of(root / "r")["pid"]
    workers = psutil.Process(pid).children()
    assert len(workers) == 2

    proc.send_signal(signal.SIGTERM)
    assert proc.wait(10) == 128 + signal.SIGTERM
    meta = meta_of(root / "r")
    assert meta["status"] == "killed" and meta["signal"] == signal.SIGTERM
    # the child's process group got the signal, workers included (a zombie has exited)
    deadline = time.monotonic() + 5
    while any(running(w) for w in workers) and time.monotonic() < deadline:
        time.sleep(0.02)
    assert not any(running(w) for w in workers)


def test_git_commit_and_dirty_flag(tmp_path: Path) -> None:
    repo = tmp_path / "repo"
    repo.mkdir()
    git = ["git", "-c", "user.name=t", "-c", "user.email=t@t", "-C", str(repo)]
    subprocess.run([*git, "init", "-q"], check=True)
    (repo / "f.txt").write_text("1")
    subprocess.run([*git, "add", "f.txt"], check=True)
    subprocess.run([*git, "commit", "-qm", "c"], check=True)
    commit = subprocess.run(
        [*git, "rev-parse", "HEAD"], capture_output=True, text=True
    ).stdout.strip()
    code = [sys.executable, "-c", "pass"]
    run_launcher(tmp_path / "runs", "--name", "clean", "--", *code, cwd=repo)
    (repo / "f.txt").write_text("2")
    run_launcher(tmp_path / "runs", "--name", "dirty", "--", *code, cwd=repo)
    assert meta_of(tmp_path / "runs" / "clean")["git"] == {"commit": commit, "dirty": False}
    assert meta_of(tmp_path / "runs" / "dirty")["git"] == {"commit": commit, "dirty": True}
    run_launcher(tmp_path / "runs", "--name", "none", "--", *code, cwd=tmp_path)
    assert "git" not in meta_of(tmp_path / "runs" / "none")


def test_partial_line_reaches_output_log_while_the_run_waits(tmp_path: Path) -> None:
    gate = tmp_path / "gate"
    code = (
        "import os, sys, time\n"
        "sys.stdout.write('epoch 1: 50%\\r')\n"
        "sys.stdout.flush()\n"
        f"while not os.path.exists({str(gate)!r}): time.sleep(0.02)\n"
        "print('100%')\n"
    )
    proc = subprocess.Popen(
        [sys.executable, "-m", "tui", "run", "--root", str(tmp_path / "runs"),
         "--name", "bar", "--", sys.executable, "-c", code],
        stdout=subprocess.PIPE,
    )  # fmt: skip
    log = tmp_path / "runs" / "bar" / "output.log"
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and b"50%" not in (log.read_bytes() if log.exists() else b""):
        time.sleep(0.02)
    assert log.read_bytes() == b"epoch 1: 50%\r"  # a progress bar shows up before its line ends
    gate.touch()
    out, _ = proc.communicate(timeout=10)
    assert out == b"epoch 1: 50%\r100%\n" and log.read_bytes() == out


def test_a_terminal_that_stops_reading_stops_neither_the_command_nor_a_record(
    tmp_path: Path,
) -> None:
    # The command writes far more than the pipes hold (2 MB) and exits while we read
    # nothing, until well after the launcher's grace for open pipes: it must not wait for
    # the terminal (a stalled SSH link stopped training), and every byte must still reach
    # metrics.jsonl, output.log and, once it reads again, the terminal.
    exited = tmp_path / "exited"
    lines = 20_000
    code = (
        "import json, pathlib, sys\n"
        f"for step in range({lines}):\n"
        "    print(json.dumps({'step': step, 'loss': 1.0 / (step + 1), 'pad': 'x' * 40}))\n"
        "sys.stdout.flush()\n"
        f"pathlib.Path({str(exited)!r}).touch()\n"
    )
    proc = subprocess.Popen(
        [sys.executable, "-m", "tui", "run", "--root", str(tmp_path / "runs"),
         "--name", "stalled", "--", sys.executable, "-c", code],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
    )  # fmt: skip
    deadline = time.monotonic() + 30
    while not exited.exists():
        assert time.monotonic() < deadline, "the command never finished writing"
        time.sleep(0.02)
    time.sleep(launch._DRAIN_WAIT + 1.0)  # the terminal stays stalled past the grace
    out, _ = proc.communicate(timeout=60)
    assert proc.returncode == 0
    run_dir = tmp_path / "runs" / "stalled"
    records = (run_dir / "metrics.jsonl").read_bytes().splitlines()
    assert len(records) == lines and json.loads(records[-1])["step"] == lines - 1
    assert (run_dir / "output.log").read_bytes() == out and len(out.splitlines()) == lines
    assert meta_of(run_dir)["status"] == "finished"


def test_output_past_what_is_held_for_a_stalled_terminal_is_dropped_and_told(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """What a terminal that is not reading cannot be given is dropped, oldest first, from
    the terminal only (output.log has it), and the terminal is told how much once it reads
    again."""
    monkeypatch.setattr(launch, "_ECHO_HELD", 1000)
    read_end, write_end = os.pipe()
    echo = launch._Echo(write_end, "stdout")
    for letter in b"abcd":  # 2,400 bytes while the terminal takes none
        echo.write(bytes([letter]) * 600)
    assert echo.behind()
    echo.start()
    echo.end()
    echo.join(timeout=30)
    os.close(write_end)
    with os.fdopen(read_end, "rb") as terminal:
        shown = terminal.read()
    note, rest = shown.split(b"]\n", 1)
    assert b"1,800 bytes of output not shown" in note
    assert rest == b"d" * 600  # the newest, whole; the oldest three dropped
    assert not echo.behind()
