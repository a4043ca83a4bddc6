"""A confusion matrix drawn as a text heatmap that reads in 16 colours and under NO_COLOR.

Each cell shows its count (or row percentage) on a background from a four-step scale of
ANSI colours, led by a shade glyph (``░▒▓█``) so the scale still reads without colour.
Labels come from runs and are drawn as plain ``Text``, never markup. The caption, the axis
hint and the column header stay put while the rows scroll; row labels stay put while the
cells scroll sideways.
"""

from __future__ import annotations

import math

from rich.cells import cell_len, set_cell_size
from rich.segment import Segment
from rich.style import Style
from rich.text import Text
from textual.geometry import Size
from textual.reactive import reactive
from textual.scroll_view import ScrollView
from textual.strip import Strip

from tui.core.sanitize import sanitize
from tui.core.shapes import Matrix

MAX_CLASSES = 60
"""Rows and columns beyond this many are left out (with a note): a bigger grid is not read."""

SHADES = ("░", "▒", "▓", "█")
"""Glyph of each scale step, lightest first."""

# Background and foreground of each step: dark blue to yellow, like viridis, all from the
# 16 ANSI colours so a 16-colour terminal shows exactly these.
_LEVEL_STYLES = (
    Style(bgcolor="blue", color="bright_white"),
    Style(bgcolor="cyan", color="black"),
    Style(bgcolor="green", color="black"),
    Style(bgcolor="bright_yellow", color="black"),
)
_ZERO = Style(dim=True)
_ODD = Style(color="red", bold=True)
_LABEL = Style(bold=True)
_EXTRA_LABEL = Style(italic=True, color="magenta")
_HINT = Style(dim=True)
_SEPARATOR = Style(dim=True)
_ROW_LABEL_MAX = 20
_CELL_LABEL_MAX = 12


def _fit(text: str, width: int, *, right: bool = False) -> str:
    """Cut or pad ``text`` to exactly ``width`` cells, marking a cut with ``…``."""
    if width <= 0:
        return ""
    if cell_len(text) > width:
        return set_cell_size(text, width - 1) + "…"
    pad = " " * (width - cell_len(text))
    return pad + text if right else text + pad


def _count(value: float) -> str:
    """A count in at most 5 cells: ``12345``, ``123k``, ``1.2M``; non-integers to 3 digits."""
    if math.isnan(value):
        return "nan"
    if math.isinf(value):
        return "inf" if value > 0 else "-inf"
    magnitude = abs(value)
    if value == int(value) and magnitude < 100_000:
        return str(int(value))
    for limit, suffix in ((1e6, "k"), (1e9, "M"), (1e12, "G")):
        if magnitude < limit:
            scaled = value / (limit / 1000)
            return f"{scaled:.0f}{suffix}" if abs(scaled) >= 10 else f"{scaled:.1f}{suffix}"
    if magnitude >= 1e12:
        return f"{value:.0e}"
    return f"{value:.3g}"


def _percent(fraction: float) -> str:
    """A row share in at most 5 cells: ``100%``, ``9.5%``, ``<0.1%``, ``0``."""
    if not math.isfinite(fraction):
        return "–"
    pct = fraction * 100.0
    if pct == 0.0:
        return "0"
    if pct < 0.05:
        return "<0.1%"
    return f"{pct:.0f}%" if pct >= 9.95 else f"{pct:.1f}%"


def _level(fraction: float) -> int:
    """Scale step 0-3 of a share in ``(0, 1]``; -1 for zero, negative or non-finite."""
    if not math.isfinite(fraction) or fraction <= 0.0:
        return -1
    return min(3, max(0, math.ceil(fraction * 4) - 1))


class ConfusionHeatmap(ScrollView):
    """A confusion matrix heatmap: labels, counts or row percentages, scale and legend.

    Set :attr:`matrix` (a :class:`tui.core.shapes.Matrix`), :attr:`normalized` and
    :attr:`caption`; the widget lays itself out again only when one of them or its width
    changes.
    """

    DEFAULT_CSS = """
    ConfusionHeatmap {
        width: 1fr;
        height: 1fr;
    }
    """

    matrix: reactive[Matrix | None] = reactive(None)
    """The matrix to show; ``None`` shows a placeholder."""
    normalized: reactive[bool] = reactive(False)
    """Show each cell as a percentage of its row (actual class) instead of a count."""
    caption: reactive[str] = reactive("")
    """A line above the matrix, e.g. ``step 1200 · 3 of 12`` (plain text)."""
    empty_message: reactive[str] = reactive("no confusion matrix")
    """Text shown when :attr:`matrix` is ``None`` or empty."""

    def __init__(
        self,
        matrix: Matrix | None = None,
        *,
        name: str | None = None,
        id: str | None = None,
        classes: str | None = None,
        disabled: bool = False,
    ) -> None:
        """Create the heatmap, optionally with a matrix already set."""
        super().__init__(name=name, id=id, classes=classes, disabled=disabled)
        self._top: list[tuple[Strip, Strip | None]] = []
        self._body: list[tuple[Strip, Strip | None]] = []
        # Width the lines were laid out for; None when an input changed since.
        self._laid_out_for: int | None = None
        self.set_reactive(ConfusionHeatmap.matrix, matrix)

    def watch_matrix(self) -> None:
        self._relayout()

    def watch_normalized(self) -> None:
        self._relayout()

    def watch_caption(self) -> None:
        self._relayout()

    def watch_empty_message(self) -> None:
        self._relayout()

    def on_resize(self) -> None:
        self._relayout()

    def lines(self) -> list[str]:
        """All lines of the heatmap as plain text, unscrolled (for tests and copying)."""
        self._ensure_layout()
        return [
            head.text + (body.text if body is not None else "")
            for head, body in self._top + self._body
        ]

    def _relayout(self) -> None:
        self._laid_out_for = None
        if self.is_mounted:
            self._ensure_layout()
        self.refresh()

    def _ensure_layout(self) -> None:
        if self._laid_out_for == self.size.width:
            return
        self._laid_out_for = self.size.width
        top, body = self._build()
        self._top, self._body = (
            [self._strips(h, b) for h, b in top],
            [self._strips(h, b) for h, b in body],
        )
        widest = max(
            (
                head.cell_length + (rest.cell_length if rest else 0)
                for head, rest in self._top + self._body
            ),
            default=0,
        )
        self.virtual_size = Size(widest, len(self._top) + len(self._body))

    def _strips(self, head: Text, body: Text | None) -> tuple[Strip, Strip | None]:
        console = self.app.console

        def strip(text: Text) -> Strip:
            # Text.render() leaves out the Text's own style; it is the base of every span.
            segments = text.render(console, end="")
            if text.style:
                segments = Segment.apply_style(segments, console.get_style(text.style))
            return Strip(list(segments), text.cell_len)

        return strip(head), (None if body is None else strip(body))

    def _build(self) -> tuple[list[tuple[Text, Text | None]], list[tuple[Text, Text | None]]]:
        """Lay out the matrix as (fixed head, scrolling cells) pairs of lines.

        Lines whose second part is ``None`` (caption, notes, legend) do not split.
        """
        top: list[tuple[Text, Text | None]] = []
        if self.caption:
            top.append((Text(sanitize(self.caption, 200), style="bold", no_wrap=True), None))
        matrix = self.matrix
        if matrix is None or not matrix.rows or not matrix.cols or not matrix.values:
            return top, [(Text(self.empty_message, style=_HINT), None)]
        # Labels from as_matrix() are sanitized already; a Matrix built elsewhere may not be.
        rows = [sanitize(str(label), 80) for label in matrix.rows[:MAX_CLASSES]]
        cols = [sanitize(str(label), 80) for label in matrix.cols[:MAX_CLASSES]]
        n_rows, n_cols = len(rows), len(cols)
        grid = [[self._cell(matrix.values, r, c) for c in range(n_cols)] for r in range(n_rows)]
        extra_row = matrix.fp_fn and len(matrix.rows) <= MAX_CLASSES
        extra_col = matrix.fp_fn and len(matrix.cols) <= MAX_CLASSES

        shown, fractions = self._shares(grid, (bool(extra_row), bool(extra_col)))
        number_width = max((len(s) for line in shown for s in line), default=1)
        label_width = min(_ROW_LABEL_MAX, max((cell_len(r) for r in rows), default=1))
        label_width = max(label_width, 6)
        head_width = label_width + 1
        # Cells widen to show more of the column labels while the grid still fits.
        room = max(0, self.size.width - head_width - (2 if extra_col else 0))
        longest = max((cell_len(c) for c in cols), default=1)
        cell_width = max(number_width + 2, min(longest + 1, _CELL_LABEL_MAX, room // n_cols))

        hint = "rows: actual · columns: predicted"
        if self.normalized:
            hint += " · % of row"
        top.append((Text(hint, style=_HINT, no_wrap=True), None))
        header = Text(no_wrap=True)
        for c, label in enumerate(cols):
            if extra_col and c == n_cols - 1:
                header.append(" │", _SEPARATOR)
            style = _EXTRA_LABEL if extra_col and c == n_cols - 1 else _LABEL
            header.append(_fit(label, cell_width - 1, right=True) + " ", style)
        top.append((Text(" " * head_width), header))

        body: list[tuple[Text, Text | None]] = []
        for r, label in enumerate(rows):
            is_extra_row = extra_row and r == n_rows - 1
            if is_extra_row:
                rule = Text("─" * (cell_width * n_cols + (2 if extra_col else 0)), _SEPARATOR)
                body.append((Text("─" * head_width, _SEPARATOR), rule))
            head = Text(no_wrap=True)
            head.append(_fit(label, label_width), _EXTRA_LABEL if is_extra_row else _LABEL)
            head.append(" ")
            line = Text(no_wrap=True)
            for c in range(n_cols):
                if extra_col and c == n_cols - 1:
                    line.append(" │", _SEPARATOR)
                line.append_text(self._cell_text(shown[r][c], fractions[r][c], cell_width, r == c))
            body.append((head, line))

        notes = []
        if len(matrix.rows) > MAX_CLASSES or len(matrix.cols) > MAX_CLASSES:
            notes.append(
                f"showing {n_rows} of {len(matrix.rows)} rows, {n_cols} of {len(matrix.cols)} columns"
            )
        body.append((Text(""), None))
        body.append((self._legend(grid), None))
        body.extend((Text(note, style=_HINT), None) for note in notes)
        return top, body

    @staticmethod
    def _cell(values: tuple[tuple[float, ...], ...], r: int, c: int) -> float:
        try:
            return float(values[r][c])
        except (IndexError, TypeError, ValueError):
            return 0.0

    def _shares(
        self, grid: list[list[float]], margins: tuple[bool, bool] = (False, False)
    ) -> tuple[list[list[str]], list[list[float]]]:
        """Return each cell's text and its share of the scale (row sum or matrix max).

        ``margins`` says whether the last row holds false positives and the last column
        false negatives: a row's percentages are of its true total (the classes only, so a
        cat found 48 times out of 50 reads 96 %), and the margins keep their counts.
        """
        extra_row, extra_col = margins
        if self.normalized:
            shown, fractions = [], []
            for r, line in enumerate(grid):
                if extra_row and r == len(grid) - 1:
                    shown.append([_count(v) for v in line])
                    fractions.append([0.0] * len(line))
                    continue
                classes = line[:-1] if extra_col else line
                total = math.fsum(v for v in classes if math.isfinite(v) and v > 0)
                shares = [v / total if total > 0 and math.isfinite(v) else math.nan for v in line]
                texts = [_percent(x) for x in shares]
                if extra_col:
                    texts[-1], shares[-1] = _count(line[-1]), 0.0
                shown.append(texts)
                fractions.append(shares)
            return shown, fractions
        peak = max((v for line in grid for v in line if math.isfinite(v)), default=0.0)
        shown = [[_count(v) for v in line] for line in grid]
        fractions = [[v / peak if peak > 0 else 0.0 for v in line] for line in grid]
        return shown, fractions

    @staticmethod
    def _cell_text(shown: str, fraction: float, width: int, diagonal: bool) -> Text:
        level = _level(fraction)
        if shown in ("nan", "inf", "-inf"):
            return Text(_fit(shown, width - 1, right=True) + " ", _ODD)
        number = _fit(shown, width - 2, right=True)
        if level < 0:
            return Text(" " + number + " ", _ZERO)
        style = _LEVEL_STYLES[level] + Style(bold=diagonal)
        return Text(SHADES[level] + number + " ", style)

    def _legend(self, grid: list[list[float]]) -> Text:
        legend = Text("scale ", style=_HINT, no_wrap=True)
        bounds = ("1–25%", "26–50%", "51–75%", "76–100%")
        for level, bound in enumerate(bounds):
            legend.append(f"{SHADES[level]} {bound} ", _LEVEL_STYLES[level])
            legend.append(" ")
        if self.normalized:
            legend.append("of the row", _HINT)
        else:
            peak = max((v for line in grid for v in line if math.isfinite(v)), default=0.0)
            legend.append(f"of the largest cell ({_count(peak)})", _HINT)
        return legend

    def render_line(self, y: int) -> Strip:
        """Draw screen line ``y``: fixed lines on top, then the scrolled rows."""
        self._ensure_layout()
        scroll_x, scroll_y = self.scroll_offset
        width = self.size.width
        base = self.rich_style
        if y < len(self._top):
            line = self._top[y]
        else:
            index = y - len(self._top) + scroll_y
            if index >= len(self._body):
                return Strip.blank(width, base)
            line = self._body[index]
        head, body = line
        # The widget's own colours are the base of every segment (NO_COLOR's filter also
        # needs a style on each one).
        if body is None:
            return head.crop_extend(0, width, base).apply_style(base)
        head_width = head.cell_length
        body_part = body.crop_extend(scroll_x, scroll_x + max(0, width - head_width), base)
        return Strip.join([head, body_part]).crop_extend(0, width, base).apply_style(base)
