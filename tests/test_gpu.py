"""GPU and machine telemetry: attribution through real process trees, the no-driver path,
``system.jsonl``, the System tab, the GPU columns, panel, filter, rules and kill dialog.

CI has no GPU. The NVML reader sits behind a provider; here a :class:`FixedProvider`
reports pids of real processes started by the test, so everything after the provider (the
ancestry read from /proc, matching against runs, columns, rules, history) runs for real.
The real NVML provider is exercised on its no-driver path, which is what CI has;
``tests/gpu/`` covers a real GPU.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import psutil
import pytest
from conftest import SAMPLES, load, open_run, plain, table_of, wait_for
from fake_engine import fake_app, loaded
from processes import Processes, wait_until
from textual.widgets import Input

from tui.app.app import TrackApp
from tui.app.screens.confirm_kill import ConfirmKill
from tui.app.widgets.gpu_panel import GpuPanel
from tui.app.widgets.process_table import ProcessTable
from tui.app.widgets.system_view import SystemView
from tui.core.follow import Follower, Notice, VerdictChanged
from tui.core.gpu import (
    FixedProvider,
    GpuDevice,
    GpuProcess,
    HostGpu,
    NvmlProvider,
    attribute,
    identities,
    look,
)
from tui.core.gpu import nvml as nvml_module
from tui.core.gpu.attribution import OTHER_NAMESPACE
from tui.core.gpu.history import SystemFile, SystemHistory
from tui.core.gpu.report import host_gpus
from tui.core.gpu.sampler import SYSTEM, SystemRecorder
from tui.core.headless import collect
from tui.core.openfiles import RunProcess
from tui.core.query import QueryError, parse_query
from tui.core.rules import RuleEngine, RulesError, RulesFile, parse_rules
from tui.core.sizes import parse_size
from tui.core.store import Batch, RunStore

GiB = 1 << 30
SIZE = (140, 40)

# A run's process tree: a worker with a grandchild, and an orphan that keeps the session
# (its parent exits, init adopts it). The pids go to a file; every process carries the
# marker (argv[1]) so the fixture cleans them up.
TREE = """
import subprocess, sys, time
marker, out = sys.argv[1], sys.argv[2]
sleeper = "import time; time.sleep(120)"
worker = subprocess.Popen([sys.executable, "-c",
    "import subprocess, sys, time; g = subprocess.Popen([sys.executable, '-c', sys.argv[2], sys.argv[1]]);"
    " print(g.pid, flush=True); time.sleep(120)", marker, sleeper], stdout=subprocess.PIPE)
grandchild = int(worker.stdout.readline())
parent = subprocess.Popen([sys.executable, "-c",
    "import subprocess, sys; o = subprocess.Popen([sys.executable, '-c', sys.argv[2], sys.argv[1]]);"
    " print(o.pid, flush=True)", marker, sleeper], stdout=subprocess.PIPE)
orphan = int(parent.stdout.readline())
parent.wait()
open(out, "w").write(f"{worker.pid} {grandchild} {orphan}")
print("ready", flush=True)
time.sleep(120)
"""
SLEEP = "import time\nprint('ready', flush=True)\ntime.sleep(120)"


def created(pid: int) -> float:
    return psutil.Process(pid).create_time()


def device(index: int, util: float, samples: bool = True, used: int = 8 * GiB) -> GpuDevice:
    return GpuDevice(
        index, "NVIDIA H200", f"GPU-{index}", used, 140 * GiB, util, 50.0, 300.0, 700.0, samples
    )


def store_of(*runs: tuple[str, dict]) -> RunStore:
    """Runs with this run.json, all running (status comes from evidence elsewhere)."""
    store = RunStore()
    for key, meta in runs:
        store.apply(Batch(key, meta=meta))
        store.runs[key].status = "running"
    return store


def meta_of(pid: int, create_time: float | None = None, **more: object) -> dict:
    when = created(pid) if create_time is None else create_time
    return {"pid": pid, "pid_create_time": when, "host": socket.gethostname(), **more}


# Attribution --------------------------------------------------------------------------
def test_gpu_processes_belong_to_the_run_whose_tree_holds_them(
    tmp_path: Path, processes: Processes
) -> None:
    pids = tmp_path / "pids"
    root = processes.python(TREE, str(pids), start_new_session=True)
    worker, grandchild, orphan = map(int, pids.read_text().split())
    other = processes.python(SLEEP, start_new_session=True)
    store = store_of(
        ("a", meta_of(root.pid)),
        ("reused", meta_of(worker, created(worker) - 100.0)),  # its pid now names another
        ("found", {}),
    )
    store.runs["found"].process = RunProcess(
        "found", (), other.pid, created(other.pid), "open file", ()
    )
    gone = 4_000_000  # no such pid here (e.g. a process of another container)
    me = os.getpid()
    reported = (
        GpuProcess(grandchild, 0, 3 * GiB, "compute", 40.0),
        GpuProcess(orphan, 1, 1 * GiB, "compute", None),
        GpuProcess(other.pid, 0, 2 * GiB, "compute", 20.0),
        GpuProcess(me, 1, GiB // 2, "graphics", None),
        GpuProcess(gone, 0, GiB // 4, "compute", 0.0),
    )
    provider = FixedProvider((device(0, 70.0), device(1, 55.0, samples=False)), reported)
    state = attribute(look(provider), identities(store, socket.gethostname()))
    assert state.attributed and state.note is None
    a = state.runs["a"]
    assert a.memory == 4 * GiB and [d.index for d in a.devices] == [0, 1]
    assert {p.pid for p in a.processes} == {grandchild, orphan}  # descendant and session
    assert a.devices[0].utilization == 40.0  # its own SM samples
    assert a.devices[1].utilization is None  # no samples there, and a stranger shares it
    assert a.utilization is None
    assert state.runs["found"].memory == 2 * GiB and state.runs["found"].utilization == 20.0
    assert not state.runs["reused"].on_gpu  # a create time that differs claims nothing
    holders = {h.process.pid: h for h in state.holders}
    own_command = Path("/proc/self/cmdline").read_bytes().rstrip(b"\0").split(b"\0")
    assert holders[me].runs == () and holders[me].ours
    assert os.path.basename(own_command[0].decode()) in holders[me].command  # this process
    assert holders[gone].runs == () and holders[gone].user == "?"
    assert state.apply(store) == ["a", "reused", "found"]
    assert store.runs["a"].gpu == a
    # Alone on GPU 1, the run's figure there is the device's.
    provider.processes = reported[:3]
    again = attribute(look(provider), identities(store))
    assert again.runs["a"].devices[1].utilization == 55.0
    assert again.runs["a"].utilization == pytest.approx(47.5)


def test_another_pid_namespace_says_attribution_is_unavailable(
    tmp_path: Path, processes: Processes
) -> None:
    run = processes.python(SLEEP, start_new_session=True)
    store = store_of(("a", meta_of(run.pid)))
    link = tmp_path / "pid-ns"
    link.symlink_to("pid:[4026532801]")  # what /proc/self/ns/pid reads inside a container
    provider = FixedProvider((device(0, 90.0),), (GpuProcess(run.pid, 0, GiB, "compute", 90.0),))
    host = look(provider, namespace=str(link))
    assert host.note == OTHER_NAMESPACE and not host.owners
    state = attribute(host, identities(store))
    assert not state.attributed and state.note == OTHER_NAMESPACE and not state.runs
    state.apply(store)
    assert store.runs["a"].gpu is None  # unknown, not zero: nothing was guessed
    assert host_gpus(host)["gpu_note"] == OTHER_NAMESPACE
    # A container may see the GPUs and no process at all: still no guess.
    assert look(FixedProvider((device(0, 90.0),)), namespace=str(link)).note == OTHER_NAMESPACE


def test_without_a_driver_nvml_says_so_once_and_is_not_asked_again() -> None:
    loads = []

    def load():
        loads.append(1)
        return nvml_module._load()

    provider = NvmlProvider(load)
    first = provider.read()
    if first.available:
        pytest.skip("an NVIDIA driver is present: tests/gpu/ covers it")
    assert not first.devices and ("driver" in first.note or "NVML" in first.note)
    assert provider.read().note == first.note and len(loads) == 1

    def missing():
        raise ImportError("No module named 'pynvml'")

    assert NvmlProvider(missing).read().note == nvml_module.NO_LIBRARY
    state = attribute(HostGpu(first), [])
    assert state.note == first.note and not state.attributed


# The filter, the rules -------------------------------------------------------------------
def test_sizes_and_the_gpu_filter_keys() -> None:
    assert parse_size("20GB") == parse_size("20 GiB") == 20 * GiB
    assert parse_size("512M") == 512 << 20 and parse_size("20") is None
    query = parse_query("gpu_mem>20GB gpu_util<50")
    run = store_of(("a", {})).runs["a"]
    assert not query.matches(run)  # no GPU reading: the keys are missing
    with pytest.raises(QueryError, match="needs a size with a unit"):
        parse_query("gpu_mem>20")
    with pytest.raises(RulesError, match=r"line 3.*percentage"):
        parse_rules('[[rule]]\nwhen = "gpu_idle"\nvalue = 150\nseconds = 60\n')
    with pytest.raises(RulesError, match="needs seconds"):
        parse_rules('[[rule]]\nwhen = "gpu_idle"\nvalue = 5\n')
    with pytest.raises(RulesError, match="size"):
        parse_rules('[[rule]]\nwhen = "gpu_memory_above"\nvalue = "20"\n')
    rule = parse_rules('[[rule]]\nwhen = "gpu_memory_above"\nvalue = "20GB"\n')[0]
    assert rule.value == 20 * GiB and rule.describe() == "GPU memory above 20.0 GiB -> flag"


def test_gpu_rules_judge_readings_of_real_processes(processes: Processes) -> None:
    busy = processes.python(SLEEP, start_new_session=True)
    idle = processes.python(SLEEP, start_new_session=True)
    store = store_of(("busy", meta_of(busy.pid)), ("idle", meta_of(idle.pid)), ("cpu", {}))
    store.runs["cpu"].status = "finished"
    rules = RuleEngine(
        parse_rules(
            '[[rule]]\nname = "idle"\nwhen = "gpu_idle"\nvalue = 5\nseconds = 60\n'
            '[[rule]]\nname = "big"\nwhen = "gpu_memory_above"\nvalue = "30GB"\nseconds = 10\n'
        )
    )
    assert rules.needs_gpu
    now = [1000.0]
    provider = FixedProvider(
        (device(0, 50.0),),
        (
            GpuProcess(busy.pid, 0, 40 * GiB, "compute", 95.0),
            GpuProcess(idle.pid, 0, 2 * GiB, "compute", 0.0),
        ),
        clock=lambda: now[0],
    )

    def step(seconds: float) -> dict[str, dict[str, str]]:
        now[0] += seconds
        attribute(look(provider), identities(store)).apply(store)
        rules.evaluate(store, None, now[0])
        return {k: {v.rule: v.state for v in rules.verdicts(k)} for k in store.runs}

    assert step(0) == {
        "busy": {"idle": "ok", "big": "ok"},
        "idle": {"idle": "ok", "big": "ok"},
        "cpu": {"idle": "ok", "big": "ok"},  # not running: nothing to judge
    }
    assert step(30)["busy"]["big"] == "triggered"  # held 30 s > 10 s
    assert step(31)["idle"]["idle"] == "triggered"  # 61 s under 5 % while holding memory
    fired = dict(rules.take_new_triggers())
    assert "GPU utilisation 0 %" in fired["idle"].reason and fired["busy"].rule == "big"
    assert rules.verdicts("busy")[0].state == "ok"  # 95 % is not idle


# History --------------------------------------------------------------------------------
def test_system_jsonl_is_written_for_a_tree_and_read_as_a_history(
    tmp_path: Path, processes: Processes
) -> None:
    run = processes.python(SLEEP, start_new_session=True)
    provider = FixedProvider(
        (device(0, 50.0),), (GpuProcess(run.pid, 0, 3 * GiB, "compute", 12.0),)
    )
    recorder = SystemRecorder(tmp_path / SYSTEM, run.pid, created(run.pid), 0.05, lambda: provider)
    recorder.start()
    wait_until(lambda: recorder.samples >= 2)
    recorder.stop()
    line = json.loads((tmp_path / SYSTEM).read_text().splitlines()[0])
    assert line["gpu/0/memory_bytes"] == 3 * GiB and line["gpu/0/utilization"] == 12.0
    assert line["rss_bytes"] > 0 and {"cpu_percent", "read_bytes", "_time"} <= set(line)
    history = SystemHistory("run")
    history.add(SystemFile(tmp_path.parent, tmp_path).read(), "file")
    series = history.run.series
    assert series["gpu/0/memory_gib"].last == 3.0 and series["rss_gib"].count >= 2
    # W&B's own system metrics become the same kind of history.
    wandb = load(SAMPLES / "foreign" / "wandb_offline")
    logged = next(r for r in wandb if any(n.startswith("system/") for n in r.series))
    copied = SystemHistory(logged.key)
    copied.copy_from(logged)
    names = {n for n in logged.series if n.startswith("system/")}
    assert set(copied.run.series) == names
    assert copied.copy_from(logged) is None  # nothing new


def test_status_json_names_the_gpu_use_of_runs_and_gpus(
    tmp_path: Path, processes: Processes
) -> None:
    run = processes.python(SLEEP, start_new_session=True)
    (tmp_path / "r").mkdir()
    (tmp_path / "r" / "run.json").write_text(json.dumps(meta_of(run.pid, name="r")))
    provider = FixedProvider(
        (device(0, 80.0),),
        (GpuProcess(run.pid, 0, 5 * GiB, "compute", 80.0), GpuProcess(os.getpid(), 0, GiB)),
    )
    host = look(provider)
    summaries = collect(tmp_path, gpu=host)
    assert summaries[0]["gpu"] == {
        "memory_bytes": 5 * GiB,
        "utilization": 80.0,
        "devices": [{"index": 0, "memory_bytes": 5 * GiB, "utilization": 80.0}],
        "pids": [run.pid],
    }
    gpus = host_gpus(host, summaries)
    assert "gpu_note" not in gpus
    held = {p["pid"]: p["runs"] for p in gpus["gpus"][0]["processes"]}
    assert held == {run.pid: ["r"], os.getpid(): []}


# The app --------------------------------------------------------------------------------
def write_runs(processes: Processes, tmp_path: Path) -> dict[str, subprocess.Popen[bytes]]:
    """Three runs whose recorded pids are real sleeping processes."""
    started = {}
    for name, lr in (("resnet", 0.1), ("vit", 0.01), ("bert", 0.001)):
        proc = processes.python(SLEEP, start_new_session=True)
        run_dir = tmp_path / name
        run_dir.mkdir()
        meta = meta_of(proc.pid, name=name, user=psutil.Process().username(), config={"lr": lr})
        (run_dir / "run.json").write_text(json.dumps(meta))
        (run_dir / "metrics.jsonl").write_text(json.dumps({"step": 1, "loss": lr}) + "\n")
        started[name] = proc
    return started


async def search(pilot, query: str) -> None:
    """Type a filter as a user does: /, the query, enter."""
    await pilot.press("slash")
    pilot.app.screen.query_one("#filter", Input).value = query
    await pilot.press("enter")
    await pilot.pause()


async def poll(pilot) -> None:
    """Read what the telemetry wants, here and now, and let the app apply it."""
    app = pilot.app
    message = app.telemetry.poll()
    assert message is not None
    app.post_message(message)
    await pilot.pause()


async def test_gpu_columns_sort_filter_panel_rules_and_kill_dialog(
    tmp_path: Path, processes: Processes
) -> None:
    started = write_runs(processes, tmp_path)
    (tmp_path / "tracktui.toml").write_text(
        '[[rule]]\nname = "idle"\nwhen = "gpu_idle"\nvalue = 5\nseconds = 60\n'
        '[[rule]]\nname = "big"\nwhen = "gpu_memory_above"\nvalue = "30GB"\n'
    )
    now = [1000.0]
    provider = FixedProvider(
        (device(0, 91.0), device(1, 4.0)),
        (
            GpuProcess(started["resnet"].pid, 0, 40 * GiB, "compute", 90.0),
            GpuProcess(started["vit"].pid, 1, 20 * GiB, "compute", 3.0),
            GpuProcess(os.getpid(), 1, GiB, "compute", 0.0),
        ),
        clock=lambda: now[0],
        driver="550.54.15",
    )
    app = fake_app(tmp_path, gpu=provider, clock=lambda: now[0])
    async with app.run_test(size=SIZE) as pilot:
        await loaded(pilot, runs=3)
        await poll(pilot)
        table = table_of(app)
        await wait_for(pilot, lambda: any(c.key == "gpu_mem" for c in table.columns_spec))
        assert table.get_cell("resnet", "gpu_mem").plain == "40G"
        assert table.get_cell("resnet", "gpu_util").plain == "90%"
        assert table.get_cell("vit", "gpu_util").plain == "3%"
        assert table.get_cell("bert", "gpu_mem").plain == "–"  # alive, on no GPU
        app.screen.sort_by("gpu_mem", descending=True)
        await wait_for(pilot, lambda: table.shown == ["resnet", "vit", "bert"])
        await search(pilot, "gpu_mem>10GB gpu_util<50")
        await wait_for(pilot, lambda: table.shown == ["vit"])
        await search(pilot, "")
        await wait_for(pilot, lambda: len(table.shown) == 3)
        # The host panel: one line per GPU, who holds it.
        await pilot.press("p")
        panel = app.screen.query_one(GpuPanel)
        text = plain(app.screen, "#gpu-panel")
        assert panel.display and "driver 550.54.15" in text
        lines = text.splitlines()
        assert lines[1].startswith("0 NVIDIA H200") and "resnet 40G" in lines[1]
        assert "vit 20G" in lines[2] and f":{os.getpid()} 1.0G" in lines[2]
        # Rules on the readings: memory at once, idleness once it has lasted.
        verdicts = {k: {v.rule: v.state for v in app.verdicts[k]} for k in app.store.runs}
        assert verdicts["resnet"] == {"idle": "ok", "big": "triggered"}
        assert verdicts["vit"]["idle"] == "ok"
        now[0] += 61
        await poll(pilot)
        assert {v.rule: v.state for v in app.verdicts["vit"]} == {"idle": "triggered", "big": "ok"}
        await search(pilot, "rule:idle")
        await wait_for(pilot, lambda: table.shown == ["vit"])
        # The kill dialog says what the kill frees.
        await pilot.press("T")
        await wait_for(pilot, lambda: isinstance(app.screen, ConfirmKill))
        dialog = " ".join(str(w.render()) for w in app.screen.query("Static"))
        assert "frees 20.0 GiB of GPU memory (GPU 1: 20.0 GiB)" in dialog
        await pilot.press("n")
        await wait_for(pilot, lambda: not isinstance(app.screen, ConfirmKill))
    assert started["vit"].poll() is None  # declined: nothing was signalled


async def test_system_tab_charts_samples_and_system_jsonl(
    tmp_path: Path, processes: Processes
) -> None:
    started = write_runs(processes, tmp_path)
    # A run tracktui run launched and that has ended: its history is its system.jsonl.
    subprocess.run(
        [
            sys.executable,
            "-m",
            "tui",
            "run",
            "--root",
            str(tmp_path),
            "--name",
            "launched",
            "--system-interval",
            "0.05",
            "--",
            sys.executable,
            "-c",
            "import time; time.sleep(0.4)",
        ],
        check=True,
        timeout=60,
        capture_output=True,
    )
    written = (tmp_path / "launched" / SYSTEM).read_text().splitlines()
    assert written and not any("gpu/" in line for line in written)  # no driver here
    provider = FixedProvider(
        (device(0, 60.0),), (GpuProcess(started["vit"].pid, 0, 6 * GiB, "compute", 60.0),)
    )
    app = TrackApp(tmp_path, watch="poll", gpu=provider)
    async with app.run_test(size=SIZE) as pilot:
        await wait_for(pilot, lambda: len(app.store.runs) == 4 and app.telemetry.polls)
        await wait_for(pilot, lambda: app.store.runs["launched"].status == "finished")
        screen = await open_run(pilot, "launched")
        await pilot.press("8")
        view = screen.query_one(SystemView)
        await wait_for(pilot, lambda: view.shown_run is not None)
        assert app.telemetry.histories["launched"].sources == {"file"}
        assert "rss_gib" in view.board.order and view.board.charts
        assert "from the run's system.jsonl" in plain(screen, "#system-status")
        await pilot.press("escape")
        # A run it did not launch: sampled while its view is open, GPU per device included.
        screen = await open_run(pilot, "vit")
        await pilot.press("8")
        view = screen.query_one(SystemView)

        def samples() -> int:
            history = app.telemetry.histories.get("vit")
            return 0 if history is None or history.run is None else len(history.run.steps)

        def sampled_twice() -> bool:
            app.telemetry.wake()  # read again now rather than in 2 s
            return samples() >= 2

        await wait_for(pilot, sampled_twice)
        await wait_for(pilot, lambda: "gpu/0/memory_gib" in view.board.order)
        assert app.telemetry.histories["vit"].run.series["gpu/0/memory_gib"].last == 6.0
        assert "sampled by tracktui while the run is open" in plain(screen, "#system-status")
        await pilot.press("7")
        table = screen.query_one(ProcessTable).table
        await wait_for(pilot, lambda: table.row_count == 1)
        assert table.get_row_at(0)[5].plain == "6.0 GiB (GPU 0)"


async def test_without_a_driver_the_app_says_so_and_shows_no_gpu_columns(
    tmp_path: Path, processes: Processes
) -> None:
    started = write_runs(processes, tmp_path)
    app = TrackApp(tmp_path, watch="poll")  # the real NVML provider: no driver in CI
    async with app.run_test(size=SIZE) as pilot:
        await wait_for(pilot, lambda: len(app.store.runs) == 3 and app.telemetry.state)
        if app.telemetry.state.reading.available:
            pytest.skip("an NVIDIA driver is present: tests/gpu/ covers it")
        note = app.telemetry.note
        await wait_for(pilot, lambda: f"GPU: {note}" in plain(app.screen, "#topbar"))
        assert not any(c.key.startswith("gpu") for c in table_of(app).columns_spec)
        assert all(run.gpu is None for run in app.store)
        await pilot.press("p")
        assert plain(app.screen, "#gpu-panel") == f"GPUs: none. {note}"
        assert started["vit"].poll() is None


def test_watch_judges_gpu_rules_and_says_when_it_cannot(
    tmp_path: Path, processes: Processes
) -> None:
    started = write_runs(processes, tmp_path)
    rules = tmp_path / "rules.toml"
    rules.write_text('[[rule]]\nname = "big"\nwhen = "gpu_memory_above"\nvalue = "30GB"\n')
    provider = FixedProvider(
        (device(0, 90.0),), (GpuProcess(started["resnet"].pid, 0, 40 * GiB, "compute", 90.0),)
    )
    for gpu, expected in ((provider, "triggered"), (None, "waiting")):
        loaded = RulesFile(rules)
        loaded.load()
        follower = Follower(tmp_path, loaded, watch="poll", gpu=gpu)
        try:
            events = follower.start()
        finally:
            follower.engine.stop()
        states = {e.run.key: e.verdict.state for e in events if isinstance(e, VerdictChanged)}
        notices = [e.message for e in events if isinstance(e, Notice)]
        if gpu is None and not notices:
            pytest.skip("an NVIDIA driver is present: tests/gpu/ covers it")
        assert states.get("resnet", "waiting") == expected
        assert states.get("vit", "waiting") != "triggered"
        assert bool(notices) == (gpu is None)  # no driver: said once, as a notice
