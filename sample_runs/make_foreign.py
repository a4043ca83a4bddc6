"""Generate the committed foreign-format samples under ``sample_runs/foreign/``.

Real writers where they install from PyPI without a deep-learning framework:

* MLflow (``mlflow-skinny`` plus ``sqlalchemy`` and ``alembic`` for the database store):
  the same three-run experiment into a file store (``mlflow_file/mlruns``) and into a
  SQLite store (``mlflow_sqlite/mlflow.db``), through ``MlflowClient`` with fixed start,
  end and metric timestamps; the database store also gets a run left RUNNING.
* TensorBoard (``tensorboardX``'s ``SummaryWriter``, fixed wall times): scalars, a text
  summary, hparams, and a run whose writer restarted into a second event file.
* Weights & Biases (``wandb`` in offline mode): a finished run with config, tags, console
  output, a histogram and an image, and a run that exits with code 1 (``wandb_offline``).
* Hugging Face ``Trainer`` (``transformers`` on CPU ``torch``): a tiny randomly initialised
  GPT-2 trained on a synthetic dataset, with checkpoints, ``save_state()`` and its
  TensorBoard events (``hf_trainer``; model weights and optimizer state are deleted).
* DVCLive: params, metrics (one with timestamps, one with a NaN) and an image (``dvclive``).
* Sacred (``FileStorageObserver``): a completed, a failed and an interrupted run
  (``sacred``).

Those four write wall-clock times of the moment they ran (the libraries take no others).

Written here in the writers' own formats, because their libraries need TensorFlow or
PyTorch: Keras ``CSVLogger`` files (``epoch`` first, sorted columns, ``\\r\\n`` rows,
``NA`` for metrics missing after an early stop), Lightning's ``CSVLogger`` (sorted sparse
columns, ``hparams.yaml``), NePS searches in the current and the legacy layout, and Gymnos
executions. Those parts are deterministic; MLflow's run ids and event file names are not
(they come from the libraries).

Usage: ``python sample_runs/make_foreign.py [OUT]`` (default: ``foreign/`` beside this
script). Only the entries named in :data:`GENERATED` are removed and written again.
"""

from __future__ import annotations

import argparse
import csv
import io
import json
import math
import os
import shutil
import sqlite3
import tempfile
from pathlib import Path
from typing import Any

import yaml

GENERATED = (
    "mlflow_file",
    "mlflow_sqlite",
    "tensorboard",
    "neps_current",
    "neps_legacy",
    "gymnos",
    "csv_keras",
    "lightning",
    "wandb_offline",
    "hf_trainer",
    "dvclive",
    "sacred",
)
"""Entries of the output directory this script owns."""

BASE = 1767258000.0
"""2026-01-01T09:00:00Z: every sample time is an offset from it."""

NAN = float("nan")

# MLflow -----------------------------------------------------------------------------------
MLFLOW_RUNS: list[dict[str, Any]] = [
    {
        "name": "lr0.1",
        "params": {"lr": "0.1", "batch_size": "64", "optimizer": "sgd"},
        "tags": {"team": "vision", "stage": "baseline"},
        "loss": [2.3, 1.6, 1.2, 0.95, 0.8, 0.71, 0.66, 0.62, 0.6, 0.59],
        "val": {1: 0.61, 3: 0.74, 5: 0.8, 7: 0.83, 9: 0.84},
        "status": "FINISHED",
    },
    {
        "name": "lr1.0",
        "params": {"lr": "1.0", "batch_size": "64", "optimizer": "sgd"},
        "tags": {"team": "vision", "stage": "sweep"},
        "loss": [2.3, 3.1, 7.9, 45.0, NAN, math.inf],
        "val": {1: 0.12},
        "status": "FAILED",
    },
    {
        "name": "lr0.01",
        "params": {"lr": "0.01", "batch_size": "128", "optimizer": "adam"},
        "tags": {"team": "vision", "stage": "sweep"},
        "loss": [2.3, 1.9, 1.5, 1.25, 1.1, 1.0, 0.93, 0.88],
        "val": {3: 0.7, 7: 0.79},
        "status": "FINISHED",
    },
]
"""One experiment, logged identically into both MLflow stores."""

MLFLOW_LIVE = {
    "name": "lr0.03-live",
    "params": {"lr": "0.03", "batch_size": "64", "optimizer": "sgd"},
    "tags": {"team": "vision", "stage": "sweep"},
    "loss": [2.3, 1.7, 1.3],
    "val": {},
    "status": None,
}
"""A run left RUNNING in the database store."""


def log_mlflow_run(client: Any, experiment_id: str, index: int, spec: dict[str, Any]) -> str:
    """Log one run with fixed times; loss per step, val/accuracy with it every few steps."""
    from mlflow.entities import Metric

    start = int((BASE + 3600 * index) * 1000)
    run = client.create_run(
        experiment_id, start_time=start, tags=spec["tags"], run_name=spec["name"]
    )
    run_id = run.info.run_id
    for key, value in spec["params"].items():
        client.log_param(run_id, key, value)
    for step, loss in enumerate(spec["loss"]):
        stamp = start + 1000 * (step + 1)
        metrics = [Metric("loss", loss, stamp, step)]
        if step in spec["val"]:
            metrics.append(Metric("val/accuracy", spec["val"][step], stamp, step))
        client.log_batch(run_id, metrics=metrics)
    client.log_metric(run_id, "epoch_time_s", 12.5, timestamp=start + 500, step=0)
    if spec["status"] is not None:
        end = start + 1000 * (len(spec["loss"]) + 2)
        client.set_terminated(run_id, spec["status"], end_time=end)
    return run_id


def make_mlflow(out: Path) -> None:
    """Both MLflow stores, written by MLflow itself."""
    os.environ["MLFLOW_ALLOW_FILE_STORE"] = "true"  # MLflow 3 keeps the file store opt-in
    from mlflow.tracking import MlflowClient

    store = out / "mlflow_file" / "mlruns"
    store.parent.mkdir(parents=True)
    client = MlflowClient(tracking_uri=store.resolve().as_uri())
    experiment = client.create_experiment("mnist")
    with tempfile.TemporaryDirectory() as tmp:
        summary = Path(tmp) / "model_summary.txt"
        summary.write_text("Linear(784, 10)\n")
        for i, spec in enumerate(MLFLOW_RUNS):
            run_id = log_mlflow_run(client, experiment, i, spec)
            if i == 0:
                client.log_artifact(run_id, str(summary))

    folder = out / "mlflow_sqlite"
    folder.mkdir(parents=True)
    db = folder / "mlflow.db"
    client = MlflowClient(tracking_uri=f"sqlite:///{db.resolve()}")
    experiment = client.create_experiment(
        "mnist", artifact_location=(folder / "artifacts").resolve().as_uri()
    )
    for i, spec in enumerate([*MLFLOW_RUNS, MLFLOW_LIVE]):
        log_mlflow_run(client, experiment, i, spec)
    # MLflow's schema fills ~230 pages; smaller pages keep the committed file small.
    # VACUUM rewrites the same rows and schema: MLflow reads the result unchanged.
    conn = sqlite3.connect(db)
    conn.execute("PRAGMA page_size = 512")
    conn.execute("VACUUM")
    conn.close()


# TensorBoard --------------------------------------------------------------------------------
def make_tensorboard(out: Path) -> None:
    """Two runs through tensorboardX: one with hparams and text, one restarted mid-way."""
    from tensorboardX import SummaryWriter
    from tensorboardX.summary import hparams

    folder = out / "tensorboard"
    writer = SummaryWriter(str(folder / "run-lr0.01"), filename_suffix=".a")
    for step in range(10):
        wall = BASE + 10 * step
        writer.add_scalar("loss", round(2.0 * 0.8**step, 6), step, walltime=wall)
        writer.add_scalar("acc/train", round(0.5 + 0.04 * step, 6), step, walltime=wall)
        if step % 3 == 2:
            writer.add_scalar("acc/val", round(0.45 + 0.05 * step, 6), step, walltime=wall)
    writer.add_text("notes", "baseline run, lr 0.01", 0, walltime=BASE)
    for summary in hparams(
        {"lr": 0.01, "optimizer": "adam", "layers": 3, "batch_norm": True},
        {"hparam/loss": 0.0},
    ):
        writer.file_writer.add_summary(summary, walltime=BASE)
    writer.close()

    for part, steps in ((".a", range(0, 5)), (".b", range(5, 9))):
        writer = SummaryWriter(str(folder / "run-lr0.1"), filename_suffix=part)
        for step in steps:
            loss = [1.9, 1.2, 0.9, 2.8, 9.5, 40.0, 310.0, NAN, NAN][step]
            writer.add_scalar("loss", loss, step, walltime=BASE + 1000 + 10 * step)
        writer.close()


# CSV loggers ---------------------------------------------------------------------------------
def csv_text(header: list[str], rows: list[dict[str, Any]]) -> str:
    """CSV as the csv module writes it by default (``\\r\\n`` line ends), like both loggers."""
    buffer = io.StringIO(newline="")
    writer = csv.DictWriter(buffer, fieldnames=header)
    writer.writeheader()
    writer.writerows(rows)
    return buffer.getvalue()


KERAS_BASELINE = [
    # epoch, accuracy, loss, val_accuracy, val_loss
    (0, 0.52, 1.38, 0.55, 1.31),
    (1, 0.66, 1.02, 0.64, 1.05),
    (2, 0.74, 0.81, 0.7, 0.92),
    (3, 0.79, 0.66, 0.72, 0.88),
    (4, 0.83, 0.55, 0.73, NAN),
    (5, 0.86, 0.47, 0.73, 0.9),
    (6, 0.88, 0.41, None, None),
]
"""Keras history; ``None`` is what CSVLogger writes as ``NA`` after an early stop."""


def make_csv(out: Path) -> None:
    """Two Keras CSVLogger files and one Lightning CSVLogger version directory."""
    folder = out / "csv_keras" / "baseline"
    folder.mkdir(parents=True)
    header = ["epoch", "accuracy", "loss", "val_accuracy", "val_loss"]
    rows = [{k: ("NA" if v is None else v) for k, v in zip(header, row)} for row in KERAS_BASELINE]
    (folder / "training.log").write_text(csv_text(header, rows), newline="")

    header = ["epoch", "loss", "per_class_recall"]
    rows = []
    for epoch in range(4):
        recall = [round(0.5 + 0.1 * epoch + 0.05 * k, 2) for k in range(3)]
        # CSVLogger writes lists as "[a, b, c]" with the quotes inside the field.
        rows.append(
            {
                "epoch": epoch,
                "loss": round(1.2 - 0.25 * epoch, 4),
                "per_class_recall": '"[' + ", ".join(map(str, recall)) + ']"',
            }
        )
    (out / "csv_keras" / "lr-0.3.csv").write_text(csv_text(header, rows), newline="")

    version = out / "lightning" / "lightning_logs" / "version_0"
    version.mkdir(parents=True)
    hparams = {"learning_rate": 0.001, "batch_size": 32, "hidden_dim": 128, "optimizer": "adam"}
    (version / "hparams.yaml").write_text(yaml.safe_dump(hparams, sort_keys=False))
    header = ["epoch", "step", "train_loss", "val_acc", "val_loss"]
    rows = []
    for epoch in range(3):
        for k in range(4):
            step = epoch * 40 + 10 * k + 9
            rows.append(
                {"epoch": epoch, "step": step, "train_loss": round(2.0 / (1 + step / 20), 4)}
            )
        rows.append(
            {
                "epoch": epoch,
                "step": epoch * 40 + 39,
                "val_acc": round(0.6 + 0.1 * epoch, 4),
                "val_loss": round(1.1 - 0.2 * epoch, 4),
            }
        )
    (version / "metrics.csv").write_text(csv_text(header, rows), newline="")


# NePS ------------------------------------------------------------------------------------
NEPS_TRIALS: list[dict[str, Any]] = [
    {"config": {"learning_rate": 0.01, "optimizer": "adam", "num_layers": 2},
     "state": "success", "objective": 0.42, "cost": 12.5,
     "curve": [0.9, 0.7, 0.55, 0.48, 0.42], "extra": {"val_accuracy": 0.88}},
    {"config": {"learning_rate": 0.003, "optimizer": "adam", "num_layers": 4},
     "state": "success", "objective": 0.31, "cost": 20.0,
     "curve": [0.85, 0.6, 0.44, 0.35, 0.31], "extra": {"val_accuracy": 0.91}},
    {"config": {"learning_rate": 0.3, "optimizer": "sgd", "num_layers": 3},
     "state": "success", "objective": 0.65, "cost": 9.0,
     "curve": [1.2, 0.95, NAN, 0.7, 0.65], "extra": {"val_accuracy": 0.79}},
    {"config": {"learning_rate": 0.1, "optimizer": "sgd", "num_layers": 8},
     "state": "crashed", "objective": None, "cost": None, "curve": None, "extra": {},
     "err": "RuntimeError('CUDA out of memory. Tried to allocate 2.00 GiB')"},
    {"config": {"learning_rate": 0.001, "optimizer": "adam", "num_layers": 3},
     "state": "success", "objective": 0.28, "cost": 15.0,
     "curve": [0.8, 0.52, 0.4, 0.32, 0.28], "extra": {"val_accuracy": 0.92}},
    {"config": {"learning_rate": 0.0005, "optimizer": "adam", "num_layers": 5},
     "state": "evaluating"},
    {"config": {"learning_rate": 0.05, "optimizer": "sgd", "num_layers": 2},
     "state": "pending"},
]  # fmt: skip
"""Trials of the current-layout sample: 4 successes, a crash, one evaluating, one pending."""

TRACEBACK = (
    "Traceback (most recent call last):\n"
    '  File "train.py", line 41, in evaluate_pipeline\n'
    "    loss = model(batch)\n"
    "RuntimeError: CUDA out of memory. Tried to allocate 2.00 GiB\n"
)


def dump_yaml(path: Path, value: Any) -> None:
    """YAML the way NePS writes it (block style, keys in insertion order)."""
    path.write_text(yaml.safe_dump(value, sort_keys=False))


def make_neps_current(out: Path) -> None:
    """``configs/config_N/{config.yaml, report.yaml, metadata.json}`` plus ``summary/``."""
    root = out / "neps_current"
    best: tuple[float, int] | None = None
    trajectory: list[str] = []
    rows: list[dict[str, Any]] = []
    for n, trial in enumerate(NEPS_TRIALS, start=1):
        folder = root / "configs" / f"config_{n}"
        folder.mkdir(parents=True)
        dump_yaml(folder / "config.yaml", trial["config"])
        sampled = BASE + 600 * n
        metadata: dict[str, Any] = {
            "id": str(n),
            "location": str(folder.relative_to(out)),
            "state": trial["state"],
            "previous_trial_id": None,
            "previous_trial_location": None,
            "sampling_worker_id": "worker-0",
            "time_sampled": sampled,
            "evaluating_worker_id": None,
            "evaluation_duration": None,
            "time_submitted": None,
            "time_started": None,
            "time_end": None,
        }
        if trial["state"] != "pending":
            metadata.update(
                evaluating_worker_id="worker-0",
                time_submitted=sampled + 1,
                time_started=sampled + 2,
            )
        if trial["state"] in ("success", "crashed"):
            duration = trial["cost"] if trial["cost"] is not None else 3.0
            metadata.update(time_end=sampled + 2 + duration, evaluation_duration=duration)
            report = {
                "trial_id": str(n),
                "objective_to_minimize": trial["objective"],
                "cost": trial["cost"],
                "learning_curve": trial["curve"],
                "extra": trial["extra"],
                "err": trial.get("err"),
                "tb": TRACEBACK if trial.get("err") else None,
                "reported_as": "success" if trial["state"] == "success" else "crashed",
                "evaluation_duration": duration,
            }
            dump_yaml(folder / "report.yaml", report)
            rows.append({"id": n, **trial["config"], "objective_to_minimize": trial["objective"]})
            if trial["objective"] is not None and (best is None or trial["objective"] < best[0]):
                best = (trial["objective"], n)
                trajectory.append(f"Config ID: {n}\nObjective to minimize: {trial['objective']}\n")
        (folder / "metadata.json").write_text(json.dumps(metadata))
    summary = root / "summary"
    summary.mkdir()
    (summary / "best_config_trajectory.txt").write_text("\n".join(trajectory))
    if best is not None:
        (summary / "best_config.txt").write_text(f"Config ID: {best[1]}\nObjective: {best[0]}\n")
    header = ["id", "learning_rate", "optimizer", "num_layers", "objective_to_minimize"]
    (summary / "full.csv").write_text(csv_text(header, rows), newline="")
    (summary / "short.csv").write_text(
        csv_text(["num_success", "best_objective"], [{"num_success": 4, "best_objective": 0.28}]),
        newline="",
    )
    dump_yaml(
        root / "optimizer_info.yaml",
        {"name": "bayesian_optimization", "info": {"initial_design_size": 3}},
    )


LEGACY_TRIALS: list[dict[str, Any]] = [
    {"config": {"lr": 0.05, "dropout": 0.1}, "result": {"loss": 0.9, "cost": 3.0,
     "info_dict": {"learning_curve": [1.4, 1.1, 0.9], "train_time": 3.0}}},
    {"config": {"lr": 0.02, "dropout": 0.3}, "result": {"loss": 0.7, "cost": 3.5,
     "info_dict": {"learning_curve": [1.3, 0.9, 0.7], "train_time": 3.5}}},
    {"config": {"lr": 0.5, "dropout": 0.0}, "result": "error"},
    {"config": {"lr": 0.01, "dropout": 0.2}, "result": None},
]  # fmt: skip
"""Trials of the legacy sample: two results, an error, one still evaluating."""


def make_neps_legacy(out: Path) -> None:
    """``results/config_N/{config,result,metadata}.yaml`` plus the trajectory text files."""
    root = out / "neps_legacy"
    best = math.inf
    trajectory, everything = [], []
    for n, trial in enumerate(LEGACY_TRIALS, start=1):
        folder = root / "results" / f"config_{n}"
        folder.mkdir(parents=True)
        dump_yaml(folder / "config.yaml", trial["config"])
        metadata: dict[str, Any] = {"time_sampled": BASE + 300 * n}
        result = trial["result"]
        if result is not None:
            metadata["time_end"] = BASE + 300 * n + 60
            dump_yaml(folder / "result.yaml", result)
            loss = result["loss"] if isinstance(result, dict) else "error"
            everything.append(
                f"Loss: {loss}\nConfig ID: {n}\nConfig: {trial['config']}\n{'-' * 79}\n"
            )
            if isinstance(result, dict) and result["loss"] < best:
                best = result["loss"]
                trajectory.append(f"{best}\n")
        dump_yaml(folder / "metadata.yaml", metadata)
    (root / "best_loss_trajectory.txt").write_text("".join(trajectory))
    (root / "all_losses_and_configs.txt").write_text("".join(everything))
    (root / "best_loss_with_config_trajectory.txt").write_text("".join(everything[:2]))


# Gymnos ------------------------------------------------------------------------------------
GYMNOS_CONFIG = {
    "experiment": {"name": "Boston Housing"},
    "model": {
        "input_shape": [13],
        "network": [
            {"type": "dense", "units": 64, "activation": "relu"},
            {"type": "dense", "units": 1, "activation": "linear"},
        ],
        "compilation": {"optimizer": "adam", "loss": "mse", "metrics": ["mae"]},
    },
    "dataset": {"name": "boston_housing", "transformers": [{"type": "standard_scaler"}]},
    "training": {
        "batch_size": 32,
        "epochs": 15,
        "callbacks": [{"type": "model_checkpoint", "period": 5}],
    },
}
"""A training configuration in Gymnos's shape."""

GYMNOS_METRICS = {
    "elapsed": {
        "load_data": 0.61,
        "fit_transformers": 0.004,
        "transform_transformers": 0.001,
        "fit_model": 3.2,
        "evaluate_model": 0.006,
    },
    "metrics": {
        "loss": [480.5, 210.25, 40.0, 18.5, 12.75],
        "val_loss": [430.0, 190.5, 35.25, 21.0, 16.5],
        "mean_absolute_error": [19.5, 12.0, 4.25, 3.0, 2.5],
        "val_mean_absolute_error": [18.0, 11.5, 4.5, 3.25, 2.75],
        "test_loss": [19.25],
        "test_mean_absolute_error": [3.0],
    },
}
"""Execution metrics in Gymnos's shape (stage timings and per-epoch lists)."""


def gymnos_log(stamp: str, lines: list[tuple[str, str, str]]) -> str:
    """``execution.log`` lines in Gymnos's ``time - gymnosd - LEVEL - Component - text`` form."""
    return "".join(
        f"2026-01-01 {stamp},{100 + i:03d} - gymnosd - {level} - {who} - {text}\n"
        for i, (level, who, text) in enumerate(lines)
    )


def make_gymnos(out: Path) -> None:
    """A finished execution with checkpoints, and one that failed while loading data."""
    executions = out / "gymnos" / "trainings" / "boston_housing" / "executions"
    done = executions / "09-00-05__01-01-2026"
    (done / "callbacks" / "model_checkpoint").mkdir(parents=True)
    (done / "training_config.json").write_text(json.dumps(GYMNOS_CONFIG, indent=4))
    (done / "metrics.json").write_text(json.dumps(GYMNOS_METRICS, indent=4))
    (done / "execution.log").write_text(
        gymnos_log(
            "09:00:05",
            [
                ("INFO", "Main", "Starting gymnos environment ..."),
                ("INFO", "Trainer", "Loading dataset: boston_housing ..."),
                ("DEBUG", "Trainer", "Loading data took 0.61s"),
                ("INFO", "Trainer", "Fitting model with 303 samples ..."),
                ("DEBUG", "Trainer", "Fitting model took 3.20s"),
                ("INFO", "Trainer", "Evaluating model with 101 samples"),
                ("INFO", "Trainer", "Saving model"),
            ],
        )
    )
    hdf5 = b"\x89HDF\r\n\x1a\n"  # placeholder weights: the signature of an HDF5 file only
    (done / "model.h5").write_bytes(hdf5)
    for name in ("weights.05-21.00.h5", "weights.10-16.50.h5"):
        (done / "callbacks" / "model_checkpoint" / name).write_bytes(hdf5)

    failed = executions / "09-30-00__01-01-2026"
    failed.mkdir(parents=True)
    (failed / "training_config.json").write_text(json.dumps(GYMNOS_CONFIG, indent=4))
    (failed / "execution.log").write_text(
        gymnos_log(
            "09:30:00",
            [
                ("INFO", "Main", "Starting gymnos environment ..."),
                ("INFO", "Trainer", "Loading dataset: boston_housing ..."),
                (
                    "ERROR",
                    "Trainer",
                    "Error loading dataset: cache/datasets/BostonHousing.h5 is corrupt",
                ),
            ],
        )
    )


# Weights & Biases --------------------------------------------------------------------------
def make_wandb(out: Path, steps: int = 40, prune: bool = True) -> None:
    """Offline W&B runs: a finished one (``lr0.1``) and one exiting with code 1 (``lr1.0``)."""
    os.environ.update(WANDB_MODE="offline", WANDB_SILENT="true", WANDB_CONSOLE="wrap")
    import numpy as np
    import wandb

    folder = out / "wandb_offline"
    folder.mkdir(parents=True)
    settings = wandb.Settings(disable_git=True, save_code=False, x_disable_stats=False)
    for name, lr, code in (("lr0.1", 0.1, 0), ("lr1.0", 1.0, 1)):
        run = wandb.init(
            project="mnist",
            name=name,
            dir=str(folder),
            config={"lr": lr, "batch_size": 64, "optimizer": {"name": "sgd", "momentum": 0.9}},
            tags=["baseline" if code == 0 else "sweep", "mnist"],
            settings=settings,
        )
        for step in range(steps):
            loss = round(2.0 * 0.9**step, 6) if code == 0 or step < steps // 2 else NAN
            metrics: dict[str, Any] = {
                "loss": loss,
                "train": {"acc": round(0.5 + step / (3 * steps), 6)},
            }
            if step % 10 == 9:
                metrics["val/accuracy"] = round(0.55 + step / (3 * steps), 6)
            run.log(metrics, step=step)
            print(f"step {step} loss {loss}")
        rng = np.random.default_rng(0)
        run.log(
            {
                "weights": wandb.Histogram(rng.normal(size=200)),
                "samples": wandb.Image(rng.integers(0, 255, (8, 8, 3), dtype=np.uint8)),
            },
            step=steps - 1,
        )
        run.summary["best_loss"] = 0.5 if code == 0 else None
        run.finish(exit_code=code)
    if prune:
        # Keep what a reader needs: not the pip freeze, debug logs or links out of the tree.
        for run_dir in folder.glob("wandb/*run-*"):
            for junk in ("logs", "tmp", "files/requirements.txt", "files/wandb-metadata.json"):
                target = run_dir / junk
                if target.is_dir():
                    shutil.rmtree(target)
                elif target.exists():
                    target.unlink()
        for link in ("debug.log", "debug-internal.log"):
            (folder / "wandb" / link).unlink(missing_ok=True)


# Hugging Face Trainer ------------------------------------------------------------------------
def make_hf_trainer(out: Path, max_steps: int = 12, prune: bool = True) -> None:
    """A tiny random GPT-2 trained by ``Trainer`` on synthetic tokens, on the CPU, offline."""
    os.environ.update(HF_HUB_OFFLINE="1", TRANSFORMERS_OFFLINE="1", TOKENIZERS_PARALLELISM="false")
    import torch
    from transformers import GPT2Config, GPT2LMHeadModel, Trainer, TrainingArguments
    from transformers.utils import logging as hf_logging

    hf_logging.set_verbosity_error()
    torch.manual_seed(0)
    model = GPT2LMHeadModel(
        GPT2Config(vocab_size=32, n_positions=16, n_embd=16, n_layer=1, n_head=2)
    )

    class Tokens(torch.utils.data.Dataset[dict[str, Any]]):
        """Sequences of counting tokens: the model learns to count mod 32."""

        def __len__(self) -> int:
            return 64

        def __getitem__(self, i: int) -> dict[str, Any]:
            ids = torch.tensor([(i + k) % 32 for k in range(8)])
            return {"input_ids": ids, "labels": ids}

    folder = out / "hf_trainer" / "gpt2-tiny"
    args = TrainingArguments(
        output_dir=str(folder),
        max_steps=max_steps,
        logging_steps=2,
        eval_strategy="steps",
        eval_steps=4,
        save_steps=6,
        per_device_train_batch_size=8,
        learning_rate=1e-3,
        report_to=["tensorboard"],
        use_cpu=True,
        disable_tqdm=True,
        seed=0,
    )
    trainer = Trainer(model=model, args=args, train_dataset=Tokens(), eval_dataset=Tokens())
    trainer.train()
    trainer.save_state()
    if prune:
        for path in folder.rglob("*"):
            if path.suffix in (".pt", ".pth", ".safetensors"):
                path.unlink()


# DVCLive -------------------------------------------------------------------------------------
def make_dvclive(out: Path, steps: int = 6) -> None:
    """One DVCLive run: params, per-step metrics (a NaN, one with timestamps), an image."""
    import numpy as np
    from dvclive import Live

    # DVCLive runs `dvc init` in the git repository around the working directory: work
    # from an empty temporary one, outside any repository.
    here = Path.cwd()
    target = (out / "dvclive" / "dvclive").resolve()
    with tempfile.TemporaryDirectory() as tmp:
        os.chdir(tmp)
        try:
            with Live(str(target), save_dvc_exp=False, dvcyaml=None) as live:
                live.log_params({"lr": 0.01, "epochs": steps, "model": {"layers": 2}})
                for step in range(steps):
                    live.log_metric("train/loss", round(1.5 * 0.8**step, 6))
                    live.log_metric("val/acc", round(0.6 + 0.05 * step, 6), timestamp=True)
                    if step == 3:
                        live.log_metric("val/loss", NAN)
                    live.next_step()
                live.log_image("confusion.png", np.zeros((4, 4, 3), dtype=np.uint8))
        finally:
            os.chdir(here)


# Sacred --------------------------------------------------------------------------------------
def make_sacred(out: Path) -> None:
    """Three FileStorageObserver runs of one experiment: completed, failed, interrupted."""
    from sacred import SETTINGS, Experiment
    from sacred.observers import FileStorageObserver

    SETTINGS.CAPTURE_MODE = "sys"  # capture print() into cout.txt within this process
    experiment = Experiment("mnist", save_git_info=False)
    experiment.observers.append(FileStorageObserver(str(out / "sacred" / "runs")))

    @experiment.config
    def config() -> None:
        lr = 0.01  # noqa: F841 (a Sacred config scope: locals are the config)
        layers = [64, 32]  # noqa: F841
        outcome = "complete"  # noqa: F841

    @experiment.main
    def train(lr: float, outcome: str, _run: Any) -> float:
        for step in range(5):
            _run.log_scalar("loss", round(1.0 / (step + 1 + lr), 6), step)
            print(f"epoch {step}")
        _run.log_scalar("loss", NAN, 5)
        _run.log_scalar("val.acc", 0.9, 5)
        if outcome == "fail":
            raise RuntimeError("diverged")
        if outcome == "interrupt":
            raise KeyboardInterrupt
        return 0.25

    for outcome in ("complete", "fail", "interrupt"):
        try:
            experiment.run(config_updates={"outcome": outcome})
        except (RuntimeError, KeyboardInterrupt):
            pass
    shutil.rmtree(out / "sacred" / "runs" / "_sources")  # copies of this script


MAKERS: dict[tuple[str, ...], Any] = {
    ("csv_keras", "lightning"): make_csv,
    ("neps_current",): make_neps_current,
    ("neps_legacy",): make_neps_legacy,
    ("gymnos",): make_gymnos,
    ("tensorboard",): make_tensorboard,
    ("mlflow_file", "mlflow_sqlite"): make_mlflow,
    ("wandb_offline",): make_wandb,
    ("hf_trainer",): make_hf_trainer,
    ("dvclive",): make_dvclive,
    ("sacred",): make_sacred,
}
"""Each writer and the entries of :data:`GENERATED` it writes."""


def main() -> None:
    """Write every foreign sample (or those named by ``--only``) into OUT."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out", nargs="?", type=Path, default=Path(__file__).parent / "foreign")
    parser.add_argument("--only", help="comma-separated entries of GENERATED to write")
    options = parser.parse_args()
    out = options.out
    wanted = set(options.only.split(",")) if options.only else set(GENERATED)
    out.mkdir(parents=True, exist_ok=True)
    for entries, maker in MAKERS.items():
        if not wanted & set(entries):
            continue
        for name in entries:
            target = out / name
            if target.is_dir():
                shutil.rmtree(target)
        maker(out)


if __name__ == "__main__":
    main()
