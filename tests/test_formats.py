"""Foreign formats read from the committed samples (sample_runs/foreign/) through the Engine.

Every test copies the samples into tmp_path first; values asserted are the ones
``sample_runs/make_foreign.py`` writes.
"""

from __future__ import annotations

import math
import os
import pickle
import re
import shutil
import sys
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
from conftest import load

from tui.core.discover import walk
from tui.core.formats import default_adapters
from tui.core.shapes import Bar
from tui.core.store import Run, RunStore
from tui.core.timefmt import utc_iso

FOREIGN = Path(__file__).resolve().parent.parent / "sample_runs" / "foreign"
BASE = 1767258000.0
FORBIDDEN = re.compile(r"[\x00-\x08\x0a-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069\u200e\u200f]")


@pytest.fixture
def foreign(tmp_path: Path) -> Path:
    """A private copy of sample_runs/foreign/."""
    target = tmp_path / "foreign"
    shutil.copytree(FOREIGN, target)
    return target


def run_of(store: RunStore, key: str) -> Run:
    run = store.get(key)
    assert run is not None, f"{key} not found among {sorted(store.runs)}"
    return run


def by_name(store: RunStore, name: str) -> Run:
    found = [r for r in store if r.name == name]
    assert len(found) == 1, f"{name}: {[r.name for r in store]}"
    return found[0]


def values(run: Run, metric: str) -> list[float]:
    return [round(v, 6) for v in run.series[metric].array().tolist()]


def steps(run: Run, metric: str) -> list[float]:
    return run.x_values(run.series[metric]).tolist()


def summary(run: Run, metric: str) -> tuple[Any, ...]:
    s = run.series[metric]
    return (round(s.last, 6), s.last_step, round(s.min, 6), s.min_step, round(s.max, 6), s.count)


def iso(seconds: float) -> str:
    return utc_iso(seconds)


# CSV -----------------------------------------------------------------------------------------
def test_keras_csvlogger_file_is_a_run_with_epochs_as_x(foreign: Path) -> None:
    store = load(foreign / "csv_keras")
    run = run_of(store, "baseline/training.log")
    assert run.format == "csv"
    assert run.name == "baseline"
    assert run.properties["logger"] == "keras"
    assert run.properties["columns"] == ["epoch", "accuracy", "loss", "val_accuracy", "val_loss"]
    assert summary(run, "loss") == (0.41, 6.0, 0.41, 6.0, 1.38, 7)
    assert steps(run, "loss") == [0, 1, 2, 3, 4, 5, 6]
    val = run.series["val_loss"]
    # NA after the early stop is no point; nan is a point that counts as non-finite.
    assert (val.count, val.nonfinite, val.first_nonfinite_step) == (6, 1, 4.0)
    assert summary(run, "val_loss")[:5] == (0.9, 5.0, 0.88, 3.0, 1.31)
    assert run.series["val_accuracy"].count == 6
    assert "epoch" not in run.series
    assert run.health.bad_lines == 0 and run.health.notes == []


def test_keras_list_values_become_vectors(foreign: Path) -> None:
    run = run_of(load(foreign / "csv_keras"), "lr-0.3.csv")
    assert run.name == "lr-0.3"
    assert run.latest("per_class_recall") == (0.8, 0.85, 0.9)
    assert values(run, "loss") == [1.2, 0.95, 0.7, 0.45]


def test_lightning_metrics_csv_with_sparse_columns_and_hparams(foreign: Path) -> None:
    store = load(foreign / "lightning")
    run = run_of(store, "lightning_logs/version_0/metrics.csv")
    assert run.name == "lightning_logs/version_0"
    assert run.properties["logger"] == "lightning"
    assert run.config == {
        "learning_rate": 0.001,
        "batch_size": 32,
        "hidden_dim": 128,
        "optimizer": "adam",
    }
    assert run.series["train_loss"].count == 12
    assert steps(run, "train_loss")[:5] == [9, 19, 29, 39, 49]
    assert values(run, "val_loss") == [1.1, 0.9, 0.7]
    assert steps(run, "val_loss") == [39, 79, 119]
    assert summary(run, "val_acc")[:2] == (0.8, 119.0)
    # step is the x axis; epoch stays a series of its own
    assert run.series["epoch"].max == 2.0
    assert run.last_step == 119.0


# MLflow ----------------------------------------------------------------------------------------
def check_mlflow_runs(store: RunStore) -> None:
    """The three runs both MLflow stores share."""
    run = by_name(store, "lr0.1")
    assert run.format == "mlflow"
    assert run.meta["status"] == "finished"
    assert run.meta["experiment"] == "mnist"
    assert run.config == {"lr": 0.1, "batch_size": 64, "optimizer": "sgd"}
    assert run.tags == {"team": "vision", "stage": "baseline"}
    assert run.properties["mlflow.runName"] == "lr0.1"
    assert run.meta["started_at"] == iso(BASE)
    assert run.meta["ended_at"] == iso(BASE + 12)
    assert summary(run, "loss") == (0.59, 9.0, 0.59, 9.0, 2.3, 10)
    assert values(run, "val/accuracy") == [0.61, 0.74, 0.8, 0.83, 0.84]
    assert steps(run, "val/accuracy") == [1, 3, 5, 7, 9]
    assert run.first_time == BASE + 0.5
    # loss and val/accuracy logged together share a record: 10 steps + epoch_time_s
    assert len(run.steps) == 11

    failed = by_name(store, "lr1.0")
    assert failed.meta["status"] == "failed"
    loss = failed.series["loss"]
    assert (loss.count, loss.nonfinite, loss.first_nonfinite_step) == (6, 2, 4.0)
    assert math.isinf(loss.last) and loss.last > 0 and loss.last_step == 5.0
    assert (loss.max, loss.max_step) == (45.0, 3.0)

    other = by_name(store, "lr0.01")
    assert other.config["optimizer"] == "adam"
    assert summary(other, "loss")[:2] == (0.88, 7.0)


def test_mlflow_file_store(foreign: Path) -> None:
    store = load(foreign / "mlflow_file")
    assert len(store) == 3
    check_mlflow_runs(store)
    run = by_name(store, "lr0.1")
    assert re.fullmatch(r"mlruns/\d+/[0-9a-f]{32}", run.key)
    assert run.media == ("model_summary.txt",)


def test_mlflow_sqlite_store(foreign: Path) -> None:
    db = foreign / "mlflow_sqlite" / "mlflow.db"
    before = db.read_bytes()
    store = load(foreign / "mlflow_sqlite")
    assert len(store) == 4
    check_mlflow_runs(store)
    live = by_name(store, "lr0.03-live")
    assert re.fullmatch(r"mlflow\.db#[0-9a-f]{32}", live.key)
    assert live.path == "mlflow.db"
    assert live.meta["status"] == "running"
    assert "ended_at" not in live.meta
    assert values(live, "loss") == [2.3, 1.7, 1.3]
    assert db.read_bytes() == before
    assert sorted(p.name for p in db.parent.iterdir()) == ["mlflow.db"]


# TensorBoard ------------------------------------------------------------------------------------
def test_tensorboard_scalars_text_and_hparams(foreign: Path) -> None:
    store = load(foreign / "tensorboard")
    run = run_of(store, "run-lr0.01")
    assert run.format == "tensorboard"
    assert run.config == {"lr": 0.01, "optimizer": "adam", "layers": 3, "batch_norm": True}
    loss = run.series["loss"]
    assert loss.count == 10 and loss.last_step == 9.0
    assert loss.last == pytest.approx(round(2.0 * 0.8**9, 6), rel=1e-6)
    assert loss.max == pytest.approx(2.0) and loss.max_step == 0.0
    assert steps(run, "acc/val") == [2, 5, 8]
    assert run.latest("notes/text_summary") == "baseline run, lr 0.01"
    assert run.first_time == BASE
    assert run.health.notes == []

    restarted = run_of(store, "run-lr0.1")
    assert restarted.properties["event_files"] == 2
    loss = restarted.series["loss"]
    assert (loss.count, loss.nonfinite, loss.first_nonfinite_step) == (9, 2, 7.0)
    assert (loss.max, loss.max_step) == (310.0, 6.0)
    assert steps(restarted, "loss") == list(range(9))


def test_tensorboard_is_read_without_the_tensorboard_package(
    foreign: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name in [m for m in sys.modules if m.split(".")[0] in ("tensorboard", "google")]:
        monkeypatch.setitem(sys.modules, name, None)
    monkeypatch.setitem(sys.modules, "tensorboard", None)
    monkeypatch.setitem(sys.modules, "google.protobuf", None)
    store = load(foreign / "tensorboard")
    assert sorted(store.runs) == ["run-lr0.01", "run-lr0.1"]
    run = run_of(store, "run-lr0.01")
    assert run.series["loss"].count == 10
    assert run.config["optimizer"] == "adam"
    assert all(run.health.notes == [] for run in store)


# NePS -------------------------------------------------------------------------------------------
def test_neps_current_layout(foreign: Path) -> None:
    store = load(foreign / "neps_current")
    keys = sorted(k for k in store.runs if k.startswith("configs/"))
    assert keys == [f"configs/config_{n}" for n in range(1, 8)]
    for key in keys:
        assert run_of(store, key).group == "."

    first = run_of(store, "configs/config_1")
    assert first.format == "neps"
    assert first.meta["status"] == "finished"
    assert first.config == {"learning_rate": 0.01, "optimizer": "adam", "num_layers": 2}
    assert values(first, "learning_curve") == [0.9, 0.7, 0.55, 0.48, 0.42]
    assert summary(first, "objective_to_minimize")[:2] == (0.42, 4.0)
    assert values(first, "cost") == [12.5]
    assert values(first, "val_accuracy") == [0.88]
    assert first.meta["ended_at"] == iso(BASE + 600 + 2 + 12.5)

    curve = run_of(store, "configs/config_3").series["learning_curve"]
    assert (curve.count, curve.nonfinite, curve.first_nonfinite_step) == (5, 1, 2.0)

    crashed = run_of(store, "configs/config_4")
    assert crashed.meta["status"] == "failed"
    assert "CUDA out of memory" in crashed.meta["error"]
    assert crashed.properties["traceback"].startswith("Traceback")
    assert crashed.properties["state"] == "crashed"
    assert crashed.series == {}
    assert run_of(store, "configs/config_6").meta["status"] == "running"
    assert run_of(store, "configs/config_7").meta["status"] == "pending"

    search = run_of(store, ".")
    assert search.name == "neps_current (search)"
    assert search.group == "."
    assert search.meta["status"] == "running"
    assert values(search, "loss") == [0.42, 0.31, 0.65, 0.28]
    assert values(search, "best_loss") == [0.42, 0.31, 0.31, 0.28]
    assert search.latest("best_config") == "config_5"
    assert search.config == {"learning_rate": 0.001, "optimizer": "adam", "num_layers": 3}
    props = search.properties
    assert (props["configs"], props["evaluated"], props["best_loss"]) == (7, 4, 0.28)
    assert (props["configs_finished"], props["configs_failed"]) == (4, 1)
    assert (props["configs_running"], props["configs_pending"]) == (1, 1)
    assert props["optimizer"] == "bayesian_optimization"
    assert props["layout"] == "current"


def test_neps_legacy_layout(foreign: Path) -> None:
    store = load(foreign)
    first = run_of(store, "neps_legacy/results/config_1")
    assert first.group == "neps_legacy"
    assert first.config == {"lr": 0.05, "dropout": 0.1}
    assert values(first, "learning_curve") == [1.4, 1.1, 0.9]
    assert summary(first, "loss")[:2] == (0.9, 2.0)
    assert values(first, "train_time") == [3.0]
    assert first.meta["status"] == "finished"
    assert first.meta["ended_at"] == iso(BASE + 360)
    assert run_of(store, "neps_legacy/results/config_3").meta["status"] == "failed"
    assert run_of(store, "neps_legacy/results/config_4").meta["status"] == "running"
    search = run_of(store, "neps_legacy")
    assert values(search, "loss") == [0.9, 0.7]
    assert values(search, "best_loss") == [0.9, 0.7]
    assert search.latest("best_config") == "config_2"
    assert search.properties["layout"] == "legacy"
    assert search.properties["configs_failed"] == 1


# Gymnos -----------------------------------------------------------------------------------------
def test_gymnos_executions(foreign: Path) -> None:
    store = load(foreign / "gymnos")
    prefix = "trainings/boston_housing/executions/"
    done = run_of(store, prefix + "09-00-05__01-01-2026")
    assert done.format == "gymnos"
    assert done.group == "trainings/boston_housing"
    assert done.meta["status"] == "finished"
    assert done.meta["experiment"] == "Boston Housing"
    assert done.config["training"]["batch_size"] == 32
    assert done.meta["started_at"] == iso(datetime(2026, 1, 1, 9, 0, 5).timestamp())
    assert summary(done, "loss") == (12.75, 4.0, 12.75, 4.0, 480.5, 5)
    assert values(done, "val_mean_absolute_error") == [18.0, 11.5, 4.5, 3.25, 2.75]
    assert (values(done, "test_loss"), steps(done, "test_loss")) == ([19.25], [4.0])
    elapsed = done.latest("elapsed")
    assert isinstance(elapsed, Bar)
    assert elapsed.x[:2] == ("load_data", "fit_transformers")
    assert elapsed.y[3] == 3.2
    assert done.properties["elapsed"]["fit_model"] == 3.2
    assert done.properties["elapsed_total"] == pytest.approx(3.821)
    assert done.media == (
        "callbacks/model_checkpoint/weights.05-21.00.h5",
        "callbacks/model_checkpoint/weights.10-16.50.h5",
        "model.h5",
    )
    assert len(done.log) == 7
    assert done.log[0].endswith("Main - Starting gymnos environment ...")

    failed = run_of(store, prefix + "09-30-00__01-01-2026")
    assert failed.meta["status"] == "failed"
    assert "Error loading dataset" in failed.meta["error"]
    assert failed.series == {} and len(failed.log) == 3


# Across formats ---------------------------------------------------------------------------------
def strings_of(value: object) -> list[str]:
    if isinstance(value, str):
        return [value]
    if isinstance(value, dict):
        return [s for k, v in value.items() for s in (*strings_of(k), *strings_of(v))]
    if isinstance(value, (list, tuple)):
        return [s for v in value for s in strings_of(v)]
    return []


def test_hostile_strings_are_sanitized_in_every_format(foreign: Path) -> None:
    evil = "\x1b]0;owned\x07\x1b[31mred\u202e"
    (foreign / "csv_keras" / "evil.csv").write_text(f"epoch,{evil}loss\n0,1.5\n1,{evil}\n")
    (foreign / "neps_current" / "configs" / "config_1" / "config.yaml").write_text(
        f'optimizer: "{evil}"\n'
    )
    run_dir = next((foreign / "mlflow_file" / "mlruns").glob("*/*/tags"))
    (run_dir / "team").write_text(evil)
    (run_dir.parent / "params" / "optimizer").write_text(evil)
    store = load(foreign)
    seen = 0
    for run in store:
        texts = strings_of(run.meta) + list(run.series) + list(run.objects) + list(run.log)
        texts += [v for h in run.objects.values() for _, v in h if isinstance(v, str)]
        for text in texts:
            assert not FORBIDDEN.search(text), (run.key, text)
            seen += "red" in text
    assert seen >= 4


def test_discovery_opens_no_file_in_native_runs(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    for i in range(300):
        run = tmp_path / "sweep" / f"run-{i:03d}"
        run.mkdir(parents=True)
        for name in ("metrics.jsonl", "run.json", "output.log"):
            (run / name).write_text("{}\n")
    opened: list[str] = []
    real_open = os.open

    def counting_open(path: Any, *args: Any, **kwargs: Any) -> int:
        opened.append(str(path))
        return real_open(path, *args, **kwargs)

    monkeypatch.setattr(os, "open", counting_open)
    found = walk(tmp_path, default_adapters())
    assert len(found.sources) == 300
    assert {s.format for s in found.sources} == {"tracktui"}
    assert opened == []


def test_sources_pickle_before_their_first_read(foreign: Path) -> None:
    found = walk(foreign, default_adapters())
    formats = {s.format for s in found.sources}
    assert formats == {
        "csv",
        "gymnos",
        "mlflow",
        "neps",
        "tensorboard",
        "wandb",
        "huggingface",
        "dvclive",
        "sacred",
    }
    for source in found.sources:
        clone = pickle.loads(pickle.dumps(source))
        assert clone.key == source.key


PREVIEWED = {"csv", "mlflow", "tensorboard", "wandb", "huggingface", "dvclive", "sacred"}
"""Formats whose runs are listed by a cheap preview before their histories are read."""


def test_previews_list_runs_with_their_metadata_then_full_reads_replace_them(
    foreign: Path,
) -> None:
    from tui.core.engine import Engine

    expected = load(foreign)
    engine = Engine(foreign, watch="poll")
    keys = engine.scan()
    engine.take_dirty()
    store = RunStore()
    previewed = set()
    for key in keys:
        source = engine.sources[key]
        batch = engine.preview(key, 4096)
        if source.format == "mlflow" and key.startswith("mlflow_sqlite/"):
            continue  # one query reads a run's metadata and metrics alike
        if source.format not in PREVIEWED:
            continue
        assert batch is not None and batch.replace and batch.meta is not None, key
        assert batch.partial or batch.records is not None, key
        previewed.add(key)
        store.apply(batch)
        run = run_of(store, key)
        final = run_of(expected, key)
        assert run.name == final.name, key
        if source.format in ("sacred", "mlflow", "dvclive", "csv", "wandb"):
            assert run.config == final.config, key  # from small files, or the log's start
        if source.format != "wandb":
            assert run.series == {}, key  # listed only: the history is the full read's
    assert {run_of(expected, k).format for k in previewed} == PREVIEWED
    for batch in engine.read(keys):
        assert batch.replace == (batch.key in previewed), batch.key
        store.apply(batch)
    while (dirty := engine.take_dirty()[0]) != []:
        for batch in engine.read(dirty):
            store.apply(batch)
    engine.stop()
    for key in previewed:  # the previews moved no reader: the full reads hold everything
        run, final = run_of(store, key), run_of(expected, key)
        assert not run.partial, key
        assert repr({m: summary(run, m) for m in sorted(run.series)}) == repr(
            {m: summary(final, m) for m in sorted(final.series)}
        ), key  # repr: NaN values compare equal
        assert repr(run.meta) == repr(final.meta), key
