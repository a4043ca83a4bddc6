"""``KeyFooter``: Textual's footer, rebuilt only when the keys it shows change, and fitted
to its width."""

from __future__ import annotations

from typing import TYPE_CHECKING

from textual import events
from textual.widget import Widget
from textual.widgets import Footer
from textual.widgets._footer import FooterLabel

if TYPE_CHECKING:
    from textual.screen import Screen

KEEP = frozenset({"escape", "q", "question_mark"})
"""Keys a narrow footer still shows: the way back, out, and to every other key (help)."""


class KeyFooter(Footer):
    """The footer of every screen: recomposed at most once per refresh, and only when the
    keys it would show (or their state) differ from the ones on screen.

    Textual's footer recomposes every key each time a screen publishes a bindings update,
    once per update. A screen publishes several while it starts (focus, mounts, the first
    rows) and on many cursor moves, though the keys mostly stay the same; each rebuild
    restyles every key. Coalescing them took most of the style work out of the first frame.

    Textual's footer cuts off the keys that do not fit, last first, whatever they are: at
    80 columns the help, quit and back keys were gone. This one hides whole keys (a group
    with its label) from the end until the rest fits, never ``KEEP``'s.
    """

    def __init__(self) -> None:
        super().__init__()
        self._queued = False
        self._shown: tuple[object, ...] | None = None
        self._widths: dict[int, int] = {}  # id(widget) -> cells, measured while shown

    def bindings_changed(self, screen: Screen[object]) -> None:
        # Footer's own handler, with the rebuild coalesced. ``_bindings_ready`` is Footer's
        # flag that bindings exist (Textual is pinned to one version).
        self._bindings_ready = True
        if not screen.app.app_focus or self._queued:
            return
        if self.is_attached and screen is self.screen:
            self._queued = True
            self.call_after_refresh(self._rebuild)

    async def _rebuild(self) -> None:
        self._queued = False
        if not self.is_attached:  # its screen was closed since the update
            return
        shown = self._keys_shown()
        if shown != self._shown:
            self._shown = shown
            self._widths.clear()
            await self.recompose()
            self.call_after_refresh(self._fit)

    def on_resize(self, event: events.Resize) -> None:
        self.call_after_refresh(self._fit)

    def _width(self, widget: Widget) -> int | None:
        """Cells ``widget`` takes, margins included (measured while it was shown)."""
        width = self._widths.get(id(widget))
        if width is None and widget.display and widget.outer_size.width:
            margin = widget.styles.margin
            width = self._widths[id(widget)] = widget.outer_size.width + margin.left + margin.right
        return width

    def _fit(self) -> None:
        """Show the keys that fit, hiding whole ones from the end, never ``KEEP``'s."""
        if not self.is_attached:
            return
        units: list[list[Widget]] = []
        room = self.size.width
        for child in self.children:
            if child.has_class("-command-palette"):
                room -= self._width(child) or 0
            elif isinstance(child, FooterLabel) and units:
                units[-1].append(child)  # a group's label goes with its keys
            else:
                units.append([child])
        sizes = [[self._width(w) for w in unit] for unit in units]
        if any(None in unit_sizes for unit_sizes in sizes):
            return  # not laid out yet: fitted again after its first layout
        widths = [sum(w or 0 for w in unit_sizes) for unit_sizes in sizes]
        show = [True] * len(units)
        total = sum(widths)
        for i in reversed(range(len(units))):
            if total <= room:
                break
            if not any(getattr(w, "key", None) in KEEP for w in units[i]):
                show[i] = False
                total -= widths[i]
        for unit, shown in zip(units, show):
            for widget in unit:
                if widget.display != shown:
                    widget.display = shown

    def _keys_shown(self) -> tuple[object, ...]:
        """Everything of the active bindings that ``compose`` draws."""
        app = self.app
        keys = tuple(
            (
                binding.key,
                binding.action,
                binding.description,
                binding.group,
                enabled,
                tooltip,
                app.get_key_display(binding),
            )
            for (_, binding, enabled, tooltip) in self.screen.active_bindings.values()
            if binding.show or binding.key == app.COMMAND_PALETTE_BINDING
        )
        return (keys, self.show_command_palette, app.ENABLE_COMMAND_PALETTE)
