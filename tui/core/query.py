"""The run filter language: parse a query once, then match it against many runs.

A query is a list of terms separated by spaces; a run is shown when every term matches.
Matching never raises and never reads a file: it looks at the run's name, path, status,
format, group, tags, config, properties and metric summaries already in the store.

Examples::

    resnet                          name or path contains "resnet" (any case; res*50 globs)
    lr<0.01 status:running          both must hold
    name~'^bert-(base|large)'       regular expression, case-insensitive
    name:resnet*                    glob over the whole name
    tag:baseline                    tagged "baseline" (or a tag whose value is "baseline")
    tag:team=vision                 the tag "team" has the value "vision"
    optimizer.lr>=1e-4              nested config key (also optimizer/lr, config.optimizer.lr)
    max(val_acc)>=0.9 min(loss)<0.1 best values; val_acc>=0.9 compares the last value
    loss:nan                        the last loss is NaN
    nonfinite(loss)>0               loss was NaN or infinite at least once
    status:running or status:stalled
    -tag:baseline                   negation (also: not tag:baseline)
    (lr<0.01 or batch_size>=256) -status:failed
    rule:diverged                   a rule is triggered for the run (the app supplies rules)

Grammar::

    query    := or?                          an empty query matches every run
    or       := and ("or" and)*              "or" binds looser than the implicit AND
    and      := unary (["and"] unary)*       terms separated by whitespace
    unary    := "-" unary | "not" unary | primary      ("-" touches its term)
    primary  := "(" or ")" | compare | word
    compare  := subject op value             spaces around op are allowed
    subject  := key | func"(" key ")"        func: last, min, max, count, nonfinite
    op       := "<" | "<=" | ">" | ">=" | "=" | "==" | "!=" | ":" | "~"
    word     := text without an operator     matches the run's name or path
    key, value, word: bare text, or quoted with '...' or "..." (double the quote
                      character to include it: 'it''s'). A bare value runs to the next
                      space and may hold balanced parentheses (name~^bert-(base|large)).
                      Quotes only group characters: lr<'0.01' is still a number.
    Keywords (or, and, not) and function names are case-insensitive; a keyword touching
    an operator is a key (or:x).

Operators:
    ``< <= > >=``   numeric comparison; the value must be a number (``1e-3``, ``-5``,
                    ``inf``); text that looks like a number (MLflow params) counts.
    ``= ==``        equality: numeric when both sides are numbers, else text equality
                    ignoring case. ``!=`` is its opposite, for runs that have the key.
    ``:``           like ``=``, plus glob wildcards ``*`` and ``?`` over the whole text,
                    ``key:*`` for "the key exists", and ``key:nan`` for a NaN value.
    ``~``           case-insensitive substring, or a regular expression when the pattern
                    holds regex characters (searched anywhere; anchor with ``^``/``$``).
    Regular expressions and globs run on RE2 (google-re2), whose time is linear in the
    text, so no pattern can hang the filter (``name~'^(a+)+$'`` against a long name).
    RE2 has no backreferences or lookaround (such a pattern is a clear error), and its
    ``\\d``, ``\\w``, ``\\s`` and ``\\b`` are ASCII; Python's ``\\Z`` is accepted. A pattern
    whose RE2 program exceeds ``MAX_REGEX_PROGRAM`` instructions is refused, which bounds
    the cost of one match by about that many steps per character.
    A list value (a config list, a set of rules) matches when any element matches.

Keys:
    ``name path key status format group step`` are the run's own fields (``step``: its
    progress); ``gpu_mem`` (bytes; the value needs a size unit: ``gpu_mem>20GB``, units
    B, KB/KiB, MB/MiB, GB/GiB, TB/TiB, all 1024-based) and ``gpu_util`` (percent) are the
    GPU memory and utilisation of the run's process tree in the latest GPU reading;
    ``tag``/``tags`` and ``rule``/``rules`` match a label set as shown above
    (a tag whose value is false or null does not count as present).
    ``config.x``/``cfg.x``, ``prop.x``/``properties.x``, ``metric.x``/``m.x`` and
    ``tag.x`` look only in that place. Any other key is looked up in the config (nested
    keys joined by ``.`` or ``/``), then the properties, then the metrics (the last
    value of a scalar, or the latest text), then run.json's top-level fields (``host``,
    ``user``, ``exit_code``...). Keys are case-sensitive except the special ones and
    the namespace prefixes. The app's computed fields (``extra`` of
    :meth:`Query.matches`) are looked up first for any key without a prefix, so they
    override the special keys (``status``) and add new ones (``rules``, the names of
    the triggered rules, read by ``rule:NAME``).
    ``last(m) min(m) max(m) count(m) nonfinite(m)`` read a metric's summary: min and max
    are over finite values, nonfinite counts NaN and infinite points.

Missing values and NaN:
    A term about a key the run does not have is false, and so is any comparison with a
    NaN value (``loss<1`` is false when the last loss is NaN). Negation flips the result,
    so ``-loss<1`` keeps the runs without a loss and those whose loss is NaN. Comparing
    with ``nan`` is an error: ``loss:nan`` finds NaN values, ``nonfinite(loss)>0`` runs
    that ever had one.

A malformed query raises :class:`QueryError` naming the problem and its column, e.g.
``expected a value after "lr<" at column 4``; the app keeps the previous filter.
"""

from __future__ import annotations

import math
import numbers
import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any, TypeAlias

import re2  # type: ignore[import-untyped]  # google-re2 ships no type information

from tui.core.sanitize import sanitize
from tui.core.sizes import parse_size

__all__ = [
    "FUNCTIONS",
    "And",
    "Compare",
    "Node",
    "Not",
    "Or",
    "Query",
    "QueryError",
    "Word",
    "parse_query",
]

FUNCTIONS = ("last", "min", "max", "count", "nonfinite")
"""Metric summary functions usable as ``func(metric)``."""

MAX_DEPTH = 50
"""Deepest nesting of parentheses and negations accepted (keeps recursion bounded)."""

MAX_REGEX_PROGRAM = 1000
"""Largest RE2 program a regular expression or glob may compile to (``^bert-.*`` is 20)."""

_OPS = ("<=", ">=", "==", "!=", "<", ">", "=", ":", "~")
_ORDER_OPS = frozenset({"<", "<=", ">", ">="})
_OP_START = frozenset("<>=:~")  # "!" starts an operator only as "!="
_QUOTES = frozenset("'\"")
_KEYWORDS = frozenset({"or", "and", "not"})
_NUMBER = re.compile(r"[+-]?(?:(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?|inf(?:inity)?|nan)", re.I)
_REGEX_CHARS = frozenset(".^$*+?{}[]\\|()")
_UP_TO = re.compile(r"\{,(\d*)\}")  # Python's {,n}: RE2 would read it as text
_LISTS = (list, tuple, set, frozenset)

_SPECIAL = frozenset({"name", "path", "key", "status", "format", "group", "step"})
_GPU_KEYS = frozenset({"gpu_mem", "gpu_util"})
_TAG_KEYS = frozenset({"tag", "tags"})
_RULE_KEYS = frozenset({"rule", "rules"})
_NAMESPACES = {
    "config": "config",
    "cfg": "config",
    "prop": "properties",
    "props": "properties",
    "properties": "properties",
    "metric": "metric",
    "metrics": "metric",
    "m": "metric",
    "tag": "tag",
    "tags": "tag",
}
_META_SKIP = frozenset({"config", "tags", "properties"})


class QueryError(ValueError):
    """A query that cannot be parsed.

    Attributes:
        message: what is wrong and where, e.g. ``expected a value after "lr<" at column 4``.
        position: offset of the problem in the query text (0-based).
    """

    def __init__(self, message: str, position: int) -> None:
        super().__init__(message)
        self.message = message
        self.position = position

    @property
    def column(self) -> int:
        """The 1-based column of the problem, as the message names it."""
        return self.position + 1


class _Missing:
    """The value of a key a run does not have."""

    __slots__ = ()

    def __repr__(self) -> str:
        return "_MISSING"


_MISSING: Any = _Missing()

Predicate: TypeAlias = Callable[[Any, Mapping[str, object] | None], bool]
Getter: TypeAlias = Callable[[Any, Mapping[str, object] | None], Any]
Test = Callable[[Any], bool]


# Syntax tree ---------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class Word:
    """A bare word: the run's name or path contains it (``*``/``?`` are wildcards)."""

    text: str

    def __str__(self) -> str:
        return _show(self)


@dataclass(frozen=True, slots=True)
class Compare:
    """``key op value``, or ``func(key) op value`` when ``func`` is set."""

    key: str
    op: str
    value: str
    func: str | None = None

    def __str__(self) -> str:
        return _show(self)


@dataclass(frozen=True, slots=True)
class Not:
    """The negation of a term."""

    item: Node

    def __str__(self) -> str:
        return _show(self)


@dataclass(frozen=True, slots=True)
class And:
    """Every item matches (two or more items, none of them an ``And``)."""

    items: tuple[Node, ...]

    def __str__(self) -> str:
        return _show(self)


@dataclass(frozen=True, slots=True)
class Or:
    """Some item matches (two or more items, none of them an ``Or``)."""

    items: tuple[Node, ...]

    def __str__(self) -> str:
        return _show(self)


Node: TypeAlias = "Word | Compare | Not | And | Or"


def _join(kind: type[And] | type[Or], items: list[Node]) -> Node:
    """One node for ``items``, flattening nested nodes of the same kind."""
    flat: list[Node] = []
    for item in items:
        flat.extend(item.items if isinstance(item, kind) else (item,))
    return flat[0] if len(flat) == 1 else kind(tuple(flat))


# Printing (the canonical text parses back to the same tree) -----------------------------
def _quote(text: str) -> str:
    quote = "'" if "'" not in text or '"' in text else '"'
    return quote + text.replace(quote, quote * 2) + quote


def _bare_key_ok(text: str) -> bool:
    return bool(text) and _key_end(text, 0) == len(text) and text[0] not in _QUOTES | {"-"}


def _bare_value_ok(text: str) -> bool:
    if not text or text[0] in _QUOTES or text[0] in _OP_START or text.startswith("!="):
        return False
    end, depth = _value_end(text, 0)
    return end == len(text) and depth == 0


def _show_key(text: str) -> str:
    # A key ending in "!" before "=" would read back as the "!=" operator.
    return text if _bare_key_ok(text) and not text.endswith("!") else _quote(text)


def _show(node: Node, inside: type | None = None) -> str:
    if isinstance(node, Word):
        ok = _bare_key_ok(node.text) and node.text.lower() not in _KEYWORDS
        return node.text if ok else _quote(node.text)
    if isinstance(node, Compare):
        subject = _show_key(node.key)
        if node.func is not None:
            subject = f"{node.func}({subject})"
        value = node.value if _bare_value_ok(node.value) else _quote(node.value)
        return f"{subject}{node.op}{value}"
    if isinstance(node, Not):
        return "-" + _show(node.item, Not)
    if isinstance(node, And):
        text = " ".join(_show(item, And) for item in node.items)
        return f"({text})" if inside is Not else text
    text = " or ".join(_show(item, Or) for item in node.items)
    return f"({text})" if inside in (Not, And) else text


# Lexing helpers shared by the parser and the printer -------------------------------------
def _is_op_at(text: str, i: int) -> bool:
    return i < len(text) and (text[i] in _OP_START or text.startswith("!=", i))


def _key_end(text: str, i: int) -> int:
    """End of bare key/word text starting at ``i``: up to space, parenthesis or operator."""
    n = len(text)
    while i < n:
        c = text[i]
        if c.isspace() or c in "()" or c in _OP_START or (c == "!" and text.startswith("!=", i)):
            break
        i += 1
    return i


def _value_end(text: str, i: int) -> tuple[int, int]:
    """End of a bare value starting at ``i`` and the parenthesis depth left open there."""
    depth = 0
    n = len(text)
    while i < n:
        c = text[i]
        if c.isspace():
            break
        if c == "(":
            depth += 1
        elif c == ")":
            if depth == 0:
                break
            depth -= 1
        i += 1
    return i, depth


def _say(text: str) -> str:
    """User text quoted for an error message (the message is shown in the app)."""
    return '"' + sanitize(text, 40) + '"'


class _Invalid(Exception):
    """A semantic problem in one comparison; the parser adds the position."""

    def __init__(self, message: str, part: str, hint: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.part = part  # "key", "op" or "value"
        self.hint = hint


# Parser ---------------------------------------------------------------------------------
class _Parser:
    def __init__(self, text: str) -> None:
        self.s = text
        self.n = len(text)
        self.i = 0
        self.depth = 0
        self.compiled: dict[Compare, Predicate] = {}

    def fail(self, message: str, position: int, hint: str | None = None) -> QueryError:
        text = f"{message} at column {position + 1}"
        return QueryError(f"{text}; {hint}" if hint else text, position)

    def skip_space(self) -> None:
        while self.i < self.n and self.s[self.i].isspace():
            self.i += 1

    def at_end_of_group(self) -> bool:
        return self.i >= self.n or self.s[self.i] == ")"

    def at_keyword(self, word: str) -> bool:
        end = self.i + len(word)
        if self.s[self.i : end].lower() != word:
            return False
        # "or:x" compares a key named "or"; a space or parenthesis makes it the keyword.
        return end >= self.n or self.s[end].isspace() or self.s[end] in "()"

    def parse(self) -> Node | None:
        self.skip_space()
        if self.i >= self.n:
            return None
        node = self.parse_or()
        if self.i < self.n:
            raise self.fail('unexpected ")" with no "(" to close', self.i)
        return node

    def parse_or(self) -> Node:
        items = [self.parse_and()]
        while self.i < self.n and self.at_keyword("or"):
            self.i += 2
            self.skip_space()
            if self.at_end_of_group() or self.at_keyword("or") or self.at_keyword("and"):
                raise self.fail('expected a term after "or"', self.i)
            items.append(self.parse_and())
        return _join(Or, items)

    def parse_and(self) -> Node:
        items: list[Node] = []
        while True:
            self.skip_space()
            if self.at_end_of_group():
                break
            if self.at_keyword("or"):
                if not items:
                    raise self.fail('expected a term before "or"', self.i)
                break
            if self.at_keyword("and"):
                if not items:
                    raise self.fail('expected a term before "and"', self.i)
                self.i += 3
                self.skip_space()
                if self.at_end_of_group() or self.at_keyword("or") or self.at_keyword("and"):
                    raise self.fail('expected a term after "and"', self.i)
            items.append(self.parse_unary())
        return _join(And, items)

    def nest(self, position: int) -> None:
        self.depth += 1
        if self.depth > MAX_DEPTH:
            raise self.fail(f"the query nests more than {MAX_DEPTH} levels deep", position)

    def parse_unary(self) -> Node:
        start = self.i
        if self.s[start] == "-":
            self.i += 1
            if self.i >= self.n or self.s[self.i].isspace() or self.s[self.i] == ")":
                raise self.fail('expected a term right after "-"', self.i)
            self.nest(start)
            item = self.parse_unary()
            self.depth -= 1
            return Not(item)
        if self.at_keyword("not"):
            self.i += 3
            self.skip_space()
            if self.at_end_of_group() or self.at_keyword("or") or self.at_keyword("and"):
                raise self.fail('expected a term after "not"', self.i)
            self.nest(start)
            item = self.parse_unary()
            self.depth -= 1
            return Not(item)
        if self.s[start] == "(":
            return self.parse_group()
        return self.parse_term()

    def parse_group(self) -> Node:
        start = self.i
        self.nest(start)
        self.i += 1
        self.skip_space()
        if self.i < self.n and self.s[self.i] == ")":
            raise self.fail("empty parentheses", start)
        if self.i >= self.n:
            raise self.fail('missing ")" for the "("', start)
        node = self.parse_or()
        if self.i >= self.n:
            raise self.fail('missing ")" for the "("', start)
        self.i += 1
        self.depth -= 1
        return node

    def read_quoted(self) -> str:
        start = self.i
        quote = self.s[start]
        parts: list[str] = []
        i = start + 1
        while True:
            j = self.s.find(quote, i)
            if j < 0:
                raise self.fail(f"missing closing {quote} for the quote", start)
            parts.append(self.s[i:j])
            if j + 1 < self.n and self.s[j + 1] == quote:
                parts.append(quote)
                i = j + 2
                continue
            self.i = j + 1
            return "".join(parts)

    def expect_separator(self, what: str) -> None:
        if self.i < self.n and not (self.s[self.i].isspace() or self.s[self.i] == ")"):
            raise self.fail(f"expected a space after the quoted {what}", self.i)

    def parse_term(self) -> Node:
        start = self.i
        if self.s[start] in _QUOTES:
            text = self.read_quoted()
            after = self.i
            self.skip_space()
            if _is_op_at(self.s, self.i):
                if not text:
                    raise self.fail("empty key", start)
                return self.parse_compare(text, None, start)
            self.i = after
            self.expect_separator("text")
            return Word(text)
        end = _key_end(self.s, start)
        if end == start:
            op = "!=" if self.s.startswith("!=", start) else self.s[start]
            raise self.fail(f"expected a key before {_say(op)}", start)
        word = self.s[start:end]
        self.i = end
        if end < self.n and self.s[end] == "(":
            return self.parse_function(word, start)
        self.skip_space()
        if _is_op_at(self.s, self.i):
            return self.parse_compare(word, None, start)
        self.i = end
        return Word(word)

    def parse_function(self, name: str, start: int) -> Node:
        func = name.lower()
        if func not in FUNCTIONS:
            raise self.fail(
                f"unknown function {_say(name)}",
                start,
                f'functions are {", ".join(FUNCTIONS)} (put a space before "(" to group terms,'
                " or quote text that contains parentheses)",
            )
        self.i += 1
        self.skip_space()
        key_start = self.i
        if self.i < self.n and self.s[self.i] in _QUOTES:
            key = self.read_quoted()
        else:
            self.i = _key_end(self.s, self.i)
            key = self.s[key_start : self.i]
        if not key:
            raise self.fail(f"expected a metric name in {_say(func + '(')}", key_start)
        self.skip_space()
        if self.i >= self.n or self.s[self.i] != ")":
            raise self.fail(f'missing ")" after {_say(func + "(" + key)}', self.i)
        self.i += 1
        subject_end = self.i
        self.skip_space()
        if not _is_op_at(self.s, self.i):
            example = f"{func}({_show_key(key)})>0.5"
            raise self.fail(
                f"expected a comparison after {_say(func + '(' + key + ')')}",
                subject_end,
                f"e.g. {_say(example)}",
            )
        return self.parse_compare(key, func, start)

    def parse_compare(self, key: str, func: str | None, start: int) -> Node:
        op_start = self.i
        op = next(o for o in _OPS if self.s.startswith(o, op_start))
        self.i += len(op)
        op_end = self.i
        subject = _show_key(key) if func is None else f"{func}({_show_key(key)})"
        self.skip_space()
        value_start = self.i
        if self.at_end_of_group():
            raise self.fail(f"expected a value after {_say(subject + op)}", op_end)
        if self.s[self.i] in _QUOTES:
            value = self.read_quoted()
            self.expect_separator("value")
        else:
            if _is_op_at(self.s, self.i):
                raise self.fail(
                    f"unexpected {_say(self.s[self.i])} after {_say(subject + op)}",
                    self.i,
                    "quote the value if it is meant literally",
                )
            end, depth = _value_end(self.s, self.i)
            value = self.s[self.i : end]
            if depth:
                raise self.fail(
                    f"unbalanced parenthesis in the value {_say(value)}",
                    value_start,
                    "quote values that contain spaces or parentheses",
                )
            self.i = end
        node = Compare(key, op, value, func)
        try:
            self.compiled[node] = _compile_compare(node)
        except _Invalid as problem:
            where = {"key": start, "op": op_start}.get(problem.part, value_start)
            raise self.fail(problem.message, where, problem.hint) from None
        return node


# Values ---------------------------------------------------------------------------------
def _number(value: object) -> float | None:
    """The value as a float when it is a number or text spelling one; else ``None``."""
    if isinstance(value, float):
        return value
    if isinstance(value, str):
        text = value.strip()
        return float(text) if _NUMBER.fullmatch(text) else None
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        return None
    try:
        return float(value)
    except OverflowError:  # an int beyond float range
        return math.inf if isinstance(value, int) and value > 0 else -math.inf
    except (TypeError, ValueError):
        return None


def _text(value: object) -> str | None:
    """The value as text for equality, globs and regexes; ``None`` for mappings."""
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    if value is None:
        return "null"
    if isinstance(value, float):
        if math.isfinite(value) and value.is_integer() and abs(value) < 1e16:
            return str(int(value))
        return repr(float(value)).lower()  # float(): numpy's repr names its type
    if isinstance(value, Mapping):
        return None
    try:
        return str(value)
    except ValueError:  # an int too long to print
        return None


TextTest: TypeAlias = Callable[[str], bool]


def _linear(pattern: str, shown: str, *, whole: bool = False, dot_nl: bool = False) -> TextTest:
    """A case-insensitive RE2 test of text: a search, or a match of the ``whole`` text.

    RE2 runs in time linear in the text whatever the pattern, where Python's ``re``
    backtracks exponentially on patterns like ``^(a+)+$``. ``shown`` is what the user
    typed, for messages.

    Raises:
        _Invalid: RE2 cannot compile the pattern, or its program is too large.
    """
    options = re2.Options()
    options.case_sensitive = False
    options.dot_nl = dot_nl
    options.log_errors = False  # RE2 would write to the terminal the app draws on
    try:
        compiled = re2.compile(pattern, options)
    except (re2.error, ValueError) as error:  # ValueError: a lone surrogate
        raise _Invalid(
            f"invalid regular expression {_say(shown)}", "value", _regex_problem(pattern, error)
        ) from None
    size = compiled.programsize
    if size > MAX_REGEX_PROGRAM:
        raise _Invalid(
            f"pattern {_say(shown)} is too complex",
            "value",
            f"it compiles to {size:,} steps, the limit is {MAX_REGEX_PROGRAM:,}: "
            "use fewer or smaller {n,m} repetitions",
        )
    find = compiled.fullmatch if whole else compiled.search
    return lambda text: find(text) is not None


def _glob(pattern: str, *, whole: bool) -> TextTest:
    """``*`` and ``?`` wildcards over the ``whole`` text, or anywhere in it."""
    body = "".join(".*" if c == "*" else "." if c == "?" else re2.escape(c) for c in pattern)
    return _linear(body, pattern, whole=whole, dot_nl=True)


def _contains(text: str) -> TextTest:
    """Case-insensitive substring test."""
    folded = text.casefold()
    return lambda field: folded in field.casefold()


def _has_glob(text: str) -> bool:
    return "*" in text or "?" in text


def _text_test(pattern: str, glob: bool) -> Callable[[str], bool]:
    """A case-insensitive test of text: equality, or a whole-text glob."""
    if glob and _has_glob(pattern):
        return _glob(pattern, whole=True)
    folded = pattern.casefold()
    return lambda text: text.casefold() == folded


def _equals(pattern: str, glob: bool) -> Test:
    """Equality of one scalar value with ``pattern`` (``glob``: the ``:`` operator)."""
    if glob and pattern == "*":
        return lambda value: True
    target = _number(pattern) if _NUMBER.fullmatch(pattern.strip()) else None
    if target is not None and math.isnan(target):

        def is_nan(value: object) -> bool:
            number = _number(value)
            return number is not None and math.isnan(number)

        return is_nan
    text_test = _text_test(pattern, glob)

    def equals(value: object) -> bool:
        if target is not None:
            number = _number(value)
            if number is not None:
                return number == target
        text = _text(value)
        return text is not None and text_test(text)

    return equals


def _search(pattern: str) -> TextTest:
    """Case-insensitive substring test, or a regex search when ``pattern`` uses regex."""
    if not _REGEX_CHARS.intersection(pattern):
        return _contains(pattern)
    return _linear(_python_syntax(pattern), pattern)


def _python_syntax(pattern: str) -> str:
    """Python spellings RE2 reads otherwise: ``\\Z`` (end of text), ``{,n}`` (0 to n times)."""
    if "\\Z" not in pattern and "{," not in pattern:
        return pattern
    out: list[str] = []
    i, end = 0, len(pattern)
    in_class = False
    while i < end:
        char = pattern[i]
        if char == "\\":
            pair = pattern[i : i + 2]
            out.append("\\z" if pair == "\\Z" and not in_class else pair)
            i += 2
            continue
        if in_class:
            in_class = char != "]"
        elif char == "[":
            # "]" right after "[" or "[^" is a member, not the end of the class.
            start = i + 1 + (pattern[i + 1 : i + 2] == "^")
            start += pattern[start : start + 1] == "]"
            out.append(pattern[i:start])
            i, in_class = start, True
            continue
        elif (repeat := _UP_TO.match(pattern, i)) is not None:
            out.append(f"{{0,{repeat.group(1)}}}")
            i = repeat.end()
            continue
        out.append(char)
        i += 1
    return "".join(out)


def _regex_problem(pattern: str, error: Exception) -> str:
    """What is wrong with a pattern RE2 refused, in Python's words when Python agrees."""
    try:
        re.compile(pattern)
    except (re.error, OverflowError, RecursionError, ValueError) as python_error:
        return sanitize(getattr(python_error, "msg", None) or str(python_error), 120)
    detail = error.args[0] if error.args else error
    if isinstance(detail, bytes):
        detail = detail.decode("utf-8", "replace")
    return (
        f"{sanitize(str(detail), 120)}: backreferences and lookaround are not supported "
        "(filters use a linear-time regex engine, so no pattern can hang them)"
    )


def _any(test: Test) -> Test:
    """``test`` applied to a scalar, or to any element of a list or set."""

    def each(value: object) -> bool:
        if isinstance(value, _LISTS):
            return any(test(item) for item in value)
        return test(value)

    return each


def _value_test(op: str, pattern: str) -> Test:
    """The test one operator applies to a field's value (already known to exist)."""
    if op == "~":
        search = _search(pattern)

        def matches(value: object) -> bool:
            text = _text(value)
            return text is not None and search(text)

        return _any(matches)
    if op == ":":
        return _any(_equals(pattern, glob=True))
    equals = _any(_equals(pattern, glob=False))
    if op in ("=", "=="):
        return equals
    if op == "!=":

        def differs(value: object) -> bool:
            number = _number(value)
            return not (number is not None and math.isnan(number)) and not equals(value)

        return differs
    target = float(pattern.strip())  # _check_value made sure it is a number
    compare: Callable[[float], bool] = {
        "<": lambda x: x < target,
        "<=": lambda x: x <= target,
        ">": lambda x: x > target,
        ">=": lambda x: x >= target,
    }[op]

    def ordered(value: object) -> bool:
        number = _number(value)
        return number is not None and compare(number)  # NaN compares false

    return _any(ordered)


def _check_value(op: str, pattern: str, subject: str, key: str) -> None:
    """Reject values that cannot mean anything for ``op``."""
    stripped = pattern.strip()
    is_number = _NUMBER.fullmatch(stripped) is not None
    if is_number and op != ":" and op != "~" and math.isnan(float(stripped)):
        raise _Invalid(
            "cannot compare with NaN",
            "value",
            f"every comparison with NaN is false: {_say(subject + ':nan')} finds a NaN value,"
            f" {_say('nonfinite(' + key + ')>0')} runs that ever had a NaN or infinity",
        )
    if op in _ORDER_OPS and not is_number:
        raise _Invalid(
            f"expected a number after {_say(subject + op)}", "value", f"got {_say(pattern)}"
        )


# Fields ---------------------------------------------------------------------------------
def _variants(key: str) -> tuple[str, ...]:
    """The key as typed and with its separators swapped (``a.b`` also finds ``a/b``)."""
    out = [key]
    for other in (key.replace(".", "/"), key.replace("/", ".")):
        if other not in out:
            out.append(other)
    return tuple(out)


def _lookup(node: Mapping[Any, Any], key: str, variants: tuple[str, ...]) -> Any:
    """``key`` in a nested mapping: a literal key, or a path split at ``.`` or ``/``."""
    for variant in variants:
        if variant in node:
            return node[variant]
    if len(variants) == 1 and "." not in key and "/" not in key:
        return _MISSING
    for i, char in enumerate(key):
        if char == "." or char == "/":
            child = node.get(key[:i])
            if isinstance(child, Mapping):
                rest = key[i + 1 :]
                found = _lookup(child, rest, _variants(rest))
                if found is not _MISSING:
                    return found
    return _MISSING


def _metric(run: Any, variants: tuple[str, ...]) -> Any:
    """The last value of a scalar metric, else the latest text value."""
    series = run.series
    for name in variants:
        found = series.get(name)
        if found is not None:
            return found.last
    for name in variants:
        history = run.objects.get(name)
        if history:
            latest = history[-1][1]
            if isinstance(latest, str):
                return latest
    return _MISSING


def _special(key: str) -> Getter:
    attribute: Callable[[Any], Any] = {
        "name": lambda run: run.name,
        "path": lambda run: run.path or run.key,
        "key": lambda run: run.key,
        "status": lambda run: run.status,
        "format": lambda run: run.format,
        "group": lambda run: _MISSING if run.group is None else run.group,
        "step": lambda run: _MISSING if run.last_step is None else run.last_step,
    }[key]

    def get(run: Any, extra: Mapping[str, object] | None) -> Any:
        if extra is not None and key in extra:
            return extra[key]
        return attribute(run)

    return get


def _gpu(key: str) -> Getter:
    """``gpu_mem`` (bytes) or ``gpu_util`` (percent) of the run's latest GPU use."""

    def get(run: Any, extra: Mapping[str, object] | None) -> Any:
        if extra is not None and key in extra:
            return extra[key]
        use = getattr(run, "gpu", None)
        if use is None:
            return _MISSING
        if key == "gpu_mem":
            return float(use.memory)
        return _MISSING if use.utilization is None else use.utilization

    return get


def _size_value(op: str, pattern: str, key: str) -> str:
    """The bytes a size value names, as number text (``gpu_mem`` compares sizes)."""
    if op == ":" and pattern.strip() == "*":
        return pattern
    if op == "~":
        raise _Invalid(f'"~" cannot be used with {key}', "op", f"compare a size: {key}>20GB")
    size = parse_size(pattern)
    if size is None:
        raise _Invalid(
            f"{key} needs a size with a unit, e.g. {key}>20GB",
            "value",
            f"got {_say(pattern)}; units B, KB, MB, GB, TB (1024-based, also KiB...TiB)",
        )
    return repr(size)


def _tags(run: Any, extra: Mapping[str, object] | None) -> Any:
    tags: Any = run.tags
    if extra is not None:
        for name in ("tags", "tag"):
            if name in extra:
                tags = extra[name]
                break
    if isinstance(tags, Mapping):
        return tags
    if isinstance(tags, _LISTS):
        return {item: True for item in tags if isinstance(item, str)}
    return {tags: True} if isinstance(tags, str) else {}


def _rules(run: Any, extra: Mapping[str, object] | None) -> Any:
    if extra is None:
        return frozenset()
    names: set[object] = set()
    for name in ("rules", "rule"):
        value = extra.get(name)
        if isinstance(value, str):
            names.add(value)
        elif isinstance(value, (*_LISTS, Mapping)):
            names.update(value)
    return frozenset(names)


def _tag_test(op: str, pattern: str) -> Test:
    """``tag:NAME`` (a tag named NAME, or a tag valued NAME), ``tag:K=V``, ``tag~re``."""
    if op == "~":
        search = _search(pattern)

        def found(tags: Mapping[Any, Any]) -> bool:
            for name, value in tags.items():
                if value is not False and value is not None and search(str(name)):
                    return True
                text = None if isinstance(value, bool) else _text(value)
                if text is not None and search(text):
                    return True
            return False

        return found
    glob = op == ":"
    name_test = _text_test(pattern, glob)
    value_test = _any(_equals(pattern, glob))
    pair: tuple[Callable[[str], bool], Test] | None = None
    if "=" in pattern:
        left, right = pattern.split("=", 1)
        pair = (_text_test(left, glob), _any(_equals(right, glob)))

    def tagged(tags: Mapping[Any, Any]) -> bool:
        for name, value in tags.items():
            label = str(name)
            if value is not False and value is not None and name_test(label):
                return True
            if not isinstance(value, bool) and value_test(value):
                return True
            if pair is not None and pair[0](label) and pair[1](value):
                return True
        return False

    if op == "!=":
        return lambda tags: not tagged(tags)
    return tagged


def _field(key: str) -> tuple[Getter, str]:
    """The getter of a key and its kind: ``plain``, ``tags`` or ``rules``."""
    lowered = key.lower()
    if lowered in _SPECIAL:
        return _special(lowered), "plain"
    if lowered in _GPU_KEYS:
        return _gpu(lowered), "size" if lowered == "gpu_mem" else "plain"
    if lowered in _TAG_KEYS:
        return _tags, "tags"
    if lowered in _RULE_KEYS:
        return _rules, "rules"
    head, dot, rest = key.partition(".")
    space = _NAMESPACES.get(head.lower()) if dot else None
    if space is not None:
        if not rest:
            raise _Invalid(f"expected a name after {_say(key)}", "key")
        variants = _variants(rest)
        if space == "metric":
            return lambda run, extra: _metric(run, variants), "plain"
        if space == "tag":
            return lambda run, extra: _lookup(_tags(run, extra), rest, variants), "plain"
        if space == "config":
            return lambda run, extra: _lookup(run.config, rest, variants), "plain"
        return lambda run, extra: _lookup(run.properties, rest, variants), "plain"
    variants = _variants(key)
    in_meta = key not in _META_SKIP

    def get(run: Any, extra: Mapping[str, object] | None) -> Any:
        if extra is not None and key in extra:
            return extra[key]
        found = _lookup(run.config, key, variants)
        if found is _MISSING:
            found = _lookup(run.properties, key, variants)
            if found is _MISSING:
                found = _metric(run, variants)
                if found is _MISSING and in_meta:
                    value = run.meta.get(key, _MISSING)
                    found = _MISSING if isinstance(value, Mapping) else value
        return found

    return get, "plain"


def _summary(func: str, key: str) -> Getter:
    """A metric summary (``func`` of FUNCTIONS), or _MISSING when it has none."""
    names = list(_variants(key))
    head, dot, rest = key.partition(".")
    if dot and rest and _NAMESPACES.get(head.lower()) == "metric":
        names.extend(v for v in _variants(rest) if v not in names)
    read: Callable[[Any], Any] = {
        "last": lambda s: s.last,
        "min": lambda s: s.min if s.min_step is not None else _MISSING,
        "max": lambda s: s.max if s.max_step is not None else _MISSING,
        "count": lambda s: float(s.count),
        "nonfinite": lambda s: float(s.nonfinite),
    }[func]

    def get(run: Any, extra: Mapping[str, object] | None) -> Any:
        series = run.series
        for name in names:
            found = series.get(name)
            if found is not None:
                return read(found)
        return _MISSING

    return get


# Compiling ------------------------------------------------------------------------------
def _compile_compare(node: Compare) -> Predicate:
    if node.func is not None:
        if node.op == "~":
            raise _Invalid(
                f'"~" cannot be used with {node.func}()',
                "op",
                '"~" matches text and functions give numbers: use <, <=, >, >=, =, != or :',
            )
        getter = _summary(node.func, node.key)
        kind = "plain"
        subject = f"{node.func}({node.key})"
    else:
        getter, kind = _field(node.key)
        subject = node.key
    value = node.value
    if kind == "size":
        value, kind = _size_value(node.op, node.value, subject), "plain"
    if kind != "plain" and node.op in _ORDER_OPS:
        name = "tags" if kind == "tags" else "rules"
        raise _Invalid(
            f'"{node.op}" cannot be used with {name}', "op", f"use {node.key}:NAME to match one"
        )
    _check_value(node.op, value, subject, node.key)
    test = _tag_test(node.op, value) if kind == "tags" else _value_test(node.op, value)

    def compare(run: Any, extra: Mapping[str, object] | None) -> bool:
        value = getter(run, extra)
        return value is not _MISSING and test(value)

    return compare


def _compile_word(text: str) -> Predicate:
    test = _glob(text, whole=False) if _has_glob(text) else _contains(text)

    def word(run: Any, extra: Mapping[str, object] | None) -> bool:
        return test(run.name) or test(run.path or run.key)

    return word


def _compile(node: Node, cache: Mapping[Compare, Predicate]) -> Predicate:
    if isinstance(node, Compare):
        cached = cache.get(node)
        return cached if cached is not None else _compile_compare(node)
    if isinstance(node, Word):
        return _compile_word(node.text)
    if isinstance(node, Not):
        inner = _compile(node.item, cache)
        return lambda run, extra: not inner(run, extra)
    parts = tuple(_compile(item, cache) for item in node.items)
    if isinstance(node, And):

        def every(run: Any, extra: Mapping[str, object] | None) -> bool:
            for part in parts:  # noqa: SIM110 - no generator per run on the hot path
                if not part(run, extra):
                    return False
            return True

        return every

    def some(run: Any, extra: Mapping[str, object] | None) -> bool:
        for part in parts:  # noqa: SIM110 - no generator per run on the hot path
            if part(run, extra):
                return True
        return False

    return some


def _everything(run: Any, extra: Mapping[str, object] | None) -> bool:
    return True


class Query:
    """A parsed filter, compiled to closures so matching a run costs microseconds.

    Build one with :func:`parse_query`. ``str(query)`` is a canonical spelling that
    parses back to an equal query.

    Attributes:
        text: the text the query was parsed from.
        node: its syntax tree, or ``None`` for the empty query (which matches everything).
    """

    __slots__ = ("_predicate", "node", "text")

    def __init__(
        self,
        node: Node | None,
        text: str | None = None,
        *,
        _cache: Mapping[Compare, Predicate] | None = None,
    ) -> None:
        self.node = node
        self.text = str(self) if text is None else text
        try:
            self._predicate = _everything if node is None else _compile(node, _cache or {})
        except _Invalid as problem:
            raise QueryError(problem.message, 0) from None

    @property
    def empty(self) -> bool:
        """True when the query has no terms (every run matches)."""
        return self.node is None

    def matches(self, run: Any, extra: Mapping[str, object] | None = None) -> bool:
        """Whether ``run`` passes the filter.

        Args:
            run: a :class:`tui.core.store.Run` (or anything with the same attributes).
            extra: fields the app computed, overriding or adding keys: e.g.
                ``{"status": "stalled", "rules": {"diverged"}}`` (``rules``: the names of
                the rules triggered for this run).

        Returns:
            True when every term matches. Never raises for any run data.
        """
        return self._predicate(run, extra)

    def unknown_keys(self, runs: Iterable[Any]) -> list[str]:
        """The keys the query compares that no run in ``runs`` has, in query order.

        A typo in a key (``lrr<0.1``) is valid syntax that quietly matches nothing; the
        app names such keys. Fields every run has (``name``, ``status``, ``tag``,
        ``rule`` ...) are never unknown.

        Args:
            runs: the runs the filter is applied to.

        Returns:
            Each unknown key once, as typed.
        """
        found: list[str] = []
        pending: list[Node] = [] if self.node is None else [self.node]
        compares: list[Compare] = []
        while pending:
            node = pending.pop()
            if isinstance(node, Compare):
                compares.append(node)
            elif isinstance(node, Not):
                pending.append(node.item)
            elif isinstance(node, (And, Or)):
                pending.extend(reversed(node.items))
        every = list(runs)
        for node in compares:
            key = node.key
            if key in found or key.lower() in _SPECIAL | _GPU_KEYS | _TAG_KEYS | _RULE_KEYS:
                continue
            get = _summary("count", key) if node.func is not None else _field(key)[0]
            if not any(get(run, None) is not _MISSING for run in every):
                found.append(key)
        return found

    def __str__(self) -> str:
        return "" if self.node is None else _show(self.node)

    def __repr__(self) -> str:
        return f"Query({str(self)!r})"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Query) and other.node == self.node

    def __hash__(self) -> int:
        return hash(self.node)


def parse_query(text: str) -> Query:
    """Parse filter text (see the module docstring for the language).

    Args:
        text: what the user typed; empty or blank text gives a query matching every run.

    Returns:
        The compiled query.

    Raises:
        QueryError: the text is malformed; the message names the problem and its column.
    """
    parser = _Parser(text)
    node = parser.parse()
    return Query(node, text, _cache=parser.compiled)
