"""Soak: many writers rotating and truncating their files while the engine follows them.

Writer processes append JSON lines (writer id, generation, sequence number) to
``ROOT/run-NN/metrics.jsonl``, one ``write(2)`` per line, and every second or two one of
three things happens to the file:

- **rename rotation**, as logrotate's ``create`` mode does it: older backups shift
  (``.1`` -> ``.2`` ...; beyond ``--keep`` they are deleted), the file becomes ``.1``, an
  empty file takes its name, and half the time the writer goes on writing a few lines to
  the renamed file before it reopens (a writer that has not had its HUP yet);
- **copytruncate**: the file is copied to ``.1`` (after the same shift) and truncated; the
  writer keeps its descriptor and goes on writing at the new end;
- **restart**: the writer stops, stays quiet for one to two seconds (a crash and a
  relaunch), then truncates the file and starts a new generation from sequence 0. Every
  generation begins with the same header line, so the first bytes of the file do not
  change.

The follower reads every run once before the writers start (rotated files older than the
first look are history, as in the app) and then reads what the engine marks dirty, after a
25 ms coalescing tick like the app's. Nothing a writer wrote is unreadable by design:
deleted backups are many rotations old, and a restart truncates only after a quiet period.
So the expected set is every ``(writer, generation, sequence)`` written, and the engine
must deliver each exactly once. A truncation cannot be proven lossless by the tailer, so
each restart also leaves a "possible gap" note; a follower starved for longer than the
quiet period would lose the lines written just before it, and say so in the same note.
Printed: written, read, lost, duplicated (target 0 and 0), lines the parser refused,
"possible gap" notes, the follower's CPU and longest read turn, and its peak RSS (engine
plus store).

    python benchmarks/soak.py [--seconds 60] [--writers 50] [--rate 100] [--watch auto]
"""

from __future__ import annotations

import argparse
import json
import os
import random
import resource
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from pathlib import Path

METRICS = "metrics.jsonl"
COALESCE = 0.025
"""Seconds the follower lets events gather before reading, as the app does."""


# The writer (a separate process) ------------------------------------------------------------
def shift_backups(path: Path, keep: int) -> None:
    """Make room for a new ``.1``: ``.k`` becomes ``.k+1``; the one past ``keep`` goes."""
    oldest = path.with_name(f"{path.name}.{keep}")
    if oldest.exists():
        oldest.unlink()
    for k in range(keep - 1, 0, -1):
        backup = path.with_name(f"{path.name}.{k}")
        if backup.exists():
            backup.rename(path.with_name(f"{path.name}.{k + 1}"))


def write_records(args: argparse.Namespace) -> None:
    """Write for ``args.seconds``; print ``{"events": ..., "generations": {g: count}}``."""
    path = Path(args.path)
    rng = random.Random(args.seed)
    flags = os.O_WRONLY | os.O_APPEND | os.O_CREAT
    header = json.dumps({"w": args.writer, "header": 1, "lr": 0.01}).encode() + b"\n"
    fd = os.open(path, flags, 0o644)
    os.write(fd, header)
    generation, seq = 0, 0
    counts = {0: 0}
    events: Counter[str] = Counter()

    def record() -> bytes:
        nonlocal seq
        line = {"w": args.writer, "g": generation, "seq": seq, "step": seq, "loss": 1 / (seq + 1)}
        seq += 1
        counts[generation] = seq
        return json.dumps(line).encode() + b"\n"

    pause = 1.0 / args.rate
    deadline = time.monotonic() + args.seconds
    next_event = time.monotonic() + rng.uniform(0.5, 2.0)
    while time.monotonic() < deadline:
        os.write(fd, record())
        time.sleep(pause * rng.uniform(0.5, 1.5))
        if time.monotonic() < next_event:
            continue
        next_event = time.monotonic() + rng.uniform(0.5, 2.0)
        kind = rng.choices(["rename", "copytruncate", "restart"], [5, 3, 2])[0]
        events[kind] += 1
        if kind == "rename":
            shift_backups(path, args.keep)
            path.rename(path.with_name(f"{path.name}.1"))
            os.close(os.open(path, flags, 0o644))
            if rng.random() < 0.5:  # late lines into the renamed file, before the reopen
                events["late writes"] += 1
                for _ in range(rng.randint(1, 5)):
                    os.write(fd, record())
                    time.sleep(0.01)
            os.close(fd)
            fd = os.open(path, flags, 0o644)
        elif kind == "copytruncate":
            shift_backups(path, args.keep)
            shutil.copyfile(path, path.with_name(f"{path.name}.1"))
            os.truncate(path, 0)
        else:
            os.close(fd)
            time.sleep(rng.uniform(1.0, 2.0))  # the crashed run is relaunched
            generation, seq = generation + 1, 0
            counts[generation] = 0
            fd = os.open(path, flags | os.O_TRUNC, 0o644)
            os.write(fd, header)
    os.close(fd)
    print(json.dumps({"events": events, "generations": counts}), flush=True)


# The follower (this process) -----------------------------------------------------------------
def read_back(store: object) -> tuple[Counter[tuple[int, int, int]], int, list[str]]:
    """Every ``(writer, generation, seq)`` the store holds, bad lines, "possible gap" notes."""
    from tui.core.store import RunStore

    assert isinstance(store, RunStore)
    seen: Counter[tuple[int, int, int]] = Counter()
    bad = 0
    gaps: list[str] = []
    for run in store:
        writer = int(run.key.rsplit("-", 1)[1])
        bad += run.health.bad_lines
        gaps.extend(n for n in run.health.notes if "possible gap" in n)
        g, s = run.series.get("g"), run.series.get("seq")
        if g is None or s is None:
            continue
        generation = dict(zip(g.positions().tolist(), g.array().tolist()))
        for position, seq in zip(s.positions().tolist(), s.array().tolist()):
            seen[(writer, int(generation.get(position, -1)), int(seq))] += 1
    return seen, bad, gaps


def follow(args: argparse.Namespace, root: Path) -> None:
    from tui.core.engine import Engine
    from tui.core.store import RunStore

    paths = []
    for i in range(args.writers):
        directory = root / f"run-{i:02d}"
        directory.mkdir(parents=True, exist_ok=True)
        (directory / METRICS).touch()
        paths.append(directory / METRICS)
    engine = Engine(root, watch=args.watch, poll_interval=0.2)
    engine.scan()
    woke = threading.Event()
    engine.start(woke.set)
    store = RunStore()

    def pump(keys: list[str] | None = None) -> int:
        """Read what the engine says is dirty (or ``keys``); return records applied."""
        if keys is None:
            keys, rescan = engine.take_dirty()
            if rescan:
                keys = sorted(set(keys) | set(engine.scan()))
        applied = 0
        for batch in engine.read(keys):
            store.apply(batch)
            applied += len(batch.records) if batch.records is not None else 0
        return applied

    pump()  # every run read once before the writers start, as the app does at start-up
    command = [sys.executable, os.path.abspath(__file__), "--writer"]
    writers = [
        subprocess.Popen(
            [
                *command,
                str(i),
                "--path",
                str(path),
                "--seconds",
                str(args.seconds),
                "--rate",
                str(args.rate),
                "--keep",
                str(args.keep),
                "--seed",
                str(args.seed + i),
            ],
            stdout=subprocess.PIPE,
            text=True,
        )
        for i, path in enumerate(paths)
    ]
    started = time.monotonic()
    print(f"{args.writers} writers for {args.seconds:g} s under {root} (watch: {engine.mode})")
    longest = 0.0  # the follower's longest turn: how far behind the writers it can fall
    try:
        while any(w.poll() is None for w in writers):
            woke.wait(0.1)
            time.sleep(COALESCE)  # the app's flush tick: writes gather into one read
            woke.clear()
            turn = time.monotonic()
            pump()
            longest = max(longest, time.monotonic() - turn)
        stopped = time.monotonic()
        reports = [json.loads(w.communicate()[0]) for w in writers]
        # The writers are gone: read every run until a few full passes find nothing new.
        quiet = 0
        while quiet < 3 and time.monotonic() - stopped < 120:
            quiet = quiet + 1 if pump(sorted(engine.sources)) + pump() == 0 else 0
        drained = time.monotonic() - stopped
    finally:
        for w in writers:
            if w.poll() is None:
                w.kill()
        engine.stop()
    expected = {
        (i, int(g), s)
        for i, report in enumerate(reports)
        for g, count in report["generations"].items()
        for s in range(count)
    }
    seen, bad, gaps = read_back(store)
    lost = len(expected - set(seen))
    duplicated = sum(n - 1 for n in seen.values() if n > 1)
    unexpected = sum(n for key, n in seen.items() if key not in expected)
    events: Counter[str] = Counter()
    for report in reports:
        events.update(report["events"])
    usage = resource.getrusage(resource.RUSAGE_SELF)
    peak = usage.ru_maxrss / 1024  # KiB on Linux
    cpu = usage.ru_utime + usage.ru_stime
    print(f"  ran                 : {stopped - started:.1f} s, then {drained:.1f} s to drain")
    print(
        f"  follower CPU        : {cpu:.1f} s ({cpu / (time.monotonic() - started):.0%} of a core)"
    )
    print(f"  longest read turn   : {longest:.2f} s (engine.read of every dirty run, applied)")
    print(f"  events              : {', '.join(f'{k} {v:,}' for k, v in sorted(events.items()))}")
    print(f"  records written     : {len(expected):,}")
    print(f"  records read        : {sum(seen.values()):,} ({len(seen):,} distinct)")
    print(f"  lost                : {lost:,}   (target 0)")
    print(f"  duplicated          : {duplicated:,}   (target 0)")
    print(f"  unexpected          : {unexpected:,}   (torn or invented records)")
    print(f"  lines refused       : {bad:,}")
    other = [note for note in gaps if "truncated" not in note]
    print(
        f"  possible-gap notes  : {len(gaps):,} ({len(gaps) - len(other):,} at truncations "
        f"without a copy, the restarts: the tailer cannot prove those lost nothing; "
        f"{len(other):,} other)"
    )
    for note in other[:5]:
        print(f"    {note}")
    print(
        f"  peak RSS (follower) : {peak:.0f} MiB, store {sum(r.nbytes() for r in store) / 2**20:.1f} MiB"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=60.0, help="how long the writers write")
    parser.add_argument("--writers", type=int, default=50)
    parser.add_argument("--rate", type=float, default=100.0, help="lines per second per writer")
    parser.add_argument("--keep", type=int, default=10, help="rotated backups kept per run")
    parser.add_argument("--watch", default="auto", choices=["auto", "native", "poll"])
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument(
        "--root", type=Path, help="directory to write in (default: a temporary one)"
    )
    parser.add_argument("--writer", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--path", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.writer is not None:
        write_records(args)
        return
    if args.root is not None:
        follow(args, args.root)
        return
    with tempfile.TemporaryDirectory(prefix="tracktui-soak-") as scratch:
        follow(args, Path(scratch))


if __name__ == "__main__":
    main()
