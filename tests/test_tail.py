from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tui.core.tail import FileTail, UnsafeFile, open_regular


def append(path: Path, data: bytes) -> None:
    with open(path, "ab") as handle:
        handle.write(data)


def test_partial_line_waits_for_its_newline(tmp_path: Path) -> None:
    path = tmp_path / "m.jsonl"
    path.write_bytes(b'{"a": 1}\n{"a": ')
    tail = FileTail(path)
    assert tail.read().lines == [b'{"a": 1}']
    assert tail.read().lines == []
    append(path, b"2}\n")
    chunk = tail.read()
    assert chunk.lines == [b'{"a": 2}'] and chunk.first_lineno == 2


def test_truncation_rereads_from_start_and_says_so(tmp_path: Path) -> None:
    path = tmp_path / "m.jsonl"
    path.write_bytes(b"one\ntwo\n")
    tail = FileTail(path)
    assert tail.read().lines == [b"one", b"two"]
    path.write_bytes(b"3\n")  # shorter than what was read: truncated and rewritten
    chunk = tail.read()
    assert chunk.lines == [b"3"] and chunk.first_lineno == 1
    assert any("truncated" in n for n in chunk.notes)


def test_truncate_then_regrow_past_offset_is_detected_by_fingerprint(tmp_path: Path) -> None:
    path = tmp_path / "m.jsonl"
    path.write_bytes(b"first generation line\n")
    tail = FileTail(path)
    tail.read()
    path.write_bytes(b"second generation, longer than the first one was\nmore\n")
    chunk = tail.read()
    assert chunk.lines == [b"second generation, longer than the first one was", b"more"]
    assert any("truncated" in n for n in chunk.notes)


def test_rotation_drains_old_file_then_follows_new(tmp_path: Path) -> None:
    path = tmp_path / "m.jsonl"
    path.write_bytes(b"a\n")
    tail = FileTail(path)
    assert tail.read().lines == [b"a"]
    append(path, b"b\n")  # written before the rotation, not yet read
    path.rename(tmp_path / "m.jsonl.1")
    path.write_bytes(b"c\n")
    chunk = tail.read()
    assert chunk.lines == [b"b", b"c"]
    assert any("replaced" in n for n in chunk.notes)


def test_deletion_keeps_waiting_and_reattaches(tmp_path: Path) -> None:
    path = tmp_path / "m.jsonl"
    path.write_bytes(b"a\n")
    tail = FileTail(path)
    tail.read()
    path.unlink()
    chunk = tail.read()
    assert chunk.lines == [] and any("deleted" in n for n in chunk.notes)
    path.write_bytes(b"b\n")
    assert tail.read().lines == [b"b"]


def test_ten_megabyte_line_is_skipped_with_bounded_memory(tmp_path: Path) -> None:
    path = tmp_path / "m.jsonl"
    tail = FileTail(path, max_line=1024 * 1024)
    path.write_bytes(b'{"a": 1}\n')
    tail.read()
    with open(path, "ab") as handle:
        for _ in range(10):  # arrives over several reads, like a real slow writer
            handle.write(b"x" * (1024 * 1024))
            handle.flush()
            tail.read(max_bytes=1024 * 1024)
            assert len(tail.partial) <= 2 * 1024 * 1024
        handle.write(b'\n{"a": 2}\n')
    chunk = tail.read()
    assert chunk.lines[-1] == b'{"a": 2}'
    assert chunk.skipped and chunk.skipped[0][0] == 2 and "10.5 MB skipped" in chunk.skipped[0][1]


def test_line_longer_than_limit_inside_one_read_is_skipped(tmp_path: Path) -> None:
    path = tmp_path / "m.jsonl"
    path.write_bytes(b"ok\n" + b"y" * 5000 + b"\nafter\n")
    chunk = FileTail(path, max_line=1000).read()
    assert chunk.lines == [b"ok", b"", b"after"]
    assert chunk.skipped[0][0] == 2


def test_bom_and_nul_padding_are_stripped(tmp_path: Path) -> None:
    path = tmp_path / "m.jsonl"
    path.write_bytes(b'\xef\xbb\xbf{"a": 1}\n\x00\x00\x00{"a": 2}\n')
    chunk = FileTail(path).read()
    assert chunk.lines == [b'{"a": 1}', b'{"a": 2}']
    assert any("NUL" in n for n in chunk.notes)


def test_fifo_is_refused_without_blocking(tmp_path: Path) -> None:
    fifo = tmp_path / "metrics.jsonl"
    os.mkfifo(fifo)
    with pytest.raises(UnsafeFile):
        open_regular(fifo, tmp_path)
    chunk = FileTail(fifo, tmp_path).read()
    assert chunk.lines == [] and any("not a regular file" in n for n in chunk.notes)


def test_symlink_out_of_root_is_refused(tmp_path: Path) -> None:
    root = tmp_path / "root"
    root.mkdir()
    outside = tmp_path / "secret.txt"
    outside.write_text("secret\n")
    (root / "metrics.jsonl").symlink_to(outside)
    chunk = FileTail(root / "metrics.jsonl", root).read()
    assert chunk.lines == [] and any("outside the root" in n for n in chunk.notes)
    inside = root / "real.jsonl"
    inside.write_text("fine\n")
    (root / "link.jsonl").symlink_to(inside)
    assert FileTail(root / "link.jsonl", root).read().lines == [b"fine"]


# A model of a writer: appends (sometimes split mid-line), copy-truncations and
# rename-rotations, with reads interleaved. Every record written must come out exactly
# once, in order, whole.
ops = st.lists(
    st.one_of(
        st.tuples(st.just("append"), st.integers(1, 5), st.booleans(), st.integers(0, 120)),
        st.tuples(st.just("read"), st.integers(16, 4096)),
        st.tuples(st.just("truncate")),
        st.tuples(st.just("rotate")),
    ),
    max_size=40,
)


@settings(
    max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(ops)
def test_tailer_model(tmp_path_factory: pytest.TempPathFactory, program: list[tuple]) -> None:
    directory = tmp_path_factory.mktemp("model")
    path = directory / "metrics.jsonl"
    path.write_bytes(b"")
    tail = FileTail(path, directory)
    expected: list[int] = []
    seen: list[int] = []
    counter = 0
    pending = b""  # the unwritten rest of a record split mid-line
    rotations = 0
    rotated_since_read = False

    def drain(budget: int = 1 << 20) -> None:
        while True:
            chunk = tail.read(budget)
            for line in chunk.lines:
                if line:
                    seen.append(json.loads(line)["i"])  # a torn line would fail here
            if not chunk.more:
                return

    drain()  # the engine opens a run's file when it discovers the run
    for op in program:
        if op[0] == "append":
            _, count, split, pad = op
            data = pending
            pending = b""
            for _ in range(count):
                data += json.dumps({"i": counter, "pad": "x" * pad}).encode() + b"\n"
                expected.append(counter)
                counter += 1
            if split:
                cut = len(data) - 1 - (pad % 7)
                data, pending = data[:cut], data[cut:]
            append(path, data)
        elif op[0] == "read":
            drain(op[1])
            rotated_since_read = False
        elif op[0] == "truncate":
            append(path, pending)  # the writer finishes its line, the reader catches up,
            pending = b""
            drain()
            with open(path, "r+b") as handle:  # then copytruncate empties the file
                handle.truncate(0)
        else:
            # One rotation per poll at most: a second one before the reader looks again
            # would hide the middle generation (a documented limit of name-based tailing).
            if rotated_since_read:
                drain()
            rotated_since_read = True
            append(path, pending)
            pending = b""
            rotations += 1
            path.rename(directory / f"metrics.jsonl.{rotations}")
            path.write_bytes(b"")
    append(path, pending)
    drain()
    tail.close()
    assert seen == expected
