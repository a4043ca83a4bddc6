"""The run palette: one colour per run, the same on every screen, never the NaN red.

Based on Okabe & Ito's colour-blind-safe set (vermillion and black left out: vermillion
is too close to the red of the NaN/inf markers, black vanishes on dark themes), plus two
from Paul Tol's sets. A terminal with only 16 colours would fold several of them onto one
ANSI colour, so each entry has an ANSI stand-in of its own there. Under ``NO_COLOR`` the
lines lose their colour: legends and markers (``×`` NaN, ``▲`` inf) still tell them apart.

No plotext import here: the first screen draws its charts without loading plotext.
"""

from __future__ import annotations

from rich.color import Color

RGB = tuple[int, int, int]

RUN_RGB: tuple[RGB, ...] = (
    (86, 180, 233),  # sky blue
    (230, 159, 0),  # orange
    (0, 158, 115),  # bluish green
    (204, 121, 167),  # reddish purple
    (240, 228, 66),  # yellow
    (0, 114, 178),  # blue
    (187, 187, 187),  # grey (Tol)
    (153, 153, 51),  # olive (Tol)
)
"""Run colours in truecolor and 256-colour terminals."""

RUN_ANSI: tuple[str, ...] = (
    "bright_cyan",
    "bright_yellow",
    "bright_green",
    "bright_blue",
    "yellow",
    "white",
    "green",
    "bright_magenta",
)
"""The same runs' colours in a 16-colour terminal: distinct ANSI colours, none of them red,
magenta (the one nearest to red in many themes) last."""

NONFINITE_RICH = Color.from_ansi(9)
"""The colour of NaN/inf markers (plotext's ``red+``), which no run colour equals."""


sixteen = False
"""Whether the terminal shows only 16 colours (set once by the app when it starts)."""


def use_sixteen_colors(system: str | None) -> None:
    """Draw runs in :data:`RUN_ANSI` when the terminal's colour ``system`` (Rich's name:
    ``standard``, ``256``, ``truecolor``, ``windows``) has 16 colours."""
    global sixteen
    sixteen = system in ("standard", "windows")


def run_rgb(index: int) -> RGB:
    """The truecolor colour of the ``index``-th run (by order of first appearance)."""
    return RUN_RGB[index % len(RUN_RGB)]


def run_rich(index: int) -> Color:
    """The Rich colour of the ``index``-th run in this terminal."""
    if sixteen:
        return Color.parse(RUN_ANSI[index % len(RUN_ANSI)])
    return Color.from_rgb(*run_rgb(index))


def distinct_colors(indices: list[int]) -> list[Color]:
    """Each run's stable colour (by index); one already taken in this view gets a free one."""
    count = len(RUN_RGB)
    taken: set[int] = set()
    out = []
    for index in indices:
        slot = index % count
        if slot in taken:
            slot = next((s for s in range(count) if s not in taken), slot)
        taken.add(slot)
        out.append(run_rich(slot))
    return out
