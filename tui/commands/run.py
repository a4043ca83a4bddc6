"""``tracktui run -- CMD ...``: start a command as a tracked run.

The options become the new run's ``run.json`` (name, hyperparameters, labels); the run
directory is made under ROOT and :func:`tui.core.launch.supervise` runs the command.

``--sbatch "OPTIONS"`` submits it to Slurm instead (:func:`tui.core.slurm.submit`): the run
directory and its run.json (status ``queued``, the job id) exist from submission on, and the
batch job runs ``tracktui run --run-dir DIR -- CMD`` on its node, which fills the same
directory exactly as a local run would.
"""

from __future__ import annotations

import argparse
import json
import shlex
import shutil
import socket
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from tui.core.gpu.sampler import SYSTEM, SYSTEM_INTERVAL
from tui.core.launch import supervise
from tui.core.rundir import (
    DEFAULT_ROOT,
    RUN_JSON,
    base_meta,
    current_user,
    default_name,
    make_run_dir,
    read_run_json,
    slurm_job_here,
    update_run_json,
    write_json_atomic,
)
from tui.core.slurm import SubmitError, submit
from tui.core.timefmt import utc_iso


def parse_value(text: str) -> Any:
    """``k=v`` values: ``true``/``false`` become booleans, then int, then finite float, else str."""
    lowered = text.strip().lower()
    if lowered in ("true", "false"):
        return lowered == "true"
    try:
        return int(text)
    except ValueError:
        pass
    try:
        number = float(text)
    except ValueError:
        return text
    return number if number - number == 0 else text  # nan/inf stay text


def parse_pairs(pairs: Sequence[str] | None, what: str) -> dict[str, Any]:
    """``["lr=0.1", "opt=adam"]`` -> ``{"lr": 0.1, "opt": "adam"}``.

    Raises:
        ValueError: a pair has no ``=`` or an empty key.
    """
    result: dict[str, Any] = {}
    for pair in pairs or ():
        key, sep, value = pair.partition("=")
        if not sep or not key.strip():
            raise ValueError(f"{what} {pair!r} is not key=value")
        result[key.strip()] = parse_value(value)
    return result


def load_config_file(path: Path) -> dict[str, Any]:
    """A JSON, YAML or TOML mapping of hyperparameters, chosen by the file's extension.

    Raises:
        ValueError: unknown extension, unreadable file, or not a mapping.
    """
    suffix = path.suffix.lower()
    if suffix not in (".json", ".yaml", ".yml", ".toml"):
        raise ValueError(f"config file {path}: use .json, .yaml, .yml or .toml")
    try:
        raw = path.read_bytes()
        if suffix == ".json":
            data = json.loads(raw)
        elif suffix == ".toml":
            if sys.version_info >= (3, 11):
                import tomllib
            else:  # pragma: no cover - exercised on 3.10 only
                import tomli as tomllib
            data = tomllib.loads(raw.decode("utf-8"))
        else:
            import yaml

            data = yaml.safe_load(raw)
    except Exception as error:  # OSError and each format's own parse errors
        raise ValueError(f"config file {path}: {error}") from error
    if not isinstance(data, dict):
        raise ValueError(f"config file {path} must hold a mapping, not {type(data).__name__}")
    return data


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Add the ``tracktui run`` options and the command to ``parser``."""
    parser.add_argument("--root", type=Path, default=DEFAULT_ROOT, help="runs directory")
    parser.add_argument("--name", help="run name (the directory under ROOT)")
    parser.add_argument(
        "--config",
        action="append",
        metavar="K=V",
        help="hyperparameter recorded in run.json (repeatable)",
    )
    parser.add_argument(
        "--config-file",
        type=Path,
        metavar="F",
        help="hyperparameters from a .json, .yaml or .toml file (--config wins)",
    )
    parser.add_argument(
        "--tag", action="append", metavar="K=V", help="label recorded in run.json (repeatable)"
    )
    parser.add_argument(
        "--sbatch",
        metavar="OPTIONS",
        help="submit as a Slurm batch job with these sbatch options, one string "
        '(e.g. "-p gpu --gres=gpu:1 --time=4:00:00"); returns once it is queued',
    )
    parser.add_argument(
        "--run-dir",
        type=Path,
        metavar="DIR",
        help="run in this existing run directory (what a --sbatch job does on its node)",
    )
    parser.add_argument(
        "--system-interval",
        type=float,
        default=SYSTEM_INTERVAL,
        metavar="S",
        help=f"seconds between samples of CPU, memory, IO and GPU in {SYSTEM} (0: none;"
        f" default {SYSTEM_INTERVAL:g})",
    )
    parser.add_argument("command", nargs=argparse.REMAINDER, help="the command to run, after --")


def main(args: argparse.Namespace) -> int:
    """Run ``args.command`` as a tracked run; return its exit code (128+N after signal N)."""
    command = list(args.command or [])
    if command and command[0] == "--":
        command = command[1:]
    if not command:
        print(
            "tracktui run: no command given (tracktui run [options] -- CMD ARGS...)",
            file=sys.stderr,
        )
        return 2
    if args.run_dir is not None:
        return _run_in(args.run_dir, command)
    try:
        options = shlex.split(args.sbatch) if args.sbatch is not None else None
        if options is not None and shutil.which("sbatch") is None:
            raise ValueError("--sbatch: sbatch is not on PATH (run this on a Slurm login node)")
        config = load_config_file(args.config_file) if args.config_file else {}
        config.update(parse_pairs(args.config, "--config"))
        tags = parse_pairs(args.tag, "--tag")
        run_dir = make_run_dir(Path(args.root), args.name, default_name(command)).resolve()
    except (ValueError, OSError) as error:
        print(f"tracktui run: {error}", file=sys.stderr)
        return 2
    meta = base_meta(run_dir, args.name, command, config, tags)
    if options is not None:
        return _submit(run_dir, command, options, meta)
    write_json_atomic(run_dir / RUN_JSON, meta)
    return supervise(run_dir, command, system_interval=max(0.0, args.system_interval))


def _submit(run_dir: Path, command: list[str], options: list[str], meta: dict[str, Any]) -> int:
    """Queue the run as a batch job; its run.json says ``queued`` and names the job."""
    # Nothing runs yet: no host, and the submitting shell's own job is not this run's.
    meta.pop("slurm_job_id", None)
    meta["submit_host"] = meta.pop("host")
    try:
        job = submit(run_dir, command, options, meta)
    except (SubmitError, OSError) as error:
        print(f"tracktui run: {error}", file=sys.stderr)
        return 1
    print(f"Submitted batch job {job}: run {run_dir}")
    return 0


def _run_in(run_dir: Path, command: list[str]) -> int:
    """Run as the run ``--sbatch`` prepared in ``run_dir``, on the node the job landed on."""
    run_dir = run_dir.resolve()
    if not read_run_json(run_dir):
        print(f"tracktui run: --run-dir {run_dir}: no run.json there", file=sys.stderr)
        return 2
    started: dict[str, Any] = {
        "status": "running",
        "host": socket.gethostname(),
        "user": current_user(),
        "started_at": utc_iso(),
    }
    job = slurm_job_here()
    if job:
        started["slurm_job_id"] = job
    update_run_json(run_dir, started)
    return supervise(run_dir, command, echo=False)
