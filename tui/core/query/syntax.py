"""The query language's syntax: its tree, the canonical spelling of a tree (which parses
back to the same tree), and the parser, whose errors name their column."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, TypeAlias

from tui.core.sanitize import sanitize

if TYPE_CHECKING:
    from tui.core.query.compiler import Predicate


FUNCTIONS = ("last", "min", "max", "count", "nonfinite")
"""Metric summary functions usable as ``func(metric)``."""

MAX_DEPTH = 50
"""Deepest nesting of parentheses and negations accepted (keeps recursion bounded)."""

_OPS = ("<=", ">=", "==", "!=", "<", ">", "=", ":", "~")
_OP_START = frozenset("<>=:~")  # "!" starts an operator only as "!="
_QUOTES = frozenset("'\"")
_KEYWORDS = frozenset({"or", "and", "not"})


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


@dataclass(frozen=True, slots=True)
class Word:
    """A bare word: the run's name or path contains it (``*``/``?`` are wildcards)."""

    text: str

    def __str__(self) -> str:
        return show(self)


@dataclass(frozen=True, slots=True)
class Compare:
    """``key op value``, or ``func(key) op value`` when ``func`` is set."""

    key: str
    op: str
    value: str
    func: str | None = None

    def __str__(self) -> str:
        return show(self)


@dataclass(frozen=True, slots=True)
class Not:
    """The negation of a term."""

    item: Node

    def __str__(self) -> str:
        return show(self)


@dataclass(frozen=True, slots=True)
class And:
    """Every item matches (two or more items, none of them an ``And``)."""

    items: tuple[Node, ...]

    def __str__(self) -> str:
        return show(self)


@dataclass(frozen=True, slots=True)
class Or:
    """Some item matches (two or more items, none of them an ``Or``)."""

    items: tuple[Node, ...]

    def __str__(self) -> str:
        return show(self)


Node: TypeAlias = "Word | Compare | Not | And | Or"


def _join(kind: type[And] | type[Or], items: list[Node]) -> Node:
    """One node for ``items``, flattening nested nodes of the same kind."""
    flat: list[Node] = []
    for item in items:
        flat.extend(item.items if isinstance(item, kind) else (item,))
    return flat[0] if len(flat) == 1 else kind(tuple(flat))


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


def show(node: Node, inside: type | None = None) -> str:
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
        return "-" + show(node.item, Not)
    if isinstance(node, And):
        text = " ".join(show(item, And) for item in node.items)
        return f"({text})" if inside is Not else text
    text = " or ".join(show(item, Or) for item in node.items)
    return f"({text})" if inside in (Not, And) else text


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


def say(text: str) -> str:
    """User text quoted for an error message (the message is shown in the app)."""
    return '"' + sanitize(text, 40) + '"'


class Invalid(Exception):
    """A semantic problem in one comparison; the parser adds the position."""

    def __init__(self, message: str, part: str, hint: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.part = part  # "key", "op" or "value"
        self.hint = hint


class Parser:
    """Reads query text into a syntax tree, checking each comparison as it is read (so a
    problem is reported at its column); what each check compiled is kept in ``compiled``."""

    def __init__(self, text: str, check: Callable[[Compare], Predicate]) -> None:
        self.check = check  # raises Invalid for a comparison that cannot mean anything
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
            raise self.fail(f"expected a key before {say(op)}", start)
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
                f"unknown function {say(name)}",
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
            raise self.fail(f"expected a metric name in {say(func + '(')}", key_start)
        self.skip_space()
        if self.i >= self.n or self.s[self.i] != ")":
            raise self.fail(f'missing ")" after {say(func + "(" + key)}', self.i)
        self.i += 1
        subject_end = self.i
        self.skip_space()
        if not _is_op_at(self.s, self.i):
            example = f"{func}({_show_key(key)})>0.5"
            raise self.fail(
                f"expected a comparison after {say(func + '(' + key + ')')}",
                subject_end,
                f"e.g. {say(example)}",
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
            raise self.fail(f"expected a value after {say(subject + op)}", op_end)
        if self.s[self.i] in _QUOTES:
            value = self.read_quoted()
            self.expect_separator("value")
        else:
            if _is_op_at(self.s, self.i):
                raise self.fail(
                    f"unexpected {say(self.s[self.i])} after {say(subject + op)}",
                    self.i,
                    "quote the value if it is meant literally",
                )
            end, depth = _value_end(self.s, self.i)
            value = self.s[self.i : end]
            if depth:
                raise self.fail(
                    f"unbalanced parenthesis in the value {say(value)}",
                    value_start,
                    "quote values that contain spaces or parentheses",
                )
            self.i = end
        node = Compare(key, op, value, func)
        try:
            self.compiled[node] = self.check(node)
        except Invalid as problem:
            where = {"key": start, "op": op_start}.get(problem.part, value_start)
            raise self.fail(problem.message, where, problem.hint) from None
        return node
