"""The Trainer's ``trainer_state.json`` read in bulk: tokens, columns and the fallback.

States are written as the Trainer writes them (``json.dumps(..., indent=2,
sort_keys=True)``, which spells a NaN loss ``NaN``); the slow tests that run the real
Trainer are in ``test_formats_wave2.py``.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from tui.core.formats import huggingface
from tui.core.formats.huggingface import TrainerSource, history_columns, parse_state
from tui.core.store import Run, RunStore


def write_state(folder: Path, history: list[Any], **fields: Any) -> Path:
    """A Trainer output directory holding one ``trainer_state.json``."""
    folder.mkdir(parents=True, exist_ok=True)
    state = {"global_step": 4, "max_steps": 4, "log_history": history, **fields}
    text = json.dumps(state, indent=2, sort_keys=True) + "\n"
    (folder / "trainer_state.json").write_text(text)
    return folder


def read_run(folder: Path) -> Run:
    source = TrainerSource(folder.parent, folder.name, folder)
    store = RunStore()
    batch = source.read()
    assert batch is not None
    store.apply(batch)
    (run,) = store
    return run


def points(run: Run, metric: str) -> list[tuple[float, float]]:
    """``(step, value)`` of each point of a series (values as float32 holds them)."""
    series = run.series[metric]
    return [(run.steps[i], series.values[k]) for k, i in enumerate(series.index)]


# A training log, evaluations, and the summary of the end: three kinds of entries, the
# evaluation's and the summary's of one size (7 keys), as with a compute_metrics.
HISTORY = [
    {"epoch": 0.25, "grad_norm": 1.5, "learning_rate": 0.001, "loss": 2.5, "step": 1},
    {"epoch": 0.5, "grad_norm": math.nan, "learning_rate": 0.001, "loss": 2.0, "step": 2},
    {
        "epoch": 0.5,
        "eval_accuracy": 0.25,
        "eval_loss": 2.25,
        "eval_runtime": 0.5,
        "eval_samples_per_second": 8.0,
        "eval_steps_per_second": 2.0,
        "step": 2,
    },
    {"epoch": 0.75, "grad_norm": math.inf, "learning_rate": 0.0005, "loss": 1.5, "step": 3},
    {"epoch": 1.0, "grad_norm": -math.inf, "learning_rate": 0.0005, "loss": 1.25, "step": 4},
    {
        "epoch": 1.0,
        "step": 4,
        "total_flos": 1024.0,
        "train_loss": 1.75,
        "train_runtime": 2.0,
        "train_samples_per_second": 16.0,
        "train_steps_per_second": 2.0,
    },
]


def test_tokens_parse_with_orjson_and_come_back_as_floats() -> None:
    text = json.dumps({"best_metric": math.nan, "log_history": HISTORY, "trial": [math.inf]})
    assert "NaN" in text and "-Infinity" in text
    value, error = parse_state(text.encode(), "trainer_state.json")
    assert error is None
    assert math.isnan(value["best_metric"]) and value["trial"] == [math.inf]
    norms = [e.get("grad_norm") for e in value["log_history"]]
    assert norms[0] == 1.5 and math.isnan(norms[1]) and norms[3:5] == [math.inf, -math.inf]
    assert all(type(n) is float for n in norms if n is not None)


def test_texts_that_hold_the_token_letters_stay_texts() -> None:
    """A text "NaN" or "Infinity run" is not a number: the stdlib parser reads those files."""
    for state in (
        {"log_history": [{"step": 1, "loss": math.nan, "note": "Infinity run"}]},
        {"log_history": [{"step": 1, "loss": "NaN"}, {"step": 2, "loss": math.nan}]},
    ):
        data = json.dumps(state).encode()
        value, error = parse_state(data, "trainer_state.json")
        assert error is None
        assert repr(value) == repr(json.loads(data))
    lone, error = parse_state(b"NaN", "trainer_state.json")  # no object to restore it in
    assert error is None and math.isnan(lone)


def test_a_truncated_state_with_tokens_is_an_error_not_a_state() -> None:
    data = json.dumps({"log_history": HISTORY}).encode()
    value, error = parse_state(data[: len(data) // 2], "checkpoint-2/trainer_state.json")
    assert value is None
    assert error is not None and error.startswith("checkpoint-2/trainer_state.json: invalid JSON")


def test_history_columns_of_mixed_entries() -> None:
    columns = history_columns(HISTORY)
    assert columns is not None
    assert list(columns)[:6] == [
        "epoch",
        "grad_norm",
        "learning_rate",
        "loss",
        "step",
        "eval_accuracy",
    ]
    where, steps = columns["step"]
    assert where is None and steps.tolist() == [1.0, 2.0, 2.0, 3.0, 4.0, 4.0]
    where, loss = columns["loss"]
    assert where is not None and where.tolist() == [0, 1, 3, 4]
    assert loss.tolist() == [2.5, 2.0, 1.5, 1.25]
    where, norm = columns["grad_norm"]
    assert where is not None and where.tolist() == [0, 1, 3, 4]
    assert norm[0] == 1.5 and math.isnan(norm[1]) and norm[2:].tolist() == [math.inf, -math.inf]
    where, accuracy = columns["eval_accuracy"]
    assert where is not None and (where.tolist(), accuracy.tolist()) == ([2], [0.25])
    where, runtime = columns["train_runtime"]
    assert where is not None and (where.tolist(), runtime.tolist()) == ([5], [2.0])
    assert all(values.dtype == np.float64 for _, values in columns.values())


def test_history_columns_read_the_token_texts_a_quoted_parse_left() -> None:
    """The tokens stay texts in the parsed history; the columns read them as floats."""
    data = json.dumps({"best_metric": math.nan, "log_history": HISTORY}).encode()
    value, error, left = huggingface._parse_state(data, "trainer_state.json")
    assert error is None and left and math.isnan(value["best_metric"])
    assert value["log_history"][1]["grad_norm"] == "NaN"  # left for the columns
    columns = history_columns(value["log_history"], tokens=True)
    expected = history_columns(HISTORY)
    assert columns is not None and expected is not None and list(columns) == list(expected)
    for key, (where, values) in expected.items():
        found = columns[key]
        assert (found[0] is None) == (where is None), key
        assert where is None or found[0].tolist() == where.tolist()
        assert found[1].tobytes() == values.tobytes(), key
    # Only the three tokens are numbers: any other text, or a list, refuses the columns.
    for odd in ("nan", "inf", "1.5", "Infinity run", ["NaN"]):
        assert history_columns([{"step": 1, "loss": odd}], tokens=True) is None, odd
    assert history_columns([{"step": 1, "loss": "NaN"}]) is None  # a text, unless told


def test_history_columns_refuse_what_only_records_can_take() -> None:
    entry = {"epoch": 0.5, "loss": 1.0, "step": 1}
    for odd in (
        {"loss": None, "step": 2},  # a null
        {"loss": 1.0},  # no step
        {"loss": 1.0, "step": math.inf},  # a step that cannot be x
        {"loss": 1.0, "step": 2, "done": True},  # a bool
        {"loss": 1.0, "step": 2, "note": "text"},
        {"loss": [1.0, 2.0], "step": 2},
        {"loss": 1.0, "step": 2, "_time": 1.7e9},
        {"loss": 10**400, "step": 2},  # beyond float64
        {},
    ):
        assert history_columns([entry, odd]) is None, odd
    assert history_columns([]) is None
    reordered = history_columns([entry, {"step": 2, "loss": 0.5, "epoch": 1.0}])
    assert reordered is not None and reordered["loss"] == (None, pytest.approx([1.0, 0.5]))


def test_state_with_tokens_read_into_a_run(tmp_path: Path) -> None:
    run = read_run(write_state(tmp_path / "out", HISTORY))
    norm = run.series["grad_norm"]
    assert (norm.count, norm.nonfinite, norm.last, norm.last_step) == (4, 3, -math.inf, 4.0)
    assert points(run, "loss") == [(1.0, 2.5), (2.0, 2.0), (3.0, 1.5), (4.0, 1.25)]
    assert points(run, "eval_loss") == [(2.0, 2.25)]
    assert points(run, "train_runtime") == [(4.0, 2.0)]
    assert points(run, "epoch")[-1] == (4.0, 1.0) and run.series["epoch"].count == 6
    assert "step" not in run.series
    assert run.meta["status"] == "finished" and run.health.notes == []


def test_a_null_loss_and_an_entry_without_step_read_entry_by_entry(tmp_path: Path) -> None:
    history = [
        {"epoch": 0.5, "loss": None, "step": 1},
        {"epoch": 0.75, "loss": 2.0},  # no step: its epoch is its x
        {"epoch": 1.0, "loss": math.nan, "step": 3},
        {"epoch": 1.0, "loss": 1.0, "step": 4},
    ]
    run = read_run(write_state(tmp_path / "out", history))
    assert list(run.steps) == [1.0, 0.75, 3.0, 4.0]
    loss = run.series["loss"]
    assert (loss.count, loss.nonfinite, loss.last, loss.last_step) == (3, 1, 1.0, 4.0)
    assert [(s, v) for s, v in points(run, "loss") if not math.isnan(v)] == [
        (0.75, 2.0),
        (4.0, 1.0),
    ]
    assert points(run, "epoch") == [(1.0, 0.5), (3.0, 1.0), (4.0, 1.0)]


def test_columns_and_records_give_the_same_run(tmp_path: Path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    """The bulk path is a shortcut: the entry-by-entry reader stores the same points."""
    tensorboardX = pytest.importorskip("tensorboardX")
    folder = write_state(tmp_path / "out", HISTORY)
    writer = tensorboardX.SummaryWriter(str(folder / "runs" / "Jan01_09-00-00_host"))
    for step in (1, 2, 3, 4, 5):  # step 5 is past the state: a late record
        writer.add_scalar("train/loss", 3.0 - step * 0.5, step, walltime=1.7e9 + step)
    writer.close()

    def content(run: Run) -> tuple[Any, ...]:
        series = {
            k: (list(s.index), s.values.tobytes(), s.nonfinite) for k, s in run.series.items()
        }
        return list(run.steps), list(run.times), series, run.meta

    bulk = read_run(folder)
    assert list(bulk.times) == [1.7e9 + s for s in (1, 2, 2, 3, 4, 4, 5)]
    assert points(bulk, "loss")[-1] == (5.0, 0.5)
    # Without columns, the entries (their token texts made floats again) are records.
    monkeypatch.setattr(huggingface, "history_columns", lambda history, tokens=False: None)
    assert repr(content(read_run(folder))) == repr(content(bulk))
