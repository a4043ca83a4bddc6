"""Ingest throughput against the practical limit, and memory per stored point.

Prints, for the same file: the per-line ``orjson.loads`` loop over lines already split in
memory (the practical limit of a Python JSONL reader), our full ingest from the file on disk
into the store (tail, parse, group, columnar append, summaries), their ratio, and bytes of
store memory per (step, value) point. A third file diverges half way (``NaN`` losses, an
``Infinity`` now and then, as the client writes them); orjson refuses those tokens, so its
figure is set beside the finite file's in the same run. Medians of several repetitions,
interleaved; the machine is noisy, so the load average is printed.

    python benchmarks/ingest.py [--lines 1000000] [--repeat 5]
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time
from pathlib import Path

import orjson

from tui.core.formats.native import NativeSource
from tui.core.store import RunStore


def make_file(path: Path, lines: int, with_time: bool, diverge: bool = False) -> None:
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
            line = orjson.dumps(record)
            if diverge and step >= lines // 2:  # Python's tokens, as json.dumps writes them
                record["loss"] = None
                bad = b"Infinity" if step % 1000 == 0 else b"NaN"
                line = orjson.dumps(record).replace(b'"loss":null', b'"loss":' + bad)
            chunk.append(line)
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
    cases = {  # directory: (label, with _time, diverges)
        "plain": ("step+3 metrics", False, False),
        "timed": ("step+3 metrics+_time (ISO)", True, False),
        "nan": ("step+3 metrics, NaN/Infinity from half way", False, True),
    }
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        for name, (_, with_time, diverge) in cases.items():
            (root / name).mkdir()
            make_file(root / name / "metrics.jsonl", args.lines, with_time, diverge)
        base: dict[str, list[float]] = {name: [] for name in cases}
        ours: dict[str, list[float]] = {name: [] for name in cases}
        stores: dict[str, RunStore] = {}
        loads = [os.getloadavg()[0]]
        for _ in range(args.repeat):  # interleaved so every figure sees the same machine
            for name in cases:
                # orjson refuses NaN: the diverged file is set against the finite one.
                limit = root / ("plain" if name == "nan" else name) / "metrics.jsonl"
                base[name].append(orjson_loop(limit))
                elapsed, stores[name] = full_ingest(root, root / name)
                ours[name].append(elapsed)
            loads.append(os.getloadavg()[0])
        print(f"load average (1 min) during the runs: {min(loads):.2f}-{max(loads):.2f}")
        per_line = {name: statistics.median(ours[name]) * 1e9 / args.lines for name in cases}
        for name, (label, _, diverge) in cases.items():
            state = stores[name].runs["r"]
            points = sum(s.count for s in state.series.values())
            size = (root / name / "metrics.jsonl").stat().st_size
            b, o = statistics.median(base[name]), statistics.median(ours[name])
            print(f"{label}: {args.lines:,} lines, {size / 1e6:.0f} MB, {points:,} points")
            what = (
                "orjson.loads loop (limit, finite file)" if diverge else "orjson.loads loop (limit)"
            )
            print(
                f"  {what:<39}: {args.lines / b / 1e6:5.2f} M lines/s ({b * 1e9 / args.lines:.0f} ns/line)"
            )
            print(
                f"  {'tracktui full ingest':<39}: {args.lines / o / 1e6:5.2f} M lines/s ({per_line[name]:.0f} ns/line)"
            )
            print(f"  {'ratio ingest / limit':<39}: {b / o:5.2f}   (target >= 0.7)")
            if diverge:
                print(
                    f"  {'ns/line against the finite file':<39}: {per_line[name] / per_line['plain']:5.2f}x"
                )
            print(
                f"  {'store bytes per point':<39}: {state.nbytes() / points:5.2f}   (target <= 16)"
            )


if __name__ == "__main__":
    main()
