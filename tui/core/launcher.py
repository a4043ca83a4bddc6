"""``tracktui run -- CMD ...``: start a command as a tracked run (DESIGN.md §3).

The launcher creates the run directory, records ``run.json``, starts the command in its own
session (so a kill can take its whole tree and Ctrl-C reaches it only through us), copies
its stdout and stderr byte for byte to ``output.log`` and to our own terminal, and turns
every JSON-object line on stdout into a record of ``metrics.jsonl`` stamped with ``_time``
(Valohai's convention: an unmodified Valohai-style script works as is). When the command
ends, ``run.json`` gets ``ended_at``, the exit code or signal, and the final status.

The run-directory helpers here are shared with the logging client (``tui.client``).
"""

from __future__ import annotations

import argparse
import json
import os
import pwd
import re
import secrets
import select
import signal
import socket
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable, Mapping, Sequence
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

DEFAULT_ROOT = Path("runs")
"""Where runs go when no ROOT is given."""

RUN_JSON = "run.json"
METRICS = "metrics.jsonl"
OUTPUT = "output.log"
RUN_DIR_ENV = "TRACKTUI_RUN_DIR"
"""Environment variable naming the run directory a child process logs into."""

_CHUNK = 65536
_MAX_RECORD = 16 * 1024 * 1024  # a longer stdout "line" is kept in output.log only
_PARTIAL_LINE_WAIT = 0.2  # seconds a partial line waits for its end before it is logged
_DRAIN_WAIT = 3.0  # seconds to wait for the pipes to close after the command exits
_FORWARDED = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)
_UNSAFE_NAME = re.compile(r"[^A-Za-z0-9._+=@,-]+")


def utc_iso(seconds: float | None = None) -> str:
    """ISO-8601 UTC with microseconds and a ``Z`` (Valohai's ``_time``); now by default."""
    moment = (
        datetime.now(timezone.utc)
        if seconds is None
        else datetime.fromtimestamp(seconds, timezone.utc)
    )
    return moment.strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def user_name(uid: int) -> str:
    """The login name of ``uid``, or the uid as text when it has none."""
    try:
        return pwd.getpwuid(uid).pw_name
    except KeyError:
        return str(uid)


def current_user() -> str:
    """The name of the user this process runs as (by real uid)."""
    return user_name(os.getuid())


def write_json_atomic(path: Path, data: Mapping[str, Any]) -> None:
    """Write ``data`` as JSON to ``path`` via a temp file in the same directory + rename.

    Readers see the old file or the new one, never half of one. The temp file is created
    with ``os.open`` (mode 0o644 less the umask) so teammates can read the result.
    """
    text = json.dumps(data, indent=2, ensure_ascii=False, default=str) + "\n"
    temp = path.with_name(f".{path.name}.{secrets.token_hex(6)}.tmp")
    fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temp, path)
    except BaseException:
        temp.unlink(missing_ok=True)
        raise


def read_run_json(run_dir: Path) -> dict[str, Any]:
    """The run's metadata; an empty dict when it is missing or unreadable."""
    try:
        data = json.loads((run_dir / RUN_JSON).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def update_run_json(run_dir: Path, fields: Mapping[str, Any]) -> dict[str, Any]:
    """Read, update and atomically rewrite run.json; fields set to ``None`` are removed.

    Returns the metadata as written.
    """
    meta = read_run_json(run_dir)
    for key, value in fields.items():
        if value is None:
            meta.pop(key, None)
        else:
            meta[key] = value
    write_json_atomic(run_dir / RUN_JSON, meta)
    return meta


def git_info(cwd: Path) -> dict[str, Any] | None:
    """``{"commit", "dirty"}`` of the repository holding ``cwd``; ``None`` outside one.

    Dirty means tracked files differ from HEAD (untracked files do not count). Optional
    locks are off so this never contends with the user's own git commands.
    """
    env = {**os.environ, "GIT_OPTIONAL_LOCKS": "0"}

    def git(*args: str) -> str | None:
        try:
            done = subprocess.run(
                ["git", *args],
                cwd=cwd,
                env=env,
                capture_output=True,
                timeout=5,
                check=False,
            )
        except (OSError, subprocess.TimeoutExpired):
            return None
        return done.stdout.decode("utf-8", "replace").strip() if done.returncode == 0 else None

    commit = git("rev-parse", "HEAD")
    if not commit:
        return None
    status = git("status", "--porcelain", "--untracked-files=no")
    return {"commit": commit, "dirty": bool(status) if status is not None else None}


def process_identity(pid: int) -> dict[str, Any]:
    """``pid``, ``pid_create_time`` (psutil) and ``pgid`` of a process, for run.json."""
    import psutil  # imported here so importing the client stays cheap

    fields: dict[str, Any] = {"pid": pid}
    try:
        fields["pid_create_time"] = psutil.Process(pid).create_time()
        fields["pgid"] = os.getpgid(pid)
    except (psutil.NoSuchProcess, ProcessLookupError):
        pass
    return fields


def default_name(command: Sequence[str]) -> str:
    """A readable stem for a run directory: the script or module a command runs.

    ``python train.py`` gives ``train``, ``python -m pkg.mod`` gives ``pkg.mod``, anything
    else the program's basename.
    """
    if not command:
        return "run"
    program = Path(command[0]).name
    if program.startswith("python"):
        args = list(command[1:])
        while args:
            arg = args.pop(0)
            if arg == "-m" and args:
                return args[0]
            if arg == "-c":
                return program
            if not arg.startswith("-"):
                return Path(arg).stem
    return program or "run"


def _safe_component(name: str) -> str:
    cleaned = _UNSAFE_NAME.sub("_", name).strip("._") or "run"
    return cleaned[:120]


def make_run_dir(root: Path, name: str | None, stem: str) -> Path:
    """Create a fresh run directory under ``root`` and return it.

    With a ``name`` the directory is named after it (``a/b`` nests; ``..`` and absolute
    paths are refused); without, ``<stem>-<YYYYmmdd-HHMMSS>-<4 hex>``. An existing
    directory is never reused: a ``-<4 hex>`` suffix is added instead.

    Raises:
        ValueError: the name would leave ``root``.
    """
    if name is not None:
        parts = [p for p in Path(name).parts if p not in ("", ".")]
        if not parts or Path(name).is_absolute() or ".." in parts:
            raise ValueError(f"run name {name!r} must be a relative path inside ROOT")
        base = root.joinpath(*(_safe_component(p) for p in parts))
        candidates = [base]
    else:
        stamp = time.strftime("%Y%m%d-%H%M%S")
        base = root / f"{_safe_component(stem)}-{stamp}"
        candidates = []
    for _ in range(100):
        candidate = candidates.pop() if candidates else Path(f"{base}-{secrets.token_hex(2)}")
        candidate.parent.mkdir(parents=True, exist_ok=True)
        try:
            candidate.mkdir()
        except FileExistsError:
            continue
        return candidate
    raise FileExistsError(f"could not create a fresh run directory next to {base}")


def base_meta(
    run_dir: Path,
    name: str | None,
    command: Sequence[str],
    config: Mapping[str, Any] | None,
    tags: Mapping[str, Any] | None,
) -> dict[str, Any]:
    """The run.json a new run starts with (status ``running``, no pid yet)."""
    cwd = Path.cwd()
    meta: dict[str, Any] = {
        "id": uuid.uuid4().hex,
        "name": name or run_dir.name,
        "created_at": utc_iso(),
        "status": "running",
        "host": socket.gethostname(),
        "user": current_user(),
        "command": list(command),
        "cwd": str(cwd),
        "config": dict(config or {}),
        "tags": dict(tags or {}),
    }
    git = git_info(cwd)
    if git is not None:
        meta["git"] = git
    slurm_job = os.environ.get("SLURM_JOB_ID")
    if slurm_job:
        # Inside an srun step, cancelling the step spares the rest of the allocation.
        step = os.environ.get("SLURM_STEP_ID", "")
        meta["slurm_job_id"] = f"{slurm_job}.{step}" if step.isdigit() else slurm_job
    return meta


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


def _write_all(fd: int, data: bytes | memoryview) -> None:
    view = memoryview(data)
    while view:
        written = os.write(fd, view)
        view = view[written:]


def json_record(line: bytes) -> bytes | None:
    """The metrics.jsonl line for one stdout line, or ``None`` when it is no JSON object.

    The child's own bytes are kept (NaN tokens, number spelling and key order survive);
    ``"_time"`` is spliced in first when the object lacks it.
    """
    text = line.strip()
    if not text.startswith(b"{") or not text.endswith(b"}"):
        return None
    try:
        value = json.loads(text)
    except (ValueError, RecursionError):
        return None
    if not isinstance(value, dict):
        return None
    if "_time" in value:
        return text + b"\n"
    stamp = b'{"_time": "' + utc_iso().encode() + b'"'
    rest = text[1:].lstrip()
    return stamp + (b"}" if rest == b"}" else b", " + rest) + b"\n"


class _Sink:
    """An fd we copy to; after a write error (disk full, terminal gone) it drops data.

    The pipes must keep draining whatever happens here, or the command would block on a
    full pipe: a logging problem must never stall the run.
    """

    def __init__(self, fd: int | None, what: str, warn: bool) -> None:
        self.fd = fd
        self.what = what
        self.warn = warn

    def write(self, data: bytes | bytearray) -> None:
        if self.fd is None:
            return
        try:
            _write_all(self.fd, data)
        except OSError as error:
            self.fd = None
            if self.warn:
                try:
                    os.write(2, f"tracktui run: {self.what}: {error}; not logging it\n".encode())
                except OSError:
                    pass


class _Pump(threading.Thread):
    """Copies one pipe to output.log and a terminal fd; on stdout, also to metrics.jsonl."""

    def __init__(
        self, source: int, log: _Sink, echo: _Sink, on_line: Callable[[bytes], None] | None
    ) -> None:
        super().__init__(daemon=True)
        self.source = source
        self.log = log
        self.echo = echo
        self.on_line = on_line

    def run(self) -> None:
        pending = bytearray()
        unlogged = bytearray()
        skipping = False
        poller = select.poll()
        poller.register(self.source, select.POLLIN)
        while True:
            # output.log gets whole lines, so stdout and stderr interleave by line there;
            # a partial line (a progress bar) is written once the stream pauses.
            if unlogged and not poller.poll(_PARTIAL_LINE_WAIT * 1000):
                self.log.write(unlogged)
                unlogged.clear()
            try:
                chunk = os.read(self.source, _CHUNK)
            except OSError:
                break
            if not chunk:
                break
            unlogged += chunk
            cut = unlogged.rfind(b"\n") + 1
            if len(unlogged) > _CHUNK:
                cut = len(unlogged)
            if cut:
                self.log.write(unlogged[:cut])
                del unlogged[:cut]
            self.echo.write(chunk)
            if self.on_line is None:
                continue
            pending += chunk
            while True:
                cut = pending.find(b"\n")
                if cut < 0:
                    break
                if not skipping:
                    self.on_line(bytes(pending[:cut]))
                skipping = False
                del pending[: cut + 1]
            if len(pending) > _MAX_RECORD:
                pending.clear()
                skipping = True
        if unlogged:
            self.log.write(unlogged)
        if pending and not skipping and self.on_line is not None:
            self.on_line(bytes(pending))
        os.close(self.source)


def _echo_fd(stream: Any, default: int) -> int | None:
    try:
        stream.flush()
        return int(stream.fileno())
    except (AttributeError, OSError, ValueError):
        return default


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
    parser.add_argument("command", nargs=argparse.REMAINDER, help="the command to run, after --")


def _status(returncode: int, forwarded: int | None) -> dict[str, Any]:
    if returncode < 0:
        number = -returncode
    elif forwarded is not None and returncode == 128 + forwarded:
        # The command caught our forwarded signal and exited the shell way (bash does).
        number = forwarded
    else:
        return {"status": "finished" if returncode == 0 else "failed", "exit_code": returncode}
    try:
        name = signal.Signals(number).name
    except ValueError:
        name = f"SIG{number}"
    return {"status": "killed", "signal": number, "signal_name": name}


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
    try:
        config = load_config_file(args.config_file) if args.config_file else {}
        config.update(parse_pairs(args.config, "--config"))
        tags = parse_pairs(args.tag, "--tag")
        run_dir = make_run_dir(Path(args.root), args.name, default_name(command)).resolve()
    except (ValueError, OSError) as error:
        print(f"tracktui run: {error}", file=sys.stderr)
        return 2
    meta = base_meta(run_dir, args.name, command, config, tags)
    write_json_atomic(run_dir / RUN_JSON, meta)
    return _supervise(run_dir, command)


def _supervise(run_dir: Path, command: list[str]) -> int:
    env = {**os.environ, RUN_DIR_ENV: str(run_dir), "PYTHONUNBUFFERED": "1"}
    log_fd = os.open(run_dir / OUTPUT, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    metrics_fd = os.open(run_dir / METRICS, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        return _run_child(run_dir, command, env, log_fd, metrics_fd)
    finally:
        os.close(log_fd)
        os.close(metrics_fd)


def _run_child(
    run_dir: Path, command: list[str], env: dict[str, str], log_fd: int, metrics_fd: int
) -> int:
    try:
        child = subprocess.Popen(
            command,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            env=env,
            start_new_session=True,
        )
    except OSError as error:
        code = 127 if isinstance(error, FileNotFoundError) else 126
        print(f"tracktui run: cannot start {command[0]!r}: {error}", file=sys.stderr)
        update_run_json(run_dir, {"status": "failed", "ended_at": utc_iso(), "exit_code": code})
        return code
    update_run_json(run_dir, process_identity(child.pid))
    assert child.stdout is not None and child.stderr is not None

    metrics = _Sink(metrics_fd, METRICS, warn=True)

    def record(line: bytes) -> None:
        data = json_record(line)
        if data is not None:
            metrics.write(data)  # one write per record: readers never see half of one

    pumps = [
        _Pump(
            os.dup(child.stdout.fileno()),
            _Sink(log_fd, OUTPUT, warn=True),
            _Sink(_echo_fd(sys.stdout, 1), "stdout", warn=False),
            record,
        ),
        _Pump(
            os.dup(child.stderr.fileno()),
            _Sink(log_fd, OUTPUT, warn=True),
            _Sink(_echo_fd(sys.stderr, 2), "stderr", warn=False),
            None,
        ),
    ]
    child.stdout.close()
    child.stderr.close()
    for pump in pumps:
        pump.start()

    forwarded: list[int] = []

    def forward(signum: int, _frame: object) -> None:
        forwarded.append(signum)
        try:
            # The group outlives a reaped leader only while its members live, so its id
            # cannot name anyone else's processes.
            os.killpg(child.pid, signum)
        except (ProcessLookupError, PermissionError):
            pass

    previous: dict[int, Any] = {}
    if threading.current_thread() is threading.main_thread():
        for signum in _FORWARDED:
            handler = signal.getsignal(signum)
            if signum == signal.SIGHUP and handler == signal.SIG_IGN:
                continue  # started under nohup: keep ignoring hangups
            previous[signum] = handler
            signal.signal(signum, forward)
    try:
        returncode = child.wait()
        deadline = time.monotonic() + _DRAIN_WAIT
        for pump in pumps:
            pump.join(max(0.0, deadline - time.monotonic()))
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)
    outcome = _status(returncode, forwarded[-1] if forwarded else None)
    update_run_json(run_dir, {"ended_at": utc_iso(), **outcome})
    if outcome["status"] == "killed":
        return 128 + int(outcome["signal"])
    return int(outcome["exit_code"])


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="tracktui run", description="Run a command as a tracked run."
    )
    add_arguments(parser)
    return parser


if __name__ == "__main__":
    sys.exit(main(_parser().parse_args()))
