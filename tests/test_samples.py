"""The committed sample runs, the live simulator and the demo training script."""

from __future__ import annotations

import importlib.util
import json
import math
import re
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
from conftest import load

from tui.core.engine import Engine
from tui.core.shapes import Bar, Line, Matrix, Table
from tui.core.status import derive_status
from tui.core.store import Run, RunStore

SAMPLES = Path(__file__).resolve().parent.parent / "sample_runs"
FIXTURES = Path(__file__).resolve().parent / "fixtures"
PYTHON = sys.executable
FORBIDDEN = re.compile(
    r"[\x00-\x08\x0a-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069\u200e\u200f\ud800-\udfff]"
)
SWEEP = ("resnet-lr0.1", "resnet-lr0.01", "resnet-lr0.001", "vit-lr0.001", "vit-lr0.0003")


def files_under(root: Path) -> dict[str, bytes]:
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in root.rglob("*") if p.is_file()}


def drain(engine: Engine, store: RunStore) -> None:
    """Read everything the engine finds new, as the app's reader loop does."""
    engine.reconcile(walk_root=True)
    while True:
        keys, _ = engine.take_dirty()
        if not keys:
            return
        for batch in engine.read(keys):
            store.apply(batch)


def run_of(store: RunStore, key: str) -> Run:
    run = store.get(key)
    assert run is not None, f"{key} not found among {sorted(store.runs)}"
    return run


def strings_in(value: Any) -> list[str]:
    if isinstance(value, str):
        return [value]
    if isinstance(value, dict):
        return [s for k, v in value.items() for s in (*strings_in(k), *strings_in(v))]
    if isinstance(value, (list, tuple)):
        return [s for v in value for s in strings_in(v)]
    return []


def stdlib_bad_lines(path: Path) -> set[int]:
    """Line numbers Python's own json module rejects as records (an independent oracle)."""
    data = path.read_bytes()
    lines = data.split(b"\n")
    if not data.endswith(b"\n"):
        lines.pop()  # a partial last line is held back until its newline arrives
    bad = set()
    for number, raw in enumerate(lines, 1):
        if not raw.strip():
            continue
        try:
            value = json.loads(raw.decode("utf-8"))
        except (ValueError, RecursionError):
            bad.add(number)
            continue
        if not isinstance(value, dict):
            bad.add(number)
    return bad


# Committed samples -------------------------------------------------------------------------
@pytest.mark.parametrize("kind", ["samples", "fixtures"])
def test_committed_samples_are_what_make_native_writes(tmp_path: Path, kind: str) -> None:
    out = tmp_path / "generated"
    fixtures = tmp_path / "fixtures"
    command = [PYTHON, str(SAMPLES / "make_native.py"), str(out), "--fixtures", str(fixtures)]
    subprocess.run(command, check=True, timeout=60)
    generated = files_under(out if kind == "samples" else fixtures)
    committed_dir = SAMPLES if kind == "samples" else FIXTURES
    assert generated, "make_native.py wrote nothing"
    for top in {name.split("/")[0] for name in generated}:
        committed_top = committed_dir / top
        committed = (
            files_under(committed_top)
            if committed_top.is_dir()
            else {"": committed_top.read_bytes()}
        )
        fresh = {
            name.removeprefix(top).lstrip("/"): data
            for name, data in generated.items()
            if name == top or name.startswith(top + "/")
        }
        assert sorted(fresh) == sorted(committed), f"{top}: files differ, re-run make_native.py"
        for name, data in fresh.items():
            assert committed[name] == data, f"{top}/{name} differs, re-run make_native.py"


def test_native_samples_are_small() -> None:
    owned = ("sweep", "diverged", "plateaued", "shapes", "valohai", "tracktui.toml")
    total = sum(
        p.stat().st_size
        for top in owned
        for p in ([SAMPLES / top] if (SAMPLES / top).is_file() else (SAMPLES / top).rglob("*"))
        if p.is_file()
    )
    assert total < 1024 * 1024


def test_sweep_runs_finished_with_full_curves(samples: Path) -> None:
    store = load(samples)
    for name in SWEEP:
        run = run_of(store, f"sweep/{name}")
        assert run.name == name
        assert run.meta["status"] == "finished" and run.meta["exit_code"] == 0
        assert derive_status(run, time.time()) == "finished"
        assert {"lr", "batch_size", "optimizer", "model", "seed", "dropout"} <= set(run.config)
        loss = run.series["loss"]
        assert loss.count == 151 and loss.nonfinite == 0 and loss.last_step == 300
        assert loss.last < loss.array()[0]  # it learned
        assert run.series["val_accuracy"].count == 15
        assert run.health.bad_lines == 0 and run.log[-1] == "training finished"
    configs = {run_of(store, f"sweep/{name}").config["lr"] for name in SWEEP}
    assert len(configs) == 4


def test_diverged_run_goes_nan_and_looks_crashed(samples: Path) -> None:
    run = run_of(load(samples), "diverged")
    loss = run.series["loss"]
    assert loss.first_nonfinite_step == 100 and math.isnan(loss.last)
    assert loss.max > 10  # it exploded before it went NaN
    assert math.isinf(run.series["grad_norm"].array()[48])  # step 96: Infinity
    assert "ended_at" not in run.meta
    assert derive_status(run, time.time()) == "crashed"


def test_plateaued_run_stops_improving(samples: Path) -> None:
    run = run_of(load(samples), "plateaued")
    val = run.series["val_accuracy"]
    assert val.max_step == 150 and val.last_step == 400
    assert derive_status(run, time.time()) == "killed"


def test_shapes_run_holds_every_value_shape(samples: Path) -> None:
    run = run_of(load(samples), "shapes")
    for name in ("confusion", "confusion_labeled", "confusion_triples", "confusion_fp_fn"):
        history = run.objects[name]
        assert len(history) == 10 and isinstance(history[-1][1], Matrix), name
    plain, labeled = run.latest("confusion"), run.latest("confusion_labeled")
    triples, fp_fn = run.latest("confusion_triples"), run.latest("confusion_fp_fn")
    assert isinstance(plain, Matrix) and isinstance(fp_fn, Matrix)
    assert isinstance(labeled, Matrix) and isinstance(triples, Matrix)
    assert labeled.rows == triples.rows == ("cat", "dog", "bird")
    assert labeled.values == triples.values == plain.values
    assert fp_fn.fp_fn and fp_fn.rows[-1] == "FP" and fp_fn.cols[-1] == "FN"
    assert isinstance(run.latest("model_layout"), str)
    assert run.latest("phase") == "finetune"
    assert isinstance(run.latest("class_accuracy"), tuple)
    assert isinstance(run.latest("predicted_per_class"), Bar)
    assert isinstance(run.latest("precision_recall"), Line)
    table = run.latest("per_class")
    assert isinstance(table, Table) and table.columns[0] == "class" and len(table.rows) == 3
    assert {"train/loss", "train/accuracy", "val/loss", "val/accuracy", "lr"} <= set(run.series)
    assert run.media == ("confusion_step200.png", "predictions.txt")
    png = (samples / "shapes" / "media" / "confusion_step200.png").read_bytes()
    assert png.startswith(b"\x89PNG\r\n\x1a\n") and png.endswith(b"IEND\xaeB`\x82")


def test_hostile_run_is_read_safely(samples: Path) -> None:
    run = run_of(load(samples), "hostile")
    expected = stdlib_bad_lines(samples / "hostile" / "metrics.jsonl")
    assert len(expected) >= 9
    assert run.health.bad_lines == len(expected)
    assert {number for _, number, _ in run.health.samples} == expected
    loss = run.series["loss"]
    assert loss.count == 52 and loss.last_step == 100  # good records around the bad survive
    assert run.latest("loss") == "true"  # a boolean is not a number
    assert {'quote"key', "back\\slash\\key", "[/]"} <= set(run.series)
    shown = [
        run.name,
        *strings_in(run.meta),
        *run.series,
        *run.objects,
        *(v for h in run.objects.values() for _, v in h if isinstance(v, str)),
        *run.log,
        *(reason for _, _, reason in run.health.samples),
        *run.health.notes,
    ]
    assert len(shown) > 40
    for text in shown:
        assert FORBIDDEN.search(text) is None, repr(text)
    assert "<U+202E>" in run.name and "[@click=app.quit]" in run.name
    assert any("[bold red]not bold[/]" in line for line in run.log)


def test_valohai_log_is_found_with_nan_and_matrix(samples: Path) -> None:
    run = run_of(load(samples), "valohai/train.log")
    assert run.format == "valohai"
    assert run.series["loss"].count == 10
    grad = run.series["grad_norm"]
    assert grad.nonfinite == 1 and grad.first_nonfinite_step == 600
    matrix = run.latest("data")
    assert isinstance(matrix, Matrix)
    assert matrix.values == ((3, 0, 0), (0, 1, 2), (2, 1, 3))
    assert run.latest("model_layout") == "ReLU8x-3xELUx32-softmax8"
    assert "Epoch 10/10" in run.log and "" not in run.log


def test_rules_file_has_every_rule_kind() -> None:
    try:
        import tomllib
    except ModuleNotFoundError:  # Python 3.10
        import tomli as tomllib
    rules = tomllib.loads((SAMPLES / "tracktui.toml").read_text())["rule"]
    kinds = {rule["when"] for rule in rules}
    assert kinds == {"nonfinite", "above", "no_improvement", "worse_than_median", "stalled"}
    assert any(rule.get("action") == "kill" for rule in rules)


# The live simulator -------------------------------------------------------------------------
@pytest.mark.slow
def test_simulate_writes_live_runs_the_engine_reads(tmp_path: Path) -> None:
    root = tmp_path / "live"
    command = [PYTHON, str(SAMPLES / "simulate.py"), str(root), "--runs", "3", "--steps", "20"]
    process = subprocess.Popen([*command, "--interval", "0.02", "--diverge", "1"])
    engine = Engine(root.parent, watch="poll")
    store = RunStore()
    engine.scan()
    while process.poll() is None:  # read while it writes: nothing lost, nothing doubled
        drain(engine, store)
        time.sleep(0.005)
    assert process.returncode == 0
    drain(engine, store)
    engine.stop()
    assert sorted(store.runs) == ["live/run-00-lr0.1", "live/run-01-lr0.03", "live/run-02-lr1"]
    for run in store:
        records = [
            json.loads(line)
            for line in (tmp_path / run.key / "metrics.jsonl").read_text().split("\n")
            if line
        ]
        last = [r for r in records if "loss" in r][-1]
        loss = run.series["loss"]
        assert loss.count == 20 and loss.last_step == 20
        assert run.series["val_loss"].count == 4
        assert run.meta["status"] == "finished" and run.meta["exit_code"] == 0
        assert run.meta["pid"] == process.pid and run.meta["ended_at"]
        assert run.health.bad_lines == 0
        if run.config["lr"] == 1.0:
            assert math.isnan(last["loss"]) and math.isnan(loss.last)
            assert loss.first_nonfinite_step == 10 and loss.nonfinite == 11
        else:
            assert loss.nonfinite == 0 and loss.last == last["loss"]
            assert run.series["accuracy"].last == last["accuracy"]


@pytest.mark.slow
def test_simulate_marks_runs_killed_on_sigterm(tmp_path: Path) -> None:
    root = tmp_path / "live"
    process = subprocess.Popen(
        [PYTHON, str(SAMPLES / "simulate.py"), str(root), "--runs", "2", "--interval", "0.05"]
    )
    metrics = root / "run-00-lr0.1" / "metrics.jsonl"
    while not (metrics.exists() and metrics.stat().st_size) and process.poll() is None:
        time.sleep(0.01)
    process.terminate()
    assert process.wait(timeout=30) == 128 + 15
    for name in ("run-00-lr0.1", "run-01-lr1"):
        meta = json.loads((root / name / "run.json").read_text())
        assert meta["status"] == "killed" and meta["signal"] == 15 and "exit_code" not in meta
    assert not list(root.rglob(".*.tmp"))


def test_simulate_refuses_to_overwrite(tmp_path: Path) -> None:
    (tmp_path / "run-00-lr0.1").mkdir()
    result = subprocess.run(
        [PYTHON, str(SAMPLES / "simulate.py"), str(tmp_path), "--runs", "1", "--diverge", "0"],
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert result.returncode == 2 and "already holds run-00-lr0.1" in result.stderr


# The demo training script -------------------------------------------------------------------
def records_from(stdout: str) -> list[dict[str, Any]]:
    lines = stdout.split("\n")
    records = []
    for i, line in enumerate(lines):
        if line.startswith("{"):
            assert lines[i - 1] == "", "each JSON line follows a blank line"
            records.append(json.loads(line))
    return records


def test_train_demo_prints_valohai_style_lines() -> None:
    result = subprocess.run(
        [PYTHON, str(SAMPLES / "train_demo.py"), "--steps", "10", "--interval", "0"],
        capture_output=True,
        text=True,
        timeout=30,
        check=True,
    )
    records = records_from(result.stdout)
    assert [r["step"] for r in records if "loss" in r] == list(range(1, 11))
    assert [r["step"] for r in records if "val_loss" in r] == [5, 10]
    assert all(math.isfinite(r["loss"]) for r in records if "loss" in r)
    assert result.stdout.rstrip().endswith("train_demo: finished")


@pytest.mark.slow
def test_train_demo_keeps_running_after_nan_until_killed() -> None:
    command = [PYTHON, str(SAMPLES / "train_demo.py"), "--steps", "5", "--interval", "0.01"]
    process = subprocess.Popen([*command, "--diverge-at", "3"], stdout=subprocess.PIPE, text=True)
    assert process.stdout is not None
    seen: list[str] = []
    try:
        while not seen or not seen[-1].startswith('{"step": 12, "loss"'):
            line = process.stdout.readline()
            assert line, "train_demo ended although its loss went NaN"
            seen.append(line.rstrip("\n"))
    finally:
        process.kill()
        process.wait()
    records = records_from("\n".join(seen))
    losses = {r["step"]: r["loss"] for r in records if "loss" in r}
    assert math.isfinite(losses[2]) and all(math.isnan(losses[s]) for s in range(3, 12))


@pytest.mark.slow
@pytest.mark.skipif(
    importlib.util.find_spec("tui.commands.run") is None, reason="tracktui run not built yet"
)
def test_simulate_launch_runs_each_under_tracktui_run(tmp_path: Path) -> None:
    root = tmp_path / "launched"
    command = [PYTHON, str(SAMPLES / "simulate.py"), str(root), "--launch", "--runs", "2"]
    subprocess.run(
        [*command, "--steps", "4", "--interval", "0.01", "--diverge", "0"], check=True, timeout=120
    )
    metas = [json.loads(p.read_text()) for p in root.rglob("run.json")]
    assert len(metas) == 2
    assert all(m["status"] == "finished" and m["exit_code"] == 0 for m in metas)
    for metrics in root.rglob("metrics.jsonl"):
        records = [json.loads(line) for line in metrics.read_text().splitlines() if line]
        assert [r["step"] for r in records if "loss" in r] == [1, 2, 3, 4]
