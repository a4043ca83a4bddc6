"""Process-tree memory with every history loaded: the app, its backfill workers, helpers.

Generates ROOT once (20 runs x 50,000 steps x 2 metrics by default, as ``tracktui run``
writes them: run.json, and metrics.jsonl lines with step, ISO ``_time``, loss, accuracy),
then, in a fresh process per repetition, starts the app headless, waits until every history
is in the store and the reader has settled, and reports:

- the resident memory of the whole process tree (the app and every child still alive:
  backfill workers, multiprocessing's resource tracker), and of the app alone;
- the tree's high-water mark while the backfill ran (sampled every 20 ms);
- the children left alive, by command line;
- the store's bytes per point and the tree's resident bytes per point.

Medians of the repetitions; the load average is printed (the machine is shared).

    python benchmarks/memory.py [--runs 20] [--steps 50000] [--repeat 3]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import psutil

BASE_TIME = 1_790_000_000
"""Wall time of every run's step 0; step ``s`` is one second later per step."""


def point(run: int, step: int) -> tuple[float, float]:
    """``(loss, accuracy)`` of a run at a step, as written (six significant digits)."""
    rate = 10 ** (-3 - (run % 7) / 7)
    loss = float(f"{2.3 / (1 + step * rate) + 0.01 * ((step * 7919 + run) % 101) / 101:.6g}")
    return loss, float(f"{1 - loss / 3:.6g}")


def generate(root: Path, runs: int, steps: int) -> None:
    """Finished runs in tracktui's format: run.json plus step, _time, loss, accuracy."""
    root.mkdir(parents=True, exist_ok=True)
    base = BASE_TIME
    for r in range(runs):
        run = root / f"run-{r:04d}"
        run.mkdir(exist_ok=True)
        meta = {
            "name": f"run-{r:04d}",
            "status": "finished",
            "exit_code": 0,
            "config": {"lr": 10 ** (-1 - 3 * (r % 97) / 97), "seed": r},
        }
        (run / "run.json").write_text(json.dumps(meta))
        rows = []
        for s in range(steps):
            stamp = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(base + s))
            loss, accuracy = point(r, s)
            rows.append(
                f'{{"step": {s}, "_time": "{stamp}.000000Z", "loss": {loss!r}, '
                f'"accuracy": {accuracy!r}}}\n'
            )
        (run / "metrics.jsonl").write_text("".join(rows))


def dataset(runs: int, steps: int) -> Path:
    """The generated ROOT for these sizes, cached in the temporary directory."""
    root = Path(tempfile.gettempdir()) / f"tracktui-bench-native-{runs}x{steps}"
    if not (root / ".complete").exists():
        print(f"generating {runs} runs x {steps} steps in {root} ...", file=sys.stderr)
        generate(root, runs, steps)
        (root / ".complete").write_text("ok")
    return root


def tree_rss(process: psutil.Process) -> tuple[int, int, list[str]]:
    """RSS of ``process`` and its descendants, of ``process`` alone, and the children."""
    total = own = process.memory_info().rss
    children = []
    for child in process.children(recursive=True):
        try:
            total += child.memory_info().rss
            children.append(" ".join(child.cmdline())[:90])
        except psutil.Error:
            continue
    return total, own, children


async def measure(root: Path) -> dict[str, object]:
    """In the child: the app until every history is loaded, then the tree's memory."""
    from tui.app.app import TrackApp

    me = psutil.Process()
    peak = [0]
    stop = threading.Event()

    def sample() -> None:
        while not stop.wait(0.02):
            peak[0] = max(peak[0], tree_rss(me)[0])

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    app = TrackApp(root, watch="native")
    started = time.perf_counter()
    async with app.run_test(size=(160, 50)) as pilot:
        while app.progress is not None or not app.store.runs or any(r.partial for r in app.store):
            if time.perf_counter() - started > 300:
                raise TimeoutError("the backfill did not finish")
            await asyncio.sleep(0.05)
        loaded = time.perf_counter() - started
        await pilot.pause(3.0)  # workers wind down; the reader goes back to following
        stop.set()
        sampler.join()
        total, own, children = tree_rss(me)
        points = sum(s.count for r in app.store for s in r.series.values())
        store = sum(r.nbytes() for r in app.store)
    return {
        "loaded_s": loaded,
        "tree": total,
        "app": own,
        "peak": max(peak[0], total),
        "children": children,
        "points": points,
        "store": store,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=20)
    parser.add_argument("--steps", type=int, default=50_000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--child", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child is not None:
        print(json.dumps(asyncio.run(measure(args.child))))
        return
    root = dataset(args.runs, args.steps)
    results, loads = [], [os.getloadavg()[0]]
    for _ in range(args.repeat):
        out = subprocess.run(
            [sys.executable, __file__, "--child", str(root)],
            capture_output=True,
            text=True,
            check=True,
        )
        results.append(json.loads(out.stdout.strip().splitlines()[-1]))
        loads.append(os.getloadavg()[0])

    def median(key: str) -> float:
        return statistics.median(float(r[key]) for r in results)

    mib = 1024 * 1024
    points = int(median("points"))
    print(
        f"memory benchmark: {args.runs} runs x {args.steps:,} steps x 2 metrics "
        f"({points:,} points), median of {args.repeat}; load {min(loads):.2f}-{max(loads):.2f}"
    )
    print(f"  every history loaded in       : {median('loaded_s'):.2f} s")
    print(f"  process tree RSS, all loaded  : {median('tree') / mib:.0f} MiB")
    print(f"  the app process alone         : {median('app') / mib:.0f} MiB")
    print(f"  tree high-water mark          : {median('peak') / mib:.0f} MiB")
    print(f"  store bytes per point         : {median('store') / points:.1f}")
    print(f"  tree RSS bytes per point      : {median('tree') / points:.1f}")
    children = results[-1]["children"]
    print(f"  children alive afterwards     : {len(children)}")  # type: ignore[arg-type]
    for line in children:  # type: ignore[attr-defined]
        print(f"    {line}")


if __name__ == "__main__":
    main()
