"""Early-stopping rules: read ``tracktui.toml`` and give every run a verdict per rule.

The rules file (DESIGN.md §7) is a list of ``[[rule]]`` tables. Each rule gives each run a
:class:`Verdict`: ``ok``, ``waiting`` (not enough data yet) or ``triggered`` (with the step
and the reason). :class:`RuleEngine` evaluates incrementally: it remembers, per run and
rule, how many points it has consumed and looks only at new ones.

Semantics, per ``when``:

* ``nonfinite``: triggered at the first NaN, +inf or -inf point of ``metric``; the step is
  that point's x value. ``waiting`` until the run has a point of the metric.
* ``above`` / ``below``: triggered at the first finite point whose value is strictly
  greater (``above``) or less (``below``) than ``value``. NaN is neither above nor below
  anything (``nonfinite`` is its own rule). Values are stored as float32, so ``value`` is
  rounded to float32 before comparing: a logged ``0.1`` is not ``above = 0.1``.
* ``no_improvement``: Keras ``EarlyStopping`` over the points of ``metric`` (each point is
  one evaluation) in arrival order, on the effective history (see resumes below). ``best``
  starts at +inf (``mode = "min"``) or -inf (``"max"``). A point improves when it is
  finite and ``value < best - min_delta`` (max: ``value > best + min_delta``); an
  improvement sets ``best`` and resets the wait counter, anything else (NaN and +-inf
  included) adds one to it. Triggered when the wait counter reaches ``patience``;
  ``waiting`` while fewer than ``patience`` points were evaluated.
* ``worse_than_median``: the median stopping rule (Golovin et al. 2017, Google Vizier).
  For a run whose latest step ``s`` is at least ``after_step``, its best finite value over
  its points with step <= ``s`` is compared with the median of the same quantity for the
  *other* runs that have reached ``s`` (their latest step is >= ``s``) and have a finite
  point at or before it. Fewer than ``min_runs`` (default 3) such runs: ``waiting``.
  Triggered when strictly worse than that median (min: greater; max: smaller). Runs whose
  history is still loading (a partial preview) neither get a verdict nor count for others.
  The verdict of one run depends on the others, so every evaluation re-checks each run not
  yet triggered whose latest step is at or above the lowest step any run changed.
* ``stalled``: triggered when the run's status is ``running`` or ``stalled`` and more than
  ``seconds`` have passed since its last sign of life, the later of its last record's wall
  time and its files' modification time. ``ok`` for any other status.

Keys: ``name`` (unique; default ``"<when> <metric>"``), ``when``, ``action`` (``flag`` or
``kill``, default ``flag``) for every rule; then ``metric`` (required) and ``after_step``
for all but ``stalled``; ``value`` (required) for ``above`` / ``below``; ``mode`` (``min`` or
``max``, default ``min``), ``patience`` (required, a positive integer) and ``min_delta``
(>= 0, default 0) for ``no_improvement``; ``mode`` and ``min_runs`` (positive integer,
default 3) for ``worse_than_median``; ``seconds`` (required, > 0) for ``stalled``. A key
that does not apply to the rule's ``when`` is a mistake, like an unknown one.

Common to all rules:

* ``after_step``: points with a step below it are ignored (``worse_than_median``: the run
  is only judged from that step on, but its best value counts earlier points). Default:
  no lower bound. Before it, the verdict is ``waiting``.
* Sticky: once triggered, a verdict keeps the step and reason of its first trigger, and the
  rule stops looking at that run. Only a run whose history was replaced (re-read from the
  start, ``Batch.replace``) is evaluated again from scratch.
* Each ``(run, rule)`` trigger is reported once by :meth:`RuleEngine.take_new_triggers`,
  even when a replaced history triggers it again, so a kill action fires once.
* Steps that go backwards (a run resumed from a checkpoint re-logs steps it had passed):
  the later points supersede the earlier ones. When a point arrives with a step lower than
  the previous point's, the earlier points with a step at or above it are dropped from the
  run's effective history and ``no_improvement`` restarts from the state it had before
  them (so re-logged evaluations are not counted twice); ``worse_than_median`` uses the
  effective history too. A trigger that already happened stays (sticky).
  ``nonfinite`` / ``above`` / ``below`` judge each point on its own and are unaffected.

Cost: each evaluation is O(new points) for the per-run rules, plus O(R) cheap checks over
all R runs for ``stalled`` and ``worse_than_median``. When runs changed, the median rule
re-evaluates k runs at q distinct steps in O(R q log n) (one vectorised ``searchsorted``
per run over its best-so-far curve) plus O(q R log R) to sort the columns, O(1) per run
after that. A resume costs one O(n) replay of the resumed run.
"""

from __future__ import annotations

import itertools
import math
import re
import sys
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from tui.core.sanitize import sanitize
from tui.core.store import Run, RunStore, Series

if sys.version_info >= (3, 11):
    import tomllib
else:  # Python 3.10 has no tomllib; tomli is the same parser
    import tomli as tomllib

RULES_FILE = "tracktui.toml"
"""The rules file looked for under ROOT."""

MAX_RULES_BYTES = 1 << 20
"""A rules file larger than this is refused (ROOT may be shared with other users)."""

WHENS = ("nonfinite", "above", "below", "no_improvement", "worse_than_median", "stalled")
"""The kinds of rule."""

ACTIONS = ("flag", "kill")
"""What a triggered rule does: ``kill`` acts only with ``--auto-kill``."""

OK, WAITING, TRIGGERED = "ok", "waiting", "triggered"

_RUNNING = frozenset({"running", "stalled"})
_COMMON_KEYS = frozenset({"name", "when", "action"})
_KEYS = {
    "nonfinite": frozenset({"metric", "after_step"}),
    "above": frozenset({"metric", "value", "after_step"}),
    "below": frozenset({"metric", "value", "after_step"}),
    "no_improvement": frozenset({"metric", "mode", "patience", "min_delta", "after_step"}),
    "worse_than_median": frozenset({"metric", "mode", "after_step", "min_runs"}),
    "stalled": frozenset({"seconds"}),
}
_REQUIRED = {
    "nonfinite": ("metric",),
    "above": ("metric", "value"),
    "below": ("metric", "value"),
    "no_improvement": ("metric", "patience"),
    "worse_than_median": ("metric",),
    "stalled": ("seconds",),
}
_ALL_KEYS = _COMMON_KEYS.union(*_KEYS.values())
_BLOCK = 256
"""``no_improvement`` tests this many points at once: a block without an improvement is a
plateau it skips in one go, a block with one is scanned point by point."""
_SMALL = 32
"""Up to this many new points are read as Python lists: numpy's cost per call would dominate
the usual update of one or a few points."""


# Rules and their file ---------------------------------------------------------------------
class RulesError(ValueError):
    """A mistake in a rules file. ``str()`` names the file and, where known, the line.

    Attributes:
        source: the file name as given.
        line: the 1-based line of the offending key or ``[[rule]]`` header, if known.
        problem: what is wrong, without the location.
    """

    def __init__(self, source: str, line: int | None, problem: str) -> None:
        self.source = sanitize(source, 300)
        self.line = line
        self.problem = sanitize(problem, 500)
        where = f"{self.source} line {line}" if line is not None else self.source
        super().__init__(f"{where}: {self.problem}")


@dataclass(frozen=True, slots=True)
class Rule:
    """One ``[[rule]]`` table. See the module docstring for what each kind means.

    Attributes:
        name: unique name, shown in the table, the run view and the audit log.
        when: one of :data:`WHENS`.
        metric: the scalar metric it watches (``None`` for ``stalled``).
        action: ``flag`` or ``kill``.
        value: the threshold of ``above`` / ``below``.
        after_step: points with a lower step are ignored (``None``: no bound).
        mode: ``min`` or ``max``: which direction is better (``no_improvement``,
            ``worse_than_median``).
        patience: evaluations without improvement that trigger ``no_improvement``.
        min_delta: the least change that counts as an improvement.
        min_runs: other runs needed at the same step for ``worse_than_median``.
        seconds: silence that triggers ``stalled``.
        line: line of its ``[[rule]]`` header in the file, if it came from one.
    """

    name: str
    when: str
    metric: str | None = None
    action: str = "flag"
    value: float | None = None
    after_step: float | None = None
    mode: str = "min"
    patience: int = 1
    min_delta: float = 0.0
    min_runs: int = 3
    seconds: float | None = None
    line: int | None = None

    def describe(self) -> str:
        """One line saying what the rule checks, e.g. ``loss above 10 from step 200``."""
        metric = self.metric or ""
        if self.when == "nonfinite":
            text = f"{metric} becomes NaN or infinite"
        elif self.when in ("above", "below"):
            text = f"{metric} {self.when} {_num(self.value)}"
        elif self.when == "no_improvement":
            text = (
                f"{metric} ({self.mode}) does not improve by more than {_num(self.min_delta)}"
                f" in {self.patience} evaluations"
            )
        elif self.when == "worse_than_median":
            text = f"best {metric} ({self.mode}) worse than the median of {self.min_runs}+ runs"
        else:
            text = f"no new record for {_num(self.seconds)} s while running"
        if self.after_step is not None and self.when != "stalled":
            text += f" from step {_step(self.after_step)}"
        return f"{text} -> {self.action}"


def find_rules(root: Path, override: Path | None = None) -> Path | None:
    """The rules file to use: ``override`` (``--rules``) if given, else ``ROOT/tracktui.toml``.

    Returns ``None`` when there is no override and ROOT has no rules file.
    """
    if override is not None:
        return override
    candidate = root / RULES_FILE
    return candidate if candidate.is_file() else None


def load_rules(path: Path) -> list[Rule]:
    """Read and check a rules file.

    Raises:
        RulesError: the file cannot be read, is not UTF-8 TOML, or holds a mistake; the
            message names the file and the line.
    """
    source = str(path)
    try:
        with open(path, "rb") as handle:
            data = handle.read(MAX_RULES_BYTES + 1)
    except OSError as error:
        raise RulesError(source, None, f"cannot read: {error.strerror or error}") from None
    if len(data) > MAX_RULES_BYTES:
        raise RulesError(source, None, f"larger than {MAX_RULES_BYTES} bytes")
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as error:
        line = data[: error.start].count(b"\n") + 1
        raise RulesError(source, line, "not UTF-8 text") from None
    return parse_rules(text, source)


def parse_rules(text: str, source: str = RULES_FILE) -> list[Rule]:
    """Parse the TOML text of a rules file (DESIGN.md §7) into rules, in file order.

    Args:
        text: the file's content.
        source: the name used in error messages.

    Raises:
        RulesError: naming ``source`` and the line of the offending key or header.
    """
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as error:
        line, message = _toml_error(error)
        raise RulesError(source, line, f"invalid TOML: {message}") from None
    lines = text.splitlines()
    for key in data:
        if key != "rule":
            raise RulesError(
                source, _top_level_line(lines, key), f'unknown key "{key}" (expected [[rule]])'
            )
    tables = data.get("rule", [])
    if not isinstance(tables, list) or not all(isinstance(t, dict) for t in tables):
        raise RulesError(source, _top_level_line(lines, "rule"), "rules must be [[rule]] tables")
    headers: list[int | None] = [i + 1 for i, line in enumerate(lines) if _HEADER.match(line)]
    if len(headers) != len(tables):  # inline tables (rule = [{...}]): no header per rule
        headers = [_top_level_line(lines, "rule")] * len(tables)
    rules: list[Rule] = []
    names: set[str] = set()
    for number, (table, header) in enumerate(zip(tables, headers), start=1):
        rule = _RuleParser(source, lines, header, number, table).parse()
        if rule.name in names:
            raise RulesError(
                source,
                _key_line(lines, header, "name") or header,
                f'rule "{rule.name}": another rule has the same name',
            )
        names.add(rule.name)
        rules.append(rule)
    return rules


_HEADER = re.compile(r"\s*\[\[\s*rule\s*\]\]")
_TABLE = re.compile(r"\s*\[")
_TOML_AT = re.compile(r"\s*\(at line (\d+), column \d+\)\s*$")


def _toml_error(error: Exception) -> tuple[int | None, str]:
    """Line and message of a TOML syntax error (``lineno`` exists from Python 3.14)."""
    text = str(error)
    found = _TOML_AT.search(text)
    line = getattr(error, "lineno", None) or (int(found.group(1)) if found else None)
    message = getattr(error, "msg", None) or (text[: found.start()] if found else text)
    return line, message


def _key_pattern(key: str) -> re.Pattern[str]:
    name = re.escape(key)
    return re.compile(rf"""\s*(?:{name}|"{name}"|'{name}')\s*=""")


def _top_level_line(lines: list[str], key: str) -> int | None:
    """Line of a top-level ``key = ...`` or ``[key]`` / ``[[key]]`` header."""
    name = re.escape(key)
    pattern = re.compile(rf"""\s*(?:\[\[?\s*)?(?:{name}|"{name}"|'{name}')\s*[=\].]""")
    for i, line in enumerate(lines):
        if pattern.match(line):
            return i + 1
    return None


def _key_line(lines: list[str], header: int | None, key: str) -> int | None:
    """Line of ``key = ...`` inside the table that starts at line ``header``."""
    if header is None:
        return None
    pattern = _key_pattern(key)
    for i in range(header, len(lines)):
        if _TABLE.match(lines[i]):
            break
        if pattern.match(lines[i]):
            return i + 1
    return None


class _RuleParser:
    """Checks one ``[[rule]]`` table; every error names the line of the key at fault."""

    def __init__(
        self,
        source: str,
        lines: list[str],
        header: int | None,
        number: int,
        table: dict[str, Any],
    ) -> None:
        self.source = source
        self.lines = lines
        self.header = header
        self.table = table
        name = table.get("name")
        self.label = f'rule "{name}"' if isinstance(name, str) and name else f"rule #{number}"

    def fail(self, key: str | None, problem: str) -> RulesError:
        line = _key_line(self.lines, self.header, key) if key else None
        return RulesError(self.source, line or self.header, f"{self.label}: {problem}")

    def parse(self) -> Rule:
        table = self.table
        for key in table:
            if key not in _ALL_KEYS:
                raise self.fail(key, f'unknown key "{key}"')
        when = table.get("when")
        if when is None:
            raise self.fail(None, f"missing when (one of {', '.join(WHENS)})")
        if when not in WHENS:
            raise self.fail("when", f"when must be one of {', '.join(WHENS)}, not {when!r}")
        for key in table:
            if key not in _COMMON_KEYS and key not in _KEYS[when]:
                raise self.fail(key, f'{key} does not apply to when = "{when}"')
        for key in _REQUIRED[when]:
            if key not in table:
                raise self.fail(None, f'when = "{when}" needs {key}')
        metric = self.text("metric", 200) if "metric" in table else None
        name = self.text("name", 80) if "name" in table else f"{when} {metric or ''}".strip()
        return Rule(
            name=name,
            when=when,
            metric=metric,
            action=self.choice("action", ACTIONS, "flag"),
            value=self.number("value") if "value" in table else None,
            after_step=self.number("after_step") if "after_step" in table else None,
            mode=self.choice("mode", ("min", "max"), "min"),
            patience=self.count("patience", 1),
            min_delta=self.number("min_delta", minimum=0.0) if "min_delta" in table else 0.0,
            min_runs=self.count("min_runs", 3),
            seconds=self.number("seconds", positive=True) if "seconds" in table else None,
            line=self.header,
        )

    def text(self, key: str, limit: int) -> str:
        value = self.table[key]
        if not isinstance(value, str) or not value.strip():
            raise self.fail(key, f"{key} must be a non-empty string")
        # Metric names in the store are sanitized the same way, so they still match.
        return sanitize(value, limit)

    def choice(self, key: str, allowed: tuple[str, ...], default: str) -> str:
        value = self.table.get(key, default)
        if value not in allowed:
            quoted = " or ".join(f'"{a}"' for a in allowed)
            raise self.fail(key, f"{key} must be {quoted}, not {value!r}")
        return str(value)

    def number(self, key: str, *, minimum: float | None = None, positive: bool = False) -> float:
        value = self.table[key]
        if type(value) not in (int, float) or not math.isfinite(value):
            raise self.fail(key, f"{key} must be a finite number, not {value!r}")
        if positive and value <= 0:
            raise self.fail(key, f"{key} must be a positive number")
        if minimum is not None and value < minimum:
            raise self.fail(key, f"{key} must be at least {_num(minimum)}")
        return float(value)

    def count(self, key: str, default: int) -> int:
        value = self.table.get(key, default)
        if type(value) is not int or value < 1:
            raise self.fail(key, f"{key} must be a positive integer, not {value!r}")
        return value


# Verdicts ---------------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class Verdict:
    """What one rule says about one run.

    Attributes:
        rule: the rule's name.
        state: ``ok``, ``waiting`` (not enough data yet) or ``triggered``.
        step: the x value at which it triggered (``None`` unless triggered).
        reason: a sentence explaining the state, for the run view.
        action: the rule's action, ``flag`` or ``kill``.
    """

    rule: str
    state: str
    step: float | None = None
    reason: str | None = None
    action: str = "flag"


def _num(value: float | None) -> str:
    return "?" if value is None else f"{value:.6g}"


def _step(step: float | None) -> str:
    if step is None:
        return "?"
    if step.is_integer() and abs(step) < 1e15:
        return str(int(step))
    return f"{step:.6g}"


def _points(
    run: Run, series: Series, start: int, stop: int
) -> tuple[list[float], list[float]] | tuple[np.ndarray, np.ndarray]:
    """Steps and values of points ``start`` to ``stop`` of ``series``.

    Python lists for a few points, else float64 arrays. Always copies: a numpy view would
    keep the store's arrays from growing.
    """
    count = stop - start
    if count <= _SMALL:
        table = run.steps
        return [table[i] for i in series.index[start:stop]], series.values[start:stop].tolist()
    index = np.frombuffer(series.index, dtype=np.uint32, count=count, offset=start * 4)
    values = np.frombuffer(series.values, dtype=np.float32, count=count, offset=start * 4)
    steps = np.frombuffer(run.steps, dtype=np.float64)[index.astype(np.intp)]
    return steps, values.astype(np.float64)


def _effective(steps: np.ndarray) -> np.ndarray:
    """Mask of the points still in the effective history after every resume.

    A point is dropped when a later point that went backwards (a resume) has a step at or
    below its own.
    """
    resume = np.full(len(steps), np.inf)
    if len(steps) > 1:
        back = np.flatnonzero(steps[1:] < steps[:-1]) + 1
        resume[back] = steps[back]
    later = np.append(np.minimum.accumulate(resume[::-1])[::-1][1:], np.inf)
    return ~(steps >= later)


def _resumes(steps: list[float] | np.ndarray, previous: float | None) -> list[int]:
    """Positions in ``steps`` whose step is lower than the point before them."""
    if isinstance(steps, np.ndarray):
        back = (np.flatnonzero(steps[1:] < steps[:-1]) + 1).tolist()
    else:
        back = [i for i in range(1, len(steps)) if steps[i] < steps[i - 1]]
    if previous is not None and len(steps) and steps[0] < previous:
        back.insert(0, 0)
    return back


# Checks: the state of one rule for one run ------------------------------------------------
class _Check:
    """State of one rule for one run; ``verdict`` is always current."""

    __slots__ = ("rule", "verdict")

    def __init__(self, rule: Rule) -> None:
        self.rule = rule
        self.reset()

    def reset(self) -> None:
        self.verdict = self.make(WAITING, reason=self.initial_reason())

    def initial_reason(self) -> str:
        return f"no {self.rule.metric} yet"

    @property
    def triggered(self) -> bool:
        return self.verdict.state == TRIGGERED

    def make(self, state: str, step: float | None = None, reason: str | None = None) -> Verdict:
        return Verdict(self.rule.name, state, step, reason, self.rule.action)

    def trigger(self, step: float | None, reason: str) -> None:
        self.verdict = self.make(TRIGGERED, None if step is None else float(step), reason)

    def update(self, run: Run) -> None:
        """Look at what changed in ``run`` (per-run rules only)."""


class _SeriesCheck(_Check):
    """A rule judged on one run's metric alone, fed the points it has not seen."""

    __slots__ = ("consumed", "previous", "seen", "series")

    def reset(self) -> None:
        self.series: Series | None = None
        self.consumed = 0
        self.previous: float | None = None
        self.seen = 0
        super().reset()

    def update(self, run: Run) -> None:
        series = run.series.get(self.rule.metric or "")
        if series is not self.series or (series is not None and series.count < self.consumed):
            self.reset()
            self.series = series
        if series is None or self.triggered or series.count <= self.consumed:
            return
        stop = min(series.count, len(series.values), len(series.index))
        steps, values = _points(run, series, self.consumed, stop)
        start, self.consumed = self.consumed, stop
        self.feed(run, start, steps, values)
        self.previous = float(steps[-1])
        if not self.triggered:
            self.verdict = self.current()

    def eligible(self, steps: np.ndarray) -> np.ndarray | None:
        after = self.rule.after_step
        return None if after is None else steps >= after

    def feed(
        self,
        run: Run,
        start: int,
        steps: list[float] | np.ndarray,
        values: list[float] | np.ndarray,
    ) -> None:
        """Judge new points (``start``: position of the first in the series)."""
        raise NotImplementedError

    def current(self) -> Verdict:
        """The verdict when not triggered."""
        if not self.seen:
            after, at = _step(self.rule.after_step), _step(self.previous)
            return self.make(WAITING, reason=f"waiting for step {after} (at {at})")
        return self.make(OK, reason=self.ok_reason())

    def ok_reason(self) -> str:
        raise NotImplementedError


class _Nonfinite(_SeriesCheck):
    """``nonfinite``: triggered at the first NaN or +-inf point (at or after ``after_step``)."""

    __slots__ = ()

    def feed(
        self,
        run: Run,
        start: int,
        steps: list[float] | np.ndarray,
        values: list[float] | np.ndarray,
    ) -> None:
        quiet = type(values) is list and (self.rule.after_step is None or self.seen)
        if quiet and all(map(math.isfinite, values)):  # the usual case, without numpy's overhead
            self.seen = self.seen or len(values)
            return
        steps, values = np.asarray(steps, dtype=np.float64), np.asarray(values, dtype=np.float64)
        bad = ~np.isfinite(values)
        mask = self.eligible(steps)
        if mask is not None:
            bad &= mask
        self.seen += len(steps) if mask is None else int(mask.sum())
        hits = np.flatnonzero(bad)
        if hits.size:
            i = int(hits[0])
            self.trigger(steps[i], f"{self.rule.metric} is {values[i]} at step {_step(steps[i])}")

    def ok_reason(self) -> str:
        return f"{self.rule.metric} finite so far"


class _Threshold(_SeriesCheck):
    """``above`` / ``below``: triggered at the first finite point beyond ``value``.

    ``value`` is rounded to float32 like the stored points, so a point logged as exactly
    the threshold is not beyond it.
    """

    __slots__ = ("limit",)

    def __init__(self, rule: Rule) -> None:
        with np.errstate(over="ignore"):  # a threshold beyond float32 becomes +-inf
            self.limit = float(np.float32(rule.value or 0.0))
        super().__init__(rule)

    def feed(
        self,
        run: Run,
        start: int,
        steps: list[float] | np.ndarray,
        values: list[float] | np.ndarray,
    ) -> None:
        if type(values) is list and (self.rule.after_step is None or self.seen):
            limit = self.limit
            if self.rule.when == "above":
                beyond_any = any(v > limit for v in values)
            else:
                beyond_any = any(v < limit for v in values)
            if not beyond_any:  # the usual case, without numpy's overhead
                self.seen = self.seen or len(values)
                return
        steps, values = np.asarray(steps, dtype=np.float64), np.asarray(values, dtype=np.float64)
        with np.errstate(invalid="ignore"):
            beyond = values > self.limit if self.rule.when == "above" else values < self.limit
        beyond &= np.isfinite(values)
        mask = self.eligible(steps)
        if mask is not None:
            beyond &= mask
        self.seen += len(steps) if mask is None else int(mask.sum())
        hits = np.flatnonzero(beyond)
        if hits.size:
            i = int(hits[0])
            sign = ">" if self.rule.when == "above" else "<"
            self.trigger(
                steps[i],
                f"{self.rule.metric} = {_num(values[i])} {sign} {_num(self.rule.value)}"
                f" at step {_step(steps[i])}",
            )

    def ok_reason(self) -> str:
        return f"{self.rule.metric} never {self.rule.when} {_num(self.rule.value)}"


class _NoImprovement(_SeriesCheck):
    """``no_improvement``: Keras EarlyStopping over the run's effective history.

    ``best`` is kept with the sign flipped for ``mode = "max"`` so that lower is better.
    """

    __slots__ = ("best", "best_step", "sign", "wait")

    def reset(self) -> None:
        self.sign = -1.0 if self.rule.mode == "max" else 1.0
        self.best = math.inf
        self.best_step: float | None = None
        self.wait = 0
        super().reset()

    def feed(
        self,
        run: Run,
        start: int,
        steps: list[float] | np.ndarray,
        values: list[float] | np.ndarray,
    ) -> None:
        edges = [0, *_resumes(steps, self.previous), len(steps)]
        for a, b in itertools.pairwise(edges):
            if a > 0 or (self.previous is not None and steps[0] < self.previous):
                self.rewind(run, start + a, float(steps[a]))
            self.advance(steps[a:b], values[a:b])
            if self.triggered:
                return

    def rewind(self, run: Run, position: int, step: float) -> None:
        """Restart from the state after the effective points before ``position`` below ``step``.

        Those points are a prefix of a history already evaluated without a trigger, so
        replaying them cannot trigger.
        """
        assert self.series is not None
        steps, values = _points(run, self.series, 0, position)
        steps, values = np.asarray(steps, dtype=np.float64), np.asarray(values, dtype=np.float64)
        keep = _effective(steps) & (steps < step)
        self.best, self.best_step, self.wait, self.seen = math.inf, None, 0, 0
        self.advance(steps[keep], values[keep])

    def advance(self, steps: list[float] | np.ndarray, values: list[float] | np.ndarray) -> None:
        """Evaluate points in order; long plateaus are skipped a block at a time."""
        if not isinstance(values, np.ndarray) or not isinstance(steps, np.ndarray):
            self.scan(list(steps), list(values))
            return
        if self.rule.after_step is not None:
            mask = steps >= self.rule.after_step
            steps, values = steps[mask], values[mask]
        patience, delta = self.rule.patience, self.rule.min_delta
        i, n = 0, len(values)
        while i < n and not self.triggered:
            j = min(n, i + _BLOCK)
            block = self.sign * values[i:j]
            with np.errstate(invalid="ignore"):
                improving = np.isfinite(block) & (block < self.best - delta)
            if improving.any():
                self.scan(steps[i:j].tolist(), values[i:j].tolist())
            else:  # a plateau: skip to where the counter runs out
                need = patience - self.wait
                if j - i >= need:
                    self.seen += need
                    self.wait = patience
                    self.trigger_now(float(steps[i + need - 1]))
                    return
                self.seen += j - i
                self.wait += j - i
            i = j

    def scan(self, steps: list[float], values: list[float]) -> None:
        """Keras EarlyStopping, one point at a time."""
        after, sign = self.rule.after_step, self.sign
        patience, delta = self.rule.patience, self.rule.min_delta
        for step, value in zip(steps, values):
            if after is not None and not step >= after:
                continue
            self.seen += 1
            signed = sign * value
            if math.isfinite(signed) and signed < self.best - delta:
                self.best, self.best_step, self.wait = signed, step, 0
                continue
            self.wait += 1
            if self.wait >= patience:
                self.trigger_now(step)
                return

    def trigger_now(self, step: float) -> None:
        metric, patience = self.rule.metric, self.rule.patience
        if self.best_step is None:
            reason = f"no finite {metric} in {patience} evaluations"
        else:
            reason = (
                f"no improvement of {metric} in {patience} evaluations"
                f" (best {_num(self.sign * self.best)} at step {_step(self.best_step)})"
            )
        self.trigger(step, reason)

    def current(self) -> Verdict:
        patience = self.rule.patience
        if self.seen < patience:
            if not self.seen and self.rule.after_step is not None:
                return super().current()
            return self.make(WAITING, reason=f"{self.seen} of {patience} evaluations so far")
        return super().current()

    def ok_reason(self) -> str:
        best = (
            f"best {_num(self.sign * self.best)} at step {_step(self.best_step)}"
            if self.best_step is not None
            else "no finite value"
        )
        return f"{best}; {self.wait} of {self.rule.patience} evaluations without improvement"


class _Stalled(_Check):
    """``stalled``: no sign of life for ``seconds`` while running. Needs the clock."""

    __slots__ = ()

    def initial_reason(self) -> str:
        return "no record yet"

    def check(self, run: Run, now: float) -> None:
        if self.triggered:
            return
        limit = self.rule.seconds or 0.0
        stamps = [t for t in (run.last_time, run.mtime) if t is not None]
        if run.status not in _RUNNING:
            state, reason = OK, f"not running ({run.status})"
        elif not stamps:
            state, reason = WAITING, "no record yet"
        elif now - max(stamps) > limit:
            idle = now - max(stamps)
            self.trigger(run.last_step, f"no new record for {idle:.0f} s (limit {_num(limit)} s)")
            return
        else:
            state, reason = OK, f"records within {_num(limit)} s"
        # Built only on a change: this runs for every run at every evaluation.
        if self.verdict.state != state or self.verdict.reason != reason:
            self.verdict = self.make(state, reason=reason)


class _Median(_Check):
    """``worse_than_median``: the verdict only; :class:`_Curves` holds the data."""

    __slots__ = ()


_CHECKS: dict[str, type[_Check]] = {
    "nonfinite": _Nonfinite,
    "above": _Threshold,
    "below": _Threshold,
    "no_improvement": _NoImprovement,
    "worse_than_median": _Median,
    "stalled": _Stalled,
}


# The median stopping rule -----------------------------------------------------------------
class _Curve:
    """One run's best-so-far of a metric along its effective history (steps non-decreasing).

    ``best`` holds signed values (lower is better); +inf where no finite point exists yet.
    """

    __slots__ = ("best", "consumed", "n", "partial", "series", "steps")

    def __init__(self) -> None:
        self.series: Series | None = None
        self.consumed = 0
        self.steps = np.empty(16)
        self.best = np.empty(16)
        self.n = 0
        self.partial = False

    @property
    def last(self) -> float:
        return float(self.steps[self.n - 1])

    def sync(self, run: Run, metric: str, sign: float) -> tuple[float | None, bool]:
        """Take in new points. Returns the lowest step whose best or reach changed (or
        ``None``) and whether the run's history was replaced."""
        series = run.series.get(metric)
        changed: float | None = None
        replaced = series is not self.series or (
            series is not None and series.count < self.consumed
        )
        if replaced:
            self.series, self.consumed, self.n = series, 0, 0
            changed = -math.inf
        if run.partial != self.partial:
            self.partial = run.partial
            changed = -math.inf
        if series is None or series.count <= self.consumed:
            return changed, replaced
        stop = min(series.count, len(series.values), len(series.index))
        steps, values = _points(run, series, self.consumed, stop)
        self.consumed = stop
        low = self.last if self.n else -math.inf
        if isinstance(steps, np.ndarray) and isinstance(values, np.ndarray):
            usable = np.isfinite(steps)
            steps, values = steps[usable], values[usable]
            signed = sign * values
            signed[~np.isfinite(signed)] = np.inf
            edges = [0, *_resumes(steps, None), len(steps)]
            for a, b in itertools.pairwise(edges):
                if a < b:
                    low = min(low, self.cut(float(steps[a])))
                    self.append(steps[a:b], signed[a:b])
        else:
            for step, value in zip(steps, values):
                if math.isfinite(step):
                    low = min(low, self.cut(step))
                    self.push(step, sign * value)
        return (low if changed is None else changed), replaced

    def cut(self, step: float) -> float:
        """Drop the points that a resume at ``step`` supersedes; returns ``step``."""
        if self.n and step < self.last:
            self.n = int(np.searchsorted(self.steps[: self.n], step, side="left"))
        return step

    def reserve(self, need: int) -> None:
        """Grow the buffers (doubling) to hold ``need`` points."""
        if need > len(self.steps):
            size = max(need, 2 * len(self.steps))
            self.steps = np.resize(self.steps, size)
            self.best = np.resize(self.best, size)

    def push(self, step: float, signed: float) -> None:
        """Append one point (the common live update), without numpy's per-call overhead."""
        self.reserve(self.n + 1)
        previous = float(self.best[self.n - 1]) if self.n else math.inf
        self.steps[self.n] = step
        self.best[self.n] = min(previous, signed) if math.isfinite(signed) else previous
        self.n += 1

    def append(self, steps: np.ndarray, signed: np.ndarray) -> None:
        need = self.n + len(steps)
        self.reserve(need)
        previous = self.best[self.n - 1] if self.n else np.inf
        self.steps[self.n : need] = steps
        self.best[self.n : need] = np.minimum(np.minimum.accumulate(signed), previous)
        self.n = need

    def best_at(self, query: np.ndarray) -> np.ndarray:
        """Best-so-far at each query step; +inf where not reached or undefined."""
        if not self.n or self.partial:
            return np.full(len(query), np.inf)
        steps = self.steps[: self.n]
        index = np.searchsorted(steps, query, side="right") - 1
        out = self.best[np.maximum(index, 0)]
        out[(index < 0) | (query > steps[-1])] = np.inf
        return out


class _Curves:
    """Best-so-far curves of every run for one (metric, mode), shared by median rules."""

    def __init__(self, metric: str, mode: str) -> None:
        self.metric = metric
        self.mode = mode
        self.sign = -1.0 if mode == "max" else 1.0
        self.curves: dict[str, _Curve] = {}

    def sync(self, store: RunStore) -> tuple[float, set[str], set[str]]:
        """Update from every run. Returns the lowest changed step (+inf: none), the runs
        that changed and the runs whose history was replaced."""
        low = math.inf
        changed: set[str] = set()
        replaced: set[str] = set()
        for key in [k for k in self.curves if k not in store.runs]:
            del self.curves[key]
            low = -math.inf
        for key, run in store.runs.items():
            curve = self.curves.get(key)
            if curve is None:
                if self.metric not in run.series:
                    continue
                curve = self.curves[key] = _Curve()
            step, was_replaced = curve.sync(run, self.metric, self.sign)
            if was_replaced:
                replaced.add(key)
            if step is not None:
                changed.add(key)
                low = min(low, step)
        return low, changed, replaced

    def judge(self, rule: Rule, checks: dict[str, _Check], runs: dict[str, Run]) -> None:
        """Set the verdict of each given run not yet triggered."""
        metric, sign = rule.metric, self.sign
        pending: list[tuple[_Check, float, float]] = []
        for key, check in checks.items():
            curve = self.curves.get(key)
            if curve is None or not curve.n:
                check.verdict = check.make(WAITING, reason=f"no {metric} yet")
            elif runs[key].partial:
                check.verdict = check.make(WAITING, reason="history still loading")
            elif rule.after_step is not None and curve.last < rule.after_step:
                check.verdict = check.make(
                    WAITING,
                    reason=f"waiting for step {_step(rule.after_step)} (at {_step(curve.last)})",
                )
            elif not math.isfinite(curve.best[curve.n - 1]):
                check.verdict = check.make(WAITING, reason=f"no finite {metric} yet")
            else:
                pending.append((check, curve.last, float(curve.best[curve.n - 1])))
        if not pending:
            return
        query = np.unique(np.array([s for _, s, _ in pending]))
        comparable = [c for c in self.curves.values() if c.n and not c.partial]
        table = np.empty((len(query), len(comparable)))
        for j, curve in enumerate(comparable):
            table[:, j] = curve.best_at(query)
        table.sort(axis=1)
        counts = np.isfinite(table).sum(axis=1)
        for check, step, own in pending:
            row = int(np.searchsorted(query, step))
            others = int(counts[row]) - 1
            if others < rule.min_runs:
                check.verdict = check.make(
                    WAITING,
                    reason=f"needs {rule.min_runs} other runs at step {_step(step)}, has {others}",
                )
                continue
            median = _median_without(table[row, : others + 1], own)
            text = (
                f"best {metric} {_num(sign * own)} at step {_step(step)}"
                f" vs median {_num(sign * median)} of {others} other runs"
            )
            if own > median:
                check.trigger(step, text)
            else:
                check.verdict = check.make(OK, reason=text)


def _median_without(ordered: np.ndarray, value: float) -> float:
    """Median of sorted ``ordered`` after removing one occurrence of ``value`` (in it)."""
    at = int(np.searchsorted(ordered, value, side="left"))
    size = len(ordered) - 1

    def rank(i: int) -> float:
        return float(ordered[i] if i < at else ordered[i + 1])

    return (rank((size - 1) // 2) + rank(size // 2)) / 2


# The engine -------------------------------------------------------------------------------
class _RunState:
    __slots__ = ("checks", "run", "verdicts")

    def __init__(self, run: Run, rules: Sequence[Rule]) -> None:
        self.run = run
        self.checks = [_CHECKS[rule.when](rule) for rule in rules]
        self.verdicts = [c.verdict for c in self.checks]


class RuleEngine:
    """Evaluates rules on a :class:`RunStore`, incrementally, on the store's thread.

    Args:
        rules: the rules, in the order their verdicts are listed.
        clock: the wall clock for ``stalled`` when :meth:`evaluate` gets no ``now``.
    """

    def __init__(self, rules: Sequence[Rule], clock: Callable[[], float] = time.time) -> None:
        self.rules: tuple[Rule, ...] = tuple(rules)
        self.clock = clock
        self._states: dict[str, _RunState] = {}
        self._announced: set[tuple[str, str]] = set()
        self._new: list[tuple[str, Verdict]] = []
        self._curves: dict[tuple[str, str], _Curves] = {}
        self._median = [i for i, r in enumerate(self.rules) if r.when == "worse_than_median"]
        self._stalled = [i for i, r in enumerate(self.rules) if r.when == "stalled"]
        for i in self._median:
            rule = self.rules[i]
            key = (rule.metric or "", rule.mode)
            if key not in self._curves:
                self._curves[key] = _Curves(*key)

    def evaluate(
        self, store: RunStore, keys: Iterable[str] | None = None, now: float | None = None
    ) -> dict[str, list[Verdict]]:
        """Bring verdicts up to date after the store changed.

        Args:
            store: the runs.
            keys: the runs that changed since the last call (``None``: every run). The
                per-run rules look only at these; ``stalled`` and ``worse_than_median``
                always look at every run, since time passes and runs compare with each
                other.
            now: the time for ``stalled`` (default: the engine's clock).

        Returns:
            The verdicts, in rule order, of every run in ``keys`` that is in the store and
            of every other run whose verdicts changed.
        """
        now = self.clock() if now is None else now
        for key in [k for k in self._states if k not in store.runs]:
            del self._states[key]
        wanted = list(store.runs) if keys is None else [k for k in keys if k in store.runs]
        touched: set[str] = set(wanted)
        for key in wanted:
            state = self._state(store.runs[key])
            for check in state.checks:
                check.update(state.run)
        if self._median:
            touched |= self._judge_medians(store)
        if self._stalled:
            for key, run in store.runs.items():
                state = self._state(run)
                for i in self._stalled:
                    check = state.checks[i]
                    assert isinstance(check, _Stalled)
                    before = check.verdict
                    check.check(run, now)
                    if check.verdict != before:
                        touched.add(key)
        return self._collect(touched, wanted)

    def _state(self, run: Run) -> _RunState:
        state = self._states.get(run.key)
        if state is None or state.run is not run:
            state = self._states[run.key] = _RunState(run, self.rules)
        return state

    def _judge_medians(self, store: RunStore) -> set[str]:
        touched: set[str] = set()
        for curves in self._curves.values():
            low, changed, replaced = curves.sync(store)
            if low == math.inf:
                continue
            for key in replaced:
                state = self._state(store.runs[key])
                for i in self._median:
                    state.checks[i].reset()
            for i in self._median:
                rule = self.rules[i]
                if (rule.metric or "", rule.mode) != (curves.metric, curves.mode):
                    continue
                checks: dict[str, _Check] = {}
                for key, run in store.runs.items():
                    check = self._state(run).checks[i]
                    if check.triggered:
                        continue
                    curve = curves.curves.get(key)
                    if key in changed or (curve is not None and curve.n and curve.last >= low):
                        checks[key] = check
                curves.judge(rule, checks, store.runs)
                touched.update(checks)
        return touched

    def _collect(self, touched: set[str], wanted: list[str]) -> dict[str, list[Verdict]]:
        result: dict[str, list[Verdict]] = {}
        for key in touched:
            state = self._states[key]
            verdicts = [c.verdict for c in state.checks]
            if verdicts != state.verdicts:
                state.verdicts = verdicts
                for verdict in verdicts:
                    if verdict.state == TRIGGERED and (key, verdict.rule) not in self._announced:
                        self._announced.add((key, verdict.rule))
                        self._new.append((key, verdict))
                result[key] = verdicts
        for key in wanted:
            result.setdefault(key, self._states[key].verdicts)
        return {key: list(verdicts) for key, verdicts in result.items()}

    def verdicts(self, key: str) -> list[Verdict]:
        """The latest verdicts of run ``key``, in rule order (``waiting`` if never seen)."""
        state = self._states.get(key)
        if state is None:
            return [
                Verdict(r.name, WAITING, None, "not evaluated yet", r.action) for r in self.rules
            ]
        return list(state.verdicts)

    def take_new_triggers(self) -> list[tuple[str, Verdict]]:
        """``(run key, verdict)`` of triggers not reported before, each (run, rule) once.

        The list is emptied by the call: notify or auto-kill for each item exactly once.
        """
        new, self._new = self._new, []
        return new

    def forget(self, key: str) -> None:
        """Drop the state of a run that left the store (its triggers stay reported)."""
        self._states.pop(key, None)
