"""Full histories read in worker processes, then followed by the engine as usual."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

import tui.core.backfill as backfill_module
from tui.core.backfill import Backfill
from tui.core.engine import Engine
from tui.core.store import RunStore


def make_runs(root: Path, runs: int, lines: int) -> None:
    for r in range(runs):
        run = root / f"run-{r}"
        run.mkdir()
        rows = (json.dumps({"step": s, "loss": 1.0 / (1 + s + r)}) for s in range(lines))
        (run / "metrics.jsonl").write_text("\n".join(rows) + "\n")


@pytest.mark.parametrize("workers", [1, 2])
def test_backfill_reads_everything_then_tailing_continues(
    tmp_path: Path, workers: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(backfill_module, "PARALLEL_BYTES", 1)
    make_runs(tmp_path, runs=12, lines=500)
    engine = Engine(tmp_path, watch="poll")
    keys = engine.scan()
    engine.take_dirty()
    store = RunStore()
    for key in keys:  # the first paint: previews of the last lines only
        store.apply(engine.preview(key, 512))
    assert all(run.partial for run in store)
    backfill = Backfill(engine, keys, workers=workers)
    assert backfill.parallel == (workers > 1)
    try:
        backfill.touched(["run-3"])  # changed while its full read was out
        while backfill.busy:
            for batch in backfill.step(priority=["run-7"], timeout=5):
                store.apply(batch)
    finally:
        backfill.close()
    assert backfill.done == 12
    for r in range(12):
        run = store.runs[f"run-{r}"]
        loss = run.series["loss"]
        assert not run.partial and loss.count == 500 and loss.max == 1.0 / (1 + r)
    with open(tmp_path / "run-3" / "metrics.jsonl", "a") as handle:
        handle.write(json.dumps({"step": 500, "loss": 0.0}) + "\n")
    engine.mark(["run-3"])
    keys, _ = engine.take_dirty()
    for batch in engine.read(keys):
        store.apply(batch)
    loss = store.runs["run-3"].series["loss"]
    assert loss.count == 501 and loss.last == 0.0  # the adopted source kept its position
