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

The package: :mod:`.syntax` (the tree and the parser), :mod:`.patterns` (text tests on
RE2), :mod:`.fields` (where keys are found in a run), :mod:`.compiler` (a tree to one
predicate) and :mod:`.query` (:class:`Query`).
"""

from __future__ import annotations

from tui.core.query.patterns import MAX_REGEX_PROGRAM
from tui.core.query.query import Query, parse_query
from tui.core.query.syntax import (
    FUNCTIONS,
    MAX_DEPTH,
    And,
    Compare,
    Node,
    Not,
    Or,
    QueryError,
    Word,
)

__all__ = [
    "FUNCTIONS",
    "MAX_DEPTH",
    "MAX_REGEX_PROGRAM",
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
