"""``ProcessTable``: a run's process tree as a kill would see it, refreshed while shown.

The tree is the recorded pid's (:func:`tui.core.procs.tree_for_run`) or, for a run with
none, that of the process found holding its files open for writing; it is read in a thread
worker (psutil reads
``/proc``, which can be slow on a busy box); the result travels back as a frozen message.
The refresh timer runs only while :attr:`ProcessTable.active` is true, i.e. while the tab
is visible: nothing polls when nobody looks.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from rich.text import Text
from textual import on, work
from textual.app import ComposeResult
from textual.containers import Vertical
from textual.message import Message
from textual.reactive import reactive
from textual.timer import Timer
from textual.widgets import DataTable, Static
from textual.worker import get_current_worker

from tui.core import procs
from tui.core.openfiles import RunProcess
from tui.core.procs import ProcessInfo, Refusal, Tree
from tui.core.sizes import human_bytes

REFRESH = 2.0
"""Seconds between snapshots while the table is visible."""

_STATE_STYLES = {"running": "green", "sleeping": "", "zombie": "bold red", "stopped": "yellow"}


def _depths(processes: tuple[ProcessInfo, ...]) -> dict[int, int]:
    by_pid = {p.pid: p for p in processes}
    depths: dict[int, int] = {}
    for proc in processes:
        depth, seen, node = 0, {proc.pid}, proc
        while node.ppid in by_pid and node.ppid not in seen:
            seen.add(node.ppid)
            node = by_pid[node.ppid]
            depth += 1
        depths[proc.pid] = depth
    return depths


class ProcessTable(Vertical):
    """Pid, user, state, CPU, memory, GPU memory and command line of every process of a
    run's tree."""

    DEFAULT_CSS = """
    ProcessTable {
        height: 1fr;
    }
    ProcessTable > #procs-status {
        height: auto;
        padding: 0 1;
    }
    ProcessTable > DataTable {
        height: 1fr;
    }
    """

    active: reactive[bool] = reactive(False, init=False)
    """Whether the table is on screen: snapshots are taken every 2 s only while it is."""

    class Snapshot(Message):
        """A snapshot of the run's processes was taken (posted from the worker)."""

        def __init__(self, result: Tree | Refusal) -> None:
            super().__init__()
            self.result = result

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self.meta: Mapping[str, Any] = {}
        self.format = "tracktui"
        self.process: RunProcess[str] | None = None
        self.result: Tree | Refusal | None = None
        self.gpu: Mapping[int, tuple[int, int]] = {}
        self._timer: Timer | None = None

    def compose(self) -> ComposeResult:
        yield Static(id="procs-status")
        table: DataTable[Text] = DataTable(cursor_type="row", zebra_stripes=True)
        table.add_column("pid", key="pid")
        table.add_column("user", key="user")
        table.add_column("state", key="state")
        table.add_column("CPU %", key="cpu")
        table.add_column("memory", key="memory")
        table.add_column("GPU memory", key="gpu")
        table.add_column("command line", key="cmdline")
        yield table

    def on_mount(self) -> None:
        self._show_status()

    @property
    def table(self) -> DataTable[Text]:
        """The table of processes (the widget that takes focus)."""
        return self.query_one(DataTable)

    def set_run(
        self, meta: Mapping[str, Any], format: str, process: RunProcess[str] | None = None
    ) -> None:
        """Use this run.json (it changes when the run ends or is relaunched) and the process
        found writing the run's files (for a run that records no pid)."""
        changed = meta != self.meta or process != self.process
        self.meta, self.format, self.process = meta, format, process
        if changed and self.active:
            self.snapshot()
        elif changed:
            self._show_status()

    def set_gpu(self, memory: Mapping[int, tuple[int, int]]) -> None:
        """GPU memory per pid, ``pid -> (bytes, GPU index)``, from the latest GPU reading."""
        if memory == self.gpu:
            return
        self.gpu = memory
        if isinstance(self.result, Tree):
            self._show()

    def recorded(self) -> bool:
        """Whether run.json names the run's pid."""
        return isinstance(self.meta.get("pid"), int)

    def has_identity(self) -> bool:
        """Whether a process is known: a recorded pid, or one writer of the run's files."""
        return self.recorded() or (self.process is not None and self.process.pid is not None)

    # Refresh ----------------------------------------------------------------------------
    def watch_active(self, active: bool) -> None:
        if self._timer is not None:
            self._timer.stop()
            self._timer = None
        if active and self.has_identity():
            self.snapshot()
            self._timer = self.set_interval(REFRESH, self.snapshot)
        elif active:
            self._show_status()

    def snapshot(self) -> None:
        """Take a snapshot now (in a thread)."""
        if self.has_identity():
            self._read_tree(dict(self.meta), self.process)
        else:
            self.result = None
            self._show()

    @work(thread=True, exclusive=True, group="procs")
    def _read_tree(self, meta: dict[str, Any], process: RunProcess[str] | None) -> None:
        if isinstance(meta.get("pid"), int) or process is None or process.pid is None:
            result = procs.tree_for_run(meta)
        else:
            result = procs.snapshot_tree(process.pid, process.create_time or 0.0)
        if not get_current_worker().is_cancelled:
            self.post_message(self.Snapshot(result))

    @on(Snapshot)
    def snapshot_taken(self, message: Snapshot) -> None:
        """Show the processes (or why there are none)."""
        message.stop()
        self.result = message.result
        self._show()

    def _show(self) -> None:
        table = self.table
        result = self.result
        rows = result.processes if isinstance(result, Tree) else ()
        depths = _depths(rows)
        keep = table.cursor_row
        with self.app.batch_update():
            table.clear()
            for proc in rows:
                indent = "  " * depths.get(proc.pid, 0)
                state_style = _STATE_STYLES.get(proc.state, "")
                table.add_row(
                    Text(f"{indent}{proc.pid}", justify="left"),
                    Text(proc.user),
                    Text(proc.state, style=state_style),
                    Text(f"{proc.cpu_percent:.1f}", justify="right"),
                    Text(human_bytes(proc.memory_rss), justify="right"),
                    self._gpu_cell(proc.pid),
                    Text(proc.cmdline, no_wrap=True, overflow="ellipsis"),
                    key=str(proc.pid),
                )
            if rows:
                table.move_cursor(row=min(keep, len(rows) - 1))
            self._show_status()

    def _gpu_cell(self, pid: int) -> Text:
        held = self.gpu.get(pid)
        if held is None:
            return Text("–", style="dim", justify="right")
        return Text(f"{human_bytes(held[0])} (GPU {held[1]})", justify="right")

    def _show_status(self) -> None:
        status = Text()
        result = self.result
        found = self.process
        if found is not None and found.pid is None:
            pids = ", ".join(str(w.pid) for w in found.writers)
            status.append(
                f"written by {len(found.writers)} unrelated processes ({pids}): "
                "kill is refused until only one writes",
                style="yellow",
            )
        elif not self.has_identity():
            status.append(
                f"no process is known for this {self.format} run: it records no pid and no "
                "process of yours holds its files open for writing (a writer that opens, "
                "appends and closes is seen only while it writes), so kill is disabled",
                style="yellow",
            )
        elif result is None:
            status.append("reading the process tree…", style="dim")
        elif isinstance(result, Refusal):
            status.append(result.message, style="yellow")
        else:
            count = len(result.processes)
            status.append(f"{count} process{'es' if count != 1 else ''}", style="bold")
            held = [self.gpu[p.pid][0] for p in result.processes if p.pid in self.gpu]
            if held:
                status.append(f" · {human_bytes(sum(held))} of GPU memory", style="bold")
            how = "pid recorded in run.json" if self.recorded() or found is None else found.evidence
            status.append(f" · found by {how}")
            status.append(
                " · what I / T / K would signal, parents first"
                f" · refreshed every {REFRESH:g} s while shown"
            )
        self.query_one("#procs-status", Static).update(status)
