"""Names from the filesystem never reach the terminal raw (issue 10 item 2).

Linux allows any byte but ``/`` and NUL in a name, so a run directory can be called
``\\x1b]0;pwned\\x07`` (an OSC that retitles the terminal), hold a newline (a forged table
row), an RLO that reverses what follows, or bytes that are not UTF-8. Every test here makes
real directories with such names and reads them through the real code: the engine, the app
(piloted), ``tracktui status`` and ``tracktui kill`` as subprocesses with their real output.
Names are spelled with visible escapes (``ls -b`` style) and file access uses the raw bytes.
"""

from __future__ import annotations

import csv
import io
import json
import os
import re
import socket
import subprocess
import sys
from pathlib import Path

import psutil
import pytest
from conftest import table_of, wait_for
from hypothesis import given
from hypothesis import strategies as st
from processes import marked

from tui.app.app import TrackApp
from tui.app.screens.confirm_kill import ConfirmKill
from tui.core.engine import Engine
from tui.core.sanitize import escape_path, unescape_path
from tui.core.store import RunStore

SIZE = (140, 40)

# Anything a terminal acts on: C0 (no tab either: cells are expanded), ESC, DEL, C1, bidi
# controls, line and paragraph separators, a BOM, lone surrogates.
CONTROL = re.compile(
    r"[\x00-\x1f\x7f-\x9f\u061c\u200e\u200f\u2028\u2029\u202a-\u202e\u2066-\u2069\ufeff"
    r"\ud800-\udfff]"
)
CONTROL_BYTES = re.compile(rb"[\x00-\x09\x0b-\x1f\x7f]|\xc2[\x80-\x9f]|\xe2\x80[\xa8-\xae]")
"""The same in UTF-8 output (newline allowed: it ends lines of output)."""

HOSTILE: dict[str, bytes] = {
    "osc": b"osc\x1b]0;pwned\x07title",
    "csi": b"csi\x1b[2J\x1b[31mred",
    "newline": b"two\nlines",
    "return": b"cr\rback",
    "rlo": "rlo\u202egnp.exe".encode(),
    "c1": "c1\u009b31mcsi".encode(),
    "bytes": b"raw\xff\xfe",
    "backslash": b"back\\x1bslash",
    "markup": b"[bold red]markup[@click=app.quit]x",
}
"""Directory names, as bytes (one is not UTF-8)."""


def make_runs(root: Path) -> dict[str, Path]:
    """A native run (two records) in a directory of each hostile name; raw paths by label."""
    made = {}
    for label, name in HOSTILE.items():
        directory = Path(os.fsdecode(os.path.join(os.fsencode(root), name)))
        directory.mkdir()
        (directory / "metrics.jsonl").write_text(
            '{"step": 1, "loss": 0.5}\n{"step": 2, "loss": 0.25}\n'
        )
        made[label] = directory
    return made


@given(st.text(alphabet=st.characters(codec=None), max_size=60))
def test_escape_path_is_exact_and_shows_no_control(raw: str) -> None:
    shown = escape_path(raw)
    assert CONTROL.search(shown) is None
    assert unescape_path(shown) == raw  # so two names never share a spelling


def test_escape_path_spells_names_as_ls_b_does() -> None:
    assert escape_path("plain-run_01 é") == "plain-run_01 é"  # ordinary names unchanged
    assert escape_path("a\x1b]0;x\x07b") == "a\\x1b]0;x\\x07b"
    assert escape_path("two\nlines") == "two\\nlines"
    assert escape_path("rlo\u202eexe") == "rlo\\u202eexe"
    assert escape_path(os.fsdecode(b"raw\xff")) == "raw\\xff"
    assert escape_path("back\\slash") == "back\\\\slash"


def test_engine_keys_and_paths_are_escaped_and_reading_uses_the_raw_names(
    tmp_path: Path,
) -> None:
    made = make_runs(tmp_path)
    engine = Engine(tmp_path, watch="poll")
    engine.scan()
    store = RunStore()
    for key in engine.take_dirty()[0]:
        for batch in engine.read_all(key):
            store.apply(batch)
    assert len(store.runs) == len(HOSTILE)
    for label, directory in made.items():
        shown = escape_path(directory.name)
        run = store.runs[shown]
        assert run.path == run.name == shown and CONTROL.search(shown) is None
        assert run.series["loss"].count == 2, label  # read through the raw directory
        assert tmp_path / unescape_path(run.path) == directory  # and back to it for IO


async def test_app_table_shows_hostile_names_escaped_one_row_per_run(tmp_path: Path) -> None:
    root = tmp_path / "root\x1b]0;x\x07\u202e"
    root.mkdir()
    make_runs(root)
    app = TrackApp(root, watch="poll")
    async with app.run_test(size=SIZE) as pilot:
        await wait_for(pilot, lambda: len(table_of(app).shown) == len(HOSTILE))
        await wait_for(pilot, lambda: all(r.series for r in app.store.runs.values()))
        await pilot.pause()
        table = table_of(app)
        lines = [s.text for s in table.render_lines(table.region.reset_offset)]
        rows = [line for line in lines[1:] if line.strip()]  # under the header
        assert len(rows) == len(HOSTILE)  # no name forged an extra line
        for line in lines:
            assert CONTROL.search(line) is None, repr(line)
        for name in HOSTILE.values():
            shown = escape_path(os.fsdecode(name))[:20]
            assert sum(shown in row for row in rows) == 1, shown
        top = app.screen.query_one("#topbar")
        bar = "".join(s.text for s in top.render_lines(top.region.reset_offset))
        assert "root\\x1b]0;x\\x07\\u202e" in bar and CONTROL.search(bar) is None


def status(*args: str) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run(
        [sys.executable, "-m", "tui", "status", *args],
        capture_output=True,
        timeout=120,
        env={**os.environ, "COLUMNS": "200", "NO_COLOR": "1"},
    )


def test_status_table_csv_and_json_carry_no_raw_control(tmp_path: Path) -> None:
    make_runs(tmp_path)
    escaped = {escape_path(os.fsdecode(name)) for name in HOSTILE.values()}

    table = status(str(tmp_path))
    assert table.returncode == 0, table.stderr
    assert CONTROL_BYTES.search(table.stdout) is None
    assert b"\x1b" not in table.stdout
    body = [line for line in table.stdout.decode().splitlines() if "│" in line]
    assert len(body) == len(HOSTILE)  # one line per run (the header is drawn with ┃)

    flat = status(str(tmp_path), "--csv")
    assert flat.returncode == 0, flat.stderr
    assert CONTROL_BYTES.search(flat.stdout) is None
    text = flat.stdout.decode()
    assert len(text.splitlines()) == len(HOSTILE) + 1  # no quoted newline inside a field
    rows = list(csv.DictReader(io.StringIO(text)))
    assert {row["path"] for row in rows} == escaped

    document = status(str(tmp_path), "--json")
    assert document.returncode == 0, document.stderr  # a non-UTF-8 name did not crash it
    assert CONTROL_BYTES.search(document.stdout) is None
    runs = json.loads(document.stdout)["runs"]
    assert {run["path"] for run in runs} == {run["name"] for run in runs} == escaped
    for run in runs:
        for value in (run["id"], run["name"], run["path"], *run["health"]["notes"]):
            assert CONTROL.search(value) is None


def test_cli_errors_show_a_hostile_root_escaped(tmp_path: Path) -> None:
    bad = str(tmp_path / "bad\x1b]0;x\x07root")
    for argv in (
        ["status", bad],
        [bad],
        ["kill", bad, "run"],
        ["status", str(tmp_path), "extra\x1b[2J\u202e"],  # a glob's names, rejected by argparse
    ):
        done = subprocess.run([sys.executable, "-m", "tui", *argv], capture_output=True, timeout=60)
        assert done.returncode == 2, argv
        assert done.stderr and CONTROL_BYTES.search(done.stderr.rstrip(b"\n")) is None, argv
    done = status(bad)
    assert b"bad\\x1b]0;x\\x07root is not a readable directory" in done.stderr


def _run_json(directory: Path, pid: int) -> None:
    meta = {
        "pid": pid,
        "pid_create_time": psutil.Process(pid).create_time(),
        "host": socket.gethostname(),
        "status": "running",
    }
    (directory / "run.json").write_text(json.dumps(meta))
    (directory / "metrics.jsonl").write_text('{"step": 1, "loss": 0.5}\n')


SLEEPER = "import sys, time; print('ready', flush=True); time.sleep(600)"


def test_tracktui_kill_reaches_a_run_in_a_hostile_directory(tmp_path: Path, processes) -> None:
    directory = tmp_path / "victim\x1b]0;x\x07\n\u202e"
    directory.mkdir()
    sleeper = processes.python(SLEEPER, start_new_session=True)
    _run_json(directory, sleeper.pid)
    shown = escape_path(directory.name)  # as the table and `status` spell it
    done = subprocess.run(
        [sys.executable, "-m", "tui", "kill", str(tmp_path), shown, "--yes", "--grace", "1"],
        capture_output=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    assert CONTROL_BYTES.search(done.stdout.rstrip(b"\n")) is None
    assert sleeper.wait(10) is not None
    audit = [json.loads(line) for line in (tmp_path / ".tracktui" / "audit.jsonl").open()]
    assert any(entry.get("run") == str(directory) for entry in audit), audit


@pytest.mark.slow
async def test_the_app_kills_a_run_in_a_hostile_directory(tmp_path: Path, processes) -> None:
    directory = tmp_path / "victim\x1b]0;x\x07\n\u202e"
    directory.mkdir()
    sleeper = processes.python(SLEEPER, start_new_session=True)
    _run_json(directory, sleeper.pid)
    key = escape_path(directory.name)
    app = TrackApp(tmp_path, watch="poll", grace=2.0)
    async with app.run_test(size=SIZE) as pilot:
        await wait_for(pilot, lambda: key in table_of(app).shown)
        await wait_for(pilot, lambda: app.store.runs[key].status == "running")
        await pilot.press("T")
        await wait_for(pilot, lambda: isinstance(app.screen, ConfirmKill))
        text = " ".join(str(w.render()) for w in app.screen.query("Static"))
        # the plan names the run sanitized (the process, pid and user are what identify it)
        assert "victim" in text and str(sleeper.pid) in text
        assert CONTROL.search(text.replace("\n", " ")) is None
        await pilot.press("y")
        await wait_for(pilot, lambda: not marked(processes.marker), timeout=15)
        # The audit log is opened before the first signal and its line written once the
        # tree is gone: wait for the line, not for the file.
        audit = tmp_path / ".tracktui" / "audit.jsonl"

        def stopped() -> bool:
            if not audit.exists():
                return False
            lines = audit.read_bytes().splitlines(keepends=True)
            entries = [json.loads(line) for line in lines if line.endswith(b"\n")]
            return any(entry.get("run") == str(directory) for entry in entries)

        await wait_for(pilot, stopped, timeout=15)
        # our audit log, matched to the run by its raw path, now says who stopped it
        await wait_for(pilot, lambda: app.store.runs[key].status == "killed", timeout=20)
