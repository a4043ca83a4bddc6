"""Classify one record value into the shapes of DESIGN.md §3.

A metric value is a scalar, a text, a vector, a confusion matrix, a bar chart, a line with
its own x, or a table. The classification is pure and total: anything it cannot place is
reported as ``None`` so the caller can note it in the run's health.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, TypeGuard

from tui.core.sanitize import sanitize


def is_number(value: object) -> TypeGuard[int | float]:
    """True for a scalar data point: int or float, NaN and infinities included, bool not.

    (``True`` is an ``int`` in Python.) For "a real, finite number", see
    :func:`tui.core.values.real_number`.
    """
    kind = type(value)
    return kind is float or kind is int


@dataclass(frozen=True, slots=True)
class Matrix:
    """A confusion matrix: ``values[row][col]`` counts actual ``rows[row]`` predicted ``cols[col]``.

    ``fp_fn`` is true when the last row holds false positives and the last column false
    negatives (Picsellia's (N+1)x(N+1) HEATMAP); the labels then end with ``"FP"``/``"FN"``.
    """

    rows: tuple[str, ...]
    cols: tuple[str, ...]
    values: tuple[tuple[float, ...], ...]
    fp_fn: bool = False


@dataclass(frozen=True, slots=True)
class Bar:
    """A bar chart (Picsellia BAR): one value per label."""

    x: tuple[str, ...]
    y: tuple[float, ...]


@dataclass(frozen=True, slots=True)
class Line:
    """A line with its own x values (Picsellia LINE)."""

    x: tuple[float, ...]
    y: tuple[float, ...]


@dataclass(frozen=True, slots=True)
class Table:
    """Named equal-length columns (Azure ``log_table``); numeric columns chart as lines."""

    columns: tuple[str, ...]
    rows: tuple[tuple[object, ...], ...]


Shape = Matrix | Bar | Line | Table | tuple[float, ...] | str


def _label(value: object) -> str:
    return sanitize(str(value), 80)


def _numbers(items: list[Any]) -> tuple[float, ...] | None:
    if all(is_number(v) for v in items):
        return tuple(float(v) for v in items)
    return None


def _square_labels(n: int) -> tuple[str, ...]:
    return tuple(str(i) for i in range(n))


def as_matrix(value: object) -> Matrix | None:
    """Recognise the four confusion-matrix shapes, or return ``None``."""
    if isinstance(value, dict):
        cats, vals = value.get("categories"), value.get("values")
        if not (isinstance(cats, list) and isinstance(vals, list) and cats and vals):
            return None
        rows = [_numbers(r) if isinstance(r, list) else None for r in vals]
        if any(r is None for r in rows):
            return None
        n = len(cats)
        labels = tuple(_label(c) for c in cats)
        grid = tuple(r for r in rows if r is not None)
        if len(grid) == n and all(len(r) == n for r in grid):
            return Matrix(labels, labels, grid)
        if len(grid) == n + 1 and all(len(r) == n + 1 for r in grid):
            return Matrix((*labels, "FP"), (*labels, "FN"), grid, fp_fn=True)
        return None
    if not isinstance(value, list) or not value or not all(isinstance(r, list) for r in value):
        return None
    first = value[0]
    if all(len(r) == 3 and isinstance(r[0], str) and isinstance(r[1], str) for r in value):
        if not all(is_number(r[2]) for r in value):
            return None
        row_labels: dict[str, None] = {}
        col_labels: dict[str, None] = {}
        cells: dict[tuple[str, str], float] = {}
        for x_label, y_label, v in value:
            row_labels.setdefault(x_label)
            col_labels.setdefault(y_label)
            cells[(x_label, y_label)] = float(v)
        rs, cs = list(row_labels), list(col_labels)
        return Matrix(
            tuple(_label(r) for r in rs),
            tuple(_label(c) for c in cs),
            tuple(tuple(cells.get((r, c), 0.0) for c in cs) for r in rs),
        )
    header: tuple[str, ...] | None = None
    body = value
    if first and all(isinstance(c, str) for c in first):
        header = tuple(_label(c) for c in first)
        body = value[1:]
    grid_rows = [_numbers(r) for r in body]
    if not grid_rows or any(r is None for r in grid_rows):
        return None
    grid = tuple(r for r in grid_rows if r is not None)
    n = len(grid)
    if any(len(r) != n for r in grid) or (header is not None and len(header) != n):
        return None
    labels = header or _square_labels(n)
    return Matrix(labels, labels, grid)


def classify(value: object) -> Shape | None:
    """Return the non-scalar shape of ``value`` (scalars are handled by the fast path)."""
    if isinstance(value, str):
        return sanitize(value)
    if isinstance(value, list):
        if not value:
            return None
        numbers = _numbers(value)
        if numbers is not None:
            return numbers
        return as_matrix(value)
    if isinstance(value, dict):
        matrix = as_matrix(value)
        if matrix is not None:
            return matrix
        keys = set(value)
        if keys == {"x", "y"} and isinstance(value["x"], list) and isinstance(value["y"], list):
            ys = _numbers(value["y"])
            if ys is not None and len(ys) == len(value["x"]):
                return Bar(tuple(_label(x) for x in value["x"]), ys)
        if keys == {"steps", "values"}:
            xs, ys = value["steps"], value["values"]
            if isinstance(xs, list) and isinstance(ys, list):
                xn, yn = _numbers(xs), _numbers(ys)
                if xn is not None and yn is not None and len(xn) == len(yn):
                    return Line(xn, yn)
        columns = list(value.values())
        if columns and all(isinstance(c, list) for c in columns):
            length = len(columns[0])
            if length and all(len(c) == length for c in columns):
                cells = tuple(tuple(_cell(c[i]) for c in columns) for i in range(length))
                return Table(tuple(_label(k) for k in value), cells)
    return None


def _cell(value: object) -> object:
    if is_number(value):
        return float(value)
    return sanitize(str(value), 200)


def flatten(prefix: str, value: dict[str, Any], out: dict[str, Any], depth: int = 0) -> None:
    """Flatten nested objects of numbers into ``a/b/c`` keys; other shapes stay whole.

    An object that is itself a recognised shape (matrix, bar, line, table) is kept as one
    value. Depth is capped so hostile nesting costs nothing.
    """
    if depth > 8:
        out[prefix] = value
        return
    for key, sub in value.items():
        name = f"{prefix}/{key}"
        if isinstance(sub, dict) and classify(sub) is None:
            flatten(name, sub, out, depth + 1)
        else:
            out[name] = sub


def describe(shape: object) -> str:
    """A few words saying what a non-scalar value is (``confusion matrix 3x3``)."""
    if isinstance(shape, str):
        return "text"
    if isinstance(shape, Matrix):
        return f"confusion matrix {len(shape.rows)}x{len(shape.cols)}"
    if isinstance(shape, Bar):
        return f"bar chart of {len(shape.x)}"
    if isinstance(shape, Line):
        return f"line of {len(shape.x)} points"
    if isinstance(shape, Table):
        return f"table {len(shape.rows)}x{len(shape.columns)}"
    if isinstance(shape, tuple):
        return f"vector of {len(shape)}"
    return type(shape).__name__


def format_number(value: float, digits: int = 4) -> str:
    """Format a metric compactly: ``nan``/``inf`` spelled out, otherwise ``digits`` significant."""
    if math.isnan(value):
        return "nan"
    if math.isinf(value):
        return "inf" if value > 0 else "-inf"
    if value == int(value) and abs(value) < 1e15:
        return str(int(value))
    return f"{value:.{digits}g}"
