from __future__ import annotations

import json
import os
import threading
import time
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tui.core.tail import (
    _BULK,
    _LONE_CR,
    _SCAN,
    DRAIN_GRACE,
    INCOMPLETE_AFTER,
    FileTail,
    UnsafeFile,
    _count_lines,
    _lone_return,
    open_regular,
)


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


def read_all(tail: FileTail, budget: int = 1 << 20) -> tuple[list[bytes], list[str]]:
    """Read until the tail asks for nothing more, as the engine does."""
    lines: list[bytes] = []
    notes: list[str] = []
    while True:
        chunk = tail.read(budget)
        lines.extend(chunk.lines)
        notes.extend(chunk.notes)
        if not chunk.more:
            return lines, notes


def test_rotation_drains_old_file_then_follows_new(tmp_path: Path) -> None:
    path = tmp_path / "m.jsonl"
    path.write_bytes(b"a\n")
    tail = FileTail(path)
    assert tail.read().lines == [b"a"]
    append(path, b"b\n")  # written before the rotation, not yet read
    path.rename(tmp_path / "m.jsonl.1")
    path.write_bytes(b"c\n")
    first = tail.read()
    assert first.lines == [b"b"] and first.more  # one generation per read, numbered as such
    assert first.first_lineno == 2
    second = tail.read()
    assert second.lines == [b"c"] and second.first_lineno == 1
    assert any("replaced" in n for n in first.notes + second.notes)


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


class Clock:
    """A monotonic clock the test moves by hand."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def records(tag: str, count: int, start: int = 0) -> bytes:
    return b"".join(b'{"gen": "%s", "i": %d}\n' % (tag.encode(), i) for i in range(start, count))


def ids(lines: list[bytes]) -> list[tuple[str, int]]:
    parsed = [json.loads(line) for line in lines if line]  # a torn line would fail here
    return [(r["gen"], r["i"]) for r in parsed]


# Item 9: no lost generation ----------------------------------------------------------------
def test_two_rotations_between_reads_read_the_middle_generation(tmp_path: Path) -> None:
    path = tmp_path / "train.log"
    path.write_bytes(records("A", 3))
    tail = FileTail(path, tmp_path)
    assert ids(tail.read().lines) == [("A", 0), ("A", 1), ("A", 2)]
    append(path, records("A", 5, 3))
    path.rename(tmp_path / "train.log.1")  # first rotation
    path.write_bytes(records("B", 4))
    (tmp_path / "train.log.1").rename(tmp_path / "train.log.2")  # second rotation
    path.rename(tmp_path / "train.log.1")
    path.write_bytes(records("C", 2))
    lines, notes = read_all(tail)
    assert ids(lines) == [("A", 3), ("A", 4)] + [("B", i) for i in range(4)] + [("C", 0), ("C", 1)]
    assert any("train.log.1: a generation of train.log rotated away" in n for n in notes)
    assert not any("possible gap" in n for n in notes)


def test_rotating_file_handler_many_rotations_between_reads_lose_nothing(tmp_path: Path) -> None:
    import logging
    import logging.handlers

    path = tmp_path / "metrics.jsonl"
    handler = logging.handlers.RotatingFileHandler(path, maxBytes=300, backupCount=20)
    handler.setFormatter(logging.Formatter("%(message)s"))
    logger = logging.Logger("rotating-test")
    logger.addHandler(handler)
    tail = FileTail(path, tmp_path)
    seen: list[int] = []
    sent = 0
    try:
        for burst in (3, 40, 1, 25):  # 40 records is several rotations between two reads
            for _ in range(burst):
                logger.info(json.dumps({"i": sent, "pad": "x" * 20}))
                sent += 1
            lines, _ = read_all(tail)
            seen.extend(json.loads(line)["i"] for line in lines)
    finally:
        handler.close()
        tail.close()
    assert sorted(seen) == list(range(sent)) and len(seen) == sent


def test_write_to_rotated_file_after_switch_is_drained(tmp_path: Path) -> None:
    clock = Clock()
    path = tmp_path / "metrics.jsonl"
    writer = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        os.write(writer, records("A", 1))
        tail = FileTail(path, tmp_path, clock=clock)
        assert ids(tail.read().lines) == [("A", 0)]
        path.rename(tmp_path / "metrics.jsonl.1")  # logrotate renames; the writer keeps its fd
        path.write_bytes(records("B", 1))
        assert ids(read_all(tail)[0]) == [("B", 0)]
        clock.now += DRAIN_GRACE / 2
        os.write(writer, records("A", 3, 1))  # late: the writer has not reopened yet
        assert ids(read_all(tail)[0]) == [("A", 1), ("A", 2)]
        clock.now += DRAIN_GRACE / 2 + 1
        os.write(writer, records("A", 4, 3))  # the grace period counts from the last growth
        assert ids(read_all(tail)[0]) == [("A", 3)]
    finally:
        os.close(writer)
    assert len(tail.draining) == 1
    clock.now += DRAIN_GRACE + 1
    read_all(tail)
    assert tail.draining == []  # quiet for the grace period: the old descriptor is closed


def test_truncate_and_regrow_with_same_first_bytes_is_a_new_generation(tmp_path: Path) -> None:
    import random

    def run(seed: int, steps: int, noise: random.Random) -> bytes:
        fixed = random.Random(seed)
        out = b""
        for step in range(steps):
            loss = fixed.random() if step < 3 else fixed.random() + noise.random()
            out += json.dumps({"step": step, "loss": round(loss, 2 + step % 5)}).encode() + b"\n"
        return out

    path = tmp_path / "metrics.jsonl"
    first = run(7, 6, random.Random(1))
    path.write_bytes(first)
    tail = FileTail(path, tmp_path)
    assert len(tail.read().lines) == 6
    second = run(7, 12, random.Random(2))  # a restart with the same seed, past the old offset
    assert second[:64] == first[:64] and len(second) > len(first)
    assert second[len(first) - 1 : len(first)] != b"\n"  # the old offset is mid-line now
    path.write_bytes(second)
    lines, notes = read_all(tail)
    assert lines == second.rstrip(b"\n").split(b"\n")  # whole lines, none lost
    assert any("truncated" in n and "possible gap" in n for n in notes)


def test_copytruncate_rest_is_read_from_the_copy(tmp_path: Path) -> None:
    import shutil

    path = tmp_path / "train.log"
    path.write_bytes(records("A", 2))
    tail = FileTail(path, tmp_path)
    assert len(tail.read().lines) == 2
    append(path, records("A", 5, 2))  # not read before logrotate's copytruncate
    shutil.copyfile(path, tmp_path / "train.log.1")
    with open(path, "r+b") as handle:
        handle.truncate(0)
    append(path, records("B", 2))
    lines, notes = read_all(tail)
    assert ids(lines) == [("A", 2), ("A", 3), ("A", 4), ("B", 0), ("B", 1)]
    assert any("copytruncate" in n for n in notes)
    assert not any("possible gap" in n for n in notes)


def test_truncation_without_a_copy_says_possible_gap(tmp_path: Path) -> None:
    path = tmp_path / "metrics.jsonl"
    path.write_bytes(records("A", 2))
    tail = FileTail(path, tmp_path)
    tail.read()
    with open(path, "r+b") as handle:
        handle.truncate(0)
    lines, notes = read_all(tail)
    assert lines == []
    gap = [n for n in notes if "possible gap" in n]
    assert len(gap) == 1 and "metrics.jsonl" in gap[0] and "Z" in gap[0]  # file and time


def test_rotation_while_closed_is_found_by_inode(tmp_path: Path) -> None:
    path = tmp_path / "metrics.jsonl"
    path.write_bytes(records("A", 1))
    tail = FileTail(path, tmp_path)
    tail.read()
    tail.close()  # the engine closes the files of runs read longest ago
    append(path, records("A", 3, 1))
    path.rename(tmp_path / "metrics.jsonl.1")
    path.write_bytes(records("B", 1))
    lines, notes = read_all(tail)
    assert ids(lines) == [("A", 1), ("A", 2), ("B", 0)]
    assert not any("possible gap" in n for n in notes)


def test_generation_gone_before_it_was_read_says_possible_gap(tmp_path: Path) -> None:
    clock = Clock()
    path = tmp_path / "metrics.jsonl"
    path.write_bytes(records("A", 1))
    tail = FileTail(path, tmp_path, clock=clock)
    tail.read()
    tail.close()
    append(path, records("A", 3, 1))
    path.rename(tmp_path / "metrics.jsonl.1")
    path.write_bytes(records("B", 1))
    (tmp_path / "metrics.jsonl.1").unlink()  # rotated and deleted while no descriptor held it
    lines, notes = read_all(tail)
    assert ids(lines) == [("B", 0)]
    assert not any("possible gap" in n for n in notes)  # a listing can miss a file: wait
    clock.now += DRAIN_GRACE + 1
    gap = [n for n in read_all(tail)[1] if "possible gap" in n]
    assert len(gap) == 1 and "metrics.jsonl" in gap[0] and "byte" in gap[0]


def test_deleted_file_is_drained_through_its_descriptor(tmp_path: Path) -> None:
    path = tmp_path / "metrics.jsonl"
    path.write_bytes(records("A", 1))
    tail = FileTail(path, tmp_path)
    tail.read()
    append(path, records("A", 2, 1))
    path.unlink()
    lines, notes = read_all(tail)
    assert ids(lines) == [("A", 1)] and any("deleted" in n for n in notes)


def test_rotated_files_older_than_the_first_look_are_not_read(tmp_path: Path) -> None:
    path = tmp_path / "train.log"
    (tmp_path / "train.log.2").write_bytes(records("old", 2))
    (tmp_path / "train.log.1").write_bytes(records("older", 2))
    (tmp_path / "train.log.1.gz").write_bytes(b"\x1f\x8b compressed")
    (tmp_path / "train.logger").write_bytes(b"not a rotation\n")
    path.write_bytes(records("A", 1))
    tail = FileTail(path, tmp_path)
    assert ids(read_all(tail)[0]) == [("A", 0)]
    (tmp_path / "train.log.2").unlink()
    (tmp_path / "train.log.1").rename(tmp_path / "train.log.2")
    path.rename(tmp_path / "train.log.1")
    path.write_bytes(records("B", 1))
    assert ids(read_all(tail)[0]) == [("B", 0)]


def test_copy_of_an_unread_file_is_read_once(tmp_path: Path) -> None:
    import shutil

    path = tmp_path / "train.log"
    path.write_bytes(b"")
    tail = FileTail(path, tmp_path)
    assert read_all(tail)[0] == []
    append(path, records("A", 2))  # written and copytruncated before the reader looks
    shutil.copyfile(path, tmp_path / "train.log.1")
    with open(path, "r+b") as handle:
        handle.truncate(0)
    append(path, records("B", 1))
    assert ids(read_all(tail)[0]) == [("A", 0), ("A", 1), ("B", 0)]


def test_copy_shorter_than_what_was_read_is_not_read_again(tmp_path: Path) -> None:
    import shutil

    path = tmp_path / "train.log"
    path.write_bytes(records("A", 2))
    tail = FileTail(path, tmp_path)
    assert len(tail.read().lines) == 2
    append(path, records("A", 5, 2))
    shutil.copyfile(path, tmp_path / "train.log.1")  # logrotate copies ...
    append(path, records("A", 7, 5))  # ... the writer goes on ...
    assert ids(read_all(tail)[0]) == [("A", i) for i in range(2, 7)]
    with open(path, "r+b") as handle:  # ... and logrotate truncates
        handle.truncate(0)
    append(path, records("B", 1))
    assert ids(read_all(tail)[0]) == [("B", 0)]  # the copy holds nothing unread


def test_truncation_under_a_writer_without_append_skips_the_nul_hole(tmp_path: Path) -> None:
    path = tmp_path / "metrics.jsonl"
    writer = os.open(path, os.O_WRONLY | os.O_CREAT, 0o644)  # no O_APPEND: its own offset
    try:
        os.write(writer, records("A", 3))
        tail = FileTail(path, tmp_path)
        assert len(tail.read().lines) == 3
        os.truncate(path, 0)  # copytruncate's truncation; the writer's offset stays put
        os.write(writer, records("A", 4, 3))  # lands past a hole of NUL bytes
    finally:
        os.close(writer)
    lines, notes = read_all(tail)
    assert ids(lines) == [("A", 3)]
    assert any("NUL bytes skipped" in n for n in notes)
    assert any("truncated" in n and "possible gap" in n for n in notes)


# Item 10: dead writers and progress bars ---------------------------------------------------
def test_writer_dead_mid_line_is_reported_once_after_timeout(tmp_path: Path) -> None:
    clock = Clock()
    path = tmp_path / "metrics.jsonl"
    path.write_bytes(b'{"a": 1}\n{"a": 2, "lo')
    tail = FileTail(path, tmp_path, clock=clock)
    assert tail.read().lines == [b'{"a": 1}']
    clock.now += INCOMPLETE_AFTER - 1
    assert tail.read().notes == []  # a slow writer is not a dead one
    clock.now += 2
    chunk = tail.read()
    assert chunk.lines == [] and len(chunk.notes) == 1
    assert "incomplete final record, 12 bytes" in chunk.notes[0]
    clock.now += INCOMPLETE_AFTER * 10
    assert tail.read().notes == []  # once, not on every read
    append(path, b'ss": 0.5}\n')  # it was only slow after all: the record is whole
    assert tail.read().lines == [b'{"a": 2, "loss": 0.5}']


def test_writer_killed_mid_line_in_a_real_process(tmp_path: Path) -> None:
    import signal
    import subprocess
    import sys

    clock = Clock()
    path = tmp_path / "metrics.jsonl"
    script = (
        "import os, sys\n"
        "fd = os.open(sys.argv[1], os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)\n"
        'os.write(fd, b\'{"step": 1}\\n{"step": 2, "lo\')\n'
        "print('written', flush=True)\n"
        "sys.stdin.read()\n"
    )
    with subprocess.Popen(
        [sys.executable, "-c", script, str(path)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    ) as writer:
        assert writer.stdout is not None and writer.stdout.readline().strip() == "written"
        writer.send_signal(signal.SIGKILL)  # dies mid-record, its line never finished
        writer.wait(timeout=30)
    tail = FileTail(path, tmp_path, clock=clock)
    assert tail.read().lines == [b'{"step": 1}']
    clock.now += INCOMPLETE_AFTER + 1
    notes = tail.read().notes + tail.read().notes
    assert notes == [notes[0]] and "incomplete final record, 15 bytes" in notes[0]


def test_progress_bar_lines_show_their_last_segment(tmp_path: Path) -> None:
    path = tmp_path / "output.log"
    # What tqdm writes to a file: each update rewrites the line after a carriage return;
    # tqdm.write() clears the bar with spaces before printing its own line.
    bar = b"".join(b"\r %3d%%|%-10s| %d/10" % (i * 10, b"#" * i, i) for i in range(11))
    path.write_bytes(
        b"epoch 1\n" + bar + b"\n" + b"\r  50%|#####     | 5/10\r" + b" " * 25 + b"\rsaved\r\n"
    )
    lines = FileTail(path, tmp_path).read().lines
    assert lines == [b"epoch 1", b" 100%|##########| 10/10", b"saved"]


def test_progress_bar_reaches_the_run_log_without_replacement_characters(tmp_path: Path) -> None:
    from tui.core.formats.native import NativeSource
    from tui.core.store import RunStore

    (tmp_path / "metrics.jsonl").write_bytes(b'{"step": 1, "loss": 0.5}\r\n')
    (tmp_path / "output.log").write_bytes(b"\r  0%|  | 0/2\r 50%|# | 1/2\r100%|##| 2/2\n")
    source = NativeSource(tmp_path, ".", tmp_path)
    store = RunStore()
    batch = source.read()
    assert batch is not None
    store.apply(batch)
    run = store.runs["."]
    assert list(run.log) == ["100%|##| 2/2"]
    assert run.series["loss"].count == 1  # a CRLF record is still a record


def test_crlf_lines_are_kept_whole(tmp_path: Path) -> None:
    path = tmp_path / "m.jsonl"
    path.write_bytes(b'{"a": 1}\r\n{"a": 2}\r\n')
    chunk = FileTail(path).read()
    assert chunk.blob is not None  # no carriage return mid-line: the fast path stays
    assert [line.rstrip(b"\r") for line in chunk.lines] == [b'{"a": 1}', b'{"a": 2}']


@settings(max_examples=200)
@given(
    size=st.integers(1, 3 * _SCAN),
    crlf=st.booleans(),
    returns=st.lists(st.integers(0, 3 * _SCAN), max_size=3),
    line=st.integers(1, 300),
)
def test_line_ends_counts_newlines_and_finds_lone_returns(
    size: int, crlf: bool, returns: list[int], line: int
) -> None:
    """Small chunks and big ones (scanned block by block): lone returns anywhere, block
    edges included, among CRLF line ends or none."""
    chunk = bytearray(b"x" * size)
    chunk[line - 1 :: line] = b"\n" * len(range(line - 1, size, line))
    if crlf:
        for end in range(line - 1, size, line):
            if end:
                chunk[end - 1] = 13
    for where in returns:
        chunk[min(where, size - 1)] = 13
    for edge in (_BULK - 1, _BULK, _SCAN - 1, _SCAN, 2 * _SCAN - 1):
        if returns and edge < size - 1:
            chunk[edge] = 13
    chunk[-1] = 10
    data = bytes(chunk)
    assert _count_lines(data) == data.count(b"\n")
    assert _lone_return(data) == (_LONE_CR.search(data) is not None)


def test_a_big_read_keeps_crlf_whole_and_redraws_lone_returns(tmp_path: Path) -> None:
    path = tmp_path / "output.log"
    lines = [b"line %06d" % i for i in range(3 * _BULK // 12)]
    path.write_bytes(b"".join(line + b"\r\n" for line in lines))
    chunk = FileTail(path).read()
    assert chunk.blob is not None and len(chunk.blob) > 2 * _BULK
    assert chunk.count == len(lines)
    bar = bytearray(path.read_bytes())
    bar[_BULK - 2 : _BULK + 1] = b"\rab"  # a redraw across the first block's edge
    path.write_bytes(bytes(bar))
    chunk = FileTail(path).read()
    assert chunk.blob is None and chunk.count == len(lines)
    redrawn = [i for i, line in enumerate(chunk.lines) if line != lines[i]]
    assert len(redrawn) == 1 and b"\r" not in b"".join(chunk.lines)
    where = (_BULK - 2) % 13  # into a line of 11 bytes and CRLF
    assert chunk.lines[redrawn[0]] == b"ab" + lines[redrawn[0]][where + 3 :]


# A model of a writer: appends (sometimes split mid-line), late writes to the file rotated
# away last (a writer that has not reopened yet), rename rotations (any number between two
# reads), truncations, copytruncate (also with writes between the copy and the truncation),
# and the engine closing descriptors, with reads
# interleaved. Every record written must come out exactly once, whole.
ops = st.lists(
    st.one_of(
        st.tuples(st.just("append"), st.integers(1, 5), st.booleans(), st.integers(0, 120)),
        st.tuples(st.just("late"), st.integers(1, 3)),
        st.tuples(st.just("read"), st.integers(16, 4096)),
        st.tuples(st.just("truncate")),
        st.tuples(st.just("copytruncate")),
        st.tuples(st.just("copy")),
        st.tuples(st.just("rotate")),
        st.tuples(st.just("close")),
    ),
    max_size=40,
)


@settings(
    max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(ops)
def test_tailer_model(tmp_path_factory: pytest.TempPathFactory, program: list[tuple]) -> None:
    import shutil

    directory = tmp_path_factory.mktemp("model")
    path = directory / "metrics.jsonl"
    path.write_bytes(b"")
    tail = FileTail(path, directory)
    expected: list[int] = []
    seen: list[int] = []
    counter = 0
    pending = b""  # the unwritten rest of a record split mid-line
    rotations = 0
    late: int | None = None  # the writer's descriptor on the file rotated away last
    plain_truncation = False  # the tailer cannot know that nothing was lost: it says so

    def backup() -> Path:
        """logrotate's numbering: every backup moves up one (.1 -> .2), .1 is free."""
        nonlocal rotations
        for k in range(rotations, 0, -1):
            (directory / f"metrics.jsonl.{k}").rename(directory / f"metrics.jsonl.{k + 1}")
        rotations += 1
        return directory / "metrics.jsonl.1"

    def record(pad: int) -> bytes:
        nonlocal counter
        expected.append(counter)
        counter += 1
        return json.dumps({"i": counter - 1, "pad": "x" * pad}).encode() + b"\n"

    def drain(budget: int = 1 << 20) -> None:
        while True:
            chunk = tail.read(budget, scratch=budget % 2 == 1)  # odd budgets: the kept buffer
            for line in chunk.lines:
                if line:
                    seen.append(json.loads(line)["i"])  # a torn line would fail here
            gaps = [n for n in chunk.notes if "possible gap" in n]
            assert plain_truncation or not gaps, chunk.notes
            if not chunk.more:
                return

    drain()  # the engine opens a run's file when it discovers the run
    for op in program:
        if op[0] == "append":
            _, count, split, pad = op
            data = pending + b"".join(record(pad) for _ in range(count))
            pending = b""
            if split:
                cut = len(data) - 1 - (pad % 7)
                data, pending = data[:cut], data[cut:]
            append(path, data)
        elif op[0] == "late":
            if late is not None:
                os.write(late, b"".join(record(op[1]) for _ in range(op[1])))
        elif op[0] == "read":
            drain(op[1])
            plain_truncation = False
        elif op[0] == "close":
            tail.close()
        elif op[0] == "copy":
            # copytruncate with the writer going on between the copy and the truncation
            # (what it writes there survives only if read in time: the reader looks).
            append(path, pending)
            pending = b""
            shutil.copyfile(path, backup())
            append(path, record(0))
            drain()
            with open(path, "r+b") as handle:
                handle.truncate(0)
            plain_truncation = True
        elif op[0] == "truncate":
            # Lines written before a plain truncation and not yet read are gone for good
            # (the tailer says "possible gap"): the writer finishes its line and the reader
            # catches up first.
            append(path, pending)
            pending = b""
            drain()
            with open(path, "r+b") as handle:
                handle.truncate(0)
            plain_truncation = True
        else:
            append(path, pending)  # the writer finishes its line, then logrotate acts
            pending = b""
            if op[0] == "copytruncate":
                shutil.copyfile(path, backup())
                with open(path, "r+b") as handle:
                    handle.truncate(0)
            else:
                if late is not None:
                    os.close(late)
                late = os.open(path, os.O_WRONLY | os.O_APPEND)
                path.rename(backup())
                path.write_bytes(b"")
    if late is not None:
        os.close(late)
    append(path, pending)
    drain()
    tail.close()
    assert sorted(seen) == expected


def test_scratch_reads_give_the_same_lines_through_one_kept_buffer(tmp_path: Path) -> None:
    """Reads with ``scratch`` land in the thread's kept buffer, which the next such read
    overwrites: the lines and their numbers are those of a plain read, and a view of the
    last buffer still held does not stop the next read."""
    rows = [b"%d\t%r" % (i, i / 7) for i in range(3000)]
    first, second = tmp_path / "a.tsv", tmp_path / "b.tsv"
    first.write_bytes(b"\n".join(rows[:1500]) + b"\n")
    second.write_bytes(b"\n".join(rows[:1400]) + b"\n")
    a, b = FileTail(first), FileTail(second)
    chunk = a.read(scratch=True)
    kept = chunk.buffer
    assert isinstance(kept, bytearray) and chunk.blob is None  # blob: only a buffer of its own
    assert (bytes(kept), chunk.first_lineno, chunk.count) == (
        b"\n".join(rows[:1500]) + b"\n",
        1,
        1500,
    )
    chunk = b.read(scratch=True)
    assert chunk.buffer is kept and chunk.lines == rows[:1400]  # the same buffer, refilled
    view = memoryview(kept)  # a reader still holding a view of it
    append(first, b"\n".join(rows[1500:]) + b"\n")
    chunk = a.read(scratch=True)
    assert chunk.buffer is not kept and chunk.first_lineno == 1501
    assert chunk.lines == rows[1500:]
    assert bytes(view[:4]) == rows[0][:4]  # the view's buffer was left alone
    plain = FileTail(first).read()
    assert plain.blob is not None and plain.lines == rows


def test_scratch_reads_number_lines_exactly_whether_or_not_they_are_counted(
    tmp_path: Path,
) -> None:
    """A scratch read's lines are counted only when their number is needed, or told by the
    reader that parsed them: numbers stay exact across partial lines, odd budgets and
    another file's reads into the same kept buffer (which the count must come before)."""
    failures: list[BaseException] = []

    def reader() -> None:  # a thread of its own: its kept buffer starts empty
        try:
            read_both()
        except BaseException as exc:  # raised again in the test's thread
            failures.append(exc)

    def read_both() -> None:
        rows = [b"%d\t%r" % (i, i / 3) for i in range(4000)]
        paths = [tmp_path / "a.tsv", tmp_path / "b.tsv"]
        for path in paths:
            path.write_bytes(b"")
        tails = [FileTail(path) for path in paths]
        written = [b"", b""]
        lines: list[list[bytes]] = [[], []]
        kept = 0  # reads into the kept buffer
        for step in range(60):
            which = step % 2
            start = step * 61 % 3900
            data = b"\n".join(rows[start : start + 90 + step % 7]) + b"\n"
            cut = len(data) - step % 5  # the writer may stop mid-line
            append(paths[which], data[:cut])
            written[which] += data[:cut]
            chunk = tails[which].read(1201 + step * 37 % 300, scratch=True)
            kept += isinstance(chunk.buffer, bytearray)
            assert chunk.first_lineno == len(lines[which]) + 1
            buffer = chunk.buffer
            got = [] if buffer is None else bytes(buffer).split(b"\n")[:-1]
            if step % 3 == 0:
                chunk.counted(len(got))  # told by its reader, as a bulk parse does
            elif step % 3 == 1 and buffer is not None:
                assert chunk.count == len(got)  # asked
            lines[which].extend(got)  # otherwise neither: counted when its number is needed
            append(paths[which], data[cut:])
            written[which] += data[cut:]
        assert kept > 40
        for which, tail in enumerate(tails):
            while True:
                chunk = tail.read(4096, scratch=True)
                assert chunk.first_lineno == len(lines[which]) + 1
                if chunk.buffer is not None:
                    lines[which].extend(bytes(chunk.buffer).split(b"\n")[:-1])
                if not chunk.more:
                    break
            assert tail.lineno == len(lines[which]) == written[which].count(b"\n")
            assert b"".join(line + b"\n" for line in lines[which]) == written[which]

    thread = threading.Thread(target=reader)
    thread.start()
    thread.join()
    if failures:
        raise failures[0]


def test_tails_in_one_directory_find_a_rotation_after_sharing_its_listing(
    tmp_path: Path,
) -> None:
    """The tails of files in one directory share its listing while its stamp holds; a
    rotation changes the stamp, and the closed tail finds its file under the new name."""
    first, second = tmp_path / "a.log", tmp_path / "b.log"
    first.write_bytes(b"a1\n")
    second.write_bytes(b"b1\n")
    old = time.time() - 60
    os.utime(tmp_path, (old, old))  # an old stamp: trusted, so the listing is kept
    tails = FileTail(first), FileTail(second)
    assert [tail.read().lines for tail in tails] == [[b"a1"], [b"b1"]]
    tails[0].close()
    append(first, b"a2\n")
    first.rename(tmp_path / "a.log.1")
    first.write_bytes(b"a3\n")
    os.utime(tmp_path, (old + 1, old + 1))  # old again, but not the stamp listed
    assert tails[1].read().lines == []  # lists the directory anew
    seen: list[bytes] = []
    while True:
        chunk = tails[0].read()
        seen.extend(chunk.lines)
        assert not [note for note in chunk.notes if "possible gap" in note]
        if not chunk.more:
            break
    assert seen == [b"a2", b"a3"]
