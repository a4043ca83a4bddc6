"""Formats of wave 2 on files their real libraries write during this test run.

W&B (offline), the Hugging Face Trainer (a tiny random GPT-2 on the CPU), DVCLive and
Sacred are written once per module, in a subprocess, by ``sample_runs/make_foreign.py``;
TensorBoard event files by torch's and tensorboardX's ``SummaryWriter`` in the test.
Each format: exact last value, step and count of its metrics, config, status, NaN counted
as non-finite, growth while it is followed, and a damaged file.
"""

from __future__ import annotations

import json
import math
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
from conftest import read_to_end

from tui.core.engine import Engine
from tui.core.formats.wandb_log import BLOCK, FILE_HEADER
from tui.core.store import Run, RunStore

pytest.importorskip("wandb")
pytest.importorskip("transformers")
pytest.importorskip("dvclive")
pytest.importorskip("sacred")

REPO = Path(__file__).resolve().parent.parent
WANDB_STEPS = 150  # enough records for several 32 KiB blocks
GENERATE = f"""
import sys
sys.path.insert(0, {str(REPO / "sample_runs")!r})
from pathlib import Path
import make_foreign
out = Path(sys.argv[1])
make_foreign.make_wandb(out, steps={WANDB_STEPS}, prune=False)
make_foreign.make_hf_trainer(out, prune=False)
make_foreign.make_dvclive(out)
make_foreign.make_sacred(out)
"""


@pytest.fixture(scope="module")
def written(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The four libraries' output, written once for this module."""
    out = tmp_path_factory.mktemp("wave2")
    env = {**os.environ, "WANDB_MODE": "offline", "WANDB_SILENT": "true", "HF_HUB_OFFLINE": "1"}
    done = subprocess.run(
        [sys.executable, "-c", GENERATE, str(out)],
        cwd=out,
        env=env,
        capture_output=True,
        text=True,
        timeout=240,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    return out


@pytest.fixture
def copy(written: Path, tmp_path: Path):  # type: ignore[no-untyped-def]
    """A private copy of one of the written folders."""

    def make(name: str) -> Path:
        target = tmp_path / name
        shutil.copytree(written / name, target, symlinks=True)
        return target

    return make


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

    def named(self, name: str) -> Run:
        found = [r for r in self.store if r.name == name]
        assert len(found) == 1, [r.name for r in self.store]
        return found[0]

    def close(self) -> None:
        self.engine.stop()


def summary(run: Run, metric: str) -> tuple[Any, ...]:
    """``(last, last step, count, non-finite)`` of one series."""
    series = run.series[metric]
    return (series.last, series.last_step, series.count, series.nonfinite)


# W&B -------------------------------------------------------------------------------------------
def wandb_loss(step: int, failing: bool) -> float:
    return math.nan if failing and step >= WANDB_STEPS // 2 else round(2.0 * 0.9**step, 6)


def test_wandb_offline_runs(copy) -> None:  # type: ignore[no-untyped-def]
    root = copy("wandb_offline")
    live = Live(root)
    assert len(live.store) == 2  # latest-run and the debug-log links add nothing
    good, bad = live.named("lr0.1"), live.named("lr1.0")
    last = WANDB_STEPS - 1
    assert good.format == "wandb"
    assert summary(good, "loss") == (pytest.approx(wandb_loss(last, False)), last, WANDB_STEPS, 0)
    acc = round(0.5 + last / (3 * WANDB_STEPS), 6)
    assert summary(good, "train/acc") == (pytest.approx(acc), last, WANDB_STEPS, 0)
    assert good.series["val/accuracy"].count == WANDB_STEPS // 10
    assert good.config == {
        "lr": 0.1,
        "batch_size": 64,
        "optimizer": {"name": "sgd", "momentum": 0.9},
    }
    assert good.tags == {"baseline": True, "mnist": True}
    assert (good.meta["status"], good.meta["exit_code"]) == ("finished", 0)
    assert good.properties["project"] == "mnist" and good.properties["mode"] == "offline"
    assert good.properties["summary"]["best_loss"] == 0.5
    assert list(good.log)[:2] == ["step 0 loss 2.0", "step 1 loss 1.8"]
    assert len(good.log) == WANDB_STEPS
    assert any(name.startswith("system/") for name in good.series)
    (image,) = good.media
    assert image.startswith("files/media/images/samples_") and (root / good.path / image).is_file()
    assert len(good.latest("weights").y) <= 30  # type: ignore[union-attr]
    loss = bad.series["loss"]
    assert (loss.count, loss.nonfinite, loss.first_nonfinite_step) == (
        WANDB_STEPS,
        WANDB_STEPS - WANDB_STEPS // 2,
        WANDB_STEPS // 2,
    )
    assert (bad.meta["status"], bad.meta["exit_code"]) == ("failed", 1)
    assert good.health.notes == [] and bad.health.notes == []
    live.close()


def test_wandb_log_followed_as_it_grows_and_a_cut_record_waits(copy, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    source = next(copy("wandb_offline").glob("wandb/offline-run-*/run-*.wandb"))
    data = source.read_bytes()
    run_dir = tmp_path / "grow" / "wandb" / source.parent.name
    run_dir.mkdir(parents=True)
    target = run_dir / source.name
    cut = BLOCK + 1234  # inside the second block, most likely inside a record
    target.write_bytes(data[:cut])
    live = Live(tmp_path / "grow")
    (run,) = live.store
    first = run.series["loss"].count
    assert 0 < first < WANDB_STEPS
    assert run.health.notes == []  # a record cut short waits for the rest
    with open(target, "ab") as handle:
        handle.write(data[cut : cut + 5000])
    live.drain()
    assert first <= run.series["loss"].count < WANDB_STEPS
    with open(target, "ab") as handle:
        handle.write(data[cut + 5000 :])
    live.drain()
    assert run.series["loss"].count == WANDB_STEPS
    assert run.meta["status"] in ("finished", "failed")
    assert run.health.notes == []
    live.close()


def test_wandb_corrupt_block_is_skipped_with_a_note(copy) -> None:  # type: ignore[no-untyped-def]
    root = copy("wandb_offline")
    live_before = Live(root)
    counts = {r.name: r.series["loss"].count for r in live_before.store}
    live_before.close()
    source = next(p for p in root.glob("wandb/offline-run-*/run-*.wandb"))
    data = bytearray(source.read_bytes())
    assert data.startswith(FILE_HEADER) and len(data) > 2 * BLOCK
    data[BLOCK + 500] ^= 0xFF  # inside the second block
    source.write_bytes(bytes(data))
    live = Live(root)
    damaged = next(r for r in live.store if r.path.endswith(source.parent.name))
    (note,) = damaged.health.notes
    assert note.startswith(f"{source.name}: damaged block at byte ")
    at = int(note.split("byte ")[1].split(" ")[0].replace(",", ""))
    assert BLOCK <= at <= BLOCK + 500
    assert note.endswith("(checksum mismatch); the rest of that block was skipped")
    loss = damaged.series["loss"]
    assert 0 < loss.count < counts[damaged.name]
    assert loss.last_step == WANDB_STEPS - 1  # later blocks were read
    live.close()


# Hugging Face Trainer ---------------------------------------------------------------------------
def test_wandb_bulk_read_equals_the_record_by_record_read(copy, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    """The fast scan with one decode of every value gives the field-by-field reader's runs."""
    from tui.core.formats import wandb as wandb_format
    from tui.core.formats import wandb_log

    def columns(root: Path) -> dict[str, Any]:
        live = Live(root)
        runs = {
            run.name: (
                run.steps.tolist(),
                {
                    k: (list(s.index), s.values.tobytes(), s.nonfinite)
                    for k, s in run.series.items()
                },
                run.properties.get("summary"),
            )
            for run in live.store
        }
        live.close()
        return runs

    root = copy("wandb_offline")
    bulk = columns(root)
    for module in (wandb_format, wandb_log):  # the history's scan, and the summaries'
        monkeypatch.setattr(module, "simple_items", lambda payload, keys, raws: None)
    one_by_one = columns(root)
    assert repr(bulk) == repr(one_by_one)  # repr: NaN summaries compare equal
    assert bulk["lr1.0"][1]["loss"][2] == WANDB_STEPS - WANDB_STEPS // 2


def test_wandb_json_numbers_decodes_tokens_and_refuses_anything_else() -> None:
    from tui.core.formats.wandb_log import json_numbers, simple_items

    values = json_numbers([b"1", b"-0.5", b"NaN", b"Infinity", b"-Infinity", b"1e-300"])
    assert values is not None
    assert values[:2].tolist() == [1.0, -0.5] and values[5] == 1e-300
    assert math.isnan(values[2]) and values[3] == math.inf and values[4] == -math.inf
    assert json_numbers([b"1", b'"text"']) is None
    assert json_numbers([b'"NaN"']) is None  # a logged text, not the token
    assert json_numbers([b"true"]) is None and json_numbers([b"1", b"{"]) is None
    item = b"\x12\x04loss\x82\x01\x030.5"
    keys: list[bytes] = [b"acc"]
    raws: list[bytes] = [b"1"]
    assert simple_items(b"\x0a" + bytes([len(item)]) + item, keys, raws) == (1, None, False)
    assert keys == [b"acc", b"loss"] and raws == [b"1", b"0.5"]
    cut_short = b"\x0a" + bytes([len(item)]) + item + b"\x0a" + bytes([len(item) + 1]) + item
    assert simple_items(cut_short, keys, raws) is None
    assert keys == [b"acc", b"loss"] and raws == [b"1", b"0.5"]  # nothing of it kept


def test_wandb_run_listed_from_a_preview_then_replaced_by_the_full_read(copy) -> None:  # type: ignore[no-untyped-def]
    """The first paint's preview names the run (and its config, status and newest points)
    from the log's start and end; the full read after it replaces it with every point."""
    root = copy("wandb_offline")
    engine = Engine(root, watch="poll")
    keys = engine.scan()
    engine.take_dirty()
    store = RunStore()
    previews = {}
    for key in keys:
        batch = engine.preview(key, 2048)
        assert batch is not None and batch.replace
        previews[key] = batch
        store.apply(batch)
    good = next(r for r in store if r.name == "lr0.1")
    assert (engine.sources[good.key].directory / "files").is_dir()
    assert previews[good.key].partial and good.partial
    assert good.config["optimizer"] == {"name": "sgd", "momentum": 0.9}
    assert good.tags == {"baseline": True, "mnist": True}
    assert (good.meta["status"], good.properties["project"]) == ("finished", "mnist")
    loss = good.series["loss"]
    last = WANDB_STEPS - 1
    assert loss.last == pytest.approx(wandb_loss(last, False)) and loss.last_step == last
    assert 0 < loss.count < WANDB_STEPS  # only the end of the history
    assert store.runs[next(k for k in keys if k != good.key)].meta["status"] == "failed"
    for batch in engine.read(keys):  # the full read, from the start: the preview moved nothing
        assert batch.replace
        store.apply(batch)
    assert not good.partial
    assert summary(good, "loss") == (pytest.approx(wandb_loss(last, False)), last, WANDB_STEPS, 0)
    assert good.series["val/accuracy"].count == WANDB_STEPS // 10
    whole = engine.preview(good.key, 1 << 30)  # a tail that holds the whole log
    assert whole is not None and not whole.partial
    fresh = RunStore()
    fresh.apply(whole)
    (again,) = fresh
    assert again.series["loss"].values.tobytes() == good.series["loss"].values.tobytes()
    assert again.meta == good.meta
    engine.stop()


def test_wandb_folders_hold_no_run_of_another_format(copy) -> None:  # type: ignore[no-untyped-def]
    """wandb's debug logs are JSON lines: as ROOT, a wandb/ folder, a run folder (or the
    latest-run link to one), with or without its transaction log, yield W&B runs only."""
    folder = copy("wandb_offline") / "wandb"
    assert (folder / "debug-internal.log").is_file()  # a link to a run's logs/
    run_dir = (folder / "latest-run").resolve()
    assert next((run_dir / "logs").glob("debug-internal.log")).stat().st_size > 0

    def formats(root: Path) -> list[str]:
        engine = Engine(root, watch="poll")
        found = [engine.sources[key].format for key in engine.scan()]
        engine.stop()
        return found

    assert formats(folder) == ["wandb", "wandb"]
    assert formats(folder / "latest-run") == ["wandb"]
    assert formats(run_dir) == ["wandb"]
    assert formats(run_dir / "logs") == []
    for log in run_dir.glob("run-*.wandb"):
        log.unlink()  # a run just started: its transaction log not written yet
    assert formats(run_dir) == []
    assert formats(folder) == ["wandb"]


def history_of(path: Path) -> list[dict[str, Any]]:
    return json.loads(path.read_text())["log_history"]


def test_hf_trainer_state_and_events_are_one_run(copy) -> None:  # type: ignore[no-untyped-def]
    root = copy("hf_trainer")
    live = Live(root)
    (run,) = live.store
    assert run.format == "huggingface" and run.name == "gpt2-tiny"
    history = history_of(root / "gpt2-tiny" / "trainer_state.json")
    for key in ("loss", "eval_loss", "learning_rate", "grad_norm", "train_runtime"):
        entries = [e for e in history if key in e]
        assert summary(run, key) == (entries[-1][key], entries[-1]["step"], len(entries), 0), key
    assert "train/loss" not in run.series  # the TensorBoard copy is not counted twice
    assert run.meta["status"] == "finished"
    assert run.config["learning_rate"] == 0.001 and run.config["max_steps"] == 12
    assert run.config["model"]["model_type"] == "gpt2"
    assert run.properties["global_step"] == 12
    assert run.first_time is not None and run.first_time > 1e9  # wall times from the events
    assert run.health.notes == []
    live.close()


def test_hf_trainer_followed_through_checkpoints_and_a_state_rewritten_while_read(
    copy, tmp_path: Path
) -> None:  # type: ignore[no-untyped-def]
    written = copy("hf_trainer") / "gpt2-tiny"
    out = tmp_path / "live" / "gpt2-tiny"
    (out / "runs").mkdir(parents=True)
    events_dir = next((written / "runs").iterdir())
    shutil.copytree(events_dir, out / "runs" / events_dir.name)
    live = Live(tmp_path / "live")
    (run,) = live.store
    assert run.format == "huggingface"
    assert run.series["loss"].count == 6  # before any checkpoint: from the events alone
    shutil.copytree(written / "checkpoint-6", out / "checkpoint-6")
    live.drain()
    assert run.series["loss"].count == 6 and run.series["loss"].last_step == 12
    state = (written / "trainer_state.json").read_bytes()
    (out / "trainer_state.json").write_bytes(state[: len(state) // 2])  # mid-rewrite
    live.drain()
    assert run.health.notes == [] and run.meta.get("status") is None
    (out / "trainer_state.json").write_bytes(state)
    live.drain()
    history = history_of(written / "trainer_state.json")
    losses = [e for e in history if "loss" in e]
    assert summary(run, "loss") == (losses[-1]["loss"], 12, len(losses), 0)
    assert run.meta["status"] == "finished"
    assert (out / "checkpoint-6" / "training_args.bin").exists()  # present, never unpickled
    live.close()


def test_hf_trainer_state_of_a_long_training_is_read_whole(copy) -> None:  # type: ignore[no-untyped-def]
    """A state over 4 MiB (every step logged for 50,000 steps) is read, not refused."""
    folder = copy("hf_trainer") / "gpt2-tiny"
    state = json.loads((folder / "trainer_state.json").read_text())
    steps = 50_000
    state["log_history"] = [
        {"epoch": s / 100, "grad_norm": s * 0.5, "learning_rate": 1e-3, "loss": 1 / s, "step": s}
        for s in range(1, steps + 1)
    ]
    state["global_step"] = state["max_steps"] = steps
    text = json.dumps(state)
    assert len(text) > 4 * 1024 * 1024
    (folder / "trainer_state.json").write_text(text)
    shutil.rmtree(folder / "runs")
    live = Live(folder.parent)
    run = live.named("gpt2-tiny")
    assert summary(run, "loss") == (1 / steps, steps, steps, 0)
    assert run.properties["global_step"] == steps
    assert run.health.notes == []
    live.close()


# DVCLive ----------------------------------------------------------------------------------------
def test_dvclive_run_grows_and_a_bad_row_is_a_bad_line(copy) -> None:  # type: ignore[no-untyped-def]
    root = copy("dvclive")
    live = Live(root)
    (run,) = live.store
    assert run.format == "dvclive" and run.name == "dvclive"
    assert summary(run, "train/loss") == (pytest.approx(round(1.5 * 0.8**5, 6)), 5, 6, 0)
    assert summary(run, "val/acc")[1:] == (5, 6, 0)
    assert summary(run, "val/loss")[1:] == (3, 1, 1)
    assert run.config == {"lr": 0.01, "epochs": 6, "model": {"layers": 2}}
    assert run.media == ("plots/images/confusion.png",)
    assert run.first_time is not None and run.first_time > 1e9  # timestamps are milliseconds
    tsv = root / "dvclive" / "plots" / "metrics" / "train" / "loss.tsv"
    with open(tsv, "a") as handle:
        handle.write("6\t0.25\nseven\tbroken\n7\tinf\n")
    live.drain()
    assert summary(run, "train/loss") == (math.inf, 7, 8, 1)
    assert run.health.bad_lines == 1
    live.close()


# Sacred -----------------------------------------------------------------------------------------
def test_sacred_runs_statuses_and_metrics(copy) -> None:  # type: ignore[no-untyped-def]
    live = Live(copy("sacred"))
    runs = {r.key.split("/")[-1]: r for r in live.store}
    assert sorted(runs) == ["1", "2", "3"]
    assert [runs[k].meta["status"] for k in "123"] == ["finished", "failed", "killed"]
    first = runs["1"]
    assert first.format == "sacred" and first.name == "mnist/1"
    assert summary(first, "loss")[1:] == (5, 6, 1)
    assert first.series["loss"].last_step == 5 and math.isnan(first.series["loss"].last)
    assert first.series["loss"].max == pytest.approx(round(1.0 / 1.01, 6))
    assert summary(first, "val.acc") == (0.9, 5, 1, 0)
    assert first.config["lr"] == 0.01 and first.config["outcome"] == "complete"
    assert first.properties["result"] == 0.25
    assert list(first.log)[:1] == ["epoch 0"]
    assert runs["2"].properties["error"] == "RuntimeError: diverged"
    assert all(r.health.notes == [] for r in runs.values())
    live.close()


def test_sacred_heartbeat_and_metrics_rewritten_while_read(copy) -> None:  # type: ignore[no-untyped-def]
    folder = copy("sacred") / "runs" / "1"
    run_json = json.loads((folder / "run.json").read_text())
    run_json.update(status="RUNNING", heartbeat="2026-01-01T09:00:10.000000")
    run_json.pop("stop_time")
    (folder / "run.json").write_text(json.dumps(run_json))
    metrics = (folder / "metrics.json").read_text()
    live = Live(folder.parent)
    run = live.named("mnist/1")
    assert run.meta["status"] == "running"
    assert run.last_time == pytest.approx(1767258010.0)  # the heartbeat, as evidence of life
    (folder / "metrics.json").write_text(metrics[: len(metrics) // 2])  # mid-rewrite
    live.drain()
    assert run.series["loss"].count == 6 and run.health.notes == []
    grown = json.loads(metrics)
    grown["loss"]["steps"].append(6)
    grown["loss"]["values"].append(0.1)
    grown["loss"]["timestamps"].append("2026-01-01T09:00:20.000000")
    (folder / "metrics.json").write_text(json.dumps(grown))
    run_json.update(heartbeat="2026-01-01T09:00:20.000000")
    (folder / "run.json").write_text(json.dumps(run_json))
    live.drain()
    assert summary(run, "loss") == (pytest.approx(0.1), 6, 7, 1)
    assert run.last_time == pytest.approx(1767258020.0)
    live.close()


def read_sacred(folder: Path) -> Run:
    """One Sacred run folder read to its end by a fresh source."""
    from tui.core.formats.sacred import SacredSource

    source = SacredSource(folder.parent, folder.name, folder)
    try:
        return read_to_end(source)
    finally:
        source.close()


def test_sacred_stamps_read_in_numpy_as_numpys_parser_reads_them() -> None:
    import datetime as dt
    import random

    from tui.core.formats.sacred import stamp_seconds
    from tui.core.records import times_column

    def same(stamps: list[Any]) -> None:
        expected = times_column(stamps, math.inf)
        assert stamp_seconds(stamps).tobytes() == expected.tobytes(), stamps[:3]

    shuffle = random.Random(13)
    for _ in range(100):
        start = dt.datetime(1, 1, 1) + dt.timedelta(seconds=shuffle.randrange(315_000_000_000))
        moments = [start + dt.timedelta(microseconds=shuffle.randrange(10**13)) for _ in range(40)]
        same([m.isoformat() for m in moments if m.microsecond])
    same(
        [
            "2024-02-29T23:59:59.999999",
            "1969-12-31T23:59:59.999999",
            "1970-01-01T00:00:00.000001",
            "2100-03-01T00:00:00.000000",
        ]
    )
    # Anything else as times_column reads it: impossible dates, other widths and spellings.
    for odd in (
        "2023-02-29T00:00:00.000000",
        "2026-13-01T00:00:00.000000",
        "2026-01-01T24:00:00.000000",
        "2026-01-01T09:00:00",  # isoformat() of a whole second
        "2026-01-01 09:00:00.000000",
        "2026-01-01T09:00:00.000000Z",
        "0000-01-01T09:00:00.000000",
    ):
        same(["2026-01-01T09:00:00.000001", odd])
    same(["2026-01-01T09:00:00.00000", "52026-01-01T09:00:00.000000"])  # widths that add up
    same(["2026-01-01T09:00:00.000001", 1767258000.5, None])


def test_sacred_metrics_the_typed_decoder_refuses_read_as_plain_json(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """NaN (bare, as json.dumps writes it), bools, nulls and texts: the plain path reads
    them; numbers alone: both paths give the same run."""
    from tui.core.formats import sacred

    folder = tmp_path / "1"
    folder.mkdir()
    for name, text in (("run.json", '{"status": "COMPLETED"}'), ("config.json", "{}")):
        (folder / name).write_text(text)
    (folder / "cout.txt").write_text("")
    stamps = [f"2026-01-01T09:00:{s:02d}.{s * 7:06d}" for s in range(6)]
    documents = {
        "numbers": {"loss": [0.5, 1, 2.5e-300, -0.0, 3, 4]},
        "nan": {"loss": [0.5, math.nan, 1.0, math.inf, 2, 3]},
        "bool": {"loss": [0.5, True, 1.0, 2, 3, 4]},
        "null": {"loss": [0.5, None, 1.0, 2, 3, 4]},
        "text": {"loss": [0.5, "x", 1.0, 2, 3, 4]},
    }
    for label, values in documents.items():
        metrics = {
            name: {"steps": list(range(6)), "timestamps": stamps, "values": column}
            for name, column in values.items()
        }
        metrics["acc"] = {"steps": [0, 2, 4], "timestamps": stamps[:3], "values": [0.1, 0.2, 0.3]}
        (folder / "metrics.json").write_text(json.dumps(metrics))
        typed = read_sacred(folder)
        with monkeypatch.context() as patched:
            patched.setattr(sacred, "_metrics_of", lambda data: (None, None))
            plain = read_sacred(folder)
        assert typed.steps.tolist() == plain.steps.tolist(), label
        assert typed.times.tolist() == plain.times.tolist(), label
        for name in ("loss", "acc"):
            assert list(typed.series[name].index) == list(plain.series[name].index), label
            assert typed.series[name].array().tobytes() == plain.series[name].array().tobytes()
        assert typed.times[0] == 1767258000.0 and typed.times[1] == 1767258001.000007, label


# TensorBoard ------------------------------------------------------------------------------------
def test_tensorboard_matches_event_accumulator_and_grows(tmp_path: Path) -> None:
    torch_tb = pytest.importorskip("torch.utils.tensorboard")
    accumulator = pytest.importorskip("tensorboard.backend.event_processing.event_accumulator")
    import numpy as np

    logdir = tmp_path / "tb" / "run"
    writer = torch_tb.SummaryWriter(str(logdir))
    for step in range(20):
        writer.add_scalar("loss", 1.0 / (step + 1) if step != 7 else math.nan, step)
        writer.add_scalar("lr", 0.1 * 0.9**step, step, new_style=True)
    writer.add_histogram("weights", np.arange(100.0), 3)
    writer.add_image("sample", np.zeros((3, 4, 4)), 3)
    writer.flush()
    live = Live(tmp_path / "tb")
    (run,) = live.store
    reference = accumulator.EventAccumulator(
        str(logdir), size_guidance={"scalars": 0, "tensors": 0}
    )
    reference.Reload()
    events = reference.Scalars("loss")  # simple_value events
    got = run.series["loss"]
    assert got.count == len(events) == 20
    assert got.last_step == events[-1].step
    assert got.array().tolist() == pytest.approx([e.value for e in events], nan_ok=True)
    tensors = reference.Tensors("lr")  # new_style: a scalar tensor of the scalars plugin
    assert summary(run, "lr")[1:] == (tensors[-1].step, len(tensors), 0)
    assert run.series["lr"].last == pytest.approx(0.1 * 0.9**19, rel=1e-6)
    assert run.series["loss"].nonfinite == 1
    assert run.media == ("images/sample @ step 3",)
    assert sum(run.latest("weights").y) == 100  # type: ignore[union-attr]
    for step in range(20, 25):
        writer.add_scalar("loss", 0.01, step)
    writer.add_hparams({"lr": 0.1, "optimizer": "adam"}, {"hparam/best": 0.5})
    writer.close()
    live.drain()
    assert len(live.store) == 1  # add_hparams' subdirectory joins its parent run
    assert summary(run, "loss") == (pytest.approx(0.01), 24, 25, 1)
    assert run.config == {"lr": 0.1, "optimizer": "adam"}
    assert run.health.notes == []
    live.close()


def test_tensorboardx_file_cut_mid_record_waits_then_reads(tmp_path: Path) -> None:
    from tensorboardX import SummaryWriter

    source_dir = tmp_path / "src"
    writer = SummaryWriter(str(source_dir))
    for step in range(50):
        writer.add_scalar("acc", step / 50, step)
    writer.close()
    (source,) = source_dir.glob("events.out.tfevents.*")
    data = source.read_bytes()
    target_dir = tmp_path / "tb" / "cut"
    target_dir.mkdir(parents=True)
    target = target_dir / source.name
    target.write_bytes(data[: len(data) // 2 + 3])
    live = Live(tmp_path / "tb")
    (run,) = live.store
    partial = run.series["acc"].count
    assert 0 < partial < 50 and run.health.notes == []
    old = time.time() - 3600
    os.utime(target, (old, old))
    live.drain()
    assert "incomplete final record" in run.health.notes[0]
    target.write_bytes(data)
    live.drain()
    assert summary(run, "acc") == (pytest.approx(49 / 50), 49, 50, 0)
    live.close()


# status --json ----------------------------------------------------------------------------------
def test_status_json_lists_every_new_format(written: Path, tmp_path: Path) -> None:
    root = tmp_path / "all"
    for name in ("wandb_offline", "hf_trainer", "dvclive", "sacred"):
        shutil.copytree(written / name, root / name, symlinks=True)
    done = subprocess.run(
        [sys.executable, "-m", "tui", "status", str(root), "--json"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    runs = json.loads(done.stdout)["runs"]
    assert sorted({r["format"] for r in runs}) == ["dvclive", "huggingface", "sacred", "wandb"]
    failing = next(r for r in runs if r["name"] == "lr1.0")
    assert failing["status"] == "failed"
    assert failing["metrics"]["loss"]["last"] == "nan"
    assert failing["metrics"]["loss"]["nonfinite"] == WANDB_STEPS - WANDB_STEPS // 2
    trainer = next(r for r in runs if r["format"] == "huggingface")
    assert trainer["status"] == "finished" and trainer["metrics"]["loss"]["last_step"] == 12
