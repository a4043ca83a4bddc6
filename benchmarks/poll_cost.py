"""What watching 1,000 runs on a shared filesystem costs: the stat-loop poller and the Slurm look.

On NFS, Lustre or GPFS tracktui cannot use inotify (a change made on another node raises no
event here), so it polls: every pass stats each run's files, and every few seconds the
evidence gathering reads the runs' job ids (a stat per run.json, a read when it changed)
and asks Slurm about every job in ONE squeue call. This prints, for ``--runs`` generated
runs (median of ``--repeat``):

- a poll pass: wall and CPU time, stat calls, and the interval it allows (a pass may use at
  most ``POLL_SHARE`` of a core, so a costly pass stretches the 1 s interval);
- a walk of ROOT for new runs (every ``walk_interval`` in polling mode);
- the Slurm look: job ids from run.json (stat-only once read) and the one squeue call for
  every job, when squeue answers here (the real command against the real controller);
- the evidence gathering that stats every run file, and one at rest (no run changed);
- the stat latency a network filesystem adds, as a projection: stat calls x ``--rtt-ms``
  (an NFS GETATTR that misses the attribute cache costs one round trip).

Run it with ``--root`` on the shared filesystem itself for real figures there (a fresh
subdirectory is created and removed). ``--submit-array`` submits one held job array of
``--runs`` tasks (nothing runs; cancelled at the end) so squeue describes real jobs: use it
on a test cluster such as tests/slurm/start_cluster.sh's.

    python benchmarks/poll_cost.py [--runs 1000] [--repeat 5] [--root DIR] [--rtt-ms 0.2 1]
                                   [--submit-array]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from tui.core.engine import POLL_SHARE, Engine
from tui.core.evidence import FULL_SECONDS, SCAN_SECONDS, EvidenceGatherer
from tui.core.filesystems import filesystem_type
from tui.core.openfiles import SCAN_INTERVAL
from tui.core.slurm import SlurmClient, SlurmTracker, run_command


def generate(root: Path, runs: int, with_jobs: list[str]) -> None:
    """Runs as ``tracktui run --sbatch`` leaves them: run.json naming a job, metrics, log."""
    for r in range(runs):
        run = root / f"sweep/run-{r:04d}"
        run.mkdir(parents=True)
        meta = {"name": run.name, "status": "running", "slurm_job_id": with_jobs[r]}
        (run / "run.json").write_text(json.dumps(meta))
        (run / "metrics.jsonl").write_text(
            "".join(json.dumps({"step": s, "loss": 1 / (s + 1)}) + "\n" for s in range(20))
        )
        (run / "output.log").write_text("epoch 1\n")


class StatCounter:
    """Counts os.stat calls while installed (the poller and the job-id reader use it)."""

    def __init__(self) -> None:
        self.calls = 0
        self._real: Callable[..., os.stat_result] = os.stat

    def __enter__(self) -> StatCounter:
        real = self._real

        def counted(*args: Any, **kwargs: Any) -> os.stat_result:
            self.calls += 1
            return real(*args, **kwargs)

        os.stat = counted  # type: ignore[assignment]
        return self

    def __exit__(self, *_: object) -> None:
        os.stat = self._real  # type: ignore[assignment]


def timed(repeat: int, action: Callable[[], object]) -> tuple[float, float, int]:
    """Median wall and CPU seconds of ``action`` and its stat calls (last repetition)."""
    walls, cpus = [], []
    stats = 0
    for _ in range(repeat):
        with StatCounter() as counter:
            wall, cpu = time.perf_counter(), time.thread_time()
            action()
            cpus.append(time.thread_time() - cpu)
            walls.append(time.perf_counter() - wall)
        stats = counter.calls
    return statistics.median(walls), statistics.median(cpus), stats


def job_ids(runs: int, submit: bool) -> tuple[list[str], str, str | None]:
    """One job id per run, how they were found, and the job array to cancel at the end.

    With ``submit``, one held job array of ``runs`` tasks (nothing of it runs); otherwise
    the jobs the controller holds now, reused over the runs, or made-up ids without one.
    """
    if submit:
        code, out, err = run_command(
            [
                "sbatch",
                "--parsable",
                "--hold",
                f"--array=0-{runs - 1}",
                "-o",
                "/dev/null",
                "-J",
                "tracktui-poll-cost",
                "--wrap",
                "true",
            ]
        )
        if code != 0:
            raise SystemExit(f"sbatch failed: {err.strip()}")
        array = out.strip().split(";")[0]
        return [f"{array}_{r}" for r in range(runs)], f"held job array {array}", array
    code, out, _ = run_command(["squeue", "-h", "--states=all", "--format=%A"])
    real = sorted({line.strip() for line in out.splitlines() if line.strip()}, key=int)
    if code == 0 and real:
        ids = [real[r % len(real)] for r in range(runs)]
        return ids, f"{len(real)} job ids squeue holds, reused over {runs} runs", None
    return [str(10_000_000 + r) for r in range(runs)], "made-up job ids", None


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=1000)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--root", type=Path, help="where to generate the runs (default: /tmp)")
    parser.add_argument("--rtt-ms", type=float, nargs="+", default=[0.2, 1.0])
    parser.add_argument(
        "--submit-array",
        action="store_true",
        help="submit one held job array of RUNS tasks (cancelled at the end) so squeue "
        "describes real jobs: for a test cluster such as tests/slurm/start_cluster.sh's",
    )
    args = parser.parse_args()

    base = Path(tempfile.mkdtemp(prefix="tracktui-poll-", dir=args.root))
    array = None
    try:
        ids, source, array = job_ids(args.runs, args.submit_array)
        generate(base, args.runs, ids)
        kind = filesystem_type(base) or "?"
        print(f"{args.runs} runs under {base} ({kind}); {source}")

        engine = Engine(base, watch="poll")
        engine.scan()
        files = engine.run_files()
        engine.reconcile(walk_root=False)  # first stamps
        wall, cpu, stats = timed(args.repeat, lambda: engine.reconcile(walk_root=False))
        interval = max(engine.poll_interval, cpu / POLL_SHARE)
        print(
            f"poll pass:   {wall * 1000:7.1f} ms wall {cpu * 1000:7.1f} ms CPU  {stats:5d} stats"
            f"  -> every {interval:.2f} s, {cpu / interval * 100:.2f} % of a core"
        )
        walk_wall, walk_cpu, walk_stats = timed(args.repeat, lambda: engine.reconcile())
        print(
            f"poll + walk: {walk_wall * 1000:7.1f} ms wall {walk_cpu * 1000:7.1f} ms CPU"
            f"  {walk_stats:5d} stats (the walk runs every {engine.walk_interval:g} s)"
        )

        calls: list[list[str]] = []

        def counted(argv: Any) -> tuple[int, str, str]:
            calls.append(list(argv))
            return run_command(argv)

        tracker = SlurmTracker(SlurmClient(counted))
        tracker.refresh(files)  # reads every run.json once, learns the version
        calls.clear()
        ids_wall, ids_cpu, id_stats = timed(args.repeat, lambda: tracker.job_ids(files))
        print(
            f"job ids:     {ids_wall * 1000:7.1f} ms wall {ids_cpu * 1000:7.1f} ms CPU"
            f"  {id_stats:5d} stats (run.json re-read only when it changed)"
        )
        if shutil.which("squeue"):
            tracker._final.clear()  # ask about every job, as for runs still going
            calls.clear()
            started = time.perf_counter()
            snapshot = tracker.refresh(files)
            look = time.perf_counter() - started
            states = sorted({job.state for job in snapshot.jobs.values()})
            print(
                f"Slurm look:  {look * 1000:7.1f} ms wall, {len(calls)} command(s)"
                f" ({', '.join(c[0] for c in calls) or 'none'}) about {len(set(ids))} job(s):"
                f" {', '.join(states)}{'; ' + snapshot.problem if snapshot.problem else ''}"
            )
        gatherer = EvidenceGatherer(base, slurm=SlurmTracker(SlurmClient(counted)))
        gatherer.gather(files)
        gather_wall, gather_cpu, gather_stats = timed(args.repeat, lambda: gatherer.gather(files))
        print(
            f"evidence:    {gather_wall * 1000:7.1f} ms wall {gather_cpu * 1000:7.1f} ms CPU"
            f"  {gather_stats:5d} stats (every file, open-file scan, audit log, job ids,"
            f" Slurm: the first gathering and one every {FULL_SECONDS:g} s or more)"
        )
        rest_wall, rest_cpu, rest_stats = timed(
            args.repeat, lambda: gatherer.gather(files, frozenset())
        )
        print(
            f"at rest:     {rest_wall * 1000:7.1f} ms wall {rest_cpu * 1000:7.1f} ms CPU"
            f"  {rest_stats:5d} stats (no run changed: writers found before re-checked, Slurm;"
            f" every {SCAN_INTERVAL:g} s or more, the processes every {SCAN_SECONDS:g} s)"
        )
        for rtt in args.rtt_ms:
            print(
                f"at {rtt:g} ms per uncached stat (network filesystem): poll pass"
                f" +{stats * rtt:.0f} ms wall, evidence +{gather_stats * rtt:.0f} ms wall;"
                f" CPU unchanged"
            )
    finally:
        shutil.rmtree(base, ignore_errors=True)
        if array is not None:
            run_command(["scancel", array])


if __name__ == "__main__":
    main()
