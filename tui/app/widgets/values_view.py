"""``ValuesView``: every non-matrix value shape a run logs, plus its media files.

A summary of the scalar metrics on top, one :class:`ValueBlock` per other metric, and the
files under the run's media directory at the bottom, where highlighting an image previews
it (:class:`ImagePreview`). Everything from the run is drawn as ``Text``; nothing is
parsed as markup.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

from rich.table import Table as RichTable
from rich.text import Text
from textual import on
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import VerticalScroll
from textual.widgets import Static

from tui.app.widgets.cells import number_text
from tui.app.widgets.image_preview import ImagePreview
from tui.app.widgets.media_list import MediaList, media_directory
from tui.app.widgets.value_block import ValueBlock
from tui.core.sanitize import sanitize, unescape_path
from tui.core.shapes import Matrix, format_number
from tui.core.store import Run


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
        run = self.run_data
        run_dir = self.root / unescape_path(run.path) if run is not None else self.root
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
            number_text(series.last),
            Text(format_number(series.last_step) if series.last_step is not None else "–"),
            number_text(series.min) if series.min_step is not None else Text("–"),
            number_text(series.max) if series.max_step is not None else Text("–"),
            Text(str(series.count)),
            bad,
        )
    return table
