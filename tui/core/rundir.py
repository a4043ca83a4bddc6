"""The native run directory (DESIGN.md §3) as ``tracktui run`` and the client write it.

Both writers share these helpers: the file names, a fresh directory per run, ``run.json``
written atomically (a reader sees the old file or the new one, never half of one) and the
facts a new run starts with (who, where, which commit, which process).
"""

from __future__ import annotations

import json
import os
import pwd
import re
import secrets
import socket
import subprocess
import time
import uuid
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from tui.core.timefmt import utc_iso

DEFAULT_ROOT = Path("runs")
"""Where runs go when no ROOT is given."""

RUN_JSON = "run.json"
METRICS = "metrics.jsonl"
OUTPUT = "output.log"
RUN_DIR_ENV = "TRACKTUI_RUN_DIR"
"""Environment variable naming the run directory a child process logs into."""

_UNSAFE_NAME = re.compile(r"[^A-Za-z0-9._+=@,-]+")


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
    slurm_job = slurm_job_here()
    if slurm_job:
        meta["slurm_job_id"] = slurm_job
    return meta


def slurm_job_here() -> str | None:
    """The Slurm job (or ``job.step`` inside an srun step) this process runs in, if any.

    Inside an srun step, cancelling the step spares the rest of the allocation.
    """
    slurm_job = os.environ.get("SLURM_JOB_ID")
    if not slurm_job:
        return None
    step = os.environ.get("SLURM_STEP_ID", "")
    return f"{slurm_job}.{step}" if step.isdigit() else slurm_job
