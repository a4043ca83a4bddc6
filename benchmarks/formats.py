"""Read time per million points for each foreign format, next to the format's own reader.

One run writes a file of each format with its real library (or in its exact layout where
the library is slow to write that much), then times, median of ``--repeat`` reads:

* ours: the format's tracktui source read to its end into a RunStore (framing, decoding,
  columnar storage and summaries);
* theirs: the format's own reader doing less (only parsing, no storage): TensorBoard's
  ``EventAccumulator``; for W&B, wandb's generated protobuf classes (``Record``, upb) over
  the same LevelDB framing plus ``json.loads`` of each value (wandb ships no Python reader
  of its own any more: its readers are Go); pandas for DVCLive's TSV files and Keras CSV;
  ``json.load`` for Sacred's ``metrics.json`` and the Trainer's ``trainer_state.json``
  (twice: as is, and with a ``grad_norm`` that is NaN every fourth step, which
  ``json.dumps`` spells as a bare ``NaN``).

Figures are seconds per 1,000,000 points (a point is one value of one metric at one step).
Ours and theirs are timed in turn within each repeat, so a shared machine's changing load
weighs on both alike; compare ratios, and run it more than once.

    python benchmarks/formats.py [--points 200000] [--repeat 3] [--formats csv,tsv]

``--formats`` keeps only the rows whose format name holds one of the given words (case
does not matter), and writes only their files.

Needs the test extra (wandb, tensorboard, tensorboardX) and pandas.
"""

from __future__ import annotations

import argparse
import csv
import json
import math
import os
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from tui.core.formats.base import Source
from tui.core.formats.csvlog import CsvSource
from tui.core.formats.dvclive import DvcliveSource
from tui.core.formats.huggingface import TrainerSource
from tui.core.formats.sacred import SacredSource
from tui.core.formats.tensorboard import TensorBoardSource
from tui.core.formats.wandb import WandbSource, transaction_log
from tui.core.formats.wandb_log import FILE_HEADER, split
from tui.core.store import RunStore

METRICS = 10


def read_ours(make: Callable[[], Source]) -> int:
    """Read a fresh source to its end; the number of points stored."""
    source = make()
    store = RunStore()
    while True:
        batch = source.read()
        if batch is not None:
            store.apply(batch)
        if not source.more:
            break
    source.close()
    return sum(s.count for run in store for s in run.series.values())


def timed(functions: list[Callable[[], Any]], repeat: int) -> list[float]:
    """The median time of each function, run in turn ``repeat`` times: alternated, so a
    change of load on a shared machine weighs on each alike."""
    times: list[list[float]] = [[] for _ in functions]
    for _ in range(repeat):
        for function, kept in zip(functions, times):
            started = time.perf_counter()
            function()
            kept.append(time.perf_counter() - started)
    return [statistics.median(kept) for kept in times]


# Writers ----------------------------------------------------------------------------------------
def write_tensorboard(folder: Path, rows: int) -> Path:
    from tensorboardX import SummaryWriter

    writer = SummaryWriter(str(folder / "tb"), flush_secs=3600, max_queue=100_000)
    for step in range(rows):
        for k in range(METRICS):
            writer.add_scalar(f"m{k}", math.sin(step * 0.01 + k), step, walltime=1e9 + step)
    writer.close()
    return folder / "tb"


def write_wandb(folder: Path, rows: int) -> Path:
    os.environ.update(WANDB_MODE="offline", WANDB_SILENT="true")
    import wandb

    run = wandb.init(
        project="bench", dir=str(folder), settings=wandb.Settings(x_disable_stats=True)
    )
    for step in range(rows):
        run.log({f"m{k}": math.sin(step * 0.01 + k) for k in range(METRICS)}, step=step)
    run.finish()
    return next((folder / "wandb").glob("offline-run-*"))


def write_dvclive(folder: Path, rows: int) -> Path:
    """DVCLive's exact TSV layout (its per-call writes would take minutes at this size)."""
    target = folder / "dvclive"
    metrics = target / "plots" / "metrics"
    metrics.mkdir(parents=True)
    for k in range(METRICS):
        lines = [f"step\tm{k}\n"] + [f"{s}\t{math.sin(s * 0.01 + k)}\n" for s in range(rows)]
        (metrics / f"m{k}.tsv").write_text("".join(lines))
    (target / "params.yaml").write_text("lr: 0.1\n")
    (target / "metrics.json").write_text("{}")
    return target


def write_keras(folder: Path, rows: int) -> Path:
    path = folder / "training.log"
    with open(path, "w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["epoch", *(f"m{k}" for k in range(METRICS))])
        for step in range(rows):
            writer.writerow([step, *(math.sin(step * 0.01 + k) for k in range(METRICS))])
    return path


def write_sacred(folder: Path, rows: int) -> Path:
    """Sacred's exact ``metrics.json`` shape (the observer rewrites it whole each beat)."""
    target = folder / "sacred" / "1"
    target.mkdir(parents=True)
    stamp = "2026-01-01T09:00:00.000000"
    metrics = {
        f"m{k}": {
            "steps": list(range(rows)),
            "timestamps": [stamp] * rows,
            "values": [math.sin(s * 0.01 + k) for s in range(rows)],
        }
        for k in range(METRICS)
    }
    (target / "metrics.json").write_text(json.dumps(metrics))
    (target / "run.json").write_text(json.dumps({"status": "COMPLETED"}))
    (target / "config.json").write_text("{}")
    (target / "cout.txt").write_text("")
    return target


def write_trainer(folder: Path, rows: int, nan_every: int = 0) -> Path:
    """The Trainer's state; with ``nan_every``, the last metric is a ``grad_norm`` that
    overflows to NaN on every ``nan_every``-th step (fp16 training skipping steps), which
    ``json.dumps`` writes as a bare ``NaN``."""
    target = folder / ("trainer-nan" if nan_every else "trainer")
    target.mkdir()
    history = [
        {
            "step": s,
            "epoch": s / 100,
            **{f"m{k}": math.sin(s * 0.01 + k) for k in range(METRICS - 2)},
            "grad_norm": math.nan if nan_every and s % nan_every == 0 else math.cos(s * 0.01),
        }
        for s in range(rows)
    ]
    state = {"global_step": rows, "max_steps": rows, "log_history": history}
    (target / "trainer_state.json").write_text(json.dumps(state))
    return target


# Their readers ----------------------------------------------------------------------------------
def their_tensorboard(folder: Path) -> None:
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    accumulator = EventAccumulator(str(folder), size_guidance={"scalars": 0})
    accumulator.Reload()
    for tag in accumulator.Tags()["scalars"]:
        accumulator.Scalars(tag)


def their_wandb(folder: Path) -> None:
    from wandb.proto import wandb_internal_pb2

    name = transaction_log(folder)
    assert name is not None
    data = (folder / name).read_bytes()
    records, _, _, _ = split(data[len(FILE_HEADER) :], len(FILE_HEADER))
    values = []
    for raw in records:
        record = wandb_internal_pb2.Record()
        record.ParseFromString(raw)
        if record.WhichOneof("record_type") == "history":
            for item in record.history.item:
                values.append((tuple(item.nested_key) or item.key, json.loads(item.value_json)))


def their_pandas_tsv(folder: Path) -> None:
    import pandas

    for path in sorted((folder / "plots" / "metrics").glob("*.tsv")):
        pandas.read_csv(path, sep="\t")


def their_pandas_csv(path: Path) -> None:
    import pandas

    pandas.read_csv(path)


def their_json(path: Path) -> None:
    with open(path) as handle:
        json.load(handle)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--points", type=int, default=200_000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument(
        "--formats",
        default="",
        help="comma-separated words; only the formats whose name holds one (e.g. csv,tsv)",
    )
    options = parser.parse_args()
    words = [w.strip().lower() for w in options.formats.split(",") if w.strip()]

    def wanted(name: str) -> bool:
        return not words or any(w in name.lower() for w in words)

    rows = options.points // METRICS
    points = rows * METRICS
    root = Path(tempfile.mkdtemp(prefix="tracktui-formats-"))
    print(f"writing {points:,} points per format ({rows:,} steps x {METRICS} metrics)...")
    skipped = root / "skipped"
    tb = write_tensorboard(root, rows) if wanted("TensorBoard") else skipped
    wb = write_wandb(root, rows) if wanted("W&B (.wandb)") else skipped
    dv = write_dvclive(root, rows) if wanted("DVCLive (TSV)") else skipped
    keras = write_keras(root, rows) if wanted("Keras CSV") else skipped
    sacred = write_sacred(root, rows) if wanted("Sacred (metrics.json)") else skipped
    trainer = write_trainer(root, rows) if wanted("HF trainer_state.json") else skipped
    nans = write_trainer(root, rows, 4) if wanted("HF trainer_state NaN") else skipped
    log = (transaction_log(wb) or "") if wb is not skipped else ""
    cases: list[tuple[str, str, Callable[[], Source], Callable[[], None]]] = [
        (
            "TensorBoard",
            "EventAccumulator",
            lambda: TensorBoardSource(root, "tb", tb),
            lambda: their_tensorboard(tb),
        ),
        (
            "W&B (.wandb)",
            "wandb protobuf classes",
            lambda: WandbSource(root, "wb", wb, log),
            lambda: their_wandb(wb),
        ),
        (
            "DVCLive (TSV)",
            "pandas.read_csv",
            lambda: DvcliveSource(root, "dv", dv),
            lambda: their_pandas_tsv(dv),
        ),
        (
            "Keras CSV",
            "pandas.read_csv",
            lambda: CsvSource(root, "csv", keras, "keras"),
            lambda: their_pandas_csv(keras),
        ),
        (
            "Sacred (metrics.json)",
            "json.load",
            lambda: SacredSource(root, "sacred", sacred),
            lambda: their_json(sacred / "metrics.json"),
        ),
        (
            "HF trainer_state.json",
            "json.load",
            lambda: TrainerSource(root, "hf", trainer),
            lambda: their_json(trainer / "trainer_state.json"),
        ),
        (
            "HF trainer_state NaN",
            "json.load",
            lambda: TrainerSource(root, "hf-nan", nans),
            lambda: their_json(nans / "trainer_state.json"),
        ),
    ]
    scale = 1_000_000 / points
    print(f"\nseconds per 1M points, median of {options.repeat}")
    print(f"{'format':<24}{'ours':>8}  {'their reader':<24}{'theirs':>8}{'ratio':>8}")
    for name, reader, ours, theirs in cases:
        if not wanted(name):
            continue
        count = read_ours(ours)
        mine, other = (
            t * scale for t in timed([lambda ours=ours: read_ours(ours), theirs], options.repeat)
        )
        note = "" if count >= points * 0.9 else f"  (read {count:,} points)"
        print(f"{name:<24}{mine:>8.3f}  {reader:<24}{other:>8.3f}{other / mine:>7.2f}x{note}")


if __name__ == "__main__":
    main()
