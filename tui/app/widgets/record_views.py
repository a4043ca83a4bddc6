"""``ValuesView``: every non-matrix value shape a run logs, plus its media files.

DESIGN.md §3 shapes, one block per metric: text values with their history, vectors as
bars of the latest, bar charts, lines with their own x, tables (numeric columns also as a
chart when there are enough rows); a summary of the scalar metrics on top and the files
under the run's media directory at the bottom, where highlighting an image previews it
(``ImagePreview``). Everything from the run is drawn as ``Text``; nothing is parsed as
markup.
"""

from __future__ import annotations

import math
import os
from collections.abc import Iterable, Sequence
from pathlib import Path

from rich.table import Table as RichTable
from rich.text import Text
from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical, VerticalScroll
from textual.events import Click
from textual.geometry import Region
from textual.message import Message
from textual.widget import Widget
from textual.widgets import Static
from textual.worker import get_current_worker

from tui.app.widgets.image_preview import NO_PILLOW, ImagePreview, human_size, pillow_available
from tui.app.widgets.metric_chart import MetricChart, Trace, color_for
from tui.core.sanitize import sanitize
from tui.core.shapes import Bar, Line, Matrix, Shape, Table, describe, format_number
from tui.core.store import Run

BAR_ITEMS = 40
"""Vectors up to this long are drawn as labelled bars; longer ones as a line."""

TABLE_ROWS = 50
"""Rows of a logged table shown as text (the chart covers all of them)."""

TABLE_CHART_ROWS = 5
"""Tables with at least this many rows also chart their numeric columns."""

TEXT_HISTORY = 8
"""Changes of a text value listed under its latest value."""

MEDIA_DIRS = {"tracktui": "media", "mlflow": "artifacts"}
"""Where each format keeps the files it lists as media, relative to the run's directory."""

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".gif", ".bmp", ".webp", ".svg", ".tif", ".tiff")

_BAR_WIDTH = 40


def _num(value: float) -> Text:
    style = "bold red" if not math.isfinite(value) else ""
    return Text(format_number(value), style=style)


def bars(labels: Sequence[str], values: Sequence[float], width: int = _BAR_WIDTH) -> Text:
    """Horizontal bars, one line per value: label, bar scaled to the largest magnitude, value.

    Non-finite values get no bar and a red value; negative ones a bar of another colour.
    """
    finite = [abs(v) for v in values if math.isfinite(v)]
    peak = max(finite, default=0.0)
    label_width = min(24, max((len(label) for label in labels), default=1))
    text = Text(no_wrap=True, overflow="ellipsis")
    for label, value in zip(labels, values):
        text.append(sanitize(label, 80)[:label_width].rjust(label_width) + " ", style="bold")
        if math.isfinite(value) and peak > 0:
            eighths = round(abs(value) / peak * width * 8)
            bar = "█" * (eighths // 8) + (" ▏▎▍▌▋▊▉"[eighths % 8] if eighths % 8 else "")
            text.append(bar.ljust(width + 1), style="magenta" if value < 0 else "cyan")
        else:
            text.append(" " * (width + 1))
        text.append_text(_num(value))
        text.append("\n")
    text.rstrip()
    return text


def table_text(table: Table, limit: int = TABLE_ROWS) -> RichTable:
    """A logged table as a rich table of ``Text`` cells (numbers right-aligned)."""
    out = RichTable(box=None, pad_edge=False, show_edge=False, header_style="bold")
    for column in table.columns:
        out.add_column(Text(sanitize(column, 80)), overflow="ellipsis", max_width=40)
    for row in table.rows[:limit]:
        cells = []
        for cell in row:
            if isinstance(cell, float):
                number = _num(cell)
                number.justify = "right"
                cells.append(number)
            else:
                cells.append(Text(sanitize(str(cell), 200)))
        out.add_row(*cells)
    return out


def numeric_columns(table: Table) -> list[int]:
    """Indexes of the columns whose every cell is a number."""
    return [
        i
        for i in range(len(table.columns))
        if table.rows and all(isinstance(row[i], float) for row in table.rows)
    ]


class ValueBlock(Vertical):
    """One logged metric of a non-scalar shape: a title line and its latest value."""

    DEFAULT_CSS = """
    ValueBlock {
        height: auto;
        margin: 0 0 1 0;
    }
    ValueBlock > .value-title {
        background: $panel;
        padding: 0 1;
    }
    ValueBlock > .value-body {
        padding: 0 1;
        height: auto;
    }
    ValueBlock > MetricChart {
        height: 14;
        display: none;
    }
    ValueBlock > MetricChart.shown {
        display: block;
    }
    """

    def __init__(self, name: str) -> None:
        super().__init__()
        self.metric = name
        self._pending: Sequence[tuple[float, Shape]] = ()
        self._ready = False

    def compose(self) -> ComposeResult:
        yield Static(classes="value-title")
        yield Static(classes="value-body")
        yield MetricChart()

    def on_mount(self) -> None:
        self._ready = True
        if self._pending:
            self.show(self._pending)

    def show(self, history: Sequence[tuple[float, Shape]]) -> None:
        """Draw the latest value of ``history`` (and, for text, how it changed)."""
        if not self._ready:
            self._pending = history  # drawn once the block's parts exist
            return
        self._pending = ()
        if not history:
            return
        step, latest = history[-1]
        title = Text(no_wrap=True, overflow="ellipsis")
        title.append(sanitize(self.metric, 200), style="bold")
        title.append(f"  {describe(latest)} · step {format_number(step)}", style="dim")
        if len(history) > 1:
            title.append(f" · {len(history)} values logged", style="dim")
        self.query_one(".value-title", Static).update(title)
        body = self.query_one(".value-body", Static)
        chart = self.query_one(MetricChart)
        traces: list[Trace] = []
        if isinstance(latest, str):
            body.update(self._text_history(history))
        elif isinstance(latest, tuple):
            if len(latest) <= BAR_ITEMS:
                body.update(bars([str(i) for i in range(len(latest))], latest))
            else:
                body.update(Text("the latest vector, by index:", style="dim"))
                traces = [Trace(self.metric, range(len(latest)), latest, color=color_for(0))]
        elif isinstance(latest, Bar):
            body.update(bars(latest.x, latest.y))
        elif isinstance(latest, Line):
            body.update(Text(f"x from {_range(latest.x)}", style="dim"))
            traces = [Trace(self.metric, latest.x, latest.y, color=color_for(0))]
        elif isinstance(latest, Table):
            body.update(self._table(latest))
            if len(latest.rows) >= TABLE_CHART_ROWS:
                traces = [
                    Trace(
                        sanitize(latest.columns[i], 60),
                        range(len(latest.rows)),
                        [row[i] for row in latest.rows],  # type: ignore[misc]
                        color=color_for(n),
                    )
                    for n, i in enumerate(numeric_columns(latest))
                ]
        chart.set_class(bool(traces), "shown")
        if traces:
            chart.x_label = (
                "row" if isinstance(latest, Table) else "x" if isinstance(latest, Line) else "index"
            )
            chart.set_traces(traces)

    @staticmethod
    def _text_history(history: Sequence[tuple[float, Shape]]) -> Text:
        latest = history[-1][1]
        text = Text(str(latest))
        changes: list[tuple[float, str]] = []
        previous = None
        for step, value in history:
            if isinstance(value, str) and value != previous:
                changes.append((step, value))
                previous = value
        if len(changes) > 1:
            text.append("\nhistory (changes, newest last):", style="dim")
            shown = changes[-TEXT_HISTORY:]
            if len(changes) > len(shown):
                text.append(f"\n  … {len(changes) - len(shown)} earlier", style="dim")
            for step, value in shown:
                text.append(f"\n  step {format_number(step)}: ", style="dim")
                text.append(value)
        return text

    @staticmethod
    def _table(table: Table) -> RichTable | Text:
        if not table.rows:
            return Text("empty table", style="dim")
        rendered = table_text(table)
        if len(table.rows) > TABLE_ROWS:
            rendered.caption = f"first {TABLE_ROWS} of {len(table.rows)} rows"
        return rendered


def _range(values: Sequence[float]) -> str:
    finite = [v for v in values if math.isfinite(v)]
    if not finite:
        return "no finite values"
    return f"{format_number(min(finite))} to {format_number(max(finite))}"


def is_image(name: str) -> bool:
    """True when ``name`` has the suffix of an image format."""
    return name.lower().endswith(IMAGE_SUFFIXES)


def media_directory(root: Path, run: Run) -> Path:
    """The directory a run's media names are relative to."""
    return root / run.path / MEDIA_DIRS.get(run.format, "")


class MediaList(Static, can_focus=True):
    """The files a run logged, with sizes (read in a thread: the disk may be remote).

    Focused, it has a highlighted row: up/down (or j/k), home/end and clicks move it, and
    every move posts :class:`Highlighted` so an image can be previewed; enter asks for the
    highlighted file again (read afresh).
    """

    BINDINGS = [
        Binding("down,j", "move(1)", "Next file", show=False),
        Binding("up,k", "move(-1)", "Previous file", show=False),
        Binding("home", "move_to(0)", "First file", show=False),
        Binding("end", "move_to(-1)", "Last file", show=False),
        Binding("enter", "select", "Preview"),
    ]

    COMPONENT_CLASSES = {"media-list--cursor"}

    DEFAULT_CSS = """
    MediaList > .media-list--cursor {
        background: $block-cursor-blurred-background;
    }
    MediaList:focus > .media-list--cursor {
        background: $block-cursor-background;
        color: $block-cursor-foreground;
        text-style: bold;
    }
    """

    class Sized(Message):
        """File sizes were read."""

        def __init__(self, sizes: tuple[int | None, ...]) -> None:
            super().__init__()
            self.sizes = sizes

    class Highlighted(Message):
        """The highlighted file changed (or was selected again with ``reload``).

        ``path`` is the file when it is an image, else ``None`` (nothing to preview).
        """

        def __init__(self, path: Path | None, reload: bool = False) -> None:
            super().__init__()
            self.path = path
            self.reload = reload

    def __init__(self) -> None:
        super().__init__()
        self.directory: Path | None = None
        self.names: tuple[str, ...] = ()
        self.sizes: tuple[int | None, ...] = ()
        self.highlighted: int | None = None

    def show_media(self, directory: Path, names: tuple[str, ...]) -> None:
        """List ``names`` (relative to ``directory``), then fill in their sizes.

        The highlight stays on the same file when it is still listed.
        """
        if (directory, names) == (self.directory, self.names):
            return
        kept = self.highlighted_name if directory == self.directory else None
        self.directory, self.names, self.sizes = directory, names, ()
        self.highlighted = names.index(kept) if kept in names else None
        if kept is not None and self.highlighted is None:
            self.post_message(self.Highlighted(None))
        self._draw()
        if names:
            self._stat(directory, names)

    @property
    def highlighted_name(self) -> str | None:
        """The name of the highlighted file, if any."""
        if self.highlighted is None or not 0 <= self.highlighted < len(self.names):
            return None
        return self.names[self.highlighted]

    def highlighted_image(self) -> Path | None:
        """The highlighted file when it is an image, else ``None``."""
        name = self.highlighted_name
        if name is None or self.directory is None or not is_image(name):
            return None
        return self.directory / name

    def highlight(self, index: int | None) -> None:
        """Move the highlight to ``index`` (clamped); announce it when it changed."""
        if index is not None:
            index = max(0, min(len(self.names) - 1, index)) if self.names else None
        if index == self.highlighted:
            return
        self.highlighted = index
        self._draw()
        self.reveal_highlight()
        self.post_message(self.Highlighted(self.highlighted_image()))

    def reveal_highlight(self) -> None:
        """Scroll the container so the highlighted row is on screen."""
        if self.highlighted is not None and isinstance(self.parent, Widget):
            # Line 0 is the heading, file i is on line i + 1.
            row = self.virtual_region.y + self.highlighted + 1
            self.parent.scroll_to_region(
                Region(0, row, 1, 1), animate=False, immediate=True, x_axis=False
            )

    def action_move(self, delta: int) -> None:
        """Highlight the next (``1``) or previous (``-1``) file."""
        if self.highlighted is None:
            self.highlight(0 if delta > 0 else len(self.names) - 1)
        else:
            self.highlight(self.highlighted + delta)

    def action_move_to(self, index: int) -> None:
        """Highlight the first (``0``) or last (``-1``) file."""
        self.highlight(index if index >= 0 else len(self.names) - 1)

    def action_select(self) -> None:
        """Preview the highlighted file again, read afresh."""
        if self.highlighted is None:
            self.action_move(1)
            return
        self.post_message(self.Highlighted(self.highlighted_image(), reload=True))

    def on_focus(self) -> None:
        if self.highlighted is None and self.names:
            images = [i for i, name in enumerate(self.names) if is_image(name)]
            self.highlight(images[0] if images else 0)
        else:
            self._draw()

    def on_blur(self) -> None:
        self._draw()

    def on_click(self, event: Click) -> None:
        offset = event.get_content_offset(self)
        if offset is not None and 1 <= offset.y <= len(self.names):
            self.focus()
            self.highlight(offset.y - 1)

    @work(thread=True, exclusive=True, group="media")
    def _stat(self, directory: Path, names: tuple[str, ...]) -> None:
        sizes: list[int | None] = []
        for name in names:
            if get_current_worker().is_cancelled:
                return
            try:
                sizes.append(os.stat(directory / name, follow_symlinks=False).st_size)
            except (OSError, ValueError):
                sizes.append(None)
        self.post_message(self.Sized(tuple(sizes)))

    @on(Sized)
    def sized(self, message: Sized) -> None:
        message.stop()
        if len(message.sizes) == len(self.names):
            self.sizes = message.sizes
            self._draw()

    def _draw(self) -> None:
        # One line per file (no wrapping), so file i is always on line i + 1.
        text = Text(no_wrap=True, overflow="ellipsis")
        text.append("media", style="bold")
        if not self.names:
            text.append("  no files logged", style="dim")
            self.update(text)
            return
        text.append(f"  {len(self.names)} file(s) in ", style="dim")
        text.append(sanitize(str(self.directory), 400))
        shown = [sanitize(name, 200) for name in self.names]
        width = min(48, max(len(name) for name in shown))
        cursor = self.get_component_rich_style("media-list--cursor", partial=True)
        images = 0
        for i, name in enumerate(shown):
            size = self.sizes[i] if i < len(self.sizes) else None
            image = is_image(name)
            images += image
            text.append("\n")
            start = len(text)
            text.append("  ")
            text.append(name.ljust(width), style="bold" if image else "")
            text.append(f"  {human_size(size):>9}")
            if image:
                text.append("  image", style="magenta")
            if i == self.highlighted:
                text.stylize(cursor, start, len(text))
        if images:
            text.append("\n  ")
            if pillow_available():
                text.append("m: to this list · ↑↓ highlight an image to see it below", style="dim")
            else:
                text.append(NO_PILLOW, style="dim")
        self.update(text)


def scalar_summary(run: Run) -> Text | RichTable:
    """Last, min and max (with steps), counts and non-finite values of every scalar."""
    if not run.series:
        return Text("no scalar metrics", style="dim")
    table = RichTable(box=None, pad_edge=False, show_edge=False, header_style="bold")
    for label in ("metric", "last", "at step", "min", "max", "points", "non-finite"):
        table.add_column(label, justify="left" if label == "metric" else "right")
    for name in sorted(run.series):
        series = run.series[name]
        bad = Text(str(series.nonfinite), style="bold red" if series.nonfinite else "dim")
        if series.first_nonfinite_step is not None:
            bad.append(f" from {format_number(series.first_nonfinite_step)}")
        table.add_row(
            Text(sanitize(name, 80)),
            _num(series.last),
            Text(format_number(series.last_step) if series.last_step is not None else "–"),
            _num(series.min) if series.min_step is not None else Text("–"),
            _num(series.max) if series.max_step is not None else Text("–"),
            Text(str(series.count)),
            bad,
        )
    return table


class ValuesView(VerticalScroll, can_focus=True):
    """Scalar summary, every non-matrix shape the run logged, and its media files.

    Highlighting an image in the media list previews it below the list.
    """

    BINDINGS = [Binding("m", "media", "Media files")]

    DEFAULT_CSS = """
    ValuesView {
        height: 1fr;
        padding: 0 1;
    }
    ValuesView > .values-heading {
        text-style: bold;
        margin: 0 0 0 0;
    }
    ValuesView > #scalars {
        margin: 0 0 1 0;
    }
    ValuesView > MediaList {
        margin: 1 0 0 0;
    }
    ValuesView > ImagePreview {
        margin: 1 0 0 2;
    }
    """

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self.blocks: dict[str, ValueBlock] = {}
        self.root: Path = Path(".")
        self.run_data: Run | None = None

    def compose(self) -> ComposeResult:
        yield Static(Text("scalars", style="bold"), classes="values-heading")
        yield Static(id="scalars")
        yield Static(id="matrices-note")
        yield MediaList()
        yield ImagePreview()

    def show_run(self, root: Path, run: Run) -> None:
        """Draw everything for ``run`` from scratch."""
        self.root, self.run_data = root, run
        for block in self.blocks.values():
            block.remove()
        self.blocks.clear()
        self.metrics_changed(run)
        self.objects_changed(run, list(run.objects))
        self.media_changed(run)

    def metrics_changed(self, run: Run) -> None:
        """Scalars changed: redraw the summary."""
        self.run_data = run
        self.query_one("#scalars", Static).update(scalar_summary(run))

    def objects_changed(self, run: Run, names: Iterable[str]) -> None:
        """New values for ``names``: redraw their blocks, adding blocks for new names."""
        self.run_data = run
        media = self.query_one(MediaList)
        for name in names:
            history = run.objects.get(name)
            if not history or isinstance(history[-1][1], Matrix):
                continue
            block = self.blocks.get(name)
            if block is None:
                block = self.blocks[name] = ValueBlock(name)
                self.mount(block, before=media)
            block.show(history)
        matrices = run.objects_of(Matrix)
        note = self.query_one("#matrices-note", Static)
        if matrices:
            note.update(
                Text(
                    f"{len(matrices)} confusion matrix metric(s): see the Matrices tab (2)",
                    style="dim",
                )
            )
        elif not self.blocks:
            note.update(Text("no text, vector, bar, line or table values logged", style="dim"))
        else:
            note.update("")

    def media_changed(self, run: Run) -> None:
        """The run's media files may have changed: list them again."""
        self.query_one(MediaList).show_media(media_directory(self.root, run), run.media)

    def action_media(self) -> None:
        """Move the keys to the media list (its highlight previews images)."""
        self.query_one(MediaList).focus()

    @on(MediaList.Highlighted)
    def preview_highlighted(self, message: MediaList.Highlighted) -> None:
        """Show the highlighted image below the list; hide the preview for other files."""
        message.stop()
        run_dir = self.root / self.run_data.path if self.run_data is not None else self.root
        self.query_one(ImagePreview).show_image(message.path, run_dir, reload=message.reload)

    @on(ImagePreview.Loaded)
    def preview_loaded(self, message: ImagePreview.Loaded) -> None:
        """Bring the preview into view once it has its size, keeping the highlighted row."""
        message.stop()
        self.call_after_refresh(self._reveal_preview)

    def _reveal_preview(self) -> None:
        preview = self.query_one(ImagePreview)
        if preview.display:
            self.scroll_to_widget(preview, animate=False, immediate=True)
        self.query_one(MediaList).reveal_highlight()
