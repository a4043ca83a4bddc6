"""``KeyFooter``: Textual's footer, rebuilt only when the keys it shows change."""

from __future__ import annotations

from typing import TYPE_CHECKING

from textual.widgets import Footer

if TYPE_CHECKING:
    from textual.screen import Screen


class KeyFooter(Footer):
    """The footer of every screen: recomposed at most once per refresh, and only when the
    keys it would show (or their state) differ from the ones on screen.

    Textual's footer recomposes every key each time a screen publishes a bindings update,
    once per update. A screen publishes several while it starts (focus, mounts, the first
    rows) and on many cursor moves, though the keys mostly stay the same; each rebuild
    restyles every key. Coalescing them took most of the style work out of the first frame.
    """

    def __init__(self) -> None:
        super().__init__()
        self._queued = False
        self._shown: tuple[object, ...] | None = None

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
            await self.recompose()

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
