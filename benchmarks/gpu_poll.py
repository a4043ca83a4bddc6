"""Cost of one GPU poll plus attribution to runs, with 1,000 runs.

One poll is what the app's telemetry thread and ``tracktui watch`` do every 2 s while
something wants GPU figures: read the GPUs (:func:`tui.core.gpu.look`: the provider, then
the ancestry of every GPU process from /proc), then on the store's thread match those
ancestries against every alive run's identity (:func:`identities`, :func:`attribute`) and
give each run its GPU use (:meth:`GpuState.apply`). Target: under 20 ms per poll.

Here the provider is a :class:`FixedProvider` reporting ``--gpus`` devices with
``--per-gpu`` processes each; every one is the grandchild of a real run process started
by the benchmark (run -> worker -> GPU process), so /proc is read for real. The other runs
record pids of processes that do not exist (their identities must still be indexed). With
``--nvml`` the real NVML provider is timed too (on a box with a driver; without one it
shows what the no-driver path costs: one failed library load, then nothing).

Every process it starts is killed at the end, on Ctrl-C and on SIGTERM too.

    python benchmarks/gpu_poll.py [--runs 1000] [--gpus 8] [--per-gpu 2] [--repeat 200] [--nvml]
"""

from __future__ import annotations

import argparse
import signal
import socket
import statistics
import subprocess
import sys
import time
from types import FrameType

import psutil

from tui.core.gpu import (
    FixedProvider,
    GpuDevice,
    GpuProcess,
    NvmlProvider,
    attribute,
    identities,
    look,
)
from tui.core.store import Batch, RunStore

GiB = 1 << 30
TREE = (
    "import subprocess, sys, time\n"
    "w = subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(900)'])\n"
    "print(w.pid, flush=True)\n"
    "time.sleep(900)\n"
)


def start_trees(count: int, started: list[subprocess.Popen[bytes]]) -> list[tuple[int, int]]:
    """``count`` run processes, each with a child: ``(run pid, GPU process pid)``."""
    trees = []
    for _ in range(count):
        proc = subprocess.Popen(
            [sys.executable, "-c", TREE], stdout=subprocess.PIPE, start_new_session=True
        )
        started.append(proc)
        assert proc.stdout is not None
        trees.append((proc.pid, int(proc.stdout.readline())))
    return trees


def make_store(runs: int, trees: list[tuple[int, int]]) -> RunStore:
    """``runs`` running runs: the first ones backed by the trees, the rest by dead pids."""
    store = RunStore()
    host = socket.gethostname()
    for i in range(runs):
        if i < len(trees):
            pid = trees[i][0]
            created = psutil.Process(pid).create_time()
        else:
            pid, created = 4_000_000 + i, 1.7e9 + i  # no such process
        meta = {"name": f"run-{i:04d}", "pid": pid, "pid_create_time": created, "host": host}
        store.apply(Batch(f"sweep/run-{i:04d}", meta=meta))
        store.runs[f"sweep/run-{i:04d}"].status = "running"
    return store


def timed(repeat: int, step: object) -> list[float]:
    assert callable(step)
    out = []
    for _ in range(repeat):
        start = time.perf_counter()
        step()
        out.append((time.perf_counter() - start) * 1000)
    return out


def show(label: str, samples: list[float]) -> None:
    samples = sorted(samples)
    p95 = samples[int(len(samples) * 0.95) - 1]
    print(f"{label:<44} median {statistics.median(samples):7.3f} ms   p95 {p95:7.3f} ms")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--runs", type=int, default=1000)
    parser.add_argument("--gpus", type=int, default=8)
    parser.add_argument("--per-gpu", type=int, default=2)
    parser.add_argument("--repeat", type=int, default=200)
    parser.add_argument("--nvml", action="store_true", help="time the real NVML provider too")
    args = parser.parse_args()

    started: list[subprocess.Popen[bytes]] = []

    def stop(signum: int, _frame: FrameType | None) -> None:
        raise SystemExit(128 + signum)

    signal.signal(signal.SIGTERM, stop)
    try:
        trees = start_trees(args.gpus * args.per_gpu, started)
        store = make_store(args.runs, trees)
        devices = tuple(
            GpuDevice(
                i, "NVIDIA H200", f"GPU-{i}", 60 * GiB, 140 * GiB, 80.0, 60.0, 500.0, 700.0, True
            )
            for i in range(args.gpus)
        )
        processes = tuple(
            GpuProcess(gpu_pid, n % args.gpus, 20 * GiB, "compute", 40.0)
            for n, (_, gpu_pid) in enumerate(trees)
        )
        provider = FixedProvider(devices, processes)
        here = socket.gethostname()
        print(
            f"{args.runs} runs ({len(trees)} alive process trees), {args.gpus} GPUs, "
            f"{len(processes)} GPU processes, {args.repeat} polls"
        )
        state = attribute(look(provider), identities(store, here))
        attributed = sum(1 for use in state.runs.values() if use.on_gpu)
        assert attributed == len(trees), f"only {attributed} of {len(trees)} runs attributed"

        def poll() -> None:
            attribute(look(provider), identities(store, here)).apply(store)

        host = look(provider)
        show("look (provider + /proc ancestry), thread", timed(args.repeat, lambda: look(provider)))
        show(
            "identities + attribute + apply, store thread",
            timed(args.repeat, lambda: attribute(host, identities(store, here)).apply(store)),
        )
        whole = timed(args.repeat, poll)
        show("one poll, all of it", whole)
        verdict = "meets" if statistics.median(whole) < 20 else "MISSES"
        print(f"target: under 20 ms per poll -> {verdict} it")
        if args.nvml:
            nvml = NvmlProvider()
            start = time.perf_counter()
            first = nvml.read()
            print(
                f"NVML first read (loads the library): {(time.perf_counter() - start) * 1000:.1f} ms"
            )
            if first.available:
                print(f"NVML: {len(first.devices)} GPUs, {len(first.processes)} processes")
                show("NVML read", timed(args.repeat, nvml.read))
                show(
                    "NVML poll + attribution",
                    timed(
                        args.repeat,
                        lambda: attribute(look(nvml), identities(store, here)).apply(store),
                    ),
                )
            else:
                print(f"NVML: {first.note}")
                show("NVML read after that (no driver)", timed(args.repeat, nvml.read))
    finally:
        for proc in started:
            for child in (
                psutil.Process(proc.pid).children(recursive=True) if proc.poll() is None else ()
            ):
                child.kill()
            proc.kill()
            proc.wait()


if __name__ == "__main__":
    main()
