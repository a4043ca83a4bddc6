"""Text drawn on plots: titles cut to fit, labels made safe, and the empty-plot message.

plotext leaves out a title that does not fit instead of cutting it, and parses every
string it gets for ANSI sequences, so every title and label goes through here.
"""

from __future__ import annotations

from collections.abc import Sequence

from rich.style import Style
from rich.text import Span, Text

from tui.core.sanitize import sanitize

TITLE_SEPARATOR = " · "
"""What joins the parts of a chart title (the metric, then its notes)."""

MIN_PIECE = 4
"""Fewer characters than this of a cut title part tell the reader nothing."""


def ellipsize(text: str, width: int) -> str:
    """``text`` cut to at most ``width`` characters, ending in ``…`` when it was cut."""
    if len(text) <= width:
        return text
    return text[: max(0, width - 1)].rstrip() + "…" if width > 0 else ""


def fit_title(parts: Sequence[str], width: int) -> str:
    """Join title parts with :data:`TITLE_SEPARATOR` into at most ``width`` characters.

    plotext leaves out a title that does not fit instead of cutting it, so every chart
    title goes through here. Give the parts most important first: the metric name, then
    the non-finite note, then the rest.

    Args:
        parts: the title's parts (already sanitized); empty ones are skipped.
        width: the characters available.

    Returns:
        The first part, cut with an ellipsis only when it does not fit alone; then the
        others in order while whole ones fit. The first one that does not fit is cut when
        a few characters of it would show, else a trailing ``…`` says something was left
        out; the parts after it are left out.
    """
    kept = [part.strip() for part in parts if part.strip()]
    if not kept or width <= 0:
        return ""
    title = ellipsize(kept[0], width)
    for part in kept[1:]:
        joined = title + TITLE_SEPARATOR + part
        if len(joined) <= width:
            title = joined
            continue
        room = width - len(title) - len(TITLE_SEPARATOR)
        if room > MIN_PIECE:
            return title + TITLE_SEPARATOR + ellipsize(part, room)
        return title + " …" if len(title) + 2 <= width else title
    return title


def _style_at(line: Text, offset: int) -> Style:
    return Style.combine(
        span.style if isinstance(span.style, Style) else Style.parse(span.style)
        for span in line.spans
        if span.start <= offset < span.end
    )


def put_title(rendered: Text, title: str) -> Text:
    """Make the top row of a plotext drawing show ``title``.

    plotext centres the title on the plot area and leaves it out when it would cross the
    figure's edge, which happens to a title shorter than the figure but longer than the
    plot area. Such a title is written here instead, centred on the plot area as far as
    the edges allow and styled like the tick labels.

    Args:
        rendered: the drawing, whose first line is plotext's title row.
        title: the title given to plotext, already cut to the drawing's width.

    Returns:
        ``rendered``, its first line rewritten when plotext had left the title out.
    """
    title = title.strip()
    if not title or title in rendered.plain.partition("\n")[0]:
        return rendered
    lines = rendered.split("\n", allow_blank=True)
    if len(lines) < 3:
        return rendered
    top = lines[0]
    width = len(top.plain)
    if len(title) > width:
        return rendered
    # The plot area lies between the frame's corners on the next line.
    frame = lines[1].plain
    left, right = frame.find("┌"), frame.find("┐")
    centre = (left + 1 + (right - left - 1) // 2) if 0 <= left < right else width // 2
    start = min(max(0, centre - len(title) // 2), width - len(title))
    # The x-axis label and tick labels at the bottom are drawn in the theme's text style.
    labels = next((line for line in reversed(lines[2:]) if line.plain.strip()), top)
    at = len(labels.plain) - len(labels.plain.lstrip())
    text = Text(top.plain[:start] + title + top.plain[start + len(title) :], no_wrap=True)
    text.spans = [*top.spans, Span(start, start + len(title), _style_at(labels, at))]
    lines[0] = text
    return rendered.blank_copy("\n").join(lines)


def centred_message(message: str, width: int, height: int) -> Text:
    """A dim line of text centred in a ``width`` x ``height`` area (for empty charts)."""
    lines = ["" for _ in range(max(0, (height - 1) // 2))]
    lines.append(message.center(max(width, len(message))))
    return Text("\n".join(lines), style="dim", no_wrap=True, overflow="ellipsis")


def cut_label(text: str, width: int) -> str:
    """``text`` from a run made safe to hand to plotext and cut to ``width`` characters."""
    return ellipsize(sanitize(text, 200), width)


def plural(count: int, word: str) -> str:
    """``1 run``, ``2 runs``."""
    return f"{count} {word}" if count == 1 else f"{count} {word}s"
