from __future__ import annotations

import json
import math
from datetime import datetime
from unittest.mock import patch

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tui.core.records import MAX_METRICS, RecordBlock, RecordBuilder, parse_line, parse_time
from tui.core.shapes import Bar, Line, Matrix, Table, as_matrix
from tui.core.store import Batch, RunStore
from tui.core.tail import Lines


def build(lines: list[bytes]) -> tuple[RunStore, RecordBuilder]:
    builder = RecordBuilder(now=1000.0)
    builder.add_lines(lines)
    store = RunStore()
    store.apply(Batch("r", records=builder.build()))
    return store, builder


def test_python_nan_and_infinity_parse() -> None:
    record, reason = parse_line(b'{"loss": NaN, "a": Infinity, "b": -Infinity}')
    assert reason is None and record is not None
    assert math.isnan(record["loss"]) and record["a"] == math.inf and record["b"] == -math.inf


def test_rejections_are_explained() -> None:
    assert parse_line(b"[1, 2]")[1] == "not a JSON object (list)"
    assert parse_line(b"3")[1] == "not a JSON object (int)"
    assert "invalid JSON" in (parse_line(b'{"a": nan}')[1] or "")
    assert "invalid JSON" in (parse_line(b'{"a": 1')[1] or "")
    assert "invalid JSON" in (parse_line(b'{"a": "\xff\xfe"}')[1] or "")
    deep = b'{"a": ' + b"[" * 100_000 + b"NaN" + b"]" * 100_000 + b"}"
    assert parse_line(deep)[0] is None  # RecursionError is caught, not raised


def test_bad_lines_are_counted_with_their_numbers() -> None:
    store, builder = build(
        [b'{"step": 1, "loss": 1.0}', b"garbage", b"", b"[1]", b'{"step": 2, "loss": 0.5}']
    )
    assert [n for n, _ in builder.bad] == [2, 4]
    assert store.runs["r"].series["loss"].count == 2


def test_x_value_preference_and_fallback_to_index() -> None:
    store, _ = build(
        [
            b'{"epoch": 3, "iteration": 9, "acc": 0.1}',
            b'{"_step": 7, "epoch": 4, "acc": 0.2}',
            b'{"acc": 0.3}',
        ]
    )
    run = store.runs["r"]
    acc = run.series["acc"]
    assert run.x_values(acc).tolist() == [3.0, 7.0, 2.0]  # epoch, _step, then the record index
    assert run.series["iteration"].last == 9  # a lower-priority x key stays a metric


def test_booleans_are_not_numbers() -> None:
    store, _ = build([b'{"step": 1, "flag": true, "loss": 1}'])
    run = store.runs["r"]
    assert "flag" not in run.series and run.latest("flag") == "true"


def test_nested_objects_are_flattened() -> None:
    store, _ = build([b'{"step": 1, "train": {"loss": 0.3, "extra": {"acc": 0.9}}}'])
    assert set(store.runs["r"].series) == {"train/loss", "train/extra/acc"}


def test_time_is_taken_from_records_or_read_time() -> None:
    store, _ = build(
        [
            b'{"step": 1, "_time": "2017-04-04T15:03:39.321000", "a": 1}',
            b'{"step": 2, "a": 2}',
            b'{"step": 3, "_time": 1500000000.5, "a": 3}',
        ]
    )
    times = list(store.runs["r"].times)
    assert times[0] == parse_time("2017-04-04T15:03:39.321000Z") == 1491318219.321
    assert times[1] == 1000.0 and times[2] == 1500000000.5


def test_iso_time_column_fast_path_matches_slow_path() -> None:
    stamps = [f"2026-01-01T00:00:{s:02d}.500000" for s in range(20)]
    lines = [f'{{"step": {i}, "_time": "{t}", "loss": 1}}'.encode() for i, t in enumerate(stamps)]
    store, _ = build(lines)
    assert list(store.runs["r"].times) == [parse_time(t) for t in stamps]


def test_every_value_shape() -> None:
    store, _ = build(
        [
            b'{"step": 1, "model_layout": "ReLU8x-3xELUx32", "vec": [1, 2, 3.5]}',
            b'{"step": 2, "cm": [[3, 0, 0], [0, 1, 2], [2, 1, 3]]}',
            b'{"step": 3, "cm2": [["a", "b"], [5, 1], [2, 7]]}',
            b'{"step": 4, "cm3": [["cat", "cat", 4], ["cat", "dog", 1], ["dog", "cat", 2], ["dog", "dog", 6]]}',
            b'{"step": 5, "heat": {"categories": ["a", "b"], "values": [[5, 1, 0], [2, 7, 1], [1, 0, 0]]}}',
            b'{"step": 6, "bar": {"x": ["a", "b"], "y": [1, 2]}, "roc": {"steps": [0, 0.5, 1], "values": [0, 0.8, 1]}}',
            b'{"step": 7, "tab": {"epoch": [1, 2], "name": ["x", "y"]}}',
        ]
    )
    run = store.runs["r"]
    assert run.latest("model_layout") == "ReLU8x-3xELUx32"
    assert run.latest("vec") == (1.0, 2.0, 3.5)
    assert run.latest("cm") == Matrix(
        ("0", "1", "2"), ("0", "1", "2"), ((3, 0, 0), (0, 1, 2), (2, 1, 3))
    )
    assert run.latest("cm2") == Matrix(("a", "b"), ("a", "b"), ((5, 1), (2, 7)))
    assert run.latest("cm3") == Matrix(("cat", "dog"), ("cat", "dog"), ((4, 1), (2, 6)))
    heat = run.latest("heat")
    assert (
        isinstance(heat, Matrix)
        and heat.fp_fn
        and heat.rows == ("a", "b", "FP")
        and heat.cols[-1] == "FN"
    )
    assert run.latest("bar") == Bar(("a", "b"), (1.0, 2.0))
    assert run.latest("roc") == Line((0.0, 0.5, 1.0), (0.0, 0.8, 1.0))
    assert run.latest("tab") == Table(("epoch", "name"), ((1.0, "x"), (2.0, "y")))
    assert run.objects["cm"][-1][0] == 2.0  # matrices are kept per step


def test_three_by_three_numeric_rows_are_a_matrix_not_triples() -> None:
    assert as_matrix([[1, 2, 3], [4, 5, 6], [7, 8, 9]]) == Matrix(
        ("0", "1", "2"), ("0", "1", "2"), ((1, 2, 3), (4, 5, 6), (7, 8, 9))
    )


def test_hostile_strings_are_sanitized_everywhere() -> None:
    store, _ = build(
        [b'{"step": 1, "na\\u001b[31mme": "\\u001b]52;c;eA==\\u0007[@click=app.quit]"}']
    )
    run = store.runs["r"]
    assert run.latest("name") == "[@click=app.quit]"


@given(
    st.lists(
        st.fixed_dictionaries(
            {"step": st.integers(0, 10**6)},
            optional={
                "loss": st.floats(allow_nan=True, allow_infinity=True),
                "acc": st.floats(0, 1),
            },
        ),
        max_size=30,
    )
)
def test_fast_and_slow_paths_agree(records: list[dict]) -> None:
    import json

    lines = [json.dumps(r).encode() for r in records]
    fast = RecordBuilder(now=5.0)
    fast.add_lines(lines)
    slow = RecordBuilder(now=5.0)
    # A text value sends a record group down the per-record path.
    slow.add_records([{**r, "note": "x"} for r in records])
    a, b = fast.build(), slow.build()
    if a is None:
        assert b is None
        return
    assert a.steps.tolist() == b.steps.tolist()
    assert set(a.scalars) == set(b.scalars)
    for name in a.scalars:
        np.testing.assert_array_equal(a.scalars[name][0], b.scalars[name][0])
        np.testing.assert_array_equal(a.scalars[name][1], b.scalars[name][1])


def test_a_wide_table_with_nan_is_not_mistaken_for_deep_nesting() -> None:
    rows = ", ".join(f"[{i}, NaN]" for i in range(2000))
    record, reason = parse_line(f'{{"step": 1, "table": [{rows}]}}'.encode())
    assert reason is None and record is not None and len(record["table"]) == 2000


# Issue 10 item 11: numbers, duplicate keys and metric counts ------------------------------
def block_of(lines: list[bytes]) -> RecordBlock:
    builder = RecordBuilder(now=1000.0)
    builder.add_lines(lines)
    block = builder.build()
    assert block is not None and not builder.bad
    return block


@pytest.mark.parametrize(
    "line",
    [
        b'{"step": 1, "loss": 1e400}',  # alone (orjson refuses it: the stdlib takes over)
        b'{"step": 1, "loss": 1e400, "acc": NaN}',  # beside a NaN token
        b'{"step": 1, "loss": 1E+400}',
        b'{"step": 1, "loss": ' + b"9" * 400 + b"}",  # an integer beyond float64
        b'{"step": 1, "loss": ' + b"9" * 5000 + b"}",  # beyond int()'s 4,300 digits too
    ],
)
def test_numbers_beyond_float64_are_infinite_whatever_else_the_line_holds(line: bytes) -> None:
    record, reason = parse_line(line)
    assert reason is None and record is not None and record["loss"] == math.inf
    store, builder = build([line])
    loss = store.runs["r"].series["loss"]
    assert not builder.bad and loss.last == math.inf and loss.nonfinite == 1


def test_negative_overflow_is_minus_infinity() -> None:
    assert parse_line(b'{"a": -1e400, "b": -' + b"1" * 400 + b"}") == (
        {"a": -math.inf, "b": -math.inf},
        None,
    )


@pytest.mark.parametrize(
    ("steps", "noted"),
    [
        ([0.0, -(2.0**53)], True),
        ([0.0, 2.0**53 - 1, -(2.0**53) + 1], False),
        ([2.0**53, 1.0], True),
    ],
)
def test_big_steps_in_columns_are_noted_by_magnitude(steps: list[float], noted: bool) -> None:
    builder = RecordBuilder(now=1000.0)
    n = len(steps)
    builder.add_columns(n, {"step": (None, np.array(steps)), "loss": (None, np.ones(n))})
    block = builder.build()
    assert block is not None and block.steps.tolist() == steps
    assert any("2**53" in note for note in block.notes) is noted


def test_a_full_finite_x_column_gives_every_step_and_is_no_metric() -> None:
    builder = RecordBuilder(ordinal=5, now=1000.0)
    columns = {
        "epoch": (None, np.array([0.0, 1.0, 2.0])),
        "step": (None, np.array([10.0, 20.0, 30.0])),
        "loss": (None, np.array([0.5, 0.25, 0.125])),
    }
    builder.add_columns(3, columns)
    block = builder.build()
    assert block is not None
    assert block.steps.tolist() == [10.0, 20.0, 30.0]  # step is preferred over epoch
    assert sorted(block.scalars) == ["epoch", "loss"]
    assert block.scalars["epoch"][1].tolist() == [0.0, 1.0, 2.0]
    assert block.scalars["loss"][0].tolist() == [0, 1, 2]


def test_an_x_column_with_a_gap_gives_the_steps_it_has() -> None:
    builder = RecordBuilder(ordinal=5, now=1000.0)
    columns = {
        "step": (None, np.array([10.0, math.nan, 30.0])),
        "epoch": (None, np.array([0.0, 1.0, 2.0])),
        "loss": (None, np.array([0.5, 0.25, 0.125])),
    }
    builder.add_columns(3, columns)
    block = builder.build()
    assert block is not None
    assert block.steps.tolist() == [10.0, 1.0, 30.0]  # epoch fills the step's gap
    assert block.scalars["step"][0].tolist() == [1]  # the NaN step stays a point
    assert block.scalars["epoch"][0].tolist() == [0, 2]


@pytest.mark.parametrize("count", [1, 80])  # the per-line path and the bulk decoder
def test_steps_beyond_two_to_the_53_are_noted(count: int) -> None:
    big = 2**53 + 1
    lines = [b'{"step": %d, "loss": 0.5}' % (big + 2 * i) for i in range(count)]
    block = block_of(lines)
    assert any("2**53" in note for note in block.notes)
    store = RunStore()
    delta = store.apply(Batch("r", records=block))
    assert delta.health and any("2**53" in n for n in store.runs["r"].health.notes)
    assert block_of([b'{"step": %d, "loss": 0.5}' % (2**53 - 1)]).notes == ()


@pytest.mark.parametrize(
    "lines",
    [
        [b'{"step": 1, "loss": 1.0, "loss": 2.0}'],  # all numeric: the grouped fast path
        [b'{"step": 1, "note": "x", "loss": 1.0, "loss": 2.0}'],  # text: per record
        [b'{"step": 1, "loss": 1.0, "loss": 2.0, "bad": NaN}'],  # the stdlib fallback
        [b'{"step": %d, "loss": 1.0}' % i for i in range(79)]
        + [b'{"step": 79, "loss": 1.0, "loss": 2.0}'],  # the bulk decoder
    ],
)
def test_duplicate_keys_are_noted_and_the_last_value_wins(lines: list[bytes]) -> None:
    block = block_of(lines)
    assert block.scalars["loss"][1][-1] == 2.0
    notes = [n for n in block.notes if "duplicate keys" in n]
    assert len(notes) == 1 and f"line {len(lines)}" in notes[0] and '"loss"' in notes[0]


def test_nested_duplicate_keys_are_noted() -> None:
    block = block_of([b'{"step": 1, "train": {"loss": 1.0, "loss": 3.0}}'])
    assert block.scalars["train/loss"][1].tolist() == [3.0]
    assert any("duplicate keys" in n and '"loss"' in n for n in block.notes)


def test_colons_in_strings_and_keys_are_not_duplicates() -> None:
    lines = [
        b'{"step": 1, "_time": "2026-01-01T10:00:00Z", "a:b": 1, "t": "x: y"}',
        b'{"step": 2, "esc": "\\u003a", "nested": {"k": "::"}, "v": [{"x:": 1}]}',
    ]
    assert block_of(lines).notes == ()
    stamps = [
        b'{"step": %d, "_time": "2026-01-01T10:00:%02d", "loss": 1}' % (i, i % 60)
        for i in range(100)
    ]
    assert block_of(stamps).notes == ()  # bulk decoder with ISO times


@given(
    st.lists(
        st.dictionaries(
            st.text(max_size=6),
            st.one_of(st.integers(-5, 5), st.floats(allow_nan=False), st.text(max_size=6)),
            max_size=5,
        ),
        min_size=1,
        max_size=70,
    )
)
def test_records_without_duplicate_keys_are_never_noted(records: list[dict]) -> None:
    import json

    builder = RecordBuilder(now=5.0)
    builder.add_lines([json.dumps(r).encode() for r in records])
    block = builder.build()
    assert block is None or not any("duplicate" in n for n in block.notes)


def test_metric_names_are_capped_within_one_record() -> None:
    wide = b"{" + b", ".join(b'"m%d": %d' % (i, i) for i in range(100_000)) + b"}"
    block = block_of([wide])
    assert len(block.scalars) == MAX_METRICS
    assert any(f"more than {MAX_METRICS:,} metric names" in n for n in block.notes)
    store = RunStore()
    store.apply(Batch("r", records=block))
    assert len(store.runs["r"].series) == MAX_METRICS


def test_distinct_metrics_per_run_are_capped_across_batches() -> None:
    store = RunStore()
    for batch in range(3):  # 12,000 names in all, 4,000 new ones per read
        builder = RecordBuilder(now=1.0)
        names = range(batch * 4000, (batch + 1) * 4000)
        builder.add_lines([b"{" + b", ".join(b'"m%d": 1' % i for i in names) + b"}"])
        store.apply(Batch("r", records=builder.build()))
    run = store.runs["r"]
    assert len(run.series) == MAX_METRICS and "m9999" in run.series and "m10000" not in run.series
    capped = [n for n in run.health.notes if "distinct metrics" in n]
    assert len(capped) == 1 and run.health.metrics_capped


# Issue 15 item 1: Python's NaN/Infinity tokens keep the bulk decoder ----------------------
def _token(value: float) -> str:
    return "NaN" if math.isnan(value) else ("Infinity" if value > 0 else "-Infinity")


def _json_line(record: dict) -> bytes:
    """``record`` as json.dumps writes it (bare NaN/Infinity), with a space or none."""
    parts = []
    for i, (key, value) in enumerate(record.items()):
        text = _token(value) if isinstance(value, float) and not math.isfinite(value) else None
        text = text or json.dumps(value)
        parts.append(f'"{key}":{" " * (i % 2)}{text}')
    return ("{" + ", ".join(parts) + "}").encode()


def _assert_same_blocks(a: RecordBlock | None, b: RecordBlock | None) -> None:
    assert (a is None) == (b is None)
    if a is None or b is None:
        return
    np.testing.assert_array_equal(a.steps, b.steps)
    np.testing.assert_array_equal(a.times, b.times)
    assert set(a.scalars) == set(b.scalars)
    for name in a.scalars:
        np.testing.assert_array_equal(a.scalars[name][0], b.scalars[name][0])
        np.testing.assert_array_equal(a.scalars[name][1], b.scalars[name][1])
    assert a.objects == b.objects and a.notes == b.notes


_ANY_FLOAT = st.floats(allow_nan=True, allow_infinity=True)


@given(
    st.lists(
        st.fixed_dictionaries(
            {},
            optional={
                "step": st.one_of(st.integers(0, 10**6), _ANY_FLOAT),
                "epoch": st.one_of(st.integers(0, 99), _ANY_FLOAT),
                "loss": _ANY_FLOAT,
                "acc": st.floats(0, 1),
                "_time": st.one_of(st.floats(0, 2e9), _ANY_FLOAT),
            },
        ),
        min_size=64,  # BULK_MIN: the bulk decoder's turn
        max_size=120,
    )
)
@settings(deadline=None)  # a hundred lines parsed one by one: slow on a busy machine
def test_nan_and_infinity_tokens_keep_the_bulk_path_with_the_slow_paths_results(
    records: list[dict],
) -> None:
    lines = [_json_line(r) for r in records]
    fast = RecordBuilder(now=5.0)
    with patch.object(RecordBuilder, "add_records", side_effect=AssertionError("slow path")):
        fast.add_lines(lines)
    slow = RecordBuilder(now=5.0)
    for i, line in enumerate(lines):  # one line at a time: parse_line and the per-record path
        record, reason = parse_line(line)
        assert reason is None and record is not None
        slow.add_records([record])
        assert slow.ordinal == i + 1
    _assert_same_blocks(fast.build(), slow.build())


def test_nan_inside_strings_is_left_alone() -> None:
    """Tokens are quoted only as values: keys and times that spell them stay text."""
    lines = [
        b'{"step": %d, "a:NaN": 2, "b: Infinity,": 3, "loss": NaN, "_time": "T:NaN"}' % i
        for i in range(80)
    ]
    block = block_of(lines)
    assert block.scalars["a:NaN"][1].tolist() == [2.0] * 80
    assert block.scalars["b: Infinity,"][1].tolist() == [3.0] * 80
    assert np.isnan(block.scalars["loss"][1]).all() and block.times.tolist() == [1000.0] * 80


@pytest.mark.parametrize("text", [b'"NaN"', b'"-Infinity"', b'"\\u004eaN"'])
def test_text_that_spells_a_token_stays_text_beside_real_tokens(text: bytes) -> None:
    lines = [b'{"step": %d, "loss": NaN}' % i for i in range(79)]
    lines.append(b'{"step": 79, "loss": NaN, "note": ' + text + b"}")
    store, builder = build(lines)
    run = store.runs["r"]
    assert not builder.bad and "note" not in run.series
    assert run.latest("note") == json.loads(text)
    assert run.series["loss"].count == 80 and run.series["loss"].nonfinite == 80


def test_a_nat_time_string_is_not_a_time() -> None:
    lines = [b'{"step": %d, "_time": "NaT", "loss": 1}' % i for i in range(80)]
    assert block_of(lines).times.tolist() == [1000.0] * 80


# Issue 15 (first paint): every way a chunk can be parsed gives the same block -------------
_KEYS = ("step", "_step", "epoch", "loss", "acc", "a:b", "_time")
_ISO = st.datetimes(min_value=datetime(1971, 1, 1), max_value=datetime(2200, 1, 1)).map(
    lambda moment: moment.isoformat(timespec="microseconds")
)
_VALUE = st.one_of(
    st.integers(-(10**6), 10**6).map(str),
    st.floats(allow_nan=False, allow_infinity=False).map(repr),
    st.sampled_from(["NaN", "Infinity", "-Infinity", "1e400", "-1E+400", "1" * 320]),
    st.sampled_from(["true", "false", "null", '"text"', '"NaN"', "[1, 2]", '{"x": 1}']),
    st.integers(0, 2**60).map(str),  # steps beyond 2**53
)
_TIME = st.one_of(_ISO, _ISO.map(lambda text: text + "Z")).map(lambda t: f'"{t}"') | st.floats(
    0, 2e9
).map(repr)
_BAD = st.sampled_from([b"", b"   ", b"{", b"[1, 2]", b'"text"', b"not json", b'{"loss": nan}'])


@st.composite
def _line(draw: st.DrawFn) -> bytes:
    """A JSON line as loggers write it, with what they get wrong now and then: keys left
    out or written twice, values that are not numbers, or a line that is no record."""
    if draw(st.integers(0, 19)) == 0:
        return draw(_BAD)
    keys = draw(st.lists(st.sampled_from(_KEYS), max_size=6))
    parts = [f'"{k}": {draw(_TIME if k == "_time" else _VALUE)}' for k in keys]
    return ("{" + ", ".join(parts) + "}").encode()


# Most chunks all numbers, as real runs write them (the bulk decoder's case): the same keys
# in every record, or some left out here and there.
_NUMBERS = {
    "loss": st.one_of(st.floats(), st.integers(-5, 5)),
    "acc": st.floats(0, 1),
    "epoch": st.one_of(st.integers(0, 99), st.floats()),
    "_time": _ISO.map(lambda t: t + "Z"),
}
_NUMERIC_LINE = st.fixed_dictionaries({"step": st.integers(0, 10**6)}, optional=_NUMBERS).map(
    _json_line
)
_NUMERIC_CHUNK = st.one_of(
    st.lists(_NUMERIC_LINE, max_size=140),
    st.sets(st.sampled_from(sorted(_NUMBERS))).flatmap(
        lambda keys: st.lists(
            st.fixed_dictionaries(
                {"step": st.integers(0, 10**6), **{k: _NUMBERS[k] for k in sorted(keys)}}
            ).map(_json_line),
            min_size=64,  # BULK_MIN: the bulk decoder's turn
            max_size=90,
        )
    ),
)


@given(
    st.one_of(
        st.lists(_line(), max_size=140),
        _NUMERIC_CHUNK,
        st.tuples(st.lists(_NUMERIC_LINE, min_size=64, max_size=100), _line()).map(
            lambda both: [*both[0], both[1]]
        ),
    ),
    st.integers(0, 10**6),
)
@settings(deadline=None, suppress_health_check=[HealthCheck.too_slow])  # chunks of 140 lines
def test_a_chunk_parses_as_its_lines_one_by_one(lines: list[bytes], ordinal: int) -> None:
    """Whether a chunk takes the bulk decoder, the grouped path or the per-record path
    (large or small, numbers or not), its block, bad lines and notes are those of its
    lines added one at a time."""
    whole = RecordBuilder(ordinal, now=7.0)
    whole.add_lines(lines, first_lineno=3)
    read = RecordBuilder(ordinal, now=7.0)  # as a file's reader hands it over: one buffer
    chunk = Lines(first_lineno=3)
    chunk.add_blob(b"".join(line + b"\n" for line in lines), len(lines))
    read.add_chunk(chunk)
    single = RecordBuilder(ordinal, now=7.0)
    for i, line in enumerate(lines):
        single.add_lines([line], first_lineno=3 + i)
    expected = single.build()
    for builder in (whole, read):
        _assert_same_blocks(builder.build(), expected)
        assert builder.bad == single.bad and builder.ignored == single.ignored
        assert builder.ordinal == single.ordinal
