"""On a real NVIDIA GPU: a CUDA process under ``tracktui run`` is attributed to its run.

Marked ``gpu`` and skipped where NVML finds no GPU (CI), where torch cannot reach CUDA or
``nvidia-smi`` is missing. What the other tests drive through a fixed provider, this
drives through the driver:

* a torch process holding GPU memory under ``tracktui run`` is attributed to that run
  within 2 s of its allocation, to the MiB of ``nvidia-smi --query-compute-apps``;
* after the run ends, its ``system.jsonl`` holds the GPU history and the System tab
  charts it;
* ``gpu_idle`` triggers on a process that holds memory and sleeps (``tracktui watch``'s
  follower, on the real provider).

    pytest -m gpu tests/gpu
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tui.core.gpu import NvmlProvider, attribute, identities, look
from tui.core.gpu.sampler import SYSTEM
from tui.core.status import derive_status
from tui.core.store import RunStore

MiB = 1 << 20


def _gpu_ready() -> str | None:
    """Why this machine cannot run the suite, or ``None``."""
    reading = NvmlProvider().read()
    if not reading.available:
        return f"no GPU: {reading.note}"
    if shutil.which("nvidia-smi") is None:
        return "nvidia-smi is not on PATH"
    probe = subprocess.run(
        [sys.executable, "-c", "import torch; assert torch.cuda.is_available()"],
        capture_output=True,
        timeout=120,
    )
    if probe.returncode != 0:
        return "torch with CUDA is not installed"
    return None


_WHY = _gpu_ready()
pytestmark = [pytest.mark.gpu, pytest.mark.skipif(_WHY is not None, reason=_WHY or "")]

# Allocates ``argv[1]`` MiB on the GPU, says so on stdout (a record), then sleeps.
HOLD = """
import json, sys, time
import torch
block = torch.ones(int(sys.argv[1]) * 2**20, dtype=torch.uint8, device="cuda")
torch.cuda.synchronize()
print(json.dumps({"allocated_mib": int(sys.argv[1])}), flush=True)
time.sleep(float(sys.argv[2]))
"""


def launch(root: Path, name: str, mib: int, seconds: float) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [
            sys.executable, "-m", "tui", "run", "--root", str(root), "--name", name,
            "--system-interval", "0.5", "--",
            sys.executable, "-c", HOLD, str(mib), str(seconds),
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )  # fmt: skip


def wait_for(predicate, timeout: float, step: float = 0.05):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = predicate()
        if found:
            return found
        time.sleep(step)
    raise AssertionError("condition not met in time")


def allocated(run_dir: Path) -> bool:
    try:
        return "allocated_mib" in (run_dir / "metrics.jsonl").read_text()
    except OSError:
        return False


def store_of(root: Path) -> RunStore:
    from tui.core.engine import Engine

    engine = Engine(root, watch="poll")
    engine.scan()
    store = RunStore()
    for key in engine.take_dirty()[0]:
        for batch in engine.read_all(key):
            store.apply(batch)
    engine.stop()
    now = time.time()
    for run in store:
        run.status = derive_status(run, now)
    return store


def smi_compute_apps() -> dict[int, int]:
    """``pid -> used MiB`` as ``nvidia-smi --query-compute-apps`` says."""
    out = subprocess.run(
        ["nvidia-smi", "--query-compute-apps=pid,used_memory", "--format=csv,noheader,nounits"],
        capture_output=True,
        text=True,
        check=True,
        timeout=30,
    ).stdout
    apps: dict[int, int] = {}
    for line in out.splitlines():
        pid, used = (part.strip() for part in line.split(","))
        apps[int(pid)] = apps.get(int(pid), 0) + int(used)
    return apps


def test_a_cuda_run_is_attributed_within_2_s_and_agrees_with_nvidia_smi(tmp_path: Path) -> None:
    launcher = launch(tmp_path, "cuda", 1024, 30)
    try:
        run_dir = tmp_path / "cuda"
        wait_for(lambda: allocated(run_dir), 120)
        provider = NvmlProvider()
        start = time.monotonic()

        def attributed():
            store = store_of(tmp_path)
            state = attribute(look(provider), identities(store))
            use = state.runs.get("cuda")
            return (use, state) if use is not None and use.memory > 0 else None

        use, state = wait_for(attributed, 2.0, step=0.0)
        took = time.monotonic() - start
        print(f"attributed in {took * 1000:.0f} ms: {use.memory / MiB:.0f} MiB on {use.devices}")
        assert took <= 2.0
        smi = smi_compute_apps()
        for process in use.processes:
            assert process.memory is not None
            assert abs(process.memory / MiB - smi[process.pid]) < 1, (process, smi)
        assert use.memory >= 1024 * MiB
        assert all(h.runs == ("cuda",) for h in state.holders if h.process.pid in smi and h.runs)
    finally:
        launcher.terminate()
        launcher.wait(30)


async def test_the_system_tab_shows_the_gpu_history_after_the_run_ends(tmp_path: Path) -> None:
    from textual.widgets import Static

    from tui.app.app import TrackApp
    from tui.app.widgets.system_view import SystemView

    launcher = launch(tmp_path, "short", 256, 3)
    assert launcher.wait(180) == 0
    lines = [json.loads(line) for line in (tmp_path / "short" / SYSTEM).read_text().splitlines()]
    held = [v for line in lines for k, v in line.items() if k.endswith("/memory_bytes")]
    assert held and max(held) >= 256 * MiB
    app = TrackApp(tmp_path, watch="poll")
    async with app.run_test(size=(140, 40)) as pilot:
        deadline = time.monotonic() + 30
        while "short" not in app.store.runs or app.store.runs["short"].status != "finished":
            assert time.monotonic() < deadline
            await pilot.pause(0.05)
        await pilot.press("enter")
        await pilot.pause(0.3)
        await pilot.press("8")
        view = app.screen.query_one(SystemView)
        while view.shown_run is None:
            assert time.monotonic() < deadline
            app.telemetry.wake()
            await pilot.pause(0.1)
        assert any(name.endswith("/memory_gib") for name in view.board.order)
        status = app.screen.query_one("#system-status", Static).content
        assert "system.jsonl" in str(status)


def test_gpu_idle_triggers_on_a_process_that_holds_memory_and_sleeps(tmp_path: Path) -> None:
    from tui.core.follow import Follower, VerdictChanged
    from tui.core.rules import RulesFile

    rules = tmp_path / "rules.toml"
    rules.write_text('[[rule]]\nname = "idle"\nwhen = "gpu_idle"\nvalue = 5\nseconds = 4\n')
    runs = tmp_path / "runs"
    launcher = launch(runs, "sleeper", 512, 60)
    try:
        wait_for(lambda: allocated(runs / "sleeper"), 120)
        loaded = RulesFile(rules)
        loaded.load()
        follower = Follower(runs, loaded, watch="poll", gpu=NvmlProvider(), tick=0.5)
        states: list[str] = []
        try:
            events = follower.start()
            deadline = time.monotonic() + 30
            while "triggered" not in states and time.monotonic() < deadline:
                states += [e.verdict.state for e in events if isinstance(e, VerdictChanged)]
                events = follower.poll()
        finally:
            follower.engine.stop()
        assert "triggered" in states, follower.verdicts
        reason = follower.verdicts["sleeper"][0].reason or ""
        assert "GPU utilisation" in reason and ("MiB" in reason or "GiB" in reason)
    finally:
        launcher.terminate()
        launcher.wait(30)
