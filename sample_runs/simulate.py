"""Write live training runs into a directory, for demos and tests.

``python sample_runs/simulate.py ROOT [--runs N] [--steps S] [--interval SEC] [--diverge K]``
writes N native runs into ROOT from this one process: each gets a run.json (status
``running``, this process's pid and create time, host, user) and a metrics.jsonl that grows
by one record per run every SEC seconds. The last K runs diverge: their loss turns NaN at
step ``--diverge-at`` (default S/2) and stays NaN. Each line is appended with one
``os.write`` on an ``O_APPEND`` descriptor, so a reader never sees half a record, and
run.json is replaced atomically (temp file + ``os.replace``) when the runs finish, or are
marked killed when this process gets SIGINT or SIGTERM.

With ``--launch`` each run is instead a separate process started as
``tracktui run --root ROOT --name NAME --config ... -- python train_demo.py ...``; the
diverging ones keep running after their loss turns NaN until something kills them, e.g.
``tracktui ROOT --auto-kill`` with a ``nonfinite`` kill-rule. Only the standard library and
psutil are used.
"""

from __future__ import annotations

import argparse
import getpass
import json
import os
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import psutil

# simulate.py runs as a script, so its own directory is on sys.path.
from train_demo import VAL_EVERY, train_record, val_record

HERE = Path(__file__).resolve().parent
DEMO = HERE / "train_demo.py"
REPO = HERE.parent
LEARNING_RATES = (0.1, 0.03, 0.01, 0.003, 0.001)
DIVERGING_LR = 1.0
BATCH_SIZES = (64, 128, 256)
OPTIMIZERS = ("sgd", "adam", "adamw")
MODELS = ("resnet18", "vit-tiny")


class Stopped(Exception):
    """This process was asked to stop by a signal."""

    def __init__(self, signum: int) -> None:
        super().__init__(signum)
        self.signum = signum


def _stop(signum: int, frame: object) -> None:
    raise Stopped(signum)


@dataclass(frozen=True)
class Plan:
    """One simulated run: its name, hyperparameters and whether it diverges."""

    name: str
    config: dict[str, Any]
    diverges: bool

    @property
    def lr(self) -> float:
        """The run's learning rate."""
        return float(self.config["lr"])

    @property
    def seed(self) -> int:
        """The run's noise seed."""
        return int(self.config["seed"])


def plans(runs: int, diverge: int) -> list[Plan]:
    """The runs to simulate; the last ``diverge`` of them get a learning rate that diverges."""
    result = []
    for i in range(runs):
        diverges = i >= runs - diverge
        lr = DIVERGING_LR if diverges else LEARNING_RATES[i % len(LEARNING_RATES)]
        config = {
            "lr": lr,
            "batch_size": BATCH_SIZES[i % len(BATCH_SIZES)],
            "optimizer": OPTIMIZERS[i % len(OPTIMIZERS)],
            "model": MODELS[i % len(MODELS)],
            "seed": i + 1,
            "dropout": round(0.1 * (i % 4), 1),
        }
        result.append(Plan(f"run-{i:02d}-lr{lr:g}", config, diverges))
    return result


def utc_now() -> str:
    """The current time as ISO-8601 UTC (microseconds, ``Z``)."""
    return datetime.now(timezone.utc).isoformat(timespec="microseconds").replace("+00:00", "Z")


def user_name() -> str:
    """The login name, or the numeric uid where there is none (bare containers)."""
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return str(os.getuid())


def write_json_atomic(path: Path, value: dict[str, Any]) -> None:
    """Replace ``path`` with ``value`` so a reader sees the old file or the new, never half."""
    temp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    temp.write_text(json.dumps(value, indent=2) + "\n")
    os.replace(temp, path)


class LiveRun:
    """A run directory this process writes to."""

    def __init__(self, directory: Path, meta: dict[str, Any]) -> None:
        directory.mkdir(parents=True)
        self.directory = directory
        self.meta = meta
        write_json_atomic(directory / "run.json", meta)
        self.fd = os.open(
            directory / "metrics.jsonl", os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644
        )

    def append(self, record: dict[str, Any]) -> None:
        """Append one record as one line with one write (NaN spelled as Python does)."""
        stamped = {"step": record.get("step"), "_time": utc_now(), **record}
        line = (json.dumps(stamped) + "\n").encode()
        if os.write(self.fd, line) != len(line):
            raise OSError(f"short write to {self.directory / 'metrics.jsonl'}")

    def finish(self, **end: Any) -> None:
        """Close the metrics file and record how the run ended."""
        os.close(self.fd)
        self.meta.update(end, ended_at=utc_now())
        write_json_atomic(self.directory / "run.json", self.meta)


def simulate(root: Path, args: argparse.Namespace) -> int:
    """Write every run from this process, one record per run per interval."""
    me = psutil.Process()
    base = {
        "status": "running",
        "pid": me.pid,
        "pid_create_time": me.create_time(),
        "pgid": os.getpgrp(),
        "host": socket.gethostname(),
        "user": user_name(),
        "command": [sys.executable, *sys.argv],
        "cwd": os.getcwd(),
    }
    runs: list[tuple[Plan, LiveRun]] = []
    for plan in plans(args.runs, args.diverge):
        meta = {
            "id": f"{plan.name}-{me.pid}",
            "name": plan.name,
            "created_at": utc_now(),
            **base,
            "config": plan.config,
            "tags": {"source": "simulate.py"},
        }
        runs.append((plan, LiveRun(root / plan.name, meta)))
    try:
        for step in range(1, args.steps + 1):
            for plan, run in runs:
                at = args.diverge_at if plan.diverges else None
                run.append(train_record(step, args.steps, plan.lr, plan.seed, at))
                if step % VAL_EVERY == 0:
                    run.append(val_record(step, args.steps, plan.lr, plan.seed, at))
            if step < args.steps:
                time.sleep(args.interval)
    except (KeyboardInterrupt, Stopped) as stop:
        signum = stop.signum if isinstance(stop, Stopped) else signal.SIGINT
        for _, run in runs:
            run.finish(status="killed", signal=int(signum))
        return 128 + int(signum)
    for _, run in runs:
        run.finish(status="finished", exit_code=0)
    return 0


def launch(root: Path, args: argparse.Namespace) -> int:
    """Start each run as ``tracktui run ... -- python train_demo.py`` and wait for them."""
    env = dict(os.environ)
    # ``python -m tui`` must find the package even from a checkout that is not installed.
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(REPO), env.get("PYTHONPATH")) if p)
    children: list[tuple[Plan, subprocess.Popen[bytes]]] = []
    for plan in plans(args.runs, args.diverge):
        command = [sys.executable, "-m", "tui", "run", "--root", str(root), "--name", plan.name]
        for key, value in plan.config.items():
            command += ["--config", f"{key}={value}"]
        command += ["--", sys.executable, str(DEMO), "--steps", str(args.steps)]
        command += ["--interval", str(args.interval), "--lr", str(plan.lr)]
        command += ["--seed", str(plan.seed)]
        if plan.diverges:
            command += ["--diverge-at", str(args.diverge_at)]
        # The runs' output goes to their output.log; the terminal gets one line per run.
        process = subprocess.Popen(
            command, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, env=env
        )
        children.append((plan, process))
        note = f"NaN from step {args.diverge_at}, runs until killed" if plan.diverges else ""
        print(f"started {plan.name} (pid {process.pid}) {note}".rstrip(), flush=True)
    failed = False
    waiting = dict(enumerate(children))
    try:
        while waiting:
            for index, (plan, process) in list(waiting.items()):
                code = process.poll()
                if code is None:
                    continue
                del waiting[index]
                print(f"{plan.name} exited with status {code}", flush=True)
                failed |= code != 0 and not plan.diverges
            time.sleep(0.2)
    except (KeyboardInterrupt, Stopped) as stop:
        signum = stop.signum if isinstance(stop, Stopped) else signal.SIGINT
        for _, process in waiting.values():
            if process.poll() is None:
                process.send_signal(signum)
        for _, process in waiting.values():
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                process.kill()
        return 128 + int(signum)
    return 1 if failed else 0


def main(argv: list[str] | None = None) -> int:
    """Command line; see the module docstring."""
    parser = argparse.ArgumentParser(description="Write live training runs into ROOT.")
    parser.add_argument("root", type=Path, help="directory to write the runs into")
    parser.add_argument("--runs", type=int, default=4, metavar="N", help="number of runs")
    parser.add_argument("--steps", type=int, default=100, metavar="S", help="steps per run")
    parser.add_argument("--interval", type=float, default=0.5, metavar="SEC", help="per step")
    parser.add_argument(
        "--diverge", type=int, default=1, metavar="K", help="how many runs go NaN (the last K)"
    )
    parser.add_argument(
        "--diverge-at", type=int, metavar="STEP", help="step where they go NaN (default S/2)"
    )
    parser.add_argument(
        "--launch", action="store_true", help="start each run as a process under tracktui run"
    )
    args = parser.parse_args(argv)
    if args.runs < 1 or args.steps < 1 or args.interval < 0:
        parser.error("--runs and --steps must be positive and --interval not negative")
    if not 0 <= args.diverge <= args.runs:
        parser.error("--diverge must be between 0 and --runs")
    if args.diverge_at is None:
        args.diverge_at = max(1, args.steps // 2)
    root: Path = args.root
    root.mkdir(parents=True, exist_ok=True)
    taken = [p.name for p in plans(args.runs, args.diverge) if (root / p.name).exists()]
    if taken:
        parser.error(f"{root} already holds {', '.join(taken)}; choose another ROOT")
    signal.signal(signal.SIGTERM, _stop)
    return launch(root, args) if args.launch else simulate(root, args)


if __name__ == "__main__":
    sys.exit(main())
