"""The app on runs it did not launch: the process behind a log is found, shown and killed."""

from __future__ import annotations

from pathlib import Path

import pytest
from conftest import wait_for, write_run
from fake_engine import fake_app, loaded
from processes import Processes, running

from tui.app.app import TrackApp
from tui.app.messages import EvidenceGathered
from tui.app.screens.confirm_kill import ConfirmKill
from tui.app.widgets.run_table import RunTable
from tui.core.evidence import Evidence

SIZE = (140, 40)

# A ``python train.py > train.log`` run: JSON lines on a log it keeps open.
WRITER = """
import json, sys, time
log = open(sys.argv[2], "a", buffering=1)
step = 0
print("ready", flush=True)
while True:
    log.write(json.dumps({"step": step, "loss": 1.0 / (step + 1)}) + "\\n")
    step += 1
    time.sleep(0.2)
"""


@pytest.mark.slow
async def test_a_foreign_run_is_backed_by_its_writer_and_killed_from_the_app(
    tmp_path: Path, processes: Processes
) -> None:
    (tmp_path / "exp").mkdir()
    # Its own session, as a job started from another shell is (never our process group).
    writer = processes.python(WRITER, str(tmp_path / "exp" / "train.log"), start_new_session=True)
    app = TrackApp(tmp_path, watch="poll", grace=2.0)
    async with app.run_test(size=SIZE) as pilot:
        key = "exp/train.log"
        await wait_for(pilot, lambda: key in app.store.runs)
        run = app.store.runs[key]
        await wait_for(pilot, lambda: run.process is not None and run.process.pid == writer.pid)
        assert run.status == "running"
        assert "train.log" in run.process.evidence
        table = app.screen.query_one(RunTable)
        await wait_for(pilot, lambda: table.current_key == key)
        assert app.check_action("kill", ("term",)) is True
        await pilot.press("T")
        await wait_for(pilot, lambda: isinstance(app.screen, ConfirmKill))
        text = " ".join(str(w.render()) for w in app.screen.query("Static"))
        assert str(writer.pid) in text and "open" in text  # how the process was found
        await pilot.press("y")
        await wait_for(pilot, lambda: writer.poll() is not None, timeout=15)
        # Our audit line is the evidence: the run reads as killed, not crashed or ended.
        await wait_for(pilot, lambda: run.status == "killed", timeout=20)
        assert run.process is None
        assert not running_writer(writer.pid)
        audit = tmp_path / ".tracktui" / "audit.jsonl"
        assert "train.log" in audit.read_text()


def running_writer(pid: int) -> bool:
    import psutil

    try:
        return running(psutil.Process(pid))
    except psutil.NoSuchProcess:
        return False


@pytest.mark.slow
async def test_pressing_terminate_three_times_asks_once_and_acts_once(
    tmp_path: Path, processes: Processes
) -> None:
    processes.launch(tmp_path, "victim")
    app = TrackApp(tmp_path, watch="poll", grace=2.0)
    async with app.run_test(size=SIZE) as pilot:
        await wait_for(pilot, lambda: app.store.runs.get("victim") is not None)
        await wait_for(pilot, lambda: app.store.runs["victim"].status == "running")
        for _ in range(3):  # three presses before the dialog is up (planning takes a while)
            app.action_kill("term")
        await wait_for(pilot, lambda: isinstance(app.screen, ConfirmKill))
        await pilot.press("T")  # and once more under the dialog
        await pilot.pause(0.5)
        assert sum(isinstance(s, ConfirmKill) for s in app.screen_stack) == 1
        await pilot.press("y")
        await wait_for(pilot, lambda: not processes_alive(processes), timeout=15)
        audit = tmp_path / ".tracktui" / "audit.jsonl"
        await wait_for(pilot, lambda: audit.exists() and audit.read_text().count("\n") >= 1)
        await pilot.pause(0.5)
        assert sum(isinstance(s, ConfirmKill) for s in app.screen_stack) == 0
        lines = audit.read_text().splitlines()
        assert (len(lines) == 1 and '"victim"' in lines[0]) or "victim" in lines[0]
        await wait_for(pilot, lambda: not app._killing)
        await pilot.press("T")  # once that kill is over, a new request is heard again
        await pilot.pause(0.3)
        assert not isinstance(app.screen, ConfirmKill)  # the run is killed: nothing to act on


def processes_alive(processes: Processes) -> bool:
    from processes import marked

    return bool(marked(processes.marker))


async def test_the_app_reloads_an_edited_rules_file_and_keeps_good_rules_on_a_broken_edit(
    tmp_path: Path,
) -> None:
    (tmp_path / "exp").mkdir()
    (tmp_path / "exp" / "metrics.jsonl").write_text(
        '{"step": 1, "loss": 0.5}\n{"step": 2, "loss": NaN}\n'
    )
    rules = tmp_path / "tracktui.toml"
    app = TrackApp(tmp_path, watch="poll")
    async with app.run_test(size=SIZE) as pilot:
        await wait_for(pilot, lambda: "exp" in app.store.runs and app.store.runs["exp"].series)
        assert app.rules is None and not app.verdicts.get("exp")
        rules.write_text('[[rule]]\nname = "diverged"\nmetric = "loss"\nwhen = "nonfinite"\n')
        app.refresh_statuses()  # what the status timer runs every few seconds
        await wait_for(pilot, lambda: bool(app.verdicts.get("exp")))
        (verdict,) = app.verdicts["exp"]
        assert verdict.rule == "diverged" and verdict.state == "triggered"
        good = app.rules
        rules.write_text('[[rule]]\nname = "broken"\nmetric = "loss"\nwhen = "sometimes"\n')
        app.refresh_statuses()
        await pilot.pause()
        assert app.rules is good and app.rules_error is not None and "line" in app.rules_error
        assert [v.rule for v in app.verdicts["exp"]] == ["diverged"]
        rules.write_text(
            '[[rule]]\nname = "diverged"\nmetric = "loss"\nwhen = "nonfinite"\naction = "kill"\n'
        )
        rules.chmod(0o666)  # anyone may write it: its kill action only flags
        app.refresh_statuses()
        await pilot.pause()
        assert app.rules is not good and app.rules_error is None
        assert [r.action for r in app.rules.rules] == ["flag"]
        assert app.rules_file.downgraded is not None


async def test_the_same_evidence_again_still_reaches_a_run_that_came_since(tmp_path: Path) -> None:
    """A gathering equal to the last one is not applied again, unless runs came: the new
    run still learns that ROOT was scanned (and is judged by it)."""
    write_run(tmp_path, "first", [1.0, 0.5])
    app = fake_app(tmp_path)
    quiet = Evidence(
        processes={}, stops={}, scanned=0, seconds=0.0, cpu_seconds=0.0, pause=1.0, local=True
    )
    async with app.run_test() as pilot:
        engine = await loaded(pilot, runs=1)
        app.post_message(EvidenceGathered(quiet))
        await pilot.pause()
        assert app.store.runs["first"].scanned
        write_run(tmp_path, "second", [2.0, 1.0])
        await engine.changed(tmp_path / "second" / "metrics.jsonl")
        assert not app.store.runs["second"].scanned
        app.post_message(EvidenceGathered(quiet))
        await pilot.pause()
        assert app.store.runs["second"].scanned
