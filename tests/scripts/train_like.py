"""A stand-in for a training script, for tests that need real processes.

Prints one JSON record per step on stdout with a blank line before each (as Valohai's
loggers do) and a progress line on stderr, and keeps two worker processes sleeping beside
it, like DataLoader workers. Runs for STEPS steps (0: until killed).

    python train_like.py STEPS [--interval S] [--nan-at K] [--orphan] [--marker TEXT]

``--orphan`` also starts a worker whose parent exits at once, so it is reparented to init
but stays in the run's session. ``--marker`` is passed to the workers' command lines so a
test can find (and clean up) every process it caused.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time

WORKER = "import sys, time\nwhile True: time.sleep(0.05)\n"
ORPHAN_PARENT = (
    "import subprocess, sys\nsubprocess.Popen([sys.executable, '-c', sys.argv[1], *sys.argv[2:]])\n"
)


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("steps", type=int)
    parser.add_argument("--interval", type=float, default=0.05)
    parser.add_argument("--nan-at", type=int, default=None)
    parser.add_argument("--orphan", action="store_true")
    parser.add_argument("--marker", default="train-like-worker")
    args = parser.parse_args()

    worker = [sys.executable, "-c", WORKER, "worker", args.marker]
    workers = [
        subprocess.Popen(worker, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL)
        for _ in range(2)
    ]
    if args.orphan:
        subprocess.run(
            [sys.executable, "-c", ORPHAN_PARENT, WORKER, "orphan", args.marker], check=True
        )
    print(json.dumps({"workers": [w.pid for w in workers]}), file=sys.stderr, flush=True)
    step = 0
    while args.steps == 0 or step < args.steps:
        loss = 1.0 / (step + 1)
        if args.nan_at is not None and step >= args.nan_at:
            loss = float("nan")
        print()
        print(json.dumps({"step": step, "loss": loss, "phase": "train"}), flush=True)
        print(f"step {step} done", file=sys.stderr, flush=True)
        step += 1
        time.sleep(args.interval)
    for w in workers:
        w.terminate()
        w.wait()
    print("training finished", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
