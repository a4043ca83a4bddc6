"""The logging client: records tracktui reads back, run.json, attach mode (issue 4 part 2)."""

from __future__ import annotations

import json
import math
import os
import signal
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import psutil
import pytest
from processes import Processes

import tui
from tui import client
from tui.client import Run, init
from tui.core.records import RecordBuilder, parse_line
from tui.core.rundir import RUN_DIR_ENV
from tui.core.shapes import Matrix, Table, classify


@pytest.fixture(autouse=True)
def _no_launcher(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(RUN_DIR_ENV, raising=False)


@pytest.fixture(autouse=True)
def _restore_process_hooks(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """tui.init in this process wraps sys.exit and excepthook and handles signals: undo it."""
    handlers = {
        sig: signal.getsignal(sig) for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP)
    }
    monkeypatch.setattr(sys, "exit", sys.exit)
    monkeypatch.setattr(sys, "excepthook", sys.excepthook)
    monkeypatch.setattr(client, "_WATCH", client._ExitWatch())
    yield
    for sig, handler in handlers.items():
        signal.signal(sig, handler)


def records(run: Run) -> list[dict[str, Any]]:
    parsed = [parse_line(line) for line in (run.dir / "metrics.jsonl").read_bytes().splitlines()]
    assert all(reason is None for _, reason in parsed), parsed
    return [record for record, _ in parsed if record is not None]


def meta(run: Run) -> dict[str, Any]:
    return json.loads((run.dir / "run.json").read_text())


def test_init_log_finish_round_trip(tmp_path: Path) -> None:
    run = init(root=tmp_path, name="exp1", config={"lr": 0.1}, tags={"team": "a"})
    assert run.dir == (tmp_path / "exp1").resolve() and not run.attached
    started = meta(run)
    assert started["status"] == "running" and started["pid"] == os.getpid()
    assert started["pid_create_time"] == psutil.Process().create_time()
    assert started["config"] == {"lr": 0.1} and started["tags"] == {"team": "a"}
    assert started["name"] == "exp1" and started["user"] and started["host"]

    run.log({"loss": 0.5, "acc": 1}, step=1)
    run.log({"loss": float("nan"), "grad": float("inf"), "low": -math.inf}, step=2)
    run.log({"train": {"loss": 0.25}, "note": "warmup done", "_time": 123.0})
    run.finish()
    first, second, third = records(run)
    assert first["step"] == 1 and first["loss"] == 0.5 and first["_time"].endswith("Z")
    assert math.isnan(second["loss"]) and second["grad"] == math.inf and second["low"] == -math.inf
    assert third["_time"] == 123.0 and "step" not in third
    raw = (run.dir / "metrics.jsonl").read_bytes()
    assert b"NaN" in raw and b"-Infinity" in raw and b"null" not in raw

    # the engine's parser sees the NaN as a number of the loss series
    builder = RecordBuilder()
    builder.add_lines(raw.splitlines())
    block = builder.build()
    assert block is not None and math.isnan(block.scalars["loss"][1][1])

    ended = meta(run)
    assert ended["status"] == "finished" and "ended_at" in ended
    run.finish("failed")  # a second finish changes nothing
    assert meta(run)["status"] == "finished"
    with pytest.raises(RuntimeError):
        run.log({"late": 1})


def test_confusion_tables_and_array_likes(tmp_path: Path) -> None:
    with init(root=tmp_path) as run:
        run.log_confusion("cm", [[5, 1], [2, 7]], step=3)
        run.log_confusion("cm_named", np.array([[5, 1], [2, 7]]), labels=["cat", "dog"])
        run.log_table("pr", {"threshold": [0.1, 0.5], "precision": [0.6, 0.9]})
        run.log({"weights": np.arange(3, dtype=np.float32), "scale": np.float64(2.5)})
        with pytest.raises(ValueError, match="differ in length"):
            run.log_table("bad", {"a": [1], "b": [1, 2]})
        with pytest.raises(TypeError, match="cannot log"):
            run.log({"obj": object()})
    plain, named, table, arrays = records(run)
    assert plain["cm"] == [["0", "1"], [5, 1], [2, 7]] and plain["step"] == 3
    assert named["cm_named"] == {"categories": ["cat", "dog"], "values": [[5, 1], [2, 7]]}
    assert classify(plain["cm"]) == Matrix(("0", "1"), ("0", "1"), ((5.0, 1.0), (2.0, 7.0)))
    matrix = classify(named["cm_named"])
    assert isinstance(matrix, Matrix) and matrix.rows == ("cat", "dog")
    assert isinstance(classify(table["pr"]), Table)
    assert arrays["weights"] == [0.0, 1.0, 2.0] and arrays["scale"] == 2.5
    assert meta(run)["status"] == "finished"


def test_context_manager_marks_failure_and_tags_rewrite_run_json(tmp_path: Path) -> None:
    with pytest.raises(ZeroDivisionError), init(root=tmp_path, name="boom") as run:
        run.tag("stage", "warmup")
        run.tag("stage", "main")
        run.tag("best", 0.9)
        1 / 0  # noqa: B018
    final = meta(run)
    assert final["status"] == "failed" and final["tags"] == {"stage": "main", "best": 0.9}
    assert not list(run.dir.glob(".*.tmp"))


def test_attach_to_launcher_run(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    run_dir = tmp_path / "launched"
    run_dir.mkdir()
    (run_dir / "run.json").write_text(json.dumps({"status": "running", "config": {"a": 1}}))
    monkeypatch.setenv(RUN_DIR_ENV, str(run_dir))
    run = tui.init(root=tmp_path / "ignored", config={"b": 2}, tags={"t": 1})
    assert run.attached and run.dir == run_dir
    run.log({"x": 1}, step=0)
    run.finish()
    assert records(run)[0]["x"] == 1
    final = json.loads((run_dir / "run.json").read_text())
    assert final == {"status": "running", "config": {"a": 1, "b": 2}, "tags": {"t": 1}}
    assert not (tmp_path / "ignored").exists()


def _python(code: str, cwd: Path, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)],
        cwd=cwd,
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )


def test_client_under_the_launcher_and_at_exit(tmp_path: Path) -> None:
    script = tmp_path / "fit.py"
    script.write_text(
        textwrap.dedent(
            """
            import sys, tui
            run = tui.init(tags={"from": "client"})
            run.log({"loss": float("nan")}, step=1)
            run.tag("phase", "done")
            if sys.argv[1:] == ["crash"]:
                raise SystemError("boom")
            """
        )
    )
    root = tmp_path / "runs"
    done = subprocess.run(
        [sys.executable, "-m", "tui", "run", "--root", str(root), "--name", "l",
         "--", sys.executable, str(script)],
        capture_output=True, timeout=30, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    launched = json.loads((root / "l" / "run.json").read_text())
    assert launched["tags"] == {"from": "client", "phase": "done"}
    assert launched["status"] == "finished" and launched["exit_code"] == 0
    record, _ = parse_line((root / "l" / "metrics.jsonl").read_bytes().splitlines()[0])
    assert record is not None and math.isnan(record["loss"])

    # alone, the client records the end itself when the interpreter exits
    for args, status in (([], "finished"), (["crash"], "failed")):
        cwd = tmp_path / status
        cwd.mkdir()
        alone = subprocess.run(
            [sys.executable, str(script), *args], cwd=cwd, capture_output=True, timeout=30
        )
        assert alone.returncode == (1 if args else 0)
        (run_json,) = (cwd / "runs").glob("fit-*/run.json")
        assert json.loads(run_json.read_text())["status"] == status


def test_import_is_cheap(tmp_path: Path) -> None:
    code = """
        import sys, tui, tui.client
        heavy = sorted(m for m in ("numpy", "textual", "rich", "orjson") if m in sys.modules)
        print(heavy)
    """
    assert _python(code, tmp_path).stdout.strip() == "[]"


def test_concurrent_writers_never_interleave(tmp_path: Path) -> None:
    run = init(root=tmp_path, name="shared")
    code = f"""
        import os, sys
        from tui.client import Run
        from pathlib import Path
        run = Run(Path({str(run.dir)!r}), attached=True)
        for i in range(300):
            run.log({{"writer": int(sys.argv[1]), "i": i, "pad": "x" * 3000}})
    """
    writers = [
        subprocess.Popen([sys.executable, "-c", textwrap.dedent(code), str(n)]) for n in range(4)
    ]
    assert all(w.wait(30) == 0 for w in writers)
    run.finish()
    got = records(run)
    assert len(got) == 1200
    for n in range(4):
        assert [r["i"] for r in got if r["writer"] == n] == list(range(300))


# ------------------------------------------------ the client tells the truth (issue 9 item 3)

ENDINGS = """
import os, signal, sys, time
import tui

root, mode = sys.argv[2], sys.argv[3]
if mode == "own-handler":
    def mine(signum, frame):
        open(os.path.join(root, "handled"), "w").write(str(signum))
        sys.exit(0)
    signal.signal(signal.SIGTERM, mine)
if mode == "nohup":
    signal.signal(signal.SIGHUP, signal.SIG_IGN)
run = tui.init(root=root, name="r")
run.log({"loss": 0.5}, step=0)
if mode == "exit0":
    sys.exit(0)
if mode == "exit3":
    sys.exit(3)
if mode == "message":
    sys.exit("bad config")
if mode == "raise":
    raise ValueError("boom")
if mode == "with-exit":
    with run:
        sys.exit(2)
if mode == "fork":
    started_r, started_w = os.pipe()
    child = os.fork()
    if child == 0:
        os.write(started_w, b"x")  # running Python code: past CPython's after-fork signal reset
        while True:
            time.sleep(0.05)
    os.read(started_r, 1)
    print(child, flush=True)
    print("ready", flush=True)
    print(os.waitstatus_to_exitcode(os.waitpid(child, 0)[1]), flush=True)
    sys.exit(0)
if mode in ("wait", "own-handler", "nohup"):
    print("ready", flush=True)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and not os.path.exists(os.path.join(root, "stop")):
        time.sleep(0.05)
"""


def ended(root: Path) -> dict[str, Any]:
    return json.loads((root / "r" / "run.json").read_text())


@pytest.mark.parametrize(
    ("mode", "returncode", "status", "exit_code"),
    [
        ("normal", 0, "finished", 0),
        ("exit0", 0, "finished", 0),
        ("exit3", 3, "failed", 3),
        ("message", 1, "failed", 1),
        ("raise", 1, "failed", 1),
        ("with-exit", 2, "failed", 2),
    ],
)
def test_exit_code_and_exceptions_are_recorded(
    tmp_path: Path, processes: Processes, mode: str, returncode: int, status: str, exit_code: int
) -> None:
    script = processes.python(ENDINGS, str(tmp_path), mode, ready=False, stderr=subprocess.PIPE)
    assert script.wait(30) == returncode
    meta = ended(tmp_path)
    assert (meta["status"], meta["exit_code"]) == (status, exit_code)
    assert "ended_at" in meta and "signal" not in meta


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGHUP, signal.SIGINT])
def test_signals_are_recorded_and_still_end_the_process(
    tmp_path: Path, processes: Processes, sig: signal.Signals
) -> None:
    script = processes.python(ENDINGS, str(tmp_path), "wait", stderr=subprocess.PIPE)
    script.send_signal(sig)
    # the exit status is the signal's (Python re-raises SIGINT after KeyboardInterrupt too)
    assert script.wait(30) == -sig
    meta = ended(tmp_path)
    assert meta["status"] == "killed" and meta["signal"] == sig and meta["signal_name"] == sig.name
    assert "exit_code" not in meta


def test_the_scripts_own_signal_handler_still_runs(tmp_path: Path, processes: Processes) -> None:
    script = processes.python(ENDINGS, str(tmp_path), "own-handler")
    script.send_signal(signal.SIGTERM)
    assert script.wait(30) == 0  # the script's handler chose how to exit
    assert (tmp_path / "handled").read_text() == str(int(signal.SIGTERM))
    meta = ended(tmp_path)
    assert meta["status"] == "killed" and meta["signal_name"] == "SIGTERM"


def test_an_ignored_signal_stays_ignored(tmp_path: Path, processes: Processes) -> None:
    script = processes.python(ENDINGS, str(tmp_path), "nohup")
    script.send_signal(signal.SIGHUP)
    (tmp_path / "stop").write_text("")  # asked to stop only after the SIGHUP was delivered
    assert script.wait(30) == 0
    assert ended(tmp_path)["status"] == "finished"


def test_a_forked_child_killed_does_not_end_the_parents_run(
    tmp_path: Path, processes: Processes
) -> None:
    script = processes.python(ENDINGS, str(tmp_path), "fork", ready=False)
    assert script.stdout is not None
    child = int(script.stdout.readline())
    assert script.stdout.readline() == b"ready\n"
    os.kill(child, signal.SIGTERM)
    assert int(script.stdout.readline()) == -signal.SIGTERM  # the child died of it
    assert script.wait(30) == 0
    meta = ended(tmp_path)
    assert (meta["status"], meta["exit_code"]) == ("finished", 0)
