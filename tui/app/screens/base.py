"""``StoreScreen``: the base of every screen that shows runs from the app's store.

The app talks to its screens through this class only: it calls :meth:`runs_updated`
after every change to the store and :meth:`clock_ticked` on the status timer, and asks
:meth:`kill_targets` what the kill keys act on. Screens reach the app through
:attr:`track_app`, typed, instead of untyped attributes of ``self.app``.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING, cast

from textual import events, on
from textual.reactive import var
from textual.screen import Screen

from tui.app.messages import RunsUpdated
from tui.core.store import Run

if TYPE_CHECKING:
    from tui.app.app import TrackApp


class StoreScreen(Screen[None]):
    """A screen of runs: told about store changes and clock ticks, asked for kill targets."""

    kill_ready: var[bool] = var(False, bindings=True)
    """Whether the kill keys would act on something here now; a change refreshes the footer."""

    @property
    def track_app(self) -> TrackApp:
        """The app, with its store, clock, options and actions typed."""
        return cast("TrackApp", self.app)

    def runs_of(self, keys: Iterable[str]) -> list[Run]:
        """The runs of ``keys`` the store knows, in the order given."""
        runs = self.track_app.store.runs
        return [runs[key] for key in keys if key in runs]

    def runs_updated(self, update: RunsUpdated) -> None:
        """Runs changed in the store: redraw what shows them (called by the app)."""

    def clock_ticked(self) -> None:
        """The status timer ticked: redraw what follows the clock (called by the app)."""

    def kill_targets(self) -> list[str]:
        """The runs the kill keys act on here (none by default)."""
        return []

    def telemetry_updated(self) -> None:
        """A GPU reading or machine sample was applied: redraw what shows it (called by the
        app)."""

    def shows_gpu(self) -> bool:
        """Whether this screen shows GPU figures when on top (GPUs are read only then)."""
        return False

    def watched_run(self) -> str | None:
        """The run whose machine use is recorded while this screen is open."""
        return None

    @on(events.ScreenResume)
    def _kill_keys_on_resume(self) -> None:
        self.refresh_kill_ready()

    def refresh_kill_ready(self) -> None:
        """Recompute :attr:`kill_ready` after the targets or their statuses changed."""
        if self.is_attached:
            self.kill_ready = self.track_app.can_kill(self.kill_targets())
