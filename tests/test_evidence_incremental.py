"""Evidence gathering that redoes only what changed: thousands of runs at rest cost nothing.

Real files, a real engine, real writer processes. The gatherer stats a run's files again
only when the engine says the run changed, and every file on a slow periodic full pass.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

from processes import QUIET_WRITER, Processes

from tui.core.engine import Engine
from tui.core.evidence import FULL_SECONDS, REST_SHARE, SCAN_SECONDS, EvidenceGatherer
from tui.core.openfiles import WriterScanner, index_files

# Replaces its log with a new file (a new inode) and keeps that open for writing.
WRITER = """
import os, sys, time
path = sys.argv[2]
log = open(path + ".new", "a", buffering=1)
os.rename(path + ".new", path)
log.write('{"step": 0, "loss": 1.0}\\n')
print("ready", flush=True)
while True:
    time.sleep(0.2)
"""


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def one_run(tmp_path: Path) -> tuple[Path, Path, Engine]:
    root = tmp_path / "root"
    log = root / "exp" / "train.log"
    log.parent.mkdir(parents=True)
    log.write_text('{"step": 0, "loss": 2.0}\n')
    engine = Engine(root, watch="poll")
    engine.scan()
    return root, log, engine


def gathering(tmp_path: Path) -> tuple[Path, Engine, Clock, EvidenceGatherer]:
    """:func:`one_run` with a gatherer on its own clock: the run's file, the engine, the
    clock, the gatherer."""
    root, log, engine = one_run(tmp_path)
    clock = Clock()
    return log, engine, clock, EvidenceGatherer(root, local=True, clock=clock)


def test_run_files_are_reused_until_the_run_changes(tmp_path: Path) -> None:
    _, log, engine = one_run(tmp_path)
    generation, touched = engine.touched_since(0)
    assert touched == {"exp/train.log"}  # a new run counts as changed
    first = engine.run_files()
    assert engine.run_files() is first  # nothing changed: the same mapping, not rebuilt
    assert engine.touched_since(generation) == (generation, frozenset())
    with log.open("a") as f:
        f.write('{"step": 1, "loss": 1.5}\n')
    engine.reconcile(walk_root=False)
    generation, touched = engine.touched_since(generation)
    assert touched == {"exp/train.log"}
    again = engine.run_files()["exp/train.log"]
    assert again is not first["exp/train.log"] and again == first["exp/train.log"]


def test_a_recreated_file_is_found_when_the_engine_saw_it_change(
    tmp_path: Path, processes: Processes
) -> None:
    log, engine, _, gatherer = gathering(tmp_path)
    assert gatherer.gather(engine.run_files()).processes == {}
    generation, _ = engine.touched_since(0)

    writer = processes.python(WRITER, str(log))  # a new inode, held open for writing
    # Nothing told the gatherer yet: the identity found before is kept, unstat'ed.
    assert gatherer.gather(engine.run_files(), frozenset()).processes == {}
    engine.reconcile(walk_root=False)  # the engine's re-check sees the file change
    generation, touched = engine.touched_since(generation)
    found = gatherer.gather(engine.run_files(), touched).processes
    assert found["exp/train.log"].pid == writer.pid


def test_a_change_nobody_reported_is_found_by_the_periodic_full_pass(
    tmp_path: Path, processes: Processes
) -> None:
    log, engine, clock, gatherer = gathering(tmp_path)
    gatherer.gather(engine.run_files())
    writer = processes.python(WRITER, str(log))
    assert gatherer.gather(engine.run_files(), frozenset()).processes == {}
    clock.now += FULL_SECONDS  # the full pass is due: every file is stat'ed again
    found = gatherer.gather(engine.run_files(), frozenset()).processes
    assert found["exp/train.log"].pid == writer.pid


def test_a_vanished_run_leaves_the_index(tmp_path: Path) -> None:
    root, _, engine = one_run(tmp_path)
    other = root / "other" / "train.log"
    other.parent.mkdir()
    other.write_text('{"step": 0}\n')
    engine.scan()
    gatherer = EvidenceGatherer(root, local=True, clock=Clock())
    files = engine.run_files()
    assert gatherer.gather(files).scanned == 2
    left = {key: paths for key, paths in files.items() if key != "other/train.log"}
    assert gatherer.gather(left, frozenset()).scanned == 1


def test_the_scanning_process_is_never_a_runs_writer(tmp_path: Path, processes: Processes) -> None:
    """tracktui holds thousands of run files open to read them, and writes none: its own
    descriptors are not looked at (another process writing the same file still is)."""
    _, log, engine = one_run(tmp_path)
    index = index_files(engine.run_files())
    with log.open("a"):
        assert WriterScanner().scan(index).runs == {}
        writer = processes.python(WRITER.replace('path + ".new"', "path"), str(log))
        (found,) = WriterScanner().scan(index).runs.values()
        assert found.pid == writer.pid


def test_with_nothing_changed_the_writers_found_are_rechecked_and_new_ones_found_later(
    tmp_path: Path, processes: Processes
) -> None:
    log, engine, clock, gatherer = gathering(tmp_path)
    files = engine.run_files()
    first = gatherer.gather(files)
    assert first.processes == {}
    quiet = processes.python(QUIET_WRITER, str(log), stdin=subprocess.PIPE)
    # Nothing changed and nothing was found before: the processes are not looked through
    # again until SCAN_SECONDS have passed (longer where a look costs more of a core).
    assert gatherer.gather(files, frozenset()).processes == {}
    clock.now += max(SCAN_SECONDS, first.cpu_seconds / REST_SHARE)
    found = gatherer.gather(files, frozenset()).processes
    assert found["exp/train.log"].pid == quiet.pid
    clock.now += 1
    assert gatherer.gather(files, frozenset()).processes == found  # still holding it
    assert quiet.stdin is not None and quiet.stdout is not None
    quiet.stdin.write(b"close\n")
    quiet.stdin.flush()
    assert quiet.stdout.readline() == b"closed\n"
    clock.now += 1
    assert gatherer.gather(files, frozenset()).processes == {}  # let go: seen at once


def test_asked_to_look_the_gatherer_scans_the_processes_at_once(
    tmp_path: Path, processes: Processes
) -> None:
    log, engine, _, gatherer = gathering(tmp_path)
    files = engine.run_files()
    assert gatherer.gather(files).processes == {}
    quiet = processes.python(QUIET_WRITER, str(log), stdin=subprocess.PIPE)  # holds it open
    # At rest a writer that has not written is left for the periodic look...
    assert gatherer.gather(files, frozenset()).processes == {}
    # ...but a user who opened the run asks for a look now.
    found = gatherer.gather(files, frozenset(), look=True).processes
    assert found["exp/train.log"].pid == quiet.pid
