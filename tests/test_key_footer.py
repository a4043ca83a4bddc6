"""The footer follows the keys a screen offers, rebuilding only when they change."""

from __future__ import annotations

from textual.app import App, ComposeResult
from textual.binding import Binding
from textual.widgets._footer import FooterKey

from tui.app.widgets.key_footer import KeyFooter


class Keys(App[None]):
    BINDINGS = [Binding("g", "go", "Go"), Binding("h", "hidden", "Hidden", show=False)]

    def __init__(self) -> None:
        super().__init__()
        self.go_allowed = True

    def compose(self) -> ComposeResult:
        yield KeyFooter()

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        # None greys a key out (False would hide it)
        return None if action == "go" and not self.go_allowed else True

    def action_go(self) -> None:
        pass


def go_key(app: Keys) -> FooterKey:
    return next(k for k in app.screen.query(FooterKey) if k.action == "go")


async def test_footer_shows_a_key_greyed_once_it_is_unavailable() -> None:
    app = Keys()
    async with app.run_test() as pilot:
        await pilot.pause()
        assert not go_key(app).has_class("-disabled")
        app.go_allowed = False
        app.refresh_bindings()
        await pilot.pause()
        assert go_key(app).has_class("-disabled")
        assert [k.action for k in app.query(FooterKey)].count("go") == 1
        assert "hidden" not in [k.action for k in app.query(FooterKey)]


async def test_footer_keeps_its_keys_while_they_stay_the_same() -> None:
    app = Keys()
    async with app.run_test() as pilot:
        await pilot.pause()
        before = go_key(app)
        for _ in range(5):
            app.refresh_bindings()
        await pilot.pause()
        assert go_key(app) is before  # not rebuilt: nothing it shows changed
        app.go_allowed = False
        for _ in range(5):
            app.refresh_bindings()
        await pilot.pause()
        rebuilt = go_key(app)
        assert rebuilt is not before and rebuilt.has_class("-disabled")
