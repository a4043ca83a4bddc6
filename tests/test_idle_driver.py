"""The input thread sleeps while no key comes, and still delivers every key, a lone Escape
and the stop: on a pipe standing in for the terminal, and in the real app on a real pty."""

from __future__ import annotations

import os
import queue
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from conftest import write_run
from textual import events
from textual.message import Message

from tui.app.idle_driver import IdleDriver

ROOT = Path(__file__).resolve().parent.parent


class Probe(IdleDriver):
    """The driver, with the events it would post to the app collected instead."""

    def __init__(self) -> None:
        super().__init__(None)  # type: ignore[arg-type]  # no app: events go to a queue
        self.events: queue.Queue[Message] = queue.Queue()
        self.loops = 0

    def process_message(self, message: Message) -> None:
        self.events.put(message)

    def _pass_on(self, *args, **kwargs) -> bool:  # type: ignore[no-untyped-def]
        self.loops += 1
        return super()._pass_on(*args, **kwargs)

    def key(self) -> str:
        event = self.events.get(timeout=10)
        assert isinstance(event, events.Key)
        return event.key


@pytest.fixture
async def probe() -> Iterator[tuple[Probe, int, threading.Thread]]:
    handlers = {s: signal.getsignal(s) for s in (signal.SIGTSTP, signal.SIGCONT)}
    driver = Probe()
    read, write = os.pipe()
    driver.fileno = read
    thread = threading.Thread(target=driver.run_input_thread, daemon=True)
    thread.start()
    try:
        yield driver, write, thread
    finally:
        driver.exit_event.set()
        thread.join(10)
        assert not thread.is_alive(), "the input thread did not stop"
        driver.close()
        os.close(read)
        try:
            os.close(write)
        except OSError:
            pass
        for number, handler in handlers.items():
            signal.signal(number, handler)


async def test_the_input_thread_sleeps_until_a_key_comes(
    probe: tuple[Probe, int, threading.Thread],
) -> None:
    driver, write, _thread = probe
    time.sleep(1.0)
    assert driver.loops <= 1  # Textual's own thread wakes ten times a second
    os.write(write, b"g")
    assert driver.key() == "g"


async def test_a_lone_escape_arrives_without_another_key(
    probe: tuple[Probe, int, threading.Thread],
) -> None:
    driver, write, _thread = probe
    os.write(write, b"\x1b")
    assert driver.key() == "escape"  # once the parser's wait for a sequence ran out
    os.write(write, b"\x1b[A")
    assert driver.key() == "up"


async def test_stopping_wakes_the_sleeping_thread(
    probe: tuple[Probe, int, threading.Thread],
) -> None:
    driver, _write, _thread = probe
    time.sleep(0.2)
    driver.exit_event.set()  # the fixture asserts the thread ends promptly


async def test_the_end_of_input_ends_the_thread(probe: tuple[Probe, int, threading.Thread]) -> None:
    _driver, write, thread = probe
    os.close(write)
    thread.join(10)
    assert not thread.is_alive()  # not spinning on a closed input


def test_the_app_on_a_real_terminal_answers_keys_and_quits(tmp_path: Path) -> None:
    """``tracktui ROOT`` on a pty: help opens, a lone Escape closes it, q quits."""
    import fcntl
    import pty
    import struct
    import termios

    import pyte

    write_run(tmp_path / "root", "alpha-run", [1.0, 0.5, 0.25])
    master, slave = pty.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 30, 110, 0, 0))
    env = dict(os.environ, TERM="xterm-256color", XDG_STATE_HOME=str(tmp_path / "state"))
    child = subprocess.Popen(
        [sys.executable, "-m", "tui", str(tmp_path / "root")],
        stdin=slave,
        stdout=slave,
        stderr=slave,
        cwd=ROOT,
        env=env,
        start_new_session=True,
    )
    os.close(slave)
    screen = pyte.Screen(110, 30)
    stream = pyte.ByteStream(screen)
    lock = threading.Lock()

    def pump() -> None:
        while True:
            try:
                chunk = os.read(master, 65536)
            except OSError:
                return
            if not chunk:
                return
            with lock:
                stream.feed(chunk)

    reader = threading.Thread(target=pump, daemon=True)
    reader.start()

    def text() -> str:
        with lock:
            return "\n".join(screen.display)

    def wait_until(condition: Callable[[str], bool]) -> None:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and child.poll() is None:
            if condition(text()):
                return
            time.sleep(0.05)
        raise AssertionError(f"the screen never showed it:\n{text()}")

    try:
        wait_until(lambda shown: "alpha-run" in shown)
        os.write(master, b"?")
        wait_until(lambda shown: "Keys — Runs" in shown)
        os.write(master, b"\x1b")  # nothing follows it: the parser's wait has to run out
        wait_until(lambda shown: "Keys — Runs" not in shown)
        os.write(master, b"q")
        assert child.wait(timeout=30) == 0
    finally:
        if child.poll() is None:
            child.kill()
            child.wait()
        os.close(master)
        reader.join(5)
