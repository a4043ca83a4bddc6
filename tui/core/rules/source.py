"""The rules file as a long-running program sees it: read safely, trusted only when it is
yours, and reloaded when it changes.

A rules file can kill processes (``action = "kill"`` with ``--auto-kill``), so whoever can
write it can aim a kill at you (DESIGN.md §5). Its kill actions are obeyed only when the file
is owned by the user running tracktui and no one else (group or others) can write it;
otherwise they are downgraded to flags and :attr:`RulesFile.downgraded` says why. Ownership
is judged on the open descriptor the rules are read from, so the file cannot be swapped
between the check and the read.

A broken edit never removes working rules: the previous engine stays in force and
:attr:`RulesFile.problem` names the file and the line.
"""

from __future__ import annotations

import dataclasses
import os
import stat
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from tui.core.rules.engine import RuleEngine
from tui.core.rules.spec import MAX_RULES_BYTES, Rule, RulesError, decode_rules
from tui.core.rundir import user_name
from tui.core.sanitize import sanitize

_Signature = tuple[int, int, int, int, int, int, int]
"""Device, inode, size, mtime and ctime (ns), mode and owner: any edit, chmod or chown
changes one of them."""


@dataclass(frozen=True, slots=True)
class RulesLoad:
    """What one reading of the rules file gave.

    Attributes:
        path: the rules file.
        engine: a fresh engine with the file's rules (kill actions downgraded when the file
            is not trusted); ``None`` when the reading failed and the previous rules stay.
        problem: why the reading failed, naming the file and, where known, the line.
        line: the 1-based line of the mistake, if known.
        downgraded: why the file's kill actions only flag, if they were downgraded.
        demoted: the names of the rules whose kill action was downgraded to a flag.
    """

    path: Path
    engine: RuleEngine | None
    problem: str | None = None
    line: int | None = None
    downgraded: str | None = None
    demoted: tuple[str, ...] = ()

    @property
    def ok(self) -> bool:
        """True when the file was read and its rules are now in force."""
        return self.engine is not None


def distrust(path: Path, info: os.stat_result, uid: int) -> str | None:
    """Why a rules file with ``info`` (its stat) may not order kills for ``uid``, or ``None``.

    Trusted: owned by ``uid`` and writable by neither its group nor others.
    """
    reasons = []
    if info.st_uid != uid:
        reasons.append(
            f"it is owned by {user_name(info.st_uid)} (uid {info.st_uid}), "
            f"not by you ({user_name(uid)}, uid {uid})"
        )
    writers = [
        who
        for who, bit in (("its group", stat.S_IWGRP), ("others", stat.S_IWOTH))
        if info.st_mode & bit
    ]
    if writers:
        mode = stat.S_IMODE(info.st_mode)
        reasons.append(f"{' and '.join(writers)} can write it (mode {mode:04o})")
    if not reasons:
        return None
    return f"{sanitize(str(path), 300)}: {'; '.join(reasons)}"


class RulesFile:
    """One rules file, the :class:`RuleEngine` built from it, and its reloads.

    Args:
        path: the rules file (``--rules FILE`` or ``ROOT/tracktui.toml``).
        required: a missing file is a problem (``--rules``); when ``False`` (the default
            file under ROOT) a missing file just means no rules until it appears.
        uid: whose kill actions the file may order (default: our real uid).
        clock: the wall clock the engines use for ``stalled``.

    Attributes:
        engine: the rules in force (``None`` before the first successful reading).
        problem: why the latest reading failed (the previous rules stay), or ``None``.
        downgraded: why the rules in force have their kill actions turned into flags.
        demoted: the names of those rules.
    """

    def __init__(
        self,
        path: Path,
        *,
        required: bool = True,
        uid: int | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.path = path
        self.required = required
        self.uid = os.getuid() if uid is None else uid
        self.clock = clock
        self.engine: RuleEngine | None = None
        self.problem: str | None = None
        self.downgraded: str | None = None
        self.demoted: tuple[str, ...] = ()
        self._seen: _Signature | None = None

    def load(self) -> RulesLoad:
        """Read the file now. On success its rules replace those in force; on failure the
        previous ones stay and :attr:`problem` says why."""
        self._seen = self._signature()
        result = self._read()
        if result.engine is not None:
            self.engine, self.downgraded, self.demoted = (
                result.engine,
                result.downgraded,
                result.demoted,
            )
        self.problem = result.problem
        return result

    def reload_if_changed(self) -> RulesLoad | None:
        """:meth:`load` when the file changed since it was last read (one ``stat``);
        ``None`` when it did not."""
        if self._signature() == self._seen:
            return None
        return self.load()

    def _signature(self) -> _Signature | None:
        try:
            info = os.stat(self.path)
        except OSError:
            return None
        return (
            info.st_dev,
            info.st_ino,
            info.st_size,
            info.st_mtime_ns,
            info.st_ctime_ns,
            info.st_mode,
            info.st_uid,
        )

    def _read(self) -> RulesLoad:
        source = str(self.path)
        try:
            # Non-blocking, so that a FIFO planted under the name cannot hang us.
            fd = os.open(self.path, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
        except FileNotFoundError:
            if not self.required and self.engine is None:
                return RulesLoad(self.path, RuleEngine([], self.clock))
            return self._failed(RulesError(source, None, "the file is gone"))
        except OSError as error:
            return self._failed(RulesError(source, None, f"cannot read: {error.strerror}"))
        try:
            info = os.fstat(fd)
            if not stat.S_ISREG(info.st_mode):
                return self._failed(RulesError(source, None, "not a regular file"))
            with os.fdopen(fd, "rb", closefd=False) as handle:
                data = handle.read(MAX_RULES_BYTES + 1)
            rules = decode_rules(data, source)
        except RulesError as error:
            return self._failed(error)
        except OSError as error:
            return self._failed(RulesError(source, None, f"cannot read: {error.strerror}"))
        finally:
            os.close(fd)
        why = distrust(self.path, info, self.uid)
        kills = [rule.name for rule in rules if rule.action == "kill"]
        downgraded = None
        if why is None or not kills:
            kills = []
        else:
            rules = [_as_flag(rule) for rule in rules]
            downgraded = (
                f"{why}: its kill rules ({', '.join(kills)}) only flag; kill actions are "
                "obeyed only from a file you own that no one else can write"
            )
        return RulesLoad(
            self.path, RuleEngine(rules, self.clock), downgraded=downgraded, demoted=tuple(kills)
        )

    def _failed(self, error: RulesError) -> RulesLoad:
        kept = "; the previous rules stay" if self.engine is not None else ""
        return RulesLoad(self.path, None, f"{error}{kept}", error.line)


def _as_flag(rule: Rule) -> Rule:
    return dataclasses.replace(rule, action="flag") if rule.action == "kill" else rule
