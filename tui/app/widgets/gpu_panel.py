"""``GpuPanel``: the host's GPUs, one line each, with the runs (and other processes) on them.

Each line: index and name, a bar for utilisation and one for memory, temperature and
power, then who holds the memory: runs by name, processes of no run by user and pid
(another user's are shown, never offered for a kill). Built from a
:class:`~tui.core.gpu.GpuState`; every string is appended to a ``Text``, never parsed.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

from rich.text import Text
from textual.widgets import Static

from tui.core.sizes import short_bytes

if TYPE_CHECKING:
    from tui.core.gpu import GpuDevice, GpuState, Holder

BAR = 10
"""Cells of one bar."""


def bar(fraction: float | None, width: int = BAR) -> Text:
    """``▕██████░░░░▏`` coloured by how full it is; dim dots when unknown."""
    if fraction is None:
        return Text("▕" + "·" * width + "▏", style="dim")
    fraction = min(1.0, max(0.0, fraction))
    filled = round(fraction * width)
    style = "green" if fraction < 0.6 else ("yellow" if fraction < 0.9 else "red")
    text = Text("▕")
    text.append("█" * filled, style=style)
    text.append("░" * (width - filled), style="dim")
    text.append("▏")
    return text


def _holders(holders: list[Holder], name_of: Callable[[str], str]) -> Text:
    text = Text()
    runs: dict[str, int] = {}
    others: list[Holder] = []
    for holder in holders:
        if holder.runs:
            for key in holder.runs:
                runs[key] = runs.get(key, 0) + (holder.process.memory or 0)
        else:
            others.append(holder)
    for key, memory in sorted(runs.items(), key=lambda item: -item[1]):
        if text:
            text.append(" · ")
        text.append(name_of(key), style="bold")
        text.append(f" {short_bytes(memory)}")
    for holder in others:
        if text:
            text.append(" · ")
        held = holder.process.memory
        size = short_bytes(held) if held is not None else "?"
        who = (
            f"{holder.user}:{holder.process.pid}"
            if holder.user != "?"
            else f"pid {holder.process.pid}"
        )
        text.append(f"{who} {size}", style="" if holder.ours else "dim")
    if not text:
        text.append("idle: no process", style="dim")
    return text


def device_line(device: GpuDevice, holders: list[Holder], name_of: Callable[[str], str]) -> Text:
    """One GPU: name, utilisation and memory bars, temperature and power, its holders."""
    line = Text(no_wrap=True, overflow="ellipsis")
    line.append(f"{device.index} ", style="bold")
    line.append(f"{device.name[:16]:<16} ")
    util = device.utilization
    line.append("util ")
    line.append_text(bar(None if util is None else util / 100))
    line.append(f" {util:3.0f}% " if util is not None else "   ?% ")
    total = device.memory_total
    line.append("mem ")
    line.append_text(bar(device.memory_used / total if total else None))
    line.append(f" {short_bytes(device.memory_used):>5}/{short_bytes(total):<5}")
    if device.temperature is not None:
        line.append(f" {device.temperature:.0f}°C")
    if device.power is not None:
        line.append(f" {device.power:.0f}W")
    line.append("  ")
    line.append_text(_holders(holders, name_of))
    return line


class GpuPanel(Static):
    """The host's GPUs (toggled on the run table); the screen calls :meth:`show_state`."""

    DEFAULT_CSS = """
    GpuPanel {
        height: auto;
        max-height: 12;
        background: $panel;
        padding: 0 1;
        border-top: solid $primary;
    }
    """

    def show_state(
        self, state: GpuState | None, name_of: Callable[[str], str], every: float
    ) -> None:
        """Draw ``state`` (``None``: not read yet); runs are named by ``name_of(key)``."""
        text = Text(no_wrap=True, overflow="ellipsis")
        if state is None:
            text.append("GPUs: reading…", style="dim")
            self.update(text)
            return
        reading = state.reading
        if not reading.available:
            text.append("GPUs: none. ", style="bold")
            text.append(reading.note or "no GPU was read", style="yellow")
            self.update(text)
            return
        text.append(f"GPUs ({len(reading.devices)})", style="bold")
        if reading.driver:
            text.append(f" · driver {reading.driver}")
        text.append(
            f" · who holds memory: runs by name, other processes as user:pid"
            f" · read every {every:g} s while shown",
            style="dim",
        )
        if state.note is not None:
            text.append("\n")
            text.append(state.note, style="yellow")
        for device in reading.devices:
            text.append("\n")
            text.append_text(device_line(device, state.on_device(device.index), name_of))
        self.update(text)
