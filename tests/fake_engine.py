"""The thread-free Pilot tier: the real engine, driven by the test instead of by threads.

:class:`FakeEngine` is :class:`tui.core.engine.Engine` without its threads: discovery, the
format adapters, the tailers, previews and dirty tracking are the real ones, over real files
in tmp_path, but no watchdog observer or reconcile loop starts, and the app made by
:func:`fake_app` starts no reader thread (``TrackApp(readers=False)``). The test is the
watcher and the reader thread: it writes a file and says so (:meth:`FakeEngine.append`,
:meth:`FakeEngine.changed`); the engine reads what is new and posts it to the app the way
the reader thread does, as a :class:`BatchesRead` message, and returns once the app has
applied it. Nothing is waited for by time, so nothing depends on how busy the machine is.

The end-to-end tier (``test_end_to_end.py``) keeps the real watcher, threads and processes.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

from textual.pilot import Pilot

from tui.app.app import PREVIEW_BYTES, TrackApp
from tui.app.messages import BatchesRead
from tui.core.backfill import Backfill
from tui.core.engine import Engine
from tui.core.store import Batch

HANDLED_WITHIN = 30.0
"""Seconds before a posted message the app never handled fails the test (a hang guard: the
app handles it as soon as the test awaits)."""


class FakeEngine(Engine):
    """The real engine, stepped by the test; :meth:`start` is never called.

    Args:
        root: the runs' directory.
        mode: the watch mode the screens show (a polling engine's: the test does the polling).
    """

    def __init__(self, root: Path, mode: str = "polling (requested)") -> None:
        super().__init__(root, watch="poll")
        self.mode = mode
        self.app: TrackApp | None = None
        """The app the batches go to (set by :func:`fake_app`)."""

    def start(self, on_dirty: Callable[[], None] | None = None) -> None:
        raise AssertionError("a fake engine never watches: the test says what changed")

    async def post(self, batches: Iterable[Batch], progress: tuple[int, int] | None = None) -> None:
        """Post ``batches`` as the reader thread does; return when the app has applied them.

        The message goes through the app's queue and its ``@on(BatchesRead)`` handler; a
        callback queued behind it runs only after the handler has returned.
        """
        app = self.app
        assert app is not None, "make the app with fake_app()"
        handled = asyncio.Event()
        assert app.post_message(BatchesRead(tuple(batches), progress))
        assert app.call_later(handled.set)
        await asyncio.wait_for(handled.wait(), HANDLED_WITHIN)

    async def load(self) -> list[str]:
        """Find the runs and read them as the reader thread does: the end of each history
        first (the first paint), then every history in full, replacing the previews."""
        keys = self.scan()
        self.take_dirty()  # read below, previews first
        total = len(keys)
        await self.post([b for k in keys if (b := self.preview(k, PREVIEW_BYTES))], (0, total))
        backfill = Backfill(self, keys, workers=1)  # one worker: read here, no processes
        try:
            while backfill.busy:
                batches = backfill.step()
                if batches or not backfill.busy:
                    await self.post(batches, (backfill.done, total))
        finally:
            backfill.close()
        return keys

    async def deliver(self) -> list[Batch]:
        """Read every run marked dirty (walking ROOT first when a path was not a known run's)
        and post what was read; returns the batches."""
        batches: list[Batch] = []
        while True:
            keys, rescan = self.take_dirty()
            if rescan:
                keys = sorted(set(keys) | set(self.scan()))
                self.take_dirty()  # the new runs marked by the walk are in keys
            if not keys:
                break
            batches.extend(self.read(keys))  # a run cut short by the budget stays dirty
        await self.post(batches)
        return batches

    async def changed(self, *paths: Path) -> list[Batch]:
        """Files changed (as a watcher event says): mark their runs and deliver."""
        for path in paths:
            self.mark_path(str(path))
        return await self.deliver()

    async def append(self, path: Path, *lines: dict[str, Any] | str) -> list[Batch]:
        """Append to ``path`` (dicts as JSON lines, strings as they are) and deliver it."""
        text = "".join(
            json.dumps(line) + "\n" if isinstance(line, dict) else line for line in lines
        )
        with open(path, "a") as handle:
            handle.write(text)
        batches = await self.changed(path)
        assert batches, f"nothing new was read after appending to {path}"
        return batches


def fake_app(root: Path, **options: Any) -> TrackApp:
    """A :class:`TrackApp` on a :class:`FakeEngine` over ``root``, with no reader threads."""
    engine = FakeEngine(root)
    app = TrackApp(root, engine=engine, readers=False, **options)
    engine.app = app
    return app


async def loaded(pilot: Pilot[Any], runs: int | None = None) -> FakeEngine:
    """Load the fake app's runs (exactly ``runs`` of them, when given); let the screen settle."""
    app = pilot.app
    assert isinstance(app, TrackApp) and isinstance(app.engine, FakeEngine)
    await app.engine.load()
    assert runs is None or len(app.store.runs) == runs
    assert app.progress is None and not any(r.partial for r in app.store.runs.values())
    await pilot.pause()
    return app.engine
