"""What watching a large ROOT costs while nothing happens: the engine's safety net and the evidence.

With inotify doing the work, two background threads still run at rest: the engine's
reconcile (every run's files stat'ed and ROOT walked again, for events the kernel lost),
paced to at most ``RECONCILE_SHARE`` of a core, and the evidence gatherer (writer
processes, audit log, Slurm), every few seconds. For ``--runs`` generated runs of
``--steps`` lines (cached like benchmarks/status.py's), this prints the CPU time of each
piece (median of ``--repeat``) and what share of a core each thread uses at rest:

- a stat pass over every run, and its cost per run;
- a walk of ROOT whole, and in the slices of ``SLICE_SECONDS`` the safety net takes;
- the watch check after a walk (the kernel's list of watches against the directories);
- the reconcile's share of a core: a round (stats and walk) every ``reconcile_interval``,
  stretched so that it uses at most ``RECONCILE_SHARE``;
- the evidence gatherer over ``--span`` simulated seconds of gatherings with nothing
  changed, each after the pause the last one asked for (the processes of this box are
  the real ones).

The collector is frozen after discovery, as the app does once the table is painted.

    python benchmarks/idle_cost.py [--runs 5000] [--steps 1000] [--repeat 5] [--span 1200]
"""

from __future__ import annotations

import argparse
import gc
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from status import generate

from tui.core.discover import Walk
from tui.core.engine import RECONCILE_SHARE, SLICE_SECONDS, Engine
from tui.core.evidence import EvidenceGatherer


def cpu(repeat: int, action: Callable[[], object]) -> float:
    """Median CPU seconds of ``action`` on this thread."""
    costs = []
    for _ in range(repeat):
        started = time.thread_time()
        action()
        costs.append(time.thread_time() - started)
    return statistics.median(costs)


def sliced(engine: Engine) -> tuple[int, float, float]:
    """A walk of ROOT in safety-net slices: how many, their total and largest CPU seconds."""
    walk = Walk(engine.root, engine.adapters, keep=engine._wanted)
    costs = []
    done = False
    while not done:
        started = time.thread_time()
        done = walk.step(SLICE_SECONDS)
        costs.append(time.thread_time() - started)
    return len(costs), sum(costs), max(costs)


class Clock:
    """Simulated monotonic time for the gatherer (its pauses are not slept)."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5000)
    parser.add_argument("--steps", type=int, default=1000)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--span", type=float, default=1200.0, help="simulated seconds at rest")
    args = parser.parse_args()
    root = Path(tempfile.gettempdir()) / f"tracktui-bench-status-{args.runs}x{args.steps}"
    if not (root / ".complete").exists():
        print(f"generating {args.runs} runs x {args.steps} lines in {root} …", flush=True)
        generate(root, args.runs, args.steps)
        (root / ".complete").write_text("ok")

    engine = Engine(root, watch="native")
    engine.scan()
    engine.start()  # the watcher and the first stat of every run; its loop waits 5 s
    engine._stop.set()  # no loop passes while measuring: they are measured here, one by one
    gc.freeze()
    try:
        runs = len(engine.sources)
        print(f"{runs} runs under {root}; watching: {engine.mode}")
        stat = cpu(args.repeat, lambda: engine.reconcile(walk_root=False, judge=False))
        print(f"stat pass:   {stat * 1e3:7.1f} ms CPU  ({stat / runs * 1e6:.1f} us a run)")
        whole = cpu(args.repeat, engine.scan)
        print(f"walk:        {whole * 1e3:7.1f} ms CPU  (whole, with the watch check)")
        slices = [sliced(engine) for _ in range(args.repeat)]
        count, total, largest = (statistics.median(s[i] for s in slices) for i in range(3))
        print(
            f"walk sliced: {total * 1e3:7.1f} ms CPU in {count:.0f} slices,"
            f" the largest {largest * 1e3:.1f} ms"
        )
        check = cpu(args.repeat, lambda: engine._check_watches(engine._directories))
        print(f"watch check: {check * 1e3:7.1f} ms CPU  (after a walk finding nothing new)")
        round_cost = stat + total + check
        cycle = max(engine.reconcile_interval, round_cost / RECONCILE_SHARE)
        print(
            f"reconcile:   a round of {round_cost * 1e3:.0f} ms every {cycle:.0f} s"
            f" = {round_cost / cycle * 100:.3f} % of a core"
        )

        clock = Clock()
        gatherer = EvidenceGatherer(root, clock=clock)
        files = engine.run_files()
        gatherer.gather(files)  # the first gathering stats every file
        costs = []
        start = clock.now
        while clock.now - start < args.span:
            began = time.thread_time()
            evidence = gatherer.gather(files, frozenset())
            costs.append(time.thread_time() - began)
            clock.now += evidence.pause
        spent = clock.now - start
        print(
            f"evidence:    {len(costs)} gatherings in {spent:.0f} s, median"
            f" {statistics.median(costs) * 1e3:.2f} ms, largest {max(costs) * 1e3:.0f} ms"
            f" = {sum(costs) / spent * 100:.3f} % of a core"
        )
    finally:
        engine.stop()
        gc.unfreeze()


if __name__ == "__main__":
    sys.exit(main())
