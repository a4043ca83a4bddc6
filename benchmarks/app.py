"""The app's interactive figures, measured in one run on generated data.

1. launch to a painted table of 1,000 runs x 10,000 steps (the process start, imports
   included, to the first frame holding every row), and to the end of the history backfill;
2. an append to a run's file to the updated cell (median and p95 of 30 appends, inotify);
3. re-sorting 1,000 rows after a keypress (median of 20);
4. CPU used in 10 s while nothing changes;
5. drawing a chart of a 1,000,000-point series (the chart benchmark's figure);
6. reopening the same ROOT (a fresh process each time, 3 times) to a painted table whose
   every row holds its exact values, from the summary cache the first session left.

The app runs headless (Textual's test driver) at 160x50. The data set is generated once by
``benchmarks/status.py`` and cached in the temporary directory. The user's state directory
is a fresh temporary one: the first launch finds no summary cache.

    python benchmarks/app.py [--runs 1000] [--lines 10000]
"""

from __future__ import annotations

import gc
import time

STARTED = time.perf_counter()  # before the imports: they are part of the launch
gc.disable()  # as `tracktui ROOT` does (tui.cli.main); the app resumes it once painted

import argparse  # noqa: E402
import os  # noqa: E402
import shutil  # noqa: E402
import tempfile  # noqa: E402
from pathlib import Path  # noqa: E402

from tui.cli import load_numpy  # noqa: E402
from tui.core.prefetch import PREVIEW_BYTES, start  # noqa: E402


def options() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=1000)
    parser.add_argument("--lines", type=int, default=10_000)
    parser.add_argument("--reopen", type=Path, help=argparse.SUPPRESS)  # the child's ROOT
    return parser.parse_args()


def data_root(args: argparse.Namespace) -> Path:
    return Path(tempfile.gettempdir()) / f"tracktui-bench-status-{args.runs}x{args.lines}"


# As `tracktui ROOT` does before the app's imports: the first paint's reading starts in a
# child process (on a ROOT as the launch finds it: a fresh state directory, the live run).
ARGS = options()
if ARGS.reopen is None:
    os.environ["XDG_STATE_HOME"] = tempfile.mkdtemp(prefix="tracktui-bench-state-")
    LIVE = data_root(ARGS) / "zz-live"
    if LIVE.parent.joinpath(".complete").exists():
        shutil.rmtree(LIVE, ignore_errors=True)
        LIVE.mkdir()
        (LIVE / "metrics.jsonl").write_text('{"step": 0, "loss": 1.0}\n')
PREFETCH_ROOT = ARGS.reopen or data_root(ARGS)
PREFETCH = start(PREFETCH_ROOT, PREVIEW_BYTES) if PREFETCH_ROOT.is_dir() else None
load_numpy()
if PREFETCH is not None:
    PREFETCH.listen()

import asyncio  # noqa: E402
import json  # noqa: E402
import resource  # noqa: E402
import statistics  # noqa: E402
import subprocess  # noqa: E402
import sys  # noqa: E402

from tui.app.app import TrackApp  # noqa: E402
from tui.app.widgets.run_table import RunTable  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parent))
import status as status_bench  # noqa: E402


def cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


async def until(pilot, condition, timeout: float = 120.0, step: float = 0.002) -> float:
    """Wait for ``condition`` while the app runs; returns the time it became true."""
    deadline = time.perf_counter() + timeout
    while not condition():
        if time.perf_counter() > deadline:
            raise TimeoutError("benchmark condition not reached")
        await asyncio.sleep(step)
    return time.perf_counter()


async def first_paint(root: Path, runs: int, lines: int) -> tuple[float, int]:
    """Launch to the first frame holding every row; rows whose values are the exact ones
    of the whole history (from the summary cache) at that frame."""
    app = TrackApp(root, watch="native", resume_gc=not gc.isenabled(), prefetch=PREFETCH)
    async with app.run_test(size=(160, 50)) as pilot:
        table = app.screen.query_one(RunTable)
        await until(pilot, lambda: table.row_count >= runs + 1)
        painted: list[float] = []
        app.call_after_refresh(lambda: painted.append(time.perf_counter()))
        await until(pilot, lambda: bool(painted))
        exact = sum(1 for r in app.store if "loss" in r.series and r.series["loss"].count == lines)
        await pilot.pause(0.5)
    return painted[0] - STARTED, exact


async def measure(root: Path, runs: int) -> dict[str, object]:
    live = root / "zz-live"
    app = TrackApp(root, watch="native", resume_gc=not gc.isenabled(), prefetch=PREFETCH)
    figures: dict[str, object] = {}
    async with app.run_test(size=(160, 50)) as pilot:
        table = app.screen.query_one(RunTable)
        await until(pilot, lambda: table.row_count >= runs + 1)
        painted: list[float] = []
        app.call_after_refresh(lambda: painted.append(time.perf_counter()))  # next frame
        await until(pilot, lambda: bool(painted))
        figures["first_paint_s"] = painted[0] - STARTED
        await until(
            pilot, lambda: app.progress is None and not any(r.partial for r in app.store), 300, 0.05
        )
        figures["backfill_s"] = time.perf_counter() - STARTED
        figures["points"] = sum(s.count for r in app.store for s in r.series.values())
        await pilot.pause(1.0)

        windows = []
        for _ in range(3):  # three 10 s windows: the 30 s reconcile lands in one of them
            before = cpu_seconds()
            await asyncio.sleep(10)
            windows.append((cpu_seconds() - before) / 10 * 100)
        figures["idle_cpu_percent"] = statistics.median(windows)
        figures["idle_cpu_percent_max"] = max(windows)

        latencies = []
        for i in range(30):
            step = 1_000_000 + i
            with open(live / "metrics.jsonl", "a") as handle:
                start = time.perf_counter()
                handle.write(json.dumps({"step": step, "loss": 0.5}) + "\n")
            seen = await until(
                pilot, lambda s=str(step): table.get_cell("zz-live", "step").plain == s, 10, 0.001
            )
            await pilot.pause()  # the frame that shows it
            latencies.append((max(seen, time.perf_counter()) - start) * 1000)
            await asyncio.sleep(0.2)
        latencies.sort()
        figures["append_to_cell_ms_median"] = statistics.median(latencies)
        figures["append_to_cell_ms_p95"] = latencies[int(0.95 * (len(latencies) - 1))]

        screen = app.screen
        screen.sort_by("metric:last:loss")
        await pilot.pause()
        sorts, frames, pauses = [], [], []
        for _ in range(20):
            # The work a keypress causes: the action (sort, reorder) and rendering every
            # visible line of the table, synchronously.
            start = time.perf_counter()
            screen.action_reverse()
            for y in range(table.size.height):
                table.render_line(y)
            sorts.append((time.perf_counter() - start) * 1000)
            # The same through Textual's driver: key event to the next frame, which also
            # waits for the 60 fps frame clock; a key bound to nothing is its floor.
            start = time.perf_counter()
            await pilot.press("r")
            frames.append((time.perf_counter() - start) * 1000)
            start = time.perf_counter()
            await pilot.press("f12")  # bound to nothing: the driver's own cost
            pauses.append((time.perf_counter() - start) * 1000)
        figures["resort_ms_median"] = statistics.median(sorts)
        figures["resort_keypress_ms_median"] = statistics.median(frames)
        figures["empty_frame_ms_median"] = statistics.median(pauses)
    return figures


def main() -> None:
    args = ARGS
    if args.reopen is not None:
        print(json.dumps(asyncio.run(first_paint(args.reopen, args.runs, args.lines))))
        return
    root = data_root(args)
    if not (root / ".complete").exists():
        print("generate the data first: python benchmarks/status.py", file=sys.stderr)
        status_bench.generate(root, args.runs, args.lines)
        (root / ".complete").write_text("ok")
        sys.exit("data generated: run the benchmark again (its launch starts with the data)")
    loads = [os.getloadavg()[0]]
    try:
        figures = asyncio.run(measure(root, args.runs))
        reopened = []
        sizes = ["--runs", str(args.runs), "--lines", str(args.lines)]
        for _ in range(3):
            child = subprocess.run(
                [sys.executable, __file__, *sizes, "--reopen", str(root)],
                capture_output=True,
                text=True,
                check=True,
            )
            reopened.append(json.loads(child.stdout.strip().splitlines()[-1]))
    finally:
        shutil.rmtree(root / "zz-live", ignore_errors=True)
        shutil.rmtree(os.environ["XDG_STATE_HOME"], ignore_errors=True)
    print(
        f"app benchmark: {args.runs} runs x {args.lines} steps, headless 160x50, "
        f"load {loads[0]:.2f} at the start, {os.getloadavg()[0]:.2f} at the end"
    )
    print(f"  launch to painted table      : {figures['first_paint_s']:.2f} s   (target < 1.0 s)")
    reopen = statistics.median(t for t, _ in reopened)
    exact = min(n for _, n in reopened)
    print(
        f"  reopen to exact table        : {reopen:.2f} s   median of 3, {exact} of {args.runs} "
        "rows exact in the first frame (summary cache)"
    )
    print(
        f"  launch to full history       : {figures['backfill_s']:.2f} s   ({figures['points']:,} points)"
    )
    print(
        f"  append to updated cell       : median {figures['append_to_cell_ms_median']:.0f} ms, "
        f"p95 {figures['append_to_cell_ms_p95']:.0f} ms   (targets 100 / 250 ms)"
    )
    print(
        f"  re-sort {args.runs} rows + render: median {figures['resort_ms_median']:.1f} ms   (target < 50 ms)"
    )
    print(
        f"    (key press to next frame via the test driver: {figures['resort_keypress_ms_median']:.0f} ms; "
        f"its floor, a key bound to nothing: {figures['empty_frame_ms_median']:.0f} ms)"
    )
    print(
        f"  idle CPU over 10 s           : median {figures['idle_cpu_percent']:.2f} %, "
        f"max {figures['idle_cpu_percent_max']:.2f} % of a core over 3 windows   (target < 1 %)"
    )
    chart = subprocess.run(
        [sys.executable, str(Path(__file__).with_name("chart.py")), "--repeat", "9"],
        capture_output=True,
        text=True,
        check=True,
    )
    line = next(row for row in chart.stdout.splitlines() if "reduce + build" in row)
    print("  1,000,000-point chart        :" + line.split(":", 1)[1])


if __name__ == "__main__":
    main()
