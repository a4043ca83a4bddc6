"""tracktui against its peers on the same runs: TensorBoard, and W&B's ``wandb leet``.

Generates R runs x S steps x 2 metrics (loss, accuracy; the same values everywhere) three
ways, once (kept in the temporary directory): tracktui's format (run.json, metrics.jsonl),
TensorBoard event files (tensorboardX) and W&B offline runs (wandb's own SDK; skipped with a
message when wandb cannot be imported). Then, in rounds, each tool in turn in a fresh
process (interleaved, so every tool sees the same machine), after waiting for a quiet
machine (1-minute load under 1.5, or a warning after a timeout), it measures:

- first paint: launch to a 160x50 terminal (tmux) showing every run (tracktui: every row;
  leet: its run list and a drawn chart). TensorBoard has no terminal UI: its figure is its
  time to load every series (its server shows nothing sooner).
- all histories: launch until every point of every run is in memory. tracktui: no run
  still loading (the top bar's indicator and the rows' "…" gone). TensorBoard: its
  EventAccumulator with size guidance 0 (every point kept; TensorBoard's server keeps
  1,000 per series by default). leet loads the run in view: not measured.
- live append: a record appended to a run until it is on screen (tracktui: the step cell of
  the first row). TensorBoard: until its reload loop, at TensorBoard's default 5 s interval,
  holds the new point. leet: not measured (it needs a live W&B writer process).
- idle CPU: % of one core used by the tool's process tree over 10 s once loaded, with
  nothing changing (TensorBoard: its reload loop at the default interval).
- tree RSS: resident memory of the tool's process tree once loaded.

Prints one table of medians and ratios (tracktui / peer: under 1 is better for every row),
with the load average during each tool's measurements.

With ``--wandb-only``, only the W&B offline runs are written and both tools open that same
directory (leet's own runs, not tracktui's format), interleaved, measuring:

- every run listed: launch until the run list names every run (leet: its ``Runs [N
  items]`` header; tracktui: every run's name in the table).
- first run's loss charted: launch until the run leet selects at start (the latest) has
  its loss chart drawn. leet draws it unasked; in tracktui, once the runs are listed, the
  benchmark types ``/``, that run's folder name and enter, so the strip under the table
  charts it (what a user does to chart one run), and waits for the strip's loss chart.
- idle CPU and tree RSS as above.

    python benchmarks/peers.py [--runs 20] [--steps 50000] [--rounds 3] [--wandb-only]
                               [--tools tracktui,leet]
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import statistics
import struct
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import psutil

sys.path.insert(0, str(Path(__file__).resolve().parent))
import memory

TMUX = ["tmux", "-L", f"tracktui-peers-{os.getpid()}"]  # two benchmarks never share panes
SIZE = ("160", "50")
QUIET_LOAD = 1.5
TB_RELOAD = 5.0
"""TensorBoard's default --reload_interval, in seconds."""

Figures = dict[str, float]


# Data ------------------------------------------------------------------------------------
def data_root(runs: int, steps: int) -> Path:
    return Path(tempfile.gettempdir()) / f"tracktui-bench-peers-{runs}x{steps}"


def generate(runs: int, steps: int) -> dict[str, Path | None]:
    """The runs in each format (generated once); ``None`` for a format that cannot be."""
    root = data_root(runs, steps)
    formats: dict[str, Path | None] = {}
    native = root / "tracktui"
    if not (native / ".complete").exists():
        print(f"generating {runs} runs x {steps:,} steps for tracktui ...", flush=True)
        memory.generate(native, runs, steps)
        (native / ".complete").write_text("ok")
    formats["tracktui"] = native
    events = root / "tensorboard"
    if not (events / ".complete").exists():
        print("generating TensorBoard event files (tensorboardX) ...", flush=True)
        shutil.rmtree(events, ignore_errors=True)
        _generate_events(events, runs, steps)
        (events / ".complete").write_text("ok")
    formats["tensorboard"] = events
    formats["leet"] = _generate_wandb(root / "wandb", runs, steps)
    return formats


def _generate_events(root: Path, runs: int, steps: int) -> None:
    from tensorboardX import SummaryWriter

    for r in range(runs):
        writer = SummaryWriter(str(root / f"run-{r:04d}"), max_queue=10_000, flush_secs=3600)
        for s in range(steps):
            loss, accuracy = memory.point(r, s)
            writer.add_scalar("loss", loss, s, walltime=memory.BASE_TIME + s)
            writer.add_scalar("accuracy", accuracy, s, walltime=memory.BASE_TIME + s)
        writer.close()


def _generate_wandb(root: Path, runs: int, steps: int) -> Path | None:
    """W&B offline runs under ``root/wandb`` (two writer processes at a time)."""
    if (root / ".complete").exists():
        return root / "wandb"
    try:
        import wandb  # noqa: F401
    except ImportError as exc:
        print(f"W&B skipped: wandb cannot be imported ({exc})")
        return None
    print("generating W&B offline runs (wandb's SDK; a few minutes) ...", flush=True)
    shutil.rmtree(root, ignore_errors=True)
    root.mkdir(parents=True)
    pending = list(range(runs))
    active: list[subprocess.Popen[bytes]] = []
    while pending or active:
        while pending and len(active) < 2:
            r = pending.pop(0)
            command = [sys.executable, __file__, "--wandb-run", str(r), str(steps), str(root)]
            active.append(subprocess.Popen(command, env={**os.environ, "WANDB_SILENT": "true"}))
        active[0].wait()
        if active[0].returncode:
            print("W&B skipped: a writer failed")
            return None
        active.pop(0)
    (root / ".complete").write_text("ok")
    return root / "wandb"


def _wandb_run(run: int, steps: int, root: Path) -> None:
    import wandb

    handle = wandb.init(project="peers", mode="offline", dir=str(root), name=f"run-{run:04d}")
    for s in range(steps):
        loss, accuracy = memory.point(run, s)
        handle.log({"loss": loss, "accuracy": accuracy}, step=s)
    handle.finish()


# The machine -----------------------------------------------------------------------------
def wait_quiet(timeout: float) -> float:
    """Wait for the 1-minute load to fall under ``QUIET_LOAD``; returns the load then."""
    deadline = time.monotonic() + timeout
    while (load := os.getloadavg()[0]) >= QUIET_LOAD:
        if time.monotonic() > deadline:
            print(f"warning: load {load:.2f} after waiting {timeout:.0f} s; measuring anyway")
            break
        time.sleep(5)
    return load


def tree(root: psutil.Process) -> list[psutil.Process]:
    """``root`` and its descendants, shells and tmux itself left out."""
    found = [root, *root.children(recursive=True)]
    return [p for p in found if p.name() not in ("sh", "bash", "env", "tmux", "tmux: server")]


def tree_rss(root: psutil.Process) -> float:
    total = 0
    for process in tree(root):
        try:
            total += process.memory_info().rss
        except psutil.Error:
            continue
    return total / 1024 / 1024


def tree_cpu(root: psutil.Process, seconds: float = 10.0) -> float:
    """% of one core the tree uses over ``seconds``."""

    def used() -> float:
        total = 0.0
        for process in tree(root):
            try:
                times = process.cpu_times()
            except psutil.Error:
                continue
            total += times.user + times.system
        return total

    before = used()
    time.sleep(seconds)
    return (used() - before) / seconds * 100


class Pane:
    """A program in its own tmux session, read back as text."""

    def __init__(self, command: list[str], env: dict[str, str]) -> None:
        subprocess.run([*TMUX, "kill-session", "-t", "bench"], capture_output=True)
        line = " ".join(f"{k}={v}" for k, v in env.items())
        shell = f"exec env {line} " + " ".join(command)
        self.started = time.perf_counter()
        subprocess.run(
            [*TMUX, "new-session", "-d", "-s", "bench", "-x", SIZE[0], "-y", SIZE[1], shell],
            check=True,
        )
        pid = subprocess.check_output([*TMUX, "display", "-p", "-t", "bench", "#{pane_pid}"])
        self.process = psutil.Process(int(pid))

    def text(self) -> str:
        out = subprocess.run([*TMUX, "capture-pane", "-p", "-t", "bench"], capture_output=True)
        return out.stdout.decode(errors="replace")

    def wait(self, condition: Callable[[str], bool], timeout: float = 120.0) -> float:
        """Seconds from launch until the screen satisfies ``condition``."""
        deadline = time.perf_counter() + timeout
        while not condition(self.text()):
            if time.perf_counter() > deadline:
                raise TimeoutError("the screen never showed what was awaited")
            time.sleep(0.005)
        return time.perf_counter() - self.started

    def type(self, *keys: str, literal: bool = False) -> None:
        """Send keys (tmux key names, or text as typed with ``literal``)."""
        flags = ["-l"] if literal else []
        subprocess.run([*TMUX, "send-keys", "-t", "bench", *flags, *keys], check=True)

    def close(self) -> None:
        subprocess.run([*TMUX, "kill-session", "-t", "bench"], capture_output=True)


# The tools -------------------------------------------------------------------------------
def measure_tracktui(root: Path, runs: int) -> Figures:
    state = tempfile.mkdtemp(prefix="tracktui-peers-state-")  # no summary cache from before
    every = f"{runs} runs · {runs} shown"  # the status bar, under the first rows

    def painted(text: str) -> bool:
        return every in text and "run-0000" in text

    pane = Pane([sys.executable, "-m", "tui", str(root)], {"XDG_STATE_HOME": state})
    try:
        figures = {"first_paint": pane.wait(painted)}
        figures["all_histories"] = pane.wait(
            lambda t: painted(t) and "loading history" not in t and "…" not in t, 300
        )
        time.sleep(2)
        figures["tree_rss"] = tree_rss(pane.process)
        figures["idle_cpu"] = tree_cpu(pane.process)
        latencies = []
        for i in range(5):
            step = 1_000_000 + i
            with open(root / "run-0000" / "metrics.jsonl", "a") as handle:
                written = time.perf_counter()
                handle.write(json.dumps({"step": step, "loss": 0.5, "accuracy": 0.5}) + "\n")
            pane.wait(lambda t, s=str(step): s in t, 30)
            latencies.append(time.perf_counter() - written)
            time.sleep(0.3)
        figures["live_append"] = statistics.median(latencies)
    finally:
        pane.close()
        shutil.rmtree(state, ignore_errors=True)
        _restore_native(root)
    return figures


def _restore_native(root: Path) -> None:
    """Drop the appended records, so every round reads the same runs."""
    path = root / "run-0000" / "metrics.jsonl"
    data = path.read_bytes()
    cut = data.find(b'{"step": 1000000')
    if cut >= 0:
        path.write_bytes(data[:cut])


def append_event(path: Path, step: int, tag: str, value: float) -> None:
    """Append one scalar to an event file, framed as TFRecord, as a live writer does."""
    from tensorboardX.proto.event_pb2 import Event
    from tensorboardX.proto.summary_pb2 import Summary
    from tensorboardX.record_writer import masked_crc32c

    value_proto = Summary.Value(tag=tag, simple_value=value)
    event = Event(wall_time=time.time(), step=step, summary=Summary(value=[value_proto]))
    data = event.SerializeToString()
    header = struct.pack("<Q", len(data))
    with open(path, "ab") as handle:
        handle.write(header + struct.pack("<I", masked_crc32c(header)))
        handle.write(data + struct.pack("<I", masked_crc32c(data)))


def measure_tensorboard(root: Path, runs: int) -> Figures:
    events = next((root / "run-0000").glob("events.out.tfevents.*"))
    size = events.stat().st_size
    started = time.time()
    child = subprocess.Popen(
        [sys.executable, __file__, "--tensorboard-child", str(root)],
        stdout=subprocess.PIPE,
        text=True,
    )
    assert child.stdout is not None
    try:
        loaded = json.loads(child.stdout.readline())
        figures = {"first_paint": loaded["at"] - started, "all_histories": loaded["at"] - started}
        if loaded["points"] != runs * 2 * loaded["steps"]:
            print(f"warning: TensorBoard holds {loaded['points']:,} points")
        process = psutil.Process(child.pid)
        time.sleep(2)
        figures["tree_rss"] = tree_rss(process)
        figures["idle_cpu"] = tree_cpu(process)
        latencies = []
        phases = random.Random(15)
        for i in range(3):
            step = 1_000_000 + i
            time.sleep(phases.uniform(0, TB_RELOAD))  # anywhere in the reload interval
            written = time.time()
            append_event(events, step, "loss", 0.5)
            deadline = written + 4 * TB_RELOAD
            while True:
                seen = json.loads(child.stdout.readline())
                if seen["step"] >= step or seen["at"] > deadline:
                    break
            if seen["step"] < step:
                raise TimeoutError("TensorBoard's reload never saw the appended point")
            latencies.append(seen["at"] - written)
        figures["live_append"] = statistics.median(latencies)
    finally:
        child.kill()
        child.wait()
        os.truncate(events, size)  # the appended events go: every round reads the same runs
    return figures


def tensorboard_child(root: Path) -> None:
    """Load every run's scalars as TensorBoard's backend does, then reload every 5 s."""
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    accumulators = [
        EventAccumulator(str(run), size_guidance={"scalars": 0})
        for run in sorted(root.iterdir())
        if run.is_dir()
    ]
    for accumulator in accumulators:
        accumulator.Reload()
    points = sum(len(a.Scalars(t)) for a in accumulators for t in a.Tags()["scalars"])
    steps = len(accumulators[0].Scalars("loss"))
    print(json.dumps({"at": time.time(), "points": points, "steps": steps}), flush=True)
    while True:
        time.sleep(TB_RELOAD)
        for accumulator in accumulators:
            accumulator.Reload()
        last = accumulators[0].Scalars("loss")[-1].step
        print(json.dumps({"at": time.time(), "step": last}), flush=True)


def braille(text: str) -> bool:
    """Whether ``text`` holds a drawn line (both tools draw charts in braille)."""
    return any("\u2801" <= c <= "\u28ff" for c in text)


def first_wandb_run(root: Path) -> str:
    """The offline run leet selects, and charts, when it starts: the latest one."""
    return (root / "latest-run").resolve().name


def measure_leet(root: Path, runs: int) -> Figures:
    wandb = shutil.which("wandb", path=os.path.dirname(sys.executable)) or "wandb"
    pane = Pane([wandb, "leet", str(root)], {"WANDB_SILENT": "true"})

    def listed(text: str) -> bool:
        return f"Runs [{runs} items]" in text or f" of {runs}]" in text

    try:
        figures = {"runs_listed": pane.wait(listed, 60)}
        figures["first_chart"] = pane.wait(lambda t: listed(t) and braille(t), 60)
        figures["first_paint"] = figures["first_chart"]  # leet's list and a chart drawn
        selected = next(line for line in pane.text().splitlines() if line.startswith(" ▶ "))
        if selected[3:].split()[0].rstrip(".") not in first_wandb_run(root):
            print(f"warning: leet charts {selected[3:].split()[0]}, not the latest run")
        time.sleep(2)
        figures["tree_rss"] = tree_rss(pane.process)
        figures["idle_cpu"] = tree_cpu(pane.process)
    finally:
        pane.close()
    return figures


def measure_tracktui_wandb(root: Path, runs: int) -> Figures:
    """tracktui on leet's own W&B directory: the runs listed, then leet's first run charted.

    tracktui's chart strip follows the table's cursor, so the run leet charts first is
    brought there the way a user would: ``/``, the run's folder name, enter.
    """
    state = tempfile.mkdtemp(prefix="tracktui-peers-state-")
    names = [f"run-{r:04d}" for r in range(runs)]
    target = first_wandb_run(root)

    def charted(text: str) -> bool:
        lines = text.splitlines()
        at = next((i for i, line in enumerate(lines) if line.startswith(" ● ")), None)
        if at is None or " · 1 shown" not in text:
            return False
        name = lines[at][3:].strip()  # the strip's run: the row of the target's folder
        row = any(target in line and name in line.split() for line in lines[:at])
        return row and "loss" in lines[at + 1] and braille("\n".join(lines[at + 1 :]))

    pane = Pane([sys.executable, "-m", "tui", str(root)], {"XDG_STATE_HOME": state})
    try:
        figures = {"runs_listed": pane.wait(lambda t: all(n in t for n in names))}
        pane.type("/")
        pane.wait(lambda t: "filter: lr<0.01" in t, 30)  # the filter line has the focus
        pane.type(target, literal=True)
        pane.type("Enter")
        figures["first_chart"] = pane.wait(charted, 300)
        # Idle means loaded: the histories are read in the background after the first
        # chart, so wait for the top bar's indicator to go before the idle figures.
        pane.wait(lambda t: "loading history" not in t, 300)
        time.sleep(2)
        figures["tree_rss"] = tree_rss(pane.process)
        figures["idle_cpu"] = tree_cpu(pane.process)
    finally:
        pane.close()
        shutil.rmtree(state, ignore_errors=True)
    return figures


MEASURES = {"tracktui": measure_tracktui, "tensorboard": measure_tensorboard, "leet": measure_leet}
ROWS = {
    "first_paint": ("first paint", "s"),
    "all_histories": ("all histories", "s"),
    "live_append": ("live append to screen", "s"),
    "idle_cpu": ("idle CPU", "% core"),
    "tree_rss": ("process tree RSS", "MiB"),
}
WANDB_MEASURES = {"tracktui": measure_tracktui_wandb, "leet": measure_leet}
WANDB_ROWS = {
    "runs_listed": ("every run listed", "s"),
    "first_chart": ("first run's loss drawn", "s"),
    "idle_cpu": ("idle CPU", "% core"),
    "tree_rss": ("process tree RSS", "MiB"),
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=20)
    parser.add_argument("--steps", type=int, default=50_000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--quiet-timeout", type=float, default=180.0)
    parser.add_argument(
        "--wandb-only",
        action="store_true",
        help="tracktui and leet on the same W&B offline runs only",
    )
    parser.add_argument(
        "--tools",
        default="tracktui,tensorboard,leet",
        help="which tools to measure, comma-separated (default: all)",
    )
    parser.add_argument("--tensorboard-child", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--wandb-run", nargs=3, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.tensorboard_child is not None:
        tensorboard_child(args.tensorboard_child)
        return
    if args.wandb_run is not None:
        run, steps, root = args.wandb_run
        _wandb_run(int(run), int(steps), Path(root))
        return
    if shutil.which("tmux") is None:
        sys.exit("tmux is needed to read the terminal UIs back")
    if args.wandb_only:
        size = (args.runs, args.steps)
        wandb_root = _generate_wandb(data_root(*size) / "wandb", *size)
        if wandb_root is None:
            sys.exit("W&B offline runs could not be written")
        formats: dict[str, Path | None] = {"tracktui": wandb_root, "leet": wandb_root}
        measures, rows = WANDB_MEASURES, WANDB_ROWS
    else:
        formats = generate(args.runs, args.steps)
        measures, rows = MEASURES, ROWS
    wanted = set(args.tools.split(","))
    measures = {tool: measure for tool, measure in measures.items() if tool in wanted}
    results: dict[str, list[Figures]] = {tool: [] for tool in measures}
    loads: dict[str, list[float]] = {tool: [] for tool in measures}
    for round_ in range(args.rounds):
        for tool, measure in measures.items():
            root = formats[tool]
            if root is None:
                continue
            loads[tool].append(wait_quiet(args.quiet_timeout))
            try:
                results[tool].append(measure(root, args.runs))
            except (OSError, TimeoutError, subprocess.CalledProcessError) as exc:
                print(f"{tool}, round {round_ + 1}: not measured ({exc})")
            loads[tool].append(os.getloadavg()[0])
    print_table(args, results, loads, rows)


def print_table(
    args: argparse.Namespace,
    results: dict[str, list[Figures]],
    loads: dict[str, list[float]],
    rows: dict[str, tuple[str, str]],
) -> None:
    def median(tool: str, row: str) -> float | None:
        values = [r[row] for r in results[tool] if row in r]
        return statistics.median(values) if values else None

    peers = [t for t in ("tensorboard", "leet") if results.get(t)]
    where = " (W&B offline runs, read by both)" if args.wandb_only else ""
    print(
        f"\n{args.runs} runs x {args.steps:,} steps x 2 metrics{where}, medians of "
        f"{args.rounds} interleaved rounds"
    )
    header = f"| {'':26} | {'tracktui':>9} |"
    header += "".join(f" {t:>11} | {'ratio':>5} |" for t in peers)
    print(header)
    print("|" + "|".join("-" * (len(c)) for c in header.split("|")[1:-1]) + "|")
    for row, (label, unit) in rows.items():
        ours = median("tracktui", row)
        line = f"| {label + ' (' + unit + ')':26} | {_cell(ours, row):>9} |"
        for peer in peers:
            theirs = median(peer, row)
            ratio = f"{ours / theirs:.2f}" if ours is not None and theirs else "-"
            line += f" {_cell(theirs, row):>11} | {ratio:>5} |"
        print(line)
    spans = ", ".join(
        f"{tool} {min(v):.2f}-{max(v):.2f}" for tool, v in loads.items() if v and results[tool]
    )
    print(f"load average (1 min) around each tool's measurements: {spans}")
    print("ratio: tracktui / peer (under 1: tracktui is better)")


def _cell(value: float | None, row: str) -> str:
    if value is None:
        return "-"
    if row == "tree_rss":
        return f"{value:.0f}"
    return f"{value:.3f}" if value < 0.1 else f"{value:.2f}"


if __name__ == "__main__":
    main()
