"""Slurm as the engine of runs on a cluster (DESIGN.md §3, §5, §6).

A run names its job in ``run.json``'s ``slurm_job_id`` (``tracktui run`` records
``SLURM_JOB_ID`` when it runs inside a job; ``tracktui run --sbatch`` writes it at
submission, before the job has started). This module reads what Slurm says about those jobs
and submits new ones:

- :class:`SlurmTracker` is what the evidence gatherer calls every refresh: it finds the job
  ids in the runs' ``run.json`` files (re-read only when a file changed) and asks Slurm about
  every job still worth asking about in ONE ``squeue`` call, plus ONE ``sacct`` call for the
  jobs squeue no longer holds when accounting is on. Jobs seen in a final state are not
  asked about again (a job that can be requeued, after a node failure or a preemption, is).
- :class:`SlurmClient` runs the commands and parses them: ``squeue --json`` where it honours
  the job filter (Slurm 23.02 and later; before, ``--json`` dumps every job of the
  cluster), else ``squeue -h -O`` with a delimiter; ``sacct -P -n -X``.
- :func:`submit` starts ``tracktui run --run-dir DIR -- CMD`` as a batch job, held until the
  job id is in ``run.json`` so the node's first write never races the submitter's.

Slurm's words are kept as they are (``PENDING``, ``TIMEOUT``...); :data:`STATUS_OF` maps
them onto tracktui's statuses. Nothing here imports a UI.
"""

from __future__ import annotations

import json
import os
import re
import shlex
import shutil
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import datetime
from pathlib import Path
from typing import Any

from tui.core.rundir import RUN_JSON, read_run_json, update_run_json, write_json_atomic
from tui.core.sanitize import sanitize

STATUS_OF: dict[str, str] = {
    "PENDING": "queued",
    "REQUEUED": "queued",
    "REQUEUE_HOLD": "queued",
    "REQUEUE_FED": "queued",
    "RESV_DEL_HOLD": "queued",
    "CONFIGURING": "queued",  # nodes allocated but still booting: nothing runs yet
    "RUNNING": "running",
    "SIGNALING": "running",
    "RESIZING": "running",
    "SUSPENDED": "stalled",
    "STOPPED": "stalled",
    "COMPLETING": "completing",
    "STAGE_OUT": "completing",
    "COMPLETED": "finished",
    "FAILED": "failed",
    "BOOT_FAIL": "failed",
    "SPECIAL_EXIT": "failed",
    "CANCELLED": "cancelled",
    "PREEMPTED": "cancelled",
    "REVOKED": "cancelled",
    "TIMEOUT": "timeout",
    "DEADLINE": "timeout",
    "OUT_OF_MEMORY": "out_of_memory",
    "NODE_FAIL": "node_fail",
}
"""tracktui's status for each Slurm job state (``squeue``/``sacct`` spelling)."""

FINAL = frozenset(
    {"COMPLETED", "FAILED", "CANCELLED", "TIMEOUT", "DEADLINE", "OUT_OF_MEMORY", "REVOKED"}
)
"""States a job never leaves: it is not asked about again. NODE_FAIL, PREEMPTED and BOOT_FAIL
are left out on purpose: Slurm may requeue such a job under the same id."""

ENDED = frozenset(s for s, status in STATUS_OF.items() if status not in ("queued", "running"))
"""States in which the job's processes are gone or going (no more records will come)."""

UNKNOWN = "UNKNOWN"
"""The state of a job Slurm did not describe (the job's reason says why); no status."""

JSON_SINCE = (23, 2)
"""First Slurm release whose ``squeue --json`` honours ``-j`` (22.05's dumps every job)."""

COMMAND_TIMEOUT = 20.0
"""Seconds a Slurm command may take before its answer is given up (controller down)."""

ACCOUNTING_RETRY = 600.0
"""Seconds before ``sacct`` is tried again after it said accounting is off."""

JOB_ID = re.compile(r"\d+(?:_\d+)?(?:\.(?:\d+|batch|extern))?")
"""A job id as run.json may record it: ``123``, an array task ``123_4``, a step ``123.0``."""

_FIELDS = (
    "JobID",
    "ArrayJobID",
    "ArrayTaskID",
    "State",
    "exit_code",
    "NodeList",
    "UserName",
    "EndTime",
    "Reason",
)
_DELIM = "\x1f"  # a unit separator: no job field contains one; the reason, last, may hold "|"


@dataclass(frozen=True, slots=True)
class SlurmJob:
    """What Slurm says about one job. Strings are sanitized.

    Attributes:
        job_id: the id asked about (``123``, or ``123_4`` for an array task).
        state: Slurm's state word (``PENDING``, ``RUNNING``, ``TIMEOUT``...).
        reason: why it waits or ended (``Resources``, ``NonZeroExitCode``), ``None`` for none.
        node: the node list it runs or ran on.
        exit_code: the batch script's exit code, once it ended by itself.
        signal: the signal that ended it, if one did.
        user: the job's owner.
        end_time: when it ended (epoch seconds), once it has.
        source: ``squeue`` or ``sacct``.
    """

    job_id: str
    state: str
    reason: str | None = None
    node: str | None = None
    exit_code: int | None = None
    signal: int | None = None
    user: str | None = None
    end_time: float | None = None
    source: str = "squeue"

    @property
    def status(self) -> str | None:
        """tracktui's status for this state (:data:`STATUS_OF`), ``None`` for an unknown one."""
        return STATUS_OF.get(self.state)

    @property
    def final(self) -> bool:
        """True in a state the job never leaves."""
        return self.state in FINAL

    def as_json(self) -> dict[str, Any]:
        """The ``"slurm"`` object of ``tracktui status --json`` (DESIGN.md §8)."""
        return {
            "job_id": self.job_id,
            "state": None if self.state == UNKNOWN else self.state,
            "reason": self.reason,
            "node": self.node,
            "exit_code": self.exit_code,
        }

    def describe(self) -> str:
        """One line for people: ``PENDING (Resources)``, ``RUNNING on node7``, ``FAILED exit 3``."""
        text = self.state
        if self.node and self.state in ("RUNNING", "COMPLETING", "SIGNALING"):
            text += f" on {self.node}"
        if self.exit_code:
            text += f" exit {self.exit_code}"
        if self.signal:
            text += f" signal {self.signal}"
        if self.reason:
            text += f" ({self.reason})"
        return text


def job_of(value: object) -> str | None:
    """The job (not step) that a recorded ``slurm_job_id`` names; ``None`` if it names none.

    ``"123.0"`` -> ``"123"``, ``"123_4"`` stays (squeue and sacct take array tasks), an int
    becomes text. Anything else (options, spaces) is refused.
    """
    if isinstance(value, bool) or not isinstance(value, (str, int)):
        return None
    text = str(value).strip()
    if not JOB_ID.fullmatch(text):
        return None
    return text.split(".", 1)[0]


# Parsing -------------------------------------------------------------------------------


def _text(value: object, limit: int = 200) -> str | None:
    if not isinstance(value, str):
        return None
    value = value.strip()
    if value in ("", "None", "(null)", "N/A", "Unknown"):
        return None
    return sanitize(value, limit)


def _state(value: object) -> str | None:
    """A state word: ``CANCELLED by 1000`` -> ``CANCELLED``; a list (Slurm 23.02+ JSON):
    a flag state (``COMPLETING``...) when present, else the base state."""
    if isinstance(value, list):
        words = [w for w in (_state(v) for v in value) if w]
        flagged = [w for w in words if w in ("COMPLETING", "CONFIGURING", "STAGE_OUT", "REQUEUED")]
        chosen = flagged or words
        return chosen[0] if chosen else None
    if not isinstance(value, str) or not value.strip():
        return None
    word = value.split()[0].upper().rstrip("+")
    return word if re.fullmatch(r"[A-Z_]+", word) else None


def _wait_status(raw: int) -> tuple[int | None, int | None]:
    """``(exit code, signal)`` of a wait status as squeue reports it (768 -> exit 3)."""
    if raw & 0x7F:
        return None, raw & 0x7F
    return (raw >> 8) & 0xFF, None


def _json_number(value: object) -> float | None:
    """A number from Slurm JSON: plain, or ``{"set": true, "number": n}`` (23.02+)."""
    if isinstance(value, dict):
        if not value.get("set", True) or value.get("infinite"):
            return None
        value = value.get("number")
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    return float(value)


def _json_exit(value: object) -> tuple[int | None, int | None]:
    if isinstance(value, dict):  # 23.02+: {"return_code": {...}, "signal": {"id": {...}}}
        signal = value.get("signal")
        number = _json_number(signal.get("id")) if isinstance(signal, dict) else None
        if number:
            return None, int(number)
        code = _json_number(value.get("return_code"))
        return (None if code is None else int(code)), None
    raw = _json_number(value)
    return _wait_status(int(raw)) if raw is not None else (None, None)


def _local_time(text: str) -> float | None:
    """Slurm prints times in the local zone without one (``2026-01-02T10:00:00``)."""
    try:
        return datetime.strptime(text.strip(), "%Y-%m-%dT%H:%M:%S").timestamp()
    except ValueError:
        return None


def _ended_at(state: str, end: float | None) -> float | None:
    return end if state in ENDED and end else None


def _keys(job_id: str, array: str, task: str, state: str) -> list[str]:
    """The ids a job answers to: its own, and ``ARRAY_TASK`` for an array task.

    A pending array task has no id of its own yet: squeue shows it under the array's id,
    which names the whole array, so only ``ARRAY_TASK`` names it.
    """
    if not task.isdigit() or not array.isdigit():
        return [job_id]
    keys = [f"{array}_{task}"]
    if job_id != array or STATUS_OF.get(state) != "queued":
        keys.append(job_id)
    return keys


def parse_squeue_fields(text: str) -> dict[str, SlurmJob]:
    """Jobs from ``squeue -h --array -O`` with :data:`_FIELDS`, each ending in the delimiter."""
    jobs: dict[str, SlurmJob] = {}
    for line in text.splitlines():
        parts = [part.strip() for part in line.split(_DELIM)]
        if len(parts) < len(_FIELDS):
            continue
        job_id, array, task, state_text, raw_exit, nodes, user, end, reason = parts[: len(_FIELDS)]
        state = _state(state_text)
        if not job_id.isdigit() or state is None:
            continue
        exit_code, signal = (None, None)
        if raw_exit.isdigit():
            exit_code, signal = _wait_status(int(raw_exit))
        job = SlurmJob(
            job_id,
            state,
            _text(reason),
            _text(nodes, 400),
            exit_code if state in ENDED else None,
            signal if state in ENDED else None,
            _text(user, 64),
            _ended_at(state, _local_time(end)),
        )
        for key in _keys(job_id, array, task, state):
            jobs[key] = job
    return jobs


def parse_squeue_json(text: str) -> dict[str, SlurmJob]:
    """Jobs from ``squeue --json`` (the OpenAPI shapes of 22.05 and of 23.02 onwards).

    Raises:
        ValueError: the text is not squeue's JSON document.
    """
    document = json.loads(text)
    entries = document.get("jobs") if isinstance(document, dict) else None
    if not isinstance(entries, list):
        raise ValueError("squeue --json gave no job list")
    jobs: dict[str, SlurmJob] = {}
    for entry in entries:
        if not isinstance(entry, dict):
            continue
        number = _json_number(entry.get("job_id"))
        state = _state(entry.get("job_state"))
        if number is None or state is None:
            continue
        job_id = str(int(number))
        array = _json_number(entry.get("array_job_id"))
        task = _json_number(entry.get("array_task_id"))
        exit_code, signal = _json_exit(entry.get("exit_code"))
        job = SlurmJob(
            job_id,
            state,
            _text(entry.get("state_reason")),
            _text(entry.get("nodes"), 400),
            exit_code if state in ENDED else None,
            signal if state in ENDED else None,
            _text(entry.get("user_name"), 64),
            _ended_at(state, _json_number(entry.get("end_time"))),
        )
        parts = (str(int(array)) if array else "", str(int(task)) if task is not None else "")
        for key in _keys(job_id, *parts, state):
            jobs[key] = job
    return jobs


def parse_sacct(text: str) -> dict[str, SlurmJob]:
    """Jobs from ``sacct -P -n -X -o JobID,JobIDRaw,State,ExitCode,NodeList,User,End,Reason``."""
    jobs: dict[str, SlurmJob] = {}
    for line in text.splitlines():
        parts = line.split("|")
        if len(parts) < 8:
            continue
        job_id, raw_id, state_text, exit_text, nodes, user, end = parts[:7]
        reason = "|".join(parts[7:])
        state = _state(state_text)
        if state is None:
            continue
        code, _, sig = exit_text.partition(":")
        signal = int(sig) if sig.isdigit() and int(sig) else None
        exit_code = int(code) if code.isdigit() and signal is None else None
        job = SlurmJob(
            raw_id.strip() or job_id.strip(),
            state,
            _text(reason),
            _text(nodes, 400),
            exit_code if state in ENDED else None,
            signal if state in ENDED else None,
            _text(user, 64),
            _ended_at(state, _local_time(end)),
            "sacct",
        )
        for key in {job_id.strip(), raw_id.strip()} - {""}:
            jobs[key] = job
    return jobs


# Running the commands ------------------------------------------------------------------

Runner = Callable[[Sequence[str]], tuple[int, str, str]]
"""Runs one command: ``(exit status, stdout, stderr)``; 127 when it cannot be started."""


def run_command(argv: Sequence[str]) -> tuple[int, str, str]:
    """The default :data:`Runner`: a subprocess with :data:`COMMAND_TIMEOUT`."""
    try:
        done = subprocess.run(
            list(argv),
            capture_output=True,
            timeout=COMMAND_TIMEOUT,
            check=False,
            stdin=subprocess.DEVNULL,
        )
    except (OSError, subprocess.TimeoutExpired) as error:
        return 127, "", str(error)
    return (
        done.returncode,
        done.stdout.decode("utf-8", "replace"),
        done.stderr.decode("utf-8", "replace"),
    )


def _version(text: str) -> tuple[int, int] | None:
    found = re.search(r"(\d+)\.(\d+)", text)
    return (int(found[1]), int(found[2])) if found else None


@dataclass(frozen=True, slots=True)
class Answer:
    """What one question to Slurm gave: the jobs it knows, or why it could not say."""

    jobs: Mapping[str, SlurmJob]
    problem: str | None = None


class SlurmClient:
    """Asks Slurm's commands about jobs. Each method runs exactly one command.

    Args:
        runner: runs a command (tests wrap the default to count calls).
        use_json: ``squeue --json`` (True), ``squeue -O`` (False), or by version (None:
            :data:`JSON_SINCE`, learnt from one ``squeue --version`` the first time).
    """

    def __init__(self, runner: Runner | None = None, use_json: bool | None = None) -> None:
        self.runner = runner or run_command
        self.use_json = use_json

    @staticmethod
    def available(command: str = "squeue") -> bool:
        """True when ``command`` is on PATH."""
        return shutil.which(command) is not None

    def _json(self) -> bool:
        if self.use_json is None:
            code, out, _ = self.runner(["squeue", "--version"])
            found = _version(out) if code == 0 else None
            self.use_json = found is not None and found >= JSON_SINCE
        return self.use_json

    def squeue(self, ids: Iterable[str]) -> Answer:
        """The jobs among ``ids`` that the controller still holds (any state)."""
        wanted = sorted(set(ids))
        if not wanted:
            return Answer({})
        listed = ",".join(wanted)
        if self._json():
            code, out, err = self.runner(["squeue", "--json", "--states=all", f"--jobs={listed}"])
        else:
            fields = ",".join(f"{name}:{_DELIM}" for name in _FIELDS)
            code, out, err = self.runner(
                [
                    "squeue",
                    "--noheader",
                    "--array",
                    "--states=all",
                    f"--jobs={listed}",
                    f"--Format={fields}",
                ]
            )
        if code != 0:
            if "Invalid job id" in err:
                return Answer({})  # none of them is held any more
            return Answer({}, _problem("squeue", code, err))
        try:
            jobs = parse_squeue_json(out) if self.use_json else parse_squeue_fields(out)
        except ValueError as error:
            return Answer({}, _problem("squeue", code, str(error)))
        return _asked(jobs, wanted)

    def sacct(self, ids: Iterable[str]) -> Answer:
        """The jobs among ``ids`` that accounting knows (it keeps them after squeue forgets)."""
        wanted = sorted(set(ids))
        if not wanted:
            return Answer({})
        code, out, err = self.runner(
            [
                "sacct",
                "--parsable2",
                "--noheader",
                "--allocations",
                f"--jobs={','.join(wanted)}",
                "--format=JobID,JobIDRaw,State,ExitCode,NodeList,User,End,Reason",
            ]
        )
        if code != 0:
            return Answer({}, _problem("sacct", code, err))
        return _asked(parse_sacct(out), wanted)

    def owner(self, job_id: str) -> str | Answer:
        """The user who owns ``job_id``, or the Answer saying why it is not known."""
        answer = self.squeue([job_id])
        job = answer.jobs.get(job_id)
        if job is not None and job.user:
            return job.user
        if answer.problem is None:
            answer = Answer({}, f"Slurm does not know job {job_id} (it ended long ago?)")
        return answer


def _asked(jobs: Mapping[str, SlurmJob], wanted: Iterable[str]) -> Answer:
    """The jobs asked about, each under the id it was asked by (``12_3``, not ``12``)."""
    return Answer({key: replace(jobs[key], job_id=key) for key in wanted if key in jobs})


def _problem(command: str, code: int, err: str) -> str:
    return sanitize(f"{command} exit {code}: {err.strip() or 'no output'}", 300)


def accounting_off(problem: str) -> bool:
    """True when sacct's complaint means there is no accounting database to ask."""
    lowered = problem.lower()
    return "accounting storage is disabled" in lowered or "slurmdbd" in lowered


# The per-refresh tracker ---------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Snapshot:
    """One refresh: each run's job as Slurm sees it, by run key.

    Attributes:
        jobs: run key -> its job as Slurm described it (state :data:`UNKNOWN` when it did
            not), for every run whose run.json names a job.
        ids: run key -> the job id its run.json names.
        commands: how many Slurm commands this refresh ran.
        problem: why Slurm could not be asked, if it could not.
    """

    jobs: Mapping[str, SlurmJob]
    ids: Mapping[str, str]
    commands: int = 0
    problem: str | None = None


class SlurmTracker:
    """Keeps the runs' jobs and asks Slurm about them once per refresh (thread-safe).

    Args:
        client: the command runner (default: the real commands).
        clock: monotonic seconds, for the accounting retry.
    """

    def __init__(
        self, client: SlurmClient | None = None, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.client = client or SlurmClient()
        self.clock = clock
        self._lock = threading.Lock()
        self._stamps: dict[Path, tuple[int, int, int] | None] = {}
        self._ids: dict[Path, str | None] = {}
        self._runs: dict[str, tuple[Sequence[Path], str | None]] = {}  # key -> (files, job)
        self._seen: tuple[Mapping[str, Sequence[Path]] | None, dict[str, str]] = (None, {})
        self._final: dict[str, SlurmJob] = {}
        self._accounting_off_until = -1.0

    def job_ids(
        self, files: Mapping[str, Sequence[Path]], touched: Collection[str] | None = None
    ) -> dict[str, str]:
        """Run key -> the job its ``run.json`` names; each file re-read only when it changed,
        and stat'ed only when its run is ``touched`` (``None``: every run)."""
        if files is self._seen[0] and touched is not None and not touched:
            return dict(self._seen[1])  # the same files and nothing changed
        ids: dict[str, str] = {}
        runs = self._runs
        for key, paths in files.items():
            known = runs.get(key)
            if known is None or known[0] is not paths or touched is None or key in touched:
                jobs = [self._job_in(p) for p in paths if p.name == RUN_JSON]
                known = runs[key] = (paths, next((j for j in jobs if j is not None), None))
            if known[1] is not None:
                ids[key] = known[1]
        if len(runs) != len(files):
            for gone in [k for k in runs if k not in files]:
                del runs[gone]
            live = {p for paths, _ in runs.values() for p in paths}
            for path in [p for p in self._stamps if p not in live]:
                del self._stamps[path]
                self._ids.pop(path, None)
        self._seen = (files, ids)
        return dict(ids)

    def _job_in(self, path: Path) -> str | None:
        try:
            info = os.stat(path)
            stamp: tuple[int, int, int] | None = (info.st_ino, info.st_size, info.st_mtime_ns)
        except OSError:
            stamp = None
        if path in self._stamps and self._stamps[path] == stamp:
            return self._ids.get(path)
        self._stamps[path] = stamp
        job = job_of(read_run_json(path.parent).get("slurm_job_id")) if stamp else None
        self._ids[path] = job
        return job

    def refresh(
        self, files: Mapping[str, Sequence[Path]], touched: Collection[str] | None = None
    ) -> Snapshot:
        """Ask Slurm about every run's job: one squeue, and one sacct when it is needed.

        ``touched``: the runs whose files may have changed since the last refresh; the
        others keep the job their ``run.json`` named then (``None``: check every file).
        """
        with self._lock:
            return self._refresh(files, touched)

    def _refresh(
        self, files: Mapping[str, Sequence[Path]], touched: Collection[str] | None
    ) -> Snapshot:
        ids = self.job_ids(files, touched)
        if not ids:
            return Snapshot({}, {})
        known: dict[str, SlurmJob] = {j: self._final[j] for j in ids.values() if j in self._final}
        ask = sorted(set(ids.values()) - set(known))
        commands = 0
        accounted = False
        problems: list[str] = []
        if ask and not self.client.available("squeue"):
            problems.append("squeue is not on PATH: job states come from the run files only")
            ask = []
        if ask:
            commands += 1
            answer = self.client.squeue(ask)
            known.update(answer.jobs)
            if answer.problem:
                problems.append(answer.problem)
            missing = [j for j in ask if j not in answer.jobs]
            if missing and answer.problem is None and self._ask_accounting():
                commands += 1
                accounted = True
                counted = self.client.sacct(missing)
                known.update(counted.jobs)
                if counted.problem and accounting_off(counted.problem):
                    self._accounting_off_until = self.clock() + ACCOUNTING_RETRY
                elif counted.problem:
                    problems.append(counted.problem)
        for job in known.values():
            if job.final:
                self._final[job.job_id] = job
        problem = "; ".join(problems) or None
        # A job Slurm did not describe still gets an entry: its reason says why.
        untold = problem or (
            "neither squeue nor sacct knows this job"
            if accounted
            else "squeue no longer holds this job and there is no accounting to ask"
        )
        jobs = {key: known.get(job) or SlurmJob(job, UNKNOWN, untold) for key, job in ids.items()}
        return Snapshot(jobs, ids, commands, problem)

    def _ask_accounting(self) -> bool:
        if self.clock() < self._accounting_off_until:
            return False
        return self.client.available("sacct")


# Submission ----------------------------------------------------------------------------


class SubmitError(Exception):
    """sbatch refused the job or could not be run; the message says why."""


def batch_script(run_dir: Path, command: Sequence[str], python: str | None = None) -> str:
    """The batch script: ``tracktui run --run-dir DIR -- CMD`` with this interpreter.

    The interpreter's path must be valid on the nodes (a virtual environment on the shared
    filesystem, or the same installation everywhere).
    """
    interpreter = python or sys.executable
    argv = [interpreter, "-m", "tui", "run", "--run-dir", str(run_dir), "--", *command]
    return (
        "#!/bin/sh\n"
        "# Written by tracktui run --sbatch: the command runs as the tracked run below,\n"
        "# so its run.json, metrics.jsonl and output.log appear as for a local run.\n"
        f"exec {shlex.join(argv)}\n"
    )


def submit(
    run_dir: Path,
    command: Sequence[str],
    options: Sequence[str],
    meta: Mapping[str, Any],
    runner: Runner | None = None,
) -> str:
    """Submit ``command`` as a batch job that runs as the run in ``run_dir``; return the id.

    ``run.json`` is written first (status ``queued``, no pid, no host: nothing runs yet),
    then the job is submitted held, its id recorded, and only then released, so the node
    never writes run.json before the id is in it. The batch script is kept in the run
    directory; sbatch's own output goes to ``slurm-<id>.out`` there unless ``options`` say
    otherwise, and the job is named after the run unless they name it.

    Raises:
        SubmitError: sbatch failed (the run is then recorded as failed, exit code 1).
    """
    run = runner or run_command
    write_json_atomic(run_dir / RUN_JSON, {**meta, "status": "queued"})
    script = run_dir / "sbatch.sh"
    script.write_text(batch_script(run_dir, command), encoding="utf-8")
    script.chmod(0o755)
    given = {opt.split("=", 1)[0] for opt in options}
    argv = ["sbatch", "--parsable", "--hold"]
    if not given & {"-o", "--output"}:
        argv.append(f"--output={run_dir / 'slurm-%j.out'}")
    if not given & {"-J", "--job-name"}:
        argv.append(f"--job-name={meta.get('name') or run_dir.name}")
    argv += [*options, str(script)]
    code, out, err = run(argv)
    job = out.strip().split(";", 1)[0]
    if code != 0 or not JOB_ID.fullmatch(job):
        problem = _problem("sbatch", code, err or out)
        update_run_json(run_dir, {"status": "failed", "exit_code": 1, "submit_error": problem})
        raise SubmitError(problem)
    update_run_json(run_dir, {"slurm_job_id": job})
    code, _, err = run(["scontrol", "release", job])
    if code != 0:
        run(["scancel", job])
        problem = _problem("scontrol release", code, err)
        update_run_json(run_dir, {"status": "failed", "exit_code": 1, "submit_error": problem})
        raise SubmitError(problem)
    return job
