"""The ``tracktui`` subcommands, one module each, behind one table.

A subcommand module provides ``add_arguments(parser)``, which declares its options, and
``main(args) -> int``, which runs it and returns the exit status. Modules are imported
when their command runs, so ``tracktui run`` pays only for what launching needs.
"""

from __future__ import annotations

import argparse
import importlib
from typing import TYPE_CHECKING, NoReturn, Protocol, cast

from tui.core.sanitize import escape_path

COMMANDS: dict[str, str] = {
    "status": "tui.commands.status",
    "run": "tui.commands.run",
    "kill": "tui.commands.kill",
    "watch": "tui.commands.watch",
    "demo": "tui.commands.demo",
}
"""Subcommand name -> the module that implements it."""


class Command(Protocol):
    """What a subcommand module provides."""

    def add_arguments(self, parser: argparse.ArgumentParser) -> None:
        """Declare the subcommand's options on ``parser``."""

    def main(self, args: argparse.Namespace) -> int:
        """Run the subcommand with parsed ``args``; return the exit status."""


if TYPE_CHECKING:  # mypy checks each module against the protocol; at run time they load lazily
    from tui.commands import demo, kill, run, status, watch

    _CHECKED: tuple[Command, ...] = (demo, kill, run, status, watch)


def load(name: str) -> Command:
    """The module of subcommand ``name`` (one of :data:`COMMANDS`), imported now."""
    return cast("Command", importlib.import_module(COMMANDS[name]))


class Parser(argparse.ArgumentParser):
    """An argument parser whose errors spell the arguments they quote safely: a shell glob
    puts directory names on the command line, and a name may hold escape sequences."""

    def error(self, message: str) -> NoReturn:
        super().error(escape_path(message))


def parser(name: str) -> argparse.ArgumentParser:
    """The argument parser of subcommand ``name``."""
    result = Parser(prog=f"tracktui {name}")
    load(name).add_arguments(result)
    return result
