"""``tracktui run -- CMD ...``: start a command as a tracked run.

The options become the new run's ``run.json`` (name, hyperparameters, labels); the run
directory is made under ROOT and :func:`tui.core.launch.supervise` runs the command.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from tui.core.launch import supervise
from tui.core.rundir import (
    DEFAULT_ROOT,
    RUN_JSON,
    base_meta,
    default_name,
    make_run_dir,
    write_json_atomic,
)


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
    return supervise(run_dir, command)
