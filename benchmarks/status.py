"""``tracktui status --json`` over 1,000 generated runs x 10,000 lines: wall time, peak memory.

Generates the runs once (cached in a temporary directory keyed by the sizes), then runs the
real command in a subprocess several times and prints the median wall time and the peak
resident memory of the command and its worker processes. Target: under 10 s on 2 cores.

    python benchmarks/status.py [--runs 1000] [--lines 10000] [--repeat 3]
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path


def generate(root: Path, runs: int, lines: int) -> None:
    """Runs like ``tracktui run`` writes them: run.json plus metrics with ``_time``."""
    root.mkdir(parents=True, exist_ok=True)
    base = 1_790_000_000.0
    for r in range(runs):
        run = root / f"sweep/run-{r:04d}"
        run.mkdir(parents=True, exist_ok=True)
        lr = 10 ** (-1 - 3 * (r % 97) / 97)
        meta = {
            "name": f"run-{r:04d}",
            "status": "finished",
            "exit_code": 0,
            "config": {"lr": lr, "batch_size": 32 << (r % 4), "seed": r},
        }
        (run / "run.json").write_text(json.dumps(meta))
        scale = 1 + (r % 13) / 10
        rows = []
        for s in range(lines):
            t = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(base + s * 2))
            loss = scale * 2.3 / (1 + s * lr) + 0.01 * ((s * 7919 + r) % 101) / 101
            rows.append(
                f'{{"step": {s}, "_time": "{t}.000Z", "loss": {loss:.6g}, '
                f'"accuracy": {1 - loss / 3:.6g}, "lr": {lr * 0.999 ** (s // 100):.6g}}}\n'
            )
        (run / "metrics.jsonl").write_text("".join(rows))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=1000)
    parser.add_argument("--lines", type=int, default=10_000)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    root = Path(tempfile.gettempdir()) / f"tracktui-bench-status-{args.runs}x{args.lines}"
    marker = root / ".complete"
    if not marker.exists():
        print(f"generating {args.runs} runs x {args.lines} lines in {root} …", flush=True)
        started = time.perf_counter()
        generate(root, args.runs, args.lines)
        marker.write_text("ok")
        print(f"  generated in {time.perf_counter() - started:.0f} s", flush=True)
    size = sum(f.stat().st_size for f in root.rglob("metrics.jsonl"))
    times = []
    for _ in range(args.repeat):
        before = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
        started = time.perf_counter()
        out = subprocess.run(
            [sys.executable, "-m", "tui", "status", str(root), "--json"],
            capture_output=True,
            check=True,
            env={**os.environ, "PYTHONHASHSEED": "0"},
        )
        times.append(time.perf_counter() - started)
        peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    document = json.loads(out.stdout)
    points = sum(m["count"] for run in document["runs"] for m in run["metrics"].values())
    print(f"{len(document['runs'])} runs, {size / 1e9:.2f} GB of JSONL, {points:,} points read")
    print(
        f"wall time, median of {args.repeat}: {statistics.median(times):.2f} s  (runs: "
        + ", ".join(f"{t:.2f}" for t in times)
        + ")  target < 10 s"
    )
    print(f"peak RSS of the largest process: {max(peak, before) / 1024:.0f} MiB")


if __name__ == "__main__":
    main()
