"""The rules file: its keys, how it is found and read, and :class:`Rule`.

What each kind of rule means is in the package docstring (:mod:`tui.core.rules`).
"""

from __future__ import annotations

import re
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tui.core.sanitize import sanitize
from tui.core.sizes import human_bytes, parse_size
from tui.core.values import real_number

if sys.version_info >= (3, 11):
    import tomllib
else:  # Python 3.10 has no tomllib; tomli is the same parser
    import tomli as tomllib

RULES_FILE = "tracktui.toml"
"""The rules file looked for under ROOT."""

MAX_RULES_BYTES = 1 << 20
"""A rules file larger than this is refused (ROOT may be shared with other users)."""

WHENS = (
    "nonfinite",
    "above",
    "below",
    "no_improvement",
    "worse_than_median",
    "stalled",
    "gpu_idle",
    "gpu_memory_above",
)
"""The kinds of rule."""

ACTIONS = ("flag", "kill")
"""What a triggered rule does: ``kill`` acts only with ``--auto-kill``."""

_COMMON_KEYS = frozenset({"name", "when", "action"})
_KEYS = {
    "nonfinite": frozenset({"metric", "after_step"}),
    "above": frozenset({"metric", "value", "after_step"}),
    "below": frozenset({"metric", "value", "after_step"}),
    "no_improvement": frozenset({"metric", "mode", "patience", "min_delta", "after_step"}),
    "worse_than_median": frozenset({"metric", "mode", "after_step", "min_runs"}),
    "stalled": frozenset({"seconds"}),
    "gpu_idle": frozenset({"value", "seconds"}),
    "gpu_memory_above": frozenset({"value", "seconds"}),
}
_REQUIRED = {
    "nonfinite": ("metric",),
    "above": ("metric", "value"),
    "below": ("metric", "value"),
    "no_improvement": ("metric", "patience"),
    "worse_than_median": ("metric",),
    "stalled": ("seconds",),
    "gpu_idle": ("value", "seconds"),
    "gpu_memory_above": ("value",),
}
_ALL_KEYS = _COMMON_KEYS.union(*_KEYS.values())


def value_text(value: float | None) -> str:
    """A threshold or value as rule messages show it (``?`` when unknown)."""
    return "?" if value is None else f"{value:.6g}"


def step_text(step: float | None) -> str:
    """A step as rule messages show it: whole steps without a decimal point."""
    if step is None:
        return "?"
    if step.is_integer() and abs(step) < 1e15:
        return str(int(step))
    return f"{step:.6g}"


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
            text = f"{metric} {self.when} {value_text(self.value)}"
        elif self.when == "no_improvement":
            text = (
                f"{metric} ({self.mode}) does not improve by more than {value_text(self.min_delta)}"
                f" in {self.patience} evaluations"
            )
        elif self.when == "worse_than_median":
            text = f"best {metric} ({self.mode}) worse than the median of {self.min_runs}+ runs"
        elif self.when == "gpu_idle":
            text = (
                f"GPU utilisation under {value_text(self.value)} % for"
                f" {value_text(self.seconds)} s while on a GPU"
            )
        elif self.when == "gpu_memory_above":
            text = f"GPU memory above {human_bytes(self.value or 0.0)}"
            if self.seconds:
                text += f" for {value_text(self.seconds)} s"
        else:
            text = f"no new record for {value_text(self.seconds)} s while running"
        if self.after_step is not None and self.when != "stalled":
            text += f" from step {step_text(self.after_step)}"
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
    return decode_rules(data, source)


def decode_rules(data: bytes, source: str) -> list[Rule]:
    """Check and parse the bytes of a rules file (read up to ``MAX_RULES_BYTES + 1``).

    Raises:
        RulesError: too large, not UTF-8, or a mistake in the rules (see :func:`parse_rules`).
    """
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
            value=self.value(when) if "value" in table else None,
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

    def value(self, when: str) -> float:
        """``value``: a size for ``gpu_memory_above``, a percent for ``gpu_idle``."""
        if when == "gpu_memory_above":
            given = self.table["value"]
            size = parse_size(given) if isinstance(given, str) else real_number(given)
            if size is None or size <= 0:
                raise self.fail(
                    "value",
                    f'value must be a size such as "20GB" or a number of bytes, not {given!r}',
                )
            return size
        number = self.number("value")
        if when == "gpu_idle" and not 0 < number <= 100:
            raise self.fail("value", "value must be a percentage above 0 and at most 100")
        return number

    def choice(self, key: str, allowed: tuple[str, ...], default: str) -> str:
        value = self.table.get(key, default)
        if value not in allowed:
            quoted = " or ".join(f'"{a}"' for a in allowed)
            raise self.fail(key, f"{key} must be {quoted}, not {value!r}")
        return str(value)

    def number(self, key: str, *, minimum: float | None = None, positive: bool = False) -> float:
        value = self.table[key]
        number = real_number(value)
        if number is None:
            raise self.fail(key, f"{key} must be a finite number, not {value!r}")
        if positive and number <= 0:
            raise self.fail(key, f"{key} must be a positive number")
        if minimum is not None and number < minimum:
            raise self.fail(key, f"{key} must be at least {value_text(minimum)}")
        return number

    def count(self, key: str, default: int) -> int:
        value = self.table.get(key, default)
        if type(value) is not int or value < 1:
            raise self.fail(key, f"{key} must be a positive integer, not {value!r}")
        return value
