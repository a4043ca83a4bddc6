"""Ingest throughput against the practical limit, and memory per stored point.

Prints, for the same file: the per-line ``orjson.loads`` loop over lines already split in
memory (the practical limit of a Python JSONL reader), our full ingest from the file on disk
into the store (tail, parse, group, columnar append, summaries), their ratio, and bytes of
store memory per (step, value) point. Medians of several repetitions; the machine is noisy.

    python benchmarks/ingest.py [--lines 1000000] [--repeat 5]
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

import orjson

from tui.core.formats.native import NativeSource
from tui.core.store import RunStore


def make_file(path: Path, lines: int, with_time: bool) -> None:
    with open(path, "wb") as handle:
        chunk = []
        for step in range(lines):
            # Full-precision floats as json.dumps writes them, in realistic ranges (a
            # decaying learning rate that never reaches subnormal numbers).
            record = {
                "step": step,
                "loss": 2.0 / (1 + step / 1000) + 0.01 * (step % 7),
                "accuracy": 1 - 1.0 / (2 + step / 1000),
                "lr": 0.1 * 0.5 ** (step / 100_000),
            }
            if with_time:
                record["_time"] = (
                    f"2026-11-22T10:{(step // 60) % 60:02d}:{step % 60:02d}.{step % 1000:03d}000"
                )
            chunk.append(orjson.dumps(record))
            if len(chunk) == 10_000:
                handle.write(b"\n".join(chunk) + b"\n")
                chunk = []
        if chunk:
            handle.write(b"\n".join(chunk) + b"\n")


def orjson_loop(path: Path) -> float:
    lines = path.read_bytes().split(b"\n")[:-1]
    loads = orjson.loads
    start = time.perf_counter()
    records = [loads(line) for line in lines]
    elapsed = time.perf_counter() - start
    assert len(records) == len(lines)
    return elapsed


def full_ingest(root: Path, run_dir: Path) -> tuple[float, RunStore]:
    store = RunStore()
    source = NativeSource(root, "r", run_dir)
    start = time.perf_counter()
    while True:
        batch = source.read(budget=8 * 1024 * 1024)
        if batch is not None:
            store.apply(batch)
        if not source.more:
            break
    elapsed = time.perf_counter() - start
    source.close()
    return elapsed, store


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--lines", type=int, default=1_000_000)
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        for with_time in (False, True):
            run = root / ("timed" if with_time else "plain")
            run.mkdir()
            path = run / "metrics.jsonl"
            make_file(path, args.lines, with_time)
            size = path.stat().st_size
            base, ours = [], []
            store = None
            for _ in range(args.repeat):  # interleaved so both see the same machine state
                base.append(orjson_loop(path))
                elapsed, store = full_ingest(root, run)
                ours.append(elapsed)
            assert store is not None
            state = store.runs["r"]
            points = sum(s.count for s in state.series.values())
            b, o = statistics.median(base), statistics.median(ours)
            label = "step+3 metrics+_time (ISO)" if with_time else "step+3 metrics"
            print(f"{label}: {args.lines:,} lines, {size / 1e6:.0f} MB, {points:,} points")
            print(
                f"  orjson.loads loop (limit): {args.lines / b / 1e6:6.2f} M lines/s  ({b * 1e9 / args.lines:.0f} ns/line)"
            )
            print(
                f"  tracktui full ingest     : {args.lines / o / 1e6:6.2f} M lines/s  ({o * 1e9 / args.lines:.0f} ns/line)"
            )
            print(f"  ratio ingest / limit     : {b / o:6.2f}   (target >= 0.7)")
            print(f"  store bytes per point    : {state.nbytes() / points:6.2f}   (target <= 16)")


if __name__ == "__main__":
    main()
