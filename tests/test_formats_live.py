"""Foreign formats while their writers write, and with damaged files.

Growth: CSV rows appended and Lightning's header rewrite, MLflow (SQLite store with a
writer in another process, file store appends), NePS configs appearing and finishing,
TensorBoard events appended by a live writer and a record arriving in halves. Damage:
malformed CSV rows, truncated YAML and JSON, corrupt and locked SQLite, a bad MLflow
metric line, a TensorBoard record failing its checksum; each is a note or a bad line on
its own run, and nothing else changes.
"""

from __future__ import annotations

import json
import math
import os
import shutil
import sqlite3
import struct
import subprocess
import sys
import time
from pathlib import Path
from unittest.mock import patch

import numpy as np
import pytest
from conftest import read_to_end

from tui.core import tail as tail_module
from tui.core.engine import Engine
from tui.core.formats import delimited
from tui.core.formats.csvlog import CsvSource
from tui.core.formats.dvclive import DvcliveSource
from tui.core.formats.sacred import SacredSource
from tui.core.store import Run, RunStore

FOREIGN = Path(__file__).resolve().parent.parent / "sample_runs" / "foreign"


class Live:
    """An Engine and a RunStore over one root, drained the way the app's reader does."""

    def __init__(self, root: Path) -> None:
        self.engine = Engine(root, watch="poll")
        self.store = RunStore()
        self.drain()

    def drain(self) -> None:
        self.engine.reconcile(walk_root=True)
        while True:
            keys, _ = self.engine.take_dirty()
            if not keys:
                return
            for batch in self.engine.read(keys):
                self.store.apply(batch)

    def run(self, key: str) -> Run:
        run = self.store.get(key)
        assert run is not None, f"{key} not among {sorted(self.store.runs)}"
        return run

    def named(self, name: str) -> Run:
        (run,) = [r for r in self.store if r.name == name]
        return run

    def close(self) -> None:
        self.engine.stop()


@pytest.fixture
def copy(tmp_path: Path):  # type: ignore[no-untyped-def]
    """Copy one sample folder into tmp_path and return its path."""

    def make(name: str) -> Path:
        target = tmp_path / name
        shutil.copytree(FOREIGN / name, target)
        return target

    return make


def values(run: Run, metric: str) -> list[float]:
    return [round(v, 6) for v in run.series[metric].array().tolist()]


def append(path: Path, data: bytes) -> None:
    with open(path, "ab") as handle:
        handle.write(data)


# CSV -------------------------------------------------------------------------------------------
def test_keras_csv_grows_row_by_row(copy) -> None:  # type: ignore[no-untyped-def]
    root = copy("csv_keras")
    log = root / "baseline" / "training.log"
    live = Live(root)
    run = live.run("baseline/training.log")
    assert run.series["loss"].count == 7
    append(log, b"7,0.9,0.37,0.75,0.85\r\n8,0.91,0.3")
    live.drain()
    assert values(run, "loss") == [1.38, 1.02, 0.81, 0.66, 0.55, 0.47, 0.41, 0.37]
    append(log, b"4,0.76,0.84\r\n")
    live.drain()
    assert values(run, "loss")[-1] == 0.34
    assert run.series["loss"].last_step == 8.0
    assert run.health.bad_lines == 0
    live.close()


def test_lightning_rewrite_with_new_columns_replaces_without_duplicates(tmp_path: Path) -> None:
    version = tmp_path / "logs" / "model" / "version_0"
    version.mkdir(parents=True)
    metrics = version / "metrics.csv"
    metrics.write_bytes(b"epoch,step,train_loss\r\n0,9,1.5\r\n0,19,1.2\r\n")
    live = Live(tmp_path)
    run = live.run("logs/model/version_0/metrics.csv")
    assert values(run, "train_loss") == [1.5, 1.2]
    # Lightning rewrites the whole file when a metric appears, then appends.
    metrics.write_bytes(b"epoch,step,train_loss,val_loss\r\n0,9,1.5,\r\n0,19,1.2,\r\n0,19,,1.4\r\n")
    live.drain()
    append(metrics, b"1,29,1.0,\r\n")
    live.drain()
    assert values(run, "train_loss") == [1.5, 1.2, 1.0]
    assert values(run, "val_loss") == [1.4]
    assert run.properties["columns"] == ["epoch", "step", "train_loss", "val_loss"]
    assert run.health.notes == [] and run.health.truncations == 0
    (version / "hparams.yaml").write_text("lr: 0.5\n")
    live.drain()
    assert run.config == {"lr": 0.5}
    live.close()


def test_malformed_csv_rows_are_bad_lines_of_that_run_only(copy) -> None:  # type: ignore[no-untyped-def]
    root = copy("csv_keras")
    live = Live(root)
    append(root / "baseline" / "training.log", b"7,0.9\r\n8,0.91,0.3,0.76,0.84\r\n")
    live.drain()
    run = live.run("baseline/training.log")
    assert run.health.bad_lines == 1
    assert list(run.health.samples) == [("training.log", 9, "2 fields where the header has 5")]
    assert values(run, "loss")[-1] == 0.3
    other = live.run("lr-0.3.csv")
    assert other.health.bad_lines == 0 and other.health.notes == []
    live.close()


CELLS = ["0.1", "-2.5e-07", "nan", "inf", "-inf", "12345678901234567890", "1e30", "-0.0", "3"]


def test_csv_all_number_body_keeps_exact_values_nan_and_waits_for_a_cut_line(
    tmp_path: Path,
) -> None:
    log = tmp_path / "training.log"
    rows = [f"{i},{CELLS[i % len(CELLS)]},{i * 0.1!r}" for i in range(300)]
    log.write_bytes(("epoch,loss,acc\r\n" + "\r\n".join(rows) + "\r\n").encode())
    source = CsvSource(tmp_path, "training.log", log, "keras")
    run = read_to_end(source)
    loss = run.series["loss"]
    expected = [float(CELLS[i % len(CELLS)]) for i in range(300)]
    assert run.steps.tolist() == list(range(300))
    assert np.array_equal(loss.array(), np.array(expected, dtype=np.float32), equal_nan=True)
    assert (loss.max, loss.min) == (1e30, -2.5e-07)  # summaries in float64; inf is non-finite
    assert loss.nonfinite == 3 * 300 // len(CELLS) and loss.first_nonfinite_step == 2.0
    assert run.series["acc"].last == 299 * 0.1
    append(log, b"300,0.5,0.")
    assert_cut_line_waits(source, log, 300, "acc")
    source.close()


def assert_cut_line_waits(source: CsvSource, log: Path, step: int, name: str) -> None:
    """The log ends in a line cut after ``0.``: nothing is read until the rest (``25``
    and a CRLF) comes, then the line is ``step`` with ``name`` = 0.25."""
    assert source.read() is None
    append(log, b"25\r\n")
    batch = source.read()
    assert batch is not None and batch.records is not None
    assert batch.records.steps.tolist() == [float(step)]
    assert batch.records.scalars[name][1].tolist() == [0.25]


def test_wide_crlf_csv_in_many_pieces_with_a_rewritten_line_and_a_cut_line(
    tmp_path: Path,
) -> None:
    """A wide Keras log (line-end markers, pieces, columns) with CRLF line ends: a line
    rewritten with a carriage return keeps what a terminal shows last (the whole chunk
    read line by line), later chunks are read in bulk, and a line cut by a read waits."""
    log = tmp_path / "training.log"
    rows = [f"{i},{i / 3!r},{CELLS[i % len(CELLS)]},{-i / 7!r},{i * 0.5}" for i in range(300)]
    rows[120] = "120,9,9,9,9\r120,0.5,0.25,0.125,2"  # rewritten before its line end
    log.write_bytes(("epoch,loss,acc,lr,val\r\n" + "\r\n".join(rows) + "\r\n").encode())
    source = CsvSource(tmp_path, "training.log", log, "keras")
    with patch.object(delimited, "_PIECE", 2048):
        store = RunStore()
        while True:
            batch = source.read(budget=16384)
            if batch is not None:
                store.apply(batch)
            if not source.more:
                break
        run = next(iter(store))
        expected = [float(CELLS[i % len(CELLS)]) for i in range(300)]
        expected[120] = 0.25
        acc = run.series["acc"].array()
        assert np.array_equal(acc, np.array(expected, dtype=np.float32), equal_nan=True)
        assert run.steps.tolist() == list(range(300))
        assert run.series["val"].array()[120] == 2.0 and run.health.bad_lines == 0
        later = "".join(f"{i},{i / 3!r},0.5,{-i / 7!r},1\r\n" for i in range(300, 700))
        append(log, later.encode() + b"700,0.5,0.5,0.5,0.")
        batch = source.read()
        assert batch is not None and batch.records is not None
        assert batch.records.steps.tolist() == [float(i) for i in range(300, 700)]
        lr = batch.records.scalars["lr"][1]
        assert lr.tolist() == [-i / 7 for i in range(300, 700)]  # float64, exactly float()
        assert_cut_line_waits(source, log, 700, "val")
    source.close()


def test_csv_damaged_rows_in_a_large_body_are_bad_lines_and_the_rest_is_read(
    tmp_path: Path,
) -> None:
    log = tmp_path / "metrics.csv"
    rows = [f"{i},{i / 7!r}" for i in range(200)]
    rows[50] = "50"  # short
    rows[120] = "120,oops"  # text in a number column
    log.write_text("step,loss\n" + "\n".join(rows) + "\n")
    source = CsvSource(tmp_path, "metrics.csv", log, "csv")
    run = read_to_end(source)
    assert list(run.health.samples) == [("metrics.csv", 52, "1 fields where the header has 2")]
    assert run.series["loss"].count == 198  # "oops" is text, kept apart from the numbers
    assert run.series["loss"].last == 199 / 7
    source.close()


def test_dvclive_tsv_body_in_bulk_with_timestamps_nan_and_a_bad_step(tmp_path: Path) -> None:
    folder = tmp_path / "dvclive"
    metrics = folder / "plots" / "metrics" / "train"
    metrics.mkdir(parents=True)
    (folder / "params.yaml").write_text("lr: 0.1\n")
    rows = [f"{1_700_000_000_000 + i}\t{i}\t{CELLS[i % len(CELLS)]}" for i in range(100)]
    (metrics / "loss.tsv").write_text("timestamp\tstep\tloss\n" + "\n".join(rows) + "\n")
    source = DvcliveSource(tmp_path, "dvclive", folder)
    run = read_to_end(source)
    loss = run.series["train/loss"]
    expected = [float(CELLS[i % len(CELLS)]) for i in range(100)]
    assert np.array_equal(loss.array(), np.array(expected, dtype=np.float32), equal_nan=True)
    assert run.steps.tolist() == list(range(100))
    assert run.times.tolist()[:2] == [1_700_000_000.0, 1_700_000_000.001]
    append(metrics / "loss.tsv", b"1700000000100\tnan\t0.5\n1700000000101\t101\t0.25\n")
    batch = source.read()
    assert batch is not None and batch.records is not None
    assert batch.bad_lines == (
        ("plots/metrics/train/loss.tsv", 102, "a row without a step and a number"),
    )
    assert batch.records.steps.tolist() == [101.0]
    source.close()


def test_dvclive_files_read_in_small_budgets_number_a_later_bad_row_exactly(
    tmp_path: Path,
) -> None:
    """Reads cut mid-line by small budgets, their rows parsed in bulk (which tells the tail
    how many lines it read, sparing it a count), keep every point and the line numbers."""
    folder = tmp_path / "dvclive"
    metrics = folder / "plots" / "metrics"
    metrics.mkdir(parents=True)
    (folder / "params.yaml").write_text("lr: 0.1\n")
    for name in ("acc", "loss"):
        rows = [f"{i}\t{i / 7!r}" for i in range(700)]
        (metrics / f"{name}.tsv").write_text(f"step\t{name}\n" + "\n".join(rows) + "\n")
    source = DvcliveSource(tmp_path, "dvclive", folder)
    store = RunStore()
    while True:
        batch = source.read(3001)
        if batch is not None:
            store.apply(batch)
        if not source.more:
            break
    (run,) = store
    for series in run.series.values():  # read apart, so not merged by step across reads
        assert [run.steps[i] for i in series.positions()] == list(range(700))
        assert series.array().tolist() == [np.float32(i / 7) for i in range(700)]
    append(metrics / "loss.tsv", b"700\t0.5\nseven\tbroken\n")
    batch = source.read()
    assert batch is not None and batch.bad_lines == (
        ("plots/metrics/loss.tsv", 703, "a row without a step and a number"),
    )
    source.close()


@pytest.mark.parametrize("budget", [4 * 1024 * 1024, 2000])
def test_dvclive_rows_merged_by_step_keep_every_point_as_row_by_row(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, budget: int
) -> None:
    """Files at the same steps, one ahead, at other steps, a step logged again, a file with
    times, a metric named like an x key; then the files behind catch up. Every metric as
    read row by row (no merging), in fewer records. A small budget cuts reads mid-file."""
    folder = tmp_path / "dvclive"
    metrics = folder / "plots" / "metrics"
    (metrics / "train").mkdir(parents=True)
    (metrics / "val").mkdir()
    (folder / "params.yaml").write_text("lr: 0.1\n")
    (folder / "metrics.json").write_text("{}")

    def rows(steps: list[int], offset: int) -> str:
        return "".join(f"{s}\t{CELLS[(s + offset) % len(CELLS)]}\n" for s in steps)

    same = list(range(300))
    files = {
        "train/loss": rows(same, 0),
        "train/acc": rows(same, 1),
        "lr": rows(list(range(320)), 2),  # ahead of the others
        "val/loss": rows(list(range(5, 300, 10)), 3),  # at steps of its own
        "epoch": rows(same, 4),
        "resumed": rows(list(range(100)) + list(range(50, 150)), 5),  # steps 50-99 twice
    }
    for name, body in files.items():
        (metrics / f"{name}.tsv").write_text(f"step\t{name.rsplit('/', 1)[-1]}\n{body}")
    timed = [f"{1_700_000_000_000 + 7 * s}\t{s}\t{s * 0.5}" for s in same]
    (metrics / "timed.tsv").write_text("timestamp\tstep\ttimed\n" + "\n".join(timed) + "\n")

    def read(source: DvcliveSource, store: RunStore) -> None:
        while True:
            batch = source.read(budget)
            if batch is not None:
                store.apply(batch)
            if not source.more:
                break

    sources = [DvcliveSource(tmp_path, "dvclive", folder) for _ in range(2)]
    stores = [RunStore(), RunStore()]
    for stage in range(3):
        if stage == 1:  # two files catch up, one further than the other
            append(metrics / "train" / "acc.tsv", rows(list(range(300, 320)), 1).encode())
            append(metrics / "train" / "loss.tsv", rows(list(range(300, 310)), 0).encode())
            os.utime(folder / "metrics.json", (1_750_000_000, 1_750_000_000))
        if stage == 2:  # others at steps of their own
            append(metrics / "val" / "loss.tsv", rows([305, 315], 3).encode())
            append(metrics / "epoch.tsv", rows(list(range(300, 305)), 4).encode())
        read(sources[0], stores[0])
        with monkeypatch.context() as patch:
            patch.setattr("tui.core.formats.dvclive.numeric_rows", lambda *args, **options: None)
            read(sources[1], stores[1])
        (bulk,), (by_row,) = stores
        assert len(bulk.steps) < len(by_row.steps)
        assert sorted(bulk.series) == sorted(by_row.series) == sorted([*files, "timed"])
        for name, series in bulk.series.items():
            other = by_row.series[name]
            for axis in ("step", "time"):
                assert bulk.x_values(series, axis).tolist() == by_row.x_values(other, axis).tolist()
            assert np.array_equal(series.array(), other.array(), equal_nan=True), name
            assert (series.count, series.nonfinite, series.first_nonfinite_step) == (
                other.count,
                other.nonfinite,
                other.first_nonfinite_step,
            )
            assert (series.min, series.min_step, series.max, series.max_step) == (
                other.min,
                other.min_step,
                other.max,
                other.max_step,
            )
            assert series.last_step == other.last_step
            assert series.last == other.last or (math.isnan(series.last) and math.isnan(other.last))
    assert bulk.series["train/acc"].count == bulk.series["lr"].count == 320
    for source in sources:
        source.close()


def test_sacred_metrics_merged_by_step_in_bulk(tmp_path: Path) -> None:
    folder = tmp_path / "1"
    folder.mkdir()
    stamp = "2026-01-01T09:00:0{}.000000"
    metrics = {
        "loss": {
            "steps": [0, 1, 2],
            "timestamps": [stamp.format(i) for i in (0, 1, 2)],
            "values": [1.0, None, 0.5],
        },
        "acc": {"steps": [2, 0], "timestamps": [stamp.format(3)], "values": [0.9, 0.1]},
    }
    (folder / "metrics.json").write_text(json.dumps(metrics))
    for name in ("run.json", "config.json"):
        (folder / name).write_text("{}")
    (folder / "cout.txt").write_text("")
    source = SacredSource(tmp_path, "1", folder)
    run = read_to_end(source)
    assert run.steps.tolist() == [0.0, 1.0, 2.0]
    assert run.times.tolist() == [1767258000.0, 1767258001.0, 1767258002.0]
    assert run.series["acc"].array().tolist() == pytest.approx([0.1, 0.9])
    assert list(run.series["acc"].index) == [0, 2]
    assert run.series["loss"].nonfinite == 1  # a value that is not a number is NaN
    source.close()


@pytest.mark.parametrize("layout", ["same steps", "different steps"])
def test_sacred_bulk_merge_equals_the_point_by_point_merge(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, layout: str
) -> None:
    """Earliest time per step, metrics out of order or missing times: as point by point."""
    folder = tmp_path / "1"
    folder.mkdir()
    for name in ("run.json", "config.json"):
        (folder / name).write_text("{}")
    (folder / "cout.txt").write_text("")
    steps = list(range(0, 400, 2))
    other = steps if layout == "same steps" else [s + 1 for s in steps[::3]][::-1]

    def stamps(count: int, offset: int) -> list[str]:
        return [
            f"2026-01-01T09:{(i + offset) // 60 % 60:02d}:{(i + offset) % 60:02d}.5"
            for i in range(count)
        ]

    metrics = {
        "loss": {
            "steps": steps,
            "timestamps": stamps(len(steps), 7),
            "values": [1 / (s + 1) for s in steps],
        },
        "acc": {
            "steps": other,
            "timestamps": stamps(len(other) - 5, 0),
            "values": [s * 0.25 for s in other],
        },
        "lr": {"steps": steps, "timestamps": stamps(len(steps), 3), "values": [0.1] * len(steps)},
    }
    (folder / "metrics.json").write_text(json.dumps(metrics))

    def read() -> Run:
        source = SacredSource(tmp_path, "1", folder)
        run = read_to_end(source)
        source.close()
        return run

    bulk = read()
    monkeypatch.setattr("tui.core.formats.sacred.bulk_records", lambda points: None)
    merged = read()
    assert bulk.steps.tolist() == merged.steps.tolist()
    assert bulk.times.tolist() == merged.times.tolist()
    assert len(bulk.steps) == len(set(steps) | set(other))
    for name in metrics:
        assert list(bulk.series[name].index) == list(merged.series[name].index), name
        assert bulk.series[name].array().tolist() == merged.series[name].array().tolist(), name


# MLflow ----------------------------------------------------------------------------------------
WRITER = r"""
import sqlite3, sys, time
db, run_id, count = sys.argv[1], sys.argv[2], int(sys.argv[3])
conn = sqlite3.connect(db, timeout=30)
for i in range(count):
    with conn:  # one transaction per logged point, as MLflow commits each log call
        conn.execute(
            "INSERT INTO metrics (key, value, timestamp, run_uuid, step, is_nan)"
            " VALUES (?, ?, ?, ?, ?, 0)",
            ("loss", 1.0 / (i + 2), 1767268804000 + i, run_id, 3 + i),
        )
    time.sleep(0.002)
with conn:
    conn.execute(
        "UPDATE runs SET status = 'FINISHED', end_time = ? WHERE run_uuid = ?",
        (1767268900000, run_id),
    )
"""


def test_mlflow_sqlite_read_while_another_process_writes(copy) -> None:  # type: ignore[no-untyped-def]
    root = copy("mlflow_sqlite")
    db = root / "mlflow.db"
    live = Live(root)
    run = live.named("lr0.03-live")
    run_id = run.key.split("#", 1)[1]
    count = 300
    writer = subprocess.Popen([sys.executable, "-c", WRITER, str(db), run_id, str(count)])
    try:
        while writer.poll() is None:
            live.drain()
            time.sleep(0.01)
    finally:
        writer.wait(timeout=60)
    assert writer.returncode == 0
    live.drain()
    loss = run.series["loss"]
    assert loss.count == 3 + count
    assert loss.last == pytest.approx(1.0 / (count + 1)) and loss.last_step == 2.0 + count
    assert run.x_values(loss).tolist() == [float(s) for s in range(3 + count)]
    assert run.meta["status"] == "finished"
    assert all("cannot be read" not in note for note in run.health.notes)
    live.close()


def test_mlflow_sqlite_with_the_real_client(copy) -> None:  # type: ignore[no-untyped-def]
    pytest.importorskip("sqlalchemy")
    mlflow_tracking = pytest.importorskip("mlflow.tracking")
    root = copy("mlflow_sqlite")
    live = Live(root)
    run = live.named("lr0.03-live")
    run_id = run.key.split("#", 1)[1]
    client = mlflow_tracking.MlflowClient(tracking_uri=f"sqlite:///{root / 'mlflow.db'}")
    client.log_metric(run_id, "loss", 1.1, timestamp=1767268805000, step=3)
    client.log_param(run_id, "warmup", "5")
    client.set_tag(run_id, "stage", "final")
    live.drain()
    assert values(run, "loss") == [2.3, 1.7, 1.3, 1.1]
    assert run.config["warmup"] == 5
    assert run.tags["stage"] == "final"
    new = client.create_run(client.get_run(run_id).info.experiment_id, run_name="late")
    client.log_metric(new.info.run_id, "loss", float("nan"), step=0)
    live.drain()
    late = live.named("late")
    assert late.series["loss"].nonfinite == 1
    live.close()


def test_locked_and_corrupt_sqlite_are_notes(copy, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    root = copy("mlflow_sqlite")
    db = root / "mlflow.db"
    live = Live(root)
    run = live.named("lr0.03-live")
    run_id = run.key.split("#", 1)[1]
    holder = sqlite3.connect(db, isolation_level=None)
    holder.execute("BEGIN EXCLUSIVE")
    holder.execute(
        "INSERT INTO metrics (key, value, timestamp, run_uuid, step, is_nan)"
        " VALUES ('loss', 0.9, 1767268804000, ?, 3, 0)",
        (run_id,),
    )
    live.drain()
    assert run.health.notes == ["mlflow.db is locked by a writer; will retry"]
    assert run.series["loss"].count == 3
    holder.execute("COMMIT")
    holder.close()
    live.drain()
    assert values(run, "loss") == [2.3, 1.7, 1.3, 0.9]
    live.close()

    broken = tmp_path / "broken"
    broken.mkdir()
    (broken / "mlflow.db").write_bytes(b"this is not a database" * 100)
    shutil.copytree(FOREIGN / "csv_keras", broken / "csv_keras")
    live = Live(broken)
    store_run = live.run("mlflow.db")
    assert store_run.format == "mlflow"
    (note,) = store_run.health.notes
    assert note.startswith("mlflow.db cannot be read as an MLflow database")
    assert live.run("csv_keras/baseline/training.log").series["loss"].count == 7
    live.close()


def test_mlflow_file_store_grows_and_reports_damage(copy) -> None:  # type: ignore[no-untyped-def]
    root = copy("mlflow_file")
    live = Live(root)
    run = live.named("lr0.01")
    run_dir = root / run.key
    append(run_dir / "metrics" / "loss", b"1767265209000 0.85 8\n1767265210000 oops 9\n")
    (run_dir / "metrics" / "lr").write_text("1767265209000 0.001 8\n")
    live.drain()
    assert values(run, "loss")[-1] == 0.85
    assert values(run, "lr") == [0.001]
    assert list(run.health.samples) == [("metrics/loss", 10, "not a number")]
    meta = run_dir / "meta.yaml"
    text = meta.read_text()
    meta.write_text(text.replace("status: 3", "status: 5"))
    live.drain()
    assert run.meta["status"] == "killed"
    meta.write_text(text[: text.index("run_name")] + "run_name: [unclosed\n")
    live.drain()
    assert run.meta["status"] == "killed"  # the last readable metadata stays
    assert run.health.notes[-1].startswith("meta.yaml: invalid YAML")
    for other in live.store:
        if other is not run:
            assert other.health.notes == [] and other.health.bad_lines == 0
    live.close()


# NePS ------------------------------------------------------------------------------------------
def write_trial(folder: Path, n: int, state: str, report: dict | None = None) -> None:
    folder.mkdir(exist_ok=True)
    (folder / "config.yaml").write_text("learning_rate: 0.002\noptimizer: adam\nnum_layers: 3\n")
    metadata = {"id": str(n), "state": state, "time_sampled": 1767270000.0 + n}
    if report is not None:
        metadata["time_end"] = 1767270100.0 + n
        (folder / "report.yaml").write_text(json.dumps(report))  # JSON is YAML too
    (folder / "metadata.json").write_text(json.dumps(metadata))


def test_neps_configs_appear_and_finish(copy) -> None:  # type: ignore[no-untyped-def]
    root = copy("neps_current")
    live = Live(root)
    search = live.run(".")
    assert search.properties["configs"] == 7
    folder = root / "configs" / "config_8"
    write_trial(folder, 8, "pending")
    live.drain()
    assert live.run("configs/config_8").meta["status"] == "pending"
    assert search.properties["configs"] == 8
    write_trial(folder, 8, "evaluating")
    live.drain()
    assert live.run("configs/config_8").meta["status"] == "running"
    report = {"objective_to_minimize": 0.2, "cost": 4.0, "learning_curve": [0.5, 0.2]}
    write_trial(folder, 8, "success", report)
    live.drain()
    run = live.run("configs/config_8")
    assert run.meta["status"] == "finished"
    assert values(run, "learning_curve") == [0.5, 0.2]
    assert values(run, "objective_to_minimize") == [0.2]
    assert values(search, "best_loss")[-1] == 0.2
    assert search.latest("best_config") == "config_8"
    assert search.series["loss"].count == 5
    assert search.properties["configs_finished"] == 5
    live.close()


def test_truncated_neps_yaml_is_a_note_on_that_config(copy) -> None:  # type: ignore[no-untyped-def]
    root = copy("neps_current")
    live = Live(root)
    report = root / "configs" / "config_2" / "report.yaml"
    text = report.read_text()
    report.write_text(text[: text.index("learning_curve")] + "learning_curve: [0.85, 0.6\n")
    live.drain()
    run = live.run("configs/config_2")
    (note,) = run.health.notes
    assert note.startswith("report.yaml: invalid YAML")
    assert values(run, "learning_curve") == [0.85, 0.6, 0.44, 0.35, 0.31]  # kept
    assert run.meta["status"] == "finished"
    search = live.run(".")
    assert values(search, "best_loss")[-1] == 0.28
    for other in live.store:
        if other is not run:
            assert other.health.notes == [], other.key
    live.close()

    fresh = Live(root)  # damaged from the start: the config still shows, with the note
    run = fresh.run("configs/config_2")
    assert run.health.notes[0].startswith("report.yaml: invalid YAML")
    assert run.config["num_layers"] == 4
    fresh.close()


# Gymnos ----------------------------------------------------------------------------------------
def test_gymnos_log_grows_and_truncated_metrics_is_a_note(copy) -> None:  # type: ignore[no-untyped-def]
    root = copy("gymnos")
    live = Live(root)
    key = "trainings/boston_housing/executions/09-30-00__01-01-2026"
    run = live.run(key)
    folder = root / key
    append(folder / "execution.log", b"2026-01-01 09:31:00,100 - gymnosd - INFO - Main - retry\n")
    (folder / "metrics.json").write_text('{"metrics": {"loss": [1.0, 0.5')
    live.drain()
    assert len(run.log) == 4
    assert run.health.notes[0].startswith("metrics.json: invalid JSON")
    assert run.series == {}
    (folder / "metrics.json").write_text('{"metrics": {"loss": [1.0, 0.5]}}')
    live.drain()
    assert values(run, "loss") == [1.0, 0.5]
    assert run.meta["status"] == "finished"
    live.close()


# TensorBoard -----------------------------------------------------------------------------------
def records_of(path: Path) -> list[bytes]:
    """Split an event file into its framed records (test-side, to cut them up)."""
    data = path.read_bytes()
    records, offset = [], 0
    while offset < len(data):
        (length,) = struct.unpack("<Q", data[offset : offset + 8])
        records.append(data[offset : offset + length + 16])
        offset += length + 16
    return records


def scalar_event(tag: str, value: float, step: int) -> object:
    """An Event holding one scalar, as torch.utils.tensorboard's writer builds it."""
    from tensorboard.compat.proto import event_pb2, summary_pb2

    summary = summary_pb2.Summary(value=[summary_pb2.Summary.Value(tag=tag, simple_value=value)])
    return event_pb2.Event(wall_time=1767258000.0 + step, step=step, summary=summary)


def test_tensorboard_events_appended_by_a_live_writer(tmp_path: Path) -> None:
    pytest.importorskip("tensorboard")
    from tensorboard.summary.writer.event_file_writer import EventFileWriter

    writer = EventFileWriter(str(tmp_path / "live"))
    for step in range(3):
        writer.add_event(scalar_event("loss", 1.0 / (step + 1), step))
    writer.flush()
    live = Live(tmp_path)
    run = live.run("live")
    assert values(run, "loss") == [1.0, 0.5, 0.333333]
    for step in range(3, 6):
        writer.add_event(scalar_event("loss", 1.0 / (step + 1), step))
    writer.flush()
    live.drain()
    assert values(run, "loss") == [1.0, 0.5, 0.333333, 0.25, 0.2, 0.166667]
    assert run.first_time == 1767258000.0
    writer.close()
    assert run.health.notes == []
    live.close()


def test_tensorboard_half_written_record(tmp_path: Path, copy) -> None:  # type: ignore[no-untyped-def]
    pytest.importorskip("tensorboard")
    source = next((copy("tensorboard") / "run-lr0.01").glob("events.out.tfevents.*"))
    records = records_of(source)
    target = tmp_path / "growing"
    target.mkdir()
    events = target / "events.out.tfevents.1.test"
    events.write_bytes(b"".join(records[:2]))  # file_version, then the first loss
    live = Live(target)
    run = live.run(".")
    assert values(run, "loss") == [2.0]
    half = len(records[2]) // 2
    append(events, records[2][:half])
    live.drain()
    assert run.health.notes == []  # a writer may be mid-record: wait
    old = time.time() - 3600
    os.utime(events, (old, old))
    live.drain()
    assert run.health.notes == [
        f"{events.name}: incomplete final record at byte {len(records[0]) + len(records[1]):,}"
        " (writer stopped mid-record?)"
    ]
    append(events, records[2][half:] + b"".join(records[3:]))
    live.drain()
    assert run.series["loss"].count == 10
    assert run.series["acc/train"].count == 10
    live.close()


def test_tensorboard_corrupt_record_is_a_note_and_keeps_what_came_before(
    tmp_path: Path, copy
) -> None:  # type: ignore[no-untyped-def]
    pytest.importorskip("tensorboard")
    samples = copy("tensorboard")
    source = next((samples / "run-lr0.01").glob("events.out.tfevents.*"))
    records = records_of(source)
    damaged = bytearray(records[5])
    damaged[14] ^= 0xFF  # inside the event data: its checksum no longer matches
    source.write_bytes(b"".join(records[:5]) + bytes(damaged) + b"".join(records[6:]))
    live = Live(samples)
    live.drain()  # a suspect record is confirmed on a later read
    run = live.run("run-lr0.01")
    offset = sum(len(r) for r in records[:5])
    assert run.health.notes == [
        f"{source.name}: damaged record at byte {offset:,} (checksum mismatch);"
        " the rest of this file is not read"
    ]
    assert run.series["loss"].count == 2
    other = live.run("run-lr0.1")
    assert other.health.notes == [] and other.series["loss"].count == 9
    live.close()


def test_incomplete_after_is_the_shared_threshold() -> None:
    assert tail_module.INCOMPLETE_AFTER == 30.0


def test_tensorboard_file_rewritten_shorter_starts_the_run_over(copy) -> None:  # type: ignore[no-untyped-def]
    pytest.importorskip("tensorboard")
    samples = copy("tensorboard")
    source = next((samples / "run-lr0.01").glob("events.out.tfevents.*"))
    records = records_of(source)
    live = Live(samples)
    run = live.run("run-lr0.01")
    assert run.series["loss"].count == 10
    source.write_bytes(b"".join(records[:5]))
    live.drain()
    assert values(run, "loss") == [2.0, 1.6]
    assert run.health.truncations == 1
    live.close()
