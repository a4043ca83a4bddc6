"""Cost of finding runs' writers by open descriptor, with 2,000 processes and 1,000 runs.

Starts ``--processes`` ``sleep`` processes of the current user, each holding a few
descriptors like a real program does (a pipe, a socket, ``/dev/null``, a library file),
some holding a run file read-only (as ``tail -f`` would), and some writing run files
through their stdout/stderr: one writer for most written runs, two unrelated writers for
a few. Then times :meth:`WriterScanner.scan` (median of ``--repeat``), its CPU share when
repeated every ``--interval`` seconds, and ``lsof`` answering the same question for the
same files, side by side. Targets: under 50 ms per scan, under 0.5 % of a core.

Every process it starts is killed at the end, on Ctrl-C and on SIGTERM too; each one
also sleeps for at most 15 minutes, so none can outlive a ``kill -9`` of the benchmark
for long.

    python benchmarks/discover_procs.py [--processes 2000] [--runs 1000] [--repeat 9]
"""

from __future__ import annotations

import argparse
import os
import resource
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from types import FrameType

from tui.core.openfiles import WriterScanner, index_files

FILES = ("run.json", "metrics.jsonl", "train.log")
SLEEP_SECONDS = "900"


def make_runs(root: Path, runs: int) -> dict[str, list[Path]]:
    """``runs`` run directories, each with the three files a run usually has."""
    found: dict[str, list[Path]] = {}
    for r in range(runs):
        run = root / f"sweep/run-{r:04d}"
        run.mkdir(parents=True)
        paths = [run / name for name in FILES]
        for path in paths:
            path.write_text("{}\n")
        found[f"run-{r:04d}"] = paths
    return found


def spawn(
    count: int,
    runs: dict[str, list[Path]],
    shared: list[int],
    started: list[subprocess.Popen[bytes]],
) -> tuple[set[str], set[str]]:
    """Start ``count`` sleepers; return the runs given one writer and those given two."""
    names = sorted(runs)
    single = set(names[: len(names) // 10])  # 10 % of runs have a live writer
    double = set(names[len(names) // 10 : len(names) // 10 + 10])  # and 10 runs have two
    writes = [runs[n][2] for n in sorted(single)] + [runs[n][1] for n in sorted(double)] * 2
    for i in range(count):
        stdout: int | object = subprocess.DEVNULL
        held: list[int] = []
        if i < len(writes):
            stdout = os.open(writes[i], os.O_WRONLY | os.O_APPEND)
        elif i % 10 == 0:  # a reader of some run's log, like `tail -f`
            held.append(os.open(runs[names[i % len(names)]][2], os.O_RDONLY))
        try:
            started.append(
                subprocess.Popen(
                    ["sleep", SLEEP_SECONDS],
                    stdin=subprocess.DEVNULL,
                    stdout=stdout,
                    stderr=subprocess.DEVNULL,
                    pass_fds=(*shared, *held),
                )
            )
        finally:
            for fd in held + ([stdout] if isinstance(stdout, int) and stdout >= 0 else []):
                os.close(fd)
    return single, double


def lsof_writers(lsof: str, paths: list[Path]) -> tuple[float, float, set[str]]:
    """Wall and CPU seconds ``lsof`` takes to list who holds ``paths``; the files written."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.perf_counter()
    done = subprocess.run(
        [lsof, "-w", "-n", "-P", "-F", "pan", "--", *map(str, paths)],
        capture_output=True,
        check=False,
    )
    seconds = time.perf_counter() - started
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = after.ru_utime + after.ru_stime - before.ru_utime - before.ru_stime
    written: set[str] = set()
    access = ""
    for line in done.stdout.decode("utf-8", "replace").splitlines():
        if line.startswith("a"):
            access = line[1:]
        elif line.startswith("n") and access in ("w", "u"):
            written.add(line[1:])
    return seconds, cpu, written


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--processes", type=int, default=2000)
    parser.add_argument("--runs", type=int, default=1000)
    parser.add_argument("--repeat", type=int, default=9)
    parser.add_argument("--interval", type=float, default=5.0, help="seconds between scans")
    args = parser.parse_args()

    def stop(signum: int, frame: FrameType | None) -> None:
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, stop)
    root = Path(tempfile.mkdtemp(prefix="tracktui-bench-procs-"))
    started: list[subprocess.Popen[bytes]] = []
    left, right = socket.socketpair()
    read_end, write_end = os.pipe()
    library = os.open(sys.executable, os.O_RDONLY)
    shared = [left.fileno(), read_end, write_end, library]
    try:
        runs = make_runs(root, args.runs)
        print(f"starting {args.processes} processes …", flush=True)
        t0 = time.perf_counter()
        single, double = spawn(args.processes, runs, shared, started)
        print(f"  started in {time.perf_counter() - t0:.1f} s", flush=True)
        report(args, runs, single, double)
    except KeyboardInterrupt:
        print("\ninterrupted: cleaning up", flush=True)
    finally:
        for popen in started:
            if popen.poll() is None:
                popen.kill()
        for popen in started:
            popen.wait()
        for fd in (read_end, write_end, library):
            os.close(fd)
        left.close()
        right.close()
        shutil.rmtree(root, ignore_errors=True)
        print(f"cleaned up {len(started)} processes and {root}")


def report(
    args: argparse.Namespace, runs: dict[str, list[Path]], single: set[str], double: set[str]
) -> None:
    scanner = WriterScanner()
    t0 = time.perf_counter()
    index = index_files(runs)
    index_ms = (time.perf_counter() - t0) * 1000
    scanner.scan(index)  # warm caches (dentries, our own code) once, as a timer would
    walls, cpus = [], []
    for _ in range(args.repeat):
        result = scanner.scan(index)
        cpus.append(result.cpu_seconds)
        walls.append(result.seconds)
    wall_ms, cpu_ms = statistics.median(walls) * 1000, statistics.median(cpus) * 1000
    floor_ms = statistics.median(bare_listing() for _ in range(args.repeat)) * 1000
    chosen = {k for k, found in result.runs.items() if not found.ambiguous}
    ambiguous = {k for k, found in result.runs.items() if found.ambiguous}
    assert chosen == single and ambiguous == double, "the scan missed or misread writers"

    lsof = shutil.which("lsof")
    paths = [p for group in runs.values() for p in group]
    lsof_s: float | None = None
    lsof_cpu: float | None = None
    if lsof is not None:
        timings = [lsof_writers(lsof, paths) for _ in range(3)]
        lsof_s = statistics.median(t[0] for t in timings)
        lsof_cpu = statistics.median(t[1] for t in timings)
        written = timings[-1][2]
        lsof_runs = {p.split("/")[-2] for p in written}
        agree = "yes" if lsof_runs == single | double else f"no ({len(lsof_runs)} runs)"
    else:
        agree = "-"
        print("lsof is not installed: its column is left empty (apt-get install lsof)")

    def share(seconds: float | None) -> str:
        return "-" if seconds is None else f"{seconds / args.interval * 100:.3f} %"

    rows = [
        ("processes of the user (looked at)", f"{result.processes:,}", ""),
        ("descriptors read", f"{result.descriptors:,}", ""),
        ("runs / files indexed", f"{len(runs):,} / {len(index):,}", ""),
        ("index the files (ms)", f"{index_ms:.1f}", ""),
        (f"one scan, median of {args.repeat} (ms)", f"{wall_ms:.1f}", _ms(lsof_s)),
        ("CPU per scan (ms)", f"{cpu_ms:.1f}", _ms(lsof_cpu)),
        ("  of which listing + readlink alone (ms)", f"{floor_ms:.1f}", ""),
        (f"CPU share, a scan every {args.interval:g} s", share(cpu_ms / 1000), share(lsof_cpu)),
        ("scans paced under 0.5 %: every (s)", f"{result.pause():.1f}", ""),
        ("runs with one process found", f"{len(chosen)}", ""),
        ("runs with two unrelated writers", f"{len(ambiguous)}", ""),
        ("lsof sees the same written runs", "", agree),
    ]
    width = max(len(r[0]) for r in rows)
    print(f"\n{'':<{width}}  {'tracktui':>12}  {'lsof':>12}")
    for label, ours, theirs in rows:
        print(f"{label:<{width}}  {ours:>12}  {theirs:>12}")
    share_5s = cpu_ms / 1000 / args.interval * 100
    print(
        f"\ntargets: under 50 ms per scan ({'met' if wall_ms < 50 else 'NOT met'}: "
        f"{wall_ms:.0f} ms); under 0.5 % of a core "
        f"({'met' if share_5s < 0.5 else 'NOT met'} every {args.interval:g} s: {share_5s:.2f} %; "
        f"met when paced by WriterScan.pause(): every {result.pause():.0f} s)"
    )


def bare_listing() -> float:
    """Seconds to list every process's descriptors and read their links, doing nothing else:
    the procfs work any scan by open descriptor pays."""
    started = time.perf_counter()
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            base = f"/proc/{entry}/fd/"
            try:
                for fd in os.listdir(base):
                    os.readlink(base + fd)
            except OSError:
                continue
    return time.perf_counter() - started


def _ms(seconds: float | None) -> str:
    return "-" if seconds is None else f"{seconds * 1000:.0f}"


if __name__ == "__main__":
    main()
