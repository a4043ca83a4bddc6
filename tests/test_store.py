from __future__ import annotations

import math

from hypothesis import given
from hypothesis import strategies as st

from tui.core.records import RecordBuilder
from tui.core.store import Batch, RunStore


def block(records: list[dict], ordinal: int = 0):
    builder = RecordBuilder(ordinal, now=0.0)
    builder.add_records(records)
    return builder.build()


def test_summaries_track_last_min_max_and_nonfinite() -> None:
    store = RunStore()
    delta = store.apply(
        Batch(
            "r",
            records=block(
                [{"step": s, "loss": v} for s, v in [(0, 2.0), (1, 0.5), (2, math.nan), (3, 0.7)]]
            ),
        )
    )
    assert delta.created and delta.metrics == {"loss"}
    loss = store.runs["r"].series["loss"]
    assert (loss.last, loss.last_step) == (0.7, 3)
    assert (loss.min, loss.min_step, loss.max, loss.max_step) == (0.5, 1, 2.0, 0)
    assert (loss.count, loss.nonfinite, loss.first_nonfinite_step) == (4, 1, 2)


def test_delta_names_only_what_changed() -> None:
    store = RunStore()
    store.apply(Batch("r", records=block([{"step": 0, "a": 1, "b": 2}])))
    delta = store.apply(Batch("r", records=block([{"step": 1, "a": 3}], 1), log=("hello",)))
    assert not delta.created and delta.metrics == {"a"} and delta.log == 1


def test_replace_drops_the_preview() -> None:
    store = RunStore()
    store.apply(Batch("r", records=block([{"step": 90, "loss": 0.1}]), partial=True, replace=True))
    assert store.runs["r"].partial
    store.apply(
        Batch(
            "r",
            records=block([{"step": s, "loss": 1.0 / (s + 1)} for s in range(91)]),
            replace=True,
        )
    )
    run = store.runs["r"]
    assert not run.partial and run.series["loss"].count == 91 and run.series["loss"].max == 1.0


@given(
    st.lists(st.floats(allow_nan=True, allow_infinity=True, width=32), min_size=1, max_size=300),
    st.lists(st.integers(1, 150), min_size=1, max_size=10),
)
def test_incremental_summaries_equal_one_pass(values: list[float], cuts: list[int]) -> None:
    """Chunks of up to 64 points are summarised in Python, longer ones by numpy: both as one
    pass over all the values would (the earliest of equal extremes)."""
    store = RunStore()
    start = 0
    for cut in [*cuts, len(values)]:
        chunk = values[start : start + cut]
        if chunk:
            records = [{"step": start + i, "v": v} for i, v in enumerate(chunk)]
            store.apply(Batch("r", records=block(records)))
        start += cut
    s = store.runs["r"].series["v"]
    finite = [(v, step) for step, v in enumerate(values) if math.isfinite(v)]
    assert s.count == len(values)
    assert s.nonfinite == len(values) - len(finite)
    first_bad = next((step for step, v in enumerate(values) if not math.isfinite(v)), None)
    assert s.first_nonfinite_step == first_bad
    if finite:
        low = min(finite, key=lambda point: point[0])
        high = max(finite, key=lambda point: point[0])
        assert (s.min, s.min_step, s.max, s.max_step) == (*low, *high)
    else:
        assert s.min_step is None and s.max_step is None
    assert (math.isnan(s.last) and math.isnan(values[-1])) or s.last == values[-1]
    assert s.last_step == len(values) - 1


def test_memory_per_point_is_compact() -> None:
    store = RunStore()
    records = [{"step": i, "loss": 1.0, "acc": 0.5, "lr": 0.1} for i in range(100_000)]
    store.apply(Batch("r", records=block(records)))
    run = store.runs["r"]
    points = sum(s.count for s in run.series.values())
    assert run.nbytes() / points <= 16


def test_a_preview_of_the_end_claims_no_duration_or_rate_it_cannot_know(tmp_path) -> None:
    """The first paint reads only the end of a long run: its duration runs from run.json's
    started_at, its steps/s is unknown, until the full read brings the first record."""
    import json

    from tui.core.engine import Engine
    from tui.core.summary import duration, throughput
    from tui.core.timefmt import parse_time

    run_dir = tmp_path / "root" / "long"
    run_dir.mkdir(parents=True)
    start = parse_time("2024-05-01T10:00:00Z")
    assert start is not None
    (run_dir / "run.json").write_text(json.dumps({"started_at": "2024-05-01T09:59:50Z"}))
    lines = [json.dumps({"step": s, "_time": start + 2 * s, "loss": 1.0}) for s in range(5000)]
    (run_dir / "metrics.jsonl").write_text("\n".join(lines) + "\n")
    engine = Engine(tmp_path / "root", watch="poll")
    engine.scan()
    store = RunStore()
    preview = engine.preview("long", 8192)
    assert preview is not None
    store.apply(preview)
    run = store.runs["long"]
    assert run.partial and not run.head and run.steps[0] > 0
    last = start + 2 * 4999
    assert duration(run, last) == last - (start - 10)  # from started_at, not the tail
    assert throughput(run) is None
    for batch in engine.read_all("long"):
        store.apply(batch)
    assert run.head and not run.partial
    assert duration(run, last) == last - start
    assert throughput(run) == 0.5
    engine.stop()


def test_records_written_within_a_second_have_no_rate() -> None:
    from tui.core.summary import throughput

    store = RunStore()
    builder = RecordBuilder(0, 0.0)
    builder.add_lines(
        [f'{{"step": {s}, "_time": {1.7e9 + s / 1e4}, "x": 1}}'.encode() for s in range(5)]
    )
    block = builder.build()
    assert block is not None
    store.apply(Batch("fast", records=block))
    assert throughput(store.runs["fast"]) is None  # 5 steps in 0.4 ms: no rate
    builder = RecordBuilder(5, 0.0)
    builder.add_lines([b'{"step": 9, "_time": 1700000002.0, "x": 1}'])
    block = builder.build()
    assert block is not None
    store.apply(Batch("fast", records=block))
    assert throughput(store.runs["fast"]) == 4.5  # 9 steps in 2 s
