"""A training-like script for demos: prints Valohai-style JSON lines on stdout.

Each record is a JSON line preceded by a blank line, as Valohai's loggers print, flushed at
once; ordinary log lines come in between. ``--diverge-at K`` makes the loss NaN from step K
on, and the script then keeps going past ``--steps`` (as a real run with a broken loss
would) until it is killed, so ``tracktui ROOT --auto-kill`` has something to stop. A
runaway guard (``--max-seconds``) ends a forgotten demo with exit status 1.

Run it directly or under ``tracktui run -- python sample_runs/train_demo.py ...``. Only the
standard library is used. ``simulate.py`` imports :func:`train_record` and
:func:`val_record` so both modes draw the same curves.
"""

from __future__ import annotations

import argparse
import itertools
import json
import math
import random
import sys
import time
from typing import Any

VAL_EVERY = 5
"""Steps between validation records."""


def _rate(steps: int, lr: float) -> float:
    """Decay per step: the loss reaches its floor by the last step, slower for small lr."""
    return 4.0 / max(1, steps) * (0.4 + 0.6 * min(1.0, lr / 0.03))


def _diverged(step: int, diverge_at: int | None) -> bool:
    return diverge_at is not None and step >= diverge_at


def _blowup(step: int, diverge_at: int | None) -> float:
    """The loss grows over the five steps before it turns NaN."""
    if diverge_at is None or step < diverge_at - 5:
        return 1.0
    return 3.0 ** (step - diverge_at + 6)


def train_record(
    step: int, steps: int, lr: float, seed: int, diverge_at: int | None = None
) -> dict[str, Any]:
    """The training record of ``step``: deterministic in its arguments."""
    if _diverged(step, diverge_at):
        return {"step": step, "loss": math.nan, "accuracy": 0.1}
    rng = random.Random(f"{seed}:{step}")
    progress = 1.0 - math.exp(-_rate(steps, lr) * step)
    loss = (0.3 + 2.0 * (1.0 - progress)) * (1.0 + 0.03 * rng.gauss(0, 1))
    blowup = _blowup(step, diverge_at)
    loss *= blowup
    accuracy = 0.1 + 0.8 * progress / math.sqrt(blowup) + 0.01 * rng.gauss(0, 1)
    accuracy = min(1.0, max(0.0, accuracy))
    return {"step": step, "loss": round(loss, 5), "accuracy": round(accuracy, 5)}


def val_record(
    step: int, steps: int, lr: float, seed: int, diverge_at: int | None = None
) -> dict[str, Any]:
    """The validation record of ``step`` (logged every :data:`VAL_EVERY` steps)."""
    if _diverged(step, diverge_at):
        return {"step": step, "val_loss": math.nan, "val_accuracy": 0.1}
    rng = random.Random(f"{seed}:val:{step}")
    progress = 1.0 - math.exp(-_rate(steps, lr) * step)
    val_loss = (0.4 + 2.0 * (1.0 - progress) + 0.02 * rng.gauss(0, 1)) * _blowup(step, diverge_at)
    val_accuracy = 0.1 + 0.75 * progress + 0.01 * rng.gauss(0, 1)
    return {"step": step, "val_loss": round(val_loss, 5), "val_accuracy": round(val_accuracy, 5)}


def emit(record: dict[str, Any]) -> None:
    """Print a record the way Valohai's loggers do: a blank line, then the JSON line."""
    sys.stdout.write("\n" + json.dumps(record) + "\n")
    sys.stdout.flush()


def main(argv: list[str] | None = None) -> int:
    """Run the fake training loop."""
    parser = argparse.ArgumentParser(description="A training-like script for tracktui demos.")
    parser.add_argument("--steps", type=int, default=100, help="steps before finishing")
    parser.add_argument("--interval", type=float, default=0.5, help="seconds per step")
    parser.add_argument("--lr", type=float, default=0.01, help="learning rate (shapes the curve)")
    parser.add_argument("--seed", type=int, default=0, help="noise seed")
    parser.add_argument(
        "--diverge-at", type=int, metavar="K", help="loss is NaN from step K on; never finish"
    )
    parser.add_argument(
        "--max-seconds", type=float, default=600.0, help="runaway guard for a diverged run"
    )
    args = parser.parse_args(argv)
    print(f"train_demo: lr={args.lr} seed={args.seed} steps={args.steps}", flush=True)
    never_finish = args.diverge_at is not None and args.diverge_at <= args.steps
    deadline = time.monotonic() + args.max_seconds
    for step in itertools.count(1):
        if step > args.steps and not never_finish:
            break
        if time.monotonic() > deadline:
            print("train_demo: still diverged after --max-seconds; giving up", flush=True)
            return 1
        emit(train_record(step, args.steps, args.lr, args.seed, args.diverge_at))
        if step % VAL_EVERY == 0:
            emit(val_record(step, args.steps, args.lr, args.seed, args.diverge_at))
        if step == args.diverge_at:
            print(f"WARNING: loss is NaN at step {step}; carrying on regardless", flush=True)
        elif step % 10 == 0:
            print(f"step {step}/{args.steps} done", flush=True)
        time.sleep(args.interval)
    print("train_demo: finished", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
