"""The face of tracktui (issue 12): the chart strip, charts that survive divergence, the run
palette, the table that scales, persisted views, export, the demo."""

from __future__ import annotations

from rich.color import Color

from tui.app.widgets import palette
from tui.app.widgets.plot_colors import NONFINITE_COLOR, PALETTE, PALETTE_16, rich_color


# Colours ------------------------------------------------------------------------------------
def test_run_palette_is_distinct_and_never_the_nonfinite_red() -> None:
    nan = rich_color(NONFINITE_COLOR)
    for colors in (PALETTE, PALETTE_16):
        richs = [rich_color(c) for c in colors[:8]]
        assert len(set(richs)) == 8
        assert nan not in richs
    assert nan == palette.NONFINITE_RICH
    # A 16-colour terminal gets the ANSI stand-ins, still 8 distinct and none of them red.
    ansi = {Color.parse(name).number for name in palette.RUN_ANSI}
    assert len(ansi) == 8 and not ansi & {1, 9}


def test_run_colour_follows_the_terminal() -> None:
    try:
        palette.use_sixteen_colors("standard")
        assert palette.run_rich(0) == Color.parse("bright_cyan")
        palette.use_sixteen_colors("truecolor")
        assert palette.run_rich(0) == Color.from_rgb(*palette.RUN_RGB[0])
    finally:
        palette.use_sixteen_colors("truecolor")
