"""A filter: parsed once (:func:`parse_query`), then matched against many runs."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from tui.core.query.compiler import Predicate, compile_compare, compile_node
from tui.core.query.fields import BUILT_IN_KEYS, MISSING, field_getter, summary_getter
from tui.core.query.syntax import And, Compare, Invalid, Node, Not, Or, Parser, QueryError, show


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
            self._predicate = _everything if node is None else compile_node(node, _cache or {})
        except Invalid as problem:
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
            if key in found or key.lower() in BUILT_IN_KEYS:
                continue
            get = summary_getter("count", key) if node.func is not None else field_getter(key)[0]
            if not any(get(run, None) is not MISSING for run in every):
                found.append(key)
        return found

    def __str__(self) -> str:
        return "" if self.node is None else show(self.node)

    def __repr__(self) -> str:
        return f"Query({str(self)!r})"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Query) and other.node == self.node

    def __hash__(self) -> int:
        return hash(self.node)


def parse_query(text: str) -> Query:
    """Parse filter text (the language is described in :mod:`tui.core.query`).

    Args:
        text: what the user typed; empty or blank text gives a query matching every run.

    Returns:
        The compiled query.

    Raises:
        QueryError: the text is malformed; the message names the problem and its column.
    """
    parser = Parser(text, compile_compare)
    node = parser.parse()
    return Query(node, text, _cache=parser.compiled)
