"""``tracktui status``: the JSON contract, CSV, sorting, filtering and exit codes."""

from __future__ import annotations

import csv
import io
import json
import math
import re
import subprocess
import sys
from pathlib import Path

import pytest

RUN_KEYS = {
    "id",
    "name",
    "path",
    "format",
    "status",
    "pid",
    "host",
    "started_at",
    "ended_at",
    "config",
    "tags",
    "properties",
    "metrics",
    "texts",
    "rules",
    "health",
    "process",
    "gpu",
    "slurm",
}
METRIC_KEYS = {
    "last",
    "last_step",
    "min",
    "min_step",
    "max",
    "max_step",
    "count",
    "nonfinite",
    "first_nonfinite_step",
}


def status(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "tui", "status", *args], capture_output=True, text=True, timeout=120
    )


@pytest.fixture(scope="module")
def document(tmp_path_factory: pytest.TempPathFactory) -> dict:
    import shutil

    from conftest import FIXTURES, SAMPLES

    root = tmp_path_factory.mktemp("status") / "sample_runs"
    shutil.copytree(SAMPLES, root, ignore=shutil.ignore_patterns("*.py", "__pycache__"))
    shutil.copytree(FIXTURES, root, dirs_exist_ok=True)
    out = status(str(root), "--json")
    assert out.returncode == 0, out.stderr
    return json.loads(out.stdout)


def test_json_follows_the_contract(document: dict) -> None:
    assert {"root", "runs", "gpus"} <= set(document) <= {"root", "runs", "gpus", "gpu_note"}
    assert document["gpus"] or document["gpu_note"]  # without a GPU it says why
    runs = {run["path"]: run for run in document["runs"]}
    assert len(runs) >= 30
    for run in runs.values():
        assert set(run) == RUN_KEYS
        assert run["format"] in {
            "tracktui",
            "valohai",
            "neps",
            "gymnos",
            "csv",
            "mlflow",
            "tensorboard",
            "wandb",
            "huggingface",
            "dvclive",
            "sacred",
        }
        assert run["status"] in {
            "running",
            "stalled",
            "pending",
            "finished",
            "failed",
            "killed",
            "crashed",
            "ended",
            "unknown",
        }
        assert {"bad_lines", "notes"} <= set(run["health"])
        for metric in run["metrics"].values():
            assert set(metric) == METRIC_KEYS
        for verdict in run["rules"]:
            assert set(verdict) == {"name", "state", "step", "reason"}


ONE_SPELLING = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z$")
LOOKS_LIKE_A_TIME = re.compile(r"\d{4}-\d\d-\d\d[T ]\d\d:\d\d")


def times_in(value: object, key: str = "") -> list[tuple[str, object]]:
    """Every ``*_at``/``*time`` field and every string that holds a date-time, with its key."""
    if isinstance(value, dict):
        return [found for k, v in value.items() for found in times_in(v, str(k))]
    if isinstance(value, list):
        return [found for v in value for found in times_in(v, key)]
    timed = key.endswith(("_at", "_time")) or key == "time"
    if (timed and isinstance(value, str)) or (
        isinstance(value, str) and LOOKS_LIKE_A_TIME.search(value)
    ):
        return [(key, value)]
    return []


def test_every_timestamp_has_one_spelling(document: dict) -> None:
    runs = document["runs"]
    found = times_in(runs)
    keys = {key for key, _ in found}
    assert {"started_at", "ended_at"} <= keys
    assert sum(run["started_at"] is not None for run in runs) >= len(runs) - 2
    assert [(k, v) for k, v in found if not ONE_SPELLING.match(str(v))] == []


def test_non_finite_numbers_are_strings_and_values_are_exact(document: dict) -> None:
    runs = {run["path"]: run for run in document["runs"]}
    diverged = runs["diverged"]
    loss = diverged["metrics"]["loss"]
    lines = (
        (Path(__file__).parent.parent / "sample_runs/diverged/metrics.jsonl")
        .read_text()
        .splitlines()
    )
    records = [json.loads(line) for line in lines]
    first_bad = next(r["step"] for r in records if "loss" in r and not math.isfinite(r["loss"]))
    assert loss["last"] == "nan" and loss["first_nonfinite_step"] == first_bad
    assert diverged["status"] == "crashed"  # a dead pid and no end recorded
    verdicts = {v["name"]: v for v in diverged["rules"]}
    assert verdicts["diverged"]["state"] == "triggered"
    finished = runs["sweep/resnet-lr0.01"]
    assert finished["status"] == "finished"
    values = [
        json.loads(line)["val_loss"]
        for line in (Path(__file__).parent.parent / "sample_runs/sweep/resnet-lr0.01/metrics.jsonl")
        .read_text()
        .splitlines()
        if "val_loss" in line
    ]
    assert finished["metrics"]["val_loss"]["last"] == values[-1]
    assert finished["metrics"]["val_loss"]["min"] == min(values)
    assert finished["metrics"]["val_loss"]["count"] == len(values)
    hostile = runs["hostile"]
    assert hostile["health"]["bad_lines"] > 0
    assert "\x1b" not in json.dumps(hostile)


def test_csv_is_one_row_per_run_sorted_as_asked(samples: Path) -> None:
    out = status(str(samples / "sweep"), "--csv", "--sort=-val_accuracy")
    assert out.returncode == 0, out.stderr
    rows = list(csv.DictReader(io.StringIO(out.stdout)))
    assert len(rows) == 5
    assert {"config.lr", "val_accuracy.last", "val_accuracy.max"} <= set(rows[0])
    accuracies = [float(r["val_accuracy.last"]) for r in rows]
    assert accuracies == sorted(accuracies, reverse=True)


def test_sort_puts_nan_last_and_filter_narrows(samples: Path) -> None:
    out = status(str(samples), "--json", "--sort", "loss", "--filter", "format:tracktui")
    runs = json.loads(out.stdout)["runs"]
    assert {r["format"] for r in runs} == {"tracktui"}
    losses = [r["metrics"].get("loss", {}).get("last") for r in runs]
    present = [v for v in losses if isinstance(v, float)]
    assert present == sorted(present)
    first_missing = next(i for i, v in enumerate(losses) if not isinstance(v, float))
    assert all(not isinstance(v, float) or math.isnan(v) for v in losses[first_missing:])


def test_bad_input_exits_2_with_a_message(tmp_path: Path) -> None:
    missing = status(str(tmp_path / "nope"))
    assert missing.returncode == 2 and "not a readable directory" in missing.stderr
    bad_query = status(str(tmp_path), "--filter", "lr<")
    assert bad_query.returncode == 2 and "column" in bad_query.stderr
    (tmp_path / "tracktui.toml").write_text('[[rule]]\nwhen = "sideways"\n')
    bad_rules = status(str(tmp_path))
    assert bad_rules.returncode == 2 and "line" in bad_rules.stderr


def test_human_table_shows_runs_and_never_markup(samples: Path) -> None:
    out = subprocess.run(
        [sys.executable, "-m", "tui", "status", str(samples)],
        capture_output=True,
        text=True,
        timeout=120,
        env={"COLUMNS": "200", "PATH": "/usr/bin:/bin"},
    )
    assert out.returncode == 0, out.stderr
    assert "resnet-lr0.01" in out.stdout
    assert "[@click=app.quit]" in out.stdout and "\x1b" not in out.stdout


def test_the_app_refuses_a_root_that_does_not_exist(tmp_path: Path) -> None:
    out = subprocess.run(
        [sys.executable, "-m", "tui", str(tmp_path / "missing")],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert out.returncode == 2 and "does not exist" in out.stderr
