"""Slurm as the engine, against a real single-node cluster (tests/slurm/start_cluster.sh).

The cluster's node has ONE CPU, so one job fills it. Tests marked ``slurm`` need it: they
start it when it is down (never installing packages outside CI) and are skipped, saying
why, only when it cannot be started and ``TRACKTUI_CI`` is not set; in CI they fail.
Every wait is on a condition with a generous deadline; no timing is asserted.

What the cluster tests cost on 2 cores (most of it Slurm's own clocks): the app test
waits for Slurm's time-limit check, which runs every 30 s (0-30 s, about 20 s on average
with the app's start); the others take 2-6 s each.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from conftest import wait_for
from processes import Processes, read_meta, wait_until

from tui.core import procs
from tui.core.engine import Engine
from tui.core.evidence import EvidenceGatherer
from tui.core.headless import collect
from tui.core.procs import KillPlan, Refusal
from tui.core.rundir import current_user, write_json_atomic
from tui.core.slurm import (
    SlurmClient,
    SlurmJob,
    SlurmTracker,
    job_of,
    parse_sacct,
    parse_squeue_fields,
    run_command,
)
from tui.core.status import derive_status
from tui.core.store import Run

STATE = Path(os.environ.get("TRACKTUI_SLURM_DIR", "/tmp/tracktui-slurm"))
CONF = STATE / "slurm.conf"
START = Path(__file__).resolve().parent / "slurm" / "start_cluster.sh"
TRAIN = Path(__file__).resolve().parent / "scripts" / "train_like.py"
DEADLINE = 60.0
"""Seconds any one condition may take (Slurm's time-limit check alone runs every 30 s)."""
PREFIX = "tt-"
"""Every job a test submits is named with this prefix, so leftovers can be found."""


# ---------------------------------------------------------------- the cluster


def _cluster_up() -> bool:
    if shutil.which("sinfo") is None or not CONF.exists():
        return False
    code, out, _ = run_command(["sinfo", "--noheader", "--format=%T"])
    return code == 0 and out.strip().rstrip("*") in ("idle", "mixed", "allocated", "completing")


@pytest.fixture(scope="session")
def cluster() -> Iterator[Path]:
    """The cluster's slurm.conf, exported as SLURM_CONF for us and every child process."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("SLURM_CONF", str(CONF))
        if not _cluster_up():
            ci = bool(os.environ.get("TRACKTUI_CI"))
            env = {**os.environ, "TRACKTUI_SLURM_INSTALL": "yes" if ci else "no"}
            done = subprocess.run(
                ["bash", str(START)], env=env, capture_output=True, text=True, timeout=300
            )
            if not _cluster_up():
                said = (done.stderr.strip().splitlines() or ["no output"])[-1]
                reason = (
                    f"no Slurm cluster: tests/slurm/start_cluster.sh could not start one ({said})"
                )
                if ci:
                    pytest.fail(reason)
                pytest.skip(reason)
        yield CONF


def _active() -> list[tuple[str, str]]:
    """(job id, name) of every job not yet over."""
    code, out, _ = run_command(
        ["squeue", "--noheader", "--states=PD,CF,R,CG,S,ST", "--format=%A %j"]
    )
    assert code == 0
    return [tuple(line.split(" ", 1)) for line in out.splitlines() if " " in line]  # type: ignore[misc]


def _clear() -> None:
    """Cancel what tests left behind and wait until the node is free again."""
    ours = [job for job, name in _active() if name.startswith(PREFIX)]
    if ours:
        run_command(["scancel", *ours])
    wait_until(lambda: not [j for j, n in _active() if n.startswith(PREFIX)], DEADLINE)
    wait_until(lambda: run_command(["sinfo", "-h", "-o", "%T"])[1].strip() == "idle", DEADLINE)


@pytest.fixture
def node(cluster: Path) -> Iterator[None]:
    """The node, free at the start of the test and again after it."""
    _clear()
    yield
    _clear()


def state(job: str) -> str:
    """Slurm's word for ``job`` now (squeue holds finished jobs for an hour here)."""
    return run_command(["squeue", "-h", "--states=all", f"--jobs={job}", "--format=%T"])[1].strip()


def sbatch_run(root: Path, name: str, *command: str, options: str = "") -> tuple[str, Path]:
    """``tracktui run --sbatch`` as a user types it; returns the job id and the run dir."""
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "tui",
            "run",
            "--root",
            str(root),
            "--name",
            name,
            f"--sbatch={options}",
            "--",
            *command,
        ],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    run_dir = root / name
    job = read_meta(run_dir)["slurm_job_id"]
    assert f"Submitted batch job {job}" in done.stdout
    return job, run_dir


def train(*extra: str) -> tuple[str, ...]:
    return (sys.executable, str(TRAIN), "0", "--interval", "0.1", *extra)


# Logs until SIGINT, then saves (a last record) and ends by itself, as a trainer that
# checkpoints on Ctrl-C does. sys.argv[1] is the test's marker (cleanup finds it).
INTERRUPTIBLE = """
import json, signal, time
stop = []
signal.signal(signal.SIGINT, lambda *_: stop.append(1))
step = 0
while not stop:
    print(json.dumps({"step": step, "loss": 1.0 / (step + 1)}), flush=True)
    step += 1
    time.sleep(0.1)
print(json.dumps({"step": step, "interrupted": 1}), flush=True)
"""


class Counted:
    """The real command runner, counting what it runs."""

    def __init__(self) -> None:
        self.calls: list[list[str]] = []

    def __call__(self, argv: Any) -> tuple[int, str, str]:
        self.calls.append(list(argv))
        return run_command(argv)

    def take(self) -> list[str]:
        names = [" ".join(c[:2]) if c[1:2] == ["--version"] else c[0] for c in self.calls]
        self.calls.clear()
        return names


# ---------------------------------------------------------------- with the real cluster


@pytest.mark.slurm
def test_one_squeue_per_refresh_for_any_number_of_runs(tmp_path: Path, node: None) -> None:
    held = [
        run_command(
            [
                "sbatch",
                "--parsable",
                "--hold",
                "-J",
                f"{PREFIX}held",
                "-o",
                "/dev/null",
                "--wrap",
                "true",
            ]
        )[1].strip()
        for _ in range(3)
    ]
    array = run_command(
        [
            "sbatch",
            "--parsable",
            "--hold",
            "--array=0-1",
            "-J",
            f"{PREFIX}array",
            "-o",
            "/dev/null",
            "--wrap",
            "true",
        ]
    )[1].strip()
    for i in range(300):  # runs naming jobs, and 290 runs that name no job at all
        run_dir = tmp_path / f"run{i:03}"
        run_dir.mkdir()
        meta: dict[str, Any] = {"name": run_dir.name, "status": "running"}
        if i < 9:
            meta["slurm_job_id"] = held[i % 3] if i < 7 else f"{held[0]}.0"
        if i == 8:
            meta["slurm_job_id"] = "999999"  # a job Slurm has forgotten (or never had)
        if i == 9:
            meta["slurm_job_id"] = f"{array}_1"  # a task of a job array
        write_json_atomic(run_dir / "run.json", meta)
    engine = Engine(tmp_path)
    engine.scan()
    counted = Counted()
    gatherer = EvidenceGatherer(tmp_path, slurm=SlurmTracker(SlurmClient(counted)))

    first = gatherer.gather(engine.run_files())
    # The version once, one squeue, and one sacct for the job squeue does not hold: it
    # says accounting is off here, so it is not asked again for a while.
    assert counted.take() == ["squeue --version", "squeue", "sacct"]
    assert first.slurm_commands == 2
    for _ in range(3):
        again = gatherer.gather(engine.run_files())
        assert counted.take() == ["squeue"] and again.slurm_commands == 1
    assert len(again.slurm) == 10
    task = again.slurm["run009"]
    assert (task.job_id, task.state) == (f"{array}_1", "PENDING")
    job = again.slurm["run007"]
    assert job.job_id == held[0] and job.state == "PENDING" and job.reason == "JobHeldUser"
    forgotten = again.slurm["run008"]
    assert forgotten.state == "UNKNOWN" and "no accounting" in (forgotten.reason or "")

    store_run = Run("run000", "tracktui", "run000")
    store_run.meta = {"status": "running", "slurm_job_id": held[0]}
    store_run.slurm = job
    assert derive_status(store_run, time.time()) == "queued"

    # squeue --json (Slurm 22.05 ignores its filter and lists every job) says the same.
    as_json = SlurmClient(counted, use_json=True).squeue(held)
    assert as_json.jobs == SlurmClient(counted, use_json=False).squeue(held).jobs
    assert counted.calls[0][:2] == ["squeue", "--json"] and len(counted.take()) == 2

    # A queued job has nothing to interrupt: I (like T and K) cancels it outright.
    plan = procs.plan_kill(tmp_path / "run000", read_meta(tmp_path / "run000"))
    assert isinstance(plan, KillPlan), plan
    report = procs.execute(plan, "int", audit_path=tmp_path / "audit.jsonl")
    assert report.ok and f"scancel {held[0]} -> exit 0" in "\n".join(report.describe())
    # A job in a final state is not asked about again.
    run_command(["scancel", *held[1:], array])
    wait_until(lambda: all(state(j) == "CANCELLED" for j in held), DEADLINE)
    done = gatherer.gather(engine.run_files())
    assert {j.state for j in done.slurm.values()} == {"CANCELLED", "UNKNOWN"}
    assert counted.take() == ["squeue"]
    gatherer.gather(engine.run_files())
    assert counted.calls == [
        ["squeue", "--noheader", "--array", "--states=all", "--jobs=999999", counted.calls[0][-1]]
    ]


@pytest.mark.slurm
def test_a_job_that_exits_3_is_failed(tmp_path: Path, node: None) -> None:
    job, run_dir = sbatch_run(
        tmp_path, f"{PREFIX}exit3", "sh", "-c", "echo '{\"loss\": 1}'; exit 3"
    )
    wait_until(lambda: state(job) == "FAILED", DEADLINE)
    done = subprocess.run(
        [sys.executable, "-m", "tui", "status", str(tmp_path), "--json"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    (run,) = json.loads(done.stdout)["runs"]
    assert run["status"] == "failed"
    assert run["slurm"] == {
        "job_id": job,
        "state": "FAILED",
        "reason": "NonZeroExitCode",
        "node": read_meta(run_dir)["host"],
        "exit_code": 3,
    }
    assert run["metrics"]["loss"]["last"] == 1
    assert (run_dir / "sbatch.sh").exists() and read_meta(run_dir)["exit_code"] == 3


@pytest.mark.slurm
def test_interrupt_reaches_the_job_and_another_users_job_is_refused(
    tmp_path: Path, node: None, processes: Processes
) -> None:
    # I: SIGINT through scancel --signal=INT --full; the run saves and ends by itself.
    job, run_dir = sbatch_run(
        tmp_path, f"{PREFIX}int", sys.executable, "-c", INTERRUPTIBLE, processes.marker
    )
    wait_until(
        lambda: (run_dir / "metrics.jsonl").exists() and read_meta(run_dir).get("pid"), DEADLINE
    )
    plan = procs.plan_kill(run_dir, read_meta(run_dir))
    assert isinstance(plan, KillPlan), plan
    shown = "\n".join(plan.describe())
    assert f"Slurm job {job}" in shown and "RUNNING on" in shown
    audit = tmp_path / "audit.jsonl"
    report = procs.execute(plan, "int", audit_path=audit)
    assert report.ok, report.describe()
    wait_until(lambda: state(job) == "COMPLETED", DEADLINE)
    assert read_meta(run_dir)["status"] == "finished"
    assert "interrupted" in (run_dir / "metrics.jsonl").read_text()
    (line,) = [json.loads(x) for x in audit.read_text().splitlines()]
    assert line["signal"] == "scancel SIGINT" and line["slurm_job_id"] == job
    assert f"--signal=INT --full {job}" in line["result"]

    # A job of another user (nobody): refused, audited, left alone, even though we are root.
    if os.geteuid() != 0:
        pytest.skip("submitting a job as another user needs root")
    theirs = subprocess.run(
        [
            "runuser",
            "-u",
            "nobody",
            "--",
            "sbatch",
            "--parsable",
            "--hold",
            "-J",
            f"{PREFIX}nobody",
            "-o",
            "/dev/null",
            "--chdir=/tmp",
            "--wrap",
            "sleep 60",
        ],
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ},
    )
    assert theirs.returncode == 0, theirs.stderr
    their_job = theirs.stdout.strip()
    planted = tmp_path / "planted"
    planted.mkdir()
    meta = {"name": "planted", "user": current_user(), "slurm_job_id": their_job}
    write_json_atomic(planted / "run.json", meta)
    refusal = procs.plan_kill(planted, meta)
    assert isinstance(refusal, Refusal) and refusal.code == "other_user"
    assert "'nobody'" in refusal.message
    report = procs.kill_run(planted, meta, audit_path=audit)
    assert report.refusal is not None and report.refusal.code == "other_user"
    assert "refused" in audit.read_text().splitlines()[-1]
    assert state(their_job) == "PENDING"


@pytest.mark.slurm
async def test_queued_behind_a_full_node_then_running_then_cancelled_from_the_app(
    tmp_path: Path, node: None, processes: Processes
) -> None:
    from tui.app.app import TrackApp
    from tui.app.screens.confirm_kill import ConfirmKill
    from tui.app.widgets.run_table import RunTable

    # A job that fills the one CPU until Slurm times it out; ours waits behind it.
    filler, filler_dir = sbatch_run(tmp_path, f"{PREFIX}filler", "sleep", "300", options="--time=1")
    wait_until(lambda: state(filler) == "RUNNING", DEADLINE)
    target, target_dir = sbatch_run(
        tmp_path, f"{PREFIX}target", *train("--marker", processes.marker)
    )
    key = f"{PREFIX}target"
    assert read_meta(target_dir)["status"] == "queued"
    assert "pid" not in read_meta(target_dir)  # nothing of it has started
    reason = ["squeue", "-h", f"--jobs={target}", "--format=%r"]
    wait_until(lambda: run_command(reason)[1].strip() in ("Resources", "Priority"), DEADLINE)

    app = TrackApp(tmp_path, watch="poll", grace=2.0)
    async with app.run_test(size=(140, 40)) as pilot:
        await wait_for(pilot, lambda: key in app.store.runs, DEADLINE)
        run = app.store.runs[key]
        await wait_for(pilot, lambda: run.status == "queued", DEADLINE)
        # Once the scheduler has looked at it, Slurm says why it waits.
        await wait_for(
            pilot,
            lambda: run.slurm is not None and run.slurm.reason in ("Resources", "Priority"),
            DEADLINE,
        )
        assert run.status == "queued"
        assert app.store.runs[f"{PREFIX}filler"].status == "running"

        # Past its time limit (the end moved to now, so no minute is waited): TIMEOUT.
        run_command(["scontrol", "update", f"JobId={filler}", "EndTime=now"])
        await wait_for(pilot, lambda: state(target) == "RUNNING", DEADLINE)
        app.request_evidence()  # rather than wait for the next periodic look
        await wait_for(pilot, lambda: run.status == "running", DEADLINE)
        await wait_for(
            pilot, lambda: "loss" in run.series and run.series["loss"].count >= 5, DEADLINE
        )
        assert state(filler) == "TIMEOUT"
        await wait_for(
            pilot, lambda: app.store.runs[f"{PREFIX}filler"].status == "timeout", DEADLINE
        )

        table = app.screen.query_one(RunTable)
        table.move_cursor(row=table.get_row_index(key))
        await wait_for(pilot, lambda: table.current_key == key)
        await pilot.press("T")
        await wait_for(pilot, lambda: isinstance(app.screen, ConfirmKill), DEADLINE)
        text = " ".join(str(w.render()) for w in app.screen.query("Static"))
        assert f"Slurm job {target}" in text
        await pilot.press("y")
        await wait_for(pilot, lambda: state(target) == "CANCELLED", DEADLINE)
        app.request_evidence()
        await wait_for(pilot, lambda: run.status == "cancelled", DEADLINE)
        # SIGTERM reached the run itself, which recorded it.
        wait_until(lambda: read_meta(target_dir).get("status") == "killed", DEADLINE)

    audit = [
        json.loads(x) for x in (tmp_path / ".tracktui" / "audit.jsonl").read_text().splitlines()
    ]
    assert [(a["slurm_job_id"], a["signal"]) for a in audit] == [(target, "scancel SIGTERM")]
    summaries = {s["name"]: s for s in collect(tmp_path)}
    assert summaries[key]["status"] == "cancelled"
    assert summaries[key]["slurm"]["state"] == "CANCELLED"
    assert summaries[f"{PREFIX}filler"]["status"] == "timeout"
    assert summaries[f"{PREFIX}filler"]["slurm"]["reason"] == "TimeLimit"
    assert summaries[f"{PREFIX}filler"]["ended_at"] is not None
    wait_until(lambda: read_meta(filler_dir).get("signal") == 15, DEADLINE)


@pytest.mark.slurm
def test_watch_auto_kill_cancels_a_diverging_slurm_run(
    tmp_path: Path, node: None, processes: Processes
) -> None:
    root = tmp_path / "runs"
    root.mkdir()
    rules = tmp_path / "rules.toml"
    rules.write_text(
        '[[rule]]\nname = "diverged"\nmetric = "loss"\nwhen = "nonfinite"\naction = "kill"\n'
    )
    rules.chmod(0o600)
    out, err = tmp_path / "watch.out", tmp_path / "watch.err"
    with open(out, "wb") as stdout, open(err, "wb") as stderr:
        watch = processes.track(
            subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "tui",
                    "watch",
                    str(root),
                    "--rules",
                    str(rules),
                    "--auto-kill",
                ],
                stdout=stdout,
                stderr=stderr,
            )
        )
    wait_until(lambda: "following" in err.read_text() or watch.poll() is not None, DEADLINE)
    assert watch.poll() is None, err.read_text()
    job, run_dir = sbatch_run(
        root, f"{PREFIX}diverging", *train("--nan-at", "20", "--marker", processes.marker)
    )

    def acted() -> list[dict[str, Any]]:
        lines = [json.loads(x) for x in out.read_text().splitlines() if x.strip()]
        return [e for e in lines if e["action"] == "scancel" and e["result"]]

    wait_until(lambda: state(job) == "CANCELLED", DEADLINE)
    event = wait_until(lambda: [e for e in acted() if "asked Slurm" in e["result"]], DEADLINE)[0]
    assert event["run"]["name"] == f"{PREFIX}diverging" and event["rule"] == "diverged"
    assert f"scancel {job} -> exit 0" in event["result"]
    wait_until(lambda: read_meta(run_dir).get("status") == "killed", DEADLINE)
    (summary,) = collect(root)
    assert summary["status"] == "cancelled" and summary["slurm"]["state"] == "CANCELLED"
    audit = json.loads((root / ".tracktui" / "audit.jsonl").read_text().splitlines()[-1])
    assert audit["slurm_job_id"] == job and "rule diverged" in audit["reason"]
    watch.terminate()
    watch.wait(DEADLINE)


# ---------------------------------------------------------------- without a cluster


ROWS = [  # JobID ArrayJobID ArrayTaskID State exit_code NodeList UserName EndTime Reason
    ["41", "41", "N/A", "PENDING", "0", "", "alice", "2026-12-02T08:00:00", "Resources"],
    [
        "42",
        "42",
        "N/A",
        "FAILED",
        "768",
        "node7",
        "alice",
        "2026-12-02T08:00:00",
        "NonZeroExitCode",
    ],
    ["43", "43", "N/A", "CANCELLED", "15", "node[1-2]", "bob", "2026-12-02T08:00:00", "None"],
    ["50", "50", "2", "PENDING", "0", "", "alice", "N/A", "Priority"],
    ["53", "50", "1", "RUNNING", "0", "node3", "alice", "2026-12-02T09:00:00", "None"],
]
SQUEUE = "".join("\x1f".join(row) + "\x1f\n" for row in ROWS)


def test_squeue_and_sacct_lines_are_parsed() -> None:
    jobs = parse_squeue_fields(SQUEUE)
    assert jobs["41"] == SlurmJob("41", "PENDING", "Resources", None, None, None, "alice", None)
    assert (jobs["42"].status, jobs["42"].exit_code, jobs["42"].node) == ("failed", 3, "node7")
    assert (jobs["43"].status, jobs["43"].signal, jobs["43"].exit_code) == ("cancelled", 15, None)
    assert jobs["42"].end_time is not None and jobs["41"].end_time is None
    # Array tasks: a pending one only by ARRAY_TASK, a started one by its own id too.
    assert "50" not in jobs and jobs["50_2"].status == "queued"
    assert jobs["53"] is jobs["50_1"] and jobs["53"].node == "node3"
    counted = parse_sacct(
        "44|44|CANCELLED by 0|0:15|node7|alice|2026-12-02T08:00:00|None\n"
        "45_2|47|OUT_OF_MEMORY|0:125|node8|alice|2026-12-02T08:00:00|OutOfMemory\n"
    )
    assert counted["44"].state == "CANCELLED" and counted["44"].signal == 15
    assert counted["47"] is counted["45_2"] and counted["47"].status == "out_of_memory"
    assert job_of("12.0") == "12" and job_of("12_3") == "12_3" and job_of("--user=x") is None


def _run(meta: dict[str, Any], job: SlurmJob | None) -> Run:
    run = Run("r", "tracktui", "r")
    run.meta = meta
    run.slurm = job
    return run


def test_slurm_states_merge_into_status() -> None:
    now = time.time()
    queued = {"status": "queued", "slurm_job_id": "7", "user": "alice"}
    assert derive_status(_run(queued, SlurmJob("7", "PENDING", "Priority")), now) == "queued"
    # Slurm cannot say (controller down, job forgotten): a bare claim proves nothing.
    assert derive_status(_run(queued, SlurmJob("7", "UNKNOWN", "squeue exit 1")), now) == "unknown"
    assert derive_status(_run(queued, None), now) == "unknown"
    elsewhere = {"slurm_job_id": "7", "pid": 99, "pid_create_time": 1.0, "host": "node7"}
    for word, status in [
        ("RUNNING", "running"),
        ("COMPLETING", "completing"),
        ("COMPLETED", "finished"),
        ("TIMEOUT", "timeout"),
        ("OUT_OF_MEMORY", "out_of_memory"),
        ("NODE_FAIL", "node_fail"),
        ("CANCELLED", "cancelled"),
    ]:
        assert derive_status(_run(elsewhere, SlurmJob("7", word)), now) == status
    # The run's own end comes first; a signal is refined by the scheduler's reason.
    ended = {**elsewhere, "exit_code": 3, "status": "failed"}
    assert derive_status(_run(ended, SlurmJob("7", "CANCELLED")), now) == "failed"
    signalled = {**elsewhere, "signal": 15, "status": "killed"}
    assert derive_status(_run(signalled, SlurmJob("7", "TIMEOUT")), now) == "timeout"
    assert derive_status(_run(signalled, SlurmJob("7", "FAILED")), now) == "killed"


def test_a_run_on_another_node_without_a_job_id_is_unkillable(tmp_path: Path) -> None:
    meta = {
        "name": "far",
        "user": current_user(),
        "host": "node42",
        "pid": 4242,
        "pid_create_time": 1.0,
    }
    write_json_atomic(tmp_path / "run.json", meta)
    refusal = procs.plan_kill(tmp_path, meta)
    assert isinstance(refusal, Refusal) and refusal.code == "other_host"
    assert "'node42'" in refusal.message
