"""Real processes for tests: start them under the launcher, find them, and clean up."""

from __future__ import annotations

import json
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import psutil

TRAIN = Path(__file__).resolve().parent / "scripts" / "train_like.py"


# Holds its log open for writing until told to close it (a line on stdin), then lives on.
QUIET_WRITER = """
import sys, time
log = open(sys.argv[2], "a")
print("ready", flush=True)
sys.stdin.readline()
log.close()
print("closed", flush=True)
while True:
    time.sleep(0.05)
"""


def wait_until(predicate: Callable[[], Any], timeout: float = 10.0) -> Any:
    """Poll until ``predicate`` returns something truthy; fail after ``timeout``."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.02)
    raise AssertionError("condition not met in time")


def running(proc: psutil.Process) -> bool:
    """Still alive as the same process (a zombie has exited)."""
    try:
        return proc.is_running() and proc.status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


def marked(marker: str) -> list[psutil.Process]:
    """Live processes whose command line carries ``marker``: every process a test caused."""
    found = []
    for proc in psutil.process_iter(["cmdline"]):
        try:
            if marker in " ".join(proc.info["cmdline"] or ()) and running(proc):
                found.append(proc)
        except psutil.Error:
            continue
    return found


class Processes:
    """Processes started by one test, all tagged with one marker; killed at teardown."""

    def __init__(self) -> None:
        self.marker = f"tt-{uuid.uuid4().hex[:12]}"
        self.started: list[subprocess.Popen[bytes]] = []

    def track(self, popen: subprocess.Popen[bytes]) -> subprocess.Popen[bytes]:
        self.started.append(popen)
        return popen

    def start(self, argv: list[str], **popen: Any) -> subprocess.Popen[bytes]:
        """Start and track any command; put :attr:`marker` in its arguments for cleanup."""
        assert any(self.marker in arg for arg in argv), "the marker finds leftovers"
        return self.track(subprocess.Popen(argv, **popen))

    def python(
        self, code: str, *args: str, ready: bool = True, **popen: Any
    ) -> subprocess.Popen[bytes]:
        """``python -c CODE MARKER ARGS...`` (so ``sys.argv[1]`` is the marker).

        With ``ready``, waits until the code prints a line ``ready`` (its setup is done).
        """
        popen.setdefault("stdout", subprocess.PIPE)
        child = self.start([sys.executable, "-c", code, self.marker, *args], **popen)
        if ready:
            wait_ready(child)
        return child

    def launch(
        self, root: Path, name: str = "run", *extra: str, steps: int = 0
    ) -> subprocess.Popen[bytes]:
        """``tracktui run`` a training-like script (until killed when ``steps`` is 0)."""
        launcher = self.track(
            subprocess.Popen(
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
                    str(steps),
                    "--marker",
                    self.marker,
                    *extra,
                ],
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )
        )
        run_dir = root / name
        wait_until(lambda: "pid_create_time" in read_meta(run_dir))
        wait_until(
            lambda: (
                (run_dir / "metrics.jsonl").exists() and (run_dir / "metrics.jsonl").stat().st_size
            )
        )
        return launcher

    def cleanup(self) -> None:
        for proc in marked(self.marker):
            try:
                proc.kill()
            except psutil.NoSuchProcess:
                pass
        while self.started:
            popen = self.started.pop()
            if popen.poll() is None:
                popen.kill()
            popen.wait(5)
            if popen.stdout is not None:
                popen.stdout.close()
        wait_until(lambda: not marked(self.marker), 5.0)


def wait_ready(child: subprocess.Popen[bytes]) -> None:
    """Read the child's stdout until it prints ``ready``; fail if it exits first."""
    assert child.stdout is not None
    for line in child.stdout:
        if line.strip() == b"ready":
            return
    raise AssertionError(f"process {child.pid} exited ({child.wait()}) before it was ready")


def read_meta(run_dir: Path) -> dict[str, Any]:
    """run.json of a run, or {} while it is missing or being replaced."""
    try:
        return json.loads((run_dir / "run.json").read_text())
    except (OSError, ValueError):
        return {}


def processes_fixture() -> Iterator[Processes]:
    """Body of the ``processes`` fixture (see conftest.py)."""
    spawned = Processes()
    try:
        yield spawned
    finally:
        spawned.cleanup()
