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


class Crowded(App[None]):
    """Many keys, with back, quit and help among them, and a group with its label."""

    BINDINGS = [
        Binding("1", "tab(1)", "Tab 1", group=Binding.Group("Tabs", compact=True)),
        Binding("2", "tab(2)", "Tab 2", group=Binding.Group("Tabs", compact=True)),
        *(Binding(k, f"word('{k}')", f"Word {k} long") for k in "abcdefgh"),
        Binding("escape", "back", "Back"),
        Binding("q", "quit", "Quit"),
        Binding("question_mark", "help", "Help", key_display="?"),
        Binding("z", "last", "Last of all"),
    ]

    def compose(self) -> ComposeResult:
        yield KeyFooter()

    def action_word(self, key: str) -> None:
        pass


def shown(app: App[None]) -> list[str]:
    """Keys drawn whole, left of the command palette's key."""
    footer = app.screen.query_one(KeyFooter)
    palette = next(k for k in footer.query(FooterKey) if k.has_class("-command-palette"))
    return [
        k.key
        for k in footer.query(FooterKey)
        if k.display
        and k.parent.display
        and k is not palette
        and k.region.right <= palette.region.x
    ]


async def test_a_narrow_footer_hides_whole_keys_from_the_end_but_never_back_quit_or_help() -> None:
    app = Crowded()
    async with app.run_test(size=(200, 10)) as pilot:
        await pilot.pause()
        wide = shown(app)
        assert wide == ["1", "2", *"abcdefgh", "escape", "q", "question_mark", "z"]
        await pilot.resize_terminal(60, 10)
        await pilot.pause()
        await pilot.pause()
        narrow = shown(app)
        assert {"escape", "q", "question_mark"} <= set(narrow)
        assert "z" not in narrow and "h" not in narrow  # the last ones went first
        assert narrow[:2] == ["1", "2"]  # the first ones stay
        assert narrow == [k for k in wide if k in narrow]  # in their order
        await pilot.resize_terminal(200, 10)
        await pilot.pause()
        await pilot.pause()
        assert shown(app) == wide
