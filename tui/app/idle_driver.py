"""``IdleDriver``: Textual's Linux driver with an input thread that sleeps while no key comes.

Textual's input thread wakes ten times a second to look for input and for a lone Escape
whose wait ran out: 0.16 % of a core for an app that otherwise idles at 0.4 %. This one
blocks until the terminal has input, a lone Escape's wait runs out, or the driver stops
(its exit event writes to a pipe the thread also waits on).
"""

from __future__ import annotations

import codecs
import os
import selectors
import threading
from typing import TYPE_CHECKING, Any

from textual._time import get_time
from textual._xterm_parser import XTermParser
from textual.drivers.linux_driver import LinuxDriver

if TYPE_CHECKING:
    from textual.app import App

READ_SIZE = 4096
"""Bytes read from the terminal at a time."""


class _WakingEvent(threading.Event):
    """An event that also writes a byte to a pipe when set, to wake a ``select``."""

    def __init__(self, wake: int) -> None:
        super().__init__()
        self.wake: int | None = wake
        """The pipe's write end; ``None`` once closed (its number may be reused)."""

    def set(self) -> None:
        super().set()
        if self.wake is not None:
            try:
                os.write(self.wake, b"\0")
            except BlockingIOError:  # the pipe is full: the thread is awake already
                pass


class IdleDriver(LinuxDriver):
    """The Linux driver, with input read only when there is some (see the module)."""

    def __init__(self, app: App[Any], **options: Any) -> None:
        super().__init__(app, **options)
        self._wake_read, self._wake_write = os.pipe()
        os.set_blocking(self._wake_read, False)
        os.set_blocking(self._wake_write, False)
        self.exit_event: _WakingEvent = _WakingEvent(self._wake_write)

    def run_input_thread(self) -> None:
        """Read the terminal's input, parse it into events and hand them to the app."""
        parser = XTermParser(self._debug)
        decode = codecs.getincrementaldecoder("utf-8")().decode
        # select, as Textual's own thread: it works on every kind of stdin a tty app meets.
        with selectors.SelectSelector() as selector:
            selector.register(self.fileno, selectors.EVENT_READ, "input")
            selector.register(self._wake_read, selectors.EVENT_READ, "wake")
            while not self.exit_event.is_set():
                ready = selector.select(self._patience(parser))
                if not self._pass_on(parser, decode, ready, final=False):
                    break
            self._pass_on(parser, decode, selector.select(0), final=True)

    @staticmethod
    def _patience(parser: XTermParser) -> float | None:
        """Seconds until the parser's pending wait (a lone Escape) runs out; ``None``: none."""
        deadline: float | None = parser._timeout_time  # Textual is pinned to one version
        return None if deadline is None else max(0.0, deadline - get_time())

    def _pass_on(
        self,
        parser: XTermParser,
        decode: Any,
        ready: list[tuple[selectors.SelectorKey, int]],
        *,
        final: bool,
    ) -> bool:
        """Parse what is ready and post its events; ``False`` once input has ended."""
        more = True
        for key, _mask in ready:
            if key.data == "wake":
                self._drain_wake()
                continue
            data = decode(os.read(self.fileno, READ_SIZE), final=final)
            if not data:
                more = False  # end of input (a closed pipe)
                continue
            for event in parser.feed(data):
                self.process_message(event)
        for event in parser.tick():
            self.process_message(event)
        return more

    def _drain_wake(self) -> None:
        try:
            while os.read(self._wake_read, 64):
                pass
        except BlockingIOError:
            pass

    def close(self) -> None:
        super().close()
        if self.exit_event.wake is not None:
            self.exit_event.wake = None
            os.close(self._wake_read)
            os.close(self._wake_write)
